"""A differential fuzz of the browser's snapshot decoder (netcode/server/web/ticksync.js,
entropy.js, bodies.js) against Python's (netcode.statesync.snapshot's decode_part and
apply_part) on hostile parts.

Seeded valid parts of several specs (packed coding; entropy coding; entropy with carried
coder models; entropy with the engine's rigid-body predictor; full snapshots and deltas,
cut into several parts by small budgets) are mutated (bits flipped, bytes overwritten,
cut at each field's boundary, bytes appended or inserted, runs duplicated or dropped,
one-byte fields set to edge values or written as overlong varints) and each mutated part
is applied by both decoders to the same baseline, predictor and carried model (the sound
ones, and ones a hostile server's earlier parts may have left). They must agree: both
refuse it (the browser with a ProtocolError, never another exception), or both accept it
and rebuild the same codes, view and extras (and end in the same carried model). Every
disagreement is reported with the ``fuzz(...)`` call that makes it again.

The default run fuzzes a few hundred mutated parts per spec; ``pytest -m soak`` sweeps
more seeds and mutations.
"""

from __future__ import annotations

import dataclasses
import struct
from unittest import mock

import numpy as np
import pytest

import test_protocol_vectors as vectors
from engine.quantize import SmallestThree
from engine.state import State
from netcode.errors import ProtocolError
from netcode.session.wire import Reader
from netcode.statesync.bits import pack_escaped, pack_uint, unpack_escaped, zigzag_array
from netcode.statesync import snapshot
from netcode.statesync.snapshot import CREATE, UPDATE, SnapshotSchema, apply_extras, apply_part, decode_part, encode_snapshot, predict
from test_web_client import _entropy_schema, _entropy_state, _entropy_worlds, _random_snapshot, js

MUTATIONS = 500  # random mutations per spec in the default run, beside the cuts at boundaries
CUTS = 60  # cuts at field boundaries per spec in the default run
SAFE = 1 << 53  # the browser holds integers below this exactly (a double)


# -- valid parts: (schema, the unit.mjs "apply" op that applies them, its parts) ------------------------


def _older(rng, base: np.ndarray, reach: int = 40) -> dict:
    """A predictor snapshot for an op that names none: a mutated part may come to name one."""
    older = base.copy()
    older[:, -1] -= rng.integers(-reach, reach + 1, len(base))
    return {"tick": 90, "codes": older.ravel().tolist(), "view": [1] * len(base)}


def packed_cases(rng) -> list:
    """Packed coding: a full snapshot, a delta and a predicted delta of random data
    (test_web_client's), cut into parts, with 12 bytes of extras."""
    n, columns, smooth = 60, 5, np.array([1, 1, 0, 0, 0])
    codes, view, base, base_view = _random_snapshot(rng, n)
    pred = base.copy()
    pred[:, :2] = np.clip(pred[:, :2] - rng.integers(-40, 41, (n, 2)), 0, 65535)
    extras = rng.integers(0, 256, 12, dtype=np.uint8).tobytes()
    base_extras = extras[:3] + b"\x00" + extras[4:]
    common = dict(budget=int(rng.choice([150, 250])), base_tick=96, base_codes=base, base_view=base_view, base_extras=base_extras)
    op = {"op": "apply", "capacity": n, "columns": columns, "extras_size": 12, "codes": base.ravel().tolist(), "view": base_view.astype(int).tolist(),
          "extras": base_extras.hex(), "pred": {"tick": 92, "codes": pred.ravel().tolist(), "view": [1] * n}, "smooth": smooth.tolist()}
    return [
        (None, op, encode_snapshot(100, codes, view, extras, budget=common["budget"])),
        (None, op, encode_snapshot(100, codes, view, extras, **common)),
        (None, op, encode_snapshot(100, codes, view, extras, **common, predictor=(92, pred, np.ones(n, bool), smooth.astype(bool)))),
    ]


