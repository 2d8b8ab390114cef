"""Smallest-three quaternions (engine/quantize.py SmallestThree): within tolerance, and
coded against a baseline rotation with the largest component's switch handled."""

import numpy as np
import pytest

from engine.quantize import SmallestThree


def _unit(rng, n):
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.mark.parametrize("bits", [6, 9, 12])
def test_quaternions_round_trip_within_tolerance(bits):
    rng = np.random.default_rng(bits)
    q = _unit(rng, 2000)
    quant = SmallestThree(bits)
    codes = quant.quantize(q)
    assert codes.shape == (2000, 4) and codes.min() >= 0 and codes[:, 1:].max() <= quant.scale
    back = quant.dequantize(codes, np.dtype(np.float64))
    # q and -q are one rotation: compare up to sign.
    err = np.minimum(np.abs(back - q).max(axis=1), np.abs(back + q).max(axis=1))
    assert err.max() <= quant.tolerance
    assert np.allclose(np.linalg.norm(back, axis=1), 1.0, atol=4 * quant.tolerance)


def test_delta_is_exactly_inverted_for_any_codes():
    rng = np.random.default_rng(1)
    quant = SmallestThree(9)
    base = np.column_stack([rng.integers(0, 4, 5000), rng.integers(0, 512, (5000, 3))])
    codes = np.column_stack([rng.integers(0, 4, 5000), rng.integers(0, 512, (5000, 3))])
    d = quant.delta(base, codes)
    assert np.array_equal(quant.undelta(base, d), codes)
    assert d[:, 0].min() >= 0 and d[:, 0].max() <= 3


def test_a_small_turn_across_the_largest_switch_is_a_small_delta():
    # Two components near the tie: a small turn moves which one is largest. Against the
    # rebased baseline the delta is the turn's size; the raw codes' difference is not.
    quant = SmallestThree(9)
    angle = np.linspace(-np.pi / 2 - 0.02, -np.pi / 2 + 0.02, 9)
    # turns about a tilted axis by about -90 degrees: the largest swaps between z (negative,
    # so every sign flips when it is dropped) and w
    q = np.column_stack([np.full(9, 0.2), np.full(9, 0.1), np.sin(angle / 2), np.cos(angle / 2)])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    codes = quant.quantize(q)
    base, now = codes[:-1], codes[1:]
    switched = base[:, 0] != now[:, 0]
    assert switched.any()
    d = quant.delta(base, now)
    assert np.abs(d[:, 1:]).max() <= 4
    assert np.abs((now - base)[switched, 1:]).max() > 100
    assert np.array_equal(quant.undelta(base, d), now)


def test_deltas_written_into_a_wider_tables_columns_match_and_leave_the_rest():
    # SnapshotCoding writes a rotation's deltas straight into its columns of the update
    # table (strided views, no copies): the same codes as a fresh array, nothing else touched.
    rng = np.random.default_rng(3)
    quant = SmallestThree(9)
    base = np.column_stack([rng.integers(0, 4, 300), rng.integers(0, 512, (300, 3)), rng.integers(-9, 9, (300, 4))])
    codes = np.column_stack([rng.integers(0, 4, 300), rng.integers(0, 512, (300, 3)), rng.integers(-9, 9, (300, 4))])
    table = np.full((300, 8), 77, np.int64)
    quant.delta(base[:, :4], codes[:, :4], table[:, 2:6])
    assert np.array_equal(table[:, 2:6], quant.delta(base[:, :4].copy(), codes[:, :4].copy()))
    assert (table[:, :2] == 77).all() and (table[:, 6:] == 77).all()
    back = np.full((300, 8), 77, np.int64)
    quant.undelta(base[:, :4], table[:, 2:6], back[:, 4:])
    assert np.array_equal(back[:, 4:], codes[:, :4]) and (back[:, :4] == 77).all()
    with pytest.raises(ValueError):
        quant.delta(base[:, :4], codes[:, :4], np.empty((300, 3), np.int64))


