"""Tick-stamped player inputs, shared by both modes: the wire form of an input run, the
server's buffer of inputs waiting for their tick, and the client's record of what it stamped.

Clients stamp their controls onto future ticks and resend every input the server has not
acked, so one lost packet costs nothing. On the wire a run of inputs is the first record
whole, then one byte mask per later record (bit j: byte j differs from the record before)
and the changed bytes: a held input costs a byte per tick.
"""

from __future__ import annotations

import struct

import numpy as np

from netcode.errors import ProtocolError, UsageError
from netcode.session.wire import Reader

__all__ = ["MAX_RUN", "pack_run", "parse_run", "InputBuffer", "StampedInputs"]

MAX_RUN = 255  # inputs in one packet
_RUN = struct.Struct("<IB")  # first tick, count


def pack_run(first: int, records: np.ndarray) -> bytes:
    """``records``: (n, itemsize) uint8 for ticks first..first+n-1, 1 <= n <= 255."""
    n = len(records)
    if not 1 <= n <= MAX_RUN:
        raise UsageError(f"{n} inputs in one run; 1..{MAX_RUN}")
    diff = records[1:] != records[:-1]
    return b"".join(
        (_RUN.pack(first, n), records[0].tobytes(), np.packbits(diff, axis=1, bitorder="little").tobytes(), records[1:][diff].tobytes())
    )


def parse_run(r: Reader, itemsize: int) -> tuple[int, np.ndarray]:
    """(first tick, (n, itemsize) uint8 records) from a reader at a packed run."""
    first, n = _RUN.unpack_from(r.data, r.take(_RUN.size))
    if n == 0:
        raise ProtocolError("bad_input", "empty input run")
    width = (itemsize + 7) // 8
    head = r.bytes(itemsize)
    raw_masks = r.bytes((n - 1) * width)
    if not any(raw_masks):  # a held input: every record equals the first
        return first, np.frombuffer(head * n, np.uint8).reshape(n, itemsize)
    if width == 1:
        # Small records (the usual case): rebuild in plain Python, cheaper than numpy's
        # per-call overhead for a handful of bytes.
        if max(raw_masks) >> itemsize:
            raise ProtocolError("bad_input", "stray byte-mask bits")
        changed = r.bytes(sum(bin(m).count("1") for m in raw_masks))
        rec = bytearray(head)
        out = [head]
        k = 0
        for m in raw_masks:
            j = 0
            while m:
                if m & 1:
                    rec[j] = changed[k]
                    k += 1
                m >>= 1
                j += 1
            out.append(bytes(rec))
        return first, np.frombuffer(b"".join(out), np.uint8).reshape(n, itemsize)
    masks = np.frombuffer(raw_masks, np.uint8)
    bits = np.unpackbits(masks.reshape(n - 1, width), axis=1, bitorder="little")
    if bits[:, itemsize:].any():
        raise ProtocolError("bad_input", "stray byte-mask bits")
    diff = bits[:, :itemsize].astype(bool)
    changed = np.frombuffer(r.view(int(diff.sum())), np.uint8)
    head = np.frombuffer(head, np.uint8)
    # Rebuild each record from the one before: fill changed bytes, carry the rest down.
    rows = np.empty((n, itemsize), np.uint8)
    rows[0] = head
    rows[1:][diff] = changed
    src = np.where(diff, np.arange(1, n)[:, None], 0)
    np.maximum.accumulate(src, axis=0, out=src)  # last row (per byte) that set it
    rows[1:] = rows[src, np.arange(itemsize)]
    return first, rows


class InputBuffer:
    """Server side: inputs that arrived for ticks not closed yet, per player slot.

    A ring indexed by tick % size holds them with the tick beside each, so closing a tick
    is a few vectorized operations whatever the player count. A slot with no input for the
    tick repeats its previous one (the late player suffers, nobody waits).
    """

    def __init__(self, players: int, itemsize: int, max_ahead: int):
        self.players = players
        self.itemsize = itemsize
        self.max_ahead = max_ahead
        self._size = max_ahead + 1
        self._data = np.zeros((self._size, players, itemsize), np.uint8)
        self._tick = np.full((self._size, players), -1, np.int64)
        self.last = np.zeros((players, itemsize), np.uint8)
        self.newest = np.full(players, -1, np.int64)  # newest tick received per slot

    def put(self, slot: int, first: int, records: np.ndarray, current: int) -> int:
        """Store inputs for ticks >= ``current`` (the next tick to close). Returns how many
        of them arrived too late for their tick and were new to us (resends are not late).
        Ticks already received are not taken again: clients never restamp a tick, so a
        resend can only repeat them (or, from a hostile client, try to change the past).
        Raises ProtocolError for ticks beyond ``current + max_ahead``."""
        n = len(records)
        last = first + n - 1
        if last > current + self.max_ahead:
            raise ProtocolError("future_input", f"input for tick {last}, server is at {current}")
        newest = int(self.newest[slot])
        if last > newest:
            self.newest[slot] = last
        if n <= 8:  # the usual packet: a few ticks; plain Python beats numpy's call overhead
            # Ticks up to ``newest`` came before (clients never restamp a tick): only the
            # new tail is stored, usually one record.
            late = 0
            size, data, tick_of = self._size, self._data, self._tick
            for i in range(max(0, newest + 1 - first), n):
                t = first + i
                if t < current:
                    late += 1
                    continue
                data[t % size, slot] = records[i]
                tick_of[t % size, slot] = t
            return late
        ticks = np.arange(first, last + 1)
        new = ticks > newest
        keep = new & (ticks >= current)
        late = int(np.count_nonzero(new & (ticks < current)))
        if keep.any():
            rows = ticks[keep] % self._size
            self._data[rows, slot] = records[keep]
            self._tick[rows, slot] = ticks[keep]
        return late

    def reset(self, slot: int) -> None:
        """A new session took ``slot``: forget what the previous one stamped."""
        self._tick[:, slot] = -1
        self.newest[slot] = -1

    def close(self, tick: int, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs for ``tick``: (raw (players, itemsize) uint8, have mask). Absent slots get
        the neutral (zero) input; present ones without an input repeat their last."""
        row = tick % self._size
        have = self._tick[row] == tick
        raw = np.where(have[:, None], self._data[row], self.last)
        raw[~present] = 0
        self.last = raw
        return raw, have


class StampedInputs:
    """Client side: the inputs it stamped, by tick, to resend until acked and to predict with."""

    SIZE = 1024  # far more than can be unacked: at most 255 are resent

    def __init__(self, itemsize: int):
        self._data = np.zeros((self.SIZE, itemsize), np.uint8)
        self._tick = np.full(self.SIZE, -1, np.int64)
        self.newest = -1

    def stamp(self, first: int, last: int, record: np.ndarray) -> None:
        """Stamp ``record`` onto ticks first..last (never onto ticks already stamped)."""
        first = max(first, self.newest + 1, last - self.SIZE // 2)
        if first <= last:
            rows = np.arange(first, last + 1)
            self._data[rows % self.SIZE] = record
            self._tick[rows % self.SIZE] = rows
            self.newest = last

    def get(self, tick: int) -> np.ndarray | None:
        i = tick % self.SIZE
        return self._data[i] if self._tick[i] == tick else None

    def unacked(self, acked: int) -> tuple[int, np.ndarray | None]:
        """(first tick, records) of what to resend: everything after ``acked`` (at most 255)."""
        first = max(acked + 1, self.newest - (MAX_RUN - 1))
        if first > self.newest:
            return first, None
        return first, self._data[np.arange(first, self.newest + 1) % self.SIZE]
