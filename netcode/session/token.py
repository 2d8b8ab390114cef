"""Connect tokens: HMAC-signed, expiring proof of which room and slot a client may play.

A matchmaker (or ``ticksync token``) that knows the server secret mints a token per
player; the client presents it in the handshake and can only ever act for the slot the
token names (or, with slot -1, the slot the server assigns to that user id, the same one on
every reconnect). Tokens are not encrypted: they are bearer proofs, so hand them to the
player over HTTPS.

Layout (little-endian), then an HMAC-SHA256 over all of it truncated to 16 bytes::

    u8 version (1) | u8 role (0 player, 1 spectator) | i16 slot | u64 expires (unix s)
    | 8 bytes nonce | u8 len + room (UTF-8) | u8 len + user id (UTF-8) | 16 bytes MAC
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from netcode.errors import ProtocolError, UsageError
from netcode.session.wire import Reader

__all__ = [
    "TokenClaims",
    "mint_token",
    "verify_token",
    "peek_room",
    "require_secret",
    "token_to_text",
    "token_from_text",
    "PLAYER",
    "SPECTATOR",
]

TOKEN_VERSION = 1
PLAYER, SPECTATOR = 0, 1
MAC_SIZE = 16
MAX_TOKEN = 2 + 2 + 8 + 8 + 1 + 64 + 1 + 64 + MAC_SIZE
_FIXED = struct.Struct("<BBhQ8s")


@dataclass(frozen=True)
class TokenClaims:
    room: str
    slot: int  # -1: the server assigns one (stable per user id)
    user: str
    expires: int  # unix seconds
    role: int = PLAYER
    nonce: bytes = b""

    @property
    def spectator(self) -> bool:
        return self.role == SPECTATOR


MIN_SECRET = 16


def require_secret(secret: bytes) -> None:
    """Refuse a server secret too short to sign tokens and cookies with."""
    if len(secret) < MIN_SECRET:
        raise UsageError(f"the server secret must be at least {MIN_SECRET} bytes")


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()[:MAC_SIZE]


def _text(field: str, value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 64:
        raise UsageError(f"token {field} is {len(raw)} bytes; 64 at most")
    return bytes([len(raw)]) + raw


def mint_token(
    secret: bytes,
    room: str,
    *,
    expires: float,
    slot: int = -1,
    user: str = "",
    role: int = PLAYER,
    nonce: bytes | None = None,
) -> bytes:
    """A signed token. ``expires`` is unix time in seconds (the server's wall clock)."""
    require_secret(secret)
    if not -1 <= slot <= 32767:
        raise UsageError(f"slot {slot} out of range (-1 for server-assigned)")
    if role not in (PLAYER, SPECTATOR):
        raise UsageError(f"unknown role {role}")
    nonce = os.urandom(8) if nonce is None else nonce
    body = _FIXED.pack(TOKEN_VERSION, role, slot, int(expires), nonce) + _text("room", room) + _text("user", user)
    return body + _mac(secret, body)


def verify_token(secret: bytes, token: bytes, *, now_wall: float, room: str | None = None) -> TokenClaims:
    """Claims of a valid token, or ProtocolError naming why it is refused."""
    if len(token) < _FIXED.size + 2 + MAC_SIZE or len(token) > MAX_TOKEN:
        raise ProtocolError("bad_token", f"token of {len(token)} bytes")
    body, mac = token[:-MAC_SIZE], token[-MAC_SIZE:]
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise ProtocolError("forged_token", "signature does not match this server's secret")
    r = Reader(body)
    version, role, slot, expires, nonce = _FIXED.unpack_from(body)
    r.pos = _FIXED.size
    if version != TOKEN_VERSION:
        raise ProtocolError("bad_token", f"token version {version}")
    claims = TokenClaims(room=r.str8(), slot=slot, user=r.str8(), expires=expires, role=role, nonce=nonce)
    r.done()
    if role not in (PLAYER, SPECTATOR) or slot < -1:
        raise ProtocolError("bad_token", "role or slot out of range")
    if now_wall >= expires:
        raise ProtocolError("expired_token", f"token expired {now_wall - expires:.0f} s ago")
    if room is not None and claims.room != room:
        raise ProtocolError("wrong_room", f"token is for room {claims.room!r}, this is {room!r}")
    return claims


def peek_room(token: bytes) -> str | None:
    """The room a token claims, read without verifying it (None if unreadable). For routing
    a handshake to a room only: the room verifies the token before acting on it."""
    if len(token) <= _FIXED.size or token[0] != TOKEN_VERSION:
        return None
    n = token[_FIXED.size]
    raw = token[_FIXED.size + 1 : _FIXED.size + 1 + n]
    if len(raw) != n:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def token_to_text(token: bytes) -> str:
    """A token as URL-safe base64 text (what ``ticksync token`` prints and ``--token`` takes)."""
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def token_from_text(text: str) -> bytes:
    """The token bytes of :func:`token_to_text`'s text (UsageError for text that is not)."""
    text = text.strip()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise UsageError("that is not a ticksync token (expected base64url text)") from None
