# cython: annotation_typing=False
"""A state-sync client as its server sees it, and the rules its input packets meet.

:class:`InputGate` is the server's one handler of SS_INPUT (the flood guard, the packet's
shape, the slot, the snapshot ack, the input window, lag compensation's limit): the
general path (``StateSyncServer.on_payload``) and the compiled dispatch
(:mod:`netcode.mode.dispatch`) both call it. Compiled with the peer record it changes
(Cython's pure-Python mode, ``peer.pxd``); the same source runs as plain Python.
"""

from __future__ import annotations

import math

from netcode.errors import ProtocolError
from netcode.mode.dispatch import HotPacket
from netcode.mode.inputs import TOO_FAR, scan_run
from netcode.session.wire import SESSION_HEADER_SIZE, PacketType
from netcode.statesync.wire import IN_INPUTS, NO_ACK

__all__ = ["StateSyncPeer", "InputGate"]

_HEAD = 7  # slot, flags, snapshot ack (u32), view delay
_TOO_FAR = TOO_FAR  # a C constant when compiled
_MASK64 = 0xFFFFFFFFFFFFFFFF


class StateSyncPeer:
    """One connection's record on a state-sync server."""

    def __init__(self, conn_id: int, slot: int, tokens: float = 0.0, priority=None):
        self.conn_id = conn_id
        self.slot = slot  # -1: a spectator
        self.acked = -1  # newest complete snapshot the client acked
        self.acked_before = -1  # the one it acked before that (a predictor for the next deltas)
        # Bit i: the client acked the snapshot i snapshots before ``acked`` (it holds that
        # one too, so a delta against it, shared with other clients, decodes).
        self.acked_mask = 0
        self.deferred = 0  # snapshots in a row this client was not sent (the encode budget)
        self.sent: dict = {}  # snapshot tick -> per-entity value ticks (per-client mode)
        self.cell = None  # interest cell now (grid on, players only)
        self.cells: dict = {}  # snapshot tick -> the cell its view was for
        # snapshot tick -> the coder model it holds for it (specs with carry=True: the
        # client's next snapshot coded against that one starts there)
        self.models: dict = {}
        self.priority = priority  # PriorityAccumulator (bandwidth budget on)
        self.pacer = None  # SendPacer: full snapshots and sends to a lagging client
        self.tokens = tokens  # input flood guard (token bucket)
        self.view_limit = 0  # how far back this client's shots may be judged (from its RTT)
        self.inputs_since_limit = 0
        self.last_input_at = 0.0
        self.counters: dict = {"late_inputs": 0, "snapshot_bytes": 0, "parts": 0, "full_snapshots": 0, "full_resends": 0, "deferred_snapshots": 0}

    def bookkeeping(self) -> dict:
        """Everything the record holds, as plain values (tests compare servers by it)."""
        return {
            "conn_id": self.conn_id, "slot": self.slot, "acked": self.acked, "acked_before": self.acked_before,
            "acked_mask": self.acked_mask, "deferred": self.deferred,
            "sent": {t: v.tobytes() for t, v in self.sent.items()}, "cell": self.cell, "cells": dict(self.cells),
            "models": {t: m[0].tobytes() + m[1].tobytes() for t, m in self.models.items()},
            "tokens": self.tokens, "view_limit": self.view_limit, "inputs_since_limit": self.inputs_since_limit,
            "last_input_at": self.last_input_at, "counters": dict(self.counters),
            "pacer": self.pacer.bookkeeping() if self.pacer is not None else None,
        }

    def __repr__(self) -> str:
        return f"StateSyncPeer(conn_id={self.conn_id}, slot={self.slot}, acked={self.acked})"