def entropy_cases(rng) -> list:
    """Entropy coding (test_web_client's worlds: rotations that turn, positions that move,
    hit points): deltas with and without a predictor, and a full snapshot."""
    n = 80
    schema = _entropy_schema(n)
    ops, expected = _entropy_worlds(rng, schema, n, 2)
    cases = []
    for op in ops:
        op.setdefault("pred", _older(rng, np.array(op["codes"]).reshape(n, -1)))
        op.setdefault("smooth", schema.smooth.astype(int).tolist())
        cases.append((schema, {**op, "parts": None}, [bytes.fromhex(h) for h in op["parts"]]))
    codes, view = expected[0]
    full = encode_snapshot(100, codes, view, b"", budget=400, coding=schema.coding)
    cases.append((schema, {**cases[0][1], "codes": [0] * codes.size, "view": [0] * n}, full))
    return cases


def carry_cases(rng) -> list:
    """Carried coder models: a chain of snapshots, each coded from the model its baseline's
    table ended in (some cut into parts), one a reset (coded from the spec's model)."""
    n = 60
    schema = SnapshotSchema(dataclasses.replace(_entropy_schema(n).replication, carry=True), _entropy_state(n))
    rot = SmallestThree(9)
    q = rng.normal(size=(n, 4))
    base = np.column_stack([rot.quantize(q / np.linalg.norm(q, axis=1, keepdims=True)),
                            rng.integers(1000, 1 << 19, (n, 2)), rng.integers(0, 8, n), rng.integers(0, 101, n)])
    view = np.ones(n, bool)
    shape = {"op": "apply", "capacity": n, "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(), "carry": True,
             "smooth": schema.smooth.astype(int).tolist()}
    cases, start = [], None
    for step in range(4):
        codes = base.copy()
        moving = rng.random(n) < 0.4
        codes[moving, 4:6] += rng.integers(-300, 301, (int(moving.sum()), 2))
        codes[rng.random(n) < 0.1, 7] = rng.integers(0, 101)
        end = schema.coding.carried()
        reset = step == 3
        parts = encode_snapshot(10 + step, codes, view, b"", budget=250 if step % 2 else 1150, base_tick=9 + step, base_codes=base, base_view=view,
                                base_extras=b"", coding=schema.coding, start=None if reset else start, end=end)
        held = start if start is not None else schema.coding.carried()
        op = {**shape, "codes": base.ravel().tolist(), "view": view.astype(int).tolist(), "pred": _older(rng, base),
              "start": {"probs": held[0].tolist(), "seen": held[1].tolist()}}
        cases.append((schema, op, parts))
        base, start = codes, end
    return cases


def bodies_cases(rng) -> list:
    """The engine's rigid-body predictor (PROTOCOL.md's snapshot_bodies spec: rotations,
    slides, falls, heights guessed again from a sent rotation; and snapshot_friction's, the
    same with friction) on random bodies."""
    return [case for spec in (vectors.BODIES, vectors.FRICTION) for case in _bodies_cases(rng, spec.replication)]


