"""Integer motion, row by row, for a game's predictor (see ``predictor`` in
:mod:`engine.replication`): the rows of a table of codes that moved between two snapshots,
carried on by their velocity, in one compiled pass.

A predictor runs once per snapshot at each end (server and client). Written with numpy,
finding the few rows that moved among a scene's hundreds, gathering them, scaling their
velocity and scattering them back is a dozen calls whose fixed overhead is most of the
work; here it is one pass over the rows in C. Integers only, so both ends (compiled or
not) compute the same codes.

Written in Cython's pure-Python mode (typed by ``motion.pxd``): compiled where the
install built it, the same source runs as plain Python otherwise (slowly, row by row).
"""

import operator

import cython
import numpy as np

compiled = cython.compiled

# A C constant where compiled (motion.pxd): the largest codes moved; beyond it (or where
# the step, velocity times num, would be beyond 2**62) a value keeps the baseline's.
_VALUES = cython.cast(cython.longlong, 1) << 61


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.cdivision(False)  # // is Python's (and numpy's) floor division, negative values too
@cython.locals(n=cython.Py_ssize_t, w=cython.Py_ssize_t, r=cython.Py_ssize_t, c=cython.Py_ssize_t,
               moved=cython.Py_ssize_t, now=cython.longlong, was=cython.longlong, v=cython.longlong,
               k=cython.Py_ssize_t, x=cython.longlong, every=cython.bint, s=cython.longlong, sliding=cython.bint,
               lift=cython.Py_ssize_t, top=cython.longlong)
