"""State-sync client, sans-IO: predict your own inputs, reconcile with the server, show the
rest interpolated.

* **Prediction**: the client stamps its controls onto ticks ahead of the server (as lockstep
  does, so they arrive in time) and immediately steps its own copy of the state with them,
  so the player's own entity answers at once.
* **Reconciliation**: when a snapshot of tick s arrives with the player's entity in it, the
  client loads the server's state of tick s into its copy and re-applies its own inputs
  for ticks s.. up to the present. Where that lands differs from what was shown only when
  the server disagreed (a hit, a wall, a lost input); the difference is not snapped but
  added to a display offset that decays over ``smoothing`` seconds. ``reconcile_every``
  (ticks, default 1: every snapshot) spaces reconciliations out: each costs a re-run of the
  ticks since the snapshot, which is most of a headless bot's work.
* **Interpolation**: everyone else is drawn at a render tick ``interp_delay`` behind the
  server, between the two snapshots around it (see :mod:`netcode.statesync.interpolation`).

Snapshot parts are applied to a copy of the baseline reconstruction they name; a snapshot
whose parts have all arrived is acked, and becomes a baseline for the server.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Hashable

import numpy as np

from engine.model import Game
from engine.quantize import Angle
from engine.state import State

from netcode.session.connection import SessionConfig
from netcode.errors import ProtocolError, UsageError
from netcode.events import Connected
from netcode.mode.inputs import StampedInputs
from netcode.statesync.interpolation import Sample, SnapshotBuffer
from netcode.mode.client import ModeClient
from netcode.session import ClientState
from netcode.statesync.snapshot import SnapshotSchema, apply_extras, apply_part, decode_part
from netcode.statesync.wire import StateSyncInfo, pack_ss_input, parse_snapshot_prefix
from netcode.mode.timesync import ServerClock, input_lead
from netcode.session.wire import PacketType, Reader

__all__ = ["StateSyncClient", "RemoteView"]


@dataclass
class _Recon:
    """The client's reconstruction of one snapshot (its baseline plus the parts received)."""

    codes: np.ndarray
    view: np.ndarray
    extras: bytes | None
    parts: int
    received: set = field(default_factory=set)
    covered: np.ndarray | None = None
    base: int | None = None
    predictor: int | None = None
    motion: np.ndarray | None = None  # entropy-coded parts' contexts (see SnapshotSchema.motion)
    start: tuple | None = None  # carry=True specs: the coder model the baseline's left (None: the spec's)
    model: tuple | None = None  # ... and the one this snapshot's leaves, for those coded against it
    reset: bool = False  # its parts start from the spec's model instead (RESET: the server re-merged models)

    @property
    def complete(self) -> bool:
        return len(self.received) == self.parts


@dataclass(frozen=True)
class RemoteView:
    """What to draw for everyone: per replicated field, values at ``tick`` (interpolated
    where the field blends), and which entities are shown."""

    tick: float
    fields: dict[str, np.ndarray]
    visible: np.ndarray


