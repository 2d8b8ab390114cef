# cython: annotation_typing=False
"""The server's recent snapshots, kept as baselines.

Whether a client's ack names a snapshot still held is asked for every input packet with a
new ack and two or three times per client per snapshot (9000 times a second in a
100-client room), from the compiled input gate and snapshot sender, so this is compiled
(Cython's pure-Python mode, ``history.pxd``) and they call :meth:`SnapshotHistory.has` as
a C function; the same source runs as plain Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cython
import numpy as np

from netcode.errors import UsageError

if TYPE_CHECKING:
    from netcode.statesync.snapshot import SnapshotSchema

__all__ = ["SnapshotHistory", "owed", "after_sending"]


class SnapshotHistory:
    """The server's recent snapshots (codes, alive, extras) by tick, for baselines.

    Holds the newest ``depth`` snapshots whatever the interval between them: snapshots are
    taken every ``every`` ticks (at multiples of it), so snapshot ``tick`` lives in slot
    ``(tick // every) % depth`` and ``depth`` snapshots span ``depth * every`` ticks."""

    def __init__(self, schema: SnapshotSchema, depth: int = 64, every: int = 1):
        self.depth = depth
        self.every = every
        self.codes = np.zeros((depth, schema.capacity, schema.columns), np.int64)
        self.alive = np.zeros((depth, schema.capacity), bool)
        self.extras: list[bytes] = [b""] * depth
        self.ticks = np.full(depth, -1, np.int64)
        self._ticks = memoryview(self.ticks)  # item reads without numpy scalars (has() is hot)

    @property
    def span(self) -> int:
        """Ticks between the oldest snapshot a full history holds and the newest."""
        return (self.depth - 1) * self.every

    def add(self, tick: int, codes: np.ndarray, alive: np.ndarray, extras: bytes) -> None:
        if tick % self.every:
            raise UsageError(f"snapshot tick {tick} is not a multiple of the interval {self.every}")
        i = self.index(tick)
        self.codes[i] = codes
        self.alive[i] = alive
        self.extras[i] = extras
        self.ticks[i] = tick

    def has(self, tick: int) -> bool:
        return tick >= 0 and tick % self.every == 0 and self._ticks[(tick // self.every) % self.depth] == tick

    def index(self, tick):
        """The slot of snapshot ``tick`` (an int, or a numpy array of ticks)."""
        return (tick // self.every) % self.depth

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.initializedcheck(False)
    @cython.cdivision(False)  # a tick's slot is Python's floor division and modulo (-1: the last slot)
    @cython.locals(n=cython.Py_ssize_t, w=cython.Py_ssize_t, r=cython.Py_ssize_t, c=cython.Py_ssize_t, slot=cython.Py_ssize_t,
                   vt=cython.longlong, differ=cython.int, depth=cython.Py_ssize_t, every=cython.longlong,
                   kept=cython.longlong[:, :, ::1], t=cython.longlong[::1], x=cython.longlong[:, ::1], b=cython.longlong[:, ::1],
                   a=cython.uchar[::1], ch=cython.uchar[::1], d=cython.int[::1])  # (this module types no annotations)
    def held(self, ticks, codes):
        """What a client holds, per entity, against the snapshot ``codes`` ((n, columns)
        int64) when it holds each entity's value of snapshot ``ticks[e]`` (int64 (n,), -1
        for none): that snapshot's codes (from the slot its tick maps to: rows not held
        get some other snapshot's, for the caller to ignore), whether the history still
        has that snapshot, whether the entity's codes differ from them, and in how many
        columns (int32). One pass over the entities, where numpy's gather and two
        comparisons were a fifth of a byte-budgeted client's encode."""
        ticks = np.ascontiguousarray(ticks, np.int64)
        codes = np.ascontiguousarray(codes, np.int64)
        kept = self.codes
        n, w = kept.shape[1], kept.shape[2]
        if ticks.shape != (n,) or codes.shape != (n, w):
            raise ValueError(f"{n} entities of {w} columns, not ticks {ticks.shape} and codes {codes.shape}")
        base = np.empty((n, w), np.int64)
        avail = np.zeros(n, np.uint8)
        changed = np.zeros(n, np.uint8)
        differing = np.zeros(n, np.int32)
        t = ticks
        x = codes
        b = base
        a = avail
        ch = changed
        d = differing
        depth, every = self.depth, self.every
        for r in range(n):
            vt = t[r]
            slot = (vt // every) % depth  # index()'s rule, in C (a method call per entity would cost more than the pass)
            a[r] = vt >= 0 and self._ticks[slot] == vt
            differ = 0
            for c in range(w):
                b[r, c] = kept[slot, r, c]
                if x[r, c] != b[r, c]:
                    differ += 1
            d[r] = differ
            ch[r] = differ > 0
        return base, avail.view(bool), changed.view(bool), differing



def _per_entity(n: int, **arrays) -> None:
    """Raise unless each of ``arrays`` has one value per entity (``n``)."""
    for name, values in arrays.items():
        if np.shape(values) != (n,):
            raise ValueError(f"{name}: {n} entities, not {np.shape(values)}")


def _flags(values) -> np.ndarray:
    """Bools as contiguous uint8, which a typed view takes (numpy's bool it does not)."""
    return np.ascontiguousarray(values, np.bool_).view(np.uint8)


# What a byte-budgeted client is owed, per entity, and what it holds once sent: one pass
# each over the entities, where the dozen numpy calls they replace were a sixth of such a
# client's time.
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(n=cython.Py_ssize_t, e=cython.Py_ssize_t, full=cython.longlong, t=cython.longlong[::1], v=cython.uchar[::1],
               a=cython.uchar[::1], ch=cython.uchar[::1], d=cython.int[::1], w=cython.uchar[::1], pr=cython.double[::1],
               co=cython.longlong[::1], gn=cython.uchar[::1], h=cython.uchar[::1])
def owed(ticks, view, avail, changed, differing, columns):
    """For a client holding each entity's value of snapshot ``ticks[e]`` (-1 for none),
    given :meth:`SnapshotHistory.held`'s ``avail``, ``changed`` and ``differing`` for it and
    its ``view`` (bool) of the new snapshot: (``wanted``: in view and not held as it is
    now; its priority: 2 if changed, else 1; its cost in bytes: a delta's, 1 + 2 a column
    that differs, or a create's, 2 + 3 a column of ``columns``; ``gone``: held (however
    old) but neither deltable nor in view, to destroy; ``holds``: held at all)."""
    ticks = np.ascontiguousarray(ticks, np.int64)
    n = len(ticks)
    _per_entity(n, view=view, avail=avail, changed=changed, differing=differing)
    t = ticks
    v, a, ch = _flags(view), _flags(avail), _flags(changed)
    d = np.ascontiguousarray(differing, np.int32)
    wanted, gone, holds = np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.uint8)
    priority, cost = np.empty(n, np.float64), np.empty(n, np.int64)
    w, gn, h, pr, co = wanted, gone, holds, priority, cost
    full = 2 + 3 * columns
    for e in range(n):
        w[e] = v[e] and (not a[e] or ch[e])
        pr[e] = 2.0 if ch[e] else 1.0
        co[e] = 1 + 2 * d[e] if a[e] else full
        h[e] = t[e] >= 0
        gn[e] = h[e] and not a[e] and not v[e]
    return wanted.view(np.bool_), priority, cost, gone.view(np.bool_), holds.view(np.bool_)


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(n=cython.Py_ssize_t, e=cython.Py_ssize_t, now=cython.longlong, t=cython.longlong[::1], o=cython.longlong[::1],
               v=cython.uchar[::1], a=cython.uchar[::1], ch=cython.uchar[::1], inc=cython.uchar[::1])
def after_sending(ticks, view, avail, changed, include, tick):
    """The snapshot whose value of each entity a client holds once it has snapshot
    ``tick`` (sent the entities in ``include``), from what it held before (``ticks``, with
    :meth:`SnapshotHistory.held`'s ``avail`` and ``changed``): ``tick`` for the entities
    sent and those held and unchanged, -1 outside its ``view`` (destroyed or never
    seen), else what it held."""
    ticks = np.ascontiguousarray(ticks, np.int64)
    n = len(ticks)
    _per_entity(n, view=view, avail=avail, changed=changed, include=include)
    out = np.empty(n, np.int64)
    t, o, now = ticks, out, tick
    v, a, ch, inc = _flags(view), _flags(avail), _flags(changed), _flags(include)
    for e in range(n):
        if not v[e]:
            o[e] = -1
        elif inc[e] or (a[e] and not ch[e]):
            o[e] = now
        else:
            o[e] = t[e]
    return out
