"""Handshake packet bodies and the stateless challenge cookie.

    client                                   server
    CONNECT_REQUEST  (padded to 400 B)  ->   checks version, game, token; keeps no state
                                        <-   CHALLENGE (32 B: cookie)   or DENIED (reason)
    CHALLENGE_RESPONSE (cookie, 400 B)  ->   verifies the cookie it made, admits a slot
                                        <-   ACCEPTED (session id, slot, server epoch)  or DENIED

The cookie is an HMAC over (address, client nonce, time, token digest) with the server's
secret, so the server can check a response without remembering the request. The response
also carries a proof that its sender holds the token's client key (the token itself may
have been sniffed), so only the token's owner is ever admitted. An address
that never answers a challenge costs the server nothing, and every reply before acceptance
is no bigger than the request that caused it (requests are padded; replies are short), so
the handshake cannot be used to amplify traffic toward a spoofed address.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Hashable

from netcode.errors import ProtocolError, UsageError
from netcode.session.wire import MAX_PACKET, PREFIX, PROTOCOL_VERSION, PacketType, Reader, check_budget, pack_prefix

__all__ = [
    "GameIdentity",
    "ConnectRequest",
    "REQUEST_SIZE",
    "request_size",
    "pack_request",
    "parse_request",
    "request_nonce",
    "pack_challenge",
    "parse_challenge",
    "pack_accepted",
    "parse_accepted",
    "pack_denied",
    "parse_denied",
    "make_cookie",
    "cookie_valid",
    "DENY_CODES",
    "MODES_BY_INFO",
    "info_mode",
    "ACCEPTED_PLAINTEXT",
]

REQUEST_SIZE = 400  # requests and responses are padded to this; replies must stay smaller
MIN_REQUEST_SIZE = 300  # what every protocol version pads to: enough to answer any with DENIED


def request_size(version: int) -> int:
    """How long a request of protocol ``version`` must be to be answered at all (another
    version's is answered with DENIED ``protocol_version``, no longer than it)."""
    return REQUEST_SIZE if version == PROTOCOL_VERSION else MIN_REQUEST_SIZE
COOKIE_MAC = 16
MAX_INFO = 512
#: A flag in ACCEPTED's type byte: this session is not encrypted (a lab on loopback only).
ACCEPTED_PLAINTEXT = 0x80

DENY_CODES = (
    "protocol_version",
    "game_mismatch",
    "bad_token",
    "forged_token",
    "expired_token",
    "wrong_room",
    "room_full",
    "slot_taken",
    "no_such_room",
    "mode_mismatch",
    "refused",
)

#: The first byte of ACCEPTED's info names the room's mode.
MODES_BY_INFO = {1: "lockstep", 2: "statesync"}


def info_mode(info: bytes) -> str | None:
    """The mode a room runs, from the info its ACCEPTED carried (None if unknown)."""
    return MODES_BY_INFO.get(info[0]) if info else None


@dataclass(frozen=True)
class GameIdentity:
    """What a client and server must agree on to play together."""

    name: str
    version: str
    fingerprint: int

    @classmethod
    def of(cls, game) -> "GameIdentity":
        return cls(game.name, game.version, game.fingerprint())

    def mismatch(self, other: "GameIdentity") -> str | None:
        """A sentence for the player when ``other`` (the client) cannot play here, else None."""
        if (self.name, self.version) != (other.name, other.version):
            return f"server runs {self.name} {self.version}, you run {other.name} {other.version}"
        if self.fingerprint != other.fingerprint:
            return (
                f"server and client both run {self.name} {self.version} but their schemas differ "
                f"(fingerprint {self.fingerprint:016x} vs {other.fingerprint:016x}); rebuild one of them"
            )
        return None


@dataclass(frozen=True)
class ConnectRequest:
    nonce: int
    game: GameIdentity
    token: bytes
    cookie_time: int = 0
    cookie: bytes = b""
    proof: bytes = b""  # CHALLENGE_RESPONSE: crypto.handshake_proof with the client key


_NONCE = struct.Struct("<Q")  # first in every handshake body, so any version can echo it
_COOKIE = struct.Struct("<I16s16s")  # cookie time, cookie, proof
_FP = struct.Struct("<Q")


def _request_body(req: ConnectRequest) -> bytes:
    name, version = req.game.name.encode(), req.game.version.encode()
    if len(name) > 64 or len(version) > 32 or len(req.token) > 255:
        raise UsageError("game name, version or token too long for the handshake")
    return (
        _FP.pack(req.game.fingerprint)
        + bytes([len(name)])
        + name
        + bytes([len(version)])
        + version
        + bytes([len(req.token)])
        + req.token
    )


def pack_request(req: ConnectRequest, response: bool = False) -> bytes:
    """CONNECT_REQUEST, or CHALLENGE_RESPONSE when ``response`` (cookie first), padded."""
    ptype = PacketType.CHALLENGE_RESPONSE if response else PacketType.CONNECT_REQUEST
    head = pack_prefix(ptype) + _NONCE.pack(req.nonce)
    if response:
        head += _COOKIE.pack(req.cookie_time, req.cookie, req.proof)
    packet = head + _request_body(req)
    if len(packet) > REQUEST_SIZE:
        raise UsageError(f"handshake of {len(packet)} bytes exceeds {REQUEST_SIZE}")
    return packet + bytes(REQUEST_SIZE - len(packet))


def parse_request(data: bytes, response: bool = False) -> ConnectRequest:
    if len(data) < REQUEST_SIZE:
        # Unpadded requests are not answered: a reply could be bigger than what came in.
        raise ProtocolError("short_request", f"{len(data)} bytes, requests are padded to {REQUEST_SIZE}")
    r = Reader(data, PREFIX.size)
    nonce = r.u64()
    cookie_time, cookie, proof = _COOKIE.unpack_from(data, r.take(_COOKIE.size)) if response else (0, b"", b"")
    fingerprint = r.u64()
    name = r.str8()
    version = r.str8()
    token = r.bytes(r.u8())
    return ConnectRequest(nonce, GameIdentity(name, version, fingerprint), token, cookie_time, cookie, proof)


def request_nonce(data: bytes) -> int:
    """The client nonce of a handshake request of any protocol version (0 if too short)."""
    return _NONCE.unpack_from(data, PREFIX.size)[0] if len(data) >= PREFIX.size + 8 else 0


def make_cookie(secret: bytes, addr: Hashable, nonce: int, cookie_time: int, token: bytes) -> bytes:
    msg = b"ticksync-cookie\0%s\0%d\0%d\0" % (repr(addr).encode(), nonce, cookie_time) + hashlib.sha256(token).digest()
    return hmac.new(secret, msg, hashlib.sha256).digest()[:COOKIE_MAC]


def cookie_valid(secret: bytes, addr: Hashable, req: ConnectRequest, now: float, ttl: float) -> bool:
    age = now - req.cookie_time
    if not -1.0 <= age <= ttl:
        return False
    expected = make_cookie(secret, addr, req.nonce, req.cookie_time, req.token)
    return hmac.compare_digest(expected, req.cookie)


_CHALLENGE = struct.Struct("<QI16s")


def pack_challenge(nonce: int, cookie_time: int, cookie: bytes) -> bytes:
    return pack_prefix(PacketType.CHALLENGE) + _CHALLENGE.pack(nonce, cookie_time, cookie)


def parse_challenge(data: bytes) -> tuple[int, int, bytes]:
    r = Reader(data, PREFIX.size)
    out = _CHALLENGE.unpack_from(data, r.take(_CHALLENGE.size))
    r.done()
    return out


_ACCEPTED = struct.Struct("<QIhQH")


def pack_accepted(nonce: int, session_id: int, slot: int, info: bytes, epoch: int = 0, *, plaintext: bool = False) -> bytes:
    """``epoch``: the server instance's id, so a client that reconnects can tell a restarted
    server (a new match) from the one it knew."""
    if len(info) > MAX_INFO:
        raise UsageError(f"accept info of {len(info)} bytes; {MAX_INFO} at most")
    packet = pack_prefix(PacketType.ACCEPTED | (ACCEPTED_PLAINTEXT if plaintext else 0)) + _ACCEPTED.pack(nonce, session_id, slot, epoch, len(info)) + info
    check_budget(packet, "ACCEPTED")
    return packet


def parse_accepted(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(nonce, session id, slot, server epoch, info)."""
    r = Reader(data, PREFIX.size)
    nonce, session_id, slot, epoch, n = _ACCEPTED.unpack_from(data, r.take(_ACCEPTED.size))
    info = r.bytes(n)
    r.done()
    return nonce, session_id, slot, epoch, info


_DENIED = struct.Struct("<Q")


def pack_denied(nonce: int, code: str, message: str, limit: int = MAX_PACKET) -> bytes:
    """DENIED, with the message cut so the packet is at most ``limit`` bytes."""
    head = pack_prefix(PacketType.DENIED) + _DENIED.pack(nonce) + bytes([len(code)]) + code.encode()
    room = max(0, min(limit, MAX_PACKET) - len(head) - 2)
    text = message.encode("utf-8")[:room].decode("utf-8", "ignore").encode("utf-8")
    return head + struct.pack("<H", len(text)) + text


def parse_denied(data: bytes) -> tuple[int, str, str]:
    r = Reader(data, PREFIX.size)
    nonce = r.u64()
    code = r.str8()
    raw = r.bytes(r.u16())
    r.done()
    return nonce, code, raw.decode("utf-8", "replace")
