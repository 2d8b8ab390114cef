"""Snapshot codec: quantized entity state, delta-encoded against a baseline, split into parts.

A snapshot is every replicated entity's quantized *codes* (one row per entity slot, one
column per field component) plus which slots the receiver should see, plus the game's small
``extras`` arrays. It travels as the difference from a *baseline* the receiver holds (the
newest snapshot it acked; none for a full snapshot):

* destroyed entities: ids only;
* created entities: every column, each packed at the width its largest value needs;
* updated entities: per column, which ones changed (a bit each, omitted when all or none
  did) and the zigzagged deltas, packed at the width the largest needs.

Entity ids are sent as gaps, bit-packed. Everything is numpy over whole columns; there is
no Python loop over entities. A snapshot bigger than one packet is cut into *parts* by
entity id range: each part carries the whole entities of its range against the same
baseline and applies on its own, so a lost part costs its entities one snapshot, not the
snapshot. A part's range also says which entities it vouches for (unchanged ones included),
which the client's interpolation uses.

Part layout (after the per-client prefix, see statesync)::

    u32 tick | u32 baseline (0xFFFFFFFF none) | u8 index | u8 count | varint lo | varint hi-lo
    u8 sections (1 EXTRAS, 2 DESTROY, 4 CREATE, 8 UPDATE), then each present section:
    EXTRAS  varint length, bytes
    DESTROY ids
    CREATE  ids, then per column: u8 width, values
    UPDATE  ids, then per column: u8 (mode << 6 | width), [changed bits], zigzag deltas
    ids = varint count, varint first id - lo, u8 gap width, count-1 gaps (id - previous - 1)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from engine.replication import Replication
from engine.state import State

from .bits import pack_uint, packed_size, unpack_uint, unzigzag_array, width_of, zigzag_array
from .errors import ProtocolError, UsageError
from .wire import Reader, varint

__all__ = ["SnapshotSchema", "SnapshotHistory", "DecodedPart", "encode_snapshot", "decode_part", "apply_part", "NO_BASE"]

NO_BASE = 0xFFFFFFFF
EXTRAS, DESTROY, CREATE, UPDATE = 1, 2, 4, 8
_HEAD = struct.Struct("<IIBB")
MODE_NONE, MODE_ALL, MODE_MASK = 0, 1, 2


class SnapshotSchema:
    """The columns a game's replication spec makes of its state, and the conversions."""

    def __init__(self, replication: Replication, template: State):
        if replication is None:
            raise UsageError("this game declares no replication spec, so it cannot run in state sync")
        self.replication = replication
        alive = template[replication.alive]
        if alive.dtype != np.bool_ or alive.ndim != 1:
            raise UsageError(f"replication alive array {replication.alive!r} must be a 1-d bool array")
        self.alive = replication.alive
        self.capacity = len(alive)
        self.fields = []  # (name, quantizer, first column, column count, shape, dtype)
        col = 0
        for name, q in replication.fields.items():
            arr = template[name]
            if arr.shape[0] != self.capacity:
                raise UsageError(f"replicated field {name!r} has {arr.shape[0]} rows, alive has {self.capacity}")
            width = int(np.prod(arr.shape[1:], dtype=np.int64))
            self.fields.append((name, q, col, width, arr.shape, arr.dtype))
            col += width
        self.columns = col
        self.extras = tuple(replication.extras)
        self.extras_size = sum(template[e].nbytes for e in self.extras)
        self.columns_of = {name: (c, c + w) for name, _, c, w, _, _ in self.fields}
        self.position = replication.position

    def quantize(self, state: State) -> tuple[np.ndarray, np.ndarray, bytes]:
        """(codes (capacity, columns) int64, alive (capacity,) bool, extras bytes)."""
        codes = np.empty((self.capacity, self.columns), np.int64)
        for name, q, c, w, _, _ in self.fields:
            codes[:, c : c + w] = q.quantize(state[name]).reshape(self.capacity, w)
        return codes, state[self.alive].copy(), b"".join(state[e].tobytes() for e in self.extras)

    def values(self, codes: np.ndarray, name: str) -> np.ndarray:
        """Dequantized values of one field for all rows of ``codes``."""
        for n, q, c, w, shape, dtype in self.fields:
            if n == name:
                return q.dequantize(codes[:, c : c + w], dtype).reshape((len(codes),) + shape[1:])
        raise KeyError(name)

    def apply(self, state: State, codes: np.ndarray, view: np.ndarray, extras: bytes | None) -> None:
        """Write a snapshot into ``state``: fields of entities in ``view``, alive = view."""
        for name, q, c, w, shape, dtype in self.fields:
            state[name][view] = q.dequantize(codes[view, c : c + w], dtype).reshape((-1,) + shape[1:])
        state[self.alive] = view
        if extras is not None and len(extras) == self.extras_size:
            offset = 0
            for e in self.extras:
                arr = state[e]
                arr.reshape(-1).view(np.uint8)[:] = np.frombuffer(extras, np.uint8, arr.nbytes, offset)
                offset += arr.nbytes


