"""State-sync packet bodies: SS_INPUT (client to server), the per-client prefix of
SS_SNAPSHOT (its part bytes are :mod:`netcode.statesync.snapshot`'s), and the ACCEPTED parameters.
PROTOCOL.md has the bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from netcode.errors import ProtocolError
from netcode.mode.inputs import pack_run, parse_run
from netcode.session.wire import Reader, unzigzag, varint, zigzag

__all__ = ["StateSyncInfo", "SnapshotInput", "pack_ss_input", "parse_ss_input", "pack_snapshot_prefix", "parse_snapshot_prefix", "NO_ACK"]

MODE_STATESYNC = 2
NO_ACK = 0xFFFFFFFF
_INFO = struct.Struct("<BHQHBIH")
_IN_HEAD = struct.Struct("<BBIB")  # slot, flags, newest complete snapshot acked, view delay (ticks)
IN_INPUTS = 1


@dataclass(frozen=True)
class StateSyncInfo:
    players: int
    seed: int
    tick_rate: int
    snapshot_every: int  # ticks between snapshots
    server_tick: int
    max_ahead: int

    def pack(self) -> bytes:
        return _INFO.pack(
            MODE_STATESYNC, self.players, self.seed, self.tick_rate, self.snapshot_every, self.server_tick, self.max_ahead
        )

    @classmethod
    def parse(cls, data: bytes) -> "StateSyncInfo":
        if len(data) != _INFO.size or data[0] != MODE_STATESYNC:
            raise ProtocolError("bad_info", "ACCEPTED does not carry state-sync parameters")
        _, players, seed, rate, every, tick, ahead = _INFO.unpack(data)
        if not (players and rate and every):
            raise ProtocolError("bad_info", "zero in state-sync parameters")
        return cls(players, seed, rate, every, tick, ahead)


@dataclass
class SnapshotInput:
    slot: int
    ack: int | None
    view_delay: int
    first: int = 0
    records: np.ndarray | None = None


def pack_ss_input(slot: int, ack: int | None, view_delay: int, first: int = 0, records: np.ndarray | None = None) -> bytes:
    flags = IN_INPUTS if records is not None and len(records) else 0
    head = _IN_HEAD.pack(slot, flags, NO_ACK if ack is None else ack, max(0, min(255, view_delay)))
    return head + pack_run(first, records) if flags else head


def parse_ss_input(payload, itemsize: int) -> SnapshotInput:
    r = Reader(payload)
    slot, flags, ack, view = _IN_HEAD.unpack_from(payload, r.take(_IN_HEAD.size))
    if flags & ~IN_INPUTS:
        raise ProtocolError("bad_input", f"unknown flags {flags:#x}")
    msg = SnapshotInput(slot, None if ack == NO_ACK else ack, view)
    if flags & IN_INPUTS:
        msg.first, msg.records = parse_run(r, itemsize)
    r.done()
    return msg


def pack_snapshot_prefix(tick: int, last_applied: int | None, tally: tuple[int, int] | None = None) -> bytes:
    """Per-client bytes before a snapshot part: the newest of this client's input ticks the
    server has applied (relative to the snapshot's tick), and now and then the input tally
    (ticks the server ran with this client's input, and without it)."""
    code = 0 if last_applied is None else zigzag(last_applied - tick) + 1
    if tally is None:
        return varint(code << 1)
    return varint((code << 1) | 1) + varint(tally[0]) + varint(tally[1])


def parse_snapshot_prefix(r: Reader) -> tuple[int | None, tuple[int, int] | None]:
    """(last applied relative to the part's tick (the caller adds it), input tally or None)."""
    v = r.varint(1 << 41)
    code = v >> 1
    tally = (r.varint(1 << 40), r.varint(1 << 40)) if v & 1 else None
    return (None if code == 0 else unzigzag(code - 1)), tally
