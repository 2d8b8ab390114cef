"""The browser client (netcode/server/web/ticksync.js) run for real under Node.js, and the server
routes it needs: the room schema, open join, the page and its scripts.

* Unit: ``tests/web/unit.mjs`` runs the module's decoders and encoders on bytes Python made
  (PROTOCOL.md's vectors, ``pack_uint`` and ``encode_snapshot`` on seeded random data, session
  packets through the replay window) and the results are compared exactly with what
  netcode's own code makes of the same bytes.
* End to end: ``tests/web/player.mjs`` joins a real TickServer (state sync, the arena with a
  few hundred NPCs) over a real loopback WebSocket, holds "move right" for a few seconds,
  and reports its newest complete snapshot, which must equal the server's own history for
  that tick; the server must have moved its entity right.

Node.js 20+ is part of this project's machines; without it these tests fail with a message
saying so rather than skip, so a missing runtime is never mistaken for a passing client.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from demos.arena import Arena, INPUT_DTYPE
from helpers import SECRET, eventually as eventually_until, run_bounded
from netcode.statesync.bits import pack_escaped, pack_uint
from netcode.cli import build_parser
from netcode.client import GameClient
from netcode.session.connection import Connection, SessionConfig
from netcode.errors import ProtocolError
from netcode.server.tickserver import RoomConfig, TickServer
from netcode.statesync.snapshot import apply_extras, apply_part, decode_part, encode_snapshot, predict
from netcode.statesync.wire import StateSyncInfo
from netcode.statesync.snapshot import SnapshotSchema
from netcode.statesync import rangecoder
from netcode.statesync.training import CoderModel, Trainer
from test_training import hostile_models
from engine.bodies import Bodies
from engine.quantize import Int, SmallestThree
from engine.replication import Replication
from engine.state import State
from netcode.session.token import PLAYER, SPECTATOR, mint_token, token_from_text, token_to_text, verify_token
from netcode.server.dashboard import room_schema
from netcode.session.handshake import ConnectRequest, GameIdentity, pack_request
from netcode.session.wire import PacketType, pack_session_header

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "tests" / "web" / "unit.mjs"
PLAYER_JS = ROOT / "tests" / "web" / "player.mjs"
SPEC = (ROOT / "PROTOCOL.md").read_text()
VECTORS = dict(line.split()[1:3] for line in SPEC.splitlines() if line.startswith("vector "))


# -- running node ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _node_command() -> tuple[str, ...]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js 20+ is needed to test the browser client (netcode/server/web/ticksync.js) and `node` is not on "
            "PATH: install it (Debian: apt-get install nodejs)",
            pytrace=False,
        )
    probe = "process.stdout.write(typeof WebSocket)"
    for flags in ((), ("--experimental-websocket",)):  # built in from Node 22, behind a flag in 20
        done = subprocess.run([node, *flags, "-e", probe], capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and done.stdout == "function":
            return (node, *flags)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    pytest.fail(f"{node} ({version}) has no WebSocket, even with --experimental-websocket: Node.js 20+ is needed", pytrace=False)


def js(*ops: dict) -> list:
    """Run ops through tests/web/unit.mjs; one result per op."""
    done = subprocess.run(
        [*_node_command(), str(UNIT)], input=json.dumps({"ops": list(ops)}), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"unit.mjs failed:\n{done.stderr}"
    return json.loads(done.stdout)


def run(coro, timeout: float = 30.0):
    return run_bounded(coro, timeout)


async def eventually(pred, what: str, timeout: float = 5.0) -> None:
    await eventually_until(pred, what, timeout, poll=0.01)


def python_part(raw: bytes, capacity: int, columns: int, extras_size: int) -> dict:
    """decode_part's view of a part, shaped as unit.mjs reports it."""
    p = decode_part(raw, capacity, columns, extras_size)
    return {
        "tick": p.tick,
        "base": p.base,
        "index": p.index,
        "count": p.count,
        "lo": p.lo,
        "hi": p.hi,
        "predictor": p.predictor,
        "extras": None if p.extras is None else p.extras.hex(),
        "extras_delta": None if p.extras_delta is None else {"at": p.extras_delta[0].tolist(), "bytes": p.extras_delta[1].hex()},
        "destroy": p.destroy.tolist(),
        "create": p.create.tolist(),
        "update": p.update.tolist(),
        "create_codes": p.create_codes.tolist(),
        "update_delta": p.update_delta.tolist(),
    }


def python_rebuild(parts, capacity, columns, extras_size, base, base_view, base_extras, pred, smooth):
    """netcode's reconstruction of a snapshot from its parts, as statesync_client does it:
    start from the baseline (moved on by the predictor's motion when the parts name one)."""
    decoded = [decode_part(bytes.fromhex(h), capacity, columns, extras_size) for h in parts]
    first = decoded[0]
    if first.base is None:
        codes, view, extras = np.zeros((capacity, columns), np.int64), np.zeros(capacity, bool), None
    elif first.predictor is not None:
        codes = predict(base, base_view, pred[1], pred[2], first.tick, first.base, first.predictor, smooth)
        view, extras = base_view.copy(), base_extras
    else:
        codes, view, extras = base.copy(), base_view.copy(), base_extras
    for part in decoded:
        apply_part(part, codes, view)
        extras = apply_extras(part, extras)
    return codes, view, extras


# -- unit: the module against netcode's own code ---------------------------------------------

CODES = np.array([[10, 20], [11, 21], [12, 22], [13, 23]], np.int64)
VIEW = np.array([True, True, False, True])
BASE = CODES.copy()
BASE[1, 0] = 9
BASE_VIEW = np.array([True, True, True, False])
RECORDS = [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 9, 4, 5]]


