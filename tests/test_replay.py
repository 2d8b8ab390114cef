"""Replay files: round trips, damage detection, seeking, header errors, tamper detection."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demos.arena.game import Arena
from engine import Game, State
from engine.replay import (
    FORMAT_VERSION,
    MAGIC,
    Kind,
    ReplayError,
    ReplayReader,
    ReplayWriter,
    record_run,
    replay,
    seek,
)
from engine.rng import random_u64, rng_state


class Tally(Game):
    """A tiny deterministic game in which every input byte changes the state for good:
    ``acc = acc * 31 + input`` never cancels a difference (31 is odd, arithmetic wraps)."""

    name = "tally"
    version = "1.0"
    input_dtype = np.dtype([("a", "<i2"), ("b", "u1")])
    max_players = 16

    def create(self, seed: int, players: int) -> State:
        self.check_players(players)
        return State(
            {
                "acc": np.zeros(players, np.uint64),
                "mix": np.zeros(4, np.uint64),
                "rng": rng_state(seed),
                "turn": np.int64(0),
            }
        )

    def step(self, s: State, inputs: np.ndarray, tick: int) -> None:
        value = inputs["a"].astype(np.uint64) * np.uint64(257) + inputs["b"].astype(np.uint64)
        s.acc *= np.uint64(31)
        s.acc += value
        s.mix ^= random_u64(s.rng, 4)
        s.turn += 1


class Tally11(Tally):
    version = "1.1"


def straight(game: Game, reader: ReplayReader, until: int) -> State:
    """state_until by stepping the recorded inputs by hand (no replay machinery)."""
    state = game.create(reader.seed, reader.players)
    for t in range(until):
        game.step(state, reader.inputs(t).copy(), t)
    return state


def tally_file(ticks: int = 40, players: int = 3, seed: int = 5, **options) -> tuple[bytes, list[np.ndarray]]:
    """A recorded Tally run; inputs repeat every other tick so empty INPUTS records occur."""
    game = Tally()
    rng = np.random.default_rng(seed)
    log: list[np.ndarray] = []

    def inputs(state: State, tick: int) -> np.ndarray:
        if tick % 2 and log:
            row = log[-1].copy()
        else:
            row = np.frombuffer(rng.bytes(players * 3), game.input_dtype).copy()
        log.append(row)
        return row

    options.setdefault("hash_every", 5)
    options.setdefault("keyframe_every", 16)
    buf = io.BytesIO()
    record_run(game, seed, players, ticks, buf, input_fn=inputs, **options)
    return buf.getvalue(), log


def rewrite(data: bytes, offset: int, payload: bytes) -> bytes:
    """Replace the payload of the record at ``offset`` and recompute its CRC (a forgery)."""
    kind, tick, length = struct.unpack_from("<BII", data, offset)
    assert len(payload) == length
    head = struct.pack("<BII", kind, tick, length)
    crc = struct.pack("<I", zlib.crc32(head + payload))
    return data[:offset] + head + payload + crc + data[offset + 9 + length + 4 :]


# -- round trips --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    players=st.integers(1, 8),
    ticks=st.integers(0, 90),
    hash_every=st.integers(0, 12),
    keyframe_every=st.integers(0, 40),
    seed=st.integers(0, 2**64 - 1),
    data=st.data(),
)
def test_round_trip_random_inputs(players, ticks, hash_every, keyframe_every, seed, data):
    game = Tally()
    rows = []
    for _ in range(ticks):
        # Often repeat the last inputs, so the "same as previous" encoding is exercised.
        if rows and data.draw(st.booleans()):
            rows.append(rows[-1].copy())
        else:
            raw = data.draw(st.binary(min_size=3 * players, max_size=3 * players))
            rows.append(np.frombuffer(raw, game.input_dtype).copy())
    buf = io.BytesIO()
    final = record_run(
        game, seed, players, ticks, buf, input_fn=lambda s, t: rows[t],
        hash_every=hash_every, keyframe_every=keyframe_every, meta={"room": "r1"},
    )
    reader = ReplayReader(buf.getvalue())
    assert reader.clean and reader.tail is None
    assert (reader.players, reader.seed, reader.ticks, reader.meta) == (players, seed, ticks, {"room": "r1"})
    for t, row in enumerate(rows):
        assert reader.inputs(t).tobytes() == row.tobytes()
    result = replay(reader, game)
    assert result.ok and result.tick == ticks and result.state == final
    expected_hashes = {t for t in range(ticks) if hash_every and t % hash_every == 0} | {ticks}
    assert set(reader.hashes) == expected_hashes
    assert result.hashes_checked == len(expected_hashes)
    expected_keyframes = [t for t in range(ticks) if keyframe_every and t % keyframe_every == 0]
    assert reader.keyframe_ticks == expected_keyframes
    assert result.keyframes_checked == len(expected_keyframes)


def test_arena_round_trip_and_file_on_disk(tmp_path):
    game = Arena(npcs=50)
    path = tmp_path / "match.tsr"
    final = record_run(game, 11, 4, 300, path, hash_every=10, keyframe_every=100, tick_rate=30)
    reader = ReplayReader(path)
    assert reader.clean and reader.ticks == 300 and reader.tick_rate == 30 and reader.mode == "offline"
    assert (reader.game, reader.game_version, reader.fingerprint) == ("arena", "1.0", game.fingerprint())
    assert reader.input_dtype == game.input_dtype
    result = replay(reader, game)
    assert result.ok and result.state == final and result.state.hash() == final.hash()
    assert result.keyframes_checked == 3 and result.hashes_checked == 31


def test_repeated_inputs_are_stored_empty():
    data, log = tally_file(ticks=10)
    records = list(ReplayReader(data))
    inputs = [r for r in records if r.kind == Kind.INPUTS]
    assert [r.tick for r in inputs] == list(range(10))
    assert [len(r.payload) for r in inputs] == [0 if t % 2 else 9 for t in range(10)]
    assert [r.kind for r in records][-1] == Kind.END and records[-1].tick == 10


def test_record_vector():
    """Test vector for PROTOCOL.md: an INPUTS record for tick 0 with payload 01 02 03."""
    buf = io.BytesIO()
    with ReplayWriter(buf, Tally(), 0, 1, hash_every=0, keyframe_every=0) as w:
        w.record(0, np.frombuffer(b"\x01\x02\x03", Tally.input_dtype).copy())
    data = buf.getvalue()
    assert data[:8] == MAGIC == b"TSRPLAY\x00"
    assert struct.unpack_from("<H", data, 8)[0] == FORMAT_VERSION == 1
    (hlen,) = struct.unpack_from("<I", data, 10)
    body = data[14 + hlen + 4 :]
    # kind | tick | length | payload | crc32(all before)   then END for tick 1
    inputs = bytes.fromhex("01" "00000000" "03000000" "010203")
    end = bytes.fromhex("04" "01000000" "00000000")
    assert zlib.crc32(inputs) == 0x7B65C992 and zlib.crc32(end) == 0x774F453C
    assert body.hex() == "01000000000300000001020392c9657b" "040100000000000000" "3c454f77"


def test_killed_writer_leaves_a_replayable_file(tmp_path):
    path = tmp_path / "killed.tsr"
    game = Tally()
    writer = ReplayWriter(path, game, 3, 2, mode="lockstep")  # flushes every tick by default
    state = game.create(3, 2)
    for t in range(25):
        inputs = np.full(2, (t, t), game.input_dtype)
        writer.record(t, inputs, state)
        game.step(state, inputs, t)
    reader = ReplayReader(path)  # the writer is still open: as if its process died here
    assert not reader.clean and reader.ticks == 25
    assert reader.tail == "no END record after tick 24 (the recording was not closed)"
    assert replay(reader, game).state == state
    writer.close()
    assert ReplayReader(path).clean


# -- damage -------------------------------------------------------------------------------


def test_torn_tail_at_every_length():
    game = Tally()
    data, _ = tally_file(ticks=30)
    full = ReplayReader(data)
    records = list(full)
    header_end = records[0].offset
    ends = [(r.offset + 9 + len(r.payload) + 4, r) for r in records]
    for cut in range(header_end, len(data)):
        reader = ReplayReader(data[:cut])  # never raises past the header
        intact = [r for end, r in ends if end <= cut]
        ticks = sum(r.kind == Kind.INPUTS for r in intact)
        assert reader.ticks == ticks and not reader.clean
        assert reader.damage is None and reader.expected_ticks is None  # a crash, not damage
        assert [r.offset for r in reader] == [r.offset for r in intact]
        after = f"after tick {ticks - 1}" if ticks else "before tick 0"
        if cut in {end for end, _ in ends} or cut == header_end:
            assert reader.tail == f"no END record {after} (the recording was not closed)"
        else:
            torn = next(r for end, r in ends if end > cut)
            have, need = cut - torn.offset, 9 + len(torn.payload) + 4
            if have >= 9:
                assert reader.tail == f"torn tail {after}: {have} of {need} bytes"
            else:
                assert reader.tail == f"torn tail {after}: {have} bytes of a record header"
        if cut % 7 == 0:  # what survived still replays and verifies
            result = replay(reader, game)
            assert result.ok and result.tick == ticks
            assert result.state == straight(game, full, ticks)


def test_flipped_byte_is_found_and_named():
    game = Tally()
    data, _ = tally_file(ticks=30)
    full = ReplayReader(data)
    records = list(full)
    tick_of = {}  # record offset -> the tick whose records it belongs to
    seen_inputs = 0
    for r in records:
        tick_of[r.offset] = seen_inputs
        seen_inputs += r.kind == Kind.INPUTS
    # Flip every byte of the records in the middle of the file; for keyframes only their
    # payload (a flipped keyframe length may as well look like a torn tail).
    checked = 0
    for r in records[len(records) // 3 : 2 * len(records) // 3]:
        end = r.offset + 9 + len(r.payload) + 4
        first = r.offset + 9 if r.kind == Kind.KEYFRAME else r.offset
        for pos in range(first, end):
            damaged = bytearray(data)
            damaged[pos] ^= 0x5A
            reader = ReplayReader(bytes(damaged))
            t = tick_of[r.offset]
            assert reader.tail.startswith(f"corrupt record at tick {t} ("), (pos, reader.tail)
            assert not reader.clean and reader.ticks == t
            # Intact records follow: damage, not a torn tail; the END says what was lost.
            assert reader.expected_ticks == 30, (pos, reader.tail)
            assert reader.damage.startswith(f"damaged at byte {r.offset}: corrupt record at tick {t} (")
            assert reader.damage.endswith(f"{30 - t} of the 30 ticks it was meant to hold are lost")
            assert [x.offset for x in reader] == [x.offset for x in records if x.offset < r.offset]
            result = replay(reader, game)
            assert result.ok and result.tick == t and result.state == straight(game, full, t)
            checked += 1
    assert checked > 100
    # A keyframe's length field flipped: it may read as a record running past the end of
    # the file, but the records after it still show the file was damaged, not torn.
    keyframes = [r for r in records[len(records) // 3 :] if r.kind == Kind.KEYFRAME]
    assert keyframes
    for r in keyframes:
        for pos in range(r.offset + 5, r.offset + 9):
            damaged = bytearray(data)
            damaged[pos] ^= 0x40
            reader = ReplayReader(bytes(damaged))
            assert reader.damage and reader.expected_ticks == 30 and reader.ticks == tick_of[r.offset], reader.tail
    flipped = bytearray(data)
    flipped[records[20].offset + 9] ^= 1
    assert ReplayReader(bytes(flipped)).tail == f"corrupt record at tick {tick_of[records[20].offset]} (CRC mismatch)"


def test_any_damage_never_raises_while_reading():
    data, _ = tally_file(ticks=20)
    header_end = next(iter(ReplayReader(data))).offset
    rng = np.random.default_rng(1234)
    print("seed 1234")
    for _ in range(300):
        damaged = bytearray(data)
        for pos in rng.integers(header_end, len(data), size=rng.integers(1, 4)):
            damaged[pos] = rng.integers(0, 256)
        reader = ReplayReader(bytes(damaged[: rng.integers(header_end, len(data) + 1)]))
        list(reader)
        assert reader.ticks <= 20 and (reader.clean or reader.tail)


def test_records_after_end_are_reported():
    data, _ = tally_file(ticks=5)
    reader = ReplayReader(data + b"\x01\x02")
    assert not reader.clean and reader.ticks == 5
    assert reader.tail == "2 unexpected bytes after END at tick 5"


# -- seeking ------------------------------------------------------------------------------


def test_seek_through_keyframes_equals_straight_replay():
    game = Arena(npcs=50)
    buf = io.BytesIO()
    record_run(game, 2, 3, 250, buf, hash_every=16, keyframe_every=64)
    reader = ReplayReader(buf.getvalue())
    assert reader.keyframe_ticks == [0, 64, 128, 192]
    for tick in (0, 1, 63, 64, 65, 130, 192, 249, 250):
        state = seek(reader, game, tick)
        expected = replay(reader, game, until=tick)
        assert expected.ok and expected.tick == tick
        assert state == expected.state and state.hash() == expected.state.hash()
    # a verified run that starts from a keyframe agrees with the recorded hashes
    result = replay(reader, game, start_keyframe=128)
    assert result.ok and result.start_tick == 128 and result.ticks == 122 and result.hashes_checked > 0
    with pytest.raises(ValueError):
        seek(reader, game, 251)
    with pytest.raises(ValueError):
        replay(reader, game, start_keyframe=100)


# -- bad headers, wrong games -------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda d: b"", "empty file: not a ticksync replay"),
        (lambda d: bytes(range(256)) * 4, "not a ticksync replay (bad magic)"),
        (lambda d: b"PK\x03\x04" + d[4:], "not a ticksync replay (bad magic)"),
        (lambda d: d[:5], "truncated header (5 bytes)"),
        (lambda d: d[:12], "truncated header (12 bytes)"),
        (lambda d: d[:40], "truncated header (40 of "),
        (lambda d: d[:8] + struct.pack("<H", 7) + d[10:], "unsupported replay format version 7"),
        (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "header CRC mismatch"),
        (lambda d: d[:10] + struct.pack("<I", 1 << 30) + d[14:], "header length 1073741824 is implausible"),
    ],
)
def test_bad_headers_raise_replay_error(mangle, message):
    data, _ = tally_file(ticks=3)
    with pytest.raises(ReplayError) as info:
        ReplayReader(mangle(data))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_header_with_valid_crc_but_bad_fields():
    def forge(text: bytes) -> bytes:
        prefix = MAGIC + struct.pack("<HI", 1, len(text)) + text
        return prefix + struct.pack("<I", zlib.crc32(prefix))

    with pytest.raises(ReplayError, match="header is not valid JSON"):
        ReplayReader(forge(b"{nope"))
    with pytest.raises(ReplayError, match="header field 'game' is missing"):
        ReplayReader(forge(b"{}"))


def test_check_game_names_both_sides():
    data, _ = tally_file(ticks=3)
    reader = ReplayReader(data)
    reader.check_game(Tally())
    with pytest.raises(ReplayError) as info:
        reader.check_game(Tally11())
    fp_old, fp_new = f"{Tally().fingerprint():016x}", f"{Tally11().fingerprint():016x}"
    assert str(info.value) == f"replay is tally 1.0 (fp {fp_old}), this game is tally 1.1 (fp {fp_new})"
    with pytest.raises(ReplayError, match=r"replay is tally 1.0 .* this game is arena 1.0"):
        replay(reader, Arena(npcs=5))
    buf = io.BytesIO()
    record_run(Arena(npcs=5), 1, 1, 2, buf)
    with pytest.raises(ReplayError, match="replay is arena 1.0 .* this game is arena 1.0"):
        ReplayReader(buf.getvalue()).check_game(Arena(npcs=6))  # same name, other layout


# -- verification -------------------------------------------------------------------------


def test_tampered_input_diverges_at_next_hash():
    game = Tally()
    data, _ = tally_file(ticks=40, hash_every=5, keyframe_every=0)
    target = next(r for r in ReplayReader(data) if r.kind == Kind.INPUTS and r.tick == 12)
    forged = rewrite(data, target.offset, bytes(b ^ 0xFF for b in target.payload))
    reader = ReplayReader(forged)
    assert reader.clean  # every CRC is valid: only re-simulation can tell
    result = replay(reader, game)
    assert result.divergent_tick == 15 and result.tick == 15 and not result.ok
    assert replay(reader, game, verify=False).ok  # nothing to compare, runs to the end


def test_tampered_keyframe_names_the_differing_arrays():
    game = Tally()
    data, _ = tally_file(ticks=40, hash_every=0, keyframe_every=16)
    target = next(r for r in ReplayReader(data) if r.kind == Kind.KEYFRAME and r.tick == 16)
    state = game.create(5, 3)
    state.unpack_into(ReplayReader(data).keyframe(16))
    state.turn = 99
    raw = state.pack()
    assert target.payload[0] == 0  # 72 noisy bytes: the writer stored them raw
    reader = ReplayReader(rewrite(data, target.offset, b"\x00" + raw))
    result = replay(reader, game)
    assert result.divergent_tick == 16 and result.differing == ("turn",)


def test_late_hash_from_a_peer_is_verified():
    game = Tally()
    buf = io.BytesIO()
    with ReplayWriter(buf, game, 1, 2, mode="lockstep", hash_every=0, keyframe_every=0) as w:
        state = game.create(1, 2)
        hashes = {}
        for t in range(10):
            hashes[t] = state.hash()
            inputs = np.full(2, (t, 1), game.input_dtype)
            w.record(t, inputs, None)  # a relay that does not simulate
            game.step(state, inputs, t)
            if t >= 3:
                w.record_hash(t - 3, hashes[t - 3] ^ (t == 8))  # the one for tick 5 is wrong
    reader = ReplayReader(buf.getvalue())
    assert sorted(reader.hashes) == list(range(7))
    assert replay(reader, game).divergent_tick == 5
    assert replay(reader, game, until=4).ok


# -- writer misuse ------------------------------------------------------------------------


def test_writer_rejects_misuse():
    game = Tally()
    with pytest.raises(ValueError, match="mode"):
        ReplayWriter(io.BytesIO(), game, 0, 1, mode="p2p")
    with pytest.raises(ValueError, match="JSON"):
        ReplayWriter(io.BytesIO(), game, 0, 1, meta={"x": object()})
    w = ReplayWriter(io.BytesIO(), game, 0, 2)
    good = np.zeros(2, game.input_dtype)
    with pytest.raises(ValueError, match="expects tick 0 next"):
        w.record(1, good)
    w.record(0, good)
    with pytest.raises(ValueError, match="expects tick 1 next"):
        w.record(0, good)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        w.record(1, np.zeros(3, game.input_dtype))
    with pytest.raises(ValueError, match="input dtype"):
        w.record(1, np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="0..1"):
        w.record_hash(2, 0)
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.record(1, good)


def test_exception_in_with_block_leaves_no_end():
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with ReplayWriter(buf, Tally(), 0, 1) as w:
            w.record(0, np.zeros(1, Tally.input_dtype))
            raise RuntimeError("game crashed")
    reader = ReplayReader(buf.getvalue())
    assert reader.ticks == 1 and not reader.clean


def test_abort_closes_without_end(tmp_path):
    """``abort()``: the file is closed, what was recorded stays replayable, and the reader
    says the recording did not finish (as leaving a ``with`` block by an exception does)."""
    path = tmp_path / "aborted.tsr"
    game = Tally()
    w = ReplayWriter(path, game, 0, 2, mode="lockstep")
    state = game.create(0, 2)
    for t in range(3):
        inputs = np.full(2, (t, t), game.input_dtype)
        w.record(t, inputs, state)
        game.step(state, inputs, t)
    w.abort()
    assert w.closed and w._file.closed
    w.abort()  # idempotent
    w.close()  # and a later close() writes no END
    with pytest.raises(ValueError, match="closed"):
        w.record(3, np.zeros(2, game.input_dtype))
    reader = ReplayReader(path)
    assert reader.ticks == 3 and not reader.clean
    assert reader.tail == "no END record after tick 2 (the recording was not closed)"
    assert replay(reader, game).state == state


def test_abort_after_close_keeps_the_end():
    buf = io.BytesIO()
    w = ReplayWriter(buf, Tally(), 0, 1)
    w.record(0, np.zeros(1, Tally.input_dtype))
    w.close()
    w.abort()
    assert not buf.closed  # a file passed in is the caller's to close
    assert ReplayReader(buf.getvalue()).clean
