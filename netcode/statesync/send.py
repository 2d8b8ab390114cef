# cython: annotation_typing=False
"""Every client's share of a snapshot: whether it is due one, against which baseline, and
its parts behind its own prefix, sealed on its session and queued.

A 100-client room at 30 snapshots a second does this 3000 times a second, so it is compiled
(Cython's pure-Python mode, ``send.pxd``) with the peer record, its send pacer and the
session's outbox it calls as C functions; the same source runs as plain Python where there
is no compiler. What a snapshot is encoded against, shared between clients (the encode
budget) and how it is encoded is the server's
(:class:`~netcode.statesync.server.StateSyncServer`); this only asks each client's pacing
and holdings, and sends.
"""

from __future__ import annotations

from netcode.session.wire import PacketType
from netcode.statesync.wire import pack_snapshot_prefix

__all__ = ["SnapshotSender"]

_TALLY_EVERY = 8  # snapshots between the input tallies a client is sent
_SNAPSHOT = int(PacketType.SS_SNAPSHOT)
IN_DEBT = -3  # full_candidate: a resend is due and the client's pacing budget is in debt
_IN_DEBT = IN_DEBT  # a C constant when compiled


class SnapshotSender:
    """Sends a state-sync server's snapshot parts to its clients, one client at a time."""

    def __init__(self, server):
        self.server = server  # for its peers and sessions, and the input tally now and then
        self.outbox = server.session.outbox
        self.applied = server.applied  # newest input tick applied, per slot (the server updates it in place)
        self.snapshot_every = server.snapshot_every
        self.stats = server.stats_counters
        self.history = server.history
        self.grid = server.grid is not None
        self.reach = 0.75 * server.history.span / server.tick_rate  # a full candidate must still be held when acked
        # The last client's prefix and payloads in :meth:`send`'s cache: the next client
        # usually has the same input lag and encoding, and then reuses them without building
        # and hashing the cache's keys (``cache`` is one snapshot's dict, held here until
        # the next, so a new one is never taken for it).
        self._memo_cache = None
        self._memo_applied = -2
        self._memo_prefix = b""
        self._memo_parts = None
        self._memo_hit = None

    def wants(self, now: float) -> list:
        """Every client a snapshot may go to now, as ``(peer, conn, cell, paced, key)``:
        ``key`` is the encoding it would get on its own, (baseline, predictor, their cells,
        its cell now) with the cells None without interest management and the baseline -1
        for a full snapshot; ``paced``: the send spends from its pacing budget. Refills
        each client's budget; a paced client whose budget is in debt, and a delta its
        pacing holds, are left out."""
        history = self.history
        grid = self.grid
        connections = self.server.session.connections
        out = []
        last = None
        for peer in self.server.peers.values():
            conn = connections.get(peer.conn_id)
            if conn is None:
                continue
            cell = peer.cell if grid else None
            pacer = peer.pacer
            acked = peer.acked
            cells = peer.cells
            lag = pacer.pace(now, acked, conn)
            base = acked if history.has(acked) and (not grid or acked in cells) else -1
            pred = peer.acked_before
            if base < 0 or not history.has(pred) or (grid and pred not in cells):
                pred = -1
            if base < 0:
                base = self.full_candidate(peer, conn, now)
                if base == _IN_DEBT:
                    continue  # (no delta either)
                if not history.has(base) or (grid and base not in cells):
                    base = -1
            if base >= 0 and pacer.holds():
                continue  # its process stalled or its path queues: the next delta would repeat this one
            paced = base < 0 or lag or pacer.recovering()
            if paced and not pacer.allows():
                continue
            if grid:
                out.append((peer, conn, cell, paced, (base, pred, cells.get(base), cells.get(pred), cell)))
                continue
            # No cells to look up (the dict stays empty without a grid); clients with the
            # same baseline and predictor share one key object, which :meth:`deliver`
            # then matches by identity.
            if last is None or last[0] != base or last[1] != pred:
                last = (base, pred, None, None, None)
            out.append((peer, conn, None, paced, last))
        return out

    def full_candidate(self, peer, conn, now: float) -> int:
        """The full snapshot this client was sent and has not acked yet, to send deltas
        against while its ack is on the way (-1: none, or waited long enough: send a new
        full). Parts of it that went missing are sent again first (:meth:`_resend_full`;
        IN_DEBT: after a timeout, not now, the pacing budget is in debt)."""
        pacer = peer.pacer
        if pacer.full_tick < 0 or peer.acked >= pacer.full_tick:
            return pacer.candidate(peer.acked, conn.last_recv, self.reach)
        # Parts whose every copy the client's acks show missing go again at once (even in
        # debt: see _resend_full), where a timeout of a quarter second at least sent all of
        # them again: one lost part held a joining client 0.28 s, now 0.08 s.
        lost = pacer.lost_parts(conn)
        if lost:
            pacer.redundant = True
            if not self._resendable(pacer):
                return -1  # a newer full (the copies stay on)
            self._resend_full(peer, conn, lost, now, False)
            return pacer.full_tick
        rtt = conn.rtt
        timeout = max(0.25, 2 * rtt.rtt + 4 * rtt.jitter)
        # Taken as lost after ``timeout`` only once the client's session has acked a packet
        # sent after the full one's: then a part went missing, and the acks could not say
        # which (they name 33 sends). A client that acks nothing newer is behind (a busy
        # process still reading its queue), and resending would only deepen the queue: that
        # one gets the history's reach (measured: 64 bots joining at once on a loaded
        # machine were sent 230 full snapshots, 3.6 each, in 20 s).
        if conn.newest_acked() > pacer.full_through:
            base = pacer.candidate(peer.acked, conn.last_recv, min(timeout, self.reach), False)
            if base < 0 and pacer.full_tick >= 0:  # timed out unacked, not acked: parts were lost
                pacer.redundant = True
                if self._resendable(pacer):
                    # (every part, if the session acked them all: the client still lacks it)
                    parts = pacer.unheld_parts() or list(range(len(pacer.full_parts)))
                    return pacer.full_tick if self._resend_full(peer, conn, parts, now, True) else _IN_DEBT
            return base
        return pacer.candidate(peer.acked, conn.last_recv, self.reach)

    def _resendable(self, pacer) -> bool:
        """Whether the client's outstanding full snapshot is recent enough to send again: the
        history must still hold it when the client acks it, for deltas against it."""
        return self.server.tick - pacer.full_tick <= self.history.span // 2

    def _resend_full(self, peer, conn, which: list, now: float, timed_out: bool) -> bool:
        """Send parts ``which`` of the client's outstanding full snapshot again, as first sent
        (twice over: see ``SendPacer.redundant``), spending from its pacing budget: whether
        they went. Its parts apply on their own, so the client completes the snapshot with
        those it lacked, and its deltas go on against it. Parts the acks showed lost go even
        while the budget is in debt (as TCP's fast retransmit ignores its window): they are
        a few, one resend of each at a time, and the full they complete is what put the
        budget in debt; held back, they waited seconds at a lossy client's floor rate while
        the full aged out of reach, and a newer one deepened the debt (one of 16 clients
        of an arena at 20% loss joined after 4.8 s). ``timed_out``: no ack said which parts
        were lost (see :meth:`full_candidate`): those wait while the budget is in debt, and
        the client's silence counts towards the backoff."""
        pacer = peer.pacer
        if timed_out and not pacer.allows():
            return False
        size = self._queue_full(peer, conn, pacer.full_tick, pacer.full_parts, which, now, None)
        pacer.full_at = now
        if timed_out:
            pacer.unanswered += 1
        pacer.spend(size)
        peer.counters["full_resends"] += 1
        self.stats["bytes_snapshots"] += size
        return True

    def send_full(self, peer, conn, tick: int, parts: list, now: float, cache) -> int:
        """Queue full snapshot ``tick`` (``parts``) for the client, and make it the full its
        pacer waits on (:meth:`full_candidate`); returns the bytes queued. ``cache``: as
        :meth:`send`'s, but the server's stats are the caller's to count."""
        peer.pacer.sent_full(tick, now, parts)
        peer.counters["full_snapshots"] += 1
        return self._queue_full(peer, conn, tick, parts, list(range(len(parts))), now, cache)

    def _queue_full(self, peer, conn, tick: int, parts: list, which: list, now: float, cache) -> int:
        """Queue parts ``which`` (indices into ``parts``) of full snapshot ``tick``, twice when
        the client's last full lost parts (``SendPacer.redundant``), and tell its pacer which
        sends carried them; the bytes queued."""
        pacer = peer.pacer
        chosen = parts if len(which) == len(parts) else [parts[k] for k in which]
        size = 0
        for copy in range(2 if pacer.redundant else 1):
            first = conn.sends
            size += self._queue(peer, conn, tick, chosen, now, cache)
            pacer.carried(first, which)
        pacer.full_through = conn.sends - 1
        return size

    def jobs(self, wants: list, plan) -> list:
        """``wants`` (from :meth:`wants`) with each client's encoding from ``plan`` (one per
        client, None: it waits for the next snapshot, and is counted as deferred; ``plan``
        None: every client gets its own)."""
        out = []
        stats = self.stats
        n = len(wants)
        for i in range(n):
            want = wants[i]
            peer = want[0]
            key = want[4] if plan is None else plan[i]
            if key is None:
                peer.deferred += 1
                peer.counters["deferred_snapshots"] += 1
                stats["deferred"] += 1
                continue
            peer.deferred = 0
            out.append(want if key is want[4] else (peer, want[1], want[2], want[3], key))
        return out

    def deliver(self, tick: int, jobs: list, encode, encoded, payloads, now: float) -> None:
        """Send snapshot ``tick`` for each job ``(peer, conn, cell, paced, key)``: its parts
        are ``encoded[key]``, or ``encode(key)`` the first time (which keeps them there);
        ``payloads`` is :meth:`send`'s cache for this snapshot."""
        grid = self.grid
        depth = self.history.depth
        total = 0  # the snapshot bytes queued, counted in the stats once
        last_key = None
        parts = None
        for job in jobs:
            peer = job[0]
            conn = job[1]
            key = job[4]
            if key is not last_key:  # (consecutive clients usually share the key object)
                parts = encoded.get(key)
                if parts is None:
                    parts = encode(key)
                last_key = key
            pacer = peer.pacer
            if grid:
                cells = peer.cells
                cells[tick] = job[2]
                if len(cells) > depth:
                    del cells[min(cells)]
            if key[0] < 0:
                size = self.send_full(peer, conn, tick, parts, now, payloads)
            else:
                size = self._queue(peer, conn, tick, parts, now, payloads)
            total += size
            pacer.sent(tick, now)
            if job[3]:
                pacer.spend(size)
        if total:
            self.stats["bytes_snapshots"] += total

    def send(self, peer, conn, tick: int, parts: list, now: float, cache) -> int:
        """Queue ``parts`` of snapshot ``tick`` for ``peer`` on ``conn``; returns the bytes
        of payload queued. ``cache`` (a dict that lives for one snapshot, or None) keeps the
        prefixes and payloads clients share: clients with the same baseline and the same
        input lag get the same bytes, built once."""
        size = self._queue(peer, conn, tick, parts, now, cache)
        self.stats["bytes_snapshots"] += size
        return size

    def _queue(self, peer, conn, tick: int, parts: list, now: float, cache) -> int:
        """:meth:`send` but for the server's stats, which :meth:`deliver` adds up once a
        snapshot instead of once a client."""
        slot = peer.slot
        applied = self.applied[slot] if slot >= 0 else -1
        last = applied if applied >= 0 else None
        if slot >= 0 and (tick // self.snapshot_every) % _TALLY_EVERY == 0:
            # Now and then the prefix carries the client's input tally: its own bytes.
            prefix = pack_snapshot_prefix(tick, last, self.server.input_tally(slot))
            cache = None
        elif cache is None:
            prefix = pack_snapshot_prefix(tick, last)
        elif cache is self._memo_cache and applied == self._memo_applied:
            prefix = self._memo_prefix
        else:
            # Otherwise the prefix depends on the client only through ``applied`` (an int
            # key; the payloads' keys are tuples).
            prefix = cache.get(applied)
            if prefix is None:
                prefix = pack_snapshot_prefix(tick, last)
                cache[applied] = prefix
        if cache is not None and cache is self._memo_cache and parts is self._memo_parts and prefix is self._memo_prefix:
            hit = self._memo_hit
        else:
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
            if cache is not None:
                self._memo_cache = cache
                self._memo_applied = applied
                self._memo_prefix = prefix
                self._memo_parts = parts
                self._memo_hit = hit
        payloads, size = hit
        outbox = self.outbox
        for payload in payloads:
            outbox.send(conn, _SNAPSHOT, payload, now)
        counters = peer.counters
        counters["snapshot_bytes"] += size
        counters["parts"] += len(payloads)
        return size
