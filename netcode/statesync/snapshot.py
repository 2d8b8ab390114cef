"""Snapshot codec: quantized entity state, delta-encoded against a baseline, split into parts.

A snapshot is every replicated entity's quantized *codes* (one row per entity slot, one
column per field component) plus which slots the receiver should see, plus the game's small
``extras`` arrays. It travels as the difference from a *baseline* the receiver holds (the
newest snapshot it acked; none for a full snapshot):

* destroyed entities: ids only;
* created entities: every column;
* updated entities: per column, which ones changed (a bit each, omitted when all or none
  did) and the zigzagged deltas. With a *predictor* (an older snapshot the receiver also
  holds) the smooth columns (positions) are expected to keep moving as they did between
  the two, and only entities that did otherwise are sent: a world of steady movers costs
  next to nothing;
* extras: whole, or the bytes that changed, whichever is smaller.

Ids are gaps, and every column is bit-packed at the width that packs it smallest, with
escapes for the few outliers (see :func:`netcode.statesync.bits.pack_escaped`). Everything is numpy
over whole columns; there is no Python loop over entities. A snapshot bigger than one
packet is cut into *parts* by entity id range: each part carries the whole entities of its
range against the same baseline and applies on its own, so a lost part costs its entities
one snapshot, not the snapshot. A part's range also says which entities it vouches for
(unchanged ones included), which the client's interpolation uses. PROTOCOL.md has the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from engine.replication import Replication
from engine.state import State

from netcode.statesync.bits import (
    escaped_cost_bits,
    pack_escaped_columns,
    pack_gaps,
    pack_nonzero_columns,
    packed_size,
    unpack_escaped,
    unpack_uint,
    unzigzag_array,
    width_of_columns,
    zigzag_array,
)
from netcode.errors import ProtocolError, UsageError
from netcode.statesync.coding import SnapshotCoding
from netcode.statesync import rangecoder
from netcode.statesync.history import SnapshotHistory  # compiled: has() is asked per client and per input
from netcode.session.wire import Reader, varint

__all__ = [
    "SnapshotSchema",
    "SnapshotHistory",
    "DecodedPart",
    "encode_snapshot",
    "decode_part",
    "apply_part",
    "apply_extras",
    "predict",
    "read_part_header",
    "NO_BASE",
]

NO_BASE = 0xFFFFFFFF
EXTRAS, DESTROY, CREATE, UPDATE = 1, 2, 4, 8
RESET = 16  # carry=True specs: a delta whose table's coder starts from the spec's model (see apply_part)
_HEAD = struct.Struct("<II")  # tick, baseline
MODE_NONE, MODE_ALL, MODE_MASK = 0, 1, 2


class SnapshotSchema:
    """The columns a game's replication spec makes of its state, and the conversions."""

    def __init__(self, replication: Replication, template: State):
        if replication is None:
            raise UsageError("this game declares no replication spec, so it cannot run in state sync")
        self.replication = replication
        problems = replication.problems(template)
        if problems:
            raise UsageError(problems[0])
        alive = template[replication.alive]
        self.alive = replication.alive
        self.capacity = len(alive)
        self.fields = []  # (name, quantizer, first column, column count, shape, dtype)
        col = 0
        for name, q in replication.fields.items():
            arr = template[name]
            width = int(np.prod(arr.shape[1:], dtype=np.int64))
            self.fields.append((name, q, col, width, arr.shape, arr.dtype))
            col += width
        self.columns = col
        self.extras = tuple(replication.extras)
        self.extras_size = sum(template[e].nbytes for e in self.extras)
        self.columns_of = {name: (c, c + w) for name, _, c, w, _, _ in self.fields}
        self.position = replication.position
        self.smooth = np.zeros(col, bool)  # columns interpolated and coded against motion
        for name in replication.smooth_fields:
            c0, c1 = self.columns_of[name]
            self.smooth[c0:c1] = True
        # Groups, a game's predictor, entropy coding: None when the spec uses none of them,
        # and snapshots take the packed path as they always did.
        self.coding = None
        if replication.coding != "packed" or replication.groups or replication.predictor is not None:
            self.coding = SnapshotCoding(replication, self.fields, col, self.smooth)

    def predict(self, base_codes, base_view, pred_codes, pred_view, tick: int, base_tick: int, pred_tick: int) -> np.ndarray:
        """Where the receiver expects the entities of ``tick``: the game's predictor, or
        :func:`predict` over the smooth columns."""
        if self.coding is not None:
            return self.coding.expect(base_codes, base_view, pred_codes, pred_view, tick, base_tick, pred_tick, predict)
        return predict(base_codes, base_view, pred_codes, pred_view, tick, base_tick, pred_tick, self.smooth)

    def motion(self, base_codes, base_view, pred_codes=None, pred_view=None) -> np.ndarray | None:
        """What :func:`apply_part` needs beside an entropy-coded part: each value's motion
        code from the predictor snapshot (if any) to the baseline (None for packed coding)."""
        if self.coding is None or not self.coding.entropy:
            return None
        rows = None if pred_codes is None else base_view & pred_view
        return self.coding.motion(base_codes, pred_codes, rows)

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


