"""Snapshot codec: exact round trips, parts that apply on their own, budget and sizes."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demos.arena import Arena
from engine.quantize import Angle, Exact, Fixed, Int
from engine.replication import Replication
from engine.state import State
from helpers import numpy_path
from netcode.statesync import bits
from netcode.statesync.bits import pack_uint, unpack_uint
from netcode.errors import ProtocolError
from netcode.statesync.snapshot import SnapshotSchema, apply_extras, apply_part, decode_part, encode_snapshot, predict
from netcode.session.wire import Reader

BUDGET = 1150


def decode_all(parts, schema, base_codes=None, base_view=None, drop=(), base_extras=None, expected=None):
    codes = np.zeros((schema.capacity, schema.columns), np.int64) if base_codes is None else base_codes.copy()
    if expected is not None:
        codes = expected.copy()
    view = np.zeros(schema.capacity, bool) if base_view is None else base_view.copy()
    extras = base_extras
    for i, p in enumerate(parts):
        assert len(p) <= BUDGET
        if i in drop:
            continue
        part = decode_part(p, schema.capacity, schema.columns, schema.extras_size)
        apply_part(part, codes, view)
        extras = apply_extras(part, extras)
    return codes, view, extras


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 600),
    cols=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    churn=st.floats(0, 1),
    move=st.floats(0, 1),
    spread=st.sampled_from([1, 16, 1 << 10, 1 << 20, (1 << 31) - 1]),
    with_base=st.booleans(),
    with_predictor=st.booleans(),
    extras_change=st.integers(0, 3),
)
def test_round_trip_against_any_baseline(n, cols, seed, churn, move, spread, with_base, with_predictor, extras_change):
    rng = np.random.default_rng(seed)
    base_codes = rng.integers(0, spread, (n, cols), dtype=np.int64)
    base_view = rng.random(n) < 0.7
    older = base_codes - rng.integers(-50, 50, (n, cols))  # the motion before the baseline
    older_view = rng.random(n) < 0.9
    codes = base_codes.copy()
    moving = rng.random(n) < move
    codes[moving] = rng.integers(0, spread, (int(moving.sum()), cols))
    steady = rng.random(n) < 0.5  # these kept moving exactly as before
    codes[steady] = np.maximum(2 * base_codes[steady] - older[steady], 0)  # codes are never negative
    view = base_view.copy()
    flip = rng.random(n) < churn * 0.3
    view[flip] = ~view[flip]
    base_extras = rng.bytes(64)
    extras = bytearray(base_extras)
    for i in rng.integers(0, 64, extras_change):
        extras[i] ^= 0x55
    extras = bytes(extras)
    smooth = rng.random(cols) < 0.5

    class Schema:
        capacity, columns, extras_size = n, cols, 64

    kw, expected = {}, None
    if with_base:
        kw = dict(base_tick=40, base_codes=base_codes, base_view=base_view, base_extras=base_extras)
        if with_predictor:
            kw["predictor"] = (38, older, older_view, smooth)
            expected = predict(base_codes, base_view, older, older_view, 42, 40, 38, smooth)
    parts = encode_snapshot(42, codes, view, extras, budget=BUDGET, **kw)
    got_codes, got_view, got_extras = decode_all(
        parts, Schema, *((base_codes, base_view) if with_base else (None, None)), base_extras=base_extras if with_base else None, expected=expected
    )
    assert np.array_equal(got_view, view)
    assert np.array_equal(got_codes[view], codes[view])
    assert got_extras == extras


def test_steady_motion_costs_a_bit_per_column():
    """Entities moving exactly as between the predictor and the baseline: no deltas sent."""
    n = 1000
    rng = np.random.default_rng(3)
    older = rng.integers(0, 60000, (n, 2))
    base = older + rng.integers(-96, 97, (n, 2))
    codes = base + (base - older)  # one more step of the same motion
    view = np.ones(n, bool)
    smooth = np.ones(2, bool)
    plain = encode_snapshot(6, codes, view, b"", budget=BUDGET, base_tick=4, base_codes=base, base_view=view, base_extras=b"")
    predicted = encode_snapshot(
        6, codes, view, b"", budget=BUDGET, base_tick=4, base_codes=base, base_view=view, base_extras=b"", predictor=(2, older, view, smooth)
    )
    assert sum(map(len, predicted)) * 4 < sum(map(len, plain))
    assert sum(map(len, predicted)) < 0.05 * n


def test_unchanged_entities_cost_next_to_nothing():
    n = 1000
    codes = np.arange(n * 5, dtype=np.int64).reshape(n, 5)
    view = np.ones(n, bool)
    parts = encode_snapshot(2, codes, view, b"", budget=BUDGET, base_tick=1, base_codes=codes, base_view=view, base_extras=b"")
    assert len(parts) == 1 and len(parts[0]) < 20


def test_a_snapshot_that_fits_one_part_goes_as_one_although_its_quick_bound_does_not():
    """The encoder's quick size bound takes every value at its column's widest: one far
    outlier makes it loose. The snapshot must still go whole, not cut for nothing."""
    n = 1000
    base = np.zeros((n, 2), np.int64)
    codes = base.copy()
    codes[::3, 0] = 1  # 334 small updates
    codes[7, 1] = (1 << 40) + 12345  # and one far outlier
    view = np.ones(n, bool)

    def encode(budget):
        return encode_snapshot(5, codes, view, b"", budget=budget, base_tick=4, base_codes=base, base_view=view, base_extras=b"")

    parts = encode(BUDGET)
    assert len(parts) == 1  # about 200 bytes, though the bound says over 3 KB
    got, got_view, _ = decode_all(parts, SimpleNamespace(capacity=n, columns=2, extras_size=0), base_codes=base, base_view=view)
    assert np.array_equal(got, codes) and got_view.all()
    # Where it does not fit, it is cut, and every part keeps to the budget.
    small = encode(120)
    assert len(small) > 1 and all(len(p) <= 120 for p in small)
    got, _, _ = decode_all(small, SimpleNamespace(capacity=n, columns=2, extras_size=0), base_codes=base, base_view=view)
    assert np.array_equal(got, codes)


def test_each_part_applies_on_its_own():
    game = Arena(npcs=1000)
    state = game.create(1, 8)
    schema = SnapshotSchema(game.replication, state)
    codes, alive, extras = schema.quantize(state)
    parts = encode_snapshot(0, codes, alive, extras, budget=BUDGET)
    assert len(parts) > 2
    # Lose the middle part: everything else still lands, exactly.
    got_codes, got_view, _ = decode_all(parts, schema, drop={1})
    lost = decode_part(parts[1], schema.capacity, schema.columns, schema.extras_size)
    outside = np.ones(schema.capacity, bool)
    outside[lost.lo : lost.hi] = False
    assert np.array_equal(got_view[outside], alive[outside])
    assert np.array_equal(got_codes[outside & alive], codes[outside & alive])
    assert not got_view[lost.lo : lost.hi].any()


def test_moving_world_delta_is_small():
    """1000 NPCs all moving: the delta of two ticks is a fraction of a full snapshot."""
    game = Arena(npcs=1000, moving=1.0)
    state = game.create(1, 8)
    schema = SnapshotSchema(game.replication, state)
    for t in range(10):
        game.step(state, game.neutral_inputs(8), t)
    base = schema.quantize(state)
    for t in range(10, 12):
        game.step(state, game.neutral_inputs(8), t)
    now = schema.quantize(state)
    full = sum(map(len, encode_snapshot(12, *now, budget=BUDGET)))
    delta = encode_snapshot(12, *now, budget=BUDGET, base_tick=10, base_codes=base[0], base_view=base[1], base_extras=base[2])
    size = sum(map(len, delta))
    assert size < full / 2
    got, view, _ = decode_all(delta, schema, base[0], base[1])
    assert np.array_equal(got[view], now[0][view])


def test_include_limits_creates_and_updates_but_destroys_always_go():
    n = 50
    base_codes = np.zeros((n, 2), np.int64)
    base_view = np.ones(n, bool)
    codes = base_codes + 1
    view = base_view.copy()
    view[:5] = False  # destroyed
    include = np.zeros(n, bool)
    include[10:20] = True
    parts = encode_snapshot(3, codes, view, b"", budget=BUDGET, base_tick=2, base_codes=base_codes, base_view=base_view, base_extras=b"", include=include)
    got, got_view, _ = decode_all(parts, type("S", (), {"capacity": n, "columns": 2, "extras_size": 0}), base_codes, base_view)
    assert not got_view[:5].any()
    assert (got[10:20] == 1).all() and (got[20:] == 0).all()


def test_quantizers_round_trip_within_tolerance():
    rng = np.random.default_rng(4)
    fixed = Fixed(-100.0, 100.0, 0.01)
    x = rng.uniform(-100, 100, 1000)
    assert np.abs(fixed.dequantize(fixed.quantize(x), np.dtype(np.float64)) - x).max() <= fixed.tolerance + 1e-9
    angle = Angle(10)
    a = rng.uniform(-np.pi, np.pi, 1000)
    back = angle.dequantize(angle.quantize(a), np.dtype(np.float64))
    err = np.abs((back - a + np.pi) % (2 * np.pi) - np.pi)
    assert err.max() <= angle.tolerance + 1e-9
    assert fixed.quantize(np.array([np.nan, np.inf, -np.inf])).tolist() == [0, fixed.levels, 0]
    exact = Exact()
    v = np.array([-5, 0, 7], np.int16)
    assert np.array_equal(exact.dequantize(exact.quantize(v), np.dtype(np.int16)), v)


def test_schema_applies_dequantized_values_to_a_state():
    spec = Replication(alive="alive", fields={"pos": Fixed(0.0, 10.0, 0.5), "kind": Int(0, 3)}, position="pos")
    s = State({"alive": np.array([True, False, True]), "pos": np.array([[1.2, 2.0], [3.0, 4.0], [9.9, 0.1]]), "kind": np.array([1, 2, 3], np.int8)})
    schema = SnapshotSchema(spec, s)
    codes, alive, extras = schema.quantize(s)
    t = s.copy()
    t.pos[:] = 0
    schema.apply(t, codes, alive, extras)
    assert np.allclose(t.pos[alive], s.pos[alive], atol=0.25) and list(t.alive) == [True, False, True]


def test_hostile_parts_are_protocol_errors():
    codes = np.ones((10, 2), np.int64)
    [part] = encode_snapshot(1, codes, np.ones(10, bool), b"", budget=BUDGET)
    for cut in range(len(part)):
        with pytest.raises(ProtocolError):
            decode_part(part[:cut], 10, 2, 0)
    with pytest.raises(ProtocolError):
        decode_part(part, 5, 2, 0)  # ids beyond this client's capacity
    with pytest.raises(ProtocolError):
        decode_part(part + b"\0", 10, 2, 0)


@given(st.lists(st.integers(0, 2**20 - 1), max_size=200), st.integers(20, 40))
def test_bit_packing_round_trip(values, width):
    v = np.array(values, np.int64)
    assert np.array_equal(unpack_uint(pack_uint(v, width), len(v), width), v)


@given(st.lists(st.integers(0, 2**62), min_size=1, max_size=bits._SMALL) | st.lists(st.integers(0, 300), min_size=1, max_size=bits._SMALL))
def test_short_arrays_pack_exactly_as_long_ones(values):
    """Short arrays take a plain-Python path (cheaper there): the same bytes as numpy's.
    (Both without the compiled packer, which would otherwise take every int64 column.)"""
    with numpy_path():
        _short_arrays_pack_exactly_as_long_ones(values)


def _short_arrays_pack_exactly_as_long_ones(values):
    v = np.array(values, np.int64)
    padded = np.concatenate([v, np.zeros(bits._SMALL + 1 - len(v), np.int64)])  # long: the numpy path
    width = bits.width_of(v)
    assert pack_uint(v, width) == pack_uint(padded, width)[: bits.packed_size(len(v), width)]
    w, top = bits._choose_width(v)
    # The numpy path's choice for the same values (its cost model, evaluated directly).
    ws = np.arange(1, top) if top > 1 else np.arange(0)
    s = np.sort(v)
    costs = len(v) * ws + (len(v) - np.searchsorted(s, (np.int64(1) << ws) - 1)) * top + 8
    expected = int(ws[int(np.argmin(costs))]) if len(ws) and costs.min() < len(v) * top else top
    assert (w, top) == (expected, width)
    r = Reader(bits.pack_escaped(v))
    assert np.array_equal(bits.unpack_escaped(r, len(v)), v)
    r.done()



def test_history_slots_are_per_snapshot_not_per_tick():
    from netcode.statesync.snapshot import SnapshotHistory

    game = Arena(npcs=4)
    state = game.create(1, 2)
    schema = SnapshotSchema(game.replication, state)
    history = SnapshotHistory(schema, depth=8, every=3)
    codes, alive, extras = schema.quantize(state)
    for tick in range(0, 30, 3):
        codes[0, 0] = tick
        history.add(tick, codes, alive, extras)
    assert [t for t in range(30) if history.has(t)] == list(range(6, 30, 3))  # the newest 8
    assert history.codes[history.index(27)][0, 0] == 27
    assert list(history.index(np.array([6, 27]))) == [history.index(6), history.index(27)]
    with pytest.raises(Exception):
        history.add(31, codes, alive, extras)


def test_history_held_is_each_entitys_value_of_its_own_snapshot_the_same_compiled_and_interpreted():
    """SnapshotHistory.held: per entity, the codes of the snapshot whose value a client holds
    (ticks per entity, -1 for none), whether the history still has it (a tick it has not,
    one it replaced, none), and which entities differ from a new snapshot in how many
    columns, as numpy's gather and comparisons say, both builds; bad shapes are refused."""
    from helpers import source_twin

    from netcode.statesync import history as compiled_history

    source = source_twin("netcode.statesync.history")
    game = Arena(npcs=60)
    state = game.create(1, 2)
    schema = SnapshotSchema(game.replication, state)
    rng = np.random.default_rng(12)
    codes, alive, extras = schema.quantize(state)
    n, w = codes.shape
    for module in (compiled_history, source):
        history = module.SnapshotHistory(schema, depth=8, every=2)
        for tick in range(0, 40, 2):  # the newest 8: ticks 24..38
            history.add(tick, codes + rng.integers(-2, 3, codes.shape) * (rng.random(codes.shape) < 0.3), alive, extras)
        now = codes + rng.integers(-1, 2, codes.shape) * (rng.random(codes.shape) < 0.2)
        ticks = rng.choice(np.array([-1, 24, 30, 38, 8, 22, 31, 37]), n)  # held; replaced (8, 22: their slots hold 24, 38); never kept
        base, avail, changed, differing = history.held(ticks, now)
        slots = history.index(ticks)
        want = history.codes[slots, np.arange(n)]
        assert np.array_equal(base, want) and base.dtype == np.int64
        assert np.array_equal(avail, (ticks >= 0) & (history.ticks[slots] == ticks)) and avail.dtype == np.bool_
        assert avail[np.isin(ticks, [24, 30, 38])].all() and not avail[np.isin(ticks, [-1, 8, 22, 31, 37])].any()
        assert np.array_equal(changed, (now != want).any(axis=1)) and np.array_equal(differing, (now != want).sum(axis=1))
        assert (differing[changed] > 0).all() and not differing[~changed].any()
        for bad in ((ticks[:-1], now), (ticks, now[:, :-1]), (ticks, now[:-1])):
            with pytest.raises(ValueError, match="entities"):
                history.held(*bad)


