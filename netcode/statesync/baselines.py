"""Which baselines one snapshot is encoded against: at most ``budget`` encodings a snapshot.

Each distinct (baseline, predictor) pair the clients need costs one encoding of the whole
snapshot (0.15-0.7 ms for the 64-player arena). Clients on a quiet network ack the same
snapshots and share two or three pairs; under jitter their acks scatter, and 64 clients
asked for up to 23 pairs a snapshot, which put the snapshot ticks at 14-19 ms (the soak
of issue 16). Two things bound it:

- **Sharing.** A client decodes a delta against any snapshot it acked and still holds, not
  only its newest ack, so a client can be moved onto a pair another client needs, when
  it acked both of that pair's snapshots (the server learns which from the acks it gets,
  reordered ones included: ``StateSyncPeer.acked_mask``) and the baseline is at most
  ``reach`` snapshots older than its own newest (older ones make bigger deltas).
- **Deferral.** What still does not fit waits for the next snapshot. A client that waited
  comes first next time, so nobody waits more than a few snapshots; the interpolation
  buffer of a client that misses one spans the gap.

Pairs are chosen greedily: the pair that serves the most clients (a client that waited
outweighs every client that did not), newest baseline first among equals, until every
client is served or the budget is spent. The server plans only when the clients need more
encodings than the budget: sharing moves clients onto older baselines, which costs bytes
(+16% for 64 clients at 100 ms jitter, ``python -m bench.bench_encode_budget``).

With carried coder models (``Replication(carry=True)``) an encoding is also keyed by the
model it starts from, and a client shares it only when it holds that very model for the
baseline, so the budget holds there too; under loss clients' models part ways and fewer
can share; so the plan may also code a delta from the spec's model (a *reset*), which
every client that acked its baseline and predictor (or wants that delta from its own
model) can decode, whatever model it holds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["one_encoding", "plan_encodings", "second_half"]

_AGE_COST = 0.1  # a client served from a baseline k snapshots older counts 1 - 0.1 k (older: bigger deltas)
_RESET_COST = 0.05  # ... and from a reset, 0.05 less (a model afresh codes a few % bigger), not scaled by waits


def plan_encodings(
    wants: list[tuple],
    acked: np.ndarray,
    masks: np.ndarray,
    waits: np.ndarray,
    budget: int,
    every: int,
    reach: int,
    share: bool = True,
    held: list[dict] | None = None,
    starts: dict | None = None,
    resets: list[tuple] = (),
) -> list[tuple | None]:
    """For each client, the encoding its snapshot is sent from (as few as serve everybody,
    at most ``budget``), or None when it waits for the next snapshot.

    ``wants[i]``: the encoding client ``i`` would use on its own, a tuple that starts with
    its (baseline, predictor) ticks ((-1, -1): a full snapshot) and may name more (cells);
    ``acked[i]``/``masks[i]``: its newest ack and which earlier snapshots it acked (bit k:
    ``acked - k * every``); ``waits[i]``: snapshots in a row it has waited. With ``share``
    off (interest management, where an encoding also names the client's cells), clients
    only ever get the encoding they want. A full snapshot counts as one encoding, like any other.

    Carried coder models (``Replication(carry=True)``, :mod:`netcode.statesync.carried`):
    ``starts[key]`` is the model the encoding ``key`` starts from (``wants`` are already
    keyed by it) and ``held[i]`` client ``i``'s models, baseline tick -> the model it holds
    for that snapshot; a client is moved onto a delta only when it holds the very model
    the delta starts from (one with no model recorded for the baseline cannot be).
    ``resets``: more deltas to choose from, each starting from the spec's model
    (``starts[key]`` None: :meth:`CarriedModels.resets`), which any client that acked
    their baseline and predictor can take, and so can every client that wants the same
    delta from its own model (among them those whose baseline is a full snapshot not yet
    acked), worth a little less than its own model's: taken off per client served, not
    scaled by a waiter's weight, so a reset serving a waiter and others beats the waiter's
    own model alone. With both, the plan defers as few clients as the plan without models
    would on the same acks."""
    keys: dict[tuple, int] = {}
    for want in wants:
        keys.setdefault(want, len(keys))
    n = len(wants)
    own = np.fromiter((keys[w] for w in wants), np.int64, n)
    if share and held is not None:
        for reset in resets:
            keys.setdefault(reset, len(keys))
    pairs = list(keys)
    # value[k, i]: what serving client i from encoding k is worth (0: it cannot decode it).
    value = (own[None, :] == np.arange(len(pairs))[:, None]).astype(np.float64)
    cost = np.zeros(len(pairs))  # taken off per client served, whatever its waits (resets)
    if share:
        full = np.fromiter((want[0] < 0 for want in wants), bool, n)  # nothing to share
        acked = np.asarray(acked, np.int64)
        masks = np.asarray(masks, np.uint64)
        # ok[k, i]: client i acked encoding k's baseline (within reach) and predictor
        # (one array op per test for all encodings: a loop of small ones cost 2-4x the time)
        base = np.fromiter((pair[0] for pair in pairs), np.int64, len(pairs))[:, None]
        pred = np.fromiter((pair[1] for pair in pairs), np.int64, len(pairs))[:, None]
        ok = (base >= 0) & ~full & _holds(acked, masks, base, every, reach)
        ok &= (pred < 0) | _holds(acked, masks, pred, every, 63)
        if held is not None:
            delta_ids: dict[tuple, int] = {}  # which delta each client wants, whatever its model
            delta = np.fromiter((delta_ids.setdefault(want[:-1], len(delta_ids)) for want in wants), np.int64, n)
            for k, key in enumerate(pairs):
                if key[0] < 0:
                    continue
                start = starts[key]
                if start is None:  # a reset: whatever model the client holds
                    cost[k] = _RESET_COST
                    # ... and to the clients that want this very delta from their own model
                    # (a full snapshot's that is not acked yet among them: acks cannot tell)
                    value[k] = delta == delta_ids.get(key[:-1], -1)
                else:
                    ok[k] &= np.fromiter((h.get(key[0]) is start for h in held), bool, n)
        age = (acked - base) // every  # older baselines make bigger deltas
        value = np.maximum(value, np.where(ok, np.maximum(0.05, 1.0 - _AGE_COST * age), 0.0))
    # A client that waited outweighs all that did not; waiting longer, more so.
    weight = 1.0 + np.minimum(np.asarray(waits, np.float64), 8.0) * (n + 1)
    serves = value > 0
    newest = np.array([pair[0] for pair in pairs], np.float64)
    tiebreak = (newest - newest.min() + 1.0) / (newest.max() - newest.min() + 2.0) * 1e-3  # newest first
    plan: list[tuple | None] = [None] * n
    open_ = np.ones(n, bool)
    for _ in range(budget):
        gain = value @ (weight * open_)
        k = int(np.argmax(gain - cost * (serves @ open_.astype(np.float64)) + tiebreak))  # (float: bool @ bool is an any, not a count)
        if gain[k] <= 0:
            break
        served = serves[k] & open_
        for i in np.flatnonzero(served):
            plan[i] = pairs[k]
        open_ &= ~served
        if not open_.any():
            break
    return plan


def _holds(acked: np.ndarray, masks: np.ndarray, tick, every: int, reach: int) -> np.ndarray:
    """Which clients acked snapshot ``tick`` and hold it no more than ``reach`` snapshots
    behind their newest ack (``tick`` a column of ticks: a row per tick)."""
    back = (acked - tick) // every
    ok = (acked >= 0) & (back >= 0) & (back <= min(reach, 63))
    bits = (masks >> np.clip(back, 0, 63).astype(np.uint64)) & np.uint64(1)
    return ok & (bits == 1)


def one_encoding(keys: list) -> bool:
    """Whether every client's encoding key is the same (the usual case): told by one
    ``list.count`` in C, before any key is hashed."""
    return not keys or keys.count(keys[0]) == len(keys)


def second_half(keys: list[tuple]) -> set[tuple]:
    """Which of a snapshot's encodings to leave for the next tick, so that no tick does more
    than about half of them: snapshots go every ``every`` ticks and the ticks between do
    none, so the snapshot tick's p99 halves for one tick (16 ms at 60 Hz) of delay to some
    clients, well inside their interpolation delay. ``keys``: each client's encoding.
    With ``k`` distinct encodings, the ``k // 2`` that serve the fewest clients are left
    (first seen first among equals): most clients get the snapshot on time."""
    if one_encoding(keys):
        return set()
    count: dict[tuple, int] = {}
    for key in keys:
        count[key] = count.get(key, 0) + 1
    order = sorted(count, key=count.__getitem__, reverse=True)  # stable: first seen first
    return set(order[(len(order) + 1) // 2 :])
