# cython: annotation_typing=False
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

__all__ = ["MAX_RUN", "TOO_FAR", "pack_run", "parse_run", "scan_run", "decode_run", "InputBuffer", "StampedInputs"]

MAX_RUN = 255  # inputs in one packet
# What InputBuffer.put_run returns for a run reaching past ``current + max_ahead`` (a client
# whose clock ran ahead: common after a stall, so a status, not an exception). Not -1,
# which the compiled build keeps for errors.
TOO_FAR = -2
_RUN = struct.Struct("<IB")  # first tick, count
_RUN_HEAD = 5


def pack_run(first: int, records: np.ndarray) -> bytes:
    """``records``: (n, itemsize) uint8 for ticks first..first+n-1, 1 <= n <= 255."""
    n = len(records)
    if not 1 <= n <= MAX_RUN:
        raise UsageError(f"{n} inputs in one run; 1..{MAX_RUN}")
    diff = records[1:] != records[:-1]
    return b"".join(
        (_RUN.pack(first, n), records[0].tobytes(), np.packbits(diff, axis=1, bitorder="little").tobytes(), records[1:][diff].tobytes())
    )


def scan_run(data: bytes, pos: int, itemsize: int) -> tuple[int, int, int]:
    """Check the packed run at ``data[pos:]`` without decoding it: (first tick, count, the
    offset just past it). Raises ProtocolError for a truncated or malformed run.

    ``data`` is bytes (as the run's readers here take it: compiled, its bytes are read in
    place, where a typed buffer view would cost an acquisition per packet)."""
    size = len(data)
    if pos < 0 or pos + _RUN_HEAD + itemsize > size:
        raise ProtocolError("truncated", f"input run at offset {pos} of a {size}-byte packet")
    high = data[pos + 3]  # (a 64-bit variable when compiled: shifted by 24, a C int turns negative)
    first = data[pos] | (data[pos + 1] << 8) | (data[pos + 2] << 16) | (high << 24)
    count = data[pos + 4]
    if count == 0:
        raise ProtocolError("bad_input", "empty input run")
    width = (itemsize + 7) // 8
    masks_at = pos + _RUN_HEAD + itemsize
    changed_at = masks_at + (count - 1) * width
    if changed_at > size:
        raise ProtocolError("truncated", "input run's masks run past the packet")
    top = itemsize - 8 * (width - 1)  # bits used in a record's last mask byte
    changed = 0
    k = masks_at
    while k < changed_at:
        for b in range(width):
            m = data[k + b]
            if b == width - 1 and m >> top:
                raise ProtocolError("bad_input", "stray byte-mask bits")
            while m:
                m &= m - 1
                changed += 1
        k += width
    end = changed_at + changed
    if end > size:
        raise ProtocolError("truncated", "input run's changed bytes run past the packet")
    return first, count, end


def decode_run(data: bytes, pos: int, itemsize: int, count: int, out) -> None:
    """Rebuild the ``count`` records of the run at ``data[pos:]`` (already checked by
    :func:`scan_run`) into ``out``, a flat uint8 buffer of at least count * itemsize:
    record 0 whole, then each record from the one before, with its changed bytes."""
    width = (itemsize + 7) // 8
    head = pos + _RUN_HEAD
    for i in range(itemsize):
        out[i] = data[head + i]
    mask_at = head + itemsize
    k = mask_at + (count - 1) * width  # the next changed byte
    for j in range(1, count):
        row = j * itemsize
        for i in range(itemsize):
            out[row + i] = out[row - itemsize + i]
        for b in range(width):
            m = data[mask_at + b]
            i = 8 * b
            while m:
                if m & 1:
                    out[row + i] = data[k]
                    k += 1
                m >>= 1
                i += 1
        mask_at += width


def parse_run(r: Reader, itemsize: int) -> tuple[int, np.ndarray]:
    """(first tick, (n, itemsize) uint8 records) from a reader at a packed run."""
    data = r.data if type(r.data) is bytes else bytes(r.data)
    first, count, end = scan_run(data, r.pos, itemsize)
    records = np.empty(count * itemsize, np.uint8)
    decode_run(data, r.pos, itemsize, count, records)
    r.take(end - r.pos)
    return first, records.reshape(count, itemsize)


