"""Two-player pong: the smallest lockstep game."""

from .game import GAME, Pong

__all__ = ["GAME", "Pong"]