# -- encoding ------------------------------------------------------------------------------
def predict(base_codes, base_view, pred_codes, pred_view, tick: int, base_tick: int, pred_tick: int, columns) -> np.ndarray:
    """Where the baseline's values would be at ``tick`` if they kept moving as they did
    from the predictor snapshot to the baseline (integer, identical on both ends); the
    baseline itself for columns not predicted and entities not in both."""
    out = base_codes.copy()
    if base_tick > pred_tick:
        rows = base_view & pred_view
        ahead, gap = tick - base_tick, base_tick - pred_tick
        # Column by column over every row (the few predicted columns, whole): much cheaper
        # than gathering and scattering the (rows x columns) block; rows outside the mask
        # keep the baseline (all of them when none is in both snapshots).
        for c in np.flatnonzero(columns):
            b = base_codes[:, c]
            step = b - pred_codes[:, c]
            if ahead != gap:  # equal at a steady snapshot rate: then step * ahead // gap is step
                step = step * ahead // gap
            np.add(b, step, out=out[:, c], where=rows)
    return out


_NO_IDS = np.zeros(0, np.intp)  # no entities (shared: never written)


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of two (rows, columns) tables, whether they differ anywhere: the compiled
    coder's one pass in C that stops at a row's first difference (a mask of differences
    and its OR over columns cost twice as much), or numpy's where the install runs the
    coder's source (its loop, interpreted, is far slower)."""
    if rangecoder.compiled:
        return rangecoder.rows_differ(a, b)
    return (a != b).any(axis=1)


def _pack_ids(ids: np.ndarray, lo: int) -> bytes:
    return varint(len(ids)) + varint(int(ids[0]) - lo) + pack_gaps(ids)


_MODE_NONE, _MODE_ALL, _MODE_MASK = bytes([MODE_NONE]), bytes([MODE_ALL]), bytes([MODE_MASK])


def _update_bytes(update_z: np.ndarray) -> list[bytes]:
    """Each column of zigzagged deltas (rows: the updated entities): which changed, and by
    how much. The mask is pack_uint(changed, 1): one bit per entity, little-endian."""
    rows = len(update_z)
    out = []
    for n, mask, packed in pack_nonzero_columns(update_z):
        if n == 0:
            out.append(_MODE_NONE)
        elif n == rows:
            out.append(_MODE_ALL + packed)  # (every value: pack_escaped of the whole column)
        else:
            out.append(_MODE_MASK + mask + packed)
    return out


def _extras_bytes(extras: bytes, base: bytes | None) -> bytes:
    """The extras whole, or (when smaller) as the bytes that changed since the baseline."""
    whole = bytes([0]) + varint(len(extras)) + extras
    if base is None or len(base) != len(extras):
        return whole
    new, old = np.frombuffer(extras, np.uint8), np.frombuffer(base, np.uint8)
    at = np.flatnonzero(new != old)
    delta = bytes([1]) + _pack_ids(at, 0) + new[at].tobytes()
    return delta if len(delta) < len(whole) else whole


def _encode_part(tick, base, pred_gap, index, count, lo, hi, extras, destroy, create, create_codes, update, update_z, stats=None) -> bytes:
    sections = (EXTRAS if extras is not None else 0) | (DESTROY if len(destroy) else 0)
    sections |= (CREATE if len(create) else 0) | (UPDATE if len(update) else 0)
    out = [_HEAD.pack(tick, base), varint(pred_gap), bytes([index, count]), varint(lo), varint(hi - lo), bytes([sections])]
    if extras is not None:
        out.append(extras)
    if len(destroy):
        out.append(_pack_ids(destroy, lo))
    if len(create):
        out.append(_pack_ids(create, lo))
        out += pack_escaped_columns(create_codes)
    if len(update):
        out.append(_pack_ids(update, lo))
        out += _update_bytes(update_z)
    if stats is not None:
        _count_bytes(stats, out, extras is not None, len(destroy), len(create), create_codes.shape[1], len(update))
    return b"".join(out)