class InputGate(HotPacket):
    """What a state-sync server checks an SS_INPUT against, and what the packet changes."""

    def __init__(self, server):
        HotPacket.__init__(self, int(PacketType.SS_INPUT))
        config = server.config
        self.server = server  # for its tick, which moves
        self.history = server.history
        self.inputs = server.inputs
        self.view_delays = server.view_delays  # per slot, written into the game's view field
        self.rate = float(config.input_packets_per_second)
        self.max_view_delay = float(config.max_view_delay)
        self.tick_rate = float(server.tick_rate)
        self.per_client = server.per_client
        self.every = server.snapshot_every
        self.itemsize = server.itemsize

    def take(self, peer, conn, data: bytes, now: float) -> None:
        p = peer
        d = data if type(data) is bytes else bytes(data)
        rate = self.rate
        tokens = p.tokens + (now - p.last_input_at) * rate
        p.tokens = rate if tokens > rate else tokens
        p.last_input_at = now
        if p.tokens < 1.0:
            raise ProtocolError("flood", "input packets faster than any client sends them")
        p.tokens -= 1.0
        # The packet's shape, whole, before anything is taken from it.
        at = SESSION_HEADER_SIZE
        n = len(d)
        if n < at + _HEAD:
            raise ProtocolError("truncated", f"SS_INPUT of {n} bytes")
        slot = d[at]
        flags = d[at + 1]
        top = d[at + 5]  # (a 64-bit variable when compiled: shifted by 24 it would overflow a C int)
        ack = d[at + 2] | (d[at + 3] << 8) | (d[at + 4] << 16) | (top << 24)
        view = d[at + 6]
        if flags & ~IN_INPUTS:
            raise ProtocolError("bad_input", f"unknown flags {flags:#x}")
        run = at + _HEAD
        if flags & IN_INPUTS:
            end = scan_run(d, run, self.itemsize)[2]
        else:
            end = run
        if end != n:
            raise ProtocolError("trailing_bytes", f"{n - end} bytes after the input packet")
        if slot != (0xFF if p.slot < 0 else p.slot):
            raise ProtocolError("wrong_slot", f"inputs for slot {slot} from the holder of slot {p.slot}")
        if ack != NO_ACK:
            self.take_ack(p, ack)
        if not flags & IN_INPUTS:
            return
        if p.slot < 0:
            raise ProtocolError("spectator_input", "spectators send no inputs")
        tick = self.server.tick
        late = self.inputs.put_run(p.slot, d, run, tick)
        if late == _TOO_FAR:
            conn.counters.drop("future_input")
            return
        if late:
            p.counters["late_inputs"] += late
        # Lag compensation may look back as far as the client's screen, but no further
        # than its measured round trip plus the allowed interpolation delay.
        if view > p.view_limit or not p.inputs_since_limit:
            p.view_limit = math.ceil((conn.rtt.rtt + self.max_view_delay) * self.tick_rate)
            if view > p.view_limit:
                view = p.view_limit
        p.inputs_since_limit = (p.inputs_since_limit + 1) % 64  # refresh the limit now and then
        self.view_delays[p.slot] = view

    def take_ack(self, peer, ack: int) -> None:
        """The client holds snapshot ``ack`` whole: the baseline for its next deltas."""
        p = peer
        tick = self.server.tick
        if ack > tick:
            raise ProtocolError("bad_ack", f"ack of snapshot {ack}, newest is {tick}")
        if ack == p.acked:
            return
        if self.per_client:
            if ack < p.acked or ack not in p.sent:
                return  # reordered, or not a snapshot we sent this client (or one we forgot)
            for t in [t for t in p.sent if t < ack]:
                del p.sent[t]
        elif not self.history.has(ack):
            return
        bit = 1
        if ack < p.acked:
            # Reordered: we already know a newer one, but the client holds this one too.
            back = (p.acked - ack) // self.every
            if back < 64:
                p.acked_mask |= bit << back
            return
        shift = (ack - p.acked) // self.every if p.acked >= 0 else 64
        p.acked_mask = (((p.acked_mask << shift) & _MASK64) | bit) if shift < 64 else bit
        p.acked_before = p.acked
        p.acked = ack