def test_js_reads_and_builds_the_protocol_md_vectors():
    full, delta, predicted = VECTORS["snapshot_full"], VECTORS["snapshot_delta"], VECTORS["snapshot_predicted"]
    info = StateSyncInfo(8, 42, 60, 2, 1234, 240)
    shape = {"capacity": 4, "columns": 2, "extras_size": 1}
    base = {"codes": BASE.ravel().tolist(), "view": BASE_VIEW.astype(int).tolist(), "extras": "05"}
    # The predictor of snapshot_predicted: tick 3, every code one less, column 0 smooth.
    pred = {"pred": {"tick": 3, "codes": (BASE - 1).ravel().tolist(), "view": [1] * 4}, "smooth": [1, 0]}
    out = js(
        {"op": "decode_part", "hex": full, **shape},
        {"op": "decode_part", "hex": delta, **shape},
        {"op": "apply", "parts": [full], "codes": [0] * 8, "view": [0] * 4, **shape},
        {"op": "apply", "parts": [delta], **base, **shape},
        {"op": "apply", "parts": [predicted], **base, **pred, **shape},
        {"op": "prefix", "hex": VECTORS["ss_prefix"]},
        {"op": "prefix", "hex": VECTORS["ss_prefix_tally"]},
        {"op": "pack_run", "first": 100, "records": RECORDS},
        {"op": "ss_input", "slot": 1, "ack": 200, "view_delay": 9, "first": 210, "records": RECORDS},
        {"op": "ss_input", "slot": 255, "ack": None, "view_delay": 0},
        {"op": "session_header", "type": 0x10, "session_id": 0x01020304, "seq": 5, "ack": 3, "bits": 0b101, "delay": 20},
        {"op": "session_header", "type": 0x10, "session_id": 0x01020304, "seq": 0, "ack": None, "bits": 0, "delay": 0},
        {"op": "request", "nonce": str(0xAABBCCDDEEFF0011), "fingerprint": "1122334455667788", "name": "arena", "version": "1.0", "token": VECTORS["token"]},
        {"op": "challenge", "hex": VECTORS["challenge"]},
        {"op": "accepted", "hex": VECTORS["accepted"]},
        {"op": "denied", "hex": VECTORS["denied"]},
        {"op": "ss_info", "hex": info.pack().hex()},
        {"op": "token", "text": token_to_text(bytes.fromhex(VECTORS["token"]))},
    )
    assert out[0] == python_part(bytes.fromhex(full), 4, 2, 1)
    assert out[1] == python_part(bytes.fromhex(delta), 4, 2, 1)
    # From nothing, from the baseline, from the baseline's motion: as netcode rebuilds them
    # (whether the spec's vectors say what the code does is test_protocol_vectors.py's job).
    for result, vector in zip(out[2:5], (full, delta, predicted)):
        codes, view, extras = python_rebuild([vector], 4, 2, 1, BASE, BASE_VIEW, b"\x05", (3, BASE - 1, np.ones(4, bool)), np.array([True, False]))
        got_codes, got_view = np.array(result["codes"]).reshape(4, 2), np.array(result["view"], bool)
        assert np.array_equal(got_view, view) and np.array_equal(got_codes[view], codes[view])
        assert result["extras"] == extras.hex() == "05"
    for result in out[2:4]:
        codes, view = np.array(result["codes"]).reshape(4, 2), np.array(result["view"], bool)
        assert np.array_equal(view, VIEW) and np.array_equal(codes[VIEW], CODES[VIEW])
    out = out[:4] + out[5:]
    assert out[4] == {"applied": 3, "tally": None}  # ss_prefix: applied 203 at snapshot 200
    assert out.pop(5) == {"applied": 3, "tally": {"used": 1000, "missed": 7}}
    assert out[5] == VECTORS["input_run"]
    assert out[6] == VECTORS["ss_input"]
    assert out[7] == "ff00ffffffff00"  # a spectator: no inputs, no snapshot yet
    assert out[8] == VECTORS["keepalive"] and out[9] == VECTORS["keepalive_noack"]
    request = bytes.fromhex(out[10])
    assert len(request) == 400 and request.hex().startswith(VECTORS["request_start"]) and not request[len(VECTORS["request_start"]) // 2 :].strip(b"\0")
    assert out[11] == {"nonce": str(0xAABBCCDDEEFF0011), "cookie_time": 1000, "cookie": VECTORS["cookie"]}
    assert out[12] == {"nonce": str(0xAABBCCDDEEFF0011), "session_id": 0x01020304, "slot": 2, "epoch": str(0x1112131415161718), "info": b"hi".hex()}
    assert out[13] == {"nonce": str(0xAABBCCDDEEFF0011), "code": "room_full", "message": "all 8 player slots are taken"}
    assert out[14] == {"players": 8, "seed": "42", "tickRate": 60, "snapshotEvery": 2, "serverTick": 1234, "maxAhead": 240}
    assert out[15] == VECTORS["token"]


def test_js_seals_and_opens_as_the_protocol_md_vectors_say():
    """The browser's WebCrypto side of version 2: the client token split, the handshake's
    proof, the session keys, the client's first packet sealed, a server packet opened."""
    wire, keys = bytes.fromhex(VECTORS["token"]), bytes(range(64))
    c2s, s2c = VECTORS["session_key_c2s"], VECTORS["session_key_s2c"]
    sealed = bytes.fromhex(VECTORS["sealed_ss_input"])
    plain = sealed[:17].hex() + VECTORS["ss_input"]
    # A server packet: the server's end seals with the server-to-client key.
    server = Connection(1, "c", 0x01020304, 1, 0.0, SessionConfig(), keys=(bytes.fromhex(s2c), bytes.fromhex(c2s)))
    snapshot = server.wrap(PacketType.SS_SNAPSHOT, bytes.fromhex(VECTORS["ss_prefix"]), 0.0)
    nonce = str(0xAABBCCDDEEFF0011)
    out = js(
        {"op": "split_token", "hex": (wire + keys).hex()},
        {"op": "split_token", "hex": wire.hex()},  # a wire token alone: no keys, no session
        {"op": "proof", "c2s": keys[:32].hex(), "nonce": nonce, "cookie_time": 1000, "cookie": VECTORS["cookie"]},
        {"op": "session_keys", "c2s": keys[:32].hex(), "s2c": keys[32:].hex(), "nonce": nonce, "session_id": 0x01020304},
        {"op": "seal", "key": c2s, "counter": 0, "hex": plain},
        {"op": "open", "key": s2c, "counter": 0, "hex": snapshot.hex()},
        {"op": "open", "key": s2c, "counter": 0, "hex": (snapshot[:-1] + bytes([snapshot[-1] ^ 1])).hex()},
        {"op": "open", "key": s2c, "counter": 1, "hex": snapshot.hex()},  # another counter: another nonce
        {"op": "request", "nonce": nonce, "fingerprint": "1122334455667788", "name": "arena", "version": "1.0", "token": wire.hex(),
         "cookie_time": 1000, "cookie": VECTORS["cookie"], "proof": VECTORS["proof"]},
    )
    assert out[0] == {"wire": wire.hex(), "c2s": keys[:32].hex(), "s2c": keys[32:].hex()}
    assert out[1] == {"error": "bad_token"}
    assert out[2] == VECTORS["proof"]
    assert out[3] == {"c2s": c2s, "s2c": s2c}
    assert out[4] == VECTORS["sealed_ss_input"]
    assert out[5] == snapshot[:17].hex() + VECTORS["ss_prefix"]
    assert out[6] == out[7] == {"error": "bad_tag"}
    game = GameIdentity("arena", "1.0", 0x1122334455667788)
    req = ConnectRequest(0xAABBCCDDEEFF0011, game, wire, 1000, bytes.fromhex(VECTORS["cookie"]), bytes.fromhex(VECTORS["proof"]))
    assert out[8] == pack_request(req, response=True).hex()


def test_js_bit_unpacker_matches_pack_uint(seed):
    rng = np.random.default_rng(seed)
    ops, expected = [], []
    for width in range(0, 54):
        for count in (0, 1, 7, int(rng.integers(2, 300))):
            hi = (1 << width) - 1
            values = rng.integers(0, hi, count, dtype=np.uint64, endpoint=True).astype(np.int64) if width else np.zeros(count, np.int64)
            if count and width:
                values[0] = hi  # the widest value of that width
            ops.append({"op": "unpack", "hex": pack_uint(values, width).hex(), "count": count, "width": width})
            expected.append(values.tolist())
    # What a decoder must refuse: a set padding bit, a byte short, a byte over.
    bad = bytearray(pack_uint(np.array([5, 6, 7]), 3))  # 9 bits: 7 padding bits
    bad[-1] |= 0x80
    ops += [
        {"op": "unpack", "hex": bad.hex(), "count": 3, "width": 3},
        {"op": "unpack", "hex": "ff", "count": 3, "width": 3},
        {"op": "unpack", "hex": "000000", "count": 3, "width": 3},
    ]
    # Columns: one width, or a narrow one with wide values escaped (outliers, as pack_escaped
    # chooses them), read back through the module's readColumn.
    columns = []
    for _ in range(40):
        count = int(rng.integers(0, 200))
        values = rng.integers(0, 1 << int(rng.integers(1, 12)), count)
        outliers = rng.random(count) < 0.05
        values[outliers] = rng.integers(0, 1 << int(rng.integers(12, 40)), int(outliers.sum()))
        columns.append(values)
    escaped = sum(1 for v in columns if pack_escaped(v)[0] & 0x80)
    assert escaped > 10, "the columns should exercise escapes"
    col_ops = [{"op": "column", "hex": pack_escaped(v).hex(), "count": len(v)} for v in columns]
    out = js(*ops, *col_ops)
    for op, got, want in zip(ops, out, expected):
        assert got == want, f"width {op['width']} count {op['count']}"
    n = len(expected)
    assert out[n : n + 3] == [{"error": "bad_padding"}, {"error": "truncated"}, {"error": "truncated"}]
    assert out[n + 3 :] == [v.tolist() for v in columns]


def _random_snapshot(rng: np.random.Generator, n: int):
    """Codes of varied widths (a 16-bit position pair, a byte, a 32-bit Exact, a flag), a
    view, and a baseline that differs by moves, creates, destroys and a few large jumps."""
    codes = np.stack(
        [
            rng.integers(0, 65536, n),
            rng.integers(0, 65536, n),
            rng.integers(0, 256, n),
            rng.integers(0, 1 << 32, n, dtype=np.int64),
            rng.integers(0, 2, n),
        ],
        axis=1,
    ).astype(np.int64)
    view = rng.random(n) < 0.8
    base = codes.copy()
    moved = rng.random(n) < 0.5
    base[moved, :2] = np.clip(base[moved, :2] + rng.integers(-200, 201, (int(moved.sum()), 2)), 0, 65535)
    jumped = rng.random(n) < 0.05
    base[jumped, 3] = rng.integers(0, 1 << 32, int(jumped.sum()), dtype=np.int64)
    base_view = view.copy()
    flip = rng.random(n) < 0.1
    base_view[flip] = ~base_view[flip]
    return codes, view, base, base_view


def test_js_snapshot_decoder_matches_python_on_random_snapshots(seed):
    """Full, delta and predicted-delta snapshots of random data, cut into parts by small
    budgets: every part decodes as Python decodes it, and the parts (in any order) rebuild
    the snapshot from the baseline (and the predictor's motion), extras included."""
    rng = np.random.default_rng(seed)
    n, columns = 400, 5
    smooth = np.array([True, True, False, False, False])  # the position pair
    shape = {"capacity": n, "columns": columns, "extras_size": 12}
    ops, cases = [], []
    for case in range(6):
        codes, view, base, base_view = _random_snapshot(rng, n)
        # A predictor 4 ticks before the baseline (tick 96): most entities move steadily.
        velocity = rng.integers(-40, 41, (n, 2))
        base[:, :2] = np.clip(base[:, :2], 200, 65335)
        pred_codes = base.copy()
        pred_codes[:, :2] -= velocity * 4
        steady = rng.random(n) < 0.7
        codes[steady, :2] = base[steady, :2] + velocity[steady] * 4
        pred_view = base_view & (rng.random(n) < 0.9)
        extras = rng.integers(0, 256, 12, dtype=np.uint8).tobytes()
        base_extras = [extras, bytes(12), extras[:3] + b"\x00" + extras[4:]][case % 3]  # same, all new, one byte
        budget = int(rng.choice([250, 400, 1150]))
        common = dict(budget=budget, base_tick=96, base_codes=base, base_view=base_view, base_extras=base_extras)
        full = encode_snapshot(100, codes, view, extras, budget=budget)
        delta = encode_snapshot(100, codes, view, extras, **common)
        predicted = encode_snapshot(100, codes, view, extras, **common, predictor=(92, pred_codes, pred_view, smooth))
        assert len(delta) > 1 or budget == 1150, "the budget should force several parts"
        for raw in full + delta + predicted:
            ops.append({"op": "decode_part", "hex": raw.hex(), **shape})
            cases.append(("part", raw))
        baseline = {"codes": base.ravel().tolist(), "view": base_view.astype(int).tolist(), "extras": base_extras.hex()}
        motion = {"pred": {"tick": 92, "codes": pred_codes.ravel().tolist(), "view": pred_view.astype(int).tolist()}, "smooth": smooth.astype(int).tolist()}
        ops.append({"op": "apply", "parts": [p.hex() for p in full], "codes": [0] * (n * columns), "view": [0] * n, **shape})
        for parts, extra in ((delta, {}), (predicted, motion)):  # each part on its own: any order
            ops.append({"op": "apply", "parts": [parts[i].hex() for i in rng.permutation(len(parts))], **baseline, **extra, **shape})
        cases += [("rebuilt", (codes, view, extras))] * 3
    out = js(*ops)
    decoded = [python_part(data, n, columns, 12) for kind, data in cases if kind == "part"]
    assert any(p["predictor"] == 92 for p in decoded) and any(p["extras_delta"] for p in decoded)
    for (kind, data), got in zip(cases, out):
        if kind == "part":
            assert got == python_part(data, n, columns, 12)
        else:
            codes, view, extras = data
            got_codes, got_view = np.array(got["codes"], np.int64).reshape(n, columns), np.array(got["view"], bool)
            assert np.array_equal(got_view, view)
            assert np.array_equal(got_codes[view], codes[view])
            assert got["extras"] == extras.hex()


def _entropy_schema(n):
    """An entropy-coded spec as a physics game declares one: a rotation (smallest three),
    a position and hit points in one group, a kind apart; the default (linear) predictor."""
    spec = Replication(
        alive="alive",
        fields={"rot": SmallestThree(9), "pos": Int(0, 1 << 20), "kind": Int(0, 7), "hp": Int(0, 100)},
        position="pos",
        coding="entropy",
        groups=(("pos", "hp"),),  # not side by side: the table reorders columns
    )
    return SnapshotSchema(spec, _entropy_state(n))


def _entropy_state(n):
    return State({"alive": np.ones(n, bool), "rot": np.zeros((n, 4)), "pos": np.zeros((n, 2), np.int64),
                  "kind": np.zeros(n, np.int64), "hp": np.zeros(n, np.int64)})


def test_js_decodes_entropy_coded_snapshots_as_python_does(seed):
    """Entropy-coded parts (the PROTOCOL.md vector, then random worlds whose entities turn,
    their largest rotation component switching, move and get hurt, cut into parts by small
    budgets) rebuild in the browser's decoder exactly as netcode rebuilds them."""
    vector = bytes.fromhex(VECTORS["snapshot_entropy"])
    small = SnapshotSchema(
        Replication(alive="alive", fields={"a": Int(0, 100), "b": Int(0, 100)}, coding="entropy", groups=(("a", "b"),)),
        State({"alive": np.ones(4, bool), "a": np.zeros(4, np.int64), "b": np.zeros(4, np.int64)}),
    )
    ops = [{"op": "apply", "parts": [vector.hex()], "codes": BASE.ravel().tolist(), "view": BASE_VIEW.astype(int).tolist(),
            "capacity": 4, "columns": 2, "extras_size": 0, "coding": small.coding.describe()}]
    expected = [(CODES, VIEW)]
    rng = np.random.default_rng(seed)
    n = 300
    schema = _entropy_schema(n)
    more, cases = _entropy_worlds(rng, schema, n, 4)
    ops += more
    expected += cases
    # Hostile parts: cut short, or their table's bytes garbled: an error or some table, never a crash.
    last = bytes.fromhex(ops[-1]["parts"][0])
    hostile = [last[: len(last) // 2], last + b"\xff" * 9]
    hostile += [last[:k] + bytes(rng.integers(0, 256, len(last) - k, dtype=np.uint8)) for k in rng.integers(5, len(last), 12)]
    for got in js(*({**ops[-1], "parts": [raw.hex()]} for raw in hostile)):
        assert "error" in got or len(got["codes"]) == n * schema.columns, got  # errors are ProtocolErrors (unit.mjs)
    _same_tables(js(*ops), expected)


def test_js_reads_a_hostile_baselines_rotation_index_as_python_does():
    """A baseline rotation whose largest index is no quantizer's (-1, 7: a hostile server's
    full snapshot made it) is read modulo 4, as Python's undelta reads it (``& 3``): the
    browser rebuilds the same codes instead of throwing a TypeError out of the packet."""
    schema = _entropy_schema(3)
    base = np.zeros((3, schema.columns), np.int64)
    base[:, 0:4] = [[-1, 10, 20, 30], [7, 40, 50, 60], [2, 70, 80, 90]]
    codes = base.copy()
    codes[:, 0] = [1, 0, 0]  # each largest index turns (from 3, 3 and 2)
    parts = encode_snapshot(9, codes, np.ones(3, bool), b"", budget=1150, base_tick=8, base_codes=base,
                            base_view=np.ones(3, bool), base_extras=b"", coding=schema.coding)
    want, view = base.copy(), np.ones(3, bool)
    apply_part(decode_part(parts[0], 3, schema.columns, 0, schema.coding), want, view, schema.coding, schema.motion(base, view))
    got = js({"op": "apply", "parts": [parts[0].hex()], "codes": base.ravel().tolist(), "view": [1, 1, 1], "capacity": 3,
              "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe()})[0]
    assert "error" not in got, got
    assert np.array_equal(np.array(got["codes"], np.int64).reshape(want.shape), want)


def test_js_carries_coder_models_from_snapshot_to_snapshot_as_python_does():
    """carry=True: a chain of snapshots, each coded against the one before from the model
    its table left (some cut into parts, which carry their baseline's), and one reset (coded
    from the spec's model, flagged RESET, while the browser holds the baseline's): the
    browser's decoder rebuilds each and ends in the model Python's did. The reset's bytes
    to a carry=False spec's decoder are refused."""
    n = 200
    plain = _entropy_schema(n)
    schema = SnapshotSchema(dataclasses.replace(plain.replication, carry=True), _entropy_state(n))
    coding = schema.coding
    rng = np.random.default_rng(41)
    rot = SmallestThree(9)
    q = rng.normal(size=(n, 4))
    base = np.column_stack([rot.quantize(q / np.linalg.norm(q, axis=1, keepdims=True)),
                            rng.integers(1000, 1 << 19, (n, 2)), rng.integers(0, 8, n), rng.integers(0, 101, n)])
    view = np.ones(n, bool)
    shape = {"capacity": n, "columns": schema.columns, "extras_size": 0, "coding": coding.describe(), "carry": True}
    ops, expected, start = [], [], None
    for step in range(6):
        codes = base.copy()
        moving = rng.random(n) < 0.4
        codes[moving, 4:6] += rng.integers(-300, 301, (int(moving.sum()), 2))
        turning = rng.random(n) < 0.3
        unit = rot.dequantize(base[turning, :4], np.dtype(np.float64)) + rng.normal(0, 0.2, (int(turning.sum()), 4))
        codes[turning, :4] = rot.quantize(unit / np.linalg.norm(unit, axis=1, keepdims=True))
        end = coding.carried()
        reset = step in (4, 5)  # one part, then several
        parts = encode_snapshot(10 + step, codes, view, b"", budget=300 if step in (3, 5) else 1150, base_tick=9 + step, base_codes=base,
                                base_view=view, base_extras=b"", coding=coding, start=None if reset else start, end=end)
        assert (len(parts) > 1) == (step in (3, 5))
        ops.append({"op": "apply", "parts": [p.hex() for p in parts], "codes": base.ravel().tolist(), "view": view.astype(int).tolist(),
                    "start": None if start is None else {"probs": start[0].tolist(), "seen": start[1].tolist()}, **shape})
        expected.append((codes, end))
        base, start = codes, end
    for got, (codes, end) in zip(js(*ops), expected, strict=True):
        assert "error" not in got, got
        assert got["codes"] == codes.ravel().tolist()
        assert got["end"]["probs"] == end[0].tolist() and got["end"]["seen"] == end[1].tolist()
    assert not np.array_equal(expected[-2][1][0], coding.carried()[0])  # the models did learn
    # The reset (one part) to a carry=False spec's decoder: refused with the flag; without it
    # (bit 16 of the sections byte, after u32 tick and three one-byte varints) the same table
    # decodes from the spec's model, as a reset does.
    raw = bytes.fromhex(ops[4]["parts"][0])
    assert raw[7] & 16
    hostile = dict(ops[4], coding=plain.coding.describe(), carry=False, start=None)
    cleared = dict(hostile, parts=[(raw[:7] + bytes([raw[7] & ~16]) + raw[8:]).hex()])
    refused, plain_got = js(hostile, cleared)
    assert refused == {"error": "bad_snapshot"}, refused
    assert plain_got["codes"] == expected[4][0].ravel().tolist()


def _same_tables(out, expected):
    for got, (codes, view) in zip(out, expected, strict=True):
        got_codes = np.array(got["codes"], np.int64).reshape(len(view), -1)
        got_view = np.array(got["view"], bool)
        assert np.array_equal(got_view, view)
        assert np.array_equal(got_codes[view], codes[view])


def _entropy_worlds(rng, schema, n, count):
    """``count`` random worlds whose entities turn (a largest rotation component switching
    now and then), move and get hurt, each encoded for ``schema`` against a baseline, every
    other one with a predictor, cut into parts by small budgets: unit.mjs "apply" ops and
    the (codes, view) each must rebuild."""
    rot = SmallestThree(9)
    shape = {"capacity": n, "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe()}
    ops, expected = [], []
    for case in range(count):
        q = rng.normal(size=(n, 4))
        older = np.column_stack([rot.quantize(q / np.linalg.norm(q, axis=1, keepdims=True)),
                                 rng.integers(1000, 1 << 19, (n, 2)), rng.integers(0, 8, n), rng.integers(0, 101, n)])
        base, codes = older.copy(), older.copy()
        moving = rng.random(n) < 0.4
        velocity = rng.integers(-30, 31, (int(moving.sum()), 2))
        base[moving, 4:6] += velocity
        codes[moving, 4:6] += 2 * velocity + rng.integers(-200, 201, (int(moving.sum()), 2))
        turning = rng.random(n) < 0.3  # small turns: a largest index switches now and then
        unit = rot.dequantize(base[turning, :4], np.dtype(np.float64)) + rng.normal(0, 0.2, (int(turning.sum()), 4))
        codes[turning, :4] = rot.quantize(unit / np.linalg.norm(unit, axis=1, keepdims=True))
        hurt = rng.random(n) < 0.1
        codes[hurt, 7] = rng.integers(0, 101, int(hurt.sum()))
        view, base_view = np.ones(n, bool), np.ones(n, bool)
        view[rng.random(n) < 0.05] = False  # destroyed
        base_view[rng.random(n) < 0.05] = False  # created (or held beyond the baseline)
        budget = int(rng.choice([300, 600, 1150]))
        predictor = (96, older, np.ones(n, bool), schema.smooth) if case % 2 else None
        parts = encode_snapshot(100, codes, view, b"", budget=budget, base_tick=98, base_codes=base, base_view=base_view,
                                base_extras=b"", predictor=predictor, coding=schema.coding)
        op = {"op": "apply", "parts": [parts[i].hex() for i in rng.permutation(len(parts))], "codes": base.ravel().tolist(),
              "view": base_view.astype(int).tolist(), **shape}
        if predictor is not None:
            op.update(pred={"tick": 96, "codes": older.ravel().tolist(), "view": [1] * n}, smooth=schema.smooth.astype(int).tolist())
        ops.append(op)
        expected.append((codes, view))
    assert (rot.delta(base[:, :4], codes[:, :4])[:, 0] != 0).any(), "some largest index should switch"
    return ops, expected


def test_js_decodes_parts_coded_from_a_trained_model_as_python_does(seed):
    """A spec with a trained coder model, in context layouts 0 and 1: the room's schema
    carries the model, the browser loads it (the same probabilities and event counts as
    Python's CoderModel) and rebuilds the parts coded from it exactly; the PROTOCOL.md
    vectors of a model and a part coded from it decode there too."""
    rng = np.random.default_rng(seed)
    n = 200
    plain = _entropy_schema(n)
    for layout in (0, 1):
        trainer = Trainer(plain, layout)
        with trainer:
            _entropy_worlds(np.random.default_rng(seed + 1), plain, n, 4)
        model = trainer.model(settled=50)
        assert model.seen.max() == 15  # some contexts start settled
        schema = SnapshotSchema(dataclasses.replace(plain.replication, model=model.to_bytes()), _entropy_state(n))
        described = schema.coding.describe()
        assert base64.b64decode(described["model"]) == model.to_bytes()
        ops, expected = _entropy_worlds(rng, schema, n, 3)
        loaded, *out = js({"op": "model", "b64": described["model"], "fields": model.fields, "groups": model.groups}, *ops)
        assert loaded == {"layout": layout, "probs": model.probs.tolist(), "seen": model.seen.tolist()}
        _same_tables(out, expected)
        # ... and not without the model: garbage or an error, never the frame
        for got, (codes, view) in zip(js(*({**op, "coding": plain.coding.describe()} for op in ops)), expected):
            assert "error" in got or not np.array_equal(np.array(got["codes"], np.int64).reshape(n, -1)[view], codes[view])
    vector_model = bytes.fromhex(VECTORS["coder_model"])
    small = SnapshotSchema(
        Replication(alive="alive", fields={"a": Int(0, 100), "b": Int(0, 100)}, coding="entropy", groups=(("a", "b"),), model=vector_model),
        State({"alive": np.ones(4, bool), "a": np.zeros(4, np.int64), "b": np.zeros(4, np.int64)}),
    )
    part = {"op": "apply", "parts": [VECTORS["snapshot_entropy_model"]], "codes": BASE.ravel().tolist(), "view": BASE_VIEW.astype(int).tolist(),
            "capacity": 4, "columns": 2, "extras_size": 0, "coding": small.coding.describe()}
    _same_tables(js(part), [(CODES, VIEW)])


def test_js_refuses_a_hostile_model_as_python_does():
    """Every file Python's CoderModel refuses (tests/test_training.py's hostile_models) is a
    ProtocolError("bad_model") in the browser, as is a model of another table; the spec's
    own model loads."""
    schema = _entropy_schema(200)
    trainer = Trainer(schema, 1)
    with trainer:
        _entropy_worlds(np.random.default_rng(3), schema, 200, 2)
    model = trainer.model(settled=50)
    c = schema.coding
    files = {"loads": model.to_bytes(), **hostile_models(model)}
    files["another table"] = CoderModel(c.table_sets + 1, c.groups, rangecoder.prior(c.table_sets + 1, c.groups), np.zeros(rangecoder.contexts(c.table_sets + 1, c.groups))).to_bytes()
    ops = [{"op": "model", "b64": base64.b64encode(data).decode(), "fields": c.table_sets, "groups": c.groups} for data in files.values()]
    ops += [{"op": "model", "b64": text, "fields": c.table_sets, "groups": c.groups} for text in ("not base64!", 12, None)]  # the schema is JSON from the network
    got = js(*ops)
    assert got[0]["probs"] == model.probs.tolist() and got[0]["seen"] == model.seen.tolist()
    assert all(g == {"error": "bad_model"} for g in got[1:]), list(zip([*files, "text", "number", "null"], got))


def test_room_schema_tells_the_browser_how_to_decode_or_why_it_cannot():
    from netcode.server.dashboard import _coding, _predictor

    schema = _entropy_schema(4)
    described = _coding(schema)
    assert described == {"groups": [1, 1, 1, 1, 0, 0, 2, 0], "sets": [0, 1, 1, 1, 2, 2, 3, 4], "rotations": [[0, 9]], "predictor": False, "model": None,
                         "carry": False}
    carrying = SnapshotSchema(dataclasses.replace(schema.replication, carry=True), _entropy_state(4))
    assert _coding(carrying)["carry"] is True
    with_hook = SnapshotSchema(dataclasses.replace(schema.replication, predictor=lambda b, o, r, a, g, c: b), _entropy_state(4))
    assert "only Python" in _coding(with_hook)["unsupported"]
    packed = SnapshotSchema(dataclasses.replace(schema.replication, coding="packed", groups=()), _entropy_state(4))
    assert _coding(packed) is None
    # What the browser predicts with, packed or entropy-coded: the linear default, the
    # engine's Bodies (its numbers, fields as columns), or a refusal for a game's function.
    assert _predictor(schema) is None and _predictor(packed) is None
    packed_hook = SnapshotSchema(dataclasses.replace(packed.replication, predictor=lambda b, o, r, a, g, c: b), _entropy_state(4))
    assert "only Python" in _predictor(packed_hook)["unsupported"] and "only Python" in _predictor(with_hook)["unsupported"]
    bodies = Bodies(moves=("pos",), rotation="rot", spin=0.999, turning=(1, 2), friction=0.25)
    for coding in ("packed", "entropy"):
        spec = SnapshotSchema(dataclasses.replace(schema.replication, coding=coding, predictor=bodies), _entropy_state(4))
        assert _predictor(spec) == {"bodies": {"moves": [[4, 6]], "height": None, "floor": None, "rotation": 0, "scale": 511,
                                               "spin": 0.999, "turning": [1, 2], "aloft": None, "box": None, "ground": None,
                                               "friction": 0.25}}
        assert coding == "packed" or "unsupported" not in _coding(spec)


def test_js_replay_window_and_acks_match_connection(seed):
    """The same stream of session packets (in order, reordered, duplicated, far behind,
    across the 16-bit wrap) through Python's Connection and the module's Session."""
    rng = np.random.default_rng(seed)
    sid = 0x0A0B0C0D
    seqs = []
    s = 65400
    for _ in range(600):
        r = rng.random()
        if r < 0.7:
            s = (s + int(rng.integers(1, 4))) & 0xFFFF
            seqs.append(s)
        elif r < 0.85 and seqs:
            seqs.append(seqs[int(rng.integers(max(0, len(seqs) - 40), len(seqs)))])  # duplicate or late
        else:
            seqs.append((s - int(rng.integers(1, 400))) & 0xFFFF)  # reordered, maybe stale
    packets = [pack_session_header(PacketType.KEEPALIVE, sid, q, None, 0) for q in seqs]
    packets.append(pack_session_header(PacketType.KEEPALIVE, sid + 1, (s + 1) & 0xFFFF, None, 0))  # another session
    conn = Connection(1, "server", sid, 0, 100.0, SessionConfig())
    expected = []
    for p in packets:
        try:
            conn.unwrap(p, 100.0)
            expected.append(True)
        except ProtocolError as exc:
            expected.append({"error": exc.reason})
    header = conn.wrap(PacketType.KEEPALIVE, b"", 100.0)
    (got,) = js({"op": "window", "session_id": sid, "packets": [p.hex() for p in packets]})
    assert got["accepted"] == expected
    assert {"error": "duplicate"} in expected and {"error": "stale"} in expected and expected[-1] == {"error": "bad_session"}
    assert got["header"] == header.hex()


UNACKED_CASES = [  # (stamps (first, last, record byte) in order, applied, the run resent)
    ([[10, 12, 1], [13, 15, 2]], 11, [12, [1, 2, 2, 2]]),
    ([[10, 12, 1], [20, 22, 2]], 9, [20, [2, 2, 2]]),
    ([[10, 12, 1]], 12, None),
    # A stamp after a long stall: the ring's rows between hold ticks 1024 earlier.
    ([[0, 1023, 7], [1100, 1101, 3]], 1050, [1100, [3, 3]]),
]


def test_js_input_runs_start_after_ticks_never_stamped():
    """A page that stalled while the server's clock moved on stamps past a gap: the run it
    resends starts after the gap (it once sent null records there, and packing threw)."""
    got = js(*({"op": "unacked", "stamps": stamps, "applied": applied} for stamps, applied, _ in UNACKED_CASES))
    assert got == [want for _, _, want in UNACKED_CASES]


def test_python_input_runs_start_after_ticks_never_stamped():
    """The same rule in the Python clients: a run over a gap resent stale ring rows as the
    gap's inputs (another tick's input, applied by the server as this one's)."""
    from netcode.mode.inputs import StampedInputs

    for stamps, applied, want in UNACKED_CASES:
        inputs = StampedInputs(1)
        for first, last, value in stamps:
            inputs.stamp(first, last, np.array([value], np.uint8))
        first, records = inputs.unacked(applied)
        assert (None if records is None else [first, records[:, 0].tolist()]) == want, stamps


def test_js_schema_helpers_encode_inputs_and_decode_values():
    server = TickServer(secret=SECRET, udp_port=None)
    server.add_room(Arena(npcs=10), RoomConfig("r", mode="statesync", players=3))
    schema = json.loads(json.dumps(room_schema(server, "r")))  # exactly what the endpoint serves
    record = np.zeros(1, INPUT_DTYPE)
    record["move"] = [127, -127]
    record["aim"] = 200
    record["buttons"] = 1
    clamped = np.zeros(1, INPUT_DTYPE)
    clamped["move"] = [-127, 5]
    clamped["view"] = 63  # the game's limit
    signed = {**schema, "replication": {**schema["replication"], "fields": [
        {"name": "s", "column": 0, "columns": 1, "shape": [], "dtype": "<i2", "kind": "i", "itemsize": 2, "quantizer": {"kind": "Exact"}},
        {"name": "f", "column": 1, "columns": 1, "shape": [], "dtype": "<f4", "kind": "f", "itemsize": 4, "quantizer": {"kind": "Fixed", "low": -1.0, "high": 1.0, "step": 0.25}},
        {"name": "a", "column": 2, "columns": 1, "shape": [], "dtype": "<f4", "kind": "f", "itemsize": 4, "quantizer": {"kind": "Angle", "bits": 4}},
    ], "columns": [{}, {}, {}]}}
    scores = np.array([3, -2, 70000], "<i4")
    out = js(
        {"op": "encode_input", "schema": schema, "values": {"move": [127, -127], "aim": 200, "buttons": 1}},
        {"op": "encode_input", "schema": schema, "values": {"move": [-500, 5], "view": 99}},
        {"op": "decode_input", "schema": schema, "hex": record.tobytes().hex()},
        {"op": "dequantize", "schema": schema, "field": "pos", "codes": [0, 65535]},
        {"op": "dequantize", "schema": signed, "field": "s", "codes": [5, 65535, 32768]},
        {"op": "dequantize", "schema": signed, "field": "f", "codes": [0, 4, 8]},
        {"op": "dequantize", "schema": signed, "field": "a", "codes": [0, 4, 8, 12]},
        {"op": "extras", "schema": schema, "hex": scores.tobytes().hex()},
    )
    assert out[0] == record.tobytes().hex()
    assert out[1] == clamped.tobytes().hex()
    assert out[2] == {"move": [127, -127], "aim": 200, "buttons": 1, "view": 0}
    assert out[3] == [0, 65535]
    assert out[4] == [5, -1, -32768]
    assert out[5] == [-1.0, 0.0, 1.0]
    assert np.allclose(out[6], [0.0, np.pi / 2, -np.pi, -np.pi / 2])
    assert out[7] == {"score": [3, -2, 70000]}


# -- the server side: schema, open join, the page ---------------------------------------------


def test_schema_describes_the_game_generically():
    game = Arena(npcs=20)
    server = TickServer(secret=SECRET, udp_port=None)
    server.add_room(game, RoomConfig("ss", mode="statesync", players=4))
    server.add_room(game, RoomConfig("ls", mode="lockstep", players=2))
    s = room_schema(server, "ss")
    assert s["game"] == {"name": "arena", "version": "1.0", "fingerprint": f"{game.fingerprint():016x}"}
    assert len(s["game"]["fingerprint"]) == 16
    assert (s["mode"], s["tick_rate"], s["snapshot_every"], s["players"]) == ("statesync", 60, 2, 4)
    assert s["player_entities"] == [0, 1, 2, 3]
    rep = s["replication"]
    assert rep["capacity"] == 24 and rep["position"] == "pos" and rep["smooth"] == ["pos"]
    assert [(c["field"], c["component"], c["smooth"]) for c in rep["columns"]] == [
        ("pos", 0, True), ("pos", 1, True), ("aim", 0, False), ("hp", 0, False), ("kind", 0, False)
    ]
    assert rep["columns"][0]["quantizer"] == {"kind": "Int", "low": 0, "high": 65535, "bits": 16}
    assert rep["columns"][4]["quantizer"] == {"kind": "Exact"}
    fields = {f["name"]: f for f in rep["fields"]}
    assert (fields["pos"]["column"], fields["pos"]["columns"], fields["pos"]["shape"]) == (0, 2, [2])
    assert (fields["kind"]["kind"], fields["kind"]["itemsize"]) == ("u", 1)
    assert rep["extras"] == [{"name": "score", "dtype": "<i4", "kind": "i", "itemsize": 4, "shape": [4], "offset": 0, "size": 16}]
    assert rep["extras_size"] == 16
    inp = s["input"]
    assert inp["itemsize"] == INPUT_DTYPE.itemsize == 5
    by_name = {f["name"]: f for f in inp["fields"]}
    assert by_name["move"] == {
        "name": "move", "offset": 0, "size": 2, "dtype": "|i1", "kind": "i", "itemsize": 1, "shape": [2], "count": 2, "limits": [-127, 127]
    }
    assert (by_name["aim"]["offset"], by_name["buttons"]["offset"], by_name["view"]["offset"]) == (2, 3, 4)
    assert s["view_field"] == "view"
    lockstep = room_schema(server, "ls")
    assert lockstep["mode"] == "lockstep" and lockstep["snapshot_every"] is None
    assert lockstep["replication"]["capacity"] == 22  # derived from the same spec
    assert room_schema(server, "nope") is None
    json.dumps(s)  # plain JSON types only


@pytest.mark.network
def test_schema_route_open_join_and_the_page():
    game = Arena(npcs=0)

    async def scenario():
        closed = TickServer(secret=SECRET, udp_port=None, http_port=0)
        closed.add_room(game, RoomConfig("default", mode="statesync", players=2))
        server = TickServer(secret=SECRET, udp_port=None, http_port=0, open_join=True)
        server.add_room(game, RoomConfig("default", mode="statesync", players=2))
        server.add_room(game, RoomConfig("other room", mode="statesync", players=1))
        clients = []
        async with closed, server, aiohttp.ClientSession() as http:
            async with http.post(closed.http_url + "api/join", json={}) as r:
                assert r.status == 403 and "open join" in (await r.json())["error"]
            async with http.get(closed.http_url + "api/rooms/default/schema") as r:
                assert r.status == 200 and (await r.json())["replication"]["capacity"] == 2
            async with http.get(closed.http_url + "api/rooms/nope/schema") as r:
                assert r.status == 404

            base = server.http_url
            async with http.get(base + "play") as r:
                page = await r.text()
                assert r.status == 200 and r.content_type == "text/html"
                assert "<canvas" in page and "web/arena.js" in page and not re.search(r"(https?:)?//[a-z]", page)  # no external assets
            for name in ("ticksync.js", "wire.js", "entropy.js", "arena.js"):
                async with http.get(base + "web/" + name) as r:
                    assert r.status == 200 and r.content_type == "text/javascript", name
                    assert "export" in await r.text() or name == "arena.js"
            for bad in ("web/..%2Fdashboard.py", "web/nope.js", "web/ticksync.py", "web/.hidden.js"):
                async with http.get(base + bad) as r:
                    assert r.status == 404, bad

            async def join(body=None, **kw):
                async with http.post(base + "api/join", data=b"" if body is None else json.dumps(body), **kw) as r:
                    return r.status, await r.json()

            status, first = await join()  # no body: the room called "default"
            assert status == 200 and first["room"] == "default" and first["role"] == "player" and first["slot"] == 0
            claims = verify_token(SECRET, token_from_text(first["token"]), now_wall=time.time(), room="default")
            assert claims.role == PLAYER and claims.slot == -1 and claims.user == first["user"]  # assigned on connect
            assert first["ws_path"] == "/ws" and first["schema"] == "api/rooms/default/schema"
            status, spectator = await join({"spectator": True})
            assert status == 200 and spectator["role"] == "spectator" and spectator["slot"] == -1
            assert verify_token(SECRET, token_from_text(spectator["token"]), now_wall=time.time()).role == SPECTATOR
            assert (await join({"room": "nope"}))[0] == 404
            assert (await join({"room": 5}))[0] == 400
            assert (await join([1]))[0] == 400
            status, other = await join({"room": "other room"})
            assert status == 200 and other["schema"] == "api/rooms/other%20room/schema"

            # Tokens for free slots: two players take both slots, then joining gives a spectator.
            for i in range(2):
                status, minted = await join({"room": "default"})
                assert status == 200 and minted["role"] == "player" and minted["slot"] == i
                client = GameClient(game, server.ws_url, minted["token"], bot=True)
                clients.append((client, asyncio.create_task(client.run(duration=10.0, stop=asyncio.Event()))))
                room = server.rooms["default"].mode
                await eventually(lambda: room.present.sum() == i + 1, f"player {i} connected")
                assert room.present[i]  # the lowest free slot
            status, full = await join({"room": "default"})
            assert status == 200 and full["role"] == "spectator" and full["full"] is True
            for client, task in clients:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await client.close()

    run(scenario())


def test_cli_serve_has_open_join(capsys):
    parser = build_parser()
    assert parser.parse_args(["serve", "demos.arena", "--open-join"]).open_join is True
    assert parser.parse_args(["serve", "demos.arena"]).open_join is False
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--open-join" in text and "anyone who can reach the dashboard may take a slot: for demos on a trusted network" in text


# -- end to end: the module as a player on a real server ---------------------------------------


def _arena_model(game, ticks: int = 40, layout: int = 1) -> bytes:
    """A coder model (context ``layout``) for ``game``'s spec, trained on its bots' play:
    each tick's snapshot coded against the one 3 ticks before, predicted from the one
    before that."""
    state = game.create(11, 4)
    schema = SnapshotSchema(game.replication, state)
    frames = []
    for tick in range(ticks):
        game.step(state, game.bot_inputs(state, tick, np.arange(4)), tick)
        frames.append(schema.quantize(state))
    trainer = Trainer(schema, layout)
    with trainer:
        for t in range(6, ticks):
            (codes, view, extras), (base, base_view, base_extras), (older, older_view, _) = frames[t], frames[t - 3], frames[t - 6]
            encode_snapshot(t, codes, view, extras, budget=1150, base_tick=t - 3, base_codes=base, base_view=base_view, base_extras=base_extras,
                            predictor=(t - 6, older, older_view, schema.smooth), coding=schema.coding)
    model = trainer.model(settled=50)
    assert model.seen.max() == 15
    return model.to_bytes()


async def _harness(server: TickServer, mode, *args: str, timeout: float) -> tuple[dict | None, tuple | None, str]:
    """Run player.mjs; returns its report, the server's history entry for the report's newest
    snapshot (looked up the moment the line arrives), and its stderr."""
    proc = await asyncio.create_subprocess_exec(
        *_node_command(), str(PLAYER_JS), "--http", server.http_url, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out = held = None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        out = json.loads(line) if line.strip() else None
        history = mode.history
        if out and out.get("latest") and history.has(out["latest"]["tick"]):
            i = history.index(out["latest"]["tick"])
            held = history.codes[i].copy(), history.alive[i].copy(), history.extras[i]
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert out is not None, f"player.mjs {' '.join(args)} printed nothing:\n{err}"
    assert proc.returncode == 0 and "error" not in out, f"player.mjs {' '.join(args)} failed: {out}\n{err}"
    return out, held, err


def _same_snapshot(out: dict, held: tuple | None, entities: int) -> None:
    """The module's reconstruction of its newest snapshot is the server's, code for code."""
    assert held is not None, "the server no longer held the harness's newest snapshot"
    codes, alive, extras = held
    latest = out["latest"]
    view = np.array(latest["view"], bool)
    got = np.array(latest["codes"], np.int64).reshape(codes.shape)
    assert np.array_equal(view, alive) and view.sum() == entities
    assert np.array_equal(got[view], codes[view])
    assert latest["extras"] == {"score": np.frombuffer(extras, "<i4").tolist()}


@pytest.mark.network
@pytest.mark.parametrize("coding", ["packed", "entropy", "model", "carry", "bodies"])
def test_js_client_plays_state_sync_over_a_real_websocket(coding):
    """A player holding "move right" and a spectator, side by side, for a few seconds; with
    the arena's spec as it ships (packed), range-coded (position and aim in one group),
    range-coded from a coder model trained on a recording of the arena (context layout 1),
    range-coded with models carried from snapshot to snapshot, and range-coded against the
    engine's Bodies predictor (the browser runs web/bodies.js)."""
    game = Arena(npcs=300)
    if coding != "packed":
        game.replication = dataclasses.replace(Arena.replication, coding="entropy", groups=(("pos", "aim"),))
    if coding == "bodies":
        game.replication = dataclasses.replace(game.replication, predictor=Bodies(moves=("pos", "aim")))
    if coding == "model":
        game.replication = dataclasses.replace(game.replication, model=_arena_model(game))
    if coding == "carry":
        game.replication = dataclasses.replace(game.replication, carry=True)
    seconds = 3.0

    async def scenario():
        server = TickServer(secret=SECRET, udp_port=None, http_port=0, open_join=True)
        room = server.add_room(game, RoomConfig("default", mode="statesync", players=4, seed=11))
        async with server:
            mode = room.mode
            start = mode.state.pos[0].copy()
            common = ("--room", "default", "--seconds", str(seconds))
            made = mode.stats_counters["snapshots"]
            (player, p_held, _), (watcher, w_held, _) = await asyncio.gather(
                _harness(server, mode, *common, "--move", "127,0", timeout=seconds + 20),
                _harness(server, mode, *common, "--spectator", timeout=seconds + 20),
            )
            end = mode.state.pos[0].copy()
            applied = int(mode.applied[0])
            made = mode.stats_counters["snapshots"] - made
            # The goodbye ends the session at once, not after a timeout.
            await eventually(lambda: not mode.present[0] and not mode.peers, "the DISCONNECTs to end both sessions")
        return player, p_held, watcher, w_held, start, end, applied, made

    player, p_held, watcher, w_held, start, end, applied, made = run(scenario(), timeout=60)
    stats = player["stats"]
    print(json.dumps(stats), f"server made {made} snapshots")
    assert [e["type"] for e in player["events"]] == ["connected"] and player["slot"] == 0
    assert player["join"]["role"] == "player" and player["status"] == "connected"
    # Snapshots came, were delta-decoded and acked; the server applied our inputs. (A third
    # of those the server made while the clients ran, Node's start-up included: compiled,
    # about 80% arrive; the interpreted server, on a busy machine, makes and paces fewer.)
    assert stats["snapshots"] >= max(15, made / 3) and stats["deltaParts"] > stats["parts"] / 2, (stats, made)
    assert stats["noBaseline"] == 0 and stats["drops"] == {}
    assert stats["predictedParts"] > stats["deltaParts"] / 2, stats  # (the predictor's: linear, or Bodies)
    assert stats["acked"] > 0 and stats["applied"] > 0 and stats["rttMs"] is not None
    assert applied > 0 and stats["applied"] <= applied
    _same_snapshot(player, p_held, 304)
    # "Move right" moved the entity right, and only right.
    assert end[1] == start[1] and (end[0] > start[0] + 2000 or end[0] == 65535), (start, end)
    own = player["own"]
    assert own[-1]["pos"][0] > own[0]["pos"][0] and all(p["pos"][1] == start[1] for p in own)
    assert player["view"]["visible"] == 304  # everyone drawn at the render tick
    # The spectator: no slot, no inputs, the same world.
    w = watcher["stats"]
    assert watcher["join"]["role"] == "spectator" and watcher["slot"] == -1 and watcher["own"] == []
    assert w["snapshots"] >= max(15, made / 3) and w["deltaParts"] > w["parts"] / 2 and w["drops"] == {}, (w, made)
    assert w["applied"] == -1
    _same_snapshot(watcher, w_held, 304)


@pytest.mark.network
def test_js_client_shows_why_it_was_refused():
    """DENIED's message reaches the page; a lockstep room is refused by the client itself."""
    game = Arena(npcs=0)

    async def attempt(server, token):
        proc = await asyncio.create_subprocess_exec(
            *_node_command(), str(PLAYER_JS), "--http", server.http_url, "--room", "default", "--token", token,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 1 and out.strip(), err.decode()
        return json.loads(out)

    async def scenario():
        server = TickServer(secret=SECRET, udp_port=None, http_port=0)
        server.add_room(game, RoomConfig("default", mode="statesync", players=1))
        server.add_room(game, RoomConfig("ls", mode="lockstep", players=1))
        async with server:
            forged = token_to_text(mint_token(b"some-other-secret-0123456789", "default", expires=time.time() + 60))
            no_slot = token_to_text(server.mint_token("default", slot=5))  # a 1-player room
            lockstep = token_to_text(server.mint_token("ls"))
            return await attempt(server, forged), await attempt(server, no_slot), await attempt(server, lockstep)

    forged, no_slot, lockstep = run(scenario())
    assert forged["status"] == "denied" and forged["events"][0]["code"] == "forged_token"
    assert "this server's secret" in forged["events"][0]["message"]
    assert no_slot["status"] == "denied" and "slot 5 does not exist" in no_slot["events"][0]["text"]
    assert lockstep["status"] == "failed" and "runs lockstep" in lockstep["events"][0]["text"]


@pytest.mark.network
def test_the_arena_page_script_joins_draws_and_sends_keys_and_mouse():
    """arena.js (what play.html runs) under tests/web/page.mjs's minimal DOM: it joins,
    connects, draws every entity, and the server receives its keys and mouse; when the
    server stops, the page says "server gone"."""
    game = Arena(npcs=200)

    async def scenario():
        server = TickServer(secret=SECRET, udp_port=None, http_port=0, open_join=True)
        room = server.add_room(game, RoomConfig("default", mode="statesync", players=2, seed=5))
        async with server:
            mode = room.mode
            start = mode.state.pos[0].copy()
            proc = await asyncio.create_subprocess_exec(
                *_node_command(), str(ROOT / "tests" / "web" / "page.mjs"), "--http", server.http_url, "--seconds", "2",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            try:
                out = await asyncio.wait_for(proc.stdout.readline(), 30)
                state = mode.state  # while the page still plays (a leaver's input is neutral)
                seen = state.pos[0].copy(), int(state.aim[0]), int(state.ready_at[0])
                await server.stop()  # the page says the server is gone (the second stop, on exit, is harmless)
                proc.stdin.close()  # now it may report and leave
                after = await asyncio.wait_for(proc.stdout.readline(), 10)
                await asyncio.wait_for(proc.wait(), 10)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            err = (await proc.stderr.read()).decode()
            assert proc.returncode == 0 and out.strip(), f"page.mjs failed:\n{err}"
            return json.loads(out), json.loads(after), start, *seen

    page, after, start, end, aim, ready_at = run(scenario(), timeout=60)
    assert after["message"].startswith("server gone (") and "reload to join again" in after["message"], after
    assert page["errors"] == [], page["errors"]
    assert page["message"] == "" and "playing slot 0" in page["hud"] and "entities 202" in page["hud"], page
    assert "slot 0" in page["scores"]
    assert page["calls"]["arc"] > 10 * 202  # many frames of every entity
    assert end[0] > start[0] and end[1] == start[1]  # D: right, and only right
    assert aim == 64  # the mouse straight below the player: a quarter turn
    assert ready_at > 0  # the button fired (a cooldown started)