def _count_bytes(stats: dict, pieces: list, extras: bool, destroy: int, create: int, columns: int, update: int) -> None:
    """Add each piece of a part to ``stats`` (name -> bytes): where a snapshot's bytes go."""
    names = ["header"] * 6 + ["extras"] * extras + ["destroy ids"] * bool(destroy)
    if create:
        names += ["create ids"] + [f"create col {c}" for c in range(columns)]
    if update:
        names += ["update ids"] + [f"update col {c}" for c in range(columns)]
    for name, piece in zip(names, pieces):
        stats[name] = stats.get(name, 0) + len(piece)


def _within(whole: tuple, lo: int, hi: int, n: int) -> tuple:
    """(destroy, create, create codes, update, update deltas) of entities in [lo, hi)."""
    if lo == 0 and hi == n:  # the whole snapshot in one part: nothing to select
        return whole
    destroy, create, create_codes, update, update_z = whole
    cm = (create >= lo) & (create < hi)
    um = (update >= lo) & (update < hi)
    return destroy[(destroy >= lo) & (destroy < hi)], create[cm], create_codes[cm], update[um], update_z[um]


def _id_cost(ids: np.ndarray, cost: np.ndarray) -> None:
    if len(ids) > 1:
        cost[ids[1:]] += escaped_cost_bits(np.diff(ids) - 1)[1]


def _cut_parts(destroy, create, create_codes, update, update_z, affected, room_bits: int, first_room: int):
    """Where to cut a snapshot into parts: (indexes into the affected ids where parts start,
    the affected ids). Each entity's size in bits is taken at the whole snapshot's widths: a
    part packs its own entities at most that wide, so every part stays in budget."""
    cost = np.zeros(len(affected), np.int64)
    for ids in (destroy, create, update):
        _id_cost(ids, cost)
    for col in create_codes.T:
        cost[create] += escaped_cost_bits(col)[1]
    for col in update_z.T:
        changed = col != 0
        cost[update] += 1  # its bit in the changed mask
        if changed.any():
            cost[update[changed]] += escaped_cost_bits(col[changed])[1]
    cost[affected] += 1  # so every affected entity counts
    ids = np.flatnonzero(cost)
    cum = np.cumsum(cost[ids])
    cuts = [0]  # indexes into ids where parts start
    while cuts[-1] < len(ids):
        start = cuts[-1]
        before = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, before + (room_bits if start else first_room), side="right"))
        cuts.append(max(end, start + 1))
    if len(cuts) - 1 > 255:
        raise UsageError("snapshot needs more than 255 parts; raise the budget or replicate less")
    return cuts, ids


def _entropy_sections(head, lo, hi, extras, destroy, create, create_codes, changed) -> tuple[list, int, int]:
    """A part's pieces before its table (header placeholders, extras, the destroys and
    creates in [lo, hi)), how many destroys and creates, and the pieces' size plus the
    most the header can take."""
    part_destroy, part_create, part_codes = destroy, create, create_codes
    if len(destroy):  # (usually none of either: no masks then)
        part_destroy = destroy[(destroy >= lo) & (destroy < hi)]
    if len(create):
        cm = (create >= lo) & (create < hi)
        part_create, part_codes = create[cm], create_codes[cm]
    sections = (EXTRAS if extras is not None else 0) | (DESTROY if len(part_destroy) else 0)
    sections |= (CREATE if len(part_create) else 0) | (UPDATE if changed else 0) | head[3]
    # the header is written once every part is known (a single part omits its range)
    out = [b"", varint(head[2]), b"", b"", b"", bytes([sections])]
    if extras is not None:
        out.append(extras)
    if len(part_destroy):
        out.append(_pack_ids(part_destroy, lo))
    if len(part_create):
        out.append(_pack_ids(part_create, lo))
        out += pack_escaped_columns(part_codes)
    return out, len(part_destroy), len(part_create), sum(len(x) for x in out) + _COMPACT_MAX


