# cython: annotation_typing=False
"""What one end of a session has queued to send: datagrams ready for a transport, and where
each connection's payload packets in the queue begin.

A state-sync server at 100 clients and 30 snapshots a second queues 3000 sealed packets a
second, so the queue is compiled with the connection that wraps them (Cython's pure-Python
mode, ``outbox.pxd``): a mode's compiled send loop (:mod:`netcode.statesync.send`) calls
:meth:`Outbox.send` as a C function. The same source runs as plain Python where there is no
compiler. :class:`~netcode.session.base.SessionEndpoint` owns one and sends through it.
"""

from __future__ import annotations

from netcode.errors import UsageError
from netcode.session.connection import Connection, Counters

__all__ = ["Outbox"]


class Outbox:
    """Datagrams queued by one session end, in order, as ``(bytes, address)``."""

    def __init__(self, counters: Counters):
        self.datagrams: list = []
        self.counters = counters  # traffic that belongs to no session (the raw sends)
        # conn id -> (conn, its first payload send in the queue), so the driver can say when
        # they left (:meth:`departing`) and RTT samples do not count the wait.
        self.first: dict = {}

    def raw(self, packet: bytes, addr) -> None:
        """A packet outside any session (the handshake's)."""
        c = self.counters
        c.sent += 1
        c.bytes_sent += len(packet)
        self.datagrams.append((packet, addr))

    def send(self, conn: Connection, ptype: int, payload, now: float) -> None:
        """A payload packet on an established session: wrapped (sealed) now, queued."""
        if conn.closed:
            raise UsageError(f"connection {conn.id} is closed")
        if conn.id not in self.first:
            self.first[conn.id] = (conn, conn.sends)
        self.datagrams.append((conn.wrap(ptype, payload, now), conn.addr))

    def control(self, conn: Connection, ptype: int, payload, now: float) -> None:
        """A session's own packet (keepalive, disconnect): queued, not timed by :meth:`departing`."""
        self.datagrams.append((conn.wrap(ptype, payload, now), conn.addr))

    def drain(self) -> list:
        """Everything queued, in order; the queue starts over."""
        out = self.datagrams
        self.datagrams = []
        self.first.clear()
        return out

    def departing(self, now: float) -> None:
        """The queued payload packets leave at ``now``: their RTT is measured from then."""
        for conn, first in self.first.values():
            conn.departed(first, now)
        self.first.clear()
