"""A game's input mapping: which keys and mouse actions make its input record.

A viewer (the desktop client, the browser's generic view) builds the record afresh every
frame from what is held, the pointer's world position and the aim angle, so a game
declares its controls once and every viewer plays it the same way::

    controls = Controls(
        Axis("move", negative=("a", "left"), positive=("d", "right"), component=0, scale=127),
        Axis("move", negative=("w", "up"), positive=("s", "down"), component=1, scale=127),
        Aim("aim", turn=256),
        Press("buttons", keys=("space", "mouse1"), value=1),
    )

Key names are lower case and the same everywhere: letters and digits ("w", "1"), "up",
"down", "left", "right", "space", "shift", "enter", "tab", and the mouse buttons "mouse1"
(left), "mouse2" (middle), "mouse3" (right). Fields no control sets stay 0 (the neutral
input); several presses on one field are OR'd, so a bit-flag field takes one per bit. The
server clamps whatever arrives to the game's ``input_limits`` anyway.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

__all__ = ["Aim", "Axis", "Controls", "Point", "Press", "KEY_NAMES", "default_controls", "game_controls"]

KEY_NAMES = frozenset(
    [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + [str(d) for d in range(10)]
    + ["up", "down", "left", "right", "space", "shift", "enter", "tab", "mouse1", "mouse2", "mouse3"]
)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _keys(keys: Iterable[str], what: str) -> tuple[str, ...]:
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    bad = [k for k in keys if k not in KEY_NAMES]
    if bad:
        raise ValueError(f"{what}: unknown key names {bad} (see engine.controls.KEY_NAMES)")
    return keys


def _field(name: str) -> str:
    if not isinstance(name, str) or not _FIELD.match(name):
        raise ValueError(f"{name!r} is not an input field name")
    return name


@dataclass(frozen=True)
class Axis:
    """``field[component]`` = ``scale`` while a ``positive`` key is held, ``-scale`` for a
    ``negative`` one, 0 for both or neither."""

    field: str
    negative: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    component: int | None = None
    scale: float = 1

    def __post_init__(self):
        _field(self.field)
        object.__setattr__(self, "negative", _keys(self.negative, f"Axis({self.field!r}).negative"))
        object.__setattr__(self, "positive", _keys(self.positive, f"Axis({self.field!r}).positive"))


@dataclass(frozen=True)
class Press:
    """``field[component] |= value`` while any of ``keys`` is held."""

    field: str
    keys: tuple[str, ...] = ()
    value: int = 1
    component: int | None = None

    def __post_init__(self):
        _field(self.field)
        object.__setattr__(self, "keys", _keys(self.keys, f"Press({self.field!r}).keys"))


@dataclass(frozen=True)
class Aim:
    """``field`` = the direction from the player's own entity to the pointer, ``turn`` of it
    being a full turn (256 for a byte angle); 0 is +x, and y grows downwards as on screen."""

    field: str
    turn: float = 256
    component: int | None = None

    def __post_init__(self):
        _field(self.field)
        if self.turn <= 0:
            raise ValueError("Aim.turn must be positive")


@dataclass(frozen=True)
class Point:
    """While any of ``keys`` is held (always, with no keys): ``x``/``y`` = the pointer's world
    position divided by ``per`` (world units per input step, e.g. a grid cell)."""

    x: str
    y: str
    per: float = 1
    keys: tuple[str, ...] = ()

    def __post_init__(self):
        _field(self.x), _field(self.y)
        object.__setattr__(self, "keys", _keys(self.keys, "Point.keys"))
        if self.per <= 0:
            raise ValueError("Point.per must be positive")


_KINDS = {Axis: "axis", Press: "press", Aim: "aim", Point: "point"}


class Controls:
    """The game's whole input mapping (see the module docstring)."""

    def __init__(self, *bindings: Axis | Press | Aim | Point, help: str = ""):
        for b in bindings:
            if type(b) not in _KINDS:
                raise TypeError(f"a control is an Axis, Press, Aim or Point, not {b!r}")
        self.bindings = bindings
        self.help = help

    def __repr__(self) -> str:
        return f"Controls{self.bindings!r}"

    def validate(self, dtype: np.dtype) -> None:
        """ValueError naming a control whose field (or component) the input dtype lacks."""
        for b in self.bindings:
            for name in (b.x, b.y) if isinstance(b, Point) else (b.field,):
                if name not in (dtype.names or ()):
                    raise ValueError(f"control {b!r} sets {name!r}, which is not an input field ({dtype.names})")
            comp = getattr(b, "component", None)
            if comp is not None:
                shape = dtype[b.field].shape
                if not shape or not 0 <= comp < shape[0]:
                    raise ValueError(f"control {b!r}: {b.field!r} has no component {comp}")

    @property
    def needs_aim(self) -> bool:
        return any(isinstance(b, Aim) for b in self.bindings)

    def keys(self) -> set[str]:
        """Every key name some control reads."""
        out: set[str] = set()
        for b in self.bindings:
            if isinstance(b, Axis):
                out |= set(b.negative) | set(b.positive)
            elif isinstance(b, (Press, Point)):
                out |= set(b.keys)
        return out

    def record(
        self,
        dtype: np.dtype,
        held: set[str] | frozenset[str],
        pointer: tuple[float, float] | None = None,
        aim: float | None = None,
    ) -> np.ndarray:
        """One input record (a 0-d structured array) from the keys ``held``, the pointer's
        world position and the aim angle in radians (None: unknown, the field stays 0)."""
        rec = np.zeros((), dtype=dtype)
        for b in self.bindings:
            if isinstance(b, Axis):
                v = (any(k in held for k in b.positive) - any(k in held for k in b.negative)) * b.scale
                _put(rec, b.field, b.component, v)
            elif isinstance(b, Press):
                if any(k in held for k in b.keys):
                    _put(rec, b.field, b.component, b.value, combine=True)
            elif isinstance(b, Aim):
                if aim is not None:
                    _put(rec, b.field, b.component, round(aim / (2 * math.pi) * b.turn) % b.turn)
            elif pointer is not None and (not b.keys or any(k in held for k in b.keys)):
                _put(rec, b.x, None, math.floor(pointer[0] / b.per))
                _put(rec, b.y, None, math.floor(pointer[1] / b.per))
        return rec

    def to_json(self) -> dict[str, Any]:
        out = []
        for b in self.bindings:
            item = {"kind": _KINDS[type(b)], **{k: getattr(b, k) for k in b.__dataclass_fields__}}
            out.append({k: list(v) if isinstance(v, tuple) else v for k, v in item.items()})
        return {"bindings": out, "help": self.help or describe(self)}


