"""Entropy-coded snapshots (a replication spec with coding="entropy", field groups, a
game's predictor, a rotation field): exact round trips against any baseline, parts that
apply on their own, a game's predictor, fewer bytes than packed on moving entities, and
hostile parts that error, never crash."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.quantize import Int, SmallestThree
from engine.replication import Replication
from engine.state import State
from netcode.errors import ProtocolError, UsageError
from netcode.statesync.snapshot import SnapshotSchema, apply_extras, apply_part, decode_part, encode_snapshot


def linear_hook(base, older, rows, ahead, gap, columns):
    """A game's predictor: positions keep their velocity, nothing else moves."""
    out = base.copy()
    c0, c1 = columns["pos"]
    out[rows, c0:c1] += (base[rows, c0:c1] - older[rows, c0:c1]) * ahead // gap
    return out


def make_schema(n, coding="entropy", predictor=linear_hook, model=None, carry=False):
    spec = Replication(
        alive="alive",
        fields={"rot": SmallestThree(9), "pos": Int(0, 1 << 30), "kind": Int(0, 7), "hp": Int(0, 100)},
        position="pos",
        extras=("score",),
        coding=coding,
        groups=(("pos", "hp"),),  # not side by side: the table reorders columns
        predictor=predictor,
        model=model,
        carry=carry,
    )
    template = State({"alive": np.ones(n, bool), "rot": np.zeros((n, 4)), "pos": np.zeros((n, 2), np.int64),
                      "kind": np.zeros(n, np.int64), "hp": np.zeros(n, np.int64), "score": np.zeros(4, np.int32)})
    return SnapshotSchema(spec, template)


def world(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rot = SmallestThree(9).quantize(q)
    pos = rng.integers(0, 1 << 20, (n, 2))
    return np.column_stack([rot, pos, rng.integers(0, 8, n), rng.integers(0, 101, n)]).astype(np.int64)


def turn(rng, codes, share):
    """Some entities turn a little (largest index switches included), move, get hurt."""
    out = codes.copy()
    who = rng.random(len(codes)) < share
    q = SmallestThree(9)
    unit = q.dequantize(codes[who, :4], np.dtype(np.float64)) + rng.normal(0, 0.05, (int(who.sum()), 4))
    out[who, :4] = q.quantize(unit / np.linalg.norm(unit, axis=1, keepdims=True))
    out[who, 4:6] = np.maximum(out[who, 4:6] + rng.integers(-300, 300, (int(who.sum()), 2)), 0)
    hurt = who & (rng.random(len(codes)) < 0.3)
    out[hurt, 7] = rng.integers(0, 101, int(hurt.sum()))
    return out


def receive(schema, parts, base=None, base_view=None, older=None, older_view=None, ticks=(42, 40, 38), drop=(), base_extras=None):
    """What the client makes of the parts (dropping those in ``drop``)."""
    n = schema.capacity
    if base is None:
        codes, view = np.zeros((n, schema.columns), np.int64), np.zeros(n, bool)
        motion = None
    else:
        codes = base if older is None else schema.predict(base, base_view, older, older_view, *ticks)
        motion = schema.motion(base, base_view, *(() if older is None else (older, older_view)))
        codes, view = codes.copy(), base_view.copy()
    extras = base_extras
    for i, p in enumerate(parts):
        assert len(p) <= 1150
        if i in drop:
            continue
        part = decode_part(p, n, schema.columns, schema.extras_size, schema.coding)
        apply_part(part, codes, view, schema.coding, motion)
        extras = apply_extras(part, extras)
    return codes, view, extras


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    share=st.floats(0, 1),
    churn=st.floats(0, 0.5),
    with_predictor=st.booleans(),
    budget=st.sampled_from([1150, 200]),
)
def test_round_trip_against_any_baseline(n, seed, share, churn, with_predictor, budget):
    rng = np.random.default_rng(seed)
    schema = make_schema(n)
    older = world(rng, n)
    base = turn(rng, older, 0.5)
    codes = turn(rng, base, share)
    older_view, base_view = rng.random(n) < 0.9, rng.random(n) < 0.8
    view = base_view ^ (rng.random(n) < churn)
    extras = np.arange(16, dtype=np.uint8).tobytes()
    kw = dict(base_tick=40, base_codes=base, base_view=base_view, base_extras=extras, coding=schema.coding)
    if with_predictor:
        kw["predictor"] = (38, older, older_view, schema.smooth)
    parts = encode_snapshot(42, codes, view, extras, budget=budget, **kw)
    got, got_view, got_extras = receive(schema, parts, base, base_view, *((older, older_view) if with_predictor else ()), base_extras=extras)
    assert np.array_equal(got_view, view)
    assert np.array_equal(got[view], codes[view])
    assert got_extras == extras
    # A full snapshot too.
    got, got_view, _ = receive(schema, encode_snapshot(42, codes, view, extras, budget=budget, coding=schema.coding))
    assert np.array_equal(got_view, view) and np.array_equal(got[view], codes[view])


