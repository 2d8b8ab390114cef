"""The server half of a session, sans-IO: a stateless handshake (cookie, token, game and
version check, no amplification) in front of a table of established connections, with
keepalives and timeouts in one housekeeping scan."""

from __future__ import annotations

import hmac
import random
from dataclasses import dataclass
from typing import Callable, Hashable

from netcode.errors import ProtocolError, UsageError
from netcode.events import Connected, Disconnected
from netcode.session.base import PayloadHandler, Received, SessionEndpoint, parse_disconnect
from netcode.session.connection import Connection, Counters, SessionConfig, housekeeping
from netcode.session.crypto import KEY_SIZE, handshake_proof, is_loopback, session_keys
from netcode.session.demux import HANDSHAKE, Demux
from netcode.session.handshake import (
    ConnectRequest,
    GameIdentity,
    cookie_valid,
    make_cookie,
    pack_accepted,
    pack_challenge,
    pack_denied,
    parse_request,
    request_nonce,
    request_size,
)
from netcode.session.token import TokenClaims, require_secret, verify_token
from netcode.session.wire import PROTOCOL_VERSION, SESSION_HEADER_SIZE, PacketType, packet_type, parse_prefix

__all__ = ["Admission", "Refused", "SessionServer"]


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


class SessionServer(SessionEndpoint):
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
        epoch: int | None = None,
    ):
        super().__init__(config, on_payload, rng)
        # This instance's id, sent in ACCEPTED: a client that reconnects after a restart
        # sees a new one and starts its match over (default: 64 random bits).
        self.epoch = self.rng.getrandbits(64) if epoch is None else epoch
        require_secret(secret)
        self.game = game
        self.secret = secret
        self.room = room
        self.admit = admit
        self.wall_offset = wall_offset
        self.connections: dict[int, Connection] = {}
        self.demux = Demux(self.counters)  # the established connections by address
        self._info: dict[int, bytes] = {}
        self._next_id = 1
        self._next_housekeeping: float | None = None
        self.handshakes = Counters()  # challenges sent, accepted, denied (in 'dropped' by code)

    # -- receive --------------------------------------------------------------------------
    def receive(self, data: bytes, addr: Hashable, now: float) -> Received | None:
        """Handle one datagram: the handshake and session housekeeping here, a payload
        packet of an established session returned for the owner to handle. Anything
        malformed is dropped and counted (by reason) here, never raised."""
        kind = self.demux.packet(data, addr, now)
        return self.finish(kind, self.demux.data if kind >= 0 else data, addr, now)

    def finish(self, kind: int, data: bytes, addr: Hashable, now: float) -> Received | None:
        """:meth:`receive` after ``kind = self.demux.packet(data, addr, now)`` (a mode's
        compiled dispatch takes its commonest packets between the two); ``data`` is the
        packet the demux opened (``demux.data``) when ``kind`` is a session packet's type."""
        if kind >= 0:
            conn = self.demux.conn
            if kind == PacketType.KEEPALIVE:
                return None
            payload = memoryview(data)[SESSION_HEADER_SIZE:]
            if kind == PacketType.DISCONNECT:
                self._close(conn, parse_disconnect(payload), now, notify_peer=False)
                return None
            return Received(conn, packet_type(kind), payload)
        if kind == HANDSHAKE:
            try:
                version, ptype = parse_prefix(data)
                self._handshake(ptype, version, data, addr, now, self.demux.by_addr.get(addr))
            except ProtocolError as exc:
                self.counters.drop(exc.reason)
        return None

    def _handshake(self, ptype, version, data, addr, now, conn) -> None:
        if ptype not in (PacketType.CONNECT_REQUEST, PacketType.CHALLENGE_RESPONSE):
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a server")
        if len(data) < request_size(version):
            raise ProtocolError("short_request", f"{len(data)} bytes, requests are padded to {request_size(version)}")
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
        if not hmac.compare_digest(req.proof, handshake_proof(claims.keys[:KEY_SIZE], req.nonce, req.cookie_time, req.cookie)):
            # A sniffed token from someone without its keys: not answered, and the
            # session of the token's owner is left alone.
            raise ProtocolError("bad_proof", "challenge response without proof of the token's keys")
        if conn is not None and conn.nonce == req.nonce:
            # Our ACCEPTED was lost and the client asks again: same answer.
            self._send_raw(pack_accepted(req.nonce, conn.session_id, conn.slot, self._info[conn.id], self.epoch, plaintext=not conn.encrypted), addr)
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
        plaintext = self.config.insecure_plaintext_loopback and is_loopback(addr)
        if plaintext:
            keys = None
        else:
            c2s, s2c = session_keys(claims.keys[:KEY_SIZE], claims.keys[KEY_SIZE:], req.nonce, session_id)
            keys = (s2c, c2s)  # we send server-to-client, receive client-to-server
        conn = Connection(
            conn_id, addr, session_id, admission.slot, now, self.config, user=claims.user, role=claims.role, nonce=req.nonce,
            keys=keys,
        )
        self.connections[conn_id] = conn
        self.demux.by_addr[addr] = conn
        self._info[conn_id] = admission.info
        self.handshakes.received += 1
        self._send_raw(pack_accepted(req.nonce, session_id, admission.slot, admission.info, self.epoch, plaintext=plaintext), addr)
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
        if self.demux.by_addr.get(conn.addr) is conn:
            del self.demux.by_addr[conn.addr]
        self._events.put(Disconnected(conn.id, conn.slot, reason))

    def address_closed(self, addr: Hashable, now: float, reason: str = "transport closed") -> None:
        """A transport says ``addr`` is gone (a WebSocket closed): end its session now."""
        conn = self.demux.by_addr.get(addr)
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
        # Connection.timed_out / keepalive_due with the one config: this scans every
        # connection 20 times a second and almost always finds nothing to do, so the scan
        # is compiled (connection.housekeeping) and only what it finds is handled here.
        due = housekeeping(list(self.connections.values()), now, config.timeout, config.keepalive_interval)
        for conn in due:  # (few: what each needs is asked of the connection itself)
            if conn.timed_out(now):
                self._close(conn, "timeout", now, notify_peer=False)
            elif conn.keepalive_due(now):
                self.outbox.control(conn, PacketType.KEEPALIVE, b"", now)

    def connection_at(self, addr: Hashable) -> Connection | None:
        return self.demux.by_addr.get(addr)

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