class SnapshotHistory:
    """The server's recent snapshots (codes, alive, extras) by tick, for baselines."""

    def __init__(self, schema: SnapshotSchema, depth: int = 64):
        self.depth = depth
        self.codes = np.zeros((depth, schema.capacity, schema.columns), np.int64)
        self.alive = np.zeros((depth, schema.capacity), bool)
        self.extras: list[bytes] = [b""] * depth
        self.ticks = np.full(depth, -1, np.int64)

    def add(self, tick: int, codes: np.ndarray, alive: np.ndarray, extras: bytes) -> None:
        i = tick % self.depth
        self.codes[i] = codes
        self.alive[i] = alive
        self.extras[i] = extras
        self.ticks[i] = tick

    def has(self, tick: int) -> bool:
        return tick >= 0 and self.ticks[tick % self.depth] == tick

    def index(self, tick: int) -> int:
        return tick % self.depth


# -- encoding ------------------------------------------------------------------------------
def _pack_ids(ids: np.ndarray, lo: int) -> bytes:
    gaps = np.diff(ids) - 1
    w = width_of(gaps)
    return varint(len(ids)) + varint(int(ids[0]) - lo) + bytes([w]) + pack_uint(gaps, w)


def _column_bytes(values: np.ndarray, w: int) -> bytes:
    return bytes([w]) + pack_uint(values, w)


def _update_bytes(z: np.ndarray) -> bytes:
    """One column of zigzagged deltas: which changed, and by how much."""
    changed = z != 0
    n = int(np.count_nonzero(changed))
    if n == 0:
        return bytes([MODE_NONE << 6])
    if n == len(z):
        w = width_of(z)
        return bytes([MODE_ALL << 6 | w]) + pack_uint(z, w)
    nz = z[changed]
    w = width_of(nz)
    return bytes([MODE_MASK << 6 | w]) + pack_uint(changed.astype(np.int64), 1) + pack_uint(nz, w)


def _encode_part(tick, base, index, count, lo, hi, extras, destroy, create, create_codes, update, update_z) -> bytes:
    sections = (EXTRAS if extras is not None else 0) | (DESTROY if len(destroy) else 0)
    sections |= (CREATE if len(create) else 0) | (UPDATE if len(update) else 0)
    out = [_HEAD.pack(tick, base, index, count), varint(lo), varint(hi - lo), bytes([sections])]
    if extras is not None:
        out += [varint(len(extras)), extras]
    if len(destroy):
        out.append(_pack_ids(destroy, lo))
    if len(create):
        out.append(_pack_ids(create, lo))
        out += [_column_bytes(col, width_of(col)) for col in create_codes.T]
    if len(update):
        out.append(_pack_ids(update, lo))
        out += [_update_bytes(col) for col in update_z.T]
    return b"".join(out)