def test_each_part_applies_on_its_own():
    rng = np.random.default_rng(5)
    n = 2000
    schema = make_schema(n)
    base = world(rng, n)
    codes = turn(rng, base, 0.6)
    view = np.ones(n, bool)
    parts = encode_snapshot(2, codes, view, b"", budget=400, base_tick=1, base_codes=base, base_view=view, base_extras=b"", coding=schema.coding)
    assert len(parts) > 2
    got, got_view, _ = receive(schema, parts, base, view, drop={1})
    lost = decode_part(parts[1], n, schema.columns, schema.extras_size, schema.coding)
    outside = np.ones(n, bool)
    outside[lost.lo : lost.hi] = False
    assert np.array_equal(got[outside], codes[outside])
    assert np.array_equal(got[~outside], base[~outside])  # the lost range stays as the baseline had it
    assert got_view.all()


def test_entropy_coding_beats_packed_on_turning_movers():
    rng = np.random.default_rng(9)
    n = 1000
    base = world(rng, n)
    codes = turn(rng, base, 0.1)
    view = np.ones(n, bool)
    sizes = {}
    for coding in ("packed", "entropy"):
        schema = make_schema(n, coding, None)
        parts = encode_snapshot(2, codes, view, b"", budget=1150, base_tick=1, base_codes=base, base_view=view, base_extras=b"", coding=schema.coding)
        got, _, _ = receive(schema, parts, base, view)
        assert np.array_equal(got, codes)
        sizes[coding] = sum(map(len, parts))
    assert sizes["entropy"] < 0.97 * sizes["packed"], sizes  # uniform noise: little to gain but the framing


def test_the_games_predictor_decides_what_is_a_surprise():
    """Entities moving as the game's predictor says cost next to nothing."""
    n = 1000
    rng = np.random.default_rng(2)
    older = world(rng, n)
    base = older.copy()
    base[:, 4:6] += rng.integers(0, 50, (n, 2))
    codes = base.copy()
    codes[:, 4:6] += (base[:, 4:6] - older[:, 4:6])  # one more step of the same motion
    view = np.ones(n, bool)
    schema = make_schema(n)
    parts = encode_snapshot(3, codes, view, b"", budget=1150, base_tick=2, base_codes=base, base_view=view, base_extras=b"",
                            predictor=(1, older, view, schema.smooth), coding=schema.coding)
    assert sum(map(len, parts)) < 40
    got, _, _ = receive(schema, parts, base, view, older, view, ticks=(3, 2, 1))
    assert np.array_equal(got, codes)