def _bodies_cases(rng, rep) -> list:
    n = 40
    schema = SnapshotSchema(rep, State({"alive": np.ones(n, bool), "rot": np.zeros((n, 4)), "pos": np.zeros((n, 2), np.int64),
                                        "z": np.zeros(n, np.int64)}))
    rot = vectors.ROT
    angle = rng.uniform(-1, 1, n)
    older = np.column_stack([rot.quantize(np.column_stack([np.sin(angle / 2), np.zeros((n, 2)), np.cos(angle / 2)])),
                             rng.integers(100, 900, (n, 2)), rng.integers(10, 400, n)])
    base = older.copy()
    spin = rng.random(n) < 0.3
    base[spin, 0:4] = rot.quantize(np.column_stack([np.sin(angle[spin] / 2 + 0.01), np.zeros((int(spin.sum()), 2)), np.cos(angle[spin] / 2 + 0.01)]))
    base[:, 4:7] += rng.integers(-5, 6, (n, 3))
    view = np.ones(n, bool)
    expected = schema.predict(base, view, older, view, 7, 5, 4)
    codes = expected.copy()
    off = rng.random(n) < 0.3
    codes[off, 4:6] += rng.integers(-3, 4, (int(off.sum()), 2))
    tipped = rng.random(n) < 0.1
    codes[tipped, 0:4] = rot.quantize(np.tile([[np.sin(np.pi / 8), 0, 0, np.cos(np.pi / 8)]], (int(tipped.sum()), 1)))
    op = {"op": "apply", "capacity": n, "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(),
          "bodies": schema.coding.bodies_json(), "codes": base.ravel().tolist(), "view": view.astype(int).tolist(),
          "pred": {"tick": 4, "codes": older.ravel().tolist(), "view": [1] * n}, "smooth": schema.smooth.astype(int).tolist()}
    cases = []
    for budget in (1150, 150):
        parts = encode_snapshot(7, codes, view, b"", budget=budget, base_tick=5, base_codes=base, base_view=view, base_extras=b"",
                                predictor=(4, older, view, schema.smooth), coding=schema.coding)
        cases.append((schema, op, parts))
    return cases


SPECS = {"packed": packed_cases, "entropy": entropy_cases, "carry": carry_cases, "bodies": bodies_cases}


def hostile_baseline(rng, op: dict) -> dict:
    """``op`` with a tenth of its baseline's and predictor's codes replaced by ones no
    quantizer of its spec makes (negative, past its range up to what a double holds, a
    rotation index past 3): what a hostile server's earlier parts may have left in a
    client's tables, which both ends must read alike."""
    odd = [-1, -(1 << 20), (1 << 20) + 1, 4, 7, 1 << 40, -(1 << 40), SAFE - 1, 1 - SAFE]

    def garbled(codes: list) -> list:
        out = np.array(codes, np.int64)
        hit = rng.random(len(out)) < 0.1
        out[hit] = rng.choice(odd, int(hit.sum()))
        return out.tolist()

    return {**op, "codes": garbled(op["codes"]), "pred": {**op["pred"], "codes": garbled(op["pred"]["codes"])}}


# -- Python's outcome: what the unit.mjs "apply" op does, in netcode's code --------------------------


def python_outcome(schema, op: dict, raw: bytes) -> dict:
    """The unit.mjs "apply" op's result for one part, from netcode: {"error": reason} for a
    ProtocolError, {"crash": ...} for any other exception (a bug), else the tables."""
    n, columns = op["capacity"], op["columns"]
    coding = schema.coding if schema is not None else None
    try:
        part = decode_part(raw, n, columns, op["extras_size"], coding)
        codes = np.array(op["codes"], np.int64).reshape(n, columns)
        view = np.array(op["view"], bool)
        extras = bytes.fromhex(op["extras"]) if op.get("extras") else None
        motion = expected = None
        if part.predictor is not None:
            pred = np.array(op["pred"]["codes"], np.int64).reshape(n, columns)
            pred_view = np.array(op["pred"]["view"], bool)
            if coding is not None and coding.entropy:
                motion = schema.motion(codes, view, pred, pred_view)
            if schema is None:
                codes = predict(codes, view, pred, pred_view, part.tick, part.base, part.predictor, np.array(op["smooth"], bool))
            else:
                codes = schema.predict(codes, view, pred, pred_view, part.tick, part.base, part.predictor)
            expected = codes.copy()
        start = end = None
        if op.get("carry"):
            held = op.get("start")
            start = None if held is None else (np.array(held["probs"], np.uint32), np.array(held["seen"], np.uint8))
            end = coding.carried()
        apply_part(part, codes, view, coding, motion, start, end)
        extras = apply_extras(part, extras)
    except ProtocolError as e:
        return {"error": e.reason}
    except Exception as e:  # noqa: BLE001 (a hostile part must never raise anything else)
        return {"crash": f"{type(e).__name__}: {e}"}
    out = {"codes": codes.ravel().tolist(), "view": view.astype(int).tolist(), "extras": None if extras is None else extras.hex()}
    if end is not None:
        out["end"] = {"probs": end[0].tolist(), "seen": end[1].tolist()}
    held = (part.create_codes, zigzag_array(part.update_delta), codes, expected if expected is not None else codes)
    if any(len(a) and ((a >= SAFE) | (a <= -SAFE)).any() for a in held):
        out["unsafe"] = True  # a value sent, predicted or rebuilt that no double holds exactly
    return out


