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

__all__ = ["Quantizer", "Exact", "Int", "Fixed", "Angle"]


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
