"""Vectorized bit packing: many small unsigned integers of one width to bytes and back.

Snapshots send thousands of quantized values whose useful width changes from snapshot to
snapshot (a field that moved a little needs few bits). Packing a whole column at a
per-snapshot width is a handful of numpy operations instead of a Python loop per value.
Bits are little-endian within values and within bytes (value 0 bit 0 is byte 0 bit 0).

Where the install compiled :mod:`netcode.statesync.bitpack`, the packing functions use its C loops
for int64 columns (the encoder's), with the same bytes, and unpacking uses its C loop for
well-formed input (malformed input falls through to numpy, which names the fault); numpy
does the rest.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from netcode import compiled
from netcode.errors import ProtocolError

__all__ = [
    "width_of",
    "pack_uint",
    "unpack_uint",
    "packed_size",
    "pack_escaped",
    "unpack_escaped",
    "escaped_cost_bits",
    "pack_nonzero",
    "pack_gaps",
    "width_of_columns",
    "pack_escaped_columns",
    "pack_nonzero_columns",
    "zigzag_array",
    "unzigzag_array",
]


_fast = compiled.bitpack  # each of its functions returns None for what it does not take


def width_of(values: np.ndarray) -> int:
    """Bits needed for the largest of ``values`` (>= 0); 0 for an empty or all-zero array."""
    if _fast is not None:
        w = _fast.width_of(values)
        if w is not None:
            return w
    if not len(values):
        return 0
    return int(values.max()).bit_length()


def packed_size(count: int, width: int) -> int:
    return (count * width + 7) // 8


_SMALL = 32  # arrays up to this long are packed with Python ints: numpy's per-call cost dominates


def pack_uint(values: np.ndarray, width: int) -> bytes:
    """``values`` (non-negative, < 2**width, width <= 64) as a packed little-endian bit stream."""
    if _fast is not None:
        out = _fast.pack_uint(values, width)
        if out is not None:
            return out
    n = len(values)
    if width == 0 or not n:
        return b""
    if n <= _SMALL:
        acc = 0
        for i, v in enumerate(values.tolist()):
            acc |= int(v) << (i * width)
        return acc.to_bytes(packed_size(n, width), "little")
    raw = np.ascontiguousarray(values, dtype="<u8").view(np.uint8).reshape(-1, 8)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :width]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def unpack_uint(data, count: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_uint`; ``data`` must hold exactly ``packed_size`` bytes."""
    if width == 0 or not count:
        return np.zeros(count, np.int64)
    if width > 64:
        raise ProtocolError("bad_width", f"{width}-bit values")
    if _fast is not None:
        out = _fast.unpack_uint(data, count, width)
        if out is not None:
            return out
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


_ESCAPED = 0x80  # header flag: values equal to the all-ones pattern are escapes


def _choose_width(values: np.ndarray) -> tuple[int, int]:
    """(w, top) for :func:`pack_escaped`: escapes are used when w < top."""
    if _fast is not None:
        chosen = _fast.choose_width(values)
        if chosen is not None:
            return chosen
    n = len(values)
    top = width_of(values)
    if n == 0 or top <= 1:
        return top, top
    if n <= _SMALL:  # the same choice with Python ints (first minimum, as argmin)
        s = sorted(values.tolist())
        best_w, best = top, n * top
        first = None
        for w in range(1, top):
            cost = n * w + (n - bisect_left(s, (1 << w) - 1)) * top + 8
            if first is None or cost < first[1]:
                first = (w, cost)
        if first is not None and first[1] < best:
            best_w = first[0]
        return best_w, top
    ws = np.arange(1, top)
    s = np.sort(values)
    escaped = n - np.searchsorted(s, (np.int64(1) << ws) - 1, side="left")
    costs = n * ws + escaped * top + 8
    i = int(np.argmin(costs))
    return (int(ws[i]), top) if costs[i] < n * top else (top, top)


