"""Swarm: a tiny RTS, 256 players x 8 units, 3-byte inputs, integer math (lockstep-friendly)."""

from .game import GAME, INPUT_DTYPE, Swarm

__all__ = ["GAME", "INPUT_DTYPE", "Swarm"]