def describe(controls: Controls) -> str:
    """A one-line help text from the bindings: "a/d: move · w/s: move · space: buttons"."""
    parts = []
    for b in controls.bindings:
        if isinstance(b, Axis):
            parts.append(f"{'/'.join(b.negative[:1] + b.positive[:1])}: {b.field}")
        elif isinstance(b, Press):
            parts.append(f"{'/'.join(b.keys)}: {b.field}")
        elif isinstance(b, Aim):
            parts.append(f"mouse: {b.field}")
        else:
            parts.append(f"{'/'.join(b.keys) or 'mouse'}: {b.x},{b.y}")
    return " · ".join(parts)


def _put(rec: np.ndarray, name: str, component: int | None, value: float, combine: bool = False) -> None:
    col = rec[name]
    info = np.iinfo(col.dtype) if col.dtype.kind in "iu" else None
    if info is not None:
        value = int(min(max(value, info.min), info.max))
    if component is None and col.shape:
        col[...] = (col | value) if combine and info is not None else value
    elif component is None:
        rec[name] = (int(col) | value) if combine and info is not None else value
    else:
        col[component] = (int(col[component]) | value) if combine and info is not None else value


def default_controls(dtype: np.dtype) -> Controls | None:
    """For a game that declares none: arrow keys / WASD on the first signed 2-vector field
    (x then y), else on the first signed scalar field (up/down); None if neither exists."""
    for name in dtype.names or ():
        sub = dtype[name]
        if sub.shape == (2,) and sub.base.kind in "if":
            top = np.iinfo(sub.base).max if sub.base.kind == "i" else 1
            return Controls(
                Axis(name, negative=("a", "left"), positive=("d", "right"), component=0, scale=top),
                Axis(name, negative=("w", "up"), positive=("s", "down"), component=1, scale=top),
            )
    for name in dtype.names or ():
        sub = dtype[name]
        if sub.shape == () and sub.kind in "if":
            return Controls(Axis(name, negative=("w", "up"), positive=("s", "down")))
    return None


def game_controls(game: Any) -> Controls | None:
    """The game's own controls (checked against its input dtype), else the default."""
    declared = getattr(game, "controls", None)
    if declared is None:
        return default_controls(game.input_dtype)
    if not isinstance(declared, Controls):
        raise ValueError(f"{type(game).__name__}.controls must be an engine.Controls, not {type(declared).__name__}")
    declared.validate(game.input_dtype)
    return declared
