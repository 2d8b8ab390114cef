"""PROTOCOL.md's test vectors: rebuild every packet with the code and compare the bytes."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from netcode.errors import ProtocolError
from netcode.lockstep.frames import decode_frame, encode_frame
from netcode.session.handshake import ConnectRequest, GameIdentity, make_cookie, pack_accepted, pack_challenge, pack_denied, pack_request, parse_request
from netcode.mode.inputs import pack_run, parse_run
from netcode.lockstep.wire import LockstepInfo, pack_frames_header, pack_input, pack_run_header, parse_input
from engine.bodies import Bodies
from engine.quantize import Int, SmallestThree
from engine.replication import Replication
from engine.state import State
from netcode.statesync import rangecoder
from netcode.statesync.training import CoderModel
from netcode.statesync.snapshot import SnapshotSchema, apply_part, decode_part, encode_snapshot, predict
from netcode.statesync.wire import pack_snapshot_prefix, pack_ss_input, parse_ss_input
from netcode.session.connection import Connection, SessionConfig
from netcode.session.crypto import handshake_proof, session_keys
from netcode.session.token import mint_token, split_token, verify_token
from netcode.session.wire import PacketType, Reader, pack_session_header

SPEC = Path(__file__).resolve().parent.parent / "PROTOCOL.md"
VECTORS = dict(re.findall(r"^vector (\w+)\s+([0-9a-f]+)$", SPEC.read_text(), re.M))

SECRET = b"protocol-test-vector-secret!"
NONCE = 0xAABBCCDDEEFF0011
GAME = GameIdentity("arena", "1.0", 0x1122334455667788)
KEYS = bytes(range(64))  # client-to-server key 00..1f, server-to-client key 20..3f
CLIENT_TOKEN = mint_token(SECRET, "room1", expires=1_900_000_000, slot=2, user="ada", nonce=bytes(range(12)), keys=KEYS)
TOKEN, _ = split_token(CLIENT_TOKEN)  # what the handshake carries
SESSION_ID = 0x01020304
RECORDS = np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 9, 4, 5]], np.uint8)
PREV = np.zeros((4, 5), np.uint8)
CUR = PREV.copy()
CUR[1, 3], CUR[2, 0] = 1, 0x7F
MISSING = np.array([False, False, False, True])
CODES = np.array([[10, 20], [11, 21], [12, 22], [13, 23]], np.int64)
VIEW = np.array([True, True, False, True])
BASE = CODES.copy()
BASE[1, 0] = 9
BASE_VIEW = np.array([True, True, True, False])
ENTROPY = SnapshotSchema(
    Replication(alive="alive", fields={"a": Int(0, 100), "b": Int(0, 100)}, coding="entropy", groups=(("a", "b"),)),
    State({"alive": np.ones(4, bool), "a": np.zeros(4, np.int64), "b": np.zeros(4, np.int64)}),
)
# A layout-1 coder model for ENTROPY's tables (2 context sets, 1 group) that moves three
# contexts: the changed bit after an unchanged row (0), the first class bit of set 0 (16),
# and set 1's first class bit after a class 1-2 value that surprised (layout 1's 6550).
_probs = rangecoder.prior(2, 1, 1).copy()
_seen = np.zeros(len(_probs), np.uint8)
_probs[[0, 16, 6550]], _seen[[0, 16, 6550]] = [3000, 1000, 4000], [15, 0, 4]
MODEL = CoderModel(2, 1, _probs, _seen, layout=1).to_bytes()
ENTROPY_MODEL = SnapshotSchema(
    dataclasses.replace(ENTROPY.replication, model=MODEL),
    State({"alive": np.ones(4, bool), "a": np.zeros(4, np.int64), "b": np.zeros(4, np.int64)}),
)
# The engine's rigid-body predictor (PROTOCOL.md's "rigid-body predictor"): 4 bodies, their
# rotation (9-bit smallest three), position and height, ticks 4 (predictor), 5 (baseline), 7.
ROT = SmallestThree(9)
def _bodies(**more) -> SnapshotSchema:
    predictor = Bodies(moves=("pos", "z"), height="z", floor=10, rotation="rot", aloft=50, box=20.0, ground=0, **more)
    return SnapshotSchema(
        Replication(alive="alive", fields={"rot": ROT, "pos": Int(0, 1000), "z": Int(0, 1000)}, coding="entropy", predictor=predictor),
        State({"alive": np.ones(4, bool), "rot": np.zeros((4, 4)), "pos": np.zeros((4, 2), np.int64), "z": np.zeros(4, np.int64)}),
    )


BODIES = _bodies()


def _about_x(*angles):
    return ROT.quantize(np.array([[np.sin(a / 2), 0, 0, np.cos(a / 2)] for a in angles]))


BODIES_PRED = np.zeros((4, 7), np.int64)
BODIES_PRED[:, 0:4] = _about_x(0, 0, 0.5, 0)
BODIES_PRED[:, 4:7] = [[100, 100, 10], [200, 200, 40], [300, 300, 60], [400, 400, 10]]
BODIES_BASE = BODIES_PRED.copy()
BODIES_BASE[:, 0:4] = _about_x(0, 0, 0.504, 0)  # body 2 spins slowly, aloft
BODIES_BASE[0, 4:6] = [103, 101]  # body 0 slides
BODIES_BASE[1, 6] = 25  # body 1 falls
ALL4 = np.ones(4, bool)
BODIES_EXPECTED = BODIES.predict(BODIES_BASE, ALL4, BODIES_PRED, ALL4, 7, 5, 4)
BODIES_CODES = BODIES_EXPECTED.copy()
BODIES_CODES[0, 4] += 1  # body 0 slid a code further than expected
BODIES_CODES[3, 0:4] = ROT.quantize(np.array([[np.sin(np.pi / 8), 0, 0, np.cos(np.pi / 8)]]))  # body 3 tipped onto an edge
BODIES_CODES[3, 6] = int(20.0 * ROT.uprightness(BODIES_CODES[3:4, 0:4])[0] + 0.5)  # ... standing as high as box says
# ... and with friction 1.0 (2 codes of travel lost over the 2 ticks ahead): body 0 slides
# short, body 2 (aloft) slides free.
FRICTION = _bodies(friction=1.0)
FRICTION_BASE = BODIES_BASE.copy()
FRICTION_BASE[2, 4] = 301
FRICTION_EXPECTED = FRICTION.predict(FRICTION_BASE, ALL4, BODIES_PRED, ALL4, 7, 5, 4)
FRICTION_CODES = FRICTION_EXPECTED.copy()
FRICTION_CODES[0, 4] += 1  # body 0 slid a code further than expected
COOKIE = make_cookie(SECRET, ("127.0.0.1", 40000), NONCE, 1000, TOKEN)
C2S, S2C = session_keys(KEYS[:32], KEYS[32:], NONCE, SESSION_ID)
SS_INPUT = pack_ss_input(1, 200, 9, 210, RECORDS)


def client_connection() -> Connection:
    """The client's end of the vectors' session: sends with C2S, opens with S2C."""
    return Connection(0, "server", SESSION_ID, 1, 0.0, SessionConfig(), nonce=NONCE, keys=(C2S, S2C))

BUILT = {
    "token": TOKEN,
    "keepalive": pack_session_header(PacketType.KEEPALIVE, 0x01020304, 5, 3, 0b101, 20),
    "keepalive_noack": pack_session_header(PacketType.KEEPALIVE, 0x01020304, 0, None, 0),
    "request_start": pack_request(ConnectRequest(NONCE, GAME, TOKEN)),
    "cookie": COOKIE,
    "proof": handshake_proof(KEYS[:32], NONCE, 1000, COOKIE),
    "session_key_c2s": C2S,
    "session_key_s2c": S2C,
    "sealed_ss_input": client_connection().wrap(PacketType.SS_INPUT, SS_INPUT, 0.0),
    "challenge": pack_challenge(NONCE, 1000, COOKIE),
    "accepted": pack_accepted(NONCE, 0x01020304, 2, b"hi", epoch=0x1112131415161718),
    "denied": pack_denied(NONCE, "room_full", "all 8 player slots are taken"),
    "frame": encode_frame(PREV, CUR, MISSING),
    "frame_same": encode_frame(CUR, CUR, np.zeros(4, bool)),
    "input_run": pack_run(100, RECORDS),
    "ls_input": pack_input(2, 98, 0, first=100, records=RECORDS, hash_report=(60, 0x0102030405060708)),
    "ls_frames": pack_frames_header(99, 102)
    + b"\x01"
    + pack_run_header(99, 98, 2, False)
    + encode_frame(PREV, CUR, np.zeros(4, bool))
    + encode_frame(CUR, CUR, np.zeros(4, bool)),
    "ls_info": LockstepInfo(8, 42, 60, 60, 0, 2, 240).pack(),
    "ss_input": SS_INPUT,
    "ss_prefix": pack_snapshot_prefix(200, 203),
    "ss_prefix_tally": pack_snapshot_prefix(200, 203, (1000, 7)),
    "ls_frames_header_tally": pack_frames_header(99, 102, (1000, 7)),
    "snapshot_full": encode_snapshot(7, CODES, VIEW, b"\x05", budget=1150)[0],
    "snapshot_delta": encode_snapshot(
        7, CODES, VIEW, b"\x05", budget=1150, base_tick=5, base_codes=BASE, base_view=BASE_VIEW, base_extras=b"\x05"
    )[0],
    "snapshot_predicted": encode_snapshot(
        7,
        CODES,
        VIEW,
        b"\x05",
        budget=1150,
        base_tick=5,
        base_codes=BASE,
        base_view=BASE_VIEW,
        base_extras=b"\x05",
        predictor=(3, BASE - 1, np.ones(4, bool), np.array([True, False])),
    )[0],
    "snapshot_entropy": encode_snapshot(
        7, CODES, VIEW, b"", budget=1150, base_tick=5, base_codes=BASE, base_view=BASE_VIEW, base_extras=b"", coding=ENTROPY.coding
    )[0],
    "coder_model": MODEL,
    "snapshot_bodies": encode_snapshot(
        7, BODIES_CODES, ALL4, b"", budget=1150, base_tick=5, base_codes=BODIES_BASE, base_view=ALL4, base_extras=b"",
        predictor=(4, BODIES_PRED, ALL4, BODIES.smooth), coding=BODIES.coding,
    )[0],
    "snapshot_friction": encode_snapshot(
        7, FRICTION_CODES, ALL4, b"", budget=1150, base_tick=5, base_codes=FRICTION_BASE, base_view=ALL4, base_extras=b"",
        predictor=(4, BODIES_PRED, ALL4, FRICTION.smooth), coding=FRICTION.coding,
    )[0],
    "snapshot_entropy_model": encode_snapshot(
        7, CODES, VIEW, b"", budget=1150, base_tick=5, base_codes=BASE, base_view=BASE_VIEW, base_extras=b"", coding=ENTROPY_MODEL.coding
    )[0],
}


def test_every_vector_in_the_spec_is_checked():
    assert set(VECTORS) == set(BUILT)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_vector(name):
    built, written = BUILT[name], bytes.fromhex(VECTORS[name])
    if name == "request_start":
        assert len(built) == 400 and built.startswith(written) and not built[len(written) :].strip(b"\0")
    else:
        assert built == written, f"{name}: code {built.hex()} != spec {written.hex()}"


def test_vectors_parse_back():
    claims = verify_token(SECRET, bytes.fromhex(VECTORS["token"]), now_wall=1.8e9)
    assert claims.user == "ada" and claims.keys == KEYS
    # The server's end opens the sealed packet (its keys the other way round); one bit off fails.
    server = Connection(1, "client", SESSION_ID, 1, 0.0, SessionConfig(), nonce=NONCE, keys=(S2C, C2S))
    sealed = bytes.fromhex(VECTORS["sealed_ss_input"])
    assert len(sealed) == 17 + len(SS_INPUT) + 16
    assert bytes(server.unwrap(sealed, 0.0)) == SS_INPUT
    with pytest.raises(ProtocolError, match="bad_tag"):
        server.unwrap(sealed[:-1] + bytes([sealed[-1] ^ 1]), 0.0)
    req = parse_request(BUILT["request_start"])
    assert (req.nonce, req.game, req.token) == (NONCE, GAME, TOKEN)
    cur, missing = decode_frame(Reader(bytes.fromhex(VECTORS["frame"])), PREV)
    assert np.array_equal(cur, CUR) and np.array_equal(missing, MISSING)
    first, recs = parse_run(Reader(bytes.fromhex(VECTORS["input_run"])), 5)
    assert first == 100 and np.array_equal(recs, RECORDS)
    msg = parse_input(bytes.fromhex(VECTORS["ls_input"]), 5)
    assert (msg.slot, msg.next_needed, msg.hash_tick, msg.hash_value) == (2, 98, 60, 0x0102030405060708)
    ss = parse_ss_input(bytes.fromhex(VECTORS["ss_input"]), 5)
    assert (ss.slot, ss.ack, ss.view_delay, ss.first) == (1, 200, 9, 210)
    codes, view = BASE.copy(), BASE_VIEW.copy()
    apply_part(decode_part(bytes.fromhex(VECTORS["snapshot_delta"]), 4, 2, 1), codes, view)
    assert np.array_equal(view, VIEW) and np.array_equal(codes[VIEW], CODES[VIEW])
    codes, view = BASE.copy(), BASE_VIEW.copy()
    part = decode_part(bytes.fromhex(VECTORS["snapshot_entropy"]), 4, 2, 0, ENTROPY.coding)
    apply_part(part, codes, view, ENTROPY.coding, ENTROPY.motion(BASE, BASE_VIEW))
    assert np.array_equal(view, VIEW) and np.array_equal(codes[VIEW], CODES[VIEW])
    assert CoderModel.from_bytes(bytes.fromhex(VECTORS["coder_model"])).to_bytes() == MODEL
    codes, view = BASE.copy(), BASE_VIEW.copy()
    part = decode_part(bytes.fromhex(VECTORS["snapshot_entropy_model"]), 4, 2, 0, ENTROPY_MODEL.coding)
    apply_part(part, codes, view, ENTROPY_MODEL.coding, ENTROPY_MODEL.motion(BASE, BASE_VIEW))
    assert np.array_equal(view, VIEW) and np.array_equal(codes[VIEW], CODES[VIEW])
    # The model is what decodes it: the spec without the model does not get the codes back.
    codes, view = BASE.copy(), BASE_VIEW.copy()
    try:
        part = decode_part(bytes.fromhex(VECTORS["snapshot_entropy_model"]), 4, 2, 0, ENTROPY.coding)
        apply_part(part, codes, view, ENTROPY.coding, ENTROPY.motion(BASE, BASE_VIEW))
    except ProtocolError:
        pass
    else:
        assert not (np.array_equal(view, VIEW) and np.array_equal(codes[VIEW], CODES[VIEW]))
    # The bodies: body 1 expected on the floor (not through it), body 2 turned on twice
    # (aloft, however slowly), body 3's height guessed from its sent rotation; the table
    # decodes back only from what Bodies expects (the linear default does not).
    assert BODIES_EXPECTED[1, 6] == 10 and not np.array_equal(BODIES_EXPECTED[2, 0:4], BODIES_BASE[2, 0:4])
    part = decode_part(bytes.fromhex(VECTORS["snapshot_bodies"]), 4, 7, 0, BODIES.coding)
    assert (part.base, part.predictor) == (5, 4)
    codes, view = BODIES_EXPECTED.copy(), ALL4.copy()
    apply_part(part, codes, view, BODIES.coding, BODIES.motion(BODIES_BASE, ALL4, BODIES_PRED, ALL4))
    assert np.array_equal(codes, BODIES_CODES)
    linear = predict(BODIES_BASE, ALL4, BODIES_PRED, ALL4, 7, 5, 4, BODIES.smooth)
    apply_part(part, linear, ALL4.copy(), BODIES.coding, BODIES.motion(BODIES_BASE, ALL4, BODIES_PRED, ALL4))
    assert not np.array_equal(linear, BODIES_CODES)
    # With friction: body 0 expected 2 codes short in x and stopped in y, body 2 (aloft) not.
    assert (FRICTION_EXPECTED[0, 4:6] - FRICTION_BASE[0, 4:6]).tolist() == [4, 0]
    assert (FRICTION_EXPECTED[2, 4:6] - FRICTION_BASE[2, 4:6]).tolist() == [2, 0]
    part = decode_part(bytes.fromhex(VECTORS["snapshot_friction"]), 4, 7, 0, FRICTION.coding)
    for schema, rebuilt in ((FRICTION, True), (BODIES, False)):  # (without the friction it comes out wrong)
        codes = schema.predict(FRICTION_BASE, ALL4, BODIES_PRED, ALL4, 7, 5, 4)
        apply_part(part, codes, ALL4.copy(), schema.coding, schema.motion(FRICTION_BASE, ALL4, BODIES_PRED, ALL4))
        assert np.array_equal(codes, FRICTION_CODES) == rebuilt
    part = decode_part(bytes.fromhex(VECTORS["snapshot_predicted"]), 4, 2, 1)
    assert (part.base, part.predictor) == (5, 3)
    codes = predict(BASE, BASE_VIEW, BASE - 1, np.ones(4, bool), 7, 5, 3, np.array([True, False]))
    view = BASE_VIEW.copy()
    apply_part(part, codes, view)
    assert np.array_equal(view, VIEW) and np.array_equal(codes[VIEW], CODES[VIEW])


def test_input_tallies_parse_back():
    from netcode.lockstep.wire import parse_frames_header
    from netcode.statesync.wire import parse_snapshot_prefix

    assert parse_snapshot_prefix(Reader(bytes.fromhex(VECTORS["ss_prefix"]))) == (3, None)
    assert parse_snapshot_prefix(Reader(bytes.fromhex(VECTORS["ss_prefix_tally"]))) == (3, (1000, 7))
    header = bytes.fromhex(VECTORS["ls_frames_header_tally"]) + b"\x01"
    newest, ack, runs, _, tally = parse_frames_header(header)
    assert (newest, ack, runs, tally) == (99, 102, 1, (1000, 7))
