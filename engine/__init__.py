"""ticksync engine: the game side. Game contract, state, tick loop, replays; no sockets.

What a game author needs, from one place::

    from engine import Game, State, Replication, Int, rng_state, randint

Names are loaded on first use (PEP 562), so ``import engine`` (and ``import netcode``,
whose errors derive from :class:`TicksyncError` here) costs no numpy until a name that
needs it is used. ``engine.replay.replay`` and ``engine.check.check`` are not re-exported:
a package attribute named like its submodule would hide the module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import TicksyncError, UsageError

# public name -> submodule that defines it
_LAZY = {
    # the game contract
    "Game": "model",
    "GameError": "model",
    "load_game": "model",
    "State": "state",
    "StateLayoutError": "state",
    # randomness kept in the state
    "rng_state": "rng",
    "random_u64": "rng",
    "randint": "rng",
    "chance": "rng",
    "hash_u64": "rng",
    # what state sync sends, and how precisely
    "Replication": "replication",
    "Quantizer": "quantize",
    "Exact": "quantize",
    "Int": "quantize",
    "Fixed": "quantize",
    "Angle": "quantize",
    "SmallestThree": "quantize",
    "Bodies": "bodies",
    # how a viewer draws it and which keys play it
    "Visuals": "visuals",
    "Sprite": "visuals",
    "Controls": "controls",
    "Axis": "controls",
    "Press": "controls",
    "Aim": "controls",
    "Point": "controls",
    # replays
    "ReplayWriter": "replay",
    "ReplayReader": "replay",
    "ReplayResult": "replay",
    "ReplayError": "replay",
    "record_run": "replay",
    "seek": "replay",
    # running a game
    "TickLoop": "loop",
    "TickStats": "loop",
    "Clock": "loop",
    "RealClock": "loop",
    "ManualClock": "loop",
    "run_async": "loop",
    "run_headless": "cli",
}

__all__ = ["TicksyncError", "UsageError", *_LAZY]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from .bodies import Bodies
    from .cli import run_headless
    from .controls import Aim, Axis, Controls, Point, Press
    from .loop import Clock, ManualClock, RealClock, TickLoop, TickStats, run_async
    from .model import Game, GameError, load_game
    from .quantize import Angle, Exact, Fixed, Int, Quantizer
    from .replay import ReplayError, ReplayReader, ReplayResult, ReplayWriter, record_run, seek
    from .replication import Replication
    from .rng import chance, hash_u64, randint, random_u64, rng_state
    from .state import State, StateLayoutError
    from .visuals import Sprite, Visuals


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
