"""Lockstep packet bodies: LS_INPUT (client to server), LS_FRAMES and LS_KEYFRAME (server to
client), and the parameters a lockstep server sends in ACCEPTED. PROTOCOL.md has the bytes.

Every parser validates lengths and ranges before use and raises ProtocolError, so hostile
bytes become counted drops.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from netcode.errors import ProtocolError
from netcode.mode.inputs import pack_run, parse_run
from netcode.session.wire import Reader, unzigzag, varint, zigzag

__all__ = [
    "LockstepInfo",
    "InputMessage",
    "pack_input",
    "parse_input",
    "pack_frames_header",
    "pack_run_header",
    "parse_frames_header",
    "read_run_header",
    "pack_keyframe_part",
    "parse_keyframe_part",
    "KeyframePart",
    "SPECTATOR_SLOT",
    "KEYFRAME_CHUNK",
    "NO_ACK",
]

SPECTATOR_SLOT = 0xFF
KEYFRAME_CHUNK = 1150
NO_ACK = 0xFFFFFFFF

MODE_LOCKSTEP = 1
_INFO = struct.Struct("<BHQHHIBI")


@dataclass(frozen=True)
class LockstepInfo:
    """What a lockstep client needs to start: sent in ACCEPTED."""

    players: int
    seed: int
    tick_rate: int
    hash_every: int
    server_tick: int  # the next frame the server will close
    send_every: int
    max_ahead: int

    def pack(self) -> bytes:
        return _INFO.pack(
            MODE_LOCKSTEP, self.players, self.seed, self.tick_rate, self.hash_every, self.server_tick, self.send_every, self.max_ahead
        )

    @classmethod
    def parse(cls, data: bytes) -> "LockstepInfo":
        if len(data) != _INFO.size or data[0] != MODE_LOCKSTEP:
            raise ProtocolError("bad_info", "ACCEPTED does not carry lockstep parameters")
        _, players, seed, rate, hash_every, tick, send_every, max_ahead = _INFO.unpack(data)
        if not (players and rate and hash_every and send_every):
            raise ProtocolError("bad_info", "zero in lockstep parameters")
        return cls(players, seed, rate, hash_every, tick, send_every, max_ahead)


# -- LS_INPUT -----------------------------------------------------------------------------
IN_INPUTS, IN_HASH, IN_KEYFRAME = 1, 2, 4
_IN_HEAD = struct.Struct("<BBII")  # slot, flags, next needed frame (NO_ACK: none yet), origin


@dataclass
class InputMessage:
    slot: int
    next_needed: int | None
    origin: int = 0  # the client's frames begin here (0, or the keyframe it loaded)
    first: int = 0  # tick of records[0]
    records: np.ndarray | None = None  # (n, itemsize) uint8
    hash_tick: int | None = None
    hash_value: int = 0
    keyframe_tick: int | None = None
    keyframe_parts: int = 0
    keyframe_have: np.ndarray | None = None  # (parts,) bool


def pack_input(
    slot: int,
    next_needed: int | None,
    origin: int = 0,
    *,
    first: int = 0,
    records: np.ndarray | None = None,
    hash_report: tuple[int, int] | None = None,
    keyframe: tuple[int, np.ndarray] | None = None,
) -> bytes:
    """``records``: (n, itemsize) uint8, inputs for ticks first..first+n-1 (n <= 255)."""
    flags = 0
    parts = []
    if records is not None and len(records):
        flags |= IN_INPUTS
        parts.append(pack_run(first, records))
    if hash_report is not None:
        flags |= IN_HASH
        parts.append(struct.pack("<IQ", *hash_report))
    if keyframe is not None:
        flags |= IN_KEYFRAME
        tick, have = keyframe
        parts.append(struct.pack("<IH", tick, len(have)))
        parts.append(np.packbits(have, bitorder="little").tobytes())
    head = _IN_HEAD.pack(slot, flags, NO_ACK if next_needed is None else next_needed, origin)
    return head + b"".join(parts)


def parse_input(payload, itemsize: int) -> InputMessage:
    r = Reader(payload)
    slot, flags, needed, origin = _IN_HEAD.unpack_from(payload, r.take(_IN_HEAD.size))
    if flags & ~(IN_INPUTS | IN_HASH | IN_KEYFRAME):
        raise ProtocolError("bad_input", f"unknown flags {flags:#x}")
    if needed != NO_ACK and origin > needed:
        raise ProtocolError("bad_input", f"origin {origin} after the next needed frame {needed}")
    msg = InputMessage(slot, None if needed == NO_ACK else needed, origin)
    if flags & IN_INPUTS:
        msg.first, msg.records = parse_run(r, itemsize)
    if flags & IN_HASH:
        msg.hash_tick, msg.hash_value = r.u32(), r.u64()
    if flags & IN_KEYFRAME:
        msg.keyframe_tick, parts = r.u32(), r.u16()
        if parts == 0:
            raise ProtocolError("bad_input", "keyframe status with zero parts")
        bits = np.unpackbits(np.frombuffer(r.view((parts + 7) // 8), np.uint8), bitorder="little")
        msg.keyframe_parts, msg.keyframe_have = parts, bits[:parts].astype(bool)
    r.done()
    return msg


# -- LS_FRAMES ----------------------------------------------------------------------------
_FR_HEAD = struct.Struct("<BI")  # flags (0), newest frame tick


FR_TALLY = 1  # LS_FRAMES flag: the input tally follows the input ack


def pack_frames_header(newest: int, input_ack: int, tally: tuple[int, int] | None = None) -> bytes:
    """``tally``: (ticks run with this client's input, ticks run without it), sent now and then."""
    if tally is None:
        return _FR_HEAD.pack(0, newest) + varint(zigzag(input_ack - newest))
    return _FR_HEAD.pack(FR_TALLY, newest) + varint(zigzag(input_ack - newest)) + varint(tally[0]) + varint(tally[1])


def pack_run_header(newest: int, first: int, count: int, absolute: bool) -> bytes:
    return varint(((newest - first) << 1) | int(absolute)) + varint(count)


def parse_frames_header(payload) -> tuple[int, int, int, Reader, tuple[int, int] | None]:
    """(newest frame tick, input ack, run count, reader at the first run, input tally or
    None). Runs follow one another, each a header (:func:`read_run_header`) and then its frames."""
    r = Reader(payload)
    flags, newest = _FR_HEAD.unpack_from(payload, r.take(_FR_HEAD.size))
    if flags & ~FR_TALLY:
        raise ProtocolError("bad_frames", f"unknown flags {flags:#x}")
    input_ack = newest + unzigzag(r.varint(1 << 40))
    tally = (r.varint(1 << 40), r.varint(1 << 40)) if flags & FR_TALLY else None
    runs = r.u8()
    if not 1 <= runs <= 2:
        raise ProtocolError("bad_frames", f"{runs} runs")
    return newest, input_ack, runs, r, tally


def read_run_header(r: Reader, newest: int) -> tuple[int, int, bool]:
    head = r.varint(1 << 33)
    first = newest - (head >> 1)
    count = r.varint(1 << 16)
    if count == 0 or first < 0 or first + count - 1 > newest:
        raise ProtocolError("bad_frames", f"run {first}+{count} does not end by {newest}")
    return first, count, bool(head & 1)


# -- LS_KEYFRAME --------------------------------------------------------------------------
_KF = struct.Struct("<IIHHI")  # keyframe tick, server tick, part index, part count, total bytes


@dataclass(frozen=True)
class KeyframePart:
    tick: int
    server_tick: int
    index: int
    parts: int
    total: int
    chunk: bytes


def pack_keyframe_part(tick: int, server_tick: int, index: int, parts: int, total: int, chunk: bytes) -> bytes:
    return _KF.pack(tick, server_tick, index, parts, total) + chunk


def parse_keyframe_part(payload, max_total: int) -> KeyframePart:
    r = Reader(payload)
    tick, server_tick, index, parts, total = _KF.unpack_from(payload, r.take(_KF.size))
    if not 0 <= index < parts or total > max_total or parts != -(-total // KEYFRAME_CHUNK):
        raise ProtocolError("bad_keyframe", f"part {index}/{parts} of {total} bytes")
    expected = min(KEYFRAME_CHUNK, total - index * KEYFRAME_CHUNK)
    if r.remaining != expected:
        raise ProtocolError("bad_keyframe", f"part {index} holds {r.remaining} bytes, expected {expected}")
    return KeyframePart(tick, server_tick, index, parts, total, r.bytes(expected))