def encode_snapshot(
    tick: int,
    codes: np.ndarray,
    view: np.ndarray,
    extras: bytes,
    *,
    budget: int,
    base_tick: int | None = None,
    base_codes: np.ndarray | None = None,
    base_view: np.ndarray | None = None,
    base_extras: bytes | None = None,
    include: np.ndarray | None = None,
    also_destroy: np.ndarray | None = None,
) -> list[bytes]:
    """Encode ``tick``'s snapshot (rows in ``view``) against a baseline, as parts of at most
    ``budget`` bytes. ``include`` (bool per entity) limits which creates and updates go now
    (a bandwidth budget's choice); destroys always go, ``also_destroy`` adds entities the
    receiver holds although they are not in ``base_view``."""
    n = len(view)
    if base_view is None:
        base_view = np.zeros(n, bool)
        base_codes = codes
    destroy_m = base_view & ~view
    if also_destroy is not None:
        destroy_m |= also_destroy
    create_m = view & ~base_view
    update_m = view & base_view & (codes != base_codes).any(axis=1)
    if include is not None:
        create_m &= include
        update_m &= include
    destroy = np.flatnonzero(destroy_m)
    create = np.flatnonzero(create_m)
    update = np.flatnonzero(update_m)
    create_codes = codes[create]
    update_z = zigzag_array(codes[update] - base_codes[update])
    send_extras = extras if (base_tick is None or extras != base_extras) else None
    base = NO_BASE if base_tick is None else base_tick

    # Upper bound of each entity's size in bits at the whole snapshot's widths, to cut parts
    # (a part's widths are never wider than the whole's).
    cw = np.array([width_of(c) for c in create_codes.T], np.int64) if len(create) else np.zeros(0, np.int64)
    uw = np.array([width_of(c) for c in update_z.T], np.int64) if len(update) else np.zeros(0, np.int64)
    cost = np.zeros(n, np.int64)
    cost[destroy] += width_of(np.diff(destroy))
    cost[create] += width_of(np.diff(create)) + int(cw.sum())
    if len(update):
        cost[update] += width_of(np.diff(update)) + len(uw) + (update_z != 0) @ uw
    cost[destroy_m | create_m | update_m] += 1  # so every affected entity counts
    ids = np.flatnonzero(cost)
    # Only the first part carries the extras: charge them to its room alone.
    room_bits = (budget - 48 - 6 * (codes.shape[1] + 2)) * 8
    first_room = room_bits - (len(send_extras) + 4 if send_extras is not None else 0) * 8
    if first_room <= 0:
        raise UsageError(f"snapshot budget {budget} is too small for this schema")
    cum = np.cumsum(cost[ids])
    cuts = [0]  # indexes into ids where parts start
    while cuts[-1] < len(ids):
        start = cuts[-1]
        before = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, before + (room_bits if start else first_room), side="right"))
        cuts.append(max(end, start + 1))
    if len(cuts) - 1 > 255:
        raise UsageError("snapshot needs more than 255 parts; raise the budget or replicate less")
    count = max(len(cuts) - 1, 1)
    parts = []
    for i in range(count):
        lo = 0 if i == 0 else int(ids[cuts[i]])
        hi = n if i == count - 1 else int(ids[cuts[i + 1]])
        d = destroy[(destroy >= lo) & (destroy < hi)]
        cm = (create >= lo) & (create < hi)
        um = (update >= lo) & (update < hi)
        part = _encode_part(
            tick, base, i, count, lo, hi, send_extras if i == 0 else None, d, create[cm], create_codes[cm], update[um], update_z[um]
        )
        if len(part) > budget:  # cannot happen while the estimate is an upper bound
            raise UsageError(f"snapshot part of {len(part)} bytes over the {budget}-byte budget")
        parts.append(part)
    return parts