def _encode_entropy(head, budget, n, lo, hi, extras, destroy, create, create_codes, table, coding, stats, parts, models) -> list[bytes]:
    """Entropy-coded parts of the entities in [lo, hi), appended to ``parts``: a part
    takes entities in id order while its table fits ``budget`` and the rest go on in the
    next (the extras go in the first); where the destroys and creates alone do not fit,
    each half of the range on its own.

    A part is a compact header (see :func:`read_part_header`), the packed format's
    extras, destroys and creates, then (section UPDATE) the range-coded table of every
    entity in the range the receiver holds, to the end of the part: a changed flag per
    field group, and the changed groups' deltas. ``models``: the coder's (start, end) models
    (see :func:`encode_snapshot`)."""
    held, deltas, motion, touched = table
    # held ids are in [0, n): the top call's range is every row, found without a search
    a = 0 if lo == 0 else int(np.searchsorted(held, lo))
    b = len(held) if hi == n else int(np.searchsorted(held, hi))
    d, m = deltas[a:b], motion[a:b]
    changed = bool(touched[a:b].any())
    out, destroys, creates, size = _entropy_sections(head, lo, hi, extras, destroy, create, create_codes, changed)
    end = hi  # where this part ends: hi, or the first entity whose table row did not fit
    if changed:
        if hi - lo > 1:
            coded, rows = coding.encode_table(d, m, max(budget - size, 0), *models)
            if 0 < rows < len(d):  # cut after the rows that fit (the sections only shrink)
                end = int(held[a + rows])
                changed = bool(touched[a : a + rows].any())
                out, destroys, creates, size = _entropy_sections(head, lo, end, extras, destroy, create, create_codes, changed)
        else:
            coded, rows = coding.encode_table(d, m, -1, *models), len(d)
        if rows == 0 and hi - lo > 1:
            size = budget + 1  # not one row fits beside the sections: halve the range
        elif changed:
            out.append(coded)
            size += len(coded)
    if size > budget:
        if hi - lo <= 1:
            raise UsageError(f"one entity takes {size} bytes, over the {budget}-byte budget")
        mid = (lo + hi) // 2
        _encode_entropy(head, budget, n, lo, mid, extras, destroy, create, create_codes, table, coding, stats, parts, models)
        _encode_entropy(head, budget, n, mid, hi, None, destroy, create, create_codes, table, coding, stats, parts, models)
    else:
        parts.append(out + [(lo, end)])  # the range, for the header
        if stats is not None:
            _count_bytes(stats, out, extras is not None, destroys, creates, create_codes.shape[1], 0)
            if changed:
                stats["update table"] = stats.get("update table", 0) + len(out[-1])
        if end < hi:
            _encode_entropy(head, budget, n, end, hi, None, destroy, create, create_codes, table, coding, stats, parts, models)
    if lo == 0 and hi == n:  # the top call: number the parts
        tick, base = head[:2]
        if len(parts) > 255:
            raise UsageError("snapshot needs more than 255 parts; raise the budget or replicate less")
        if base != NO_BASE and not 0 < tick - base < 1 << 32:
            raise UsageError(f"baseline {base} is not before tick {tick}")
        head = struct.pack("<I", tick) + varint(0 if base == NO_BASE else tick - base)
        count = len(parts)
        for i, p in enumerate(parts):
            p[0] = head
            p[2] = varint(count - 1) + (varint(i) if count > 1 else b"")
            if count > 1:
                part_lo, part_hi = p[-1]
                p[3], p[4] = varint(part_lo), varint(part_hi - part_lo)
            del p[-1]
        if stats is not None:
            stats["header"] += sum(len(p[0]) + len(p[2]) + len(p[3]) + len(p[4]) for p in parts)
        return [b"".join(p) for p in parts]
    return parts


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
    holds: np.ndarray | None = None,
    predictor: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None,
    stats: dict | None = None,
    coding: SnapshotCoding | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    end: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[bytes]:
    """Encode ``tick``'s snapshot (rows in ``view``) against a baseline, as parts of at most
    ``budget`` bytes. ``include`` (bool per entity) limits which creates and updates go now
    (a bandwidth budget's choice); destroys always go, ``also_destroy`` adds entities the
    receiver holds although they are not in ``base_view``. ``predictor`` (tick, codes,
    view, predicted columns) is an older snapshot the receiver holds: updates are then
    coded against the motion it shows (see :func:`predict`), so steady movers cost a bit.
    ``holds`` (bool per entity) says what the receiver holds when that is more than
    ``base_view`` (per-client baselines: values too old to delta against).
    ``stats`` (a dict), when given, gains the bytes each piece of the parts took.
    ``coding`` (the schema's) applies the spec's predictor and, with entropy coding,
    range-codes the updates (see :func:`_encode_entropy`).

    Carried models (entropy coding; :meth:`SnapshotCoding.carried`): the table's coder
    starts from ``start`` instead of the spec's model, and ``end`` is set to the model the
    receiver will hold for this snapshot once it applies it: where the table's coder
    ended if the snapshot is one part with a table, else ``start``'s (a part of many may
    be lost and is decoded alone, so parts never teach the model). With a carry=True spec
    a delta given no ``start`` (the spec's model) flags its parts RESET: the receiver starts
    from the spec's model too, whichever it holds for the baseline."""
    if (start is not None or end is not None) and (coding is None or not coding.entropy):
        raise UsageError("carried coder models are for entropy-coded specs")
    n = len(view)
    if base_view is None:
        base_view = np.zeros(n, bool)
        base_codes = codes
        predictor = None
    # The usual case: every row in view at both ends and nothing else destroyed (a whole
    # world to a client that holds it all). Its masks would be all true or all false, so
    # they are not built (a dozen numpy calls, about 15 us a snapshot): None below.
    full_view = also_destroy is None and np.count_nonzero(view) == n and np.count_nonzero(base_view) == n
    destroy_m = None
    if not full_view:
        destroy_m = base_view & ~view
        if also_destroy is not None:
            destroy_m |= also_destroy
    # Only entities in either view can be listed: work on those rows alone when they are
    # few (a client's interest cells usually hold a fraction of the world). When they are
    # most of the rows, whole arrays cost less than gathering them (the masks below keep
    # every other row out).
    listed = None if full_view else view | destroy_m
    if full_view or 2 * np.count_nonzero(listed) >= n:  # (a count: the ids are not needed then)
        rows = np.arange(n)

        def pick(a):
            return a
    else:
        rows = np.flatnonzero(listed)

        def pick(a):
            return a[rows]
    sub_view, sub_base = pick(view), pick(base_view)
    sub_codes, sub_base_codes = pick(codes), pick(base_codes)
    expected = sub_base_codes
    pred_gap = 0
    if predictor is not None:
        pred_tick, pred_codes, pred_view, columns = predictor
        if coding is not None:
            expected = coding.expect(sub_base_codes, sub_base, pick(pred_codes), pick(pred_view), tick, base_tick, pred_tick, predict)
        else:
            expected = predict(sub_base_codes, sub_base, pick(pred_codes), pick(pred_view), tick, base_tick, pred_tick, columns)
        pred_gap = base_tick - pred_tick
    create_m = None if full_view else sub_view & ~sub_base
    # Whatever is not listed the receiver takes to be where it was expected: unmoved, or
    # (with a predictor) still moving as before. Only surprises are sent.
    entropy = coding is not None and coding.entropy
    update_m = _rows_differ(sub_codes, expected)
    diff = None if entropy else sub_codes - expected  # (its rows that differ are the updates, zigzagged below)
    if not full_view:
        update_m &= sub_view & sub_base
    if include is not None:
        if not full_view:
            create_m &= pick(include)
        update_m &= pick(include)
    local_create = _NO_IDS if full_view else np.flatnonzero(create_m)
    destroy = _NO_IDS if full_view else np.flatnonzero(destroy_m)
    create = rows[local_create]
    create_codes = sub_codes[local_create]
    send_extras = None
    if base_tick is None or extras != base_extras:
        send_extras = _extras_bytes(extras, base_extras if base_tick is not None else None)
    base = NO_BASE if base_tick is None else base_tick
    if entropy:
        # Every entity the receiver holds and keeps gets a row of the table (changed or
        # not), as the receiver counts them: its view less this snapshot's destroys and
        # creates. Those it holds beyond the baseline (values too old to delta) stay put.
        if full_view:  # (what it holds beyond the baseline is in view: every row)
            held = rows
        else:
            holding = sub_base if holds is None else sub_base | pick(holds)
            held = np.flatnonzero(holding & sub_view & ~create_m)
        every = len(held) == len(rows)

        def of_held(a):  # usually every row is held: then no gathering
            return a if every else a[held]

        deltas = np.zeros((len(held), codes.shape[1]), np.int64)
        touched = of_held(update_m)  # per table row: whether its deltas are sent
        changed = np.flatnonzero(touched)
        at = changed if every else held[changed]
        sent = coding.deltas(expected[at], sub_codes[at])
        if len(sent) and not rangecoder.rows_differ(sent).all():
            # A quantizer's delta read two different codes as the same (a predictor that
            # returned codes the quantizer cannot make, such as a rotation's index 4).
            raise UsageError("the predictor returned codes the quantizers cannot produce")
        deltas[changed] = sent
        if pred_gap > 0:  # what the receiver's part header says: it holds the predictor
            both = of_held(pick(pred_view)) if full_view else of_held(sub_base) & of_held(pick(pred_view))
            motion = coding.motion(of_held(sub_base_codes), of_held(pick(pred_codes)), both)
        else:
            motion = coding.motion(of_held(sub_base_codes), None, None)
        table = (of_held(rows), deltas, motion, touched)
        # A carried delta coded from the spec's model says so: whatever model the receiver
        # holds for the baseline, it starts there too (the server re-merges clients' chains).
        head = (tick, base, pred_gap, RESET if coding.carries and end is not None and start is None and base_tick is not None else 0)
        if end is not None:  # the start's model, unless a whole one-part table ends elsewhere
            coding.carried(start, end)
        parts = _encode_entropy(head, budget, n, 0, n, send_extras, destroy, create, create_codes, table, coding, stats, [], (start, end))
        if end is not None and len(parts) > 1:  # (see apply_part: the receiver does so too)
            coding.carried(start, end)
        return parts
    local_update = np.flatnonzero(update_m)
    update = rows[local_update]
    update_z = zigzag_array(diff[local_update])

    # Headers, per-section and per-column bytes, padding; the extras only in the first part.
    room_bits = (budget - 48 - 4 * (codes.shape[1] + 3)) * 8
    first_room = room_bits - (len(send_extras) * 8 if send_extras is not None else 0)
    if first_room <= 0:
        raise UsageError(f"snapshot budget {budget} is too small for this schema")
    # A quick upper bound first (every value at its column's widest, every id gap at the
    # widest an escaped gap can take): most snapshots fit one part, and then nothing is cut.
    # (Its terms in order of cost, each only while the sum is still in budget: a snapshot
    # listing many entities is over it on the ids alone, without a width taken.)
    listed = len(destroy) + len(create) + len(update)
    quick = listed * 2 * n.bit_length()
    if quick <= first_room and len(create):
        quick += sum(width_of_columns(create_codes)) * len(create)
    if quick <= first_room and len(update):
        quick += (sum(width_of_columns(update_z)) + update_z.shape[1]) * len(update)
    whole = (destroy, create, create_codes, update, update_z)
    ranges = [(0, n)]
    if quick > first_room:
        # The bound is loose (one far outlier widens a whole column): before computing
        # where to cut, see whether the snapshot fits one part after all.
        part = _encode_part(tick, base, pred_gap, 0, 1, 0, n, send_extras, *whole)
        if len(part) <= budget:
            if stats is not None:
                _encode_part(tick, base, pred_gap, 0, 1, 0, n, send_extras, *whole, stats)
            return [part]
        affected = np.zeros(n, bool) if full_view else destroy_m.copy()
        affected[create] = affected[update] = True
        cuts, ids = _cut_parts(*whole, affected, room_bits, first_room)
        starts = [0] + [int(ids[c]) for c in cuts[1:-1]]
        ranges = list(zip(starts, starts[1:] + [n]))
    parts = []
    for i, (lo, hi) in enumerate(ranges):
        first = send_extras if i == 0 else None
        part = _encode_part(tick, base, pred_gap, i, len(ranges), lo, hi, first, *_within(whole, lo, hi, n), stats)
        if len(part) > budget:  # cannot happen while the estimates are upper bounds
            raise UsageError(f"snapshot part of {len(part)} bytes over the {budget}-byte budget")
        parts.append(part)
    return parts


