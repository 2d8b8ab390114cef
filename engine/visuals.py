"""How a game's entities look: a small declarative spec next to its replication spec.

A viewer that knows nothing of the game (the browser's generic view, the desktop client)
draws it from this: where each entity is (the position field, or an x and a y field), its
shape, colour and size (fixed, or read from a replicated field), a heading line, a bar, a
label. Every field it names is a replicated field, so a state-sync client has it; the
spec is plain data and goes to browsers as JSON (:meth:`Visuals.to_json`)::

    visuals = Visuals(
        world=(0, 0, 65535, 65535),
        sprites=(
            Sprite(when={"kind": 1}, size=900, color_by="owner", heading="aim"),
            Sprite(size=640, color="#6b7785"),
        ),
    )

Each entity is drawn by the first sprite whose ``when`` matches it (a sprite without
``when`` matches everyone); an entity no sprite matches is not drawn. A game without a
``visuals`` gets :func:`default_visuals`: dots at its position field, inside the range its
quantizer declares. The view can follow the player's own entity (``camera="follow"``) or
show the whole world. A game may also name its own browser module (``web_renderer``, a
file the server's ``web/`` folder serves) that draws it instead, as the arena does.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .controls import game_controls
from .quantize import Int

__all__ = ["Sprite", "Visuals", "default_visuals", "game_visuals", "palette", "viewer_spec", "PALETTE_SIZE"]

SHAPES = ("circle", "rect", "triangle")
CAMERAS = ("world", "follow")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
PALETTE_SIZE = 16  # colour_by values cycle through this many hues
OWN_COLOR = "#ffd166"  # the outline around the viewer's own entity


def palette(value: int) -> str:
    """The colour ``color_by`` gives an integer value: evenly spread, well-separated hues
    (the same rule in ``web/render.js``), as ``#rrggbb``."""
    hue = (int(value) * 67) % 360 / 360.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.6, 0.8)
    return "#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255))


def _check_color(text: str, what: str) -> None:
    if not isinstance(text, str) or not _COLOR.match(text):
        raise ValueError(f"{what} must be a colour '#rrggbb', not {text!r}")


@dataclass(frozen=True)
class Sprite:
    """How one class of entities is drawn.

    ``size``: the entity's extent in position units: a number (a circle's diameter, a
    square's side, a triangle's length), a (width, height) pair (a rectangle), or the name
    of a field whose value (times ``size_scale``) is the diameter. ``color`` is fixed;
    ``color_by`` names an integer field whose value picks a colour (owner, team).
    ``heading``: a field holding a direction, ``heading_turn`` of it being a full turn
    (256 for a byte angle, 6.283... for radians); drawn as a line, or as where a triangle
    points. ``bar``: a field shown as a bar over the entity while below ``bar_max``.
    ``label``: a field whose value is written beside the entity.
    """

    shape: str = "circle"
    size: float | tuple[float, float] | str = 0.0
    size_scale: float = 1.0
    color: str = "#9aa5b1"
    color_by: str | None = None
    when: Mapping[str, int] = field(default_factory=dict)
    heading: str | None = None
    heading_turn: float = 256.0
    bar: str | None = None
    bar_max: float = 100.0
    label: str | None = None

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"shape {self.shape!r}: expected one of {', '.join(SHAPES)}")
        _check_color(self.color, "a sprite's color")
        if isinstance(self.size, tuple):
            if len(self.size) != 2 or min(self.size) <= 0:
                raise ValueError(f"a (width, height) size needs two positive numbers, not {self.size!r}")
        elif not isinstance(self.size, (int, float, str)) or (not isinstance(self.size, str) and self.size < 0):
            raise ValueError(f"size {self.size!r}: a number >= 0, a (width, height) pair or a field name")
        if self.heading_turn <= 0 or self.bar_max <= 0:
            raise ValueError("heading_turn and bar_max must be positive")
        object.__setattr__(self, "when", dict(self.when))

    def fields_used(self) -> set[str]:
        names = {self.color_by, self.heading, self.bar, self.label, *self.when}
        if isinstance(self.size, str):
            names.add(self.size)
        return {n for n in names if n is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "size": list(self.size) if isinstance(self.size, tuple) else self.size,
            "size_scale": self.size_scale,
            "color": self.color,
            "color_by": self.color_by,
            "when": dict(self.when),
            "heading": self.heading,
            "heading_turn": self.heading_turn,
            "bar": self.bar,
            "bar_max": self.bar_max,
            "label": self.label,
        }


