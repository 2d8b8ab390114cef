# cython: annotation_typing=False
"""Which established session a datagram belongs to: the session server's receive path for
every packet after the handshake.

A server receives thousands of session packets a second and a few handshakes, so this part
of :meth:`SessionServer.receive <netcode.session.server.SessionServer.receive>` is its own
class, compiled with the connection it hands each packet to (Cython's pure-Python mode,
``demux.pxd``; the same source runs as plain Python where there is no compiler). A mode's
compiled dispatch (:mod:`netcode.mode.dispatch`) calls :meth:`Demux.packet` as a C function.
"""

from __future__ import annotations

from netcode.errors import ProtocolError
from netcode.session.connection import Connection, Counters
from netcode.session.wire import PROTOCOL_VERSION, prefix_codes

__all__ = ["Demux", "HANDSHAKE", "DROPPED"]

HANDSHAKE = -1  # a handshake packet: the session server answers it
DROPPED = -2  # malformed, from no session, or refused by its connection: counted


class Demux:
    """The established connections by address, and the first steps of every datagram."""

    def __init__(self, counters: Counters):
        self.by_addr: dict = {}  # address -> Connection
        self.counters = counters  # traffic that belongs to no session
        self.conn = None  # the connection of the packet :meth:`packet` last returned
        self.data = b""  # that packet opened (payload in clear at SESSION_HEADER_SIZE)

    def packet(self, data: bytes, addr, now: float) -> int:
        """Count ``data`` and check it as far as its session goes: the packet type of a
        session packet its connection accepted (``self.conn``; the payload starts at
        ``SESSION_HEADER_SIZE`` of ``self.data``, the packet opened), HANDSHAKE, or DROPPED (counted by reason on the
        connection, or on the server's counters when there is none)."""
        counters = self.counters
        counters.received += 1
        counters.bytes_received += len(data)
        found = self.by_addr.get(addr)
        try:
            version, ptype = prefix_codes(data)
            if ptype < 0x10:
                self.data = data
                return HANDSHAKE
            if found is None:
                raise ProtocolError("no_session", "session packet from an address without a session")
            if version != PROTOCOL_VERSION:
                raise ProtocolError("bad_version", f"version {version}")
            conn = found
            counters = conn.counters
            self.data = conn.accept(data, now)
        except ProtocolError as exc:
            counters.drop(exc.reason)
            return DROPPED
        self.conn = conn
        return ptype
