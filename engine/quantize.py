"""Per-field quantizers a game declares for state sync: how a column becomes small integers.

Each quantizer maps a whole column to non-negative int64 *codes* and back, vectorized. The
snapshot codec only ever sees codes, so quantization happens once per snapshot and the
client's view is exactly ``dequantize(quantize(server value))``; ``tolerance`` says how far
that may be from the server's value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Quantizer", "Exact", "Int", "Fixed", "Angle", "SmallestThree"]


class Quantizer:
    """Base: maps values to codes >= 0 and back. The snapshot codec picks bit widths per
    snapshot from the codes it sees, so a quantizer only has to bound them."""

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Codes (int64, >= 0) for ``values``; out-of-range values are clamped."""
        raise NotImplementedError

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Values of ``dtype`` for ``codes``: the inverse of :meth:`quantize`, within
        :attr:`tolerance`."""
        raise NotImplementedError

    @property
    def tolerance(self) -> float:
        """Largest |dequantize(quantize(v)) - v| for an in-range value."""
        return 0.0

    # Entropy-coded snapshots send ``delta(expected, codes)`` for changed entities (rows,
    # this field's columns) and apply ``undelta``: a quantizer whose codes are not a
    # number line (a rotation) overrides both so that a small change is a small delta.
    has_delta = False

    def contexts(self, width: int) -> list[int]:
        """Which of this field's ``width`` columns share statistics (equal numbers share
        an entropy coder's contexts): by default all of them (a position's axes)."""
        return [0] * width

    def delta(self, base: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return codes - base

    def undelta(self, base: np.ndarray, deltas: np.ndarray) -> np.ndarray:
        return base + deltas


@dataclass(frozen=True)
class Exact(Quantizer):
    """Integers (or bools) of up to 32 bits sent as they are."""

    def quantize(self, values: np.ndarray) -> np.ndarray:
        if values.dtype.kind not in "biu" or values.dtype.itemsize > 4:
            raise TypeError(f"Exact() replicates integers of up to 32 bits, not {values.dtype}")
        codes = values.astype(np.int64)
        if values.dtype.kind == "i":  # two's complement within the field's width
            codes &= (1 << (values.dtype.itemsize * 8)) - 1
        return codes

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if dtype.kind == "i":
            width = dtype.itemsize * 8
            codes = np.where(codes >= 1 << (width - 1), codes - (1 << width), codes)
        return codes.astype(dtype)


_INT_RANGES: dict = {}


def _int_range(dt: np.dtype) -> tuple[int, int]:
    """(min, max) of an integer or bool dtype, cached (np.iinfo builds an object a call)."""
    hit = _INT_RANGES.get(dt)
    if hit is None:
        info = np.iinfo(dt) if dt.kind != "b" else None
        hit = _INT_RANGES[dt] = (0, 1) if info is None else (int(info.min), int(info.max))
    return hit


@dataclass(frozen=True)
class Int(Quantizer):
    """Integers in [low, high]; out-of-range values are clamped."""

    low: int
    high: int

    def __post_init__(self):
        if self.high < self.low:
            raise ValueError(f"Int({self.low}, {self.high}) is empty")

    @property
    def bits(self) -> int:
        return max(1, (self.high - self.low).bit_length())

    def quantize(self, values: np.ndarray) -> np.ndarray:
        dt = values.dtype
        if dt.kind in "ib" or (dt.kind == "u" and dt.itemsize < 8):
            # Integers (the usual case, once per field per snapshot): widened first, then
            # clamped in place with two ufuncs, skipped where the type cannot leave the
            # range. np.clip's Python wrapper alone cost more than the whole of this.
            codes = values.astype(np.int64)
            lo, hi = _int_range(dt)
            if lo < self.low:
                np.maximum(codes, self.low, out=codes)
            if hi > self.high:
                np.minimum(codes, self.high, out=codes)
            if self.low:
                codes -= self.low
            return codes
        return np.clip(values, self.low, self.high).astype(np.int64) - self.low

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return (codes + self.low).astype(dtype)


@dataclass(frozen=True)
class Fixed(Quantizer):
    """Reals in [low, high] in steps of ``step`` (fixed point); NaN becomes ``low``."""

    low: float
    high: float
    step: float

    def __post_init__(self):
        if not (self.high > self.low and self.step > 0):
            raise ValueError(f"Fixed({self.low}, {self.high}, {self.step}) needs low < high, step > 0")

    @property
    def levels(self) -> int:
        return int(math.ceil((self.high - self.low) / self.step))

    @property
    def bits(self) -> int:
        return max(1, self.levels.bit_length())

    @property
    def tolerance(self) -> float:
        return self.step / 2

    def quantize(self, values: np.ndarray) -> np.ndarray:
        v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=self.low, posinf=self.high, neginf=self.low)
        return np.clip(np.rint((v - self.low) / self.step), 0, self.levels).astype(np.int64)

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return (self.low + codes * self.step).astype(dtype)


@dataclass(frozen=True)
class Angle(Quantizer):
    """Angles in radians on a circle of 2**bits steps; decoded into [-pi, pi)."""

    bits: int = 8

    @property
    def tolerance(self) -> float:
        return math.pi / (1 << self.bits)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        n = 1 << self.bits
        return np.rint(v * (n / (2 * math.pi))).astype(np.int64) % n

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        n = 1 << self.bits
        signed = np.where(codes >= n // 2, codes - n, codes)
        return (signed * (2 * math.pi / n)).astype(dtype)


_SQRT_HALF = math.sqrt(0.5)


_STEPS = None  # engine.smallest_three once imported (see _steps)


def _steps():
    """engine.smallest_three (compiled where built), imported on first use rather than
    with this module: by then whatever replicates state has imported netcode, whose
    import finder picks the module's build or its source (TICKSYNC_PURE=1, a stale
    build), and the game side imports nothing of netcode itself. Kept once imported: an
    import statement per call ran importlib's fromlist handling on every snapshot."""
    global _STEPS
    if _STEPS is None:
        from engine import smallest_three

        _STEPS = smallest_three
    return _STEPS