# -- decoding ------------------------------------------------------------------------------
@dataclass
class DecodedPart:
    tick: int
    base: int | None
    predictor: int | None  # the older snapshot updates were predicted from
    index: int
    count: int
    lo: int
    hi: int
    extras: bytes | None  # whole extras, or None
    extras_delta: tuple[np.ndarray, bytes] | None  # (byte offsets, new bytes) vs the baseline's
    destroy: np.ndarray
    create: np.ndarray
    create_codes: np.ndarray
    update: np.ndarray
    update_delta: np.ndarray
    table: bytes | None = None  # entropy coding: the range-coded update table
    reset: bool = False  # carried models: the table's coder starts from the spec's model (RESET)


def _read_ids(r: Reader, lo: int, hi: int) -> np.ndarray:
    k = r.varint(hi - lo)
    if k == 0:
        raise ProtocolError("bad_snapshot", "empty id list")
    first = lo + r.varint(hi - lo)
    gaps = unpack_escaped(r, k - 1)
    if k > 1 and gaps.max() >= hi - lo:  # (a 63-bit gap would wrap the sum below around)
        raise ProtocolError("bad_snapshot", f"an id gap past [{lo}, {hi})")
    ids = first + np.concatenate(([0], np.cumsum(gaps + 1)))
    if ids[-1] >= hi:
        raise ProtocolError("bad_snapshot", f"entity ids outside [{lo}, {hi})")
    return ids