def agree(py: dict, got: dict) -> bool:
    """Both refused the part (with a ProtocolError each), or both rebuilt the same tables;
    or the part holds a value of 2**53 or more, which Python takes and the browser refuses
    ("unsafe_integer": its numbers are doubles)."""
    if "crash" in py or "thrown" in got:
        return False
    if "unsafe" in py:
        return got == {"error": "unsafe_integer"}
    if "error" in py or "error" in got:
        return "error" in py and "error" in got
    return py == got


# -- mutations ----------------------------------------------------------------------------------


class _Marking(Reader):
    """A Reader that notes every offset a read starts or ends at: a part's field boundaries."""

    __slots__ = ("marks",)

    def __init__(self, data, pos=0, end=None):
        super().__init__(data, pos, end)
        self.marks = set()
        _Marking.last = self

    def take(self, n: int) -> int:
        p = super().take(n)
        self.marks.update((p, p + n))
        return p


def boundaries(schema, op: dict, raw: bytes) -> list[int]:
    """The offsets where ``raw``'s fields start and end, as decode_part reads them (an
    entropy-coded table is one field: cuts inside it are the random mutations' job)."""
    with mock.patch.object(snapshot, "Reader", _Marking):
        decode_part(raw, op["capacity"], op["columns"], op["extras_size"], None if schema is None else schema.coding)
    return sorted(_Marking.last.marks)


def overlong(raw: bytes, at: int, extra: int) -> bytes:
    """``raw`` with the one-byte varint at ``at`` written in ``extra`` more bytes (LEB128
    allows zero high groups)."""
    return raw[:at] + bytes([raw[at] | 0x80] + [0x80] * (extra - 1) + [0]) + raw[at + 1 :] if extra else raw


def mutate(rng, raw: bytes, marks: list[int]) -> tuple[str, bytes]:
    """One random mutation of ``raw`` whose field boundaries are ``marks``: (what it did,
    the bytes). Half of the positions fall in the first 16 bytes, where the header and the
    first sections are; a field of one byte (a varint, a mode, a width) may be set to an
    edge value or written as an overlong varint."""
    b = bytearray(raw)
    size = len(b)

    def at(extra: int = 0) -> int:
        return int(rng.integers(min(size, 16) + extra)) if rng.random() < 0.5 else int(rng.integers(size + extra))

    kinds = ("flip", "overwrite", "cut", "append", "insert", "duplicate", "drop", "field", "overlong")
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind in ("field", "overlong"):
        ones = [m - 1 for m in marks if m - 1 in marks] or [0]  # one-byte fields
        i = int(rng.choice(ones))
        if kind == "overlong" and b[i] < 0x80:
            extra = int(rng.integers(1, 10))
            return f"byte {i} as a varint of {extra + 1} bytes", overlong(raw, i, extra)
        v = int(rng.choice([0, 1, 0x3F, 0x40, 0x7F, 0x80, 0xFF, (b[i] + 1) & 0xFF, (b[i] - 1) & 0xFF]))
        b[i] = v
        return f"field byte {i} set to {v:#x}", bytes(b)
    if kind == "flip":
        bits = sorted({int(rng.integers(size * 8)) if rng.random() < 0.5 else int(rng.integers(min(size, 16) * 8)) for _ in range(int(rng.integers(1, 4)))})
        for bit in bits:
            b[bit >> 3] ^= 1 << (bit & 7)
        return f"flip bits {bits}", bytes(b)
    if kind == "overwrite":
        i, v = at(), int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(256))]))
        b[i] = v
        return f"overwrite byte {i} with {v:#x}", bytes(b)
    if kind == "cut":
        k = int(rng.integers(size))
        return f"cut to {k} bytes", bytes(b[:k])
    if kind in ("append", "insert"):
        extra = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8)) if rng.random() < 0.7 else bytes(int(rng.integers(1, 9)))
        i = size if kind == "append" else at(1)
        return f"{kind} {extra.hex()} at {i}", bytes(b[:i] + extra + b[i:])
    i = at()
    k = int(rng.integers(1, 17))
    if kind == "duplicate":
        return f"duplicate bytes {i}:{i + k}", bytes(b[: i + k] + b[i : i + k] + b[i + k :])
    return f"drop bytes {i}:{i + k}", bytes(b[:i] + b[i + k :])


