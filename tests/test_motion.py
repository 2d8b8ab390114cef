"""engine/motion.py, a game predictor's building block: the rows that moved carried on by
their velocity, the same compiled and interpreted, as numpy's integer steps compute it
(floor division of negative velocities included), for any codes a peer could send."""

import numpy as np
import pytest
from helpers import source_twin
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import motion
from netcode import compiled  # noqa: F401 (its import finder picks the build or the source)

SOURCE = source_twin("engine.motion")
BUILDS = [motion, SOURCE]  # the same module twice where nothing was built


def numpy_steps(base, older, c0, c1, num, den, rows, low, slow=0, aloft=None):
    """What a predictor wrote with numpy does (bench_cubes' physics predictor did this):
    the moving rows gathered, carried on column by column (``slow`` codes shorter, not
    past zero, in rows no higher than ``aloft``'s (column, height)), scattered back."""
    out = base.copy()
    b, o = base[:, c0:c1], older[:, c0:c1]
    moving = np.flatnonzero((b != o).any(axis=1) & rows)
    now = b[moving]
    v = now - o[moving]
    step = v * np.asarray(num, np.int64) // np.asarray(den, np.int64)
    slows = np.broadcast_to(np.asarray(slow, np.int64), step.shape).copy()
    if aloft is not None:
        slows[base[moving, aloft[0]] > aloft[1]] = 0
    ahead_of = now + np.sign(step) * np.maximum(np.abs(step) - slows, 0)
    out[moving, c0:c1] = np.maximum(ahead_of, np.minimum(np.asarray(low, np.int64), now))
    return out, len(moving)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 40),
    cols=st.integers(1, 6),
    spread=st.sampled_from([3, 1000, 1 << 40]),
    data=st.data(),
)
def test_extrapolated_is_numpys_steps_compiled_and_interpreted(seed, n, cols, spread, data):
    rng = np.random.default_rng(seed)
    c0 = data.draw(st.integers(0, cols))
    c1 = data.draw(st.integers(c0, cols))
    w = c1 - c0
    base = rng.integers(-spread, spread + 1, (n, cols))
    older = base.copy()
    moved = rng.random((n, cols)) < 0.3
    older[moved] += rng.integers(-spread, spread + 1, int(moved.sum()))  # negative velocities too
    rows = rng.random(n) < 0.8
    num = [int(x) for x in rng.integers(-7, 8, w)]
    den = [int(x) for x in rng.integers(1, 11, w)]
    low = [int(x) for x in rng.integers(-spread, spread + 1, w)]
    want, count = numpy_steps(base, older, c0, c1, num, den, rows, low)
    for module in BUILDS:
        out = base.copy()
        assert module.extrapolated(base, older, c0, c1, tuple(num), tuple(den), out, rows, tuple(low)) == count
        assert np.array_equal(out, want)
    # friction: each column's step shortened by its own slow (0 for some), not past zero
    slow = [int(x) for x in rng.integers(0, 2 * spread + 1, w) * (rng.random(w) < 0.7)]
    aloft = (int(rng.integers(0, cols)), int(rng.integers(-spread, spread + 1)))  # rows higher there slide free
    for free in (None, aloft):
        want, count = numpy_steps(base, older, c0, c1, num, den, rows, low, slow, free)
        for module in BUILDS:
            out = base.copy()
            assert module.extrapolated(base, older, c0, c1, tuple(num), tuple(den), out, rows, tuple(low), tuple(slow), free) == count
            assert np.array_equal(out, want)
    # ints for every column, no mask, no floor
    want, count = numpy_steps(base, older, c0, c1, 5, 3, np.ones(n, bool), np.iinfo(np.int64).min)
    for module in BUILDS:
        out = base.copy()
        assert module.extrapolated(base, older, c0, c1, 5, 3, out) == count
        assert np.array_equal(out, want)


def test_no_moving_rows_and_no_rows_leave_out_alone():
    base = np.arange(24, dtype=np.int64).reshape(6, 4)
    for module in BUILDS:
        out = np.full_like(base, -9)
        assert module.extrapolated(base, base.copy(), 0, 4, 6, 1, out) == 0  # nothing moved
        older = base - 1
        assert module.extrapolated(base, older, 0, 4, 6, 1, out, np.zeros(6, bool)) == 0  # an empty row set
        assert module.extrapolated(base, older, 2, 2, 6, 1, out) == 0  # no columns
        assert (out == -9).all()
        empty = np.empty((0, 4), np.int64)
        assert module.extrapolated(empty, empty, 0, 4, 6, 1, empty.copy(), np.zeros(0, bool)) == 0
        # a moving row writes its columns only
        assert module.extrapolated(base, older, 1, 3, 2, 1, out, np.arange(6) == 4) == 1
        assert out[4, 1:3].tolist() == [base[4, 1] + 2, base[4, 2] + 2] and (np.delete(out, 4, 0) == -9).all()
        assert out[4, 0] == out[4, 3] == -9


