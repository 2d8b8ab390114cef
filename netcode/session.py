"""Sessions, sans-IO: handshake, version and game check, tokens, keepalive, timeout, disconnect.

:class:`SessionServer` and :class:`SessionClient` take ``(bytes, address, now)`` and queue
datagrams and events; they never read a clock, sleep or touch a socket. Transports (or the
network simulator in tests) drive them by one rule: after a datagram, a user call or a
timer, drain ``datagrams_to_send()`` and re-arm the timer at ``next_deadline()``.

Established sessions hand their payload packets (the modes' packet types) to the
``on_payload(conn, ptype, payload, now)`` callback of whoever owns the session; lifecycle
changes go to the bounded event queue (``events()``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Hashable

from .connection import Connection, Counters, SessionConfig
from .errors import ProtocolError, UsageError
from .events import Connected, Denied, Disconnected, EventQueue
from .handshake import (
    REQUEST_SIZE,
    ConnectRequest,
    GameIdentity,
    cookie_valid,
    make_cookie,
    pack_accepted,
    pack_challenge,
    pack_denied,
    pack_request,
    parse_accepted,
    parse_challenge,
    parse_denied,
    parse_request,
    request_nonce,
)
from .token import TokenClaims, require_secret, verify_token
from .wire import PROTOCOL_VERSION, PacketType, parse_prefix

__all__ = ["Admission", "Refused", "SessionServer", "SessionClient", "ClientState", "PayloadHandler"]

PayloadHandler = Callable[[Connection, PacketType, memoryview, float], None]


@dataclass(frozen=True)
class Admission:
    """What the session's owner grants a verified client."""

    slot: int  # -1 for spectators
    info: bytes = b""  # sent in ACCEPTED (mode parameters the client needs)
    replaces: int | None = None  # connection to close: the same player reconnecting