def mutated(rng, cases: list, mutations: int, cuts: int) -> list:
    """(case index, part index, what, bytes): every valid part as it is, ``cuts`` cuts at
    (or a byte before) its parts' field boundaries, and ``mutations`` random mutations."""
    out, every, marks = [], [], {}
    for ci, (schema, op, parts) in enumerate(cases):
        for pi, raw in enumerate(parts):
            out.append((ci, pi, "as sent", raw))
            marks[ci, pi] = boundaries(schema, op, raw)
            every += [(ci, pi, k) for m in marks[ci, pi] for k in (m, m - 1) if 0 <= k < len(raw)]
    for i in rng.choice(len(every), min(cuts, len(every)), replace=False):
        ci, pi, k = every[i]
        out.append((ci, pi, f"cut at a boundary, to {k} bytes", cases[ci][2][pi][:k]))
    for _ in range(mutations):
        ci = int(rng.integers(len(cases)))
        pi = int(rng.integers(len(cases[ci][2])))
        what, raw = mutate(rng, cases[ci][2][pi], marks[ci, pi])
        out.append((ci, pi, what, raw))
    return out


# -- the fuzz ---------------------------------------------------------------------------------


def _brief(result: dict) -> str:
    if "codes" not in result:
        return str(result)
    return f"tables (codes {hash(tuple(result['codes'])) & 0xFFFF:04x}, {sum(result['view'])} in view, extras {result['extras']})"


def fuzz(spec: str, seed: int, mutations: int = MUTATIONS, cuts: int = CUTS) -> dict:
    """Fuzz one spec's decoders with ``seed``; assert they agree on every part. Returns how
    many parts each side accepted and refused."""
    rng = np.random.default_rng([seed, list(SPECS).index(spec)])
    cases = SPECS[spec](rng)
    sound = len(cases)  # cases past these hold a hostile baseline: their parts may not apply
    cases += [(schema, hostile_baseline(rng, op), parts) for schema, op, parts in cases]
    trials = mutated(rng, cases, mutations, cuts)
    ops = []
    for ci, (schema, op, _) in enumerate(cases):  # one op per case, all its trials' parts
        ops.append({**op, "op": "apply_each", "parts": [raw.hex() for c, _, _, raw in trials if c == ci]})
    results = js(*ops)
    by_case = [iter(r) for r in results]
    tally = {"accepted": 0, "refused": 0}
    wrong = []
    for ci, pi, what, raw in trials:
        schema, op, parts = cases[ci]
        got = next(by_case[ci])
        py = python_outcome(schema, op, raw)
        if what == "as sent" and ci < sound:
            assert "codes" in py, f"{spec}, seed {seed}: a valid part (case {ci}, part {pi}) is refused by Python: {py}"
        if not agree(py, got):
            wrong.append(f"  case {ci} part {pi} ({what}): Python {_brief(py)}, browser {_brief(got)}; bytes {raw.hex()}")
        tally["refused" if "error" in py else "accepted"] += 1
    again = f"fuzz({spec!r}, {seed}, mutations={mutations}, cuts={cuts})"
    assert not wrong, f"{again}: {len(wrong)} of {len(trials)} parts disagree\n" + "\n".join(wrong[:20])
    return tally