class StateSyncClient(ModeClient):
    """The client end of a state-sync room, sans-IO: sends the player's inputs, applies
    snapshots, predicts and reconciles its own entity, interpolates the others (see the
    module docstring)."""

    MODE = "statesync"

    def __init__(
        self,
        game: Game,
        *,
        server: Hashable,
        token: bytes,
        interp_delay: float | None = None,
        smoothing: float = 0.1,
        snap_distance: float | None = None,
        max_extrapolation: float = 0.25,
        send_every: int = 1,
        max_ticks_per_update: int = 120,
        reconcile_every: int = 1,
        session_config: SessionConfig | None = None,
        rng: random.Random | None = None,
    ):
        if game.replication is None:
            raise UsageError(f"{game.describe()} declares no replication spec: it cannot run in state sync")
        super().__init__(game, server=server, token=token, session_config=session_config, rng=rng)
        self.interp_delay = interp_delay  # seconds; None: two snapshot intervals plus jitter
        self.smoothing = smoothing
        self.snap_distance = snap_distance
        self.max_extrapolation = max_extrapolation
        self.send_every = send_every
        self.max_ticks_per_update = max_ticks_per_update
        self.reconcile_every = max(1, reconcile_every)
        self.info: StateSyncInfo | None = None
        self.clock: ServerClock | None = None
        self.schema: SnapshotSchema | None = None
        self.predicted: State | None = None  # our copy, at predicted_tick
        self.predicted_tick = 0
        # Ticks the prediction has moved past the newest it reached before, this match: the
        # client's progress. Ticks re-run after a reconciliation (or after the clock's estimate
        # stepped back) are work, not progress, and count once.
        self.progress = 0
        self._newest_predicted = 0
        self.buffer: SnapshotBuffer | None = None
        self._recons: dict[int, _Recon] = {}
        self.acked = -1  # newest complete snapshot
        self.applied = -1  # newest of our input ticks the server applied
        self._pending_reconcile = -1  # newest snapshot with our entity, not yet reconciled
        self._reconciled = -1
        self._own = StampedInputs(self.itemsize)
        self._updates = 0
        self._last_update: float | None = None
        self.offset: np.ndarray | None = None  # display correction of our entity's position
        self.counters = {
            "parts": 0,
            "snapshots_complete": 0,
            "no_baseline": 0,
            "reconciliations": 0,
            "corrections": 0,
            "predicted_ticks": 0,
            "full_snapshots": 0,
        }

    def reconnect(self, now: float) -> None:
        self._recons.clear()  # the new session starts from a full snapshot
        self.acked = -1
        self._pending_reconcile = self._reconciled  # its reconstruction is gone with them
        super().reconnect(now)

    def on_server_restart(self, now: float) -> None:
        # A new match: its ticks, snapshots and clock have nothing to do with the old one's,
        # so prediction, input stamping and the clock estimate start over.
        self._recons.clear()
        self.acked = self.applied = self._pending_reconcile = self._reconciled = -1
        self._own = StampedInputs(self.itemsize)
        self.info = self.clock = self.schema = self.predicted = self.buffer = self.offset = None
        self.predicted_tick = 0

    def on_connected(self, ev: Connected, now: float) -> None:
        self.info = StateSyncInfo.parse(ev.info)
        self.clock = ServerClock(self.info.tick_rate)  # a fresh estimate each session (see LockstepClient)
        self.clock.seed(self.info.server_tick, now)
        if self.predicted is None:
            self.predicted = self.game.create(self.info.seed, self.info.players)
            self.predicted_tick = self._newest_predicted = self.info.server_tick
            self.schema = SnapshotSchema(self.game.replication, self.predicted)
            self._make_buffer()

    def _make_buffer(self) -> None:
        schema = self.schema
        wrap = np.zeros(schema.columns, np.int64)
        for name, q, c, w, _, _ in schema.fields:
            if schema.smooth[c] and isinstance(q, Angle):
                wrap[c : c + w] = 1 << q.bits
        blend = schema.smooth
        self.buffer = SnapshotBuffer(schema.capacity, schema.columns, blend, wrap)

    # -- snapshots --------------------------------------------------------------------------
    def on_payload(self, ptype: PacketType, payload: memoryview, now: float) -> None:
        if ptype is not PacketType.SS_SNAPSHOT:
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a state-sync client")
        if self.schema is None:
            raise ProtocolError("no_info", "snapshot before ACCEPTED")
        r = Reader(payload)
        applied, tally = parse_snapshot_prefix(r)
        if tally is not None:
            self.input_tally = tally
        schema = self.schema
        part = decode_part(r.view(r.remaining), schema.capacity, schema.columns, schema.extras_size, schema.coding)
        tick = part.tick
        if applied is not None:
            self.applied = max(self.applied, tick + applied)
        self.clock.sample(tick - 1, now, self.session.connection.rtt)
        recon = self._recons.get(tick)
        if recon is None:
            extras = motion = None
            if part.base is None:
                self.counters["full_snapshots"] += 1
                codes = np.zeros((schema.capacity, schema.columns), np.int64)
                view = np.zeros(schema.capacity, bool)
            else:
                base = self._recons.get(part.base)
                older = self._recons.get(part.predictor) if part.predictor is not None else base
                if base is None or not base.complete or older is None or not older.complete:
                    self.counters["no_baseline"] += 1
                    return  # the server used a baseline we dropped: its next snapshot won't
                codes, view, extras = base.codes.copy(), base.view.copy(), base.extras
                if part.predictor is not None:  # start from where things were heading
                    codes = schema.predict(base.codes, base.view, older.codes, older.view, tick, part.base, part.predictor)
                    motion = schema.motion(base.codes, base.view, older.codes, older.view)
                else:
                    motion = schema.motion(base.codes, base.view)
            carries = schema.coding is not None and schema.coding.carries
            recon = _Recon(
                codes,
                view,
                extras,
                part.count,
                covered=np.zeros(schema.capacity, bool),
                base=part.base,
                predictor=part.predictor,
                motion=motion,
                # (a RESET part starts from the spec's model, whichever the baseline left)
                start=None if not carries or part.base is None or part.reset else self._recons[part.base].model,
                model=schema.coding.carried() if carries else None,
                reset=part.reset,
            )
            self._recons[tick] = recon
        elif part.count != recon.parts or part.base != recon.base or part.predictor != recon.predictor or part.reset != recon.reset:
            raise ProtocolError("bad_snapshot", "parts of one snapshot disagree on count or baselines")
        if part.index in recon.received:
            return
        apply_part(part, recon.codes, recon.view, schema.coding, recon.motion, recon.start, recon.model)
        recon.received.add(part.index)
        recon.covered[part.lo : part.hi] = True
        recon.extras = apply_extras(part, recon.extras)
        self.counters["parts"] += 1
        self.buffer.put(tick, recon.codes, recon.view, recon.covered)
        if recon.complete:
            self.counters["snapshots_complete"] += 1
            if tick > self.acked:
                self.acked = tick
                self._forget_before(tick - 64 * self.info.snapshot_every)
        own = self._own_entity()
        if own is not None and recon.covered[own] and tick > self._pending_reconcile:
            self._pending_reconcile = tick

    def _forget_before(self, tick: int) -> None:
        for t in [t for t in self._recons if t < tick]:
            del self._recons[t]

    def _own_entity(self) -> int | None:
        return None if self.slot is None or self.slot < 0 else self.game.player_entity(self.slot)

    # -- the update -----------------------------------------------------------------------
    def update(self, now: float) -> None:
        """Stamp inputs, reconcile with the newest snapshot, predict up to the present,
        decay the display correction, send our packet."""
        if self.session.state is not ClientState.CONNECTED or self.info is None:
            return
        rate = self.info.tick_rate
        rtt = self.session.connection.rtt
        ahead = self.clock.one_way(rtt, now)
        server_tick = self.clock.tick_at(now, ahead)
        present = int(math.ceil(server_tick + input_lead(ahead, rtt.jitter, rate, self.send_every, self.info.max_ahead)))
        if not self.spectator:
            self._own.stamp(int(server_tick) + 1, present, self._input)
            self._predict(present)
        if self.offset is not None and self._last_update is not None and self.smoothing > 0:
            self.offset *= math.exp(-(now - self._last_update) / self.smoothing)
        self._last_update = now
        self._updates += 1
        if self._updates % self.send_every == 0:
            self._send(now, server_tick, present)

    def _predict(self, present: int) -> None:
        s = self._pending_reconcile
        own = self._own_entity()
        pos = self.schema.position
        before = None
        if s >= self._reconciled + self.reconcile_every and s <= present:
            recon = self._recons[s]
            if pos is not None and self.predicted_tick > s:
                before = (self.predicted_tick, np.array(self.predicted[pos][own], np.float64))
            self.schema.apply(self.predicted, recon.codes, recon.view, recon.extras)
            self.predicted_tick = s
            self._reconciled = s
            self.counters["reconciliations"] += 1
        target = min(present, self.predicted_tick + self.max_ticks_per_update)
        inputs = self.game.neutral_inputs(self.info.players)
        raw = inputs.view(np.uint8).reshape(self.info.players, self.itemsize)
        while self.predicted_tick < target:
            t = self.predicted_tick
            mine = self._own.get(t)
            raw[self.slot] = mine if mine is not None else self._input
            self.game.step(self.predicted, inputs, t)
            self.predicted_tick = t + 1
            self.counters["predicted_ticks"] += 1
            if before is not None and self.predicted_tick == before[0]:
                self._correct(before[1], np.array(self.predicted[pos][own], np.float64))
                before = None
        if self.predicted_tick > self._newest_predicted:
            self.progress += self.predicted_tick - self._newest_predicted
            self._newest_predicted = self.predicted_tick

    def _correct(self, shown: np.ndarray, now_predicted: np.ndarray) -> None:
        """The reconciled prediction moved our entity: fold the jump into the display offset."""
        jump = shown - now_predicted
        if not jump.any():
            return
        self.counters["corrections"] += 1
        if self.snap_distance is not None and np.abs(jump).max() > self.snap_distance:
            self.offset = None  # a teleport (respawn): show it at once
            return
        self.offset = jump if self.offset is None else self.offset + jump

    def _send(self, now: float, server_tick: float, present: int) -> None:
        slot = 0xFF if self.spectator else self.slot
        render = self.render_tick(now)
        view_delay = int(round(present - render)) if render is not None else 0
        records = None
        first = 0
        if not self.spectator:
            first, records = self._own.unacked(self.applied)
        payload = pack_ss_input(slot, None if self.acked < 0 else self.acked, view_delay, first, records)
        self.session.send(PacketType.SS_INPUT, payload, now)

    # -- what to draw ---------------------------------------------------------------------
    def delay_ticks(self) -> float:
        """How far behind the server's present remote entities are shown, in ticks."""
        rate = self.info.tick_rate
        if self.interp_delay is not None:
            return self.interp_delay * rate
        jitter = self.session.connection.rtt.jitter if self.session.connection else 0.0
        return 2 * self.info.snapshot_every + 2 * jitter * rate

    def render_tick(self, now: float) -> float | None:
        """The tick remote entities are drawn at: the delay behind the newest snapshots as
        they arrive (not behind the server's present, which they reach one-way later)."""
        if self.clock is None or not self.clock.ready or self.session.connection is None:
            return None
        return self.clock.tick_at(now, 0.0) - self.delay_ticks()

    def sample(self, now: float) -> Sample | None:
        tick = self.render_tick(now)
        if tick is None or self.buffer is None:
            return None
        return self.buffer.sample(tick, self.max_extrapolation * self.info.tick_rate)

    def remote_view(self, now: float) -> RemoteView | None:
        """Every replicated field at the render tick, for drawing everyone else."""
        sample = self.sample(now)
        if sample is None:
            return None
        fields = {}
        for name, q, c, w, shape, dtype in self.schema.fields:
            values = q.dequantize(sample.codes[:, c : c + w], np.dtype(np.float64))
            fields[name] = values.reshape((len(values),) + shape[1:])
        return RemoteView(sample.tick, fields, sample.visible)

    def own_position(self) -> np.ndarray | None:
        """Our entity's predicted position plus the decaying correction: what to draw."""
        own = self._own_entity()
        pos = self.schema.position if self.schema else None
        if own is None or pos is None or self.predicted is None:
            return None
        shown = np.array(self.predicted[pos][own], np.float64)
        return shown if self.offset is None else shown + self.offset

    def stats(self) -> dict:
        conn = self.session.connection
        return {
            **(conn.stats() if conn is not None else {}),
            "slot": self.slot,
            "snapshot_acked": self.acked,
            "inputs_applied": self.applied,
            "predicted_tick": self.predicted_tick,
            **self.counters,
        }
