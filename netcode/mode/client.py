"""What every mode's client shares: its session, the endpoint interface, the player's
current controls, and leaving a room that runs the other mode.

:class:`ModeClient` is the base of :class:`~netcode.lockstep.client.LockstepClient` and
:class:`~netcode.statesync.client.StateSyncClient`. Subclasses name their mode
(``MODE``), parse ACCEPTED's info (``on_connected``) and handle payload packets
(``on_payload``).
"""

from __future__ import annotations

import random
from typing import Hashable

import numpy as np

from engine.model import Game

from netcode.session.connection import SessionConfig
from netcode.errors import ProtocolError, UsageError
from netcode.events import Connected, Denied, EventQueue
from netcode.session.handshake import GameIdentity, info_mode
from netcode.session import ClientState, SessionClient
from netcode.session.wire import PacketType

__all__ = ["ModeClient"]


class ModeClient:
    MODE = ""  # "lockstep" or "statesync": what ACCEPTED's info must say

    def __init__(
        self,
        game: Game,
        *,
        server: Hashable,
        token: bytes,
        session_config: SessionConfig | None = None,
        rng: random.Random | None = None,
    ):
        self.game = game
        self.server = server
        self.token = token
        self._session_config = session_config
        self._rng = rng
        self.itemsize = game.input_dtype.itemsize
        self.slot: int | None = None
        self._events = EventQueue()
        self._input = np.zeros(self.itemsize, np.uint8)  # the player's current controls
        self.server_epoch: int | None = None  # the server instance we last connected to
        self.server_restarts = 0  # reconnects that found a new instance (a new match)
        # What the server says of our inputs this session: (ticks it ran with them, ticks it
        # ran without them: lost, late or refused). None until it first says.
        self.input_tally: tuple[int, int] | None = None
        self.session = self._new_session()

    # -- for subclasses -----------------------------------------------------------------
    def on_connected(self, ev: Connected, now: float) -> None:
        raise NotImplementedError

    def on_payload(self, ptype: PacketType, payload: memoryview, now: float) -> None:
        raise NotImplementedError

    def on_server_restart(self, now: float) -> None:
        """A reconnect found a new server instance: its match is not the one we played.
        Subclasses forget the old match (called just before :meth:`on_connected`)."""
        raise NotImplementedError

    # -- session ------------------------------------------------------------------------
    def _new_session(self) -> SessionClient:
        return SessionClient(
            server=self.server,
            token=self.token,
            game=GameIdentity.of(self.game),
            config=self._session_config,
            rng=self._rng,
        )

    def connect(self, now: float) -> None:
        self.session.connect(now)

    def reconnect(self, now: float) -> None:
        """Start a new session after a disconnect (the client keeps what it knows)."""
        if self.session.state is ClientState.CONNECTED:
            raise UsageError("reconnect() while connected")
        self.session = self._new_session()
        self.session.connect(now)

    def disconnect(self, now: float) -> None:
        self.session.disconnect(now)
        self._lifecycle(now)

    @property
    def connected(self) -> bool:
        return self.session.connected

    @property
    def spectator(self) -> bool:
        return self.slot is not None and self.slot < 0

    def set_input(self, record) -> None:
        """The player's current controls (a record of the game's input_dtype, or its bytes);
        stamped onto every tick from now until the next call."""
        raw = np.frombuffer(np.asarray(record, dtype=self.game.input_dtype).tobytes(), np.uint8)
        if raw.size != self.itemsize:
            raise UsageError(f"an input is {self.itemsize} bytes of {self.game.input_dtype}, got {raw.size}")
        self._input = raw.copy()

    # -- endpoint interface -------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        got = self.session.receive(data, addr, now)
        if got is not None:
            try:
                self.on_payload(got.ptype, got.payload, now)
            except ProtocolError as exc:  # the server's bytes: a counted drop
                got.conn.counters.drop(exc.reason)
        self._lifecycle(now)

    def datagrams_to_send(self):
        return self.session.datagrams_to_send()

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.session.handle_timer(now)
        self._lifecycle(now)

    def events(self) -> list:
        return self._events.drain()

    def _lifecycle(self, now: float) -> None:
        for ev in self.session.events():
            if isinstance(ev, Connected):
                theirs = info_mode(ev.info)
                if theirs != self.MODE:
                    # The room runs the other mode: leave, and say so as a refusal.
                    self.session.disconnect(now, "mode_mismatch")
                    self.session.events()
                    what = theirs or "an unknown mode"
                    self._events.put(Denied("mode_mismatch", f"the room runs {what}; this client speaks {self.MODE}"))
                    return
                self.slot = ev.slot
                if self.server_epoch is not None and ev.epoch != self.server_epoch:
                    self.server_restarts += 1
                    self.on_server_restart(now)
                self.server_epoch = ev.epoch
                self.on_connected(ev, now)
            self._events.put(ev)
