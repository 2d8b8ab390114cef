"""What both ends of a session share: the outgoing queue, the event queue, the counters of
traffic outside any session, goodbyes, and the result of a received payload packet.

:class:`~netcode.session.server.SessionServer` and
:class:`~netcode.session.client.SessionClient` take ``(bytes, address, now)`` and queue
datagrams and events; they never read a clock, sleep or touch a socket. Transports (or the
network simulator in tests) drive them by one rule: after a datagram, a user call or a
timer, drain ``datagrams_to_send()`` and re-arm the timer at ``next_deadline()``.

:meth:`SessionEndpoint.receive` handles handshake, keepalive and disconnect packets itself
and *returns* a payload packet of an established session (a mode's packet type) as a
:class:`Received`, for whoever owns the session to handle: the session never calls back
into a mode. Lifecycle changes go to the bounded event queue (``events()``).
"""

from __future__ import annotations

import random
from typing import Callable, Hashable, NamedTuple

from netcode.events import EventQueue
from netcode.session.connection import Connection, Counters, SessionConfig
from netcode.session.outbox import Outbox
from netcode.session.wire import PacketType

__all__ = ["Received", "SessionEndpoint", "PayloadHandler", "pack_disconnect", "parse_disconnect"]

PayloadHandler = Callable[[Connection, PacketType, memoryview, float], None]


class Received(NamedTuple):
    """A payload packet of an established session, checked and unwrapped."""

    conn: Connection
    ptype: PacketType
    payload: memoryview


def pack_disconnect(reason: str) -> bytes:
    raw = reason.encode("utf-8")[:200]
    return bytes([len(raw)]) + raw


def parse_disconnect(payload: memoryview) -> str:
    if len(payload) < 1 or len(payload) < 1 + payload[0]:
        return "peer"
    return "peer: " + bytes(payload[1 : 1 + payload[0]]).decode("utf-8", "replace")


class SessionEndpoint:
    """What both ends share: outgoing queue, events, counters, the payload callback."""

    def __init__(self, config: SessionConfig | None, on_payload: PayloadHandler | None, rng: random.Random | None):
        self.config = config or SessionConfig()
        self.on_payload = on_payload or (lambda conn, ptype, payload, now: None)  # see receive_datagram
        self.rng = rng or random.SystemRandom()
        self.counters = Counters()  # traffic that belongs to no session
        self.outbox = Outbox(self.counters)  # what is queued to send (compiled: netcode/session/outbox.py)
        self._events = EventQueue()

    def datagrams_to_send(self) -> list[tuple[bytes, Hashable]]:
        return self.outbox.drain()

    def departing(self, now: float) -> None:
        """The queued payload packets leave at ``now`` (a driver that knows its work since
        they were queued took a while says so before draining): their RTT is measured from then."""
        self.outbox.departing(now)

    def events(self) -> list:
        return self._events.drain()

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def _send_raw(self, packet: bytes, addr: Hashable) -> None:
        self.outbox.raw(packet, addr)

    def send(self, conn: Connection, ptype: PacketType, payload: bytes | bytearray, now: float) -> None:
        """Queue a payload packet on an established session."""
        self.outbox.send(conn, ptype, payload, now)

    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        """The endpoint interface: :meth:`receive`, with a payload packet handed to the
        ``on_payload`` callback (for a session used on its own, without a mode on top)."""
        got = self.receive(data, addr, now)
        if got is not None:
            self.on_payload(got.conn, got.ptype, got.payload, now)

    def receive(self, data: bytes, addr: Hashable, now: float) -> "Received | None":
        raise NotImplementedError

    def _say_goodbye(self, conn: Connection, reason: str, now: float) -> None:
        body = pack_disconnect(reason)
        for _ in range(self.config.disconnect_copies):
            self.outbox.control(conn, PacketType.DISCONNECT, body, now)