def pack_escaped(values: np.ndarray) -> bytes:
    """Non-negative ints (< 2**63) at the width that packs them smallest, with escapes.

    A column is usually small numbers plus a few outliers (one NPC that respawned across
    the map): packing all at the outliers' width would waste most bits. So values are
    packed at width ``w`` where the all-ones pattern means "escaped", and the escaped
    values follow at width ``W``. The encoder picks ``w`` (and whether to escape at all) by
    exact cost, computed for every width at once from the sorted values::

        u8  w | 0x80 if escapes follow;  count values of w bits
        [u8 W;  one value of W bits per all-ones value above]
    """
    if _fast is not None:
        out = _fast.pack_escaped(values)
        if out is not None:
            return out
    w, top = _choose_width(values)
    if w == top:
        return bytes([w]) + pack_uint(values, w)
    marker = (1 << w) - 1
    escaped = values >= marker
    small = np.where(escaped, marker, values)
    return bytes([w | _ESCAPED]) + pack_uint(small, w) + bytes([top]) + pack_uint(values[escaped], top)


def pack_nonzero(values: np.ndarray) -> tuple[int, bytes, bytes]:
    """(how many of ``values`` (>= 0) are not 0, ``pack_uint(values != 0, 1)``, and
    ``pack_escaped`` of the values that are not 0): a column of deltas as a snapshot's
    update section sends it."""
    if _fast is not None:
        out = _fast.pack_nonzero(values)
        if out is not None:
            return out
    changed = values != 0
    return int(np.count_nonzero(changed)), np.packbits(changed, bitorder="little").tobytes(), pack_escaped(values[changed])


def _each_column(table: np.ndarray, name: str, one) -> list:
    """``one`` of each column of a 2-d ``table``: the compiled packer's ``name`` in one call
    where it takes the table, else column by column."""
    if _fast is not None:
        out = getattr(_fast, name)(table)
        if out is not None:
            return out
    return [one(col) for col in table.T]


def width_of_columns(table: np.ndarray) -> list[int]:
    """:func:`width_of` of each column of a 2-d ``table``: a snapshot's size bound."""
    return _each_column(table, "width_of_columns", width_of)


def pack_escaped_columns(table: np.ndarray) -> list[bytes]:
    """:func:`pack_escaped` of each column of a 2-d ``table``: a snapshot's create codes."""
    return _each_column(table, "pack_escaped_columns", pack_escaped)


def pack_nonzero_columns(table: np.ndarray) -> list[tuple[int, bytes, bytes]]:
    """:func:`pack_nonzero` of each column of a 2-d ``table``: a snapshot's update deltas."""
    return _each_column(table, "pack_nonzero_columns", pack_nonzero)


def pack_gaps(ids: np.ndarray) -> bytes:
    """``pack_escaped`` of the gaps between strictly ascending ``ids`` (at least one)
    less one: how a snapshot lists entity ids after the first."""
    if _fast is not None:
        out = _fast.pack_gaps(ids)
        if out is not None:
            return out
    gaps = ids[1:] - ids[:-1]
    gaps -= 1
    return pack_escaped(gaps)


def escaped_cost_bits(values: np.ndarray) -> tuple[int, np.ndarray]:
    """(header bits, per-value bits) :func:`pack_escaped` spends on ``values``; the
    per-value part bounds what any subset packed on its own costs."""
    w, top = _choose_width(values)
    if w == top:
        return 8, np.full(len(values), top, np.int64)
    return 16, np.where(values >= (1 << w) - 1, w + top, w)


def unpack_escaped(r, count: int) -> np.ndarray:
    """Inverse of :func:`pack_escaped` from a ``netcode.session.wire.Reader``."""
    if _fast is not None:
        done = _fast.unpack_escaped(r.data, r.pos, r.end, count)
        if done is not None:
            r.pos = done[1]
            return done[0]
    head = r.u8()
    w = head & 0x7F
    if w > 63:
        raise ProtocolError("bad_width", f"{w}-bit values")
    values = unpack_uint(r.view(packed_size(count, w)), count, w)
    if head & _ESCAPED:
        if w == 0:
            raise ProtocolError("bad_width", "escapes at width 0")
        marks = values == (1 << w) - 1
        top = r.u8()
        if top > 63 or top <= w:
            raise ProtocolError("bad_width", f"escape width {top} after width {w}")
        k = int(marks.sum())
        values[marks] = unpack_uint(r.view(packed_size(k, top)), k, top)
    return values