def test_bits_out_of_range_are_refused():
    with pytest.raises(ValueError):
        SmallestThree(1)


def test_delta_inverts_even_against_an_out_of_range_largest_index():
    # A game's predictor may hand back any integers: the round trip must still hold.
    quant = SmallestThree(9)
    base = np.array([[4, 10, 20, 30], [7, 500, 0, 3], [-1, 1, 2, 3]])
    codes = np.array([[0, 11, 20, 30], [1, 400, 9, 3], [2, 1, 2, 3]])
    assert np.array_equal(quant.undelta(base, quant.delta(base, codes)), codes)


def test_the_rotation_steps_are_the_same_compiled_and_interpreted():
    """engine/smallest_three.py's float steps, built and run as Python, on rotations and
    on codes no quantizer makes (what a hostile baseline could hold): the same floats
    and codes, bit for bit, as the browser's decoder relies on."""
    from helpers import source_twin

    from engine import smallest_three

    source = source_twin("engine.smallest_three")
    rng = np.random.default_rng(3)
    q = np.concatenate([_unit(rng, 500), [[1e300, -1e300, 0, 0], [0.5, 0.5, -0.5, 0.5]]])
    largest = np.concatenate([np.argmax(np.abs(q), axis=1)[:-2], [0, 3]])
    codes = np.column_stack([rng.integers(-9, 9, 502), rng.integers(-(1 << 40), 1 << 40, (502, 3))])
    codes[:250, 1:] &= 511
    wild = rng.integers(-(1 << 62), 1 << 62, (502, 4)) * 2 + 1  # sums past int64 wrap
    for scale in (511, 4095):
        made = smallest_three.to_codes(q, largest, scale)
        for module in (smallest_three, source):
            assert np.array_equal(module.to_codes(q, largest, scale), smallest_three.to_codes(q, largest, scale))
            assert np.array_equal(module.unit(codes, scale), smallest_three.unit(codes, scale))
            assert np.array_equal(module.rebased(codes, largest, scale), smallest_three.rebased(codes, largest, scale))
            assert np.array_equal(module.delta(codes, made, scale), smallest_three.delta(codes, made, scale))
            with np.errstate(over="ignore"):  # the source's int64 scalars wrap as the build's do
                assert np.array_equal(module.undelta(codes, wild, scale), smallest_three.undelta(codes, wild, scale))
        assert made[:, 1:].min() >= 0 and made[:, 1:].max() <= scale and np.array_equal(made[:, 0], largest)


def _about_z(angles):
    return np.column_stack([np.zeros(len(angles)), np.zeros(len(angles)), np.sin(angles / 2), np.cos(angles / 2)])


def test_extrapolate_keeps_a_spin_turning_and_leaves_jitter_masked_and_wild_rows():
    quant = SmallestThree(9)
    step = 0.05  # radians a tick: a spin, well above the codes' jitter
    start = np.linspace(0.0, 2 * np.pi, 40)
    older, base, later = (quant.quantize(_about_z(start + k * step)) for k in (0, 1, 4))
    guess = quant.extrapolate(base, older, 3, 0.9999)
    # three more turns of the last one land where the spin goes, give or take the codes'
    # rounding (a code's half step in the measured turn, tripled); the baseline is far off
    assert np.abs(quant.delta(later, guess)[:, 1:]).max() <= 4
    assert (np.abs(quant.delta(later, base)[:, 1:]).max(axis=1) > 4).all()
    # a turn below the jitter threshold, a row outside the mask, codes no quantizer makes: as they were
    assert np.array_equal(quant.extrapolate(base, older, 3, 0.5), base)
    rows = np.arange(40) % 2 == 0
    masked = quant.extrapolate(base, older, 3, 0.9999, rows)
    assert np.array_equal(masked[~rows], base[~rows]) and np.array_equal(masked[rows], guess[rows])
    wild = base.copy()
    wild[:, 1] += 1 << 40
    assert np.array_equal(quant.extrapolate(wild, older, 3, 0.9999), wild)
    # a turn count from a hostile packet's tick gap is capped, not looped through
    far = quant.extrapolate(base, older, 1 << 62, 0.9999)
    assert np.array_equal(far, quant.extrapolate(base, older, 64, 0.9999))
    # written into a wider table's columns, nothing else touched
    table = np.full((40, 7), -5, np.int64)
    quant.extrapolate(base, older, 3, 0.9999, None, table[:, 2:6])
    assert np.array_equal(table[:, 2:6], guess) and (table[:, [0, 1, 6]] == -5).all()


