"""Input frames: one tick's inputs for every player slot, delta-encoded against the tick before.

An input frame is ``players`` fixed-size records (the game's ``input_dtype``) plus a
*missing* mask: slots whose input did not reach the server in time (their previous input
was repeated) or who are not connected (neutral input). Consecutive frames differ in few
bytes, so a frame is sent as what changed since the previous one::

    u8 flags        bit0 CHANGED, bit1 CHANGED_SPARSE, bit2 MISSING, bit3 MISSING_SPARSE
    [changed slots] bitmask of ceil(players/8) bytes, or (sparse) varint count + varint gaps
    [byte masks]    per changed slot, ceil(itemsize/8) bytes: bit j = record byte j changed
    [bytes]         the changed bytes, slot by slot, in record order
    [missing slots] as for changed slots

An unchanged frame with everyone on time is one byte. Slot lists pick whichever of bitmask
or sparse list is shorter. :class:`FrameLog` keeps the encoded frames of a match in one
contiguous buffer, so the run of frames a client has not acked is a single slice: every
client that acked the same frame gets the same bytes, built once.
"""

from __future__ import annotations

import bisect

import numpy as np

from netcode.errors import ProtocolError, UsageError
from netcode.session.wire import Reader, varint

__all__ = ["encode_frame", "decode_frame", "skip_frame", "encode_slots", "decode_slots", "FrameLog"]

CHANGED, CHANGED_SPARSE, MISSING, MISSING_SPARSE = 1, 2, 4, 8
_KNOWN = CHANGED | CHANGED_SPARSE | MISSING | MISSING_SPARSE


def encode_slots(slots: np.ndarray, players: int) -> tuple[bytes, bool]:
    """(bytes, sparse?) for an ascending array of slot indexes: bitmask or gap list."""
    mask_size = (players + 7) // 8
    if len(slots) < mask_size:
        # Fewer slots than mask bytes (a handful, every tick): a Python loop costs a tenth of
        # np.diff and the int conversions.
        sparse = bytearray(varint(len(slots)))
        prev = -1
        for s in slots.tolist():
            sparse += varint(s - prev - 1)
            prev = s
        if len(sparse) < mask_size:
            return bytes(sparse), True
    bits = np.zeros(mask_size * 8, dtype=bool)
    bits[slots] = True
    return np.packbits(bits, bitorder="little").tobytes(), False


def decode_slots(r: Reader, sparse: bool, players: int) -> np.ndarray:
    if sparse:
        n = r.varint(players)
        if n == 0:
            raise ProtocolError("bad_frame", "empty slot list")
        slots = np.empty(n, dtype=np.intp)
        s = -1
        for i in range(n):
            s += r.varint(players) + 1
            slots[i] = s
        if s >= players:
            raise ProtocolError("bad_frame", f"slot {s} of {players}")
        return slots
    mask_size = (players + 7) // 8
    bits = np.unpackbits(np.frombuffer(r.view(mask_size), np.uint8), bitorder="little")
    if bits[players:].any():
        raise ProtocolError("bad_frame", "slot bit beyond the player count")
    slots = np.flatnonzero(bits)
    if not len(slots):
        raise ProtocolError("bad_frame", "empty slot mask")
    return slots


def encode_frame(prev: np.ndarray, cur: np.ndarray, missing: np.ndarray) -> bytes:
    """Encode ``cur`` against ``prev``; both (players, itemsize) uint8, ``missing`` (players,) bool."""
    players = cur.shape[0]
    diff = cur != prev
    rows = np.flatnonzero(diff.any(axis=1))
    flags = 0
    parts: list[bytes] = []
    if len(rows):
        slots, sparse = encode_slots(rows, players)
        flags |= CHANGED | (CHANGED_SPARSE if sparse else 0)
        sub = diff[rows]
        parts += [slots, np.packbits(sub, axis=1, bitorder="little").tobytes(), cur[rows][sub].tobytes()]
    gone = np.flatnonzero(missing)
    if len(gone):
        slots, sparse = encode_slots(gone, players)
        flags |= MISSING | (MISSING_SPARSE if sparse else 0)
        parts.append(slots)
    return bytes([flags]) + b"".join(parts)


