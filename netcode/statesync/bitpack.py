"""Snapshot bit packing, compiled: :mod:`netcode.statesync.bits`' hot functions as C loops.

A snapshot encode packs a dozen short columns (the ids and values of the hundred-odd
entities that changed), and numpy spends most of each call on fixed overhead: a sort, a
search, an unpack and a pack per column, each for a few hundred values. These functions
do the same in one or two passes over the column, with the same results byte for byte
(``tests/test_bits.py`` compares them on random columns).

Each takes a 1-d int64 array (any stride) and returns None for anything else, or for a
negative value; the callers in :mod:`netcode.statesync.bits` then use their numpy path. Written in
Cython's pure-Python mode like :mod:`netcode.statesync.fastpath`, and used only when compiled (see
:mod:`netcode.compiled`); the tests also run this file as plain Python.
"""

import cython
import numpy as np

compiled = cython.compiled

_INT64 = np.dtype(np.int64)
_ESCAPED = 0x80  # as netcode.statesync.bits
_NO_CAP = 0xFFFFFFFFFFFFFFFF


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.locals(b=cython.int)
def _bit_length(x: cython.ulonglong) -> cython.int:
    b = 0
    if x >> 32:
        x >>= 32
        b += 32
    if x >> 16:
        x >>= 16
        b += 16
    if x >> 8:
        x >>= 8
        b += 8
    if x >> 4:
        x >>= 4
        b += 4
    if x >> 2:
        x >>= 2
        b += 2
    if x >> 1:
        x >>= 1
        b += 1
    return b + cython.cast(cython.int, x)


def _column(values):
    """``values`` as a 1-d int64 array, or None if it is not one."""
    if type(values) is not np.ndarray or values.ndim != 1 or values.dtype != _INT64:
        return None
    return values


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, x=cython.longlong, top=cython.int)
def width_of(values):
    """bits.width_of: the largest value's bit length (0 when empty); None for a negative
    value or anything but a 1-d int64 array."""
    if _column(values) is None:
        return None
    v: cython.longlong[:] = values
    n = v.shape[0]
    top = 0
    for i in range(n):
        x = v[i]
        if x < 0:
            return None
        top = max(top, _bit_length(x))
    return top