def test_extrapolate_is_the_same_compiled_and_interpreted():
    """A game's predictor runs on server and client alike: the turned codes must not
    depend on which build of engine/smallest_three.py computed them, for rotations and
    for codes a hostile baseline could hold."""
    from helpers import source_twin

    from engine import smallest_three

    source = source_twin("engine.smallest_three")
    rng = np.random.default_rng(4)
    quant = SmallestThree(9)
    base = quant.quantize(_unit(rng, 400))
    older = base.copy()
    older[:, 1:] = np.clip(older[:, 1:] + rng.integers(-30, 31, (400, 3)), 0, 511)
    older[::7, 0] = (older[::7, 0] + 1) & 3
    older[::11] = rng.integers(-(1 << 40), 1 << 40, (len(older[::11]), 4))
    rows = rng.random(400) < 0.9
    for turns, still in ((1, 1.0), (3, 0.9999), (6, 0.99)):
        want = smallest_three.extrapolated(base, older, turns, still, 511.0, rows)
        assert np.array_equal(source.extrapolated(base, older, turns, still, 511.0, rows), want)
        assert want[:, 0].min() >= 0 and want[:, 0].max() <= 3 and want[:, 1:].min() >= 0 and want[:, 1:].max() <= 511


def _table_with_a_rotation(seed: int, n: int, columns: int, col: int, high: int):
    """A generator and a whole table of codes: a random rotation's codes in columns
    ``col:col + 4``, random codes 0..``high`` in the others."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, high, (n, columns)).astype(np.int64)
    base[:, col : col + 4] = SmallestThree(9).quantize(_unit(rng, n))
    return rng, base


def test_turned_writes_only_the_spinning_rows_of_a_whole_table_the_same_compiled_and_interpreted():
    """smallest_three.turned, on whole tables (the rotation in columns col:col + 4): the
    rows that spin get extrapolated's codes, every other row and column of ``out`` is
    left as it was (a predictor's output already holding the baseline), it says how many
    it wrote, and the source run as Python writes the same, hostile codes included."""
    from helpers import source_twin

    from engine import smallest_three

    source = source_twin("engine.smallest_three")
    rng, base = _table_with_a_rotation(6, 300, 7, 2, 1000)
    n = len(base)
    older = base.copy()
    older[::2, 3:6] = np.clip(older[::2, 3:6] + rng.integers(-30, 31, (n // 2, 3)), 0, 511)  # turned
    older[1::6, 3] = np.clip(older[1::6, 3] + 1, 0, 511)  # a code's jitter
    older[::9, 2] = (older[::9, 2] + 1) & 3
    older[::11, 2:6] = rng.integers(-(1 << 40), 1 << 40, (len(older[::11]), 4))  # no quantizer's codes
    older[:, 0] += 1  # another column moved: not a turn
    rows = rng.random(n) < 0.9
    for turns, still, mask in ((3, 0.9999, rows), (1, 1.0, None), (70, 0.99, rows), (0, 0.9999, None)):
        want = smallest_three.extrapolated(base[:, 2:6], older[:, 2:6], turns, still, 511.0, mask)
        counts = []
        for module in (smallest_three, source):
            out = np.full_like(base, -7)
            wrote = module.turned(base, older, 2, turns, still, 511.0, out, mask)
            changed = (want != base[:, 2:6]).any(axis=1)
            written = (out != -7).any(axis=1)
            assert np.array_equal(out[written, 2:6], want[written]) and (out[~written] == -7).all()
            assert (changed <= written).all() and wrote == written.sum() and (out[:, [0, 1, 6]] == -7).all()
            assert not written[(base[:, 2:6] == older[:, 2:6]).all(axis=1)].any()  # rest: not even copied
            counts.append(wrote)
        assert counts[0] == counts[1] and (counts[0] > 20) == (turns > 0)
        # in place, on the baseline itself: extrapolated's codes, the other columns kept
        table = base.copy()
        smallest_three.turned(table, older, 2, turns, still, 511.0, table, mask)
        assert np.array_equal(table[:, 2:6], want) and np.array_equal(table[:, [0, 1, 6]], base[:, [0, 1, 6]])
    # what a caller gets wrong is a clear error, not a write out of bounds
    out = base.copy()
    for bad, args in (("columns", (base, older, 4)), ("columns", (base, older, -1)), ("one shape", (base, older[:-1], 2)),
                      ("one shape", (base[:, 0], older[:, 0], 0))):
        with pytest.raises(ValueError, match=bad):
            smallest_three.turned(*args, 3, 0.9999, 511.0, out)
    with pytest.raises(ValueError, match="out must be"):
        smallest_three.turned(base, older, 2, 3, 0.9999, 511.0, out.astype(np.int32))
    with pytest.raises(ValueError, match="a mask of"):
        smallest_three.turned(base, older, 2, 3, 0.9999, 511.0, out, rows[:-1])


def test_turned_aloft_turns_the_rows_in_the_air_as_a_second_call_on_them_would_in_one_pass():
    """``aloft`` (column, height, turns, still): rows above the height take those turns
    and that ``still``, the others the call's own; the codes are those of a call for the
    low rows then a second for the high ones alone (masked), both builds, turn counts of
    0 and past MAX_TURNS included; bad values are a clear error."""
    from helpers import source_twin

    from engine import smallest_three

    source = source_twin("engine.smallest_three")
    rng, base = _table_with_a_rotation(9, 400, 6, 0, 400)  # column 4 is the height
    n = len(base)
    older = base.copy()
    older[::2, 1:4] = np.clip(older[::2, 1:4] + rng.integers(-30, 31, (n // 2, 3)), 0, 511)  # spinning
    older[1::4, 2] = np.clip(older[1::4, 2] + 1, 0, 511)  # a code's jitter: only a free body turns on it
    older[::13, 0:4] = rng.integers(-(1 << 40), 1 << 40, (len(older[::13]), 4))  # no quantizer's codes
    rows = rng.random(n) < 0.85
    for turns, up_turns, height, mask in ((4, 6, 200, rows), (1, 0, 200, None), (0, 3, 150, rows), (70, 90, -5, None), (2, 6, 1 << 62, rows)):
        up = base[:, 4] > height
        want = base.copy()
        smallest_three.turned(base, older, 0, turns, 0.9999, 511.0, want, mask)
        smallest_three.turned(base, older, 0, up_turns, 2.0, 511.0, want, up if mask is None else up & mask)
        for module in (smallest_three, source):
            out = base.copy()
            module.turned(base, older, 0, turns, 0.9999, 511.0, out, mask, (4, height, up_turns, 2.0))
            assert np.array_equal(out, want), (module, turns, up_turns, height)
        if 0 < up_turns and turns != up_turns and height < 400:  # (else nothing differs between the calls)
            plain = base.copy()
            smallest_three.turned(base, older, 0, turns, 0.9999, 511.0, plain, mask)
            assert not np.array_equal(plain, want)
    out = base.copy()
    for bad in ((6, 200, 3, 2.0), (-1, 200, 3, 2.0), (4, 1 << 63, 3, 2.0), (4, 200, 3), (4, 2.5, 3, 2.0), (4, 200, 3, "x"), (4, 200, 3, "2.0"), 7):
        with pytest.raises(ValueError, match="aloft"):
            smallest_three.turned(base, older, 0, 3, 0.9999, 511.0, out, None, bad)


def test_uprightness_is_how_high_a_cube_stands_and_the_same_compiled_and_interpreted():
    from helpers import source_twin

    from engine import smallest_three

    quant = SmallestThree(9)
    h = np.sqrt(0.5)
    flat = [0, 0, np.sin(0.3), np.cos(0.3)]  # any yaw: lying on a face
    edge = [np.sin(np.pi / 8), 0, 0, np.cos(np.pi / 8)]  # tipped 45 degrees about x: on an edge
    tip = np.array([0.3250576, -0.3250576, 0.0, 0.8880738])  # about (1, -1, 0) by acos(1/sqrt(3)): on a corner
    codes = quant.quantize(np.array([flat, edge, tip, [h, 0, 0, h]]))
    got = quant.uprightness(codes)
    assert np.allclose(got, [1, np.sqrt(2), np.sqrt(3), 1], atol=0.02), got
    rng = np.random.default_rng(5)
    wild = np.column_stack([rng.integers(-9, 9, 300), rng.integers(-(1 << 40), 1 << 40, (300, 3))])
    wild[:150, 1:] &= 511
    source = source_twin("engine.smallest_three")
    want = smallest_three.uprightness(wild, 511.0)
    assert np.array_equal(source.uprightness(wild, 511.0), want) and np.isfinite(want).all()


def test_standing_puts_tumbled_low_boxes_on_the_ground_and_is_the_same_compiled_and_interpreted():
    """SmallestThree.standing: rows whose rotation changed and that are low get the
    ground plus half times their clipped uprightness, rounded (numpy's formula, bit for
    bit); rows that kept their rotation or are high keep their height; the same from the
    source run as Python, on rotations and on codes a hostile peer could send, into a
    table's column."""
    from helpers import source_twin

    from engine import smallest_three

    source = source_twin("engine.smallest_three")
    rng = np.random.default_rng(6)
    quant = SmallestThree(9)
    expected = quant.quantize(_unit(rng, 400))
    known = expected.copy()
    known[::2, 1:] = np.clip(known[::2, 1:] + rng.integers(-40, 41, (200, 3)), 0, 511)
    known[::9] = np.column_stack([rng.integers(-9, 9, 45), rng.integers(-(1 << 40), 1 << 40, (45, 3))])
    heights = rng.integers(0, 400, 400)
    heights[::13] = rng.integers(-(1 << 62), 1 << 62, len(heights[::13]))
    table = np.zeros((400, 9), np.int64)
    table[:, 3] = heights
    quant.standing(expected, known, heights, 200, 102.4, 1000, table[:, 3])
    moved = (known != expected).any(axis=1) & (heights < 200)
    assert moved.sum() > 100 and (~moved).sum() > 100
    lift = quant.uprightness(known[moved])
    assert np.array_equal(table[moved, 3], 1000 + (np.clip(lift, 0.0, 2.0) * 102.4 + 0.5).astype(np.int64))
    assert np.array_equal(table[~moved, 3], heights[~moved])
    assert table[moved, 3].min() >= 1000 and table[moved, 3].max() <= 1000 + 205
    out = heights.copy()
    source.standing(expected, known, heights, 200, 102.4, 1000, 511.0, out)
    assert np.array_equal(out, table[:, 3])
    with pytest.raises(ValueError):
        quant.standing(expected, known[:-1], heights, 200, 102.4, 1000, heights.copy())
    with pytest.raises(ValueError):
        quant.standing(expected, known, heights, 200, 102.4, 1000, heights[:-1].copy())