class Refused(Exception):
    """Raised by an ``admit`` callback to deny a client with a reason it can show."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _pack_disconnect(reason: str) -> bytes:
    raw = reason.encode("utf-8")[:200]
    return bytes([len(raw)]) + raw


def _parse_disconnect(payload: memoryview) -> str:
    if len(payload) < 1 or len(payload) < 1 + payload[0]:
        return "peer"
    return "peer: " + bytes(payload[1 : 1 + payload[0]]).decode("utf-8", "replace")


class _Endpoint:
    """What both ends share: outgoing queue, events, counters, the payload callback."""

    def __init__(self, config: SessionConfig | None, on_payload: PayloadHandler | None, rng: random.Random | None):
        self.config = config or SessionConfig()
        self.on_payload = on_payload or (lambda conn, ptype, payload, now: None)
        self.rng = rng or random.SystemRandom()
        self.counters = Counters()  # traffic that belongs to no session
        self._out: list[tuple[bytes, Hashable]] = []
        self._events = EventQueue()

    def datagrams_to_send(self) -> list[tuple[bytes, Hashable]]:
        out, self._out = self._out, []
        return out

    def events(self) -> list:
        return self._events.drain()

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def _send_raw(self, packet: bytes, addr: Hashable) -> None:
        self.counters.sent += 1
        self.counters.bytes_sent += len(packet)
        self._out.append((packet, addr))

    def send(self, conn: Connection, ptype: PacketType, payload: bytes | bytearray, now: float) -> None:
        """Queue a payload packet on an established session."""
        if conn.closed:
            raise UsageError(f"connection {conn.id} is closed")
        self._out.append((conn.wrap(ptype, payload, now), conn.addr))

    def _session_packet(self, conn: Connection, ptype: PacketType, data: bytes, now: float) -> str | None:
        """Common receive path of an established session; returns a disconnect reason."""
        payload = conn.unwrap(data, now)
        if ptype is PacketType.KEEPALIVE:
            return None
        if ptype is PacketType.DISCONNECT:
            return _parse_disconnect(payload)
        self.on_payload(conn, ptype, payload, now)
        return None

    def _say_goodbye(self, conn: Connection, reason: str, now: float) -> None:
        body = _pack_disconnect(reason)
        for _ in range(self.config.disconnect_copies):
            self._out.append((conn.wrap(PacketType.DISCONNECT, body, now), conn.addr))


class SessionServer(_Endpoint):
    """The server half: a stateless handshake in front of a table of connections.

    ``admit(claims, addr, now)`` decides who gets in (returns an :class:`Admission` or raises
    :class:`Refused`); it is only called once the client has proven its address and token.
    ``wall_offset`` turns ``now`` into unix time for token expiry (transports set it to
    the wall clock minus the loop clock; simulations leave 0 and mint tokens on virtual time).
    """

    def __init__(
        self,
        *,
        game: GameIdentity,
        secret: bytes,
        admit: Callable[[TokenClaims, Hashable, float], Admission],
        room: str = "default",
        on_payload: PayloadHandler | None = None,
        config: SessionConfig | None = None,
        wall_offset: float = 0.0,
        rng: random.Random | None = None,
    ):
        super().__init__(config, on_payload, rng)
        require_secret(secret)
        self.game = game
        self.secret = secret
        self.room = room
        self.admit = admit
        self.wall_offset = wall_offset
        self.connections: dict[int, Connection] = {}
        self._by_addr: dict[Hashable, Connection] = {}
        self._info: dict[int, bytes] = {}
        self._next_id = 1
        self._next_housekeeping: float | None = None
        self.handshakes = Counters()  # challenges sent, accepted, denied (in 'dropped' by code)

    # -- receive --------------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        # Server-wide counters see every datagram; a session's own counters see its packets.
        self.counters.received += 1
        self.counters.bytes_received += len(data)
        conn = self._by_addr.get(addr)
        counters = self.counters
        try:
            version, ptype = parse_prefix(data)
            if ptype < 0x10:
                self._handshake(ptype, version, data, addr, now, conn)
                return
            if conn is None:
                raise ProtocolError("no_session", "session packet from an address without a session")
            if version != PROTOCOL_VERSION:
                raise ProtocolError("bad_version", f"version {version}")
            counters = conn.counters
            reason = self._session_packet(conn, ptype, data, now)
            if reason is not None:
                self._close(conn, reason, now, notify_peer=False)
        except ProtocolError as exc:
            counters.drop(exc.reason)

    def _handshake(self, ptype, version, data, addr, now, conn) -> None:
        if ptype not in (PacketType.CONNECT_REQUEST, PacketType.CHALLENGE_RESPONSE):
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a server")
        if len(data) < REQUEST_SIZE:
            raise ProtocolError("short_request", f"{len(data)} bytes, requests are padded to {REQUEST_SIZE}")
        if version != PROTOCOL_VERSION:
            msg = f"server speaks ticksync protocol {PROTOCOL_VERSION}, you speak {version}: update one of them"
            self._deny(addr, request_nonce(data), "protocol_version", msg, len(data))
            return
        response = ptype is PacketType.CHALLENGE_RESPONSE
        req = parse_request(data, response=response)
        mismatch = self.game.mismatch(req.game)
        if mismatch:
            self._deny(addr, req.nonce, "game_mismatch", mismatch, len(data))
            return
        try:
            claims = verify_token(self.secret, req.token, now_wall=now + self.wall_offset, room=self.room)
        except ProtocolError as exc:
            self._deny(addr, req.nonce, exc.reason, f"connect token refused: {exc.detail}", len(data))
            return
        if not response:
            cookie_time = int(now)
            cookie = make_cookie(self.secret, addr, req.nonce, cookie_time, req.token)
            self.handshakes.sent += 1
            self._send_raw(pack_challenge(req.nonce, cookie_time, cookie), addr)
            return
        if not cookie_valid(self.secret, addr, req, now, self.config.cookie_ttl):
            raise ProtocolError("bad_cookie", "challenge response with a cookie this server did not make")
        if conn is not None and conn.nonce == req.nonce:
            # Our ACCEPTED was lost and the client asks again: same answer.
            self._send_raw(pack_accepted(req.nonce, conn.session_id, conn.slot, self._info[conn.id]), addr)
            return
        try:
            admission = self.admit(claims, addr, now)
        except Refused as exc:
            self._deny(addr, req.nonce, exc.code, exc.message, len(data))
            return
        if conn is not None:  # the same address starts over (a restarted client)
            self._close(conn, "replaced", now, notify_peer=False)
        if admission.replaces is not None and admission.replaces in self.connections:
            self._close(self.connections[admission.replaces], "replaced", now, notify_peer=True)
        self._open(addr, req, claims, admission, now)

    def _deny(self, addr, nonce: int, code: str, message: str, limit: int) -> None:
        self.handshakes.drop(code)
        self._send_raw(pack_denied(nonce, code, message, limit=limit), addr)

    def _open(self, addr, req: ConnectRequest, claims: TokenClaims, admission: Admission, now: float) -> None:
        conn_id = self._next_id
        self._next_id += 1
        session_id = self.rng.getrandbits(32)
        conn = Connection(
            conn_id, addr, session_id, admission.slot, now, self.config, user=claims.user, role=claims.role, nonce=req.nonce
        )
        self.connections[conn_id] = conn
        self._by_addr[addr] = conn
        self._info[conn_id] = admission.info
        self.handshakes.received += 1
        self._send_raw(pack_accepted(req.nonce, session_id, admission.slot, admission.info), addr)
        self._events.put(Connected(conn_id, admission.slot, claims.user, addr, admission.info))
        if self._next_housekeeping is None:
            self._next_housekeeping = now + self.config.housekeeping_interval

    # -- lifecycle ------------------------------------------------------------------------
    def disconnect(self, conn: Connection | int, now: float, reason: str = "kicked") -> None:
        conn = self.connections.get(conn) if isinstance(conn, int) else conn
        if conn is not None and not conn.closed:
            self._close(conn, reason, now, notify_peer=True)

    def _close(self, conn: Connection, reason: str, now: float, *, notify_peer: bool) -> None:
        if notify_peer:
            self._say_goodbye(conn, reason, now)
        conn.closed = True
        self.connections.pop(conn.id, None)
        self._info.pop(conn.id, None)
        if self._by_addr.get(conn.addr) is conn:
            del self._by_addr[conn.addr]
        self._events.put(Disconnected(conn.id, conn.slot, reason))

    def address_closed(self, addr: Hashable, now: float, reason: str = "transport closed") -> None:
        """A transport says ``addr`` is gone (a WebSocket closed): end its session now."""
        conn = self._by_addr.get(addr)
        if conn is not None:
            self._close(conn, reason, now, notify_peer=False)

    def close_all(self, now: float, reason: str = "shutdown") -> None:
        for conn in list(self.connections.values()):
            self._close(conn, reason, now, notify_peer=True)

    # -- timers ---------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        return self._next_housekeeping if self.connections else None

    def handle_timer(self, now: float) -> None:
        """Time out silent sessions and keep idle ones alive; one scan per housekeeping
        interval instead of a timer per connection."""
        if self._next_housekeeping is None or now < self._next_housekeeping:
            return
        config = self.config
        self._next_housekeeping = now + config.housekeeping_interval
        # Connection.timed_out / keepalive_due, inlined: this scans every connection 20
        # times a second and almost always finds nothing to do.
        timeout, keepalive = config.timeout, config.keepalive_interval
        for conn in list(self.connections.values()):
            if now - conn.last_recv >= timeout:
                self._close(conn, "timeout", now, notify_peer=False)
            elif now - conn.last_send >= keepalive:
                self._out.append((conn.wrap(PacketType.KEEPALIVE, b"", now), conn.addr))

    def connection_at(self, addr: Hashable) -> Connection | None:
        return self._by_addr.get(addr)

    def stats(self) -> dict:
        dropped = dict(self.counters.dropped)
        for conn in self.connections.values():
            for k, v in conn.counters.dropped.items():
                dropped[k] = dropped.get(k, 0) + v
        return {
            "connections": len(self.connections),
            "challenges_sent": self.handshakes.sent,
            "accepted": self.handshakes.received,
            "denied": dict(self.handshakes.dropped),
            "dropped": dropped,
        }


class ClientState(Enum):
    IDLE = "idle"
    REQUESTING = "requesting"
    RESPONDING = "responding"
    CONNECTED = "connected"
    DENIED = "denied"
    FAILED = "failed"  # no answer within connect_timeout
    DISCONNECTED = "disconnected"


class SessionClient(_Endpoint):
    """The client half: connects to one server address with a token."""

    def __init__(
        self,
        *,
        server: Hashable,
        token: bytes,
        game: GameIdentity,
        on_payload: PayloadHandler | None = None,
        config: SessionConfig | None = None,
        rng: random.Random | None = None,
    ):
        super().__init__(config, on_payload, rng)
        self.server = server
        self.token = token
        self.game = game
        self.state = ClientState.IDLE
        self.connection: Connection | None = None
        self.info = b""
        self.denied: Denied | None = None
        self._req: ConnectRequest | None = None
        self._challenged_at = 0.0  # our clock, when the cookie arrived (its time is the server's)
        self._resend_at: float | None = None
        self._give_up_at: float | None = None

    @property
    def connected(self) -> bool:
        return self.state is ClientState.CONNECTED

    def connect(self, now: float) -> None:
        if self.state in (ClientState.REQUESTING, ClientState.RESPONDING, ClientState.CONNECTED):
            raise UsageError(f"connect() while {self.state.value}")
        self._req = ConnectRequest(self.rng.getrandbits(64), self.game, self.token)
        self.connection = None
        self.denied = None
        self.state = ClientState.REQUESTING
        self._give_up_at = now + self.config.connect_timeout
        self._send_handshake(now)

    def _send_handshake(self, now: float) -> None:
        self._send_raw(pack_request(self._req, response=self.state is ClientState.RESPONDING), self.server)
        self._resend_at = now + self.config.handshake_resend

    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        conn = self.connection
        counters = conn.counters if conn is not None else self.counters
        try:
            if addr != self.server:
                raise ProtocolError("wrong_source", f"datagram from {addr!r}, not the server")
            version, ptype = parse_prefix(data)
            if version != PROTOCOL_VERSION:
                raise ProtocolError("bad_version", f"version {version}")
            if ptype < 0x10:
                self.counters.received += 1
                self._handshake(ptype, data, now)
                return
            if conn is None or conn.closed:
                raise ProtocolError("no_session", "session packet before the handshake finished")
            reason = self._session_packet(conn, ptype, data, now)
            if reason is not None:
                self._end(ClientState.DISCONNECTED, reason)
        except ProtocolError as exc:
            counters.drop(exc.reason)

    def _handshake(self, ptype: PacketType, data: bytes, now: float) -> None:
        req = self._req
        if ptype is PacketType.CHALLENGE:
            nonce, cookie_time, cookie = parse_challenge(data)
            if self.state is not ClientState.REQUESTING or req is None or nonce != req.nonce:
                raise ProtocolError("unexpected_challenge", "not waiting for this challenge")
            self._req = ConnectRequest(req.nonce, req.game, req.token, cookie_time, cookie)
            self._challenged_at = now
            self.state = ClientState.RESPONDING
            self._send_handshake(now)
        elif ptype is PacketType.ACCEPTED:
            nonce, session_id, slot, info = parse_accepted(data)
            if req is None or nonce != req.nonce:
                raise ProtocolError("unexpected_accept", "ACCEPTED for another attempt")
            if self.state is ClientState.CONNECTED:
                return  # a duplicate of the one we took
            if self.state not in (ClientState.REQUESTING, ClientState.RESPONDING):
                raise ProtocolError("unexpected_accept", f"ACCEPTED while {self.state.value}")
            self.connection = Connection(0, self.server, session_id, slot, now, self.config, nonce=nonce)
            self.info = info
            self.state = ClientState.CONNECTED
            self._events.put(Connected(0, slot, "", self.server, info))
        elif ptype is PacketType.DENIED:
            nonce, code, message = parse_denied(data)
            if req is None or nonce != req.nonce or self.state not in (ClientState.REQUESTING, ClientState.RESPONDING):
                raise ProtocolError("unexpected_deny", "DENIED for another attempt")
            self.denied = Denied(code, message)
            self.state = ClientState.DENIED
            self._events.put(self.denied)
        else:
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a client")

    def send(self, ptype: PacketType, payload: bytes | bytearray, now: float) -> None:  # type: ignore[override]
        if self.state is not ClientState.CONNECTED or self.connection is None:
            raise UsageError(f"send() while {self.state.value}; wait for the Connected event")
        super().send(self.connection, ptype, payload, now)

    def disconnect(self, now: float, reason: str = "local") -> None:
        if self.state is ClientState.CONNECTED and self.connection is not None:
            self._say_goodbye(self.connection, reason, now)
            self._end(ClientState.DISCONNECTED, "local")
        elif self.state in (ClientState.REQUESTING, ClientState.RESPONDING):
            self._end(ClientState.DISCONNECTED, "local")

    def _end(self, state: ClientState, reason: str) -> None:
        slot = self.connection.slot if self.connection is not None else -1
        if self.connection is not None:
            self.connection.closed = True
        self.state = state
        self._resend_at = self._give_up_at = None
        self._events.put(Disconnected(0, slot, reason))

    def next_deadline(self) -> float | None:
        if self.state in (ClientState.REQUESTING, ClientState.RESPONDING):
            return min(self._resend_at, self._give_up_at)
        if self.state is ClientState.CONNECTED:
            return self.connection.next_deadline()
        return None

    def handle_timer(self, now: float) -> None:
        if self.state in (ClientState.REQUESTING, ClientState.RESPONDING):
            if now >= self._give_up_at:
                self._end(ClientState.FAILED, "connect timeout: no answer from the server")
            elif now >= self._resend_at:
                if self.state is ClientState.RESPONDING and now - self._challenged_at > self.config.cookie_ttl / 2:
                    self.state = ClientState.REQUESTING  # the cookie went stale: ask again
                self._send_handshake(now)
        elif self.state is ClientState.CONNECTED:
            conn = self.connection
            if conn.timed_out(now):
                self._end(ClientState.DISCONNECTED, "timeout")
            elif conn.keepalive_due(now):
                self._out.append((conn.wrap(PacketType.KEEPALIVE, b"", now), conn.addr))
