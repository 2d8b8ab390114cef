# cython: annotation_typing=False
"""Packet layout: the header every packet starts with, packet types, bounded readers.

Every datagram starts with a 4-byte prefix: protocol id ``0x5354`` ("TS" on the wire),
protocol version, packet type (low 7 bits; bit 7 of a session packet's type byte says its
ack fields are valid, i.e. its sender has received something). Handshake packets continue with their own body; packets
of an established session carry a 13-byte session header after the prefix: the session's
random 32-bit id (so an off-path sender who does not know it cannot inject), a 16-bit
sequence number, the newest sequence received from the peer, a 32-bit bitfield of the 32
sequences before that, and how long that newest packet waited before this one acked it
(so RTT samples measure the network, not the peer's send schedule). PROTOCOL.md specifies every byte.

Nothing is ever fragmented: every packet built is checked against the 1200-byte payload
budget, and every read is length-checked before a field is touched, so a short or lying
packet becomes a :class:`ProtocolError` (a counted drop), never an IndexError.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from netcode.errors import ProtocolError, UsageError

__all__ = [
    "PROTOCOL_ID",
    "PROTOCOL_VERSION",
    "MAX_PACKET",
    "UDP_IP_OVERHEAD",
    "PREFIX",
    "SESSION_HEADER",
    "SESSION_HEADER_SIZE",
    "SESSION_OVERHEAD",
    "TAG_SIZE",
    "ACK_VALID",
    "ACK_DELAY_UNIT",
    "PacketType",
    "Reader",
    "seq_newer",
    "seq_delta",
    "pack_prefix",
    "parse_prefix",
    "packet_type",
    "pack_session_header",
    "parse_session_header",
    "check_budget",
    "varint",
    "zigzag",
    "unzigzag",
]

PROTOCOL_ID = 0x5354  # b"TS" little-endian
PROTOCOL_VERSION = 3  # 2: sealed tokens, proof of keys, AES-GCM session packets; 3: server epoch in ACCEPTED, input tallies
MAX_PACKET = 1200  # UDP payload budget: fits any path MTU we care about, never fragmented
UDP_IP_OVERHEAD = 28  # IPv4 + UDP headers, for bandwidth accounting

PREFIX = struct.Struct("<HBB")  # protocol id, version, packet type
SESSION = struct.Struct("<IHHIB")  # session id, seq, ack, ack bits, ack delay
SESSION_HEADER = struct.Struct("<HBBIHHIB")
SESSION_HEADER_SIZE = SESSION_HEADER.size  # 17
TAG_SIZE = 16  # the AES-GCM tag that ends every sealed session packet
SESSION_OVERHEAD = SESSION_HEADER_SIZE + TAG_SIZE  # what a session adds to a payload
ACK_DELAY_UNIT = 0.0005  # seconds per unit of the ack-delay byte (saturates at 127.5 ms)
ACK_VALID = 0x80  # type-byte flag: the ack and ack bits of this session packet mean something
# pack_session_header's own references (C globals when compiled: no name lookups)
_PACK_HEADER = SESSION_HEADER.pack
_PROTOCOL_ID = PROTOCOL_ID
_PROTOCOL_VERSION = PROTOCOL_VERSION
_ACK_VALID = ACK_VALID
_MAX_U32 = 0xFFFFFFFF  # typed (wire.pxd): a literal this large would be a Python int in the compiled checks


class PacketType(IntEnum):
    # handshake (no session header)
    CONNECT_REQUEST = 0x01
    CHALLENGE = 0x02
    CHALLENGE_RESPONSE = 0x03
    ACCEPTED = 0x04
    DENIED = 0x05
    # session (session header follows the prefix)
    KEEPALIVE = 0x10
    DISCONNECT = 0x11
    # lockstep
    LS_INPUT = 0x20
    LS_FRAMES = 0x21
    LS_KEYFRAME = 0x22
    # state sync
    SS_INPUT = 0x30
    SS_SNAPSHOT = 0x31

    @property
    def is_handshake(self) -> bool:
        return self < 0x10


_TYPES = {int(t): t for t in PacketType}
_KNOWN = bytes(1 if code in _TYPES else 0 for code in range(128))  # by type code: a PacketType?


def packet_type(code: int) -> PacketType:
    """The PacketType of a type code already checked (by :func:`parse_prefix`), without
    the enum's constructor."""
    return _TYPES[code]


def pack_prefix(ptype: PacketType) -> bytes:
    return PREFIX.pack(PROTOCOL_ID, PROTOCOL_VERSION, ptype)


def parse_prefix(data: bytes) -> tuple[int, PacketType]:
    """(version, type) of a datagram, or ProtocolError. Version mismatches are returned,
    not raised, so the handshake can answer them with a reason."""
    version, code = prefix_codes(data)
    return version, _TYPES[code]


