"""State-sync server, sans-IO: the server simulates and is the only truth.

Every tick it applies the inputs it holds (a late player's last input repeats), steps the
game and records what it applied. Every ``snapshot_every`` ticks it quantizes the replicated
state once, keeps it as a future baseline, and sends each client the delta from the newest
snapshot that client acked (a full snapshot when none is held any more):

* without interest management or a bandwidth budget every client sees the same entities,
  so the snapshot is encoded once per distinct baseline and the same part bytes go to
  every client that acked it, behind a few per-client bytes;
* with interest management each client sees the entities in the 3 x 3 grid cells around
  its own (created and destroyed on the client as things come and go); clients in the
  same cell see the same set, so encoding is still shared, per cell and baseline;
* with a byte budget a priority accumulator chooses what goes now, which makes encoding
  per client: the server then tracks, per entity, which snapshot's value each client holds.

A client that falls behind gets one full snapshot and then deltas against it, and full
snapshots and sends to a client whose acks lag are paced by its own AIMD byte budget
(:mod:`netcode.statesync.pacing`), so an overloaded client cannot pull the server into
sending full snapshots every time.

Each snapshot tells its client the newest of its input ticks the server has applied, and
the view delay clients report is written into the game's ``view_field`` so lag-compensated
hits are judged where the shooter saw the target (clamped to what the measured RTT allows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.model import Game

from netcode.errors import ProtocolError, UsageError
from netcode.statesync.history import after_sending, owed
from netcode.statesync.interest import InterestGrid
from netcode.statesync.priority import PriorityAccumulator
from netcode.mode.server import ModeServer
from netcode.statesync.carried import CarriedModels
from netcode.statesync.snapshot import SnapshotHistory, SnapshotSchema, encode_snapshot
from netcode.statesync.pacing import SendPacer
from netcode.statesync.baselines import one_encoding, plan_encodings, second_half
from netcode.statesync.peer import InputGate, StateSyncPeer
from netcode.statesync.send import IN_DEBT, SnapshotSender
from netcode.statesync.wire import StateSyncInfo
from netcode.session.wire import MAX_PACKET, SESSION_HEADER_SIZE, SESSION_OVERHEAD, PacketType

__all__ = ["StateSyncConfig", "StateSyncServer", "StateSyncPeer"]

_PART_BUDGET = MAX_PACKET - SESSION_OVERHEAD - 20  # room for a part after the prefix (with a tally)
SHARE_REACH = 8  # snapshots older than its newest ack a shared baseline may be (older: deferral wins)


@dataclass(frozen=True)
class StateSyncConfig:
    players: int
    seed: int = 1
    tick_rate: int | None = None  # default: the game's
    snapshot_rate: int = 30  # snapshots per second
    max_ahead: int = 240
    max_spectators: int = 64
    history: int = 64  # snapshots kept as baselines
    interest_cell: float | None = None  # interest grid cell size, in position units (None: off)
    bandwidth: float | None = None  # snapshot bytes per second per client (priority accumulator)
    input_packets_per_second: float = 180.0  # flood guard per client
    max_view_delay: float = 0.5  # seconds a shot may be judged in the past, on top of RTT
    pace_max: float = 131_072.0  # bytes/s per client for full snapshots and sends to a lagging client
    pace_min: float = 2_048.0  # the floor the pacing backs off to (below what a saturated client process drains)
    # Encodings of one snapshot at most (clients share baselines, the rest wait a snapshot:
    # netcode/statesync/baselines.py); None: one per distinct baseline the clients need.
    encode_budget: int | None = 6
    # Leave the encodings that serve the fewest clients for the tick after a snapshot's (it
    # has none of its own while snapshot_rate < tick rate): the snapshot tick does half the
    # work, for one tick of delay to some clients.
    spread_encodes: bool = True

    def __post_init__(self):
        if self.players < 1 or self.snapshot_rate < 1 or self.history < 4:
            raise UsageError("players, snapshot_rate must be >= 1 and history >= 4")
        if not 0 < self.pace_min <= self.pace_max:
            raise UsageError("pace_min must be > 0 and <= pace_max")
        if self.encode_budget is not None and self.encode_budget < 1:
            raise UsageError("encode_budget must be >= 1 (or None: no limit)")


class StateSyncServer(ModeServer):
    """One state-sync room. Drive it like any endpoint; call :meth:`on_tick` at the tick rate."""

    def __init__(self, game: Game, config: StateSyncConfig, **session):
        """``session``: ``secret`` (required), ``room``, ``session_config``, ``wall_offset``,
        ``rng``, ``recorder``: see :class:`~netcode.mode.server.ModeServer`."""
        super().__init__(game, config, **session)
        self.schema = SnapshotSchema(game.replication, self.state)
        if config.interest_cell is not None and self.schema.position is None:
            raise UsageError("interest management needs the game's replication spec to name a position field")
        self.grid = InterestGrid(config.interest_cell) if config.interest_cell is not None else None
        self._cells: dict[int, np.ndarray] = {}  # snapshot tick -> entity cells (grid on)
        self.snapshot_every = max(1, round(self.tick_rate / config.snapshot_rate))
        self.history = SnapshotHistory(self.schema, config.history, self.snapshot_every)
        self.per_client = config.bandwidth is not None
        self.applied = np.full(self.players, -1, np.int64)  # newest input tick applied, per slot
        self.view_delays = np.zeros(self.players, np.int64)  # per slot, from the clients' input packets
        self.stats_counters = {"snapshots": 0, "encodes": 0, "missing_inputs": 0, "clamped_inputs": 0, "bytes_snapshots": 0, "deferred": 0}
        self.input_gate = self.hot_packet = InputGate(self)  # SS_INPUT's rules, in one place
        self.sender = SnapshotSender(self)  # every snapshot's last step: prefix, seal, queue
        # The second half of the last snapshot's encodings, sent on the tick after it:
        # (tick, encode function, its encodings, payload cache, [(peer, conn, cell, paced, key), ...]).
        self._second_half: tuple | None = None

    def accept_info(self) -> bytes:
        return StateSyncInfo(
            self.players, self.seed, self.tick_rate, self.snapshot_every, self.tick, self.config.max_ahead
        ).pack()

    def make_peer(self, conn_id: int, slot: int) -> StateSyncPeer:
        priority = PriorityAccumulator(self.schema.capacity) if self.per_client and self.config.bandwidth is not None else None
        peer = StateSyncPeer(conn_id, slot, self.config.input_packets_per_second, priority)
        peer.pacer = SendPacer(self.config.pace_max, self.config.pace_min, hold=2 * self.snapshot_every / self.tick_rate)
        return peer

    def on_payload(self, conn, peer: StateSyncPeer, ptype: PacketType, payload: memoryview, now: float) -> None:
        if ptype is not PacketType.SS_INPUT:
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a state-sync server")
        # The dispatch hands SS_INPUT to the gate itself; this is for a server whose
        # ``hot_packet`` was switched off. The gate reads the payload after a session header.
        self.input_gate.take(peer, conn, bytes(SESSION_HEADER_SIZE) + bytes(payload), now)

    # -- the tick ---------------------------------------------------------------------------
    def on_tick(self, now: float) -> None:
        if self._second_half is not None:
            self._send_second_half(now)
        t = self.tick
        inputs, _have, missing, clamped = self.close_inputs(self.applied)  # (which stamps applied)
        self.stats_counters["clamped_inputs"] += clamped
        self.stats_counters["missing_inputs"] += missing
        if self.view_field:
            inputs[self.view_field] = np.where(self.present, self.view_delays, 0)
        if self.recorder is not None:
            self.recorder.record(t, inputs, self.state)
        self.game.step(self.state, inputs, t)
        self.tick = t + 1
        if self.tick % self.snapshot_every == 0:
            self._snapshot(now)

    def _snapshot(self, now: float) -> None:
        tick = self.tick
        codes, alive, extras = self.schema.quantize(self.state)
        self.history.add(tick, codes, alive, extras)
        self.stats_counters["snapshots"] += 1
        if self.grid is not None:
            c0, c1 = self.schema.columns_of[self.schema.position]
            self._cells[tick] = self.grid.cells(codes[:, c0:c1])
            self._cells.pop(tick - self.history.depth * self.snapshot_every, None)
            self._move_viewers(codes[:, c0:c1])
        if self.per_client:
            self._send_per_client(tick, codes, alive, extras, now)
        else:
            self._send_shared(tick, codes, alive, extras, now)

    def _send_parts(self, peer: StateSyncPeer, conn, tick: int, parts: list[bytes], now: float, cache: dict | None = None) -> int:
        """Queue ``parts`` for ``peer`` behind its prefix (compiled: :mod:`netcode.statesync.send`);
        ``cache`` lives for one snapshot and keeps what clients share. Returns the bytes queued."""
        return self.sender.send(peer, conn, tick, parts, now, cache)

    def _pace(self, peer: StateSyncPeer, conn, now: float) -> bool:
        """Refill and adjust the client's budget; whether its acks lag."""
        return peer.pacer.pace(now, peer.acked, conn)

    def _move_viewers(self, positions: np.ndarray) -> None:
        for peer in self.peers.values():
            if peer.slot >= 0:
                peer.cell = self.grid.viewer_cell(positions[self.game.player_entity(peer.slot)], peer.cell)

    def _view_of(self, tick: int, cell, alive: np.ndarray) -> np.ndarray:
        """What a client whose view was for ``cell`` saw at ``tick`` (everything alive when
        there is no grid, or for spectators)."""
        return alive if cell is None else self.grid.view(self._cells[tick], alive, cell)

    def _send_shared(self, tick: int, codes, alive, extras, now: float) -> None:
        """Encoding shared by every client with the same baseline, predictor and (with
        interest management) cells: the same bytes go to all of them. The predictor is the
        snapshot the client acked before its baseline, so entities moving steadily since then
        are coded as "as predicted"."""
        encoded: dict[tuple, list[bytes]] = {}
        views: dict = {}
        payloads: dict = {}
        history = self.history
        grid = self.grid is not None

        def view(t, cell, t_alive):
            key = (t, cell)
            if key not in views:
                views[key] = self._view_of(t, cell, t_alive)
            return views[key]

        carry = None
        if self.schema.coding is not None and self.schema.coding.carries:
            carry = CarriedModels(self.schema.coding, tick, tick - history.depth * self.snapshot_every)

        def encode(key: tuple) -> list[bytes]:
            """The parts for this baseline, predictor and cells, encoded once."""
            parts = encoded.get(key)
            if parts is not None:
                return parts
            base, pred, base_cell, pred_cell, cell = key[:5]
            start, end = carry.models(key) if carry is not None else (None, None)
            now_view = view(tick, cell, alive)
            if base < 0:
                parts = encode_snapshot(tick, codes, now_view, extras, budget=_PART_BUDGET, coding=self.schema.coding, start=start, end=end)
            else:
                i = history.index(base)
                predictor = None
                if pred >= 0:
                    j = history.index(pred)
                    pred_view = view(pred, pred_cell, history.alive[j])
                    predictor = (pred, history.codes[j], pred_view, self.schema.smooth)
                parts = encode_snapshot(
                    tick,
                    codes,
                    now_view,
                    extras,
                    budget=_PART_BUDGET,
                    base_tick=base,
                    base_codes=history.codes[i],
                    base_view=view(base, base_cell, history.alive[i]),
                    base_extras=history.extras[i],
                    predictor=predictor,
                    coding=self.schema.coding,
                    start=start,
                    end=end,
                )
            encoded[key] = parts
            self.stats_counters["encodes"] += 1
            return parts

        # Each client's pacing and baseline (compiled: :mod:`netcode.statesync.send`): one
        # encoding per distinct key, (baseline, predictor, their cells, the cell now); the
        # cells are None without interest management.
        sender = self.sender
        wants = sender.wants(now)
        if carry is not None:  # each encoding also by the model its clients hold for the baseline
            wants = carry.keyed(wants)
        plan = None
        budget = self.config.encode_budget
        keys = [w[4] for w in wants]
        if budget is not None and not one_encoding(keys) and len(set(keys)) > budget:
            plan = plan_encodings(
                keys,
                np.fromiter((w[0].acked for w in wants), np.int64, len(wants)),
                np.fromiter((w[0].acked_mask for w in wants), np.uint64, len(wants)),
                np.fromiter((w[0].deferred for w in wants), np.int64, len(wants)),
                budget,
                self.snapshot_every,
                SHARE_REACH,
                share=not grid,
                held=None if carry is None else [w[0].models for w in wants],
                starts=None if carry is None else carry.starts,
                resets=() if carry is None or grid else carry.resets(keys),
            )
        jobs = sender.jobs(wants, plan)
        spread = self.snapshot_every > 1 and self.config.spread_encodes
        later = second_half(keys if plan is None else [job[4] for job in jobs]) if spread else set()
        if later:
            now_jobs = [job for job in jobs if job[4] not in later]
            sender.deliver(tick, now_jobs, encode, encoded, payloads, now)
            self._second_half = (tick, encode, encoded, payloads, [job for job in jobs if job[4] in later], carry)
        else:
            now_jobs = jobs
            sender.deliver(tick, jobs, encode, encoded, payloads, now)
        if carry is not None:
            carry.delivered(now_jobs)

    def _send_second_half(self, now: float) -> None:
        """The encodings the last snapshot tick left for this one, to the clients still here."""
        tick, encode, encoded, payloads, jobs, carry = self._second_half
        self._second_half = None
        jobs = [job for job in jobs if self.peers.get(job[0].conn_id) is job[0] and self.connection(job[0]) is job[1]]
        self.sender.deliver(tick, jobs, encode, encoded, payloads, now)
        if carry is not None:
            carry.delivered(jobs)

    def _send_per_client(self, tick: int, codes, alive, extras, now: float) -> None:
        """A byte budget sends each client part of its view: encode per client, tracking
        which snapshot's value of each entity the client will hold."""
        cfg = self.config
        peers = [p for p in self.peers.values() if self.connection(p) is not None]
        if not peers:
            return
        history = self.history
        n = self.schema.capacity
        views = np.broadcast_to(alive, (len(peers), n)).copy()
        if self.grid is not None:
            for i, peer in enumerate(peers):
                if peer.slot >= 0:
                    views[i] = self._view_of(tick, peer.cell, alive)
        budget = None if cfg.bandwidth is None else max(64, int(cfg.bandwidth / cfg.snapshot_rate))
        coding = self.schema.coding
        carry = coding is not None and coding.carries
        for i, peer in enumerate(peers):
            conn = self.connection(peer)
            lag = self._pace(peer, conn, now)
            pacer = peer.pacer
            view = views[i]
            base_tick = peer.acked
            vt_base = peer.sent.get(base_tick)
            if vt_base is None:
                base_tick = self.sender.full_candidate(peer, conn, now)
                if base_tick == IN_DEBT:
                    continue  # (no delta either)
                vt_base = peer.sent.get(base_tick)
            if vt_base is not None and carry and base_tick not in peer.models:
                vt_base = None  # (not while both are kept alike: a delta needs the model too)
            if vt_base is not None and pacer.holds():
                continue
            paced = vt_base is None or lag or pacer.recovering()
            if paced and not pacer.allows():
                continue
            base_extras = None
            if vt_base is None:
                base_tick = None
                vt_base = np.full(n, -1, np.int64)
            else:
                base_extras = history.extras[history.index(base_tick)] if history.has(base_tick) else None
            # The client's baseline, per entity: the snapshot whose value it holds. Values
            # older than our history can only be replaced whole (or destroyed).
            base_codes, avail, changed, differing = history.held(vt_base, codes)
            wanted, priority, cost, gone, holds = owed(vt_base, view, avail, changed, differing, self.schema.columns)
            include = wanted
            if budget is not None:
                must = np.zeros(n, bool)
                if peer.slot >= 0:
                    must[self.game.player_entity(peer.slot)] = True
                include = peer.priority.choose(wanted, priority, cost, budget, must)
            start = end = None
            if carry:  # the model this client holds for its baseline (none yet for a full snapshot)
                start = None if base_tick is None else peer.models[base_tick]
                end = coding.carried()
            parts = encode_snapshot(
                tick,
                codes,
                view,
                extras,
                budget=_PART_BUDGET,
                base_tick=base_tick,
                base_codes=base_codes,
                base_view=avail,
                base_extras=base_extras,
                include=include,
                also_destroy=gone,
                holds=holds,
                coding=coding,
                start=start,
                end=end,
            )
            if carry:  # kept while the client may still ack it, at most as long as its entry in peer.sent
                models = peer.models
                models[tick] = end
                # Its deltas start from the newest snapshot it acked, which only moves on: the
                # models before it are never started from again (22 KB each for the arena's
                # spec: a history of them was 1.4 MB a client).
                for old in [t for t in models if t < peer.acked]:
                    del models[old]
                if len(models) > cfg.history:
                    del models[min(models)]
            self.stats_counters["encodes"] += 1
            peer.sent[tick] = after_sending(vt_base, view, avail, changed, include, tick)
            if len(peer.sent) > cfg.history:
                del peer.sent[min(peer.sent)]
            if base_tick is None:
                size = self.sender.send_full(peer, conn, tick, parts, now, None)
                self.stats_counters["bytes_snapshots"] += size
            else:
                size = self._send_parts(peer, conn, tick, parts, now)
            pacer.sent(tick, now)
            if paced:
                pacer.spend(size)

    # -- inspection -------------------------------------------------------------------------
    def stats(self) -> dict:
        return {
            "mode": "statesync",
            "tick": self.tick,
            "players": int(self.present.sum()),
            "spectators": sum(1 for p in self.peers.values() if p.slot < 0),
            **self.stats_counters,
            "session": self.session.stats(),
            "peers": self.peer_stats(),
        }

    def peer_stats(self) -> dict:
        out = super().peer_stats()
        for p in self.peers.values():
            key = p.slot if p.slot >= 0 else f"spectator-{p.conn_id}"
            if key in out and p.pacer is not None:
                # How many ticks old the newest snapshot it acked is: the baseline its next
                # delta is coded against (None before its first ack).
                ack_age = self.tick - p.acked if p.acked >= 0 else None
                out[key].update(p.pacer.counters, pace_rate=round(p.pacer.rate), ack_age_ticks=ack_age)
        return out