def extrapolated(base, older, c0: cython.Py_ssize_t, c1: cython.Py_ssize_t, num, den, out, rows=None, low=None, slow=None, aloft=None):
    """Carry on the rows that moved: for each row ``r`` (of ``rows``, a bool mask (n,),
    when given) whose columns ``c0:c1`` of ``base`` (codes (n, columns) int64) differ
    from ``older``'s (the snapshot before it, same shape) in any column, and each column
    ``c`` there, ``out[r, c]`` (int64, ``base``'s shape; a copy of ``base``, or ``base``
    itself) becomes ``base[r, c] + (base[r, c] - older[r, c]) * num[k] // den[k]`` with
    ``k = c - c0``: the velocity scaled by ``num / den`` (a predictor's ticks ahead over
    the ticks between the snapshots, times any damping), floor division as Python's and
    numpy's ``//`` (towards minus infinity, for negative velocities too). ``num`` and
    ``den`` are ints (every column) or one per column; ``den`` at least 1 (``num``
    within +-2**62, ``den`` at most 2**62).

    ``low`` (optional, one int per column, or an int): a floor the prediction does not
    go through, ``max(prediction, min(low[k], base[r, c]))`` (a body does not sink into
    the ground; one already below it does not sink further). ``slow`` (optional, one int
    0..2**62 per column, or an int): codes the step loses towards zero, not past it,
    before the floor (friction: a sliding body comes short, or stops); with ``aloft``, a
    (column, height) pair, only in rows whose ``base`` code in that column is at most that
    height (a body in the air slides free). Other rows and columns of ``out`` are not
    touched.

    Any codes (a hostile peer's baseline) give codes: a value beyond +-2**61, or whose
    step ``velocity * num`` would be beyond 2**62, keeps the baseline's (no int64
    overflow, the same compiled or not). Returns how many rows moved."""
    base = np.ascontiguousarray(base, np.int64)
    older = np.ascontiguousarray(older, np.int64)
    if base.ndim != 2 or older.shape != base.shape:
        raise ValueError(f"two tables of codes of one shape (rows, columns) expected, not {base.shape} and {older.shape}")
    n = base.shape[0]
    if not 0 <= c0 <= c1 <= base.shape[1]:
        raise ValueError(f"columns {c0}:{c1} of a table of {base.shape[1]}")
    if not isinstance(out, np.ndarray) or out.shape != base.shape or out.dtype != np.int64:
        raise ValueError(f"out must be int64 {base.shape}, not {getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    w = c1 - c0
    lift, top = -1, 0  # no aloft: every row slows
    if aloft is not None:
        try:
            column, height = [_integer(value, "aloft") for value in aloft]
        except (TypeError, ValueError):
            raise ValueError(f"aloft is (a column, a height code), not {aloft!r}") from None
        _check_line(column, height, base.shape[1], aloft)
        lift, top = column, height
    try:
        p = _known[num, den, low, slow, w]  # a game passes the same few each snapshot
    except (KeyError, TypeError):  # new, or unhashable (lists)
        p = _parameters(num, den, low, slow, w)
        if len(_known) >= 64:
            _known.clear()
        try:
            _known[num, den, low, slow, w] = p
        except TypeError:
            pass
    every = rows is None
    mask = _EVERY if every else _mask(rows, n)
    b: cython.longlong[:, ::1] = base
    o: cython.longlong[:, ::1] = older
    t: cython.longlong[:, :] = out
    m: cython.uchar[::1] = mask
    q: cython.longlong[:, ::1] = p
    moved = 0
    for r in range(n):
        if not every and not m[r]:
            continue
        for c in range(c0, c1):
            if b[r, c] != o[r, c]:
                break
        else:
            continue
        moved += 1
        sliding = lift < 0 or b[r, lift] <= top
        for c in range(c0, c1):
            k = c - c0
            now = b[r, c]
            was = o[r, c]
            x = now
            if -_VALUES <= now <= _VALUES and -_VALUES <= was <= _VALUES:
                v = now - was
                if -q[3, k] <= v <= q[3, k]:
                    v = v * q[0, k]
                    s = v if q[1, k] == 1 else v // q[1, k]  # a division costs more than the test
                    if q[4, k] and sliding:  # friction: |s| shortened, not past 0 (no overflow: it shrinks)
                        s = max(s - q[4, k], 0) if s > 0 else min(s + q[4, k], 0)
                    x = now + s
            t[r, c] = max(x, min(q[2, k], now))
    return moved


_known: dict = {}  # (num, den, low, slow, w) -> _parameters(...), for hashable ones (ints, tuples)
_EVERY = np.ones(1, np.uint8)  # the mask's stand-in when every row is worked on (never read)


def _parameters(num, den, low, slow, w: int) -> np.ndarray:
    """int64 (5, w): per column num, den, low, the largest velocity whose step fits
    (|velocity * num| <= 2**62) and slow. Each of num, den, low, slow is an int or one per
    column."""
    table = []
    for what, value, lo, hi in (("num", num, -(1 << 62), 1 << 62), ("den", den, 1, 1 << 62),
                                ("low", -(1 << 63) if low is None else low, -(1 << 63), (1 << 63) - 1),
                                ("slow", 0 if slow is None else slow, 0, 1 << 62)):
        try:
            values = [_integer(x, what) for x in value]
        except TypeError:  # not a sequence: one for every column
            values = [_integer(value, what)] * w
        if len(values) != w:
            raise ValueError(f"{what}: {w} columns, {len(values)} values")
        if w and (min(values) < lo or max(values) > hi):
            raise ValueError(f"{what} must be {lo}..{hi}, not {values}")
        table.append(values)
    table.insert(3, [(1 << 62) // abs(a) if a else 1 << 62 for a in table[0]])
    return np.array(table, np.int64).reshape(5, w)


def _integer(x, what: str) -> int:
    """``x`` as an int: an int, a numpy integer, or a number equal to one (6.0 is 6:
    :func:`extrapolated` keeps what it made for equal arguments)."""
    try:
        return operator.index(x)
    except TypeError:
        pass
    try:
        i = int(x)
        if i == x:
            return i
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"{what}: {x!r} is not an integer")


def _check_line(column: int, height: int, width: int, aloft) -> None:
    """Raise unless ``aloft``'s line is a column of a table ``width`` wide and an int64
    height (extrapolated's and smallest_three.turned's)."""
    if not (0 <= column < width and -(1 << 63) <= height < 1 << 63):
        raise ValueError(f"aloft is a column of the {width} and an int64 height, not {aloft!r}")


def _mask(rows, n: int) -> np.ndarray:
    """The rows to work on, uint8 (n,) contiguous (all of them for None)."""
    if rows is None:
        return np.ones(n, np.uint8)
    mask = np.ascontiguousarray(rows)
    if mask.shape != (n,) or mask.dtype.kind not in "biu":
        raise ValueError(f"{n} rows of codes, a mask of {mask.dtype} {mask.shape}")
    return mask.view(np.uint8) if mask.dtype == np.bool_ else (mask != 0).view(np.uint8)