def prefix_codes(data) -> tuple[int, int]:
    """:func:`parse_prefix` as two numbers, (version, type code without ACK_VALID): what a
    receive path compares, with no enum looked up (C ints when compiled)."""
    d = data if type(data) is bytes else bytes(data)
    n = len(d)
    if n < 4:  # PREFIX.size
        raise ProtocolError("truncated", f"{n} bytes is shorter than the packet prefix")
    if n > MAX_PACKET:
        raise ProtocolError("oversized", f"{n} bytes is over the {MAX_PACKET}-byte budget")
    pid = d[0] | (d[1] << 8)
    if pid != PROTOCOL_ID:
        raise ProtocolError("not_ticksync", f"protocol id {pid:#06x}")
    ptype = d[3]
    code = ptype & 0x7F  # ~ACK_VALID
    if not _KNOWN[code]:
        raise ProtocolError("unknown_type", f"packet type {ptype:#04x}")
    return d[2], code


def pack_session_header(ptype: int, session_id: int, seq: int, ack: int | None, ack_bits: int, ack_delay: int = 0) -> bytes:
    """The prefix and session header. ``ack`` < 0 (or None): nothing received from the peer
    yet (the ack fields are then zero and the type byte says so). ``ack_delay``: how long
    the newest acked packet waited here, in ACK_DELAY_UNITs."""
    if ack is None or ack < 0:
        a = bits = delay = 0
    else:
        ptype |= _ACK_VALID
        a = ack
        bits = ack_bits
        delay = ack_delay
    # The ranges checked here, typed (struct's own checks would raise struct.error); then
    # packed by struct in one call and one allocation. (Byte by byte into a bytearray and
    # copied out, a header and its joining to a 65-byte payload took 330 ns compiled, 230 ns
    # this way: the bytearray and the bytes made of it are each a type call and an allocation.)
    if not (0 <= ptype <= 0xFF and 0 <= session_id <= _MAX_U32 and 0 <= seq <= 0xFFFF and 0 <= a <= 0xFFFF
            and 0 <= bits <= _MAX_U32 and 0 <= delay <= 0xFF):
        raise UsageError(f"session header field out of range: {(ptype, session_id, seq, a, bits, delay)}")
    return _PACK_HEADER(_PROTOCOL_ID, _PROTOCOL_VERSION, ptype, session_id, seq, a, bits, delay)


def parse_session_header(data) -> tuple[int, int, int, int, int]:
    """(session id, sequence, ack, ack bits, ack delay) of a session packet of at least
    SESSION_HEADER_SIZE bytes (the caller checks the length and the prefix)."""
    d = data if type(data) is bytes else bytes(data)
    if len(d) < SESSION_HEADER_SIZE:
        raise ProtocolError("truncated", "shorter than the session header")
    top = d[7]  # (64-bit variables when compiled: shifted by 24 a byte would overflow a C int)
    session_id = d[4] | (d[5] << 8) | (d[6] << 16) | (top << 24)
    top = d[15]
    bits = d[12] | (d[13] << 8) | (d[14] << 16) | (top << 24)
    return session_id, d[8] | (d[9] << 8), d[10] | (d[11] << 8), bits, d[16]


def check_budget(packet: bytes | bytearray, what: str = "packet") -> None:
    if len(packet) > MAX_PACKET:
        raise UsageError(f"{what} of {len(packet)} bytes is over the {MAX_PACKET}-byte budget")


def seq_newer(a: int, b: int) -> bool:
    """True when 16-bit sequence ``a`` is newer than ``b``, across wrap-around."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def seq_delta(a: int, b: int) -> int:
    """Signed distance a - b between 16-bit sequences, in [-32768, 32767]."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def zigzag(n: int) -> int:
    """Signed to unsigned, small magnitudes small: 0, -1, 1, -2 ... to 0, 1, 2, 3 ..."""
    return (n << 1) ^ (n >> 63) if n < 0 else n << 1


def unzigzag(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if n < 0:
        raise UsageError(f"varint of negative {n}")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_U8, _U16, _U32, _U64, _I16 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<Q", "<h"))


class Reader:
    """Length-checked reads over a packet; running past the end raises ProtocolError."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise ProtocolError("truncated", f"needed {n} bytes at offset {p}, packet has {self.end - p}")
        self.pos = p + n
        return p

    def u8(self) -> int:
        return _U8.unpack_from(self.data, self.take(1))[0]

    def u16(self) -> int:
        return _U16.unpack_from(self.data, self.take(2))[0]

    def i16(self) -> int:
        return _I16.unpack_from(self.data, self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack_from(self.data, self.take(4))[0]

    def u64(self) -> int:
        return _U64.unpack_from(self.data, self.take(8))[0]

    def bytes(self, n: int) -> bytes:
        p = self.take(n)
        return bytes(self.data[p : p + n])

    def view(self, n: int) -> memoryview:
        p = self.take(n)
        return memoryview(self.data)[p : p + n]

    def varint(self, limit: int = 1 << 63) -> int:
        shift = result = 0
        while True:
            b = self.u8()
            result |= (b & 0x7F) << shift
            if result > limit:
                raise ProtocolError("bad_varint", f"value over {limit}")
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ProtocolError("bad_varint", "more than 10 bytes")  # (a 64-bit value takes 10)

    def str8(self) -> str:
        raw = self.bytes(self.u8())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("bad_text", "not UTF-8") from None

    def done(self) -> None:
        """Packets must not carry trailing bytes we did not read."""
        if self.pos != self.end:
            raise ProtocolError("trailing_bytes", f"{self.end - self.pos} bytes after the last field")