# -- decoding ------------------------------------------------------------------------------
@dataclass
class DecodedPart:
    tick: int
    base: int | None
    index: int
    count: int
    lo: int
    hi: int
    extras: bytes | None
    destroy: np.ndarray
    create: np.ndarray
    create_codes: np.ndarray
    update: np.ndarray
    update_delta: np.ndarray


def _read_ids(r: Reader, lo: int, hi: int) -> np.ndarray:
    k = r.varint(hi - lo)
    if k == 0:
        raise ProtocolError("bad_snapshot", "empty id list")
    first = lo + r.varint(hi - lo)
    w = r.u8()
    if w > 32:
        raise ProtocolError("bad_snapshot", f"{w}-bit id gaps")
    gaps = unpack_uint(r.view(packed_size(k - 1, w)), k - 1, w)
    ids = first + np.concatenate(([0], np.cumsum(gaps + 1)))
    if ids[-1] >= hi:
        raise ProtocolError("bad_snapshot", f"entity ids outside [{lo}, {hi})")
    return ids


def decode_part(payload, capacity: int, columns: int, extras_size: int) -> DecodedPart:
    r = Reader(payload)
    tick, base, index, count = _HEAD.unpack_from(r.data, r.take(_HEAD.size))
    lo = r.varint(capacity)
    hi = lo + r.varint(capacity)
    if count == 0 or index >= count or hi > capacity:
        raise ProtocolError("bad_snapshot", f"part {index}/{count} range [{lo}, {hi}) of {capacity}")
    sections = r.u8()
    if sections & ~(EXTRAS | DESTROY | CREATE | UPDATE):
        raise ProtocolError("bad_snapshot", f"unknown sections {sections:#x}")
    extras = None
    empty = np.zeros(0, np.int64)
    destroy = create = update = empty
    create_codes = update_delta = np.zeros((0, columns), np.int64)
    if sections & EXTRAS:
        size = r.varint(extras_size)
        if size != extras_size:
            raise ProtocolError("bad_snapshot", f"extras of {size} bytes, expected {extras_size}")
        extras = r.bytes(size)
    if sections & DESTROY:
        destroy = _read_ids(r, lo, hi)
    if sections & CREATE:
        create = _read_ids(r, lo, hi)
        create_codes = np.empty((len(create), columns), np.int64)
        for c in range(columns):
            w = r.u8()
            if w > 63:
                raise ProtocolError("bad_snapshot", f"{w}-bit column")
            create_codes[:, c] = unpack_uint(r.view(packed_size(len(create), w)), len(create), w)
    if sections & UPDATE:
        update = _read_ids(r, lo, hi)
        k = len(update)
        update_delta = np.zeros((k, columns), np.int64)
        for c in range(columns):
            head = r.u8()
            mode, w = head >> 6, head & 63
            if mode == MODE_NONE:
                continue
            if mode == MODE_ALL:
                update_delta[:, c] = unpack_uint(r.view(packed_size(k, w)), k, w)
            elif mode == MODE_MASK:
                changed = unpack_uint(r.view(packed_size(k, 1)), k, 1).astype(bool)
                m = int(changed.sum())
                update_delta[changed, c] = unpack_uint(r.view(packed_size(m, w)), m, w)
            else:
                raise ProtocolError("bad_snapshot", f"column mode {mode}")
        update_delta = unzigzag_array(update_delta)
    r.done()
    return DecodedPart(tick, None if base == NO_BASE else base, index, count, lo, hi, extras, destroy, create, create_codes, update, update_delta)


def apply_part(part: DecodedPart, codes: np.ndarray, view: np.ndarray) -> None:
    """Apply a part in place to a copy of its baseline's (codes, view)."""
    if len(part.update) and not view[part.update].all():
        raise ProtocolError("bad_snapshot", "update of an entity the baseline does not have")
    view[part.destroy] = False
    view[part.create] = True
    codes[part.create] = part.create_codes
    codes[part.update] += part.update_delta