def test_hostile_codes_give_codes_the_same_compiled_and_interpreted():
    """A peer's baseline can hold any int64: no overflow (numpy would wrap), no crash;
    values too large to carry on keep the baseline's, in both builds."""
    rng = np.random.default_rng(7)
    big = np.iinfo(np.int64)
    base = rng.integers(big.min, big.max, (300, 3), dtype=np.int64, endpoint=True)
    older = rng.integers(big.min, big.max, (300, 3), dtype=np.int64, endpoint=True)
    base[:100] = rng.integers(-(1 << 60), 1 << 60, (100, 3))
    older[:100] = base[:100] - rng.integers(-(1 << 60), 1 << 60, (100, 3))
    base[100:110], older[100:110] = big.max, big.min
    base[110:120], older[110:120] = big.min, big.max
    outs = []
    for module in BUILDS:
        for num, den in ((1 << 62, 1), (-(1 << 62), 1 << 62), (6, 10), (0, 1)):
            out = base.copy()
            module.extrapolated(base, older, 0, 3, num, den, out, None, big.min)
            outs.append(out)
        for slow in (1 << 62, 1 << 40, 3):  # friction at its bounds: it only shrinks steps
            out = base.copy()
            module.extrapolated(base, older, 0, 3, 1 << 62, 1, out, None, big.min, slow)
            outs.append(out)
    for a, b in zip(outs[:7], outs[7:]):
        assert np.array_equal(a, b)
    assert np.array_equal(outs[4], base)  # friction past every step: nothing moves
    assert np.array_equal(outs[0][100:120], base[100:120])  # beyond +-2**61: kept
    assert np.array_equal(outs[3], base)  # num 0: no step
    small = np.abs(base[:100] - older[:100]) * 6 <= 1 << 62
    assert np.array_equal(outs[2][:100][small], (base[:100] + (base[:100] - older[:100]) * 6 // 10)[small])


def test_bad_arguments_are_clear_errors():
    base = np.zeros((5, 4), np.int64)
    for module in BUILDS:
        good = dict(base=base, older=base, c0=0, c1=4, num=6, den=1, out=base.copy())
        for bad, match in (
            (dict(older=np.zeros((5, 3), np.int64)), "one shape"),
            (dict(base=np.zeros(5, np.int64), older=np.zeros(5, np.int64)), "one shape"),
            (dict(c0=3, c1=2), "columns 3:2"),
            (dict(c1=5), "columns 0:5"),
            (dict(out=np.zeros((5, 4), np.int32)), "out must be int64"),
            (dict(out=np.zeros((4, 4), np.int64)), "out must be int64"),
            (dict(out=[[0] * 4] * 5), "out must be int64"),
            (dict(den=0), "den must be 1"),
            (dict(den=(1, 1, 1)), "den: 4 columns, 3 values"),
            (dict(num=1 << 63), "num must be"),
            (dict(num=2.5), "not an integer"),
            (dict(num="6"), "not an integer"),
            (dict(low=(0, 0, 0, None)), "not an integer"),
            (dict(rows=np.ones(4, bool)), "a mask of"),
            (dict(rows=np.ones(5, np.float64)), "a mask of"),
            (dict(slow=-1), "slow must be 0"),
            (dict(slow=(1 << 62) + 1), "slow must be 0"),
            (dict(slow=0.5), "not an integer"),
            (dict(aloft=(4, 0)), "aloft is a column"),
            (dict(aloft=(-1, 0)), "aloft is a column"),
            (dict(aloft=(0, 1 << 63)), "aloft is a column"),
            (dict(aloft=(0,)), "aloft is"),
            (dict(aloft=3), "aloft is"),
            (dict(aloft=(0.5, 1)), "aloft is"),
        ):
            with pytest.raises(ValueError, match=match):
                module.extrapolated(**{**good, **bad})
        # equal numbers are those ints, whether met before or not
        out = base.copy()
        assert module.extrapolated(base, base - 1, 0, 4, 6.0, np.int32(2), out, np.ones(5, np.uint8)) == 5
        assert (out == 3).all()
