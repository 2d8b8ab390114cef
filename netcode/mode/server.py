"""What every mode's server shares: the session in front, who plays which slot, the inputs
waiting for their tick, the authoritative game state, and the endpoint interface.

:class:`ModeServer` is the base of :class:`~netcode.lockstep.server.LockstepServer` and
:class:`~netcode.statesync.server.StateSyncServer`. Subclasses say what ACCEPTED tells a client
(``accept_info``), make their per-connection record (``make_peer``), handle payload packets
(``on_payload``) and run a tick (``on_tick``).

Slots: a token naming a slot gets that slot; a token naming only a user gets the slot that
user had before (so reconnecting players keep their slot) or the lowest free one; a valid
token for a held slot is that player coming back (maybe from a new address after an
outage), so the new session replaces the old one. Spectators take no slot.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Hashable

import numpy as np

from engine.model import Game
from engine.replay import ReplayWriter
from engine.state import State

from netcode.session.connection import Connection, SessionConfig
from netcode.errors import ProtocolError
from netcode.events import Connected, Disconnected, EventQueue, PlayerJoined, PlayerLeft
from netcode.session.handshake import GameIdentity
from netcode.mode.dispatch import HotPacket, Receiver
from netcode.mode.inputs import InputBuffer
from netcode.session import Admission, Refused, SessionServer
from netcode.session.token import TokenClaims
from netcode.session.wire import PacketType

__all__ = ["ModeServer"]


class ModeServer:
    """One room's server for one mode. Drive it like any endpoint; call :meth:`on_tick`
    at ``tick_rate``."""

    def __init__(
        self,
        game: Game,
        config: Any,
        *,
        secret: bytes,
        room: str = "default",
        session_config: SessionConfig | None = None,
        wall_offset: float = 0.0,
        rng: random.Random | None = None,
        recorder: ReplayWriter | None = None,
    ):
        """``config``: the mode's config; every mode's has ``players``, ``seed``,
        ``tick_rate`` (None: the game's), ``max_ahead`` and ``max_spectators``."""
        players = config.players
        game.check_players(players)
        self.game = game
        self.config = config
        self.players = players
        self.seed = config.seed
        self.tick_rate = config.tick_rate or game.tick_rate
        self.max_spectators = config.max_spectators
        self.recorder = recorder
        self.itemsize = game.input_dtype.itemsize
        self.session = SessionServer(
            game=GameIdentity.of(game),
            secret=secret,
            admit=self._admit,
            room=room,
            config=session_config,
            wall_offset=wall_offset,
            rng=rng,
        )
        self.tick = 0  # the next tick to run
        self.state: State = game.create(self.seed, players)
        self.inputs = InputBuffer(players, self.itemsize, config.max_ahead)
        self.present = np.zeros(players, bool)  # slots with a connected player
        # The input tally each player is told now and then: ticks run with its own input,
        # and ticks run without it (lost, late or refused), since its session began.
        self.inputs_used = np.zeros(players, np.int64)
        self.inputs_missed = np.zeros(players, np.int64)
        self.peers: dict[int, Any] = {}  # connection id -> the subclass's peer record
        self._slot_conn: dict[int, int] = {}
        self._user_slot: dict[str, int] = {}
        self._events = EventQueue()
        self.view_field: str | None = getattr(game, "view_field", None)
        self._receiver = Receiver(self)
        # receive_datagram(data, addr, now): the receiver's method itself, bound once, so a
        # datagram enters the compiled receive path in one call.
        self.receive_datagram = self._receiver.datagram

    def resume_at(self, tick: int, state: State, recent: Callable[[int], np.ndarray] | None = None) -> None:
        """Go on from ``state`` at ``tick`` (a match restarted from its recording), before
        anyone connects: joiners start from that state as from any late join. ``recent(t)``:
        the recorded inputs of tick ``t < tick``, for a mode that resends past ticks."""
        self.state = state
        self.tick = tick

    # -- for subclasses -----------------------------------------------------------------
    def accept_info(self) -> bytes:
        raise NotImplementedError

    def make_peer(self, conn_id: int, slot: int) -> Any:
        raise NotImplementedError

    def on_payload(self, conn: Connection, peer: Any, ptype: PacketType, payload: memoryview, now: float) -> None:
        raise NotImplementedError

    def on_tick(self, now: float) -> None:
        raise NotImplementedError

    # -- endpoint interface (the session, then our own bookkeeping) ------------------------
    @property
    def hot_packet(self) -> HotPacket | None:
        """The mode's handler for its commonest packet type (a compiled HotPacket, see
        netcode/mode/dispatch.py), or None: every packet goes to on_payload."""
        return self._receiver.hot

    @hot_packet.setter
    def hot_packet(self, hot: HotPacket | None) -> None:
        self._receiver.use(hot)

    def receive_many(self, batch, on_error: Callable[[Exception], None] | None = None) -> None:
        """``(data, addr, now)`` datagrams in arrival order (a polled transport's read), each
        handled as :meth:`receive_datagram` would, in one call. A datagram whose handling
        raises (a bug) is reported to ``on_error`` and the rest still go; without
        ``on_error`` the exception propagates."""
        self._receiver.many(batch if type(batch) is list else list(batch), on_error)

    def datagrams_to_send(self) -> list[tuple[bytes, Hashable]]:
        return self.session.datagrams_to_send()

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.session.handle_timer(now)
        self._lifecycle()

    def events(self) -> list:
        return self._events.drain()

    def close_all(self, now: float, reason: str = "shutdown") -> None:
        self.session.close_all(now, reason)
        self._lifecycle()

    def address_closed(self, addr: Hashable, now: float, reason: str = "transport closed") -> None:
        """A transport says ``addr`` is gone (a WebSocket closed): end its session now."""
        self.session.address_closed(addr, now, reason)
        self._lifecycle()

    def _payload(self, conn: Connection, ptype: PacketType, payload: memoryview, now: float) -> None:
        """A payload packet the session returned: the mode's to handle; what the mode
        refuses is the peer's fault, a counted drop on its connection."""
        try:
            self.on_payload(conn, self.peers[conn.id], ptype, payload, now)
        except ProtocolError as exc:
            conn.counters.drop(exc.reason)

    # -- admission ----------------------------------------------------------------------
    def _admit(self, claims: TokenClaims, addr: Hashable, now: float) -> Admission:
        replaces = None
        if claims.spectator:
            if sum(1 for p in self.peers.values() if p.slot < 0) >= self.max_spectators:
                raise Refused("room_full", "no more spectators fit in this room")
            slot = -1
        else:
            slot = claims.slot
            if slot == -1 and claims.user:
                slot = self._user_slot.get(claims.user, -1)
            if slot == -1:
                free = [s for s in range(self.players) if s not in self._slot_conn]
                if not free:
                    raise Refused("room_full", f"all {self.players} player slots are taken")
                slot = free[0]
            elif slot >= self.players:
                raise Refused("refused", f"slot {slot} does not exist: this room has {self.players} players")
            replaces = self._slot_conn.get(slot)
            if claims.user:
                self._user_slot[claims.user] = slot
        return Admission(slot=slot, info=self.accept_info(), replaces=replaces)

    def _lifecycle(self) -> None:
        for ev in self.session.events():
            if isinstance(ev, Connected):
                self.peers[ev.conn] = self.make_peer(ev.conn, ev.slot)
                if ev.slot >= 0:
                    self._slot_conn[ev.slot] = ev.conn
                    self.present[ev.slot] = True
                    self.inputs.reset(ev.slot)
                    self.inputs_used[ev.slot] = self.inputs_missed[ev.slot] = 0
                    self._events.put(PlayerJoined(ev.slot, self.tick))
            elif isinstance(ev, Disconnected):
                peer = self.peers.pop(ev.conn, None)
                if peer is not None and peer.slot >= 0 and self._slot_conn.get(peer.slot) == ev.conn:
                    del self._slot_conn[peer.slot]
                    self.present[peer.slot] = False
                    self._events.put(PlayerLeft(peer.slot, self.tick, ev.reason))
            self._events.put(ev)

    # -- the tick's common part ---------------------------------------------------------
    def close_inputs(self, applied: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int, int]:
        """This tick's inputs: (records, have mask, present players without their input,
        records clamped by validation). ``applied`` (int64 per slot) takes the tick for
        each present player whose input was there."""
        raw, have, missing = self.inputs.close(self.tick, self.present, self.inputs_used, self.inputs_missed, applied)
        inputs = raw.view(self.game.input_dtype).reshape(self.players)
        clamped = self.game.sanitize_inputs(inputs)
        return inputs, have, missing, clamped

    def input_tally(self, slot: int) -> tuple[int, int] | None:
        """(ticks run with ``slot``'s input, ticks run without it); None for spectators."""
        return (int(self.inputs_used[slot]), int(self.inputs_missed[slot])) if slot >= 0 else None

    def connection(self, peer: Any) -> Connection | None:
        return self.session.connections.get(peer.conn_id)

    def peer_stats(self) -> dict:
        out = {}
        for p in self.peers.values():
            conn = self.session.connections.get(p.conn_id)
            if conn is not None:
                out[p.slot if p.slot >= 0 else f"spectator-{p.conn_id}"] = {**p.counters, **conn.stats()}
        return out