@pytest.mark.parametrize("spec", list(SPECS))
def test_browser_and_python_agree_on_mutated_parts(spec, seed):
    tally = fuzz(spec, seed)
    # Mutations both refuse and ones both take (an entropy-coded table accepts most bytes):
    # otherwise the fuzz would compare little.
    assert tally["refused"] > MUTATIONS // 4 and tally["accepted"] > 10, tally


@pytest.mark.soak
@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("sweep", range(10))
def test_browser_and_python_agree_on_many_mutated_parts(spec, sweep, seed):
    fuzz(spec, seed + sweep, mutations=4000, cuts=400)


# -- what the fuzz found, pinned down ------------------------------------------------------------


def python_column(raw: bytes, count: int):
    """netcode's reading of one column of ``count`` values, shaped as unit.mjs's "column" op."""
    r = Reader(raw)
    try:
        values = unpack_escaped(r, count)
        if r.remaining:
            return {"error": "trailing_bytes"}
    except ProtocolError as e:
        return {"error": e.reason}
    return values.tolist()


def test_js_refuses_the_column_widths_python_refuses():
    """Every column header (a width, with or without escapes) of an empty column, then an
    escape width after it: a width over 63 is refused even with no values to read, as
    Python's unpack_escaped refuses it (the browser took an empty column of width 127 in an
    id list, a part Python refused; found by the fuzz)."""
    heads = [bytes([head]) for head in range(256) if not head & 0x80]
    heads += [bytes([head, top]) for head in range(0x81, 0x100) for top in (head & 0x7F, (head & 0x7F) + 1, 63, 64, 200)]
    want = [python_column(raw, 0) for raw in heads]
    assert want[:64] == [[]] * 64 and all(w == {"error": "bad_width"} for w in want[64:128])
    got = js(*({"op": "column", "hex": raw.hex(), "count": 0} for raw in heads))
    wrong = [(raw.hex(), w, g) for raw, w, g in zip(heads, want, got) if w != g and not ("error" in w and "error" in g)]
    assert not wrong, wrong[:10]


def test_js_reads_overlong_varints_as_python_does():
    """A packed part's predictor-gap varint (after the u32 tick and baseline) written in 1
    to 11 bytes: the browser takes what Python's Reader takes, up to ten bytes (it refused
    the tenth, a part Python applied), and refuses the eleventh."""
    schema, op, parts = packed_cases(np.random.default_rng(1))[1]
    assert parts[0][8] < 0x80  # a one-byte gap
    trials = [overlong(parts[0], 8, extra) for extra in range(11)]
    want = [python_outcome(schema, op, raw) for raw in trials]
    assert ["codes" in w for w in want] == [True] * 10 + [False]
    got = js({**op, "op": "apply_each", "parts": [raw.hex() for raw in trials]})[0]
    assert [agree(w, g) for w, g in zip(want, got)] == [True] * 11, [(len(raw), _brief(g)) for raw, g in zip(trials, got)]


def test_id_gaps_past_the_range_are_refused_by_both():
    """An id list whose 63-bit gaps wrap int64 around to a last id inside the range ([0,
    -2**63, 0] or [0, -2**63, -1] of a part of [0, 4)): Python's decode_part took it and
    apply_part raised an IndexError (not a ProtocolError) at the negative id; the browser
    refused the part. Both refuse it now: no gap reaches past the part's range."""
    gaps = [(2**63 - 1, 2**63 - 1), (2**63 - 1, 2**63 - 2)]
    trials = [struct.pack("<II", 100, 96) + bytes([0, 0, 1, 0, 4, 2, 3, 0, 63]) + pack_uint(np.array(g, np.uint64).astype(np.int64), 63) for g in gaps]
    op = {"op": "apply_each", "capacity": 4, "columns": 2, "extras_size": 0, "codes": [0] * 8, "view": [1] * 4,
          "parts": [raw.hex() for raw in trials]}
    for raw, got in zip(trials, js(op)[0]):
        assert python_outcome(None, op, raw) == {"error": "bad_snapshot"}
        assert "error" in got, got