@dataclass(frozen=True)
class Visuals:
    """How a game looks (see the module docstring).

    ``world``: (x0, y0, x1, y1), the playing field in position units; y grows downwards on
    screen. ``position``: the (entities, 2) field, or an (x, y) pair of fields; default the
    replication spec's position. ``camera``: "world" shows the whole field, "follow" centres
    the player's own entity with ``follow_span`` units across the shorter side of the window.
    ``grid``: spacing of background lines (position units), so motion shows on an empty
    field. ``scores``: an extras array indexed by player slot, shown as a table.
    """

    world: tuple[float, float, float, float]
    sprites: tuple[Sprite, ...] = (Sprite(),)
    position: str | tuple[str, str] | None = None
    camera: str = "world"
    follow_span: float | None = None
    background: str = "#101316"
    grid: float | None = None
    scores: str | None = None
    web_renderer: str | None = None

    def __post_init__(self):
        if len(self.world) != 4 or self.world[2] <= self.world[0] or self.world[3] <= self.world[1]:
            raise ValueError(f"world {self.world!r}: expected (x0, y0, x1, y1) with x1 > x0 and y1 > y0")
        object.__setattr__(self, "sprites", tuple(self.sprites))
        if not self.sprites or not all(isinstance(s, Sprite) for s in self.sprites):
            raise ValueError("visuals need at least one Sprite")
        if self.camera not in CAMERAS:
            raise ValueError(f"camera {self.camera!r}: expected one of {', '.join(CAMERAS)}")
        if self.camera == "follow" and not (self.follow_span and self.follow_span > 0):
            raise ValueError("camera='follow' needs follow_span > 0 (position units across the view)")
        _check_color(self.background, "background")
        if self.web_renderer is not None and not re.match(r"^[A-Za-z0-9_-]+\.js$", self.web_renderer):
            raise ValueError(f"web_renderer {self.web_renderer!r}: a file name like 'mygame.js'")
        if isinstance(self.position, list):
            object.__setattr__(self, "position", tuple(self.position))

    # -- checked against the replication spec ------------------------------------------------
    def position_fields(self, replication: Any) -> tuple[str, ...]:
        """The field(s) holding positions: ("pos",) or ("x", "y")."""
        pos = self.position if self.position is not None else getattr(replication, "position", None)
        if pos is None:
            raise ValueError("visuals need a position: set Visuals.position or the replication's position")
        return (pos,) if isinstance(pos, str) else tuple(pos)

    def validate(self, replication: Any) -> None:
        """ValueError naming the first field this spec uses that state sync does not send."""
        if replication is None:
            raise ValueError("visuals draw replicated fields: the game needs a replication spec")
        known = set(replication.fields)
        positions = self.position_fields(replication)
        if len(positions) not in (1, 2):
            raise ValueError(f"position {self.position!r}: one (entities, 2) field or an (x, y) pair")
        used = set(positions)
        for sprite in self.sprites:
            used |= sprite.fields_used()
        unknown = sorted(used - known)
        if unknown:
            raise ValueError(f"visuals use {unknown}, which are not replicated fields ({sorted(known)})")
        if self.scores is not None and self.scores not in replication.extras:
            raise ValueError(f"scores {self.scores!r} is not one of the replication's extras {list(replication.extras)}")

    def to_json(self, replication: Any = None) -> dict[str, Any]:
        """Plain data for a browser (positions resolved against ``replication``)."""
        positions = self.position_fields(replication) if replication is not None or self.position else None
        return {
            "world": list(self.world),
            "position": list(positions) if positions else None,
            "sprites": [s.to_json() for s in self.sprites],
            "camera": self.camera,
            "follow_span": self.follow_span,
            "background": self.background,
            "grid": self.grid,
            "scores": self.scores,
            "web_renderer": self.web_renderer,
            "own_color": OWN_COLOR,
            "palette_size": PALETTE_SIZE,
        }

    # -- what to draw ----------------------------------------------------------------------------
    def positions(self, fields: Mapping[str, np.ndarray], replication: Any) -> np.ndarray:
        """(entities, 2) float positions from a view's fields."""
        names = self.position_fields(replication)
        if len(names) == 1:
            return np.asarray(fields[names[0]], np.float64).reshape(-1, 2)
        return np.stack([np.asarray(fields[n], np.float64).reshape(-1) for n in names], axis=1)

    def assign(self, fields: Mapping[str, np.ndarray], visible: np.ndarray) -> np.ndarray:
        """Which sprite draws each entity: its index in ``sprites``, or -1 (not drawn).
        Vectorized: one pass per sprite, not per entity."""
        visible = np.asarray(visible, bool)
        out = np.full(len(visible), -1, np.int64)
        free = visible.copy()
        for i, sprite in enumerate(self.sprites):
            match = free.copy()
            for name, value in sprite.when.items():
                match &= np.asarray(fields[name]).reshape(len(visible), -1)[:, 0] == value
            out[match] = i
            free &= ~match
        return out

    def sizes(self, sprite: Sprite, fields: Mapping[str, np.ndarray], which: np.ndarray) -> np.ndarray:
        """(len(which), 2) width and height in position units for entities ``which``."""
        if isinstance(sprite.size, tuple):
            wh = np.array(sprite.size, np.float64) * sprite.size_scale
            return np.broadcast_to(wh, (len(which), 2))
        if isinstance(sprite.size, str):
            d = np.asarray(fields[sprite.size], np.float64).reshape(-1)[which] * sprite.size_scale
        else:
            d = np.full(len(which), (sprite.size or self.default_size()) * sprite.size_scale)
        return np.stack([d, d], axis=1)

    def default_size(self) -> float:
        """A size nobody declared: 1.5% of the world's shorter side."""
        x0, y0, x1, y1 = self.world
        return 0.015 * min(x1 - x0, y1 - y0)


