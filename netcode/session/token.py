"""Connect tokens: sealed, expiring proof of which room and slot a client may play, and
the keys of its sessions.

A matchmaker (or ``ticksync token``) that knows the server secret mints a token per
player; the client presents it in the handshake and can only ever act for the slot the
token names (or, with slot -1, the slot the server assigns to that user id, the same one on
every reconnect). Like netcode.io's connect tokens, a token carries a private part sealed
for the server (AES-256-GCM under a key derived from the server secret): the
client-to-server and server-to-client keys of its sessions. The minter hands the client
the same two keys beside the token: what :func:`mint_token` returns (the *client token*)
is the wire token followed by the keys, and the client sends only the wire token. A wire
token sniffed off the network is useless without the keys (the handshake asks for proof
of them and every session packet is sealed with them), but the client token must still
reach the player privately (HTTPS).

Wire token layout (little-endian)::

    u8 version (2) | u8 role (0 player, 1 spectator) | i16 slot | u64 expires (unix s)
    | 12 bytes nonce | u8 len + room (UTF-8) | u8 len + user id (UTF-8)
    | 64 bytes sealed keys | 16 bytes GCM tag

The public part (everything before the sealed keys) is the associated data, so it cannot
be changed either. Client token: wire token | 32 bytes client-to-server key | 32 bytes
server-to-client key.
"""

from __future__ import annotations

import base64
import hmac
import os
import struct
from dataclasses import dataclass, field

from netcode.errors import ProtocolError, UsageError
from netcode.session.crypto import KEY_SIZE, TAG_SIZE, InvalidTag, token_cipher
from netcode.session.wire import Reader

__all__ = [
    "TokenClaims",
    "mint_token",
    "verify_token",
    "peek_room",
    "require_secret",
    "token_to_text",
    "token_from_text",
    "split_token",
    "KEYS_SIZE",
    "PLAYER",
    "SPECTATOR",
]

TOKEN_VERSION = 2
PLAYER, SPECTATOR = 0, 1
NONCE_SIZE = 12
KEYS_SIZE = 2 * KEY_SIZE  # client-to-server key, server-to-client key
_SEALED = KEYS_SIZE + TAG_SIZE
_FIXED = struct.Struct("<BBhQ12s")
MIN_TOKEN = _FIXED.size + 2 + _SEALED
MAX_TOKEN = MIN_TOKEN + 64 + 64


@dataclass(frozen=True)
class TokenClaims:
    room: str
    slot: int  # -1: the server assigns one (stable per user id)
    user: str
    expires: int  # unix seconds
    role: int = PLAYER
    nonce: bytes = b""
    keys: bytes = field(default=b"", repr=False)  # client-to-server key, server-to-client key (never logged)

    @property
    def spectator(self) -> bool:
        return self.role == SPECTATOR


MIN_SECRET = 16


def require_secret(secret: bytes) -> None:
    """Refuse a server secret too short to sign tokens and cookies with."""
    if len(secret) < MIN_SECRET:
        raise UsageError(f"the server secret must be at least {MIN_SECRET} bytes")


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
    keys: bytes | None = None,
) -> bytes:
    """A client token: the sealed wire token, then the session keys the client keeps.
    ``expires`` is unix time in seconds (the server's wall clock). ``nonce`` (12 bytes) and
    ``keys`` (64) are random unless given (test vectors; never reuse a nonce with one secret)."""
    require_secret(secret)
    if not -1 <= slot <= 32767:
        raise UsageError(f"slot {slot} out of range (-1 for server-assigned)")
    if role not in (PLAYER, SPECTATOR):
        raise UsageError(f"unknown role {role}")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    keys = os.urandom(KEYS_SIZE) if keys is None else keys
    if len(nonce) != NONCE_SIZE or len(keys) != KEYS_SIZE:
        raise UsageError(f"a token nonce is {NONCE_SIZE} bytes and its keys {KEYS_SIZE}")
    public = _FIXED.pack(TOKEN_VERSION, role, slot, int(expires), nonce) + _text("room", room) + _text("user", user)
    return public + token_cipher(secret).encrypt(nonce, keys, public) + keys


def _wire_length(token: bytes) -> int:
    """How long the wire token at the start of ``token`` is (0 if it is not one)."""
    if len(token) < MIN_TOKEN or token[0] != TOKEN_VERSION:
        return 0
    at = _FIXED.size
    at += 1 + token[at]  # room
    if at >= len(token):
        return 0
    at += 1 + token[at]  # user
    return at + _SEALED


def split_token(token: bytes) -> tuple[bytes, bytes]:
    """(wire token, keys) of a client token; UsageError for bytes that are not one (a
    version-1 token, or a wire token without the keys its minter should have handed over)."""
    n = _wire_length(token)
    if not n or len(token) != n + KEYS_SIZE:
        raise UsageError(
            "that is not a ticksync client token (version 2: the connect token and its session keys); "
            "mint a new one with `ticksync token` or the server's join API"
        )
    return bytes(token[:n]), bytes(token[n:])


def verify_token(secret: bytes, token: bytes, *, now_wall: float, room: str | None = None) -> TokenClaims:
    """Claims (with the session keys) of a valid wire token, or ProtocolError naming why it
    is refused. A client token is accepted too when the keys beside it are the sealed ones."""
    if token[:1] not in (b"", bytes([TOKEN_VERSION])):
        raise ProtocolError("bad_token", f"token version {token[0]}, this server reads {TOKEN_VERSION}")
    n = _wire_length(token)
    if not n or len(token) not in (n, n + KEYS_SIZE) or n > MAX_TOKEN:
        raise ProtocolError("bad_token", f"token of {len(token)} bytes")
    public, sealed, beside = token[: n - _SEALED], token[n - _SEALED : n], token[n:]
    version, role, slot, expires, nonce = _FIXED.unpack_from(public)
    try:
        keys = token_cipher(secret).decrypt(nonce, bytes(sealed), bytes(public))
    except InvalidTag:
        raise ProtocolError("forged_token", "not sealed with this server's secret") from None
    if beside and not hmac.compare_digest(beside, keys):
        raise ProtocolError("bad_token", "the keys beside the token are not the ones it seals")
    r = Reader(public, _FIXED.size)
    claims = TokenClaims(room=r.str8(), slot=slot, user=r.str8(), expires=expires, role=role, nonce=nonce, keys=keys)
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
