"""The client half of a session, sans-IO: connect with a token (request, challenge,
response with proof of the token's keys, resent until answered or timed out), then
keepalives and a timeout. The client token's keys never leave the client: only the wire
token goes out, and every session packet is sealed with keys derived from them."""

from __future__ import annotations

import random
from enum import Enum
from typing import Hashable

from netcode.errors import ProtocolError, UsageError
from netcode.events import Connected, Denied, Disconnected
from netcode.session.base import PayloadHandler, Received, SessionEndpoint, parse_disconnect
from netcode.session.connection import Connection, SessionConfig
from netcode.session.crypto import KEY_SIZE, handshake_proof, is_loopback, session_keys
from netcode.session.handshake import (
    ACCEPTED_PLAINTEXT,
    ConnectRequest,
    GameIdentity,
    pack_request,
    parse_accepted,
    parse_challenge,
    parse_denied,
)
from netcode.session.token import split_token
from netcode.session.wire import PROTOCOL_VERSION, PacketType, parse_prefix

__all__ = ["ClientState", "SessionClient"]


class ClientState(Enum):
    IDLE = "idle"
    REQUESTING = "requesting"
    RESPONDING = "responding"
    CONNECTED = "connected"
    DENIED = "denied"
    FAILED = "failed"  # no answer within connect_timeout
    DISCONNECTED = "disconnected"


class SessionClient(SessionEndpoint):
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
        self.token = token  # the client token: the wire token, then its keys
        self._wire_token, self._keys = split_token(token)
        self.game = game
        self.state = ClientState.IDLE
        self.connection: Connection | None = None
        self.info = b""
        self.epoch: int | None = None  # the server instance's id, from ACCEPTED
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
        self._req = ConnectRequest(self.rng.getrandbits(64), self.game, self._wire_token)
        self.connection = None
        self.denied = None
        self.state = ClientState.REQUESTING
        self._give_up_at = now + self.config.connect_timeout
        self._send_handshake(now)

    def _send_handshake(self, now: float) -> None:
        self._send_raw(pack_request(self._req, response=self.state is ClientState.RESPONDING), self.server)
        self._resend_at = now + self.config.handshake_resend

    def receive(self, data: bytes, addr: Hashable, now: float) -> Received | None:
        """Handle one datagram from the server: the handshake and session housekeeping
        here, a payload packet returned for the owner to handle. Anything malformed is
        dropped and counted (by reason) here, never raised."""
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
                return None
            if conn is None or conn.closed:
                raise ProtocolError("no_session", "session packet before the handshake finished")
            payload = conn.unwrap(data, now)
            if ptype is PacketType.KEEPALIVE:
                return None
            if ptype is PacketType.DISCONNECT:
                self._end(ClientState.DISCONNECTED, parse_disconnect(payload))
                return None
            return Received(conn, ptype, payload)
        except ProtocolError as exc:
            counters.drop(exc.reason)
            return None

    def _handshake(self, ptype: PacketType, data: bytes, now: float) -> None:
        req = self._req
        if ptype is PacketType.CHALLENGE:
            nonce, cookie_time, cookie = parse_challenge(data)
            if self.state in (ClientState.RESPONDING, ClientState.CONNECTED) and req is not None and nonce == req.nonce:
                return  # the answer to a copy of our request: the first one was taken
            if self.state is not ClientState.REQUESTING or req is None or nonce != req.nonce:
                raise ProtocolError("unexpected_challenge", "not waiting for this challenge")
            proof = handshake_proof(self._keys[:KEY_SIZE], req.nonce, cookie_time, cookie)
            self._req = ConnectRequest(req.nonce, req.game, req.token, cookie_time, cookie, proof)
            self._challenged_at = now
            self.state = ClientState.RESPONDING
            self._send_handshake(now)
        elif ptype is PacketType.ACCEPTED:
            nonce, session_id, slot, epoch, info = parse_accepted(data)
            if req is None or nonce != req.nonce:
                raise ProtocolError("unexpected_accept", "ACCEPTED for another attempt")
            if self.state is ClientState.CONNECTED:
                return  # a duplicate of the one we took
            if self.state not in (ClientState.REQUESTING, ClientState.RESPONDING):
                raise ProtocolError("unexpected_accept", f"ACCEPTED while {self.state.value}")
            if data[3] & ACCEPTED_PLAINTEXT:
                # Only where the server's own rule allows it: a forged ACCEPTED must not
                # talk a client out of encryption over a real network.
                if not is_loopback(self.server):
                    raise ProtocolError("plaintext_refused", "the server offered an unencrypted session off loopback")
                keys = None
            else:
                keys = session_keys(self._keys[:KEY_SIZE], self._keys[KEY_SIZE:], nonce, session_id)
            self.connection = Connection(0, self.server, session_id, slot, now, self.config, nonce=nonce, keys=keys)
            self.info = info
            self.epoch = epoch
            self.state = ClientState.CONNECTED
            self._events.put(Connected(0, slot, "", self.server, info, epoch=epoch))
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
                self.outbox.control(conn, PacketType.KEEPALIVE, b"", now)