def default_visuals(replication: Any) -> Visuals | None:
    """Dots at the position field within its quantizer's range (or an x/y pair of Int
    fields), for a game that declares no visuals; None when there is nothing to place."""
    if replication is None:
        return None
    fields = replication.fields
    if replication.position is not None:
        names: tuple[str, ...] = (replication.position,)
    elif "x" in fields and "y" in fields:
        names = ("x", "y")
    else:
        return None
    qs = [fields[n] for n in names]
    if not all(isinstance(q, Int) for q in qs):
        return None  # no declared range to fit on a screen
    (lx, hx), (ly, hy) = ((qs[0].low, qs[0].high), (qs[-1].low, qs[-1].high))
    if hx <= lx or hy <= ly:
        return None
    return Visuals(world=(lx, ly, hx, hy), position=names if len(names) == 2 else None)


def game_visuals(game: Any) -> Visuals | None:
    """The game's own visuals (checked against its replication), else the default; a game
    whose visuals name fields it does not replicate raises ValueError saying which."""
    declared = getattr(game, "visuals", None)
    if declared is None:
        return default_visuals(getattr(game, "replication", None))
    if not isinstance(declared, Visuals):
        raise ValueError(f"{type(game).__name__}.visuals must be an engine.Visuals, not {type(declared).__name__}")
    declared.validate(game.replication)
    return declared


def viewer_spec(game: Any) -> dict[str, Any]:
    """What a generic viewer needs beside the schema, as plain data: ``visuals`` and
    ``controls`` (None where the game has none and no default fits), and ``problems``: the
    game author's mistakes in them, said instead of raised so the room still serves."""
    out: dict[str, Any] = {"visuals": None, "controls": None, "problems": []}
    try:
        v = game_visuals(game)
        out["visuals"] = v.to_json(game.replication) if v is not None else None
    except ValueError as exc:
        out["problems"].append(f"visuals: {exc}")
    try:
        c = game_controls(game)
        out["controls"] = c.to_json() if c is not None else None
    except ValueError as exc:
        out["problems"].append(f"controls: {exc}")
    return out
