# cython: annotation_typing=False
"""The last step of every snapshot: each client's parts, behind its own prefix, sealed on its
session and queued.

A 100-client room at 30 snapshots a second does this 3000 times a second, so it is compiled
(Cython's pure-Python mode, ``send.pxd``) with the peer record and the session's outbox it
calls as C functions; the same source runs as plain Python where there is no compiler.
Which parts a client gets (its baseline, pacing) is the server's decision
(:class:`~netcode.statesync.server.StateSyncServer`); this only sends them.
"""

from __future__ import annotations

from netcode.session.wire import PacketType
from netcode.statesync.wire import pack_snapshot_prefix

__all__ = ["SnapshotSender"]

_TALLY_EVERY = 8  # snapshots between the input tallies a client is sent
_SNAPSHOT = int(PacketType.SS_SNAPSHOT)


class SnapshotSender:
    """Sends a state-sync server's snapshot parts to its clients, one client at a time."""

    def __init__(self, server):
        self.server = server  # for the input tally now and then
        self.outbox = server.session.outbox
        self.applied = server.applied  # newest input tick applied, per slot (the server updates it in place)
        self.snapshot_every = server.snapshot_every
        self.stats = server.stats_counters

    def send(self, peer, conn, tick: int, parts: list, now: float, cache) -> int:
        """Queue ``parts`` of snapshot ``tick`` for ``peer`` on ``conn``; returns the bytes
        of payload queued. ``cache`` (a dict that lives for one snapshot, or None) keeps the
        prefixes and payloads clients share: clients with the same baseline and the same
        input lag get the same bytes, built once."""
        slot = peer.slot
        applied = self.applied[slot] if slot >= 0 else -1
        last = applied if applied >= 0 else None
        if slot >= 0 and (tick // self.snapshot_every) % _TALLY_EVERY == 0:
            # Now and then the prefix carries the client's input tally: its own bytes.
            prefix = pack_snapshot_prefix(tick, last, self.server.input_tally(slot))
            cache = None
        elif cache is None:
            prefix = pack_snapshot_prefix(tick, last)
        else:
            # Otherwise the prefix depends on the client only through ``applied`` (an int
            # key; the payloads' keys are tuples).
            prefix = cache.get(applied)
            if prefix is None:
                prefix = pack_snapshot_prefix(tick, last)
                cache[applied] = prefix
        key = (id(parts), prefix)
        hit = cache.get(key) if cache is not None else None
        if hit is None:
            payloads = [prefix + part for part in parts]
            size = 0
            for payload in payloads:
                size += len(payload)
            hit = (payloads, size)
            if cache is not None:
                cache[key] = hit
        payloads, size = hit
        outbox = self.outbox
        for payload in payloads:
            outbox.send(conn, _SNAPSHOT, payload, now)
        counters = peer.counters
        counters["snapshot_bytes"] += size
        counters["parts"] += len(payloads)
        self.stats["bytes_snapshots"] += size
        return size