_COMPACT_MAX = 4 + 5 + 2 + 2 + 3 + 3  # the most a compact header can take beside the predictor gap


def read_part_header(r: Reader, compact: bool = False) -> tuple[int, int | None, int | None, int, int]:
    """(tick, baseline, predictor, index, count) of a part, and nothing more: what a light
    client needs to track which snapshots are complete. ``compact``: an entropy-coded
    spec's header (u32 tick, varint tick - baseline or 0, varint predictor gap, varint
    count - 1, varint index when more than one part)."""
    if compact:
        tick = struct.unpack_from("<I", r.data, r.take(4))[0]
        gap = r.varint(tick)
        base = tick - gap if gap else NO_BASE
        pred_gap = r.varint(1 << 32)
        count = r.varint(254) + 1
        index = r.varint(count - 1) if count > 1 else 0
    else:
        tick, base = _HEAD.unpack_from(r.data, r.take(_HEAD.size))
        pred_gap = r.varint(1 << 32)
        index, count = r.u8(), r.u8()
    if pred_gap and (base == NO_BASE or pred_gap > base):
        raise ProtocolError("bad_snapshot", f"predictor {pred_gap} ticks before baseline {base}")
    return tick, None if base == NO_BASE else base, base - pred_gap if pred_gap else None, index, count