@dataclass(frozen=True)
class SmallestThree(Quantizer):
    """Unit quaternions (x, y, z, w) as *smallest three*: 4 codes per row, the index of the
    largest component (dropped: it is the positive square root of what the others leave)
    and the other three, each in [-1/sqrt(2), 1/sqrt(2)] at ``bits`` bits. ``q`` and
    ``-q`` are one rotation, so the dropped component is made positive.

    :meth:`delta` codes a rotation against a baseline's: when the largest index switched,
    the baseline is first re-expressed with the new index dropped, so a small turn is a
    small delta whichever component is largest."""

    bits: int = 9
    has_delta = True

    def contexts(self, width: int) -> list[int]:
        return [0, 1, 1, 1]  # the largest index's turn is not like the components' changes

    def __post_init__(self):
        if not 2 <= self.bits <= 30:
            raise ValueError(f"SmallestThree(bits={self.bits}) needs 2..30 bits")

    @property
    def scale(self) -> int:
        return (1 << self.bits) - 1

    @property
    def tolerance(self) -> float:
        # Sent components are off by half a step at most; the dropped one, recomputed
        # from them, by at most the sum of theirs (each no larger than it), plus rounding.
        return 3.3 * _SQRT_HALF / self.scale

    def quantize(self, values: np.ndarray) -> np.ndarray:
        q = np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1, 4))
        largest = np.argmax(np.abs(q), axis=1)
        return self._codes(q, largest)

    def _codes(self, q: np.ndarray, largest: np.ndarray) -> np.ndarray:
        """Codes of quaternions ``q`` with component ``largest`` dropped."""
        return _steps().to_codes(q, largest, self.scale)

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return self._unit(codes.reshape(-1, 4)).astype(dtype)

    def _unit(self, codes: np.ndarray) -> np.ndarray:
        return _steps().unit(codes, self.scale)

    def rebase(self, base: np.ndarray, largest: np.ndarray) -> np.ndarray:
        """The baseline codes ``base`` (rows, 4) re-expressed with component ``largest``
        dropped (rows where it already is are returned as they are)."""
        out = base.copy()
        switch = base[:, 0] != largest
        if switch.any():
            out[switch, 0] = largest[switch]
            out[switch, 1:] = _steps().rebased(base[switch], largest[switch], self.scale)
        return out

    def delta(self, base: np.ndarray, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(rows, 4) signed deltas of ``codes`` against ``base``: the largest index's turn
        (0..3 mod 4) and the three components against the rebased baseline; written to
        ``out`` (rows, 4) int64 when given (a table's columns: no copy back)."""
        return _steps().delta(base, codes, self.scale, out)

    def undelta(self, base: np.ndarray, deltas: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Inverse of :meth:`delta`."""
        return _steps().undelta(base, deltas, self.scale, out)

    def extrapolate(self, base: np.ndarray, older: np.ndarray, turns: int, still: float = 1.0,
                    rows: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Codes (rows, 4) of rotations ``base`` turned ``turns`` more times by the turn
        each made since ``older`` (codes, (rows, 4)), for a game's predictor: a spinning
        body keeps spinning. Turns whose quaternion's w is ``still`` or more (jitter, not
        spin), and rows outside the bool mask ``rows`` (when given), keep the baseline's
        codes; written to ``out`` (rows, 4) int64 when given (a table's columns)."""
        return _steps().extrapolated(base, older, turns, still, self.scale, rows, out)

    def uprightness(self, codes: np.ndarray) -> np.ndarray:
        """Per rotation (codes (rows, 4)), float64: how many half-sizes a cube so turned
        reaches below its centre (1 lying flat, sqrt(2) on an edge, sqrt(3) on a corner),
        so how high it stands on the ground."""
        return _steps().uprightness(codes, self.scale)

    def standing(self, expected: np.ndarray, known: np.ndarray, heights: np.ndarray, below: int, half: float,
                 ground: int, out: np.ndarray) -> np.ndarray:
        """For a game's guess of where boxes that tumbled came to rest: each row whose
        rotation ``known`` (codes (rows, 4)) is not ``expected`` and whose height
        ``heights`` (int64 (rows,)) is below ``below`` gets ``ground`` plus ``half`` times
        its :meth:`uprightness` (clipped to 0..2), rounded, in ``out`` (int64 (rows,),
        a table's column will do); other rows keep theirs. One compiled pass."""
        return _steps().standing(expected, known, heights, below, half, ground, self.scale, out)
