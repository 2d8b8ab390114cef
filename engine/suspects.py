"""The usual causes of a non-deterministic ``step``, found where ``check`` can see them.

``check`` says *that* and *where* a game diverged (the tick, the arrays); this module
says what in the game's code is the likely *why*, two ways:

* by watching one ``step`` (:func:`watch_step`): does it change the game object's own
  attributes, a global of the game's module, Python's or numpy's global random
  generator, or the inputs array it was handed? Each is state kept outside the State,
  which a rollback, a rerun or another peer does not share.
* by reading the game class's source (:func:`read_source`): clocks, unseeded random
  generators, ``hash()`` (salted per process for str and bytes), ``global`` statements,
  and, for lockstep, float functions whose last bits differ between machines.

Both give plain sentences ("step changed self.calls (0 -> 1)"). Neither proves anything:
they are hints beside the divergence, which is the proof.
"""

from __future__ import annotations

import copy
import inspect
import random
import re
import sys
from typing import Any

import numpy as np

from .model import Game
from .state import State

__all__ = ["float_arrays", "float_calls", "read_source", "watch_step"]

# Source patterns and what each is a sign of.
_SOURCE_SIGNS = [
    (re.compile(r"\b(time\.(time|monotonic|perf_counter|process_time)(_ns)?|datetime\.(now|utcnow|today))\s*\("),
     "reads the clock"),
    (re.compile(r"(?<![\w.])(random\.\w+|np\.random\.(?!default_rng\(\s*\w)\w+|numpy\.random\.\w+)\s*\("),
     "uses a random generator that is not kept in the state (use engine.rng)"),
    (re.compile(r"default_rng\(\s*\)"), "creates an unseeded numpy generator"),
    (re.compile(r"(?<![\w.])hash\s*\("), "calls hash(), which differs between processes for str and bytes"),
    (re.compile(r"^\s*global\s+\w+", re.M), "declares a global it may change"),
    (re.compile(r"\bid\s*\("), "uses id(), which differs between runs"),
]
_FLOAT_SIGN = re.compile(r"\b(np|numpy|math)\.(sin|cos|tan|arctan2|atan2|exp|log|sqrt|power|pow|hypot)\b")


def float_arrays(state: State) -> list[str]:
    """Names of the state's floating-point arrays."""
    return [name for name, arr in state.items() if arr.dtype.kind in "fc"]


def _snapshot(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable: compare by identity only
        return value


def _same(a: Any, b: Any) -> bool:
    try:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
        return bool(a == b)
    except Exception:
        return a is b


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain_globals(module) -> dict[str, Any]:
    """The module's globals that are data (not modules, functions, classes)."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("__")
        and not inspect.ismodule(value)
        and not callable(value)
        and not isinstance(value, Game)
    }


def watch_step(game: Game, state: State, inputs: np.ndarray, tick: int) -> list[str]:
    """Run ``game.step`` once on a copy of ``state`` and say what it changed besides that
    copy. ``inputs`` is not changed (the step gets a copy)."""
    module = sys.modules.get(type(game).__module__)
    attrs_before = {k: _snapshot(v) for k, v in vars(game).items() if k != "_fingerprint"}
    globals_before = {k: _snapshot(v) for k, v in _plain_globals(module).items()} if module else {}
    py_random, np_random = random.getstate(), np.random.get_state()
    given = inputs.copy()
    game.step(state.copy(), given, tick)
    found = []
    for name, value in vars(game).items():
        if name == "_fingerprint":
            continue
        if name not in attrs_before:
            found.append(f"step set a new attribute self.{name}")
        elif not _same(attrs_before[name], value):
            found.append(f"step changed self.{name} ({_short(attrs_before[name])} -> {_short(value)})")
    if module is not None:
        now = _plain_globals(module)
        for name, value in now.items():
            if name in globals_before and not _same(globals_before[name], value):
                found.append(f"step changed the global {name} of {module.__name__} ({_short(globals_before[name])} -> {_short(value)})")
    if random.getstate() != py_random:
        found.append("step drew from Python's global random (not seeded from the state)")
    after = np.random.get_state()
    if after[0] != np_random[0] or not np.array_equal(after[1], np_random[1]) or after[2:] != np_random[2:]:
        found.append("step drew from numpy's global random (not seeded from the state)")
    if not np.array_equal(given, inputs):
        fields = [f for f in inputs.dtype.names if not np.array_equal(given[f], inputs[f])]
        found.append(f"step wrote to its inputs array (fields: {', '.join(fields)}); a rollback re-simulates with the originals")
    return found


def _scan(game: Game, signs) -> list[str]:
    cls = type(game)
    try:
        lines, first = inspect.getsourcelines(cls)
        path = inspect.getsourcefile(cls) or "?"
    except (OSError, TypeError):
        return []
    found = []
    for i, line in enumerate(lines):
        code = line.split("#", 1)[0]
        for pattern, what in signs:
            if pattern.search(code):
                found.append(f"{path}:{first + i}: {what}: {line.strip()}")
    return found


def read_source(game: Game) -> list[str]:
    """Lines of the game class's source that look like a cause ("file:line: what: code")."""
    return _scan(game, _SOURCE_SIGNS)


def float_calls(game: Game) -> list[str]:
    """Lines of the game class's source calling float functions (sin, sqrt, ...) whose
    last bits may differ between machines: a lockstep game's risk."""
    return _scan(game, [(_FLOAT_SIGN, "calls a float function whose last bits may differ between machines")])
