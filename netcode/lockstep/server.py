"""Lockstep (frame sync) server, sans-IO.

Each tick the server closes frame t with the inputs it holds for t. It never waits: a slot
whose input is late repeats its previous input (flagged missing), an empty slot gets the
neutral input, so the player with the bad link is the only one who suffers. Frames go out
every ``send_every`` ticks: to each client, the run of frames from the first one it has
not acked up to the newest (never fewer than the newest three), cut to the packet budget.
Frames are encoded once when closed (:class:`~netcode.lockstep.frames.FrameLog`), so a client's
packet is a slice of shared bytes behind its own session header.

The server also runs the game: it hashes its state every ``hash_every`` ticks and compares
what clients report, sends a keyframe (its whole state) to a client that desynced, joined
late or came back after frames it missed were dropped, and records the match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.model import Game

from netcode.errors import ProtocolError, UsageError
from netcode.events import DesyncDetected
from netcode.lockstep.broadcast import FrameSender
from netcode.lockstep.frames import FrameLog
from netcode.lockstep.wire import (
    KEYFRAME_CHUNK,
    LockstepInfo,
    pack_keyframe_part,
    pack_run_header,
)
from netcode.lockstep.peer import InputGate, LockstepPeer
from netcode.mode.server import ModeServer
from netcode.session.wire import MAX_PACKET, SESSION_HEADER_SIZE, SESSION_OVERHEAD, PacketType

__all__ = ["LockstepConfig", "LockstepServer", "LockstepPeer"]

# Room for frames in one packet: the budget less the session header and our own headers.
_FRAME_BUDGET = MAX_PACKET - SESSION_OVERHEAD - 28  # room for the frames header (with a tally)


@dataclass(frozen=True)
class LockstepConfig:
    players: int
    seed: int = 1
    tick_rate: int | None = None  # default: the game's
    send_every: int = 2  # ticks between frame packets to each client
    hash_every: int = 60  # clients report, the server checks, the recording keeps
    keyframe_every: int = 600  # ticks between the server's keyframes (late join, resync)
    retention: int = 1800  # frames kept for clients catching up; older ones need a keyframe
    max_ahead: int = 240  # inputs stamped further ahead than this are refused
    keyframe_parts_per_send: int = 24
    max_spectators: int = 64
    min_redundancy: int = 2  # frames before the newest always resent

    def __post_init__(self):
        if self.players < 1 or self.send_every < 1 or self.hash_every < 1 or self.keyframe_every < 1:
            raise UsageError("players, send_every, hash_every and keyframe_every must be >= 1")
        if self.retention < 2 * self.keyframe_every:
            raise UsageError("retention must cover two keyframe intervals so late joiners can catch up")


class LockstepServer(ModeServer):
    """One lockstep room. Drive it like any endpoint, and call :meth:`on_tick` at the tick rate."""

    def __init__(self, game: Game, config: LockstepConfig, **session):
        """``session``: ``secret`` (required), ``room``, ``session_config``, ``wall_offset``,
        ``rng``, ``recorder``: see :class:`~netcode.mode.server.ModeServer`."""
        super().__init__(game, config, **session)
        players, itemsize = config.players, self.itemsize
        worst = 1 + 2 * ((players + 7) // 8) + players * (itemsize + (itemsize + 7) // 8)
        if worst > _FRAME_BUDGET:
            raise UsageError(
                f"a frame of {players} players x {itemsize}-byte inputs can take {worst} bytes, over the "
                f"{_FRAME_BUDGET}-byte packet budget: use fewer players or a smaller input_dtype"
            )
        self.frames = FrameLog(players, itemsize, config.retention)
        self.hashes: dict[int, int] = {}  # tick -> hash of state_tick, recent ones
        self._keyframe: tuple[int, bytes] = (0, self.state.pack())
        self.stats_counters = {"frames": 0, "missing_inputs": 0, "desyncs": 0, "bytes_frames": 0, "clamped_inputs": 0}
        self.input_gate = self.hot_packet = InputGate(self)  # LS_INPUT's rules, in one place
        self.frame_sender = FrameSender(self, _FRAME_BUDGET)  # the frame broadcast loop

    def accept_info(self) -> bytes:
        cfg = self.config
        return LockstepInfo(
            cfg.players, cfg.seed, self.tick_rate, cfg.hash_every, self.tick, cfg.send_every, cfg.max_ahead
        ).pack()

    def make_peer(self, conn_id: int, slot: int) -> LockstepPeer:
        return LockstepPeer(conn_id, slot)

    # -- input ------------------------------------------------------------------------------
    def on_payload(self, conn, peer: LockstepPeer, ptype: PacketType, payload: memoryview, now: float) -> None:
        if ptype is not PacketType.LS_INPUT:
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a lockstep server")
        # The dispatch hands LS_INPUT to the gate itself; this is for a server whose
        # ``hot_packet`` was switched off. The gate reads the payload after a session header.
        self.input_gate.take(peer, conn, bytes(SESSION_HEADER_SIZE) + bytes(payload), now)

    def _desync(self, peer: LockstepPeer, tick: int, expected: int, value: int) -> None:
        """``peer`` reported ``value`` for ``tick``, whose state hashed to ``expected`` here
        (the input gate compares): count it, say so, and resync the peer from a keyframe."""
        peer.counters["desyncs"] += 1
        self.stats_counters["desyncs"] += 1
        self._events.put(DesyncDetected(tick, peer.slot, expected, value))
        peer.resyncing = True
        self._start_keyframe(peer)

    def resume_at(self, tick: int, state, recent=None) -> None:
        super().resume_at(tick, state, recent)
        # The frames before ``tick`` come back from the recording (the missing masks are
        # not recorded: none), so clients that reconnect go on from the frame they need.
        first = tick if recent is None else max(0, tick - self.config.retention)
        self.frames.restart(first, recent(first - 1) if recent is not None and first > 0 else None)
        for t in range(first, tick):
            self.frames.append(recent(t), np.zeros(self.players, bool))
        self._keyframe = (tick, state.pack())

    # -- keyframes --------------------------------------------------------------------------
    def _start_keyframe(self, peer: LockstepPeer) -> None:
        tick, blob = self._keyframe
        if not self.frames.holds(tick) and tick != self.frames.next:
            tick, blob = self._make_keyframe()
        parts = [blob[i : i + KEYFRAME_CHUNK] for i in range(0, len(blob), KEYFRAME_CHUNK)] or [b""]
        peer.keyframe = (tick, parts, len(blob))
        peer.keyframe_have = np.zeros(len(parts), bool)
        peer.keyframe_cursor = 0
        peer.counters["resyncs"] += 1

    def _make_keyframe(self) -> tuple[int, bytes]:
        self._keyframe = (self.tick, self.state.pack())
        return self._keyframe

    def _keyframe_status(self, peer: LockstepPeer, tick: int, have: np.ndarray) -> None:
        if peer.keyframe is None or tick != peer.keyframe[0]:
            return
        if len(have) != len(peer.keyframe[1]):
            raise ProtocolError("bad_keyframe_status", f"{len(have)} parts, keyframe has {len(peer.keyframe[1])}")
        peer.keyframe_have |= have

    # -- the tick ---------------------------------------------------------------------------
    def on_tick(self, now: float) -> None:
        """Close the next frame, step the game, and send frames when due."""
        t = self.tick
        inputs, have, missing_here, clamped = self.close_inputs()
        missing = ~have
        self.stats_counters["clamped_inputs"] += clamped
        if self.view_field:
            inputs[self.view_field] = 0  # lockstep peers all see the present
        self.stats_counters["missing_inputs"] += missing_here
        if t % self.config.hash_every == 0:
            self.hashes[t] = self.state.hash()
            self.hashes.pop(t - 64 * self.config.hash_every, None)
        if t % self.config.keyframe_every == 0 and t:
            self._make_keyframe()
        if self.recorder is not None:
            self.recorder.record(t, inputs, self.state)
        self.frames.append(inputs, missing)
        self.game.step(self.state, inputs, t)
        self.tick = t + 1
        self.stats_counters["frames"] += 1
        self.frame_sender.send(t, self.frames.first, self.tick % self.config.send_every, now)

    def _build_run(self, start: int, newest: int, origin: int, budget: int) -> bytes:
        """Run(s) of frames start..newest. When they do not all fit: the oldest that fit (so
        the client can advance) plus the newest alone (so it knows where the server is)."""
        absolute = start == origin and start > 0  # the client has no frame start-1
        head = self.frames.absolute(start) if absolute else b""
        rest = start + 1 if absolute else start
        body, n = self.frames.span(rest, newest + 1, budget - len(head) - 16)
        if rest + n > newest:
            return b"\x01" + pack_run_header(newest, start, n + absolute, absolute) + head + body
        # Behind by more than a packet holds: the newest frame goes too, encoded whole,
        # since the client does not hold the frame before it.
        last = self.frames.absolute(newest)
        body, n = self.frames.span(rest, newest + 1, budget - len(head) - len(last) - 32)
        first_run = pack_run_header(newest, start, n + absolute, absolute) + head + body
        return b"\x02" + first_run + pack_run_header(newest, newest, 1, True) + last

    def _send_keyframe_parts(self, peer: LockstepPeer, conn, now: float) -> bool:
        """Send some parts the client lacks; False once it holds them all."""
        tick, parts, total = peer.keyframe
        have = peer.keyframe_have
        if peer.origin >= tick and peer.next_needed is not None and peer.next_needed >= tick:  # loaded it
            peer.keyframe = None
            peer.keyframe_have = None
            peer.resyncing = False
            return False
        missing = np.flatnonzero(~have)
        if not len(missing):
            missing = np.arange(len(parts))  # all there: resend a little until it says it loaded
        order = np.roll(missing, -int(np.searchsorted(missing, peer.keyframe_cursor)))
        for index in order[: self.config.keyframe_parts_per_send]:
            payload = pack_keyframe_part(tick, self.tick, int(index), len(parts), total, parts[index])
            self.session.send(conn, PacketType.LS_KEYFRAME, payload, now)
        peer.keyframe_cursor = int(order[min(len(order), self.config.keyframe_parts_per_send) - 1]) + 1
        return True

    # -- inspection -------------------------------------------------------------------------
    def stats(self) -> dict:
        return {
            "mode": "lockstep",
            "tick": self.tick,
            "players": int(self.present.sum()),
            "spectators": sum(1 for p in self.peers.values() if p.slot < 0),
            **self.stats_counters,
            "session": self.session.stats(),
            "peers": self.peer_stats(),
        }