class InputBuffer:
    """Server side: inputs that arrived for ticks not closed yet, per player slot.

    A ring indexed by tick % size holds them with the tick beside each, so closing a tick
    is a few vectorized operations whatever the player count. A slot with no input for the
    tick repeats its previous one (the late player suffers, nobody waits).

    Compiled where the install has a C compiler (``inputs.pxd`` types it): the ring is then
    written through typed views, a packet's run decoded straight from its bytes.
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
        # Flat views of the same arrays (contiguous), for the per-record writes.
        self._flat_data = self._data.reshape(-1)
        self._flat_tick = self._tick.reshape(-1)
        self._newest = self.newest
        self._scratch = np.zeros(MAX_RUN * itemsize, np.uint8)  # one decoded run

    def put(self, slot: int, first: int, records: np.ndarray, current: int) -> int:
        """Store inputs for ticks >= ``current`` (the next tick to close). Returns how many
        of them arrived too late for their tick and were new to us (resends are not late),
        or TOO_FAR (nothing stored) for ticks beyond ``current + max_ahead``. Ticks already
        received are not taken again: clients never restamp a tick, so a resend can only
        repeat them (or, from a hostile client, try to change the past)."""
        flat = np.ascontiguousarray(records, np.uint8).reshape(-1)
        return self._store(slot, first, len(records), flat, current)

    def put_run(self, slot: int, data: bytes, pos: int, current: int, until: int = -1) -> int:
        """:meth:`put` of the packed run at ``data[pos:]``, decoded straight from the
        packet (bytes); the run must end at ``until`` (-1: the packet's end). Raises
        ProtocolError (and stores nothing) for a malformed run; TOO_FAR for one reaching
        past ``current + max_ahead``."""
        first, count, end = scan_run(data, pos, self.itemsize)
        if until < 0:
            until = len(data)
        if end != until:
            raise ProtocolError("trailing_bytes", f"the input run ends at {end}, not {until}")
        decode_run(data, pos, self.itemsize, count, self._scratch)
        return self._store(slot, first, count, self._scratch, current)

    def _store(self, slot: int, first: int, count: int, records, current: int) -> int:
        last = first + count - 1
        if last > current + self.max_ahead:
            return TOO_FAR
        newest = self._newest[slot]
        if last > newest:
            self._newest[slot] = last
        itemsize = self.itemsize
        late = 0
        # Ticks up to ``newest`` came before (clients never restamp a tick): only the new
        # tail is stored, usually one record.
        for j in range(max(0, newest + 1 - first), count):
            t = first + j
            if t < current:
                late += 1
                continue
            row = (t % self._size) * self.players + slot
            for i in range(itemsize):
                self._flat_data[row * itemsize + i] = records[j * itemsize + i]
            self._flat_tick[row] = t
        return late

    def reset(self, slot: int) -> None:
        """A new session took ``slot``: forget what the previous one stamped."""
        self._tick[:, slot] = -1
        self.newest[slot] = -1

    def close(self, tick: int, present: np.ndarray, used: np.ndarray, missed: np.ndarray, applied=None) -> tuple:
        """Inputs for ``tick``: (raw (players, itemsize) uint8, have mask, present slots
        without an input). Absent slots get the neutral (zero) input; present ones without
        an input repeat their last. Per present slot, ``used`` / ``missed`` (int64) count
        the ticks closed with its input and without, and ``applied`` (int64, or None) takes
        ``tick`` where its input was there. One pass over the slots: the server closes a
        tick 60 times a second, and as numpy calls this was a dozen small-array operations."""
        raw = np.empty((self.players, self.itemsize), np.uint8)
        have = np.zeros(self.players, np.uint8)
        stamp = applied is not None
        missing = self._close_into(
            tick, present.view(np.uint8), raw.reshape(-1), self.last.reshape(-1), have, used, missed, applied if stamp else used, stamp
        )
        self.last = raw
        return raw, have.view(bool), missing

    def _close_into(self, tick: int, here, out, last, have, used, missed, applied, stamp: bool) -> int:
        players = self.players
        itemsize = self.itemsize
        first = (tick % self._size) * players
        missing = 0
        for slot in range(players):
            at = slot * itemsize
            got = self._flat_tick[first + slot] == tick
            if got:
                have[slot] = 1
            if not here[slot]:
                for i in range(itemsize):
                    out[at + i] = 0
            elif got:
                src = (first + slot) * itemsize
                for i in range(itemsize):
                    out[at + i] = self._flat_data[src + i]
                used[slot] += 1
                if stamp:
                    applied[slot] = tick
            else:
                for i in range(itemsize):
                    out[at + i] = last[at + i]
                missed[slot] += 1
                missing += 1
        return missing


class StampedInputs:
    """Client side: the inputs it stamped, by tick, to resend until acked and to predict with."""

    SIZE = 1024  # far more than can be unacked: at most 255 are resent

    def __init__(self, itemsize: int):
        self._data = np.zeros((self.SIZE, itemsize), np.uint8)
        self._tick = np.full(self.SIZE, -1, np.int64)
        self.newest = -1

    def stamp(self, first: int, last: int, record: np.ndarray) -> None:
        """Stamp ``record`` onto ticks first..last (never onto ticks already stamped)."""
        if self.newest > last + self.SIZE // 4:
            # The server's clock went back far (a new estimate after a reconnect): inputs
            # stamped that far ahead would wait or be dropped as from the future. Re-stamp.
            self._tick[:] = -1
            self.newest = -1
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
        """(first tick, records) of what to resend: everything after ``acked`` (at most 255),
        starting after the newest tick never stamped. A client that stalled while the
        server's clock moved on stamps past a gap, and the ring's rows there hold older
        ticks' inputs: a run over them would send those as this tick's (the browser client
        keeps the same rule)."""
        first = max(acked + 1, self.newest - (MAX_RUN - 1))
        if first > self.newest:
            return first, None
        ticks = np.arange(first, self.newest + 1)
        gaps = np.flatnonzero(self._tick[ticks % self.SIZE] != ticks)
        if len(gaps):
            first = int(ticks[gaps[-1]]) + 1
            if first > self.newest:
                return first, None
        return first, self._data[np.arange(first, self.newest + 1) % self.SIZE]