def test_what_a_budgeted_client_is_owed_and_holds_after_a_send_as_numpy_says_in_both_builds():
    """history.owed (what a byte-budgeted client wants, each entity's priority and cost,
    what it must destroy, what it holds) and history.after_sending (the snapshot whose value
    of each entity it holds once sent), compiled and interpreted, against numpy's masks
    over every combination of in view, held, deltable, changed and sent."""
    from helpers import source_twin

    from netcode.statesync import history as compiled_history

    source = source_twin("netcode.statesync.history")
    rng = np.random.default_rng(5)
    n, columns, tick = 400, 7, 90
    ticks = np.where(rng.random(n) < 0.2, -1, rng.integers(0, 89, n))
    view = rng.random(n) < 0.7
    avail = (ticks >= 0) & (rng.random(n) < 0.8)
    differing = np.where(rng.random(n) < 0.5, rng.integers(1, columns + 1, n), 0).astype(np.int32)
    changed = differing > 0
    include = rng.random(n) < 0.5
    for module in (compiled_history, source):
        wanted, priority, cost, gone, holds = module.owed(ticks, view, avail, changed, differing, columns)
        assert np.array_equal(wanted, view & (~avail | changed)) and wanted.dtype == np.bool_
        assert np.array_equal(priority, 1.0 + changed) and priority.dtype == np.float64
        assert np.array_equal(cost, np.where(avail, 1 + 2 * differing, 2 + 3 * columns)) and cost.dtype == np.int64
        assert np.array_equal(holds, ticks >= 0) and np.array_equal(gone, holds & ~avail & ~view)
        after = module.after_sending(ticks, view, avail, changed, include, tick)
        expected = ticks.copy()
        expected[view & avail & ~changed] = tick
        expected[include] = tick
        expected[~view] = -1
        assert np.array_equal(after, expected) and after.dtype == np.int64
        with pytest.raises(ValueError, match="view: 400 entities"):
            module.owed(ticks, view[:-1], avail, changed, differing, columns)
        with pytest.raises(ValueError, match="include: 400 entities"):
            module.after_sending(ticks, view, avail, changed, include[:-1], tick)


def test_rows_that_differ_are_found_alike_by_the_compiled_coder_and_by_numpy(monkeypatch):
    """The encoder's test of which rows changed: the compiled coder's pass where the
    install has it, numpy's where it runs the coder's source; both give numpy's rows."""
    from netcode.statesync import rangecoder
    from netcode.statesync.snapshot import _rows_differ

    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, (300, 7))
    b = np.where(rng.random((300, 7)) < 0.05, rng.integers(0, 4, (300, 7)), a)
    expected = (a != b).any(axis=1)
    for compiled in (rangecoder.compiled, False):
        monkeypatch.setattr(rangecoder, "compiled", compiled)
        got = _rows_differ(a, b)
        assert got.dtype == np.bool_ and np.array_equal(got, expected)
