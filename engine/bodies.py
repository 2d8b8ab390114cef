"""A snapshot predictor for rigid bodies under gravity, declared as data: the engine runs it
on the server, in Python clients and in the browser (``web/bodies.js``), so a physics game
gets the bytes of a physics-aware predictor without writing one, and browsers still play it.

A spec names it as its predictor::

    Replication(..., coding="entropy", predictor=Bodies(
        moves=("xy", "z"), height="z", floor=FLOOR,      # slide and fall, not through the floor
        rotation="orientation", aloft=REACH, box=102.9,  # spin; land where the rotation says
        ground=LYING))

Every number is in the fields' codes (what the quantizers make), so both ends compute the
same integers. What it expects ``ahead`` ticks after the baseline, from the motion between
the older snapshot (``gap`` ticks before it) and the baseline:

* a body that did not move stays where it is: most of a scene, most of the time;
* a moving body keeps its velocity in every field of ``moves`` (integer steps, floor
  division), but not below ``floor`` in the ``height`` field, and a rising body stays at its
  height (gravity stops it within a few ticks; on the cube scene holding it measured better
  than carrying it on or pulling it down);
* with ``friction`` (codes per tick per tick), a body no higher than ``aloft`` (every body,
  without it) slides short: its step in each moving field but the height loses
  ``friction * ahead**2 / 2`` codes (rounded down), and stops rather than turns back (the
  travel lost to a constant deceleration, per field);
* a body whose ``rotation`` (a :class:`~engine.quantize.SmallestThree` field) turned since the
  older snapshot by more than its codes' jitter (the turn's quaternion w below ``spin``) keeps
  turning for ``turning`` (a fraction) of the time ahead: on the ground it slows and
  collides; one higher than ``aloft`` turns on for all of it, however slowly (nothing brakes
  it in the air);
* with ``box`` (entropy coding only), a body expected below ``aloft`` whose rotation came other
  than expected (it tumbled) is guessed again at the height it would rest at lying so:
  ``ground`` plus ``box`` times how far its three axes reach down (1 lying flat, sqrt(2) on an
  edge, sqrt(3) on a corner), once the packet's rotation is known (a spec's ``refine``).

The rows' work is compiled passes (:func:`engine.motion.extrapolated`,
:func:`engine.smallest_three.turned` and ``standing``) in fixed integer and IEEE steps;
the browser's twins are checked against them. On the cube scene (``python -m
bench.bench_cubes``), what this predicts costs 357.9 B a packet with moves, floor and friction
alone and 344.3 B with the rotation and box rules (plain linear prediction: 359.7 B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["Bodies"]

_NO_FLOOR = -(1 << 63)  # motion.extrapolated's "no floor" for a column
_PASSES: tuple = ()  # (engine.motion, engine.smallest_three) once imported: see _passes


def _passes() -> tuple:
    """The compiled passes, imported on first use rather than with this module (by then
    netcode's import finder has picked their build or their source; see quantize._steps),
    and kept: an import statement per call costs more than the rest of the call's Python."""
    global _PASSES
    if not _PASSES:
        from . import motion, smallest_three

        _PASSES = (motion, smallest_three)
    return _PASSES


_ANY_TURN = 2.0  # above any quaternion's w: every turn counts (turned's ``still``)


@dataclass(frozen=True)
class Bodies:
    """Rigid bodies under gravity as a snapshot predictor (see the module's docstring)."""

    moves: tuple[str, ...]
    height: str | None = None
    floor: int | None = None
    rotation: str | None = None
    spin: float = 0.9999
    turning: tuple[int, int] = (2, 3)
    aloft: int | None = None
    box: float | None = None
    ground: int | None = None
    friction: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "moves", tuple(self.moves))
        object.__setattr__(self, "turning", tuple(self.turning))
        if not self.moves and self.rotation is None:
            raise ValueError("Bodies needs fields that move (moves) or a rotation that turns")
        if len(set(self.moves)) != len(self.moves) or self.rotation in self.moves:
            raise ValueError(f"moves {self.moves} must be distinct fields, the rotation not among them")
        if self.height is not None and self.height not in self.moves:
            raise ValueError(f"the height field {self.height!r} must be one of moves {self.moves}")
        if (self.floor is not None or self.aloft is not None) and self.height is None:
            raise ValueError("floor and aloft are heights: they need a height field")
        for name in ("floor", "aloft", "ground"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or abs(int(v)) >= 1 << 52):
                raise ValueError(f"{name} is a code (an integer within +-2**52), not {v!r}")
            if v is not None:
                object.__setattr__(self, name, int(v))
        if not (0.0 < float(self.spin) <= 1.0):
            raise ValueError(f"spin is the w below which a turn spins, in (0, 1], not {self.spin!r}")
        object.__setattr__(self, "spin", float(self.spin))
        if isinstance(self.friction, bool) or not isinstance(self.friction, (int, float, np.integer, np.floating)) \
                or not (0.0 <= float(self.friction) < 1 << 40):
            raise ValueError(f"friction is codes per tick per tick, a number from 0 (none) below 2**40, not {self.friction!r}")
        object.__setattr__(self, "friction", float(self.friction))
        if self.friction and not [name for name in self.moves if name != self.height]:
            raise ValueError("friction slows the moving fields but the height: there are none")
        num, den = self.turning if len(self.turning) == 2 else (0, 0)
        if not (isinstance(num, int) and isinstance(den, int) and 0 <= num <= 64 and 1 <= den <= 64):
            raise ValueError(f"turning is a fraction (num, den) of small whole numbers, not {self.turning!r}")
        if self.box is not None:
            if self.rotation is None or self.aloft is None or self.ground is None:
                raise ValueError("box (heights guessed from how a body lies) needs rotation, aloft and ground")
            if not (0.0 < float(self.box) < 1 << 40):
                raise ValueError(f"box is the height codes per unit of reach, a positive number, not {self.box!r}")
            object.__setattr__(self, "box", float(self.box))

    # -- the spec's checks ------------------------------------------------------------------
    def check(self, fields: Mapping) -> None:
        """Raise ValueError unless the fields it names are the spec's, plain integers where
        they move and a smallest-three rotation where they turn (``fields``: name -> quantizer)."""
        from .quantize import SmallestThree

        for name in self.moves:
            if name not in fields:
                raise ValueError(f"Bodies moves {name!r}, which is not a replicated field")
            if fields[name].has_delta:
                raise ValueError(f"Bodies moves {name!r}, whose quantizer codes its own deltas: only plain integers move")
        if self.rotation is not None and not isinstance(fields.get(self.rotation), SmallestThree):
            raise ValueError(f"Bodies turns {self.rotation!r}: a SmallestThree field")

    @property
    def refined(self) -> tuple[str, ...]:
        """The fields :meth:`refine` guesses again: the height, with ``box``."""
        return (self.height,) if self.box is not None else ()

    # -- the predictor ----------------------------------------------------------------------
    def __call__(self, base, older, rows, ahead: int, gap: int, columns: Mapping) -> np.ndarray:
        """Where the bodies should be ``ahead`` ticks after ``base`` (codes (n, columns) int64),
        from their motion since ``older`` (``gap`` ticks before it), for the rows in ``rows``
        (bool (n,)): a spec's predictor (see :class:`engine.replication.Replication`)."""
        motion, smallest_three = _passes()
        out = base.copy()
        if self.friction:
            self._slide(motion, base, older, rows, ahead, gap, columns, out)
        else:
            for c0, c1, low, _ in self._runs(columns):
                motion.extrapolated(base, older, c0, c1, ahead, gap, out, rows, low)
        if self.height is not None:
            z = columns[self.height][0]
            np.minimum(out[:, z], base[:, z], out=out[:, z])  # a rising body comes no higher
        if self.rotation is not None:
            r0 = columns[self.rotation][0]
            scale = float(self._quantizer.scale)
            num, den = self.turning
            # a body in the air turns on for all the time ahead, at any spin
            aloft = None if self.aloft is None else (columns[self.height][0], self.aloft, ahead // gap, _ANY_TURN)
            smallest_three.turned(base, older, r0, max(num * ahead // (den * gap), 1), self.spin, scale, out, rows, aloft)
        return out

    def _slide(self, motion, base, older, rows, ahead: int, gap: int, columns: Mapping, out) -> None:
        """The moving fields carried on with friction: bodies no higher than ``aloft`` lose
        its travel, those above fly free of it."""
        lost = float(self.friction) * ahead * ahead / 2  # IEEE doubles, as the browser's twin
        lost = 1 << 62 if lost >= 1 << 62 else int(lost)  # (extrapolated's bound: the step stops)
        free = None if self.aloft is None else (columns[self.height][0], self.aloft)
        for c0, c1, low, slows in self._slows(columns, lost):
            motion.extrapolated(base, older, c0, c1, ahead, gap, out, rows, low, slows, free)

    def _slows(self, columns: Mapping, lost: int) -> list:
        """The runs (:meth:`_runs`) with each column's travel ``lost`` (0 for the height's),
        kept for the few ``lost`` a game's tick gaps make."""
        cache = self.__dict__.get("_cached_slows")
        if cache is None or cache[0] is not columns or len(cache[1]) > 16:
            cache = (columns, {})
            object.__setattr__(self, "_cached_slows", cache)
        runs = cache[1].get(lost)
        if runs is None:
            runs = cache[1][lost] = [(c0, c1, low, tuple(lost if s else 0 for s in sliding)) for c0, c1, low, sliding in self._runs(columns)]
        return runs

    def refine(self, expected, known, columns: Mapping) -> np.ndarray:
        """The height of each body expected below ``aloft`` whose rotation came other than
        expected, guessed again from how it lies: a spec's ``refine`` (with ``box``)."""
        out = expected.copy()
        r0, r1 = columns[self.rotation]
        z = columns[self.height][0]
        self._quantizer.standing(expected[:, r0:r1], known[:, r0:r1], expected[:, z], self.aloft, self.box, self.ground, out[:, z])
        return out

    def _runs(self, columns: Mapping) -> list:
        """The moving fields' columns as runs of adjacent ones, each with its floors and
        which of its columns slide (all but the height's, its first column as everywhere
        here and in the browser), one compiled pass per run (the cube scene's position and
        height are one)."""
        cached = self.__dict__.get("_cached_runs")
        if cached is not None and cached[0] is columns:
            return cached[1]
        z = None if self.height is None else columns[self.height][0]
        floor = _NO_FLOOR if self.floor is None else self.floor
        runs: list = []
        for c0, c1 in sorted(columns[name] for name in self.moves):
            lows = tuple(floor if c == z else _NO_FLOOR for c in range(c0, c1))
            sliding = tuple(c != z for c in range(c0, c1))
            if runs and runs[-1][1] == c0:
                runs[-1] = (runs[-1][0], c1, runs[-1][2] + lows, runs[-1][3] + sliding)
            else:
                runs.append((c0, c1, lows, sliding))
        runs = [(c0, c1, None if all(v == _NO_FLOOR for v in low) else low, sliding) for c0, c1, low, sliding in runs]
        object.__setattr__(self, "_cached_runs", (columns, runs))
        return runs

    @property
    def _quantizer(self):
        """The spec's rotation quantizer (a SmallestThree), which :meth:`bound` keeps."""
        q = self.__dict__.get("_rotation")
        if q is None:
            raise ValueError("this Bodies is not a spec's: Replication(predictor=Bodies(...)) binds it to the rotation's quantizer")
        return q

    def bound(self, fields: Mapping) -> "Bodies":
        """A copy checked against a spec's fields (:meth:`check`, name -> quantizer) that
        keeps its rotation's quantizer: what :class:`~engine.replication.Replication` keeps."""
        self.check(fields)
        out = Bodies(**{name: getattr(self, name) for name in self.__dataclass_fields__})
        if self.rotation is not None:
            object.__setattr__(out, "_rotation", fields[self.rotation])
        return out

    def describe(self, columns: Mapping) -> dict:
        """The predictor as a browser runs it (web/bodies.js): its numbers, and columns for names."""
        return {
            "moves": [list(columns[name]) for name in self.moves],
            "height": None if self.height is None else columns[self.height][0],
            "floor": self.floor,
            "rotation": None if self.rotation is None else columns[self.rotation][0],
            "scale": None if self.rotation is None else int(self._quantizer.scale),
            "spin": self.spin,
            "turning": list(self.turning),
            "aloft": self.aloft,
            "box": self.box,
            "ground": self.ground,
            "friction": self.friction,
        }
