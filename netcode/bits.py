"""Vectorized bit packing: many small unsigned integers of one width to bytes and back.

Snapshots send thousands of quantized values whose useful width changes from snapshot to
snapshot (a field that moved a little needs few bits). Packing a whole column at a
per-snapshot width is a handful of numpy operations instead of a Python loop per value.
Bits are little-endian within values and within bytes (value 0 bit 0 is byte 0 bit 0).
"""

from __future__ import annotations

import numpy as np

from .errors import ProtocolError

__all__ = ["width_of", "pack_uint", "unpack_uint", "packed_size", "zigzag_array", "unzigzag_array"]


def width_of(values: np.ndarray) -> int:
    """Bits needed for the largest of ``values`` (>= 0); 0 for an empty or all-zero array."""
    if not len(values):
        return 0
    return int(values.max()).bit_length()


def packed_size(count: int, width: int) -> int:
    return (count * width + 7) // 8


def pack_uint(values: np.ndarray, width: int) -> bytes:
    """``values`` (non-negative, < 2**width, width <= 64) as a packed little-endian bit stream."""
    if width == 0 or not len(values):
        return b""
    raw = np.ascontiguousarray(values, dtype="<u8").view(np.uint8).reshape(-1, 8)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :width]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def unpack_uint(data, count: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_uint`; ``data`` must hold exactly ``packed_size`` bytes."""
    if width == 0 or not count:
        return np.zeros(count, np.int64)
    if width > 64:
        raise ProtocolError("bad_width", f"{width}-bit values")
    buf = np.frombuffer(data, np.uint8)
    if len(buf) != packed_size(count, width):
        raise ProtocolError("truncated", f"{len(buf)} bytes for {count} values of {width} bits")
    bits = np.unpackbits(buf, bitorder="little")
    if bits[count * width :].any():
        raise ProtocolError("bad_padding", "non-zero padding bits")
    full = np.zeros((count, 64), np.uint8)
    full[:, :width] = bits[: count * width].reshape(count, width)
    return np.packbits(full, axis=1, bitorder="little").view("<u8").reshape(count).astype(np.int64)


def zigzag_array(d: np.ndarray) -> np.ndarray:
    """Signed int64 to unsigned-style int64: 0, -1, 1, -2 ... to 0, 1, 2, 3 ..."""
    return (d << 1) ^ (d >> 63)


def unzigzag_array(z: np.ndarray) -> np.ndarray:
    return (z >> 1) ^ -(z & 1)