def test_hostile_parts_error_or_decode_never_crash():
    rng = np.random.default_rng(4)
    n = 300
    schema = make_schema(n)
    base = world(rng, n)
    codes = turn(rng, base, 0.3)
    view = np.ones(n, bool)
    [part] = encode_snapshot(2, codes, view, b"", budget=1150, base_tick=1, base_codes=base, base_view=view, base_extras=b"", coding=schema.coding)
    motion = schema.motion(base, view)

    def attempt(payload):
        try:
            p = decode_part(payload, n, schema.columns, schema.extras_size, schema.coding)
            apply_part(p, base.copy(), view.copy(), schema.coding, motion)
        except ProtocolError:
            return False
        return True

    assert attempt(part)
    assert not attempt(part[: len(part) // 2])
    assert not attempt(part + bytes(8))
    for cut in range(0, 14):  # inside the header
        assert not attempt(part[:cut])
    for _ in range(200):
        garbage = bytearray(part)
        for i in rng.integers(14, len(part), 4):
            garbage[i] = rng.integers(0, 256)
        attempt(bytes(garbage))  # some table, or a ProtocolError: never another error


def test_spec_options_are_checked():
    fields = {"pos": Int(0, 10), "hp": Int(0, 10)}
    with pytest.raises(ValueError):
        Replication(alive="alive", fields=fields, coding="zip")
    with pytest.raises(ValueError):
        Replication(alive="alive", fields=fields, groups=(("pos", "nope"),))
    with pytest.raises(ValueError):
        Replication(alive="alive", fields=fields, groups=(("pos",), ("pos", "hp")))
    with pytest.raises(TypeError):
        Replication(alive="alive", fields=fields, predictor=3)
    with pytest.raises(ValueError, match="entropy"):
        Replication(alive="alive", fields=fields, carry=True)
    with pytest.raises(TypeError, match="carry"):
        Replication(alive="alive", fields=fields, coding="entropy", carry="yes")
    # carrying models is part of the spec's identity: a client without it is refused
    plain = Replication(alive="alive", fields=fields, coding="entropy")
    assert repr(plain) != repr(dataclasses.replace(plain, carry=True))


def test_the_spec_reads_the_same_in_every_process():
    """The handshake's game fingerprint hashes the spec's repr: a predictor appears by its
    qualified name, not its address, and a spec without the coding options reads as
    before they existed (its games' fingerprints do not change)."""
    spec = make_schema(3).replication
    text = repr(spec)
    assert " at 0x" not in text and "predictor=test_snapshot_entropy.linear_hook" in text
    assert "coding='entropy'" in text and "groups=(('pos', 'hp'),)" in text
    plain = Replication(alive="alive", fields={"pos": Int(0, 9)}, position="pos")
    assert repr(plain) == "Replication(alive='alive', fields={'pos': Int(low=0, high=9)}, position='pos', extras=(), continuous=())"


def hp_from_kind(expected, known, columns):
    """A game's second guess: an entity whose kind changed has ten times its kind in hp
    (any kind a peer sends gives an hp); the others keep the expected hp."""
    out = expected.copy()
    k, h = columns["kind"][0], columns["hp"][0]
    changed = known[:, k] != expected[:, k]
    out[changed, h] = np.clip(known[changed, k], 0, 10) * 10
    return out


def make_refined_schema(n, refine=hp_from_kind):
    spec = Replication(
        alive="alive",
        fields={"rot": SmallestThree(9), "pos": Int(0, 1 << 30), "kind": Int(0, 7), "hp": Int(0, 100)},
        position="pos", coding="entropy", groups=(("pos", "hp"),), predictor=linear_hook,
        refine=refine, refined=("hp",),
    )
    template = State({"alive": np.ones(n, bool), "rot": np.zeros((n, 4)), "pos": np.zeros((n, 2), np.int64),
                      "kind": np.zeros(n, np.int64), "hp": np.zeros(n, np.int64)})
    return SnapshotSchema(spec, template)


def test_refine_guesses_a_field_again_from_the_updates_others():
    """Entities whose kind changes take the hp the game's refine says: the update costs
    their kind, not their hp too; entities whose kind came as expected keep the expected
    hp; every part decodes back, also cut small."""
    n = 400
    rng = np.random.default_rng(7)
    older = world(rng, n)
    base = older.copy()
    codes = base.copy()
    changed = rng.random(n) < 0.3
    codes[changed, 6] = (codes[changed, 6] + 1) % 8
    codes[changed, 7] = codes[changed, 6] * 10  # as refine guesses
    hurt = ~changed & (rng.random(n) < 0.2)
    codes[hurt, 7] = (codes[hurt, 7] + 7) % 101  # kind as expected: hp sent against the expected hp
    view = np.ones(n, bool)
    sizes = {}
    for name, schema in (("refined", make_refined_schema(n)), ("plain", make_schema(n))):
        extras = b"" if name == "refined" else bytes(16)  # the plain schema's score: unchanged

        def encode(budget):
            return encode_snapshot(3, codes, view, extras, budget=budget, base_tick=2, base_codes=base, base_view=view,
                                   base_extras=extras, predictor=(1, older, view, schema.smooth), coding=schema.coding)

        sizes[name] = sum(map(len, encode(1 << 20)))
        for budget in (1150, 120):
            got, _, _ = receive(schema, encode(budget), base, view, older, view, ticks=(3, 2, 1), base_extras=extras)
            assert np.array_equal(got, codes)
    assert sizes["refined"] < sizes["plain"] - 60, sizes  # about 120 hp values not sent


def test_refine_runs_on_hostile_parts_without_crashing_and_is_checked():
    n = 200
    rng = np.random.default_rng(8)
    schema = make_refined_schema(n)
    base = world(rng, n)
    codes = turn(rng, base, 0.4)
    codes[:, 6] = rng.integers(0, 8, n)
    view = np.ones(n, bool)
    [part] = encode_snapshot(2, codes, view, b"", budget=1150, base_tick=1, base_codes=base, base_view=view, base_extras=b"", coding=schema.coding)
    motion = schema.motion(base, view)
    for _ in range(100):
        garbage = bytearray(part)
        for i in rng.integers(14, len(part), 4):
            garbage[i] = rng.integers(0, 256)
        try:
            p = decode_part(bytes(garbage), n, schema.columns, schema.extras_size, schema.coding)
            apply_part(p, base.copy(), view.copy(), schema.coding, motion)
        except ProtocolError:
            pass
    bad = make_refined_schema(n, refine=lambda expected, known, columns: expected.astype(np.int32))
    with pytest.raises(TypeError):
        encode_snapshot(2, codes, view, b"", budget=1150, base_tick=1, base_codes=base, base_view=view, base_extras=b"", coding=bad.coding)
    assert schema.coding.describe()["predictor"]  # the browser does not run the game's functions
    fields = {"pos": Int(0, 10), "hp": Int(0, 10), "rot": SmallestThree(9)}
    for options in ({"refine": hp_from_kind}, {"refined": ("hp",)}, {"refine": hp_from_kind, "refined": ("hp",)},
                    {"refine": hp_from_kind, "refined": ("nope",), "coding": "entropy"},
                    {"refine": hp_from_kind, "refined": ("rot",), "coding": "entropy"},
                    {"refine": hp_from_kind, "refined": ("pos", "hp", "rot"), "coding": "entropy"}):
        with pytest.raises(ValueError):
            Replication(alive="alive", fields=fields, **options)
    spec = make_refined_schema(3).replication
    assert "refine=test_snapshot_entropy.hp_from_kind, refined=('hp',)" in repr(spec)


def carry_chain(schema, rng, n, steps, budget=1150, learn=True):
    """A chain of snapshots, each coded against the one before, each with the carried model
    its baseline's left (``learn``) or afresh; the receiver keeps its own models. The
    packets' sizes and part counts."""
    coding = schema.coding
    base = world(rng, n)
    view = np.ones(n, bool)
    sent = kept = None  # the models sender and receiver hold for the baseline
    sizes, counts = [], []
    for t in range(1, steps + 1):
        codes = turn(rng, base, 0.3)
        new_sent, new_kept = (coding.carried(), coding.carried()) if learn else (None, None)
        parts = encode_snapshot(t, codes, view, b"", budget=budget, base_tick=t - 1, base_codes=base, base_view=view, base_extras=b"",
                                coding=coding, start=sent, end=new_sent)
        got, got_view = base.copy(), view.copy()
        for p in parts:
            apply_part(decode_part(p, n, schema.columns, schema.extras_size, coding), got, got_view, coding, None, kept, new_kept)
        assert np.array_equal(got, codes)
        if learn:
            assert np.array_equal(new_sent[0], new_kept[0]) and np.array_equal(new_sent[1], new_kept[1])
            if len(parts) > 1:  # parts decode alone, so a snapshot of several teaches nothing
                start = coding.carried(sent)
                assert np.array_equal(new_kept[0], start[0]) and np.array_equal(new_kept[1], start[1])
        sizes.append(sum(map(len, parts)))
        counts.append(len(parts))
        base, sent, kept = codes, new_sent, new_kept
    return sizes, counts


def test_carried_models_end_alike_at_both_ends_and_save_bytes():
    """A snapshot's coder may start where its baseline's ended: the receiver, decoding,
    ends where the sender did, and later packets need not learn again (fewer bytes than
    starting each from the prior)."""
    n = 300
    fresh, _ = carry_chain(make_schema(n), np.random.default_rng(21), n, 8, learn=False)
    carried, _ = carry_chain(make_schema(n), np.random.default_rng(21), n, 8)
    assert carried[0] == fresh[0]  # the first starts from the prior either way
    assert sum(carried[1:]) < 0.97 * sum(fresh[1:])


def test_a_snapshot_of_many_parts_carries_its_baselines_model():
    _, counts = carry_chain(make_schema(2000), np.random.default_rng(22), 2000, 3, budget=400)
    assert min(counts) > 1  # every snapshot was several parts: carry_chain checked each kept its start


def test_carried_models_are_checked():
    schema = make_schema(10)
    codes = world(np.random.default_rng(23), 10)
    view = np.ones(10, bool)
    kw = dict(base_tick=1, base_codes=codes, base_view=view, base_extras=b"")
    probs, seen = schema.coding.carried()
    with pytest.raises(ValueError, match="end model"):
        encode_snapshot(2, codes + 1, view, b"", budget=1150, coding=schema.coding, end=(probs[:-1].copy(), seen), **kw)
    with pytest.raises(ValueError, match="end model"):
        encode_snapshot(2, codes + 1, view, b"", budget=1150, coding=schema.coding, end=(probs.astype(np.int64), seen), **kw)
    with pytest.raises(ValueError, match="contexts"):
        encode_snapshot(2, codes + 1, view, b"", budget=1150, coding=schema.coding, start=(probs[:5], seen[:5]), **kw)
    packed = make_schema(10, coding="packed", predictor=None)
    with pytest.raises(UsageError, match="entropy"):
        encode_snapshot(2, codes, view, b"", budget=1150, coding=packed.coding, end=(probs, seen), **kw)


def test_a_reset_delta_decodes_for_a_receiver_holding_any_model():
    """carry=True: a delta coded from the spec's model (no ``start``: the server re-merging
    clients' model chains) is flagged RESET, so receivers holding different models for its
    baseline all decode it, and all end in the model the sender recorded."""
    n = 300
    schema = make_schema(n, carry=True)
    coding = schema.coding
    rng = np.random.default_rng(31)
    base = world(rng, n)
    view = np.ones(n, bool)
    kw = dict(base_tick=1, base_codes=base, base_view=view, base_extras=b"", coding=coding)
    # Two receivers hold snapshot 1 with different models (it reached them as deltas from
    # different older snapshots: their chains parted ways).
    held = []
    for share in (0.2, 0.6):
        model = coding.carried()
        older = turn(rng, base, share)
        encode_snapshot(1, base, view, b"", budget=1150, base_tick=0, base_codes=older, base_view=view, base_extras=b"",
                        coding=coding, end=model)
        held.append(model)
    assert not np.array_equal(held[0][0], held[1][0])
    codes = turn(rng, base, 0.3)
    for budget in (1150, 300):  # one part (its table teaches the model) and several
        end = coding.carried()
        parts = encode_snapshot(2, codes, view, b"", budget=budget, end=end, **kw)
        decoded = [decode_part(p, n, schema.columns, schema.extras_size, coding) for p in parts]
        assert all(d.reset for d in decoded) and (len(parts) > 1) == (budget == 300)
        for start in held:
            got, got_view, kept = base.copy(), view.copy(), coding.carried()
            for d in decoded:
                apply_part(d, got, got_view, coding, None, start, kept)
            assert np.array_equal(got, codes)
            assert np.array_equal(kept[0], end[0]) and np.array_equal(kept[1], end[1])
        # Coded from a model the receiver holds, the parts carry no flag (and a receiver
        # holding another model could not decode them: the flag is what makes a reset safe).
        parts = encode_snapshot(2, codes, view, b"", budget=budget, start=held[0], end=coding.carried(), **kw)
        assert not any(decode_part(p, n, schema.columns, schema.extras_size, coding).reset for p in parts)


def test_a_reset_flag_where_none_can_be_is_refused():
    """Hostile input: RESET on a spec without carried models, or on a full snapshot."""
    n = 50
    carrying, plain = make_schema(n, carry=True), make_schema(n)
    rng = np.random.default_rng(32)
    base = world(rng, n)
    view = np.ones(n, bool)
    parts = encode_snapshot(2, turn(rng, base, 0.5), view, b"", budget=1150, base_tick=1, base_codes=base, base_view=view,
                            base_extras=b"", coding=carrying.coding, end=carrying.coding.carried())
    assert len(parts) == 1 and decode_part(parts[0], n, carrying.columns, carrying.extras_size, carrying.coding).reset
    with pytest.raises(ProtocolError, match="RESET"):  # the same bytes, to a carry=False spec's receiver
        decode_part(parts[0], n, plain.columns, plain.extras_size, plain.coding)
    full = encode_snapshot(2, base, view, bytes(carrying.extras_size), budget=1150, coding=carrying.coding, end=carrying.coding.carried())[0]
    assert not decode_part(full, n, carrying.columns, carrying.extras_size, carrying.coding).reset
    at = 7  # u32 tick, varint 0 (no baseline), varint 0 (no predictor), varint 0 (one part), then the sections
    flagged = full[:at] + bytes([full[at] | 16]) + full[at + 1 :]
    with pytest.raises(ProtocolError, match="RESET"):
        decode_part(flagged, n, carrying.columns, carrying.extras_size, carrying.coding)


def test_carried_models_stay_in_step_over_a_lossy_network():
    """The protocol carried models ask for, over the seeded network simulator (20% loss,
    duplicates, reordering, jitter, in both directions): the sender codes each snapshot
    against the newest one the receiver acked, starting from the model it kept for it;
    the receiver decodes a snapshot once it has all its parts and its baseline, keeps
    its model and acks. Every snapshot it completes is the sender's, with the sender's
    model, although many packets and acks are lost."""
    from netcode.sim.network import LinkConfig, NetSim

    n, ticks = 300, 150
    schema = make_schema(n)
    coding = schema.coding
    rng = np.random.default_rng(31)
    net = NetSim(7, LinkConfig(latency=0.03, jitter=0.02, loss=0.2, duplicate=0.05, reorder=0.1))
    server, client = ("10.0.0.1", 1), ("10.0.0.2", 1)
    view = np.ones(n, bool)
    extras = bytes(schema.extras_size)
    sent_codes, sent_models = {}, {}
    acked = None  # the newest tick the sender heard acked
    held_codes, held_models, pending = {}, {}, {}
    codes = world(rng, n)
    learned_starts = completed = 0
    for t in range(1, ticks + 1):
        now = t / 30
        codes = turn(rng, codes, 0.2)
        sent_codes[t] = codes
        sent_models[t] = coding.carried()
        kw = {} if acked is None else dict(base_tick=acked, base_codes=sent_codes[acked], base_view=view, base_extras=extras)
        start = None if acked is None else sent_models[acked]
        for p in encode_snapshot(t, codes, view, extras, budget=600, coding=coding, start=start, end=sent_models[t], **kw):
            net.send(server, client, p, now)
        for dst, _src, data in net.deliver(now + 1 / 60):
            if dst == server:  # an ack
                tick = int.from_bytes(data, "little")
                acked = tick if acked is None or tick > acked else acked
                continue
            part = decode_part(data, n, schema.columns, schema.extras_size, coding)
            pending.setdefault(part.tick, {})[part.index] = part
            got = pending[part.tick]
            if len(got) < part.count or part.tick in held_codes:
                continue
            if part.base is not None and part.base not in held_codes:
                continue  # (a baseline this receiver never completed cannot have been acked)
            base = held_codes[part.base] if part.base is not None else np.zeros((n, schema.columns), np.int64)
            start = held_models.get(part.base)
            learned_starts += start is not None
            mine, mine_view, kept = base.copy(), view.copy() if part.base is not None else np.zeros(n, bool), coding.carried()
            for each in got.values():
                apply_part(each, mine, mine_view, coding, None, start, kept)
            assert np.array_equal(mine, sent_codes[part.tick]), part.tick
            assert all(np.array_equal(a, b) for a, b in zip(kept, sent_models[part.tick])), part.tick
            held_codes[part.tick], held_models[part.tick] = mine, kept
            completed += 1
            net.send(client, server, part.tick.to_bytes(4, "little"), now)
    assert completed > ticks // 3 and learned_starts > ticks // 4, (completed, learned_starts)
