# cython: annotation_typing=False
"""A lockstep client as its server sees it, and the rules its input packets meet.

:class:`InputGate` is the lockstep server's one handler of LS_INPUT (the packet's shape,
the slot, the frame ack, the input window; hash reports and keyframe status go on to the
server): the compiled dispatch (:mod:`netcode.mode.dispatch`) and the general path
(``LockstepServer.on_payload``) both call it. Compiled with the peer record it changes
(Cython's pure-Python mode, ``peer.pxd``); the same source runs as plain Python.
"""

from __future__ import annotations

import numpy as np

from netcode.errors import ProtocolError
from netcode.lockstep.wire import IN_HASH, IN_INPUTS, IN_KEYFRAME, NO_ACK, SPECTATOR_SLOT
from netcode.mode.dispatch import HotPacket
from netcode.mode.inputs import TOO_FAR, scan_run
from netcode.session.wire import SESSION_HEADER_SIZE, PacketType

__all__ = ["LockstepPeer", "InputGate"]

_HEAD = 10  # slot, flags, next needed frame (u32), origin (u32)
_INPUTS, _HASH, _KEYFRAME, _TOO_FAR = IN_INPUTS, IN_HASH, IN_KEYFRAME, TOO_FAR  # C ints when compiled
_FLAGS = IN_INPUTS | IN_HASH | IN_KEYFRAME


class LockstepPeer:
    """One connection's record on a lockstep server."""

    def __init__(self, conn_id: int, slot: int):
        self.conn_id = conn_id
        self.slot = slot  # -1: a spectator
        self.next_needed = None  # first frame the client still needs (from its packets)
        self.origin = 0  # the client's history starts here (0, or the keyframe it loaded)
        self.input_ack = -1  # newest of its input ticks we hold
        self.keyframe = None  # (tick, parts, total) being sent
        self.keyframe_have = None  # (parts,) bool: the parts the client reported
        self.keyframe_cursor = 0
        self.resyncing = False
        self.counters: dict = {"late_inputs": 0, "clamped_inputs": 0, "desyncs": 0, "resyncs": 0}

    def bookkeeping(self) -> dict:
        """Everything the record holds, as plain values (tests compare servers by it)."""
        have = self.keyframe_have
        return {
            "conn_id": self.conn_id, "slot": self.slot, "next_needed": self.next_needed, "origin": self.origin,
            "input_ack": self.input_ack, "keyframe": self.keyframe, "keyframe_cursor": self.keyframe_cursor,
            "keyframe_have": None if have is None else have.tobytes(), "resyncing": self.resyncing,
            "counters": dict(self.counters),
        }

    def __repr__(self) -> str:
        return f"LockstepPeer(conn_id={self.conn_id}, slot={self.slot}, next_needed={self.next_needed})"


def _u32(d: bytes, i: int) -> int:
    top = d[i + 3]  # (a 64-bit variable when compiled: shifted by 24 it would overflow a C int)
    return d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (top << 24)


class InputGate(HotPacket):
    """What a lockstep server checks an LS_INPUT against, and what the packet changes."""

    def __init__(self, server):
        HotPacket.__init__(self, int(PacketType.LS_INPUT))
        self.server = server  # for its tick, and the hash and keyframe bookkeeping
        self.inputs = server.inputs
        self.itemsize = server.itemsize
        self.hashes = server.hashes  # tick -> the server's state hash, recent ones

    def take(self, peer, conn, data: bytes, now: float) -> None:
        p = peer
        d = data if type(data) is bytes else bytes(data)
        # The packet's shape, whole, before anything is taken from it.
        at = SESSION_HEADER_SIZE
        n = len(d)
        if n < at + _HEAD:
            raise ProtocolError("truncated", f"LS_INPUT of {n} bytes")
        slot = d[at]
        flags = d[at + 1]
        needed = _u32(d, at + 2)
        origin = _u32(d, at + 6)
        if flags & ~_FLAGS:
            raise ProtocolError("bad_input", f"unknown flags {flags:#x}")
        if needed != NO_ACK and origin > needed:
            raise ProtocolError("bad_input", f"origin {origin} after the next needed frame {needed}")
        pos = at + _HEAD
        run = pos
        first = count = 0
        if flags & _INPUTS:
            first, count, pos = scan_run(d, run, self.itemsize)
        hash_at = pos
        if flags & _HASH:
            pos += 12  # tick (u32), hash (u64)
        keyframe_at = pos
        parts = 0
        if flags & _KEYFRAME:
            if pos + 6 > n:
                raise ProtocolError("truncated", "keyframe status past the packet")
            parts = d[pos + 4] | (d[pos + 5] << 8)
            if parts == 0:
                raise ProtocolError("bad_input", "keyframe status with zero parts")
            pos += 6 + (parts + 7) // 8
        if pos > n:
            raise ProtocolError("truncated", f"LS_INPUT needs {pos} bytes, has {n}")
        if pos != n:
            raise ProtocolError("trailing_bytes", f"{n - pos} bytes after the last field")

        # What it changes.
        server = self.server
        tick = server.tick
        if slot != (SPECTATOR_SLOT if p.slot < 0 else p.slot):
            raise ProtocolError("wrong_slot", f"inputs for slot {slot} from the holder of slot {p.slot}")
        if needed != NO_ACK:
            if needed > tick:
                raise ProtocolError("bad_ack", f"needs frame {needed}, newest is {tick - 1}")
            if p.next_needed is None or needed > p.next_needed or origin > p.origin:
                p.next_needed = needed
            p.origin = max(p.origin, min(origin, needed))
        if flags & _INPUTS:
            if p.slot < 0:
                raise ProtocolError("spectator_input", "spectators send no inputs")
            late = self.inputs.put_run(p.slot, d, run, tick, hash_at)
            if late == _TOO_FAR:
                conn.counters.drop("future_input")  # what follows is dropped with it
                return
            if late:
                p.counters["late_inputs"] += late
            if first + count - 1 > p.input_ack:
                p.input_ack = first + count - 1
        if flags & _KEYFRAME:
            have = np.unpackbits(np.frombuffer(d, np.uint8, (parts + 7) // 8, keyframe_at + 6), bitorder="little")
            server._keyframe_status(p, _u32(d, keyframe_at), have[:parts].astype(bool))
        if flags & _HASH:
            # Compared here (C when compiled: most packets carry a report, and it matches);
            # a recorded tick whose hash differs is a desync, unless the peer is already
            # being resynced. What a desync does is the server's.
            at_tick = _u32(d, hash_at)
            value = _u32(d, hash_at + 4) | (_u32(d, hash_at + 8) << 32)
            expected = self.hashes.get(at_tick)
            if expected is not None and not p.resyncing and value != expected:
                server._desync(p, at_tick, expected, value)