def decode_frame(r: Reader, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one frame against ``prev`` (players, itemsize) uint8; returns (cur, missing)
    where missing is None when every slot was on time. An unchanged frame returns ``prev``
    itself (frames are never modified in place)."""
    players, itemsize = prev.shape
    flags = r.u8()
    if flags == 0:  # the common case: nothing changed, nobody late
        return prev, None
    if flags & ~_KNOWN:
        raise ProtocolError("bad_frame", f"unknown frame flags {flags:#x}")
    cur = prev
    if flags & CHANGED:
        cur = prev.copy()
        rows = decode_slots(r, bool(flags & CHANGED_SPARSE), players)
        width = (itemsize + 7) // 8
        masks = np.frombuffer(r.view(len(rows) * width), np.uint8).reshape(len(rows), width)
        sub = np.unpackbits(masks, axis=1, bitorder="little")
        if sub[:, itemsize:].any() or not sub[:, :itemsize].any(axis=1).all():
            raise ProtocolError("bad_frame", "byte mask with stray or no bits")
        sub = sub[:, :itemsize].astype(bool)
        block = cur[rows]
        block[sub] = np.frombuffer(r.view(int(sub.sum())), np.uint8)
        cur[rows] = block
    missing = None
    if flags & MISSING:
        missing = np.zeros(players, dtype=bool)
        missing[decode_slots(r, bool(flags & MISSING_SPARSE), players)] = True
    return cur, missing


def _skip_slots(r: Reader, sparse: bool, players: int) -> int:
    """Advance past a slot list; returns how many slots it names."""
    if sparse:
        n = r.varint(players)
        for _ in range(n):
            r.varint(players)
        return n
    return int.from_bytes(r.view((players + 7) // 8), "little").bit_count()


def skip_frame(r: Reader, players: int, itemsize: int) -> None:
    """Advance past a frame without decoding it: for frames a client already holds, which
    every packet repeats until acked. Malformed bytes still raise ProtocolError."""
    flags = r.u8()
    if flags & ~_KNOWN:
        raise ProtocolError("bad_frame", f"unknown frame flags {flags:#x}")
    if flags & CHANGED:
        k = _skip_slots(r, bool(flags & CHANGED_SPARSE), players)
        width = (itemsize + 7) // 8
        r.take(int.from_bytes(r.view(k * width), "little").bit_count())
    if flags & MISSING:
        _skip_slots(r, bool(flags & MISSING_SPARSE), players)


class FrameLog:
    """The server's closed frames: raw inputs for recent ticks and their encodings in one
    buffer (frame t encoded against t-1), trimmed to a retention window."""

    def __init__(self, players: int, itemsize: int, retention: int):
        if retention < 4:
            raise UsageError("frame retention must be at least 4 ticks")
        self.players = players
        self.itemsize = itemsize
        self.retention = retention
        self.first = 0  # oldest tick still held
        self.next = 0  # the tick the next appended frame is for
        self._buf = bytearray()
        self._offsets: list[int] = [0]  # offsets[i] = start of frame (first + i) in _buf
        self._raw: list[np.ndarray] = []  # (players, itemsize) uint8 per held tick
        self._missing: list[np.ndarray] = []
        self._prev = np.zeros((players, itemsize), np.uint8)

    def append(self, inputs: np.ndarray, missing: np.ndarray) -> None:
        raw = np.frombuffer(inputs.tobytes(), np.uint8).reshape(self.players, self.itemsize)
        self._buf += encode_frame(self._prev, raw, missing)
        self._offsets.append(len(self._buf))
        self._raw.append(raw)
        self._missing.append(missing.copy())
        self._prev = raw
        self.next += 1
        if len(self._raw) > 2 * self.retention:
            self._trim(self.next - self.retention)

    def _trim(self, first: int) -> None:
        drop = first - self.first
        cut = self._offsets[drop]
        del self._buf[:cut]
        self._offsets = [o - cut for o in self._offsets[drop:]]
        del self._raw[:drop]
        del self._missing[:drop]
        self.first = first

    def restart(self, first: int, prev: np.ndarray | None = None) -> None:
        """Hold nothing, and take frames from tick ``first`` on (a match resumed there);
        ``prev``: the inputs of tick ``first - 1``, which frame ``first`` is encoded against
        (default: all zero), so a client holding that tick decodes it right."""
        self.first = self.next = first
        self._buf = bytearray()
        self._offsets = [0]
        self._raw, self._missing = [], []
        self._prev = np.zeros((self.players, self.itemsize), np.uint8)
        if prev is not None:
            self._prev = np.frombuffer(prev.tobytes(), np.uint8).reshape(self.players, self.itemsize).copy()

    def holds(self, tick: int) -> bool:
        return self.first <= tick < self.next

    def raw(self, tick: int) -> np.ndarray:
        return self._raw[tick - self.first]

    def missing(self, tick: int) -> np.ndarray:
        return self._missing[tick - self.first]

    def absolute(self, tick: int) -> bytes:
        """Frame ``tick`` encoded against all-zero inputs (for a client with no baseline)."""
        return encode_frame(np.zeros_like(self._prev), self.raw(tick), self.missing(tick))

    def span(self, start: int, stop: int, budget: int) -> tuple[bytes, int]:
        """Encoded frames start..stop-1 (each against its predecessor), cut to at most
        ``budget`` bytes at a frame boundary. Returns (bytes, frames included)."""
        if start < self.first or stop > self.next or start > stop:
            raise UsageError(f"frames {start}..{stop} not held ({self.first}..{self.next})")
        i, j = start - self.first, stop - self.first
        base = self._offsets[i]
        if self._offsets[j] - base > budget:
            j = bisect.bisect_right(self._offsets, base + budget, i, j + 1) - 1
        return bytes(self._buf[base : self._offsets[j]]), j - i
