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
        # The connections with payload sends in the queue, each holding its first one
        # (``Connection.first_queued``), so the driver can say when they left
        # (:meth:`departing`) and RTT samples do not count the wait.
        self.timed: list = []

    def raw(self, packet: bytes, addr) -> None:
        """A packet outside any session (the handshake's)."""
        c = self.counters
        c.sent += 1
        c.bytes_sent += len(packet)
        self.datagrams.append((packet, addr))

    def send(self, conn: Connection, ptype: int, payload, now: float, lead: bytes = b"") -> None:
        """A payload packet on an established session: wrapped (sealed) now, queued.
        ``lead``: a header of the caller's that goes before ``payload`` (see :meth:`Connection.wrap`)."""
        if conn.closed:
            raise UsageError(f"connection {conn.id} is closed")
        if conn.first_queued < 0:
            conn.first_queued = conn.sends
            self.timed.append(conn)
        self.datagrams.append((conn.wrap(ptype, payload, now, lead), conn.addr))

    def control(self, conn: Connection, ptype: int, payload, now: float) -> None:
        """A session's own packet (keepalive, disconnect): queued, not timed by :meth:`departing`."""
        self.datagrams.append((conn.wrap(ptype, payload, now), conn.addr))

    def drain(self) -> list:
        """Everything queued, in order; the queue starts over."""
        out = self.datagrams
        self.datagrams = []
        self._untime()
        return out

    def departing(self, now: float) -> None:
        """The queued payload packets leave at ``now``: their RTT is measured from then."""
        for conn in self.timed:
            conn.departed(conn.first_queued, now)
        self._untime()

    def _untime(self) -> None:
        if self.timed:
            for conn in self.timed:
                conn.first_queued = -1
            self.timed = []
