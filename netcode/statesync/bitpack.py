"""Snapshot bit packing, compiled: :mod:`netcode.statesync.bits`' hot functions as C loops.

A snapshot encode packs a dozen short columns (the ids and values of the hundred-odd
entities that changed), and numpy spends most of each call on fixed overhead: a sort, a
search, an unpack and a pack per column, each for a few hundred values. These functions
do the same in one or two passes over the column, with the same results byte for byte
(``tests/test_bits.py`` compares them on random columns).

Each takes a 1-d int64 array (any stride), or for the ``*_columns`` functions a 2-d one
(every column in one call), and returns None for anything else, or for a negative value;
the callers in :mod:`netcode.statesync.bits` then use their numpy path. Written in
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


def _array(values, ndim: cython.int):
    """``values`` if it is an int64 array of ``ndim`` dimensions, else None."""
    if type(values) is not np.ndarray or values.ndim != ndim or values.dtype != _INT64:
        return None
    return values


# The internals work on column ``c`` of a 2-d view, so that one acquired view serves every
# column of a table (acquiring a typed view costs more than a C loop over a few hundred
# values); the 1-d functions pass their column as ``v[:, None]``. Their loops index only
# rows below ``t.shape[0]`` of a column below ``t.shape[1]``: no bounds checks.


@cython.cfunc
@cython.exceptval(check=False)
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(
    rows=cython.Py_ssize_t, i=cython.Py_ssize_t, n=cython.Py_ssize_t, x=cython.longlong, seen=cython.ulonglong, top=cython.int, w=cython.int,
    best_w=cython.int, chosen_w=cython.int, escaped=cython.Py_ssize_t, cost=cython.Py_ssize_t, best=cython.Py_ssize_t, b=cython.int,
)
def _choose(t: cython.longlong[:, :], c: cython.Py_ssize_t, skip_zeros: cython.bint, choose: cython.bint) -> cython.longlong:
    """How pack_escaped packs column ``c`` of ``t`` (only its values other than 0 with
    ``skip_zeros``), as ``n << 16 | top << 8 | w``: how many values, the largest one's bit
    length, and the width that packs them smallest (escapes used when ``w < top``); -1 for
    a negative value. Without ``choose``, ``w`` is ``top`` and no histogram is built
    (width_of needs only ``top``).

    The escaped count at width w is how many values are >= 2**w - 1, that is how many have
    ``(x + 1).bit_length() > w``: one pass builds the histogram of those lengths."""
    hist = cython.declare(cython.Py_ssize_t[66])
    if not cython.compiled:
        hist = [0] * 66
    for b in range(66):
        hist[b] = 0
    rows = t.shape[0]
    n = 0
    seen = 0
    for i in range(rows):
        x = t[i, c]
        if x < 0:
            return -1
        if skip_zeros and x == 0:
            continue
        n += 1
        seen |= x
        if choose:
            hist[_bit_length(cython.cast(cython.ulonglong, x) + 1)] += 1
    top = _bit_length(seen)  # the largest value's: no value has a higher bit set
    chosen_w = top
    if choose and n and top > 1:
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
            chosen_w = best_w
    return (cython.cast(cython.longlong, n) << 16) | (top << 8) | chosen_w


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(i=cython.Py_ssize_t, p=cython.Py_ssize_t, x=cython.ulonglong, low=cython.ulonglong, acc=cython.ulonglong, have=cython.int, k=cython.int)
def _put(out: cython.p_uchar, at: cython.Py_ssize_t, t: cython.longlong[:, :], c: cython.Py_ssize_t, width: cython.int, least: cython.ulonglong, cap: cython.ulonglong) -> cython.Py_ssize_t:
    """Pack column ``c`` of ``t`` at ``width`` (1..64) bits into ``out`` (zeroed) from byte
    ``at``: the values at or above ``least``, those above ``cap`` as ``cap`` (the escape
    marker), the low ``width`` bits of each. The byte after the last one written.

    The bits gather in a 64-bit word whose whole bytes go out after each value: fewer than
    8 bits wait in it between values."""
    low = _NO_CAP if width == 64 else (cython.cast(cython.ulonglong, 1) << width) - 1
    p = at
    acc = 0
    have = 0  # bits waiting in acc, < 8 between values
    for i in range(t.shape[0]):
        x = cython.cast(cython.ulonglong, t[i, c])  # >= 0: the callers checked
        if x < least:
            continue
        if x > cap:
            x = cap
        x &= low
        acc |= x << have
        if have + width > 64:  # the word is full: its 8 bytes, then the bits of x that did not fit
            for k in range(8):
                out[p] = cython.cast(cython.uchar, (acc >> (8 * k)) & 0xFF)
                p += 1
            acc = x >> (64 - have)
            have += width - 64
        else:
            have += width
        while have >= 8:
            out[p] = cython.cast(cython.uchar, acc & 0xFF)
            p += 1
            acc >>= 8
            have -= 8
    if have:
        out[p] = cython.cast(cython.uchar, acc & 0xFF)
        p += 1
    return p


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(
    chosen=cython.longlong, n=cython.Py_ssize_t, w=cython.int, top=cython.int, least=cython.ulonglong,
    marker=cython.ulonglong, small=cython.Py_ssize_t, k=cython.Py_ssize_t, i=cython.Py_ssize_t,
)
def _escaped(t: cython.longlong[:, :], c: cython.Py_ssize_t, skip_zeros: cython.bint):
    """pack_escaped of column ``c`` of ``t`` (of its values other than 0 with ``skip_zeros``);
    None for a negative value."""
    chosen = _choose(t, c, skip_zeros, True)
    if chosen < 0:
        return None
    n = chosen >> 16
    top = (chosen >> 8) & 0xFF
    w = chosen & 0xFF
    least = 1 if skip_zeros else 0
    if w == top:
        out = bytearray(1 + (n * w + 7) // 8)
        out[0] = w
        buf: cython.p_uchar = out
        if w:
            _put(buf, 1, t, c, w, least, _NO_CAP)
        return bytes(out)
    marker = (cython.cast(cython.ulonglong, 1) << w) - 1  # >= 1, so zeros are never escaped
    k = 0
    for i in range(t.shape[0]):
        if cython.cast(cython.ulonglong, t[i, c]) >= marker:
            k += 1
    small = (n * w + 7) // 8
    out = bytearray(1 + small + 1 + (k * top + 7) // 8)
    out[0] = w | _ESCAPED
    out[1 + small] = top
    buf2: cython.p_uchar = out
    _put(buf2, 1, t, c, w, least, marker)
    _put(buf2, 2 + small, t, c, top, marker, _NO_CAP)
    return bytes(out)


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(rows=cython.Py_ssize_t, i=cython.Py_ssize_t, k=cython.Py_ssize_t, x=cython.longlong)
def _nonzero(t: cython.longlong[:, :], c: cython.Py_ssize_t):
    """pack_nonzero of column ``c`` of ``t``: the escaped values skip the zeros in place,
    with no copy of the others; None for a negative value."""
    rows = t.shape[0]
    mask = bytearray((rows + 7) // 8)
    m: cython.p_uchar = mask
    k = 0
    for i in range(rows):
        x = t[i, c]
        if x < 0:
            return None
        if x != 0:
            m[i >> 3] |= cython.cast(cython.uchar, 1 << (i & 7))
            k += 1
    return k, bytes(mask), _escaped(t, c, True)


@cython.locals(chosen=cython.longlong)
def width_of(values):
    """bits.width_of: the largest value's bit length (0 when empty); None for a negative
    value or anything but a 1-d int64 array."""
    if _array(values, 1) is None:
        return None
    v: cython.longlong[:] = values
    chosen = _choose(v[:, None], 0, False, False)
    if chosen < 0:
        return None
    return (chosen >> 8) & 0xFF


@cython.locals(n=cython.Py_ssize_t)
def pack_uint(values, width: cython.int):
    """bits.pack_uint (the low ``width`` bits of each value); None for a negative value,
    a width outside 0..64 or anything but a 1-d int64 array."""
    if _array(values, 1) is None or width < 0 or width > 64:
        return None
    v: cython.longlong[:] = values
    t: cython.longlong[:, :] = v[:, None]
    if _choose(t, 0, False, False) < 0:
        return None
    n = t.shape[0]
    if width == 0 or n == 0:
        return b""
    out = bytearray((n * width + 7) // 8)
    buf: cython.p_uchar = out
    _put(buf, 0, t, 0, width, 0, _NO_CAP)
    return bytes(out)


@cython.locals(chosen=cython.longlong)
def choose_width(values):
    """bits._choose_width: ``(w, top)``, escapes used when ``w < top``; None for a negative
    value or anything but a 1-d int64 array."""
    if _array(values, 1) is None:
        return None
    v: cython.longlong[:] = values
    chosen = _choose(v[:, None], 0, False, True)
    if chosen < 0:
        return None
    return chosen & 0xFF, (chosen >> 8) & 0xFF


def pack_escaped(values):
    """bits.pack_escaped; None for a negative value or anything but a 1-d int64 array."""
    if _array(values, 1) is None:
        return None
    v: cython.longlong[:] = values
    return _escaped(v[:, None], 0, False)


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


def pack_nonzero(values):
    """bits.pack_nonzero: ``(how many values are not 0, their mask as pack_uint(values != 0,
    1), pack_escaped of those values)``, without numpy's mask and gather; None for a
    negative value or anything but a 1-d int64 array."""
    if _array(values, 1) is None:
        return None
    v: cython.longlong[:] = values
    return _nonzero(v[:, None], 0)


@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, x=cython.longlong)
def pack_gaps(ids):
    """bits.pack_gaps: pack_escaped of ``ids[1:] - ids[:-1] - 1`` without numpy's two array
    operations; None for ids not strictly ascending or anything but a 1-d int64 array."""
    if _array(ids, 1) is None:
        return None
    v: cython.longlong[:] = ids
    n = v.shape[0]
    if n == 0:
        return None
    gaps = np.empty((n - 1, 1), np.int64)
    g: cython.longlong[:, :] = gaps
    for i in range(n - 1):
        x = v[i + 1] - v[i] - 1
        if x < 0:
            return None
        g[i, 0] = x
    return _escaped(g, 0, False)


_WIDTHS, _ESCAPES, _NONZEROS = 0, 1, 2  # what _columns gives of each column


@cython.locals(c=cython.Py_ssize_t, chosen=cython.longlong, kind=cython.int)
def _columns(table, kind):
    """Of each column of a 2-d int64 ``table`` (any strides, acquired once): its width_of,
    pack_escaped or pack_nonzero, by ``kind``; None for a negative value or anything else."""
    if _array(table, 2) is None:
        return None
    t: cython.longlong[:, :] = table
    out = []
    for c in range(t.shape[1]):
        if kind == _WIDTHS:
            chosen = _choose(t, c, False, False)
            got = None if chosen < 0 else (chosen >> 8) & 0xFF
        elif kind == _ESCAPES:
            got = _escaped(t, c, False)
        else:
            got = _nonzero(t, c)
        if got is None:
            return None
        out.append(got)
    return out


def width_of_columns(table):
    """bits.width_of_columns: ``[width_of(col) for col in table.T]`` in one call (a
    snapshot's size bound); None for a negative value or anything but a 2-d int64 array."""
    return _columns(table, _WIDTHS)


def pack_escaped_columns(table):
    """bits.pack_escaped_columns: ``[pack_escaped(col) for col in table.T]`` in one call (a
    snapshot's create codes); None for a negative value or anything but a 2-d int64 array."""
    return _columns(table, _ESCAPES)


def pack_nonzero_columns(table):
    """bits.pack_nonzero_columns: ``[pack_nonzero(col) for col in table.T]`` in one call (a
    snapshot's update deltas); None for a negative value or anything but a 2-d int64 array."""
    return _columns(table, _NONZEROS)
