"""The range coder of snapshot updates (netcode/statesync/rangecoder.py): exact round trips,
the same bytes from its compiled build and its source run as plain Python, sizes near the
entropy of skewed data, and hostile input that errors or decodes to something, never
crashes or hangs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import source_twin
from netcode.errors import ProtocolError
from netcode.statesync import rangecoder

_TWINS = {"source": source_twin("netcode.statesync.rangecoder")}
if rangecoder.compiled:
    _TWINS["compiled"] = rangecoder


def _table(seed: int, rows: int, cols: int, groups: int, p_change: float, spread: int):
    rng = np.random.default_rng(seed)
    group_of = np.sort(rng.integers(0, groups, cols)).astype(np.int32)
    group_of[:groups] = np.arange(min(groups, cols))  # every group has a column when it can
    group_of = np.sort(group_of).astype(np.int32)
    field_of = np.minimum(np.arange(cols), rng.integers(0, cols, cols)).astype(np.int32)  # some share
    motion = rng.integers(0, rangecoder.MOTIONS, (rows, cols)).astype(np.int32)
    deltas = np.where(rng.random((rows, cols)) < p_change, rng.integers(-spread, spread + 1, (rows, cols)), 0)
    return deltas.astype(np.int64), group_of, field_of, motion


@pytest.mark.parametrize("twin", sorted(_TWINS))
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(0, 60),
    cols=st.integers(1, 6),
    groups=st.integers(1, 3),
    p_change=st.floats(0, 1),
    spread=st.sampled_from([1, 7, 300, 1 << 20, (1 << 62)]),
)
def test_tables_round_trip(twin, seed, rows, cols, groups, p_change, spread):
    groups = min(groups, cols)
    deltas, group_of, field_of, motion = _table(seed, rows, cols, groups, p_change, spread)
    coder = _TWINS[twin]
    data = coder.encode_table(deltas, group_of, field_of, motion, groups)
    assert np.array_equal(coder.decode_table(data, group_of, field_of, motion, groups), deltas)


def test_extreme_deltas_round_trip():
    deltas = np.array([[(1 << 63) - 1, -((1 << 63) - 1), 0, 1, -1]], np.int64)
    group_of = np.zeros(5, np.int32)
    motion = np.zeros((1, 5), np.int32)
    for coder in _TWINS.values():
        data = coder.encode_table(deltas, group_of, group_of, motion, 1)
        assert np.array_equal(coder.decode_table(data, group_of, group_of, motion, 1), deltas)


def test_compiled_and_source_write_the_same_bytes():
    if "compiled" not in _TWINS:
        pytest.skip("this checkout has no compiled rangecoder (python setup.py build_ext --inplace)")
    for seed in range(5):
        table = _table(seed, 200, 5, 2, 0.2, 500)
        assert _TWINS["compiled"].encode_table(*table, 2) == _TWINS["source"].encode_table(*table, 2)


def test_tables_larger_than_the_first_buffer_round_trip_in_the_same_bytes():
    """The encoder writes into a buffer it grows ahead of each row (the bits do not
    check for room): tables of many times its first size (wide random deltas, 1 << 62
    apart), cut by a limit or not, decode back and are the same bytes compiled or not."""
    table = _table(3, 400, 6, 2, 0.9, 1 << 62)
    outputs = []
    for coder in _TWINS.values():
        data = coder.encode_table(*table, 2)
        assert len(data) > 5 * 4096
        assert np.array_equal(coder.decode_table(data, *table[1:], 2), table[0])
        cut, rows = coder.encode_table(*table, 2, len(data) // 3)
        assert 0 < rows < 400 and len(cut) <= len(data) // 3
        assert np.array_equal(coder.decode_table(cut, table[1], table[2], table[3][:rows], 2), table[0][:rows])
        outputs.append((data, cut, rows))
    assert all(out == outputs[0] for out in outputs)


def test_rare_changes_cost_about_their_entropy():
    # 2000 rows, one group changed in 2% of them by 0: the flags' entropy is ~0.14 bit a row.
    rng = np.random.default_rng(7)
    deltas = np.zeros((2000, 1), np.int64)
    deltas[rng.random(2000) < 0.02, 0] = 1
    data = rangecoder.encode_table(deltas, np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros((2000, 1), np.int32), 1)
    flags_entropy = 2000 * 0.1414 / 8  # bytes
    assert len(data) < flags_entropy * 1.3 + 45 * 0.3 + 8


def test_motion_context_separates_movers_from_resting_entities():
    # Entities that moved last time change again; resting ones do not: coded in their
    # motion's context, the flags cost far less than a bit each.
    rows = 1000
    motion = np.zeros((rows, 1), np.int32)
    motion[::10] = 5 * 3 + 1  # moved by 16..31 upwards last time
    deltas = np.zeros((rows, 1), np.int64)
    deltas[::10] = 3
    data = rangecoder.encode_table(deltas, np.zeros(1, np.int32), np.zeros(1, np.int32), motion, 1)
    assert len(data) < rows / 8 / 3


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_hostile_data_errors_or_decodes_boundedly(twin):
    coder = _TWINS[twin]
    deltas, group_of, field_of, motion = _table(3, 120, 4, 2, 0.3, 1000)
    data = coder.encode_table(deltas, group_of, field_of, motion, 2)
    with pytest.raises(ProtocolError):
        coder.decode_table(data[: len(data) // 2], group_of, field_of, motion, 2)
    with pytest.raises(ProtocolError):
        coder.decode_table(b"", group_of, field_of, motion, 2)
    with pytest.raises(ProtocolError):
        coder.decode_table(data + bytes(20), group_of, field_of, motion, 2)
    rng = np.random.default_rng(11)
    for _ in range(30):
        garbage = rng.integers(0, 256, rng.integers(0, 300)).astype(np.uint8).tobytes()
        try:
            out = coder.decode_table(garbage, group_of, field_of, motion, 2)
        except ProtocolError:
            continue
        assert out.shape == deltas.shape and out.dtype == np.int64
    with pytest.raises(ValueError):
        coder.decode_table(data, group_of, field_of, motion + rangecoder.MOTIONS, 2)
    with pytest.raises(ValueError):
        coder.decode_table(data, group_of + 5, field_of, motion, 2)


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_the_encoder_refuses_motion_codes_out_of_range(twin):
    coder = _TWINS[twin]
    deltas, group_of, field_of, motion = _table(3, 40, 4, 2, 0.3, 1000)
    for bad in (-1, rangecoder.MOTIONS):
        wrong = motion.copy()
        wrong[17, 3] = bad  # one value of one row, in a group with others in range
        with pytest.raises(ValueError, match="motion codes"):
            coder.encode_table(deltas, group_of, field_of, wrong, 2)
        with pytest.raises(ValueError, match="motion codes"):
            coder.decode_table(coder.encode_table(deltas, group_of, field_of, motion, 2), group_of, field_of, wrong, 2)


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_motion_codes_say_how_far_and_which_way_each_value_moved(twin):
    base = np.array([[10, 10, 10], [5, 0, 1 << 40], [7, 7, 7]], np.int64)
    older = np.array([[10, 9, 13], [6, 0, 0], [0, 0, 0]], np.int64)
    both = np.array([True, True, False])
    codes = _TWINS[twin].motion_codes(base, older, both)
    assert codes.dtype == np.int32
    # (activity = bit length of the change, at most 7) * 3 + (1 up, 2 down); 0 unchanged or not in both
    assert codes.tolist() == [[0, 1 * 3 + 1, 2 * 3 + 2], [1 * 3 + 2, 0, 7 * 3 + 1], [0, 0, 0]]


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_a_limit_codes_the_rows_that_fit(twin):
    """With a byte limit the coder codes the leading rows that fit in it (the snapshot
    encoder ends a part there) and their table decodes as those rows alone; every row
    when the limit allows, in the same bytes as without one."""
    rc = _TWINS[twin]
    deltas, group_of, field_of, motion = _table(7, 200, 4, 2, 0.5, 300)
    whole = rc.encode_table(deltas, group_of, field_of, motion, 2)
    assert len(whole) > 100
    assert rc.encode_table(deltas, group_of, field_of, motion, 2, len(whole) + 8) == (whole, 200)
    for limit in (len(whole) // 2, len(whole) - 3, 40, 6):
        table, rows = rc.encode_table(deltas, group_of, field_of, motion, 2, limit)
        assert 0 < rows < 200 and len(table) <= limit
        assert np.array_equal(rc.decode_table(table, group_of, field_of, motion[:rows], 2), deltas[:rows])
    assert rc.encode_table(deltas, group_of, field_of, motion, 2, 0)[1] == 0


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_the_decoder_says_which_rows_changed(twin):
    rc = _TWINS[twin]
    deltas, group_of, field_of, motion = _table(11, 120, 5, 2, 0.05, 40)
    data = rc.encode_table(deltas, group_of, field_of, motion, 2)
    touched = np.zeros(120, np.uint8)
    assert np.array_equal(rc.decode_table(data, group_of, field_of, motion, 2, touched), deltas)
    assert 0 < touched.sum() < 120
    assert np.array_equal(touched.astype(bool), (deltas != 0).any(axis=1))
    with pytest.raises(ValueError):
        rc.decode_table(data, group_of, field_of, motion, 2, np.zeros(119, np.uint8))


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_rows_differ_says_which_rows_have_a_difference(twin):
    """rows_differ is the encoder's per-snapshot test of which rows changed: numpy's
    ``(a != b).any(axis=1)`` (or ``a != 0`` alone), on views of wider tables, extreme
    values and no rows; tables that do not match raise."""
    rc = _TWINS[twin]
    rng = np.random.default_rng(8)
    a = rng.integers(-(1 << 63), (1 << 63) - 1, (300, 9), dtype=np.int64)
    b = a.copy()
    b[rng.random(300) < 0.3, rng.integers(0, 9)] ^= 1 << 62
    b[::17, 8] += 1
    for x, y in ((a, b), (a[:, 2:7], b[:, 2:7]), (a[::3], b[::3])):
        got = rc.rows_differ(x, y)
        assert got.dtype == np.bool_ and np.array_equal(got, (x != y).any(axis=1))
        assert np.array_equal(rc.rows_differ(x - y), (x != y).any(axis=1))
    assert 0 < rc.rows_differ(a, b).sum() < 300
    assert rc.rows_differ(np.zeros((0, 4), np.int64)).shape == (0,)
    with pytest.raises(ValueError):
        rc.rows_differ(a, b[:-1])
    with pytest.raises(ValueError):
        rc.rows_differ(a[0])


def _blank_model(table, groups):
    size = rangecoder.contexts(int(table[2].max()) + 1, groups)
    return np.zeros(size, np.uint32), np.zeros(size, np.uint8)


def test_a_table_ends_its_model_where_its_decoder_does_and_the_next_may_start_there():
    """``ended``: the model as the table left it, the same at both ends and compiled or
    not; a second table starting there round-trips; a table cut for its limit leaves
    ``ended`` as it was (the receiver never decodes the cut row)."""
    first, second = _table(7, 120, 5, 2, 0.3, 400), _table(8, 120, 5, 2, 0.3, 400)
    second = (second[0],) + first[1:3] + (second[3],)  # the same columns
    ends = {}
    for name, coder in _TWINS.items():
        sent, kept = _blank_model(first, 2), _blank_model(first, 2)
        data = coder.encode_table(*first, 2, ended=sent)
        coder.decode_table(data, *first[1:], 2, ended=kept)
        assert np.array_equal(sent[0], kept[0]) and np.array_equal(sent[1], kept[1])
        assert not np.array_equal(sent[0], rangecoder.prior(int(first[2].max()) + 1, 2))  # it learned
        again = coder.encode_table(*second, 2, start=sent)
        assert np.array_equal(coder.decode_table(again, *second[1:], 2, start=kept), second[0])
        ends[name] = sent
        cut = _blank_model(first, 2)
        table, rows = coder.encode_table(*first, 2, limit=40, ended=cut)
        assert rows < 120 and not cut[0].any() and not cut[1].any()
    if "compiled" in ends:
        assert all(np.array_equal(a, b) for a, b in zip(ends["compiled"], ends["source"]))