def test_js_reads_wide_columns_of_values_it_holds_exactly():
    """Columns 54 to 64 bits wide (as Python reads them; its encoder packs no value that
    wide below 2**53, a hostile one may): the browser reads every value below 2**53 as
    Python does (it refused any width over 53, so it dropped parts Python applied), and
    refuses a wider value with ProtocolError("unsafe_integer"): its numbers hold no more."""
    rng = np.random.default_rng(5)
    ops, want = [], []
    for width in range(54, 65):
        for values in ([0, 5, SAFE - 1], rng.integers(0, SAFE, 7).tolist(), [3, SAFE], [(1 << min(width - 1, 62)) + 1]):
            ops.append({"op": "unpack", "hex": pack_uint(np.array(values, np.uint64).astype(np.int64), width).hex(), "count": len(values), "width": width})
            want.append(values if max(values) < SAFE else {"error": "unsafe_integer"})
    assert js(*ops) == want


def test_js_refuses_codes_it_cannot_hold_where_python_rebuilds_them():
    """A packed part that creates an entity at 2**53 - 1 and updates it by +2 (the column
    values fit a double, their sum does not), entropy-coded updates by 2**55 + 1 and by
    2**53 - 1 (from 100):
    Python rebuilds the exact codes; the browser rebuilt a rounded code and went on. It now
    refuses each with ProtocolError("unsafe_integer") rather than hold a code Python does not."""
    ids = bytes([1, 0, 0])  # one id, 0
    packed = (struct.pack("<II", 100, 96) + bytes([0, 0, 1, 0, 2, CREATE | UPDATE]) + ids + pack_escaped(np.array([SAFE - 1])) + pack_escaped(np.array([0]))
              + ids + bytes([1]) + pack_escaped(zigzag_array(np.array([2]))) + bytes([0]))
    op = {"op": "apply_each", "capacity": 2, "columns": 2, "extras_size": 0, "codes": [0] * 4, "view": [1, 1], "parts": [packed.hex()]}
    cases = [(None, op, packed)]
    schema = _entropy_schema(4)
    base = np.zeros((4, schema.columns), np.int64)
    base[1, 4] = 100
    for code in ((1 << 55) + 1, SAFE + 99):
        codes = base.copy()
        codes[1, 4] = code
        table = encode_snapshot(100, codes, np.ones(4, bool), b"", budget=1150, base_tick=98, base_codes=base, base_view=np.ones(4, bool), base_extras=b"",
                                coding=schema.coding)
        cases.append((schema, {**op, "capacity": 4, "columns": schema.columns, "coding": schema.coding.describe(), "codes": base.ravel().tolist(),
                               "view": [1] * 4, "parts": [table[0].hex()]}, table[0]))
    for schema, op, raw in cases:
        want = python_outcome(schema, op, raw)
        assert want.get("unsafe") and max(want["codes"]) > SAFE, want  # (Python's int64 holds it)
        assert js(op)[0] == [{"error": "unsafe_integer"}]


def _unchanged_change(coding, columns: int) -> bytes:
    """A range-coded table of one row that flags the row changed and sends every value as
    0 (no encoder writes one; a hostile server may): found by a seeded search of short byte
    strings."""
    rng = np.random.default_rng(0)
    motion = np.zeros((1, columns), np.int32)
    for _ in range(10000):
        data = rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8).tobytes()
        touched = np.zeros(1, np.uint8)
        try:
            if not coding.decode_table(data, motion, touched).any() and touched[0]:
                return data
        except ProtocolError:
            pass
    raise AssertionError("no such table in 10000 tries")