def decode_part(payload, capacity: int, columns: int, extras_size: int, coding: SnapshotCoding | None = None) -> DecodedPart:
    """A part's contents. With entropy ``coding`` the update table stays coded until
    :func:`apply_part` knows which entities the receiver holds."""
    r = Reader(payload)
    compact = coding is not None and coding.entropy
    tick, base, predictor, index, count = read_part_header(r, compact)
    if compact and count == 1:  # one part vouches for every entity
        lo, hi = 0, capacity
    else:
        lo = r.varint(capacity)
        hi = lo + r.varint(capacity)
    if count == 0 or index >= count or hi > capacity:
        raise ProtocolError("bad_snapshot", f"part {index}/{count} range [{lo}, {hi}) of {capacity}")
    sections = r.u8()
    if sections & ~(EXTRAS | DESTROY | CREATE | UPDATE | RESET):
        raise ProtocolError("bad_snapshot", f"unknown sections {sections:#x}")
    if sections & RESET and (not compact or not coding.carries or base is None):
        raise ProtocolError("bad_snapshot", "a RESET part of a full snapshot or of a spec without carried models")
    extras = extras_delta = None
    empty = np.zeros(0, np.int64)
    destroy = create = update = empty
    create_codes = update_delta = np.zeros((0, columns), np.int64)
    if sections & EXTRAS:
        mode = r.u8()
        if mode == 0:
            size = r.varint(extras_size)
            if size != extras_size:
                raise ProtocolError("bad_snapshot", f"extras of {size} bytes, expected {extras_size}")
            extras = r.bytes(size)
        elif mode == 1:
            at = _read_ids(r, 0, extras_size) if extras_size else empty
            extras_delta = (at, r.bytes(len(at)))
        else:
            raise ProtocolError("bad_snapshot", f"extras mode {mode}")
    if sections & DESTROY:
        destroy = _read_ids(r, lo, hi)
    if sections & CREATE:
        create = _read_ids(r, lo, hi)
        create_codes = np.empty((len(create), columns), np.int64)
        for c in range(columns):
            create_codes[:, c] = unpack_escaped(r, len(create))
    table = None
    if sections & UPDATE and coding is not None and coding.entropy:
        table = r.bytes(r.remaining)
    elif sections & UPDATE:
        update = _read_ids(r, lo, hi)
        k = len(update)
        update_delta = np.zeros((k, columns), np.int64)
        for c in range(columns):
            mode = r.u8()
            if mode == MODE_NONE:
                continue
            if mode == MODE_ALL:
                update_delta[:, c] = unpack_escaped(r, k)
            elif mode == MODE_MASK:
                changed = unpack_uint(r.view(packed_size(k, 1)), k, 1).astype(bool)
                update_delta[changed, c] = unpack_escaped(r, int(changed.sum()))
            else:
                raise ProtocolError("bad_snapshot", f"column mode {mode}")
        update_delta = unzigzag_array(update_delta)
    r.done()
    return DecodedPart(
        tick,
        base,
        predictor,
        index,
        count,
        lo,
        hi,
        extras,
        extras_delta,
        destroy,
        create,
        create_codes,
        update,
        update_delta,
        table,
        bool(sections & RESET),
    )


