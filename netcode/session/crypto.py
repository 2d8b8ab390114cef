"""The session's cryptography: AES-256-GCM for tokens and packets, keys derived by HMAC-SHA256.

* A connect token's private part (the two session keys) is sealed with the *token key*,
  derived from the server secret, so only a server holding the secret can read it; the
  client receives the same keys in clear beside the token (over HTTPS, from whoever
  minted it).
* Each session derives its packet keys from the token's keys, the client's handshake nonce
  and the server's session id, so two sessions of one token (reconnects) never share a
  key and so never repeat a nonce.
* Every session packet is sealed with the sender's key: the 17 bytes of prefix and session
  header are the associated data, the nonce is four zero bytes and the sender's 64-bit
  send counter (the wire carries its low 16 bits; the receiver extends them).
* A client proves it holds the keys before the server admits it (``proof`` in
  CHALLENGE_RESPONSE), so a sniffed token replayed from another address gets nowhere.

AES-GCM rather than ChaCha20-Poly1305 because it is what browsers' WebCrypto offers, so
UDP and WebSocket sessions are one construction. PROTOCOL.md specifies every byte.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from netcode.session.wire import TAG_SIZE  # the GCM tag every sealed packet and token ends with

__all__ = [
    "AESGCM",
    "InvalidTag",
    "KEY_SIZE",
    "TAG_SIZE",
    "PROOF_SIZE",
    "packet_nonce",
    "token_cipher",
    "session_keys",
    "handshake_proof",
    "is_loopback",
]

KEY_SIZE = 32  # AES-256
PROOF_SIZE = 16
#: ``packet_nonce(counter)``: the 12-byte nonce of the session packet a sender sealed as its
#: ``counter``-th send: four zero bytes, then the counter (a bound method, not a function:
#: every packet each way calls it).
packet_nonce = struct.Struct("<4xQ").pack


def _derive(key: bytes, label: bytes, data: bytes = b"") -> bytes:
    return hmac.new(key, label + b"\0" + data, hashlib.sha256).digest()


@functools.lru_cache(maxsize=16)
def token_cipher(secret: bytes) -> AESGCM:
    """The AEAD that seals and opens the private part of this server secret's tokens."""
    return AESGCM(_derive(secret, b"ticksync-token-key"))


def session_keys(c2s: bytes, s2c: bytes, client_nonce: int, session_id: int) -> tuple[bytes, bytes]:
    """(client-to-server, server-to-client) packet keys of one session of a token."""
    salt = struct.pack("<QI", client_nonce, session_id)
    return _derive(c2s, b"ticksync-session-c2s", salt), _derive(s2c, b"ticksync-session-s2c", salt)


def handshake_proof(c2s: bytes, client_nonce: int, cookie_time: int, cookie: bytes) -> bytes:
    """What CHALLENGE_RESPONSE carries to show its sender holds the token's client key."""
    return _derive(c2s, b"ticksync-proof", struct.pack("<QI", client_nonce, cookie_time) + cookie)[:PROOF_SIZE]


def is_loopback(addr) -> bool:
    """Whether a transport address is on this machine's loopback (the only place a lab may
    run sessions in plaintext). Simulated and WebSocket addresses are not."""
    host = addr[0] if isinstance(addr, tuple) and addr else addr
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
