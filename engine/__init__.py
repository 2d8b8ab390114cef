"""ticksync engine: the game side. Game contract, state, tick loop, replays; no sockets."""

from .model import Game, GameError, load_game
from .state import State, StateLayoutError

__all__ = ["Game", "GameError", "State", "StateLayoutError", "load_game"]