def test_js_undoes_a_changed_row_of_zero_deltas_as_python_does():
    """A part of one row (of three whose baseline rotations' largest indices are -1, 7 and
    2, as a hostile full snapshot may leave them) whose table flags the row changed with
    every delta 0: Python undoes the row (the index read modulo 4, as any changed row's);
    the browser skipped a row of zero deltas and kept -1 and 7. Both rebuild the same codes."""
    schema = _entropy_schema(3)
    base = np.zeros((3, schema.columns), np.int64)
    base[:, 0:4] = [[-1, 10, 20, 30], [7, 40, 50, 60], [2, 70, 80, 90]]
    table = _unchanged_change(schema.coding, schema.columns)
    # compact header: tick 100, baseline 98, no predictor, part 0 of 2, rows [k, k + 1), UPDATE
    trials = [struct.pack("<I", 100) + bytes([2, 0, 1, 0, k, 1, UPDATE]) + table for k in range(3)]
    op = {"op": "apply_each", "capacity": 3, "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(),
          "codes": base.ravel().tolist(), "view": [1] * 3, "parts": [raw.hex() for raw in trials]}
    want = [python_outcome(schema, op, raw) for raw in trials]
    assert [w["codes"][k * schema.columns] for k, w in enumerate(want)] == [3, 3, 2]
    assert js(op)[0] == want


def test_js_predicts_past_2_53_as_python_does():
    """Predicted parts far ahead of their baseline (8195, 2**20 and 2**30 ticks at a gap of
    4) over a code a hostile server left at 2**40 + 1: the step's product passes 2**53
    (and at 2**30 ticks int64, which wraps). The browser's doubles rounded it and rebuilt
    other codes than Python's int64 arithmetic; now it rebuilds Python's, and refuses a
    result past 2**53 ("unsafe_integer") as it refuses such codes sent."""
    trials = [struct.pack("<II", 96 + ahead, 96) + bytes([4, 0, 1, 0, 1, 0]) for ahead in (8195, 1 << 20, 1 << 30)]
    op = {"op": "apply_each", "capacity": 1, "columns": 1, "extras_size": 0, "codes": [(1 << 40) + 1], "view": [1], "smooth": [1],
          "pred": {"tick": 92, "codes": [0], "view": [1]}, "parts": [raw.hex() for raw in trials]}
    want = [python_outcome(None, op, raw) for raw in trials]
    assert want[0]["codes"] == [(1 << 40) + 1 + ((1 << 40) + 1) * 8195 // 4] and want[1]["unsafe"] and "unsafe" not in want[2]
    got = js(op)[0]
    assert [agree(w, g) for w, g in zip(want, got)] == [True] * 3, got


def test_js_turns_a_hostile_baselines_rotation_past_2_53_as_python_does():
    """A baseline rotation whose index a hostile server left at 2**53 - 1 (3, read modulo 4)
    and components near 2**53, turned by the next part (index delta +2 or -2, components
    rebased): Python takes the sum's low bits and the rebased components plus the deltas;
    the browser summed first (past 2**53: refused, or rounded) and took the deltas back out
    of the rounded sums. Both rebuild the same codes now."""
    schema = _entropy_schema(2)
    rot = SmallestThree(9)
    base = np.zeros((2, schema.columns), np.int64)
    base[:, 0:4] = [[SAFE - 1, SAFE - 2, 5, 7], [SAFE - 1, 100, 200, 300]]
    codes = base.copy()
    codes[:, 0:4] = rot.quantize(np.array([[0.6, 0.0, 0.8, 0.0], [0.0, 0.6, 0.0, 0.8]]))
    parts = encode_snapshot(9, codes, np.ones(2, bool), b"", budget=1150, base_tick=8, base_codes=base, base_view=np.ones(2, bool), base_extras=b"",
                            coding=schema.coding)
    op = {"op": "apply_each", "capacity": 2, "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(),
          "codes": base.ravel().tolist(), "view": [1, 1], "parts": [parts[0].hex()]}
    want = python_outcome(schema, op, parts[0])
    assert "unsafe" not in want and want["codes"][0] == codes[0, 0], want
    assert js(op)[0] == [want]
