"""Top-down arena shooter: 64 players, ~1000 NPCs, integer math, lag-compensated shots."""

from .game import GAME, Arena, INPUT_DTYPE

__all__ = ["GAME", "Arena", "INPUT_DTYPE"]
