# cython: annotation_typing=False
"""A mode server's receive loop: every datagram through the session's demux, a mode's
commonest packet straight to its compiled handler, everything else the general way.

A 100-player room at 60 Hz receives 6000 input packets a second. Compiled (Cython's
pure-Python mode, ``dispatch.pxd``), this loop calls the demux, the connection and the
mode's :class:`HotPacket` as C functions, with no Python call per packet; the same source
runs as plain Python where there is no compiler. The rules stay where they belong: the
session's in :class:`~netcode.session.demux.Demux` and the connection, the mode's in its
``HotPacket`` (for state sync, :class:`~netcode.statesync.peer.InputGate`), which the
general path (``on_payload``) uses too.
"""

from __future__ import annotations

from netcode.errors import ProtocolError
from netcode.session.connection import Connection
from netcode.session.demux import Demux

__all__ = ["HotPacket", "Receiver"]


class HotPacket:
    """A mode's handler for one packet type, called with the packet its session accepted
    and opened (the payload in clear at ``SESSION_HEADER_SIZE``). What the packet may not do raises
    ProtocolError, a counted drop on its connection."""

    def __init__(self, ptype: int):
        self.ptype = ptype

    def take(self, peer, conn: Connection, data: bytes, now: float) -> None:
        raise NotImplementedError


class Receiver:
    """A mode server's receive path, holding what every datagram needs: the server's
    session, its demux, the peer records and the mode's hot packet (C fields when compiled,
    so a datagram costs no attribute lookup). The server hands out :meth:`datagram` as its
    ``receive_datagram``: compiled, a datagram crosses from Python into C once."""

    def __init__(self, server):
        self.server = server
        self.session = server.session
        self.demux = server.session.demux
        self.peers = server.peers  # connection id -> peer record (the server never replaces the dict)
        self.hot = None  # the mode's HotPacket, or None: every packet the general way
        self.hot_type = 0  # its packet type; 0: none (the demux's codes are < 0 or >= 0x10)

    def use(self, hot) -> None:
        """Hand the hot packet type to ``hot`` (None: take every packet the general way)."""
        self.hot = hot
        self.hot_type = hot.ptype if hot is not None else 0

    def datagram(self, data: bytes, addr, now: float) -> None:
        """One datagram, handled as by :meth:`many`; a bug's exception propagates."""
        _receive(self.server, self.session, self.demux, self.hot, self.hot_type, self.peers, data, addr, now)

    def many(self, batch: list, on_error) -> None:
        """``(data, addr, now)`` datagrams in arrival order. A datagram whose handling
        raises (a bug) goes to ``on_error``, and the rest still go; without ``on_error``
        the exception propagates."""
        server = self.server
        session = self.session
        demux = self.demux
        hot = self.hot
        hot_type = self.hot_type
        peers = self.peers
        for item in batch:
            data, addr, now = item
            try:
                _receive(server, session, demux, hot, hot_type, peers, data, addr, now)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)


def _receive(server, session, demux, hot, hot_type: int, peers: dict, data, addr, now: float) -> None:
    """One datagram: the session's demux, then the mode's hot packet or the general way."""
    kind = demux.packet(data, addr, now)
    if kind == hot_type:
        conn = demux.conn
        try:
            hot.take(peers[conn.id], conn, demux.data, now)
        except ProtocolError as exc:
            conn.counters.drop(exc.reason)
        return
    got = session.finish(kind, demux.data if kind >= 0 else data, addr, now)
    # Most datagrams change nothing about who is connected (the hot packet never
    # does), and events are taken right after what made them.
    if session.has_events:
        server._lifecycle()
    if got is not None:
        server._payload(got.conn, got.ptype, got.payload, now)
