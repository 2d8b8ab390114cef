# cython: annotation_typing=False
# distutils: libraries = crypto
"""One direction of a session's packet sealing: AES-256-GCM under one key, the session header
as associated data, the nonce four zero bytes and the sender's 64-bit send counter
(:mod:`netcode.session.crypto` says why; PROTOCOL.md gives every byte).

Interpreted, this is ``cryptography``'s AESGCM. Compiled (``aead.pxd``), it keeps one OpenSSL
cipher context for its key and only sets the nonce per packet: ``cryptography`` copies its
context (and frees the copy) on every call, about half a microsecond that a server opening
6000 inputs and sealing 3000 snapshots a second pays per packet, with 200 contexts evicting
each other from the cache. Both produce the same bytes (tests/test_compiled.py compares them).
"""

from __future__ import annotations

import cython

from netcode.session.crypto import AESGCM, TAG_SIZE, InvalidTag, packet_nonce

__all__ = ["PacketAead"]


class PacketAead:
    """Seals (``encrypt``) or opens packets with one session key."""

    def __init__(self, key: bytes, encrypt: bool):
        self.aead = AESGCM(key)  # the reference construction (and tests seal variants with it)
        self.encrypt = encrypt
        if cython.compiled:
            if len(key) != 32:
                raise ValueError("AES-256-GCM takes a 32-byte key")
            self._ctx = EVP_CIPHER_CTX_new()
            if self._ctx == cython.NULL or not EVP_CipherInit_ex(self._ctx, EVP_aes_256_gcm(), cython.NULL, key, cython.NULL, 1 if encrypt else 0):
                raise MemoryError("OpenSSL: no AES-256-GCM context")

    def __dealloc__(self):
        if self._ctx != cython.NULL:
            EVP_CIPHER_CTX_free(self._ctx)

    def seal(self, head: bytes, payload: bytes, counter: int, lead: bytes = b"") -> bytes:
        """``head``, then ``lead + payload`` sealed as the ``counter``-th send, then the tag.
        ``lead``: a header of the caller's kept apart from a payload many packets share
        (compiled, the packet is assembled in one buffer and sealed in place, so the two are
        never joined first)."""
        if not cython.compiled:
            return head + self.aead.encrypt(packet_nonce(counter), lead + payload, head)
        if not self.encrypt:
            raise TypeError("this PacketAead opens packets")
        h = len(head)
        k = len(lead)
        p = k + len(payload)
        packet = PyBytes_FromStringAndSize(cython.NULL, h + p + TAG_SIZE)
        out = cython.cast(cython.p_uchar, PyBytes_AS_STRING(packet))
        memcpy(out, PyBytes_AS_STRING(head), h)
        memcpy(out + h, PyBytes_AS_STRING(lead), k)
        memcpy(out + h + k, PyBytes_AS_STRING(payload), p - k)
        _nonce(self._iv, counter)
        # The plaintext is encrypted in place (GCM allows an output that is exactly its input).
        if not (EVP_CipherInit_ex(self._ctx, cython.NULL, cython.NULL, cython.NULL, self._iv, 1)
                and EVP_CipherUpdate(self._ctx, cython.NULL, cython.address(n), out, h)
                and EVP_CipherUpdate(self._ctx, out + h, cython.address(n), out + h, p)
                and EVP_CipherFinal_ex(self._ctx, out + h + p, cython.address(n))
                and EVP_CIPHER_CTX_ctrl(self._ctx, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, out + h + p)):
            raise RuntimeError("OpenSSL failed to seal a packet")
        return packet

    def open(self, packet: bytes, h: int, counter: int) -> bytes:
        """``packet``'s first ``h`` bytes (the associated data), then the rest opened as the
        ``counter``-th send; raises InvalidTag unless it was sealed with this key as that send."""
        if not cython.compiled:
            head = packet[:h]
            return head + self.aead.decrypt(packet_nonce(counter), packet[h:], head)
        if self.encrypt:
            raise TypeError("this PacketAead seals packets")
        p = len(packet) - h - TAG_SIZE
        if p < 0:
            raise InvalidTag()
        src = cython.cast(cython.p_uchar, PyBytes_AS_STRING(packet))
        opened = PyBytes_FromStringAndSize(cython.NULL, h + p)
        out = cython.cast(cython.p_uchar, PyBytes_AS_STRING(opened))
        memcpy(out, src, h)
        _nonce(self._iv, counter)
        memcpy(self._tag, src + h + p, TAG_SIZE)  # SET_TAG takes a writable pointer
        if not (EVP_CipherInit_ex(self._ctx, cython.NULL, cython.NULL, cython.NULL, self._iv, 0)
                and EVP_CipherUpdate(self._ctx, cython.NULL, cython.address(n), src, h)
                and EVP_CipherUpdate(self._ctx, out + h, cython.address(n), src + h, p)
                and EVP_CIPHER_CTX_ctrl(self._ctx, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, self._tag)):
            raise RuntimeError("OpenSSL failed to open a packet")
        if EVP_CipherFinal_ex(self._ctx, out + h + p, cython.address(n)) != 1:
            raise InvalidTag()  # the tag compared in constant time by OpenSSL
        return opened


def _nonce(iv, counter):
    """The packet nonce (:data:`crypto.packet_nonce`) into ``iv``: four zero bytes, then the
    counter little-endian."""
    for i in range(4):
        iv[i] = 0
    for i in range(8):
        iv[4 + i] = (counter >> (8 * i)) & 0xFF
