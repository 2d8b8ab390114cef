"""Smallest-three rotation codes, row by row: the float steps of
:class:`engine.quantize.SmallestThree` (codes to unit quaternions, quaternions to codes,
and a rotation's codes re-expressed with another component dropped).

A row of codes is ``largest, a, b, c``: the index of the dropped (largest) component and
the other three, in component order, each ``[-1/sqrt(2), 1/sqrt(2)]`` at ``scale + 1``
levels. Every step is IEEE +, -, *, / and sqrt in a fixed order, so the compiled build,
the source run as Python and the browser (web/entropy.js) compute the same codes.

Rebasing runs per snapshot on the few rotations whose largest component switched, where
numpy's per-call overhead was most of an entropy-coded snapshot's encode and decode.
Written in Cython's pure-Python mode (typed by ``smallest_three.pxd``): compiled where the
install built it, the same source runs as plain Python otherwise (slowly, row by row).
"""

import math
import numbers

import cython
import numpy as np
from cython.cimports.libc.math import sqrt  # C's where compiled, math's where not

from engine import motion  # its mask of rows

compiled = cython.compiled

_SQRT_HALF = math.sqrt(0.5)
_SPAN = 2 * _SQRT_HALF
MAX_TURNS = 64  # the most turns turned() takes

# _ROW_STEPS: the row steps below (_unit_row, _round_row, _in_range, _reach) are
# inline and unchecked where compiled: their callers index rows they loop over, columns
# they checked the tables have, and scratch rows they allocated. Called per row, a
# memoryview passed by value (a 200-byte struct copied) and each index's bounds test
# were half of a turned row's instructions (callgrind). The same IEEE steps either way.


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _kept(drop: cython.Py_ssize_t, i: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The component that is the ``i``-th kept one (0..2) when ``drop`` is dropped."""
    return i if i < drop else i + 1


@cython.cfunc
@cython.inline
@cython.boundscheck(False)  # the callers' indexes are in range (see _ROW_STEPS)
@cython.wraparound(False)
@cython.exceptval(check=False)
@cython.locals(old=cython.Py_ssize_t, i=cython.Py_ssize_t, t=cython.double, s=cython.double)
def _unit_row(codes: cython.longlong[:, :], r: cython.Py_ssize_t, col: cython.Py_ssize_t, scale: cython.double, q: cython.double[:, ::1], at: cython.Py_ssize_t) -> cython.void:
    """Row ``r`` of ``codes`` (its columns ``col:col + 4``) as a unit quaternion into row
    ``at`` of ``q``: the dropped component is what the other three leave, positive."""
    old = codes[r, col] & 3
    s = 0.0
    for i in range(3):
        t = codes[r, col + 1 + i] / scale * _SPAN - _SQRT_HALF
        q[at, _kept(old, i)] = t
        s += t * t
    q[at, old] = sqrt(max(0.0, 1.0 - s))


@cython.cfunc
@cython.inline
@cython.boundscheck(False)  # the callers' indexes are in range (see _ROW_STEPS)
@cython.wraparound(False)
@cython.exceptval(check=False)
@cython.locals(sign=cython.double, i=cython.Py_ssize_t, x=cython.double)
def _round_row(q: cython.double[:, ::1], qr: cython.Py_ssize_t, drop: cython.Py_ssize_t, scale: cython.double, out: cython.longlong[:, :], r: cython.Py_ssize_t, at: cython.Py_ssize_t) -> cython.void:
    """The three kept components of quaternion row ``qr`` with ``drop`` dropped (made
    positive) as codes, into ``out[r, at:at + 3]``."""
    sign = -1.0 if q[qr, drop] < 0 else 1.0
    for i in range(3):
        x = (q[qr, _kept(drop, i)] * sign + _SQRT_HALF) / _SPAN * scale + 0.5
        # Clipped before the floor (the same codes as after it, scale being whole), which
        # on what is left, never negative, is the conversion to an integer.
        out[r, at + i] = cython.cast(cython.longlong, min(max(x, 0.0), scale))


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t)
def unit(codes, scale: cython.double):
    """Rows of codes (n, 4) int64 as unit quaternions (n, 4) float64."""
    codes = np.ascontiguousarray(codes, np.int64)
    n = _rows(codes)
    out = np.empty((n, 4), np.float64)
    c: cython.longlong[:, ::1] = codes
    q: cython.double[:, ::1] = out
    for r in range(n):
        _unit_row(c, r, 0, scale, q, r)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t)
def to_codes(quaternions, largest, scale: cython.double):
    """Quaternions (n, 4) float64 as codes (n, 4) int64 with component ``largest[r]``
    (0..3) of each dropped."""
    quaternions = np.ascontiguousarray(quaternions, np.float64)
    drop = _dropped(largest, _rows(quaternions))
    n = len(drop)
    out = np.empty((n, 4), np.int64)
    q: cython.double[:, ::1] = quaternions
    d: cython.longlong[::1] = drop
    o: cython.longlong[:, ::1] = out
    for r in range(n):
        o[r, 0] = d[r]
        _round_row(q, r, d[r], scale, o, r, 1)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t)
def rebased(codes, largest, scale: cython.double):
    """The three components (n, 3) int64 of rotations ``codes`` (n, 4) re-expressed with
    component ``largest[r]`` (0..3) dropped: ``to_codes(unit(codes), largest)[:, 1:]``
    without the arrays between."""
    codes = np.ascontiguousarray(codes, np.int64)
    drop = _dropped(largest, _rows(codes))
    n = len(drop)
    quaternions = np.empty((n, 4), np.float64)
    out = np.empty((n, 3), np.int64)
    c: cython.longlong[:, ::1] = codes
    q: cython.double[:, ::1] = quaternions
    d: cython.longlong[::1] = drop
    o: cython.longlong[:, ::1] = out
    for r in range(n):
        _unit_row(c, r, 0, scale, q, r)
        _round_row(q, r, d[r], scale, o, r, 0)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t, i=cython.Py_ssize_t, turn=cython.longlong)
def delta(base, codes, scale: cython.double, out=None):
    """(n, 4) int64 deltas of rotations ``codes`` against ``base`` (codes, (n, 4)): the
    largest index's turn (0..3, mod 4), then the three components less the baseline's,
    re-expressed first with the new index dropped where it turned. ``out``: an (n, 4)
    int64 array (a view into a wider table will do) to write them to."""
    base, codes, out, quaternions = _prepared(base, codes, out)
    n = base.shape[0]
    b: cython.longlong[:, :] = base
    c: cython.longlong[:, :] = codes
    o: cython.longlong[:, :] = out
    q: cython.double[:, ::1] = quaternions
    for r in range(n):
        turn = (c[r, 0] - b[r, 0]) & 3
        o[r, 0] = turn
        if turn:
            _unit_row(b, r, 0, scale, q, r)
            _round_row(q, r, c[r, 0] & 3, scale, o, r, 1)
            for i in range(1, 4):
                o[r, i] = c[r, i] - o[r, i]
        else:
            for i in range(1, 4):
                o[r, i] = c[r, i] - b[r, i]
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t, i=cython.Py_ssize_t, largest=cython.longlong)
def undelta(base, deltas, scale: cython.double, out=None):
    """Inverse of :func:`delta`, for any deltas (a hostile peer's: sums wrap as int64)."""
    base, deltas, out, quaternions = _prepared(base, deltas, out)
    n = base.shape[0]
    b: cython.longlong[:, :] = base
    d: cython.longlong[:, :] = deltas
    o: cython.longlong[:, :] = out
    q: cython.double[:, ::1] = quaternions
    for r in range(n):
        largest = (b[r, 0] + d[r, 0]) & 3
        o[r, 0] = largest
        if largest != b[r, 0] & 3:
            _unit_row(b, r, 0, scale, q, r)
            _round_row(q, r, largest, scale, o, r, 1)
            for i in range(1, 4):
                o[r, i] = o[r, i] + d[r, i]
        else:
            for i in range(1, 4):
                o[r, i] = b[r, i] + d[r, i]
    return out


@cython.cfunc
@cython.inline
@cython.boundscheck(False)  # the callers' indexes are in range (see _ROW_STEPS)
@cython.wraparound(False)
@cython.exceptval(check=False)
def _in_range(codes: cython.longlong[:, ::1], r: cython.Py_ssize_t, col: cython.Py_ssize_t, scale: cython.double) -> cython.bint:
    """Whether row ``r``'s codes (columns ``col:col + 4``) are a quantizer's: index 0..3,
    components 0..scale."""
    return (0 <= codes[r, col] <= 3 and 0 <= codes[r, col + 1] <= scale and 0 <= codes[r, col + 2] <= scale
            and 0 <= codes[r, col + 3] <= scale)


def extrapolated(base, older, turns: cython.Py_ssize_t, still: cython.double, scale: cython.double, rows=None, out=None):
    """Rotations ``base`` (codes, (n, 4)) turned on ``turns`` more times by the turn
    each made since ``older`` (codes, (n, 4)): the codes (n, 4) int64 a predictor may
    expect. A turn whose quaternion's w is ``still`` or more (a jitter of the codes, not
    a spin), and a row outside ``rows`` (bool (n,), when given), keep the baseline's
    codes. ``out``: an (n, 4) int64 array (a view into a wider table will do) to write
    them to. :func:`turned` with every row written (a predictor whose output already
    holds the baseline's codes calls that, on its whole tables)."""
    base, older, out = _prepared(base, older, out, False)
    out[...] = base
    turned(base, older, 0, turns, still, scale, out, rows)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t, i=cython.Py_ssize_t, k=cython.Py_ssize_t, drop=cython.Py_ssize_t,
               big=cython.double, times=cython.Py_ssize_t, moved=cython.Py_ssize_t, every=cython.bint,
               ax=cython.double, ay=cython.double, az=cython.double, aw=cython.double, px=cython.double, py=cython.double,
               pz=cython.double, pw=cython.double, x=cython.double, y=cython.double, z=cython.double, w=cython.double,
               lift=cython.Py_ssize_t, top=cython.longlong, up_turns=cython.Py_ssize_t, up_still=cython.double,
               row_turns=cython.Py_ssize_t, row_still=cython.double)
def turned(base, older, col: cython.Py_ssize_t, turns: cython.Py_ssize_t, still: cython.double, scale: cython.double, out, rows=None,
           aloft=None):
    """Spinning bodies kept spinning, for a game's predictor: each rotation in columns
    ``col:col + 4`` of ``base`` (codes, (n, columns) int64: a snapshot's whole table)
    that turned since ``older`` (the same columns of the snapshot before it, same shape)
    is turned on ``turns`` more times by that turn, into the same columns of ``out``
    (int64, ``base``'s shape: a copy of the baseline, or ``base`` itself). A turn whose
    quaternion's w is ``still`` or more (a jitter of the codes, not a spin), a row
    outside ``rows`` (a bool mask (n,), when given), a row that did not turn and codes
    no quantizer makes (a hostile baseline's) are not written, nor are other columns:
    most of a scene rests, and its rows cost one comparison. Returns how many rows were
    written.

    The turn is taken the short way round, and only +, -, * and sqrt are used: server
    and client compute the same codes. At most :data:`MAX_TURNS` turns are taken (the
    ticks ahead come from a peer's packet: a huge count must not stall the loop, and a
    spin guessed that far ahead is no guess). One pass over the rows in C: a predictor
    need not gather the few that turned first (numpy's per-call overhead was most of the
    work).

    ``aloft`` (optional, ``(column, height, turns, still)``): rows whose ``base`` code in
    that column is above that height are turned with those ``turns`` and ``still``
    instead (a body in the air spins on freely), in the same pass: the same codes as a
    second call on those rows alone, without a mask and a second pass to make them."""
    base = np.ascontiguousarray(base, np.int64)
    older = np.ascontiguousarray(older, np.int64)
    if base.ndim != 2 or older.shape != base.shape:
        raise ValueError(f"two tables of codes of one shape (rows, columns) expected, not {base.shape} and {older.shape}")
    n = base.shape[0]
    if not 0 <= col <= base.shape[1] - 4:
        raise ValueError(f"columns {col}:{col + 4} of a table of {base.shape[1]}")
    if not isinstance(out, np.ndarray) or out.shape != base.shape or out.dtype != np.int64:
        raise ValueError(f"out must be int64 {base.shape}, not {getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    every = rows is None
    mask = motion._EVERY if every else motion._mask(rows, n)
    turns = min(turns, MAX_TURNS)
    lift, top, up_turns, up_still = -1, 0, 0, 0.0  # no aloft: every row turns alike
    if aloft is not None:
        try:
            column, height, count, free = aloft  # (unpacked: an index out of range is not checked here, compiled)
            column, height, count = [motion._integer(value, "aloft") for value in (column, height, count)]
            if not isinstance(free, numbers.Real):  # (float() would read a string, as the browser's twin does not)
                raise TypeError(free)
            up_still = float(free)
        except (TypeError, ValueError):
            raise ValueError(f"aloft is (a column, a height code, turns, still), not {aloft!r}") from None
        motion._check_line(column, height, base.shape[1], aloft)
        if count > 0:  # (else as a second call turning nothing)
            lift, top, up_turns = column, height, min(count, MAX_TURNS)
    if turns <= 0 and lift < 0:
        return 0
    scratch = np.empty((2, 4), np.float64)  # rows: the baseline's (then turned on), the older's
    b: cython.longlong[:, ::1] = base
    c: cython.longlong[:, ::1] = older
    o: cython.longlong[:, :] = out
    m: cython.uchar[::1] = mask
    q: cython.double[:, ::1] = scratch
    moved = 0
    for r in range(n):
        if (b[r, col] == c[r, col] and b[r, col + 1] == c[r, col + 1] and b[r, col + 2] == c[r, col + 2]
                and b[r, col + 3] == c[r, col + 3]) or not (every or m[r]):
            continue
        row_turns, row_still = turns, still
        if lift >= 0 and b[r, lift] > top:
            row_turns, row_still = up_turns, up_still
        if row_turns <= 0 or not (_in_range(b, r, col, scale) and _in_range(c, r, col, scale)):
            continue
        _unit_row(b, r, col, scale, q, 0)
        _unit_row(c, r, col, scale, q, 1)
        # The turn from older to base, base * conjugate(older), then that turn after the
        # rotation so far, ``turns`` times: one quaternion product (x y z w, a * p) in C
        # locals, its first pass the turn itself.
        ax, ay, az, aw = q[0, 0], q[0, 1], q[0, 2], q[0, 3]
        px, py, pz, pw = -q[1, 0], -q[1, 1], -q[1, 2], q[1, 3]
        for times in range(-1, row_turns):
            x = aw * px + ax * pw + ay * pz - az * py
            y = aw * py - ax * pz + ay * pw + az * px
            z = aw * pz + ax * py - ay * px + az * pw
            w = aw * pw - ax * px - ay * py - az * pz
            if times >= 0:
                px, py, pz, pw = x, y, z, w
                continue
            if w < 0:  # the short way round
                x, y, z, w = -x, -y, -z, -w
            if w >= row_still:
                break
            px, py, pz, pw = ax, ay, az, aw  # the baseline's, turned on from here
            ax, ay, az, aw = x, y, z, w
        if times < 0:
            continue  # a jitter of the codes, not a spin
        q[0, 0], q[0, 1], q[0, 2], q[0, 3] = px, py, pz, pw
        drop = 0
        big = abs(px)
        for k in range(1, 4):
            if abs(q[0, k]) > big:
                big = abs(q[0, k])
                drop = k
        o[r, col] = drop
        _round_row(q, 0, drop, scale, o, r, col + 1)
        moved += 1
    return moved


@cython.cfunc
@cython.inline
@cython.boundscheck(False)  # the callers' indexes are in range (see _ROW_STEPS)
@cython.wraparound(False)
@cython.exceptval(check=False)
@cython.locals(x=cython.double, y=cython.double, z=cython.double, w=cython.double)
def _reach(codes: cython.longlong[:, :], r: cython.Py_ssize_t, scale: cython.double, q: cython.double[:, ::1]) -> cython.double:
    """Row ``r``'s :func:`uprightness` (``q``: a (1, 4) scratch row): the rotation
    matrix's bottom row, each axis's vertical part, summed as magnitudes."""
    _unit_row(codes, r, 0, scale, q, 0)
    x = q[0, 0]
    y = q[0, 1]
    z = q[0, 2]
    w = q[0, 3]
    return abs(2.0 * (x * z - w * y)) + abs(2.0 * (y * z + w * x)) + abs(1.0 - 2.0 * (x * x + y * y))


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t)
def uprightness(codes, scale: cython.double):
    """Per rotation (codes, (n, 4)): how far a unit cube turned by it reaches below its
    centre, the sum of the vertical parts of its three axes (1 lying flat, sqrt(2) on an
    edge, sqrt(3) on a corner; a box resting on the ground stands that many half-sizes
    high). float64 (n,), in fixed IEEE steps (the same compiled or not); codes no
    quantizer makes give some finite number."""
    codes = np.asarray(codes, np.int64)
    n = _rows(codes)
    out = np.empty(n, np.float64)
    scratch = np.empty((1, 4), np.float64)
    c: cython.longlong[:, :] = codes
    o: cython.double[::1] = out
    q: cython.double[:, ::1] = scratch
    for r in range(n):
        o[r] = _reach(c, r, scale, q)
    return out


def _prepared(a, b, out=None, quaternions=True) -> tuple:
    """Two (n, 4) tables of codes as int64 (views of wider tables as they are: copying
    them cost more than the rows' work), the (n, 4) int64 result (``out``, or new) and,
    with ``quaternions``, the (n, 4) float64 quaternions to work in."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    n = _rows(a)
    if a.shape != b.shape:
        raise ValueError(f"rows of codes {a.shape} and {b.shape}")
    if out is None:
        out = np.empty((n, 4), np.int64)
    elif out.shape != a.shape or out.dtype != np.int64:
        raise ValueError(f"out {out.dtype} {out.shape} for rows of codes {a.shape}")
    if not quaternions:
        return a, b, out
    return a, b, out, np.empty((n, 4), np.float64)


def _dropped(largest, rows: int) -> np.ndarray:
    """The component to drop per row, 0..3 (int64, contiguous)."""
    drop = np.ascontiguousarray(largest, np.int64) & 3
    if drop.shape != (rows,):
        raise ValueError(f"{rows} rows, {drop.shape} largest indexes")
    return drop


def _rows(a) -> int:
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"rows of 4 expected, not {a.shape}")
    return a.shape[0]


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(n=cython.Py_ssize_t, r=cython.Py_ssize_t, lift=cython.double)
def standing(expected, known, heights, below: cython.longlong, half: cython.double, ground: cython.longlong, scale: cython.double, out):
    """Boxes put back on the ground where they tumbled: for each row whose rotation
    ``known`` (codes, (n, 4)) is not ``expected`` (codes, (n, 4)) and whose height
    ``heights[r]`` (int64 (n,)) is below ``below``, ``out[r]`` (int64 (n,), views of
    wider tables will do) becomes ``ground`` plus ``half`` times the rotation's
    :func:`uprightness` clipped to 0..2, rounded (``int(lift * half + 0.5)``); other rows
    are left as they are. One pass in C, the same IEEE steps as uprightness and numpy's
    ``np.clip(lift, 0, 2) * half + 0.5`` (a game's height guess over its rows had been a
    dozen numpy calls); any codes give a height in ``ground + [0, 2 * half + 0.5]``."""
    expected = np.asarray(expected, np.int64)
    known = np.asarray(known, np.int64)
    n = _rows(expected)
    if known.shape != expected.shape:
        raise ValueError(f"rows of codes {expected.shape} and {known.shape}")
    if heights.shape != (n,) or out.shape != (n,) or heights.dtype != np.int64 or out.dtype != np.int64:
        raise ValueError(f"{n} rows of codes, heights {heights.dtype} {heights.shape}, out {out.dtype} {out.shape}")
    scratch = np.empty((1, 4), np.float64)
    e: cython.longlong[:, :] = expected
    k: cython.longlong[:, :] = known
    h: cython.longlong[:] = heights
    o: cython.longlong[:] = out
    q: cython.double[:, ::1] = scratch
    for r in range(n):
        if h[r] >= below or (e[r, 0] == k[r, 0] and e[r, 1] == k[r, 1] and e[r, 2] == k[r, 2] and e[r, 3] == k[r, 3]):
            continue
        lift = min(max(_reach(k, r, scale, q), 0.0), 2.0)
        o[r] = ground + cython.cast(cython.longlong, lift * half + 0.5)
    return out