@cython.cfunc
@cython.locals(i=cython.Py_ssize_t, pos=cython.Py_ssize_t, x=cython.ulonglong, k=cython.int, left=cython.int, off=cython.int)
def _put(out: cython.p_uchar, at: cython.Py_ssize_t, v: cython.longlong[:], n: cython.Py_ssize_t, width: cython.int, cap: cython.ulonglong, escaped_only: cython.bint, marker: cython.ulonglong) -> cython.Py_ssize_t:
    """Pack values at ``width`` bits into ``out`` (zeroed) from bit ``at``; values at or
    above ``cap`` go as ``cap`` (the escape marker), or, with ``escaped_only``, only the
    values at or above ``marker`` go. The bit position after the last one."""
    pos = at
    for i in range(n):
        x = v[i]  # >= 0: the callers checked
        if escaped_only:
            if x < marker:
                continue
        elif x > cap:
            x = cap
        left = width
        while left > 0:
            off = pos & 7
            k = 8 - off
            if k > left:
                k = left
            out[pos >> 3] |= cython.cast(cython.uchar, (x & ((cython.cast(cython.ulonglong, 1) << k) - 1)) << off)
            x >>= k
            pos += k
            left -= k
    return pos


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, width=cython.int)
def pack_uint(values, width: cython.int):
    """bits.pack_uint (the low ``width`` bits of each value); None for a negative value,
    a width outside 0..64 or anything but a 1-d int64 array."""
    if _column(values) is None or width < 0 or width > 64:
        return None
    v: cython.longlong[:] = values
    n = v.shape[0]
    for i in range(n):
        if v[i] < 0:
            return None
    if width == 0 or n == 0:
        return b""
    out = bytearray((n * width + 7) // 8)
    buf: cython.p_uchar = out
    _put(buf, 0, v, n, width, _NO_CAP, False, 0)
    return bytes(out)


@cython.locals(
    n=cython.Py_ssize_t, i=cython.Py_ssize_t, x=cython.longlong, top=cython.int, w=cython.int,
    best_w=cython.int, escaped=cython.Py_ssize_t, cost=cython.Py_ssize_t, best=cython.Py_ssize_t, b=cython.int,
)
def choose_width(values):
    """bits._choose_width: ``(w, top)``, escapes used when ``w < top``; None for a negative
    value or anything but a 1-d int64 array.

    The escaped count at width w is how many values are >= 2**w - 1, that is how many have
    ``(x + 1).bit_length() > w``: one pass builds the histogram of those lengths."""
    if _column(values) is None:
        return None
    v: cython.longlong[:] = values
    n = v.shape[0]
    hist = cython.declare(cython.Py_ssize_t[66])
    if not cython.compiled:
        hist = [0] * 66
    for b in range(66):
        hist[b] = 0
    top = 0
    for i in range(n):
        x = v[i]
        if x < 0:
            return None
        top = max(top, _bit_length(x))
        hist[_bit_length(cython.cast(cython.ulonglong, x) + 1)] += 1
    if n == 0 or top <= 1:
        return top, top
    escaped = 0  # values with (x + 1).bit_length() > w, for w from top down
    for b in range(top, 65):
        escaped += hist[b + 1]
    best_w, best = 0, 0
    for w in range(top - 1, 0, -1):  # downwards, so ties keep the smallest w (argmin's first)
        escaped += hist[w + 1]
        cost = n * w + escaped * top + 8
        if best_w == 0 or cost <= best:
            best_w, best = w, cost
    if best < n * top:
        return best_w, top
    return top, top


@cython.locals(n=cython.Py_ssize_t, w=cython.int, top=cython.int, marker=cython.ulonglong, pos=cython.Py_ssize_t, k=cython.Py_ssize_t, i=cython.Py_ssize_t)
def pack_escaped(values):
    """bits.pack_escaped; None for a negative value or anything but a 1-d int64 array."""
    chosen = choose_width(values)
    if chosen is None:
        return None
    w, top = chosen
    v: cython.longlong[:] = values
    n = v.shape[0]
    if w == top:
        out = bytearray(1 + (n * w + 7) // 8)
        out[0] = w
        buf: cython.p_uchar = out
        if w:
            _put(buf, 8, v, n, w, _NO_CAP, False, 0)
        return bytes(out)
    marker = (cython.cast(cython.ulonglong, 1) << w) - 1
    k = 0
    for i in range(n):
        if cython.cast(cython.ulonglong, v[i]) >= marker:  # >= 0: choose_width checked
            k += 1
    small = (n * w + 7) // 8
    out = bytearray(1 + small + 1 + (k * top + 7) // 8)
    out[0] = w | _ESCAPED
    out[1 + small] = top
    buf2: cython.p_uchar = out
    _put(buf2, 8, v, n, w, marker, False, 0)
    _put(buf2, (2 + small) * 8, v, n, top, 0, True, marker)
    return bytes(out)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.locals(x=cython.ulonglong, got=cython.int, k=cython.int, off=cython.int)
def _get(buf: cython.p_uchar, pos: cython.Py_ssize_t, width: cython.int) -> cython.ulonglong:
    """The ``width``-bit value at bit ``pos`` of ``buf``."""
    x = 0
    got = 0
    while got < width:
        off = pos & 7
        k = 8 - off
        if k > width - got:
            k = width - got
        x |= ((cython.cast(cython.ulonglong, buf[pos >> 3]) >> off) & ((cython.cast(cython.ulonglong, 1) << k) - 1)) << got
        got += k
        pos += k
    return x


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _padding_clear(buf: cython.p_uchar, end: cython.Py_ssize_t) -> cython.bint:
    """Whether the bits after bit ``end`` in its byte are all zero."""
    return not (end & 7) or not (buf[end >> 3] >> (end & 7))


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, size=cython.Py_ssize_t)
def unpack_uint(data, count: cython.Py_ssize_t, width: cython.int):
    """bits.unpack_uint: ``count`` values of ``width`` (1..64) bits from exactly their packed
    bytes, as an int64 array; None for anything else, a wrong size or a padding bit set,
    so that bits raises its own error. A client decodes a dozen short columns per snapshot
    part, where numpy's fixed cost per call (unpack, copy, repack) is most of the work."""
    if width < 1 or width > 64 or count < 0:
        return None
    raw = bytearray(data)
    size = len(raw)
    if size != (count * width + 7) // 8:
        return None
    buf: cython.p_uchar = raw
    if not _padding_clear(buf, count * width):
        return None
    out = np.empty(count, np.int64)
    o: cython.longlong[:] = out
    n = count
    for i in range(n):
        o[i] = cython.cast(cython.longlong, _get(buf, i * width, width))
    return out


@cython.locals(
    n=cython.Py_ssize_t, i=cython.Py_ssize_t, size=cython.Py_ssize_t, at=cython.Py_ssize_t, head=cython.int,
    w=cython.int, top=cython.int, k=cython.Py_ssize_t, marker=cython.ulonglong, x=cython.ulonglong,
)
def unpack_escaped(data, pos: cython.Py_ssize_t, end: cython.Py_ssize_t, count: cython.Py_ssize_t):
    """bits.unpack_escaped on ``data[pos:end]``: ``(values, the position after them)``, or
    None when the bytes are not well formed (bits then reads them again and names the fault)."""
    if count < 0 or pos < 0 or end > len(data) or pos >= end:
        return None
    raw = bytearray(data[pos:end])
    size = len(raw)
    buf: cython.p_uchar = raw
    head = buf[0]
    w = head & 0x7F
    if w > 63 or (w == 0 and head & _ESCAPED):
        return None
    at = 1 + (count * w + 7) // 8  # bytes used so far
    if at > size or not _padding_clear(buf, 8 + count * w):
        return None
    out = np.empty(count, np.int64)
    o: cython.longlong[:] = out
    n = count
    for i in range(n):
        o[i] = cython.cast(cython.longlong, _get(buf, 8 + i * w, w))
    if head & _ESCAPED:
        marker = (cython.cast(cython.ulonglong, 1) << w) - 1
        k = 0
        for i in range(n):
            if cython.cast(cython.ulonglong, o[i]) == marker:
                k += 1
        if at >= size:
            return None
        top = buf[at]
        if top > 63 or top <= w or at + 1 + (k * top + 7) // 8 > size:
            return None
        if not _padding_clear(buf, (at + 1) * 8 + k * top):
            return None
        k = 0
        for i in range(n):
            if cython.cast(cython.ulonglong, o[i]) == marker:
                o[i] = cython.cast(cython.longlong, _get(buf, (at + 1) * 8 + k * top, top))
                k += 1
        at += 1 + (k * top + 7) // 8
    return out, pos + at


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, k=cython.Py_ssize_t, x=cython.longlong)
def pack_nonzero(values):
    """bits.pack_nonzero: ``(how many values are not 0, their mask as pack_uint(values != 0,
    1), pack_escaped of those values)`` in one pass, without numpy's mask and gather; None
    for a negative value or anything but a 1-d int64 array."""
    if _column(values) is None:
        return None
    v: cython.longlong[:] = values
    n = v.shape[0]
    mask = bytearray((n + 7) // 8)
    m: cython.p_uchar = mask
    k = 0
    for i in range(n):
        x = v[i]
        if x < 0:
            return None
        if x != 0:
            m[i >> 3] |= cython.cast(cython.uchar, 1 << (i & 7))
            k += 1
    if k == n:
        return k, bytes(mask), pack_escaped(values)
    kept = np.empty(k, np.int64)
    o: cython.longlong[:] = kept
    k = 0
    for i in range(n):
        if v[i] != 0:
            o[k] = v[i]
            k += 1
    return k, bytes(mask), pack_escaped(kept)


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, x=cython.longlong)
def pack_gaps(ids):
    """bits.pack_gaps: pack_escaped of ``ids[1:] - ids[:-1] - 1`` without numpy's two array
    operations; None for ids not strictly ascending or anything but a 1-d int64 array."""
    if _column(ids) is None:
        return None
    v: cython.longlong[:] = ids
    n = v.shape[0]
    if n == 0:
        return None
    gaps = np.empty(n - 1, np.int64)
    g: cython.longlong[:] = gaps
    for i in range(n - 1):
        x = v[i + 1] - v[i] - 1
        if x < 0:
            return None
        g[i] = x
    return pack_escaped(gaps)