def apply_part(part: DecodedPart, codes: np.ndarray, view: np.ndarray, coding: SnapshotCoding | None = None, motion: np.ndarray | None = None,
               start=None, end=None) -> None:
    """Apply a part in place to (codes, view) that start as the baseline's view and the
    *expected* codes: the baseline's, or with a predictor the baseline moved on by
    :func:`predict` (or the game's predictor); entities a part does not list stay there.
    An entropy-coded part also needs the ``coding`` and the ``motion`` codes
    (:meth:`SnapshotSchema.motion`) of the baseline and predictor it was coded against.
    ``start``, ``end``: the carried models :func:`encode_snapshot` was given (the one kept
    for the baseline; the one to keep for this snapshot, set as the sender's was); a RESET
    part starts from the spec's model instead of ``start``."""
    if part.reset:
        start = None
    if end is not None:  # the start's model, unless a one-part snapshot's table ends elsewhere
        if coding is None or not coding.entropy:
            raise UsageError("carried coder models are for entropy-coded specs")
        coding.carried(start, end)
    # (Each list is usually empty: numpy's indexing costs microseconds even then.)
    if len(part.update) and not view[part.update].all():
        raise ProtocolError("bad_snapshot", "update of an entity the baseline does not have")
    if len(part.destroy):
        view[part.destroy] = False
    if part.table is not None:
        if coding is None or not coding.entropy:
            raise UsageError("an entropy-coded part needs the schema's coding to apply")
        # The table's rows: what the receiver holds in the range, less what this part
        # creates anew (a value it held that the sender could no longer delta against).
        mine = view[part.lo : part.hi]
        if len(part.create):
            mine = mine.copy()
            mine[part.create - part.lo] = False
        held = np.flatnonzero(mine)
        if part.lo:
            held += part.lo
        if motion is None:
            m = np.zeros((len(held), codes.shape[1]), np.int32)
        elif len(held) == part.hi - part.lo:  # usually every row of the range is held: no gathering
            m = motion[part.lo : part.hi]
        else:
            m = motion[held]
        touched = np.zeros(len(held), np.uint8)
        deltas = coding.decode_table(part.table, m, touched, start, end if part.count == 1 else None)
        changed = np.flatnonzero(touched)
        if not len(changed):  # (a part cut short after its sections can decode to this)
            raise ProtocolError("bad_snapshot", "an update table that changes nothing: encoders leave it out")
        rows = held[changed]
        codes[rows] = coding.undo(codes[rows], deltas[changed])
    if len(part.create):
        view[part.create] = True
        codes[part.create] = part.create_codes
    if len(part.update):
        codes[part.update] += part.update_delta


def apply_extras(part: DecodedPart, base: bytes | None) -> bytes | None:
    """The extras after this part: its whole extras, its changes applied to the
    baseline's, or the baseline's unchanged."""
    if part.extras is not None:
        return part.extras
    if part.extras_delta is not None:
        if base is None:
            raise ProtocolError("bad_snapshot", "extras changes without baseline extras")
        at, new = part.extras_delta
        out = bytearray(base)
        for i, b in zip(at.tolist(), new):
            out[i] = b
        return bytes(out)
    return base
