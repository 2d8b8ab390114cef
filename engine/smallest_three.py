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

import cython
import numpy as np
from cython.cimports.libc.math import sqrt  # C's where compiled, math's where not

compiled = cython.compiled

_SQRT_HALF = math.sqrt(0.5)
_SPAN = 2 * _SQRT_HALF


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _kept(drop: cython.Py_ssize_t, i: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The component that is the ``i``-th kept one (0..2) when ``drop`` is dropped."""
    return i if i < drop else i + 1


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(old=cython.Py_ssize_t, i=cython.Py_ssize_t, t=cython.double, s=cython.double)
def _unit_row(codes: cython.longlong[:, :], r: cython.Py_ssize_t, scale: cython.double, q: cython.double[:, ::1]) -> cython.void:
    """Row ``r`` of ``codes`` as a unit quaternion into row ``r`` of ``q``: the dropped
    component is what the other three leave, positive."""
    old = codes[r, 0] & 3
    s = 0.0
    for i in range(3):
        t = codes[r, 1 + i] / scale * _SPAN - _SQRT_HALF
        q[r, _kept(old, i)] = t
        s += t * t
    q[r, old] = sqrt(max(0.0, 1.0 - s))


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(sign=cython.double, i=cython.Py_ssize_t, x=cython.double)
def _round_row(q: cython.double[:, ::1], r: cython.Py_ssize_t, drop: cython.Py_ssize_t, scale: cython.double, out: cython.longlong[:, :], at: cython.Py_ssize_t) -> cython.void:
    """The three kept components of quaternion row ``r`` with ``drop`` dropped (made
    positive) as codes, into ``out[r, at:at + 3]``."""
    sign = -1.0 if q[r, drop] < 0 else 1.0
    for i in range(3):
        x = (q[r, _kept(drop, i)] * sign + _SQRT_HALF) / _SPAN * scale + 0.5
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
        _unit_row(c, r, scale, q)
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
        _round_row(q, r, d[r], scale, o, 1)
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
        _unit_row(c, r, scale, q)
        _round_row(q, r, d[r], scale, o, 0)
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
            _unit_row(b, r, scale, q)
            _round_row(q, r, c[r, 0] & 3, scale, o, 1)
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
            _unit_row(b, r, scale, q)
            _round_row(q, r, largest, scale, o, 1)
            for i in range(1, 4):
                o[r, i] = o[r, i] + d[r, i]
        else:
            for i in range(1, 4):
                o[r, i] = b[r, i] + d[r, i]
    return out


def _prepared(a, b, out=None) -> tuple:
    """Two (n, 4) tables of codes as int64 (views of wider tables as they are: copying
    them cost more than the rows' work), the (n, 4) int64 result (``out``, or new) and
    the (n, 4) float64 quaternions to work in."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    n = _rows(a)
    if a.shape != b.shape:
        raise ValueError(f"rows of codes {a.shape} and {b.shape}")
    if out is None:
        out = np.empty((n, 4), np.int64)
    elif out.shape != a.shape or out.dtype != np.int64:
        raise ValueError(f"out {out.dtype} {out.shape} for rows of codes {a.shape}")
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
