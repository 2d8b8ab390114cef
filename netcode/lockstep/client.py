"""Lockstep client, sans-IO: input stamping, confirmed frames, prediction and rollback.

The client never owns the game state. Like a GGRS session it hands the caller ordered
*requests* (start from state/keyframe, save, load, advance a tick with these inputs,
report a hash) and the caller carries them out; :class:`LockstepRunner` does that for a
plain :class:`~engine.state.State`. With ``prediction_window`` 0 it is plain lockstep:
only confirmed frames are simulated. With a window > 0 the client runs up to that many
ticks past the newest confirmed frame on predicted inputs (everyone else repeats their
last confirmed input; its own are known), saving each predicted tick, and rolls back to
the first tick whose confirmed inputs differ from the prediction.

Timing: the client estimates the server's tick from the frames it receives (the least
delayed samples of the last few seconds, plus half the minimum RTT) and stamps its
current input onto the ticks the server will close one-way-latency plus a jitter margin
from now, plus ``input_delay``, so inputs arrive before their frame closes. Every input
packet repeats all inputs the server has not acked, and the frames it has not received
are named by the first one it still needs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Hashable

import numpy as np

from engine.model import Game
from engine.state import State

from netcode.session.connection import SessionConfig
from netcode.errors import ProtocolError, UsageError
from netcode.events import Connected, Resynced
from netcode.lockstep.frames import decode_frame, skip_frame
from netcode.mode.inputs import StampedInputs
from netcode.lockstep.wire import (
    KEYFRAME_CHUNK,
    SPECTATOR_SLOT,
    LockstepInfo,
    pack_input,
    parse_frames_header,
    parse_keyframe_part,
    read_run_header,
)
from netcode.mode.client import ModeClient
from netcode.session import ClientState
from netcode.mode.timesync import ServerClock, input_lead
from netcode.session.wire import PacketType

_HASH_REPEATS = 4  # packets that carry each hash report: survives 20% loss nearly always

__all__ = [
    "LockstepClient",
    "LockstepRunner",
    "StartState",
    "SaveState",
    "LoadState",
    "AdvanceTick",
    "ReportHash",
]


# -- requests -----------------------------------------------------------------------------
@dataclass(frozen=True)
class StartState:
    """Create the game's state (seed, players) for ``tick``; load ``keyframe`` into it if given."""

    tick: int
    seed: int
    players: int
    keyframe: bytes | None = None


@dataclass(frozen=True)
class SaveState:
    """Keep a copy of the live state, which is the state of ``tick``."""

    tick: int


@dataclass(frozen=True)
class LoadState:
    """Make the live state the copy saved for ``tick``."""

    tick: int


@dataclass(frozen=True)
class AdvanceTick:
    """``game.step(state, inputs, tick)``; ``confirmed`` False when some inputs are predicted."""

    tick: int
    inputs: np.ndarray
    confirmed: bool


@dataclass(frozen=True)
class ReportHash:
    """Hash the state of ``tick`` (live, or saved) and pass it to ``client.report_hash``."""

    tick: int


class LockstepClient(ModeClient):
    """One player's (or spectator's) lockstep session."""

    MODE = "lockstep"

    def __init__(
        self,
        game: Game,
        *,
        server: Hashable,
        token: bytes,
        input_delay: int = 2,
        prediction_window: int = 0,
        max_ticks_per_update: int = 240,
        baseline_history: int = 512,
        session_config: SessionConfig | None = None,
        rng: random.Random | None = None,
    ):
        if input_delay < 0 or prediction_window < 0:
            raise UsageError("input_delay and prediction_window must be >= 0")
        super().__init__(game, server=server, token=token, session_config=session_config, rng=rng)
        self.input_delay = input_delay
        self.window = prediction_window
        self.max_ticks_per_update = max_ticks_per_update
        self._history = baseline_history
        self.info: LockstepInfo | None = None
        self.clock: ServerClock | None = None
        self._one_way = 0.0  # seconds, as the clock had it at this update
        self._requests: list = []
        self._updates = 0
        self.counters = {
            "rollbacks": 0,
            "rolled_back_ticks": 0,
            "predicted_ticks": 0,
            "frames": 0,
            "undecodable_runs": 0,
            "keyframes": 0,
        }
        self._reset_timeline()

    def _reset_timeline(self) -> None:
        self.started = False
        self.origin = 0  # frames before this are not ours to know (keyframe tick)
        self.current = 0  # tick of the live state
        self.next_needed = 0  # first frame not yet confirmed (all before it are held)
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # tick -> (raw, missing)
        self._predicted: dict[int, np.ndarray] = {}  # tick -> raw inputs used when predicted
        self._saved: set[int] = set()
        self._own = StampedInputs(self.itemsize)
        self._input_ack = -1
        self._hash_upto = -1  # newest tick whose hash was requested
        self._hash_report: tuple[int, int] | None = None
        self._hash_sends = 0  # a report rides in a few packets (loss), not in all of them
        self._keyframe: tuple[int, int, int, bytearray, np.ndarray] | None = None  # tick, parts, total, data, have
        self._kf_loaded = -1

    def on_server_restart(self, now: float) -> None:
        # A new match: a new timeline from the server's state, a new clock estimate.
        self._reset_timeline()
        self.info = None
        self.clock = None

    def on_connected(self, ev: Connected, now: float) -> None:
        info = LockstepInfo.parse(ev.info)
        if self.info is not None and (info.players, info.seed) != (self.info.players, self.info.seed):
            self._reset_timeline()  # a different match: start over
        self.info = info
        # A fresh estimate each session: a new session may be another server (a room resumed
        # elsewhere, behind where the old one stopped), which the old samples say nothing of.
        self.clock = ServerClock(info.tick_rate)
        self.clock.seed(info.server_tick, now)
        if not self.started:
            self._requests.append(StartState(0, info.seed, info.players))
            self.started = True

    # -- input ----------------------------------------------------------------------------
    def report_hash(self, tick: int, value: int) -> None:
        """Called by the runner for a ReportHash request."""
        if self._hash_report is None or tick >= self._hash_report[0]:
            self._hash_report = (tick, value)
            self._hash_sends = 0

    # -- receiving --------------------------------------------------------------------------
    def on_payload(self, ptype: PacketType, payload: memoryview, now: float) -> None:
        if self.info is None:
            raise ProtocolError("no_info", "payload before ACCEPTED")
        if ptype is PacketType.LS_FRAMES:
            self._on_frames(payload, now)
        elif ptype is PacketType.LS_KEYFRAME:
            self._on_keyframe_part(payload, now)
        else:
            raise ProtocolError("unexpected_type", f"{ptype.name} sent to a lockstep client")

    def _on_frames(self, payload, now: float) -> None:
        newest, input_ack, runs, r, tally = parse_frames_header(payload)
        if tally is not None:
            self.input_tally = tally
        self.clock.sample(newest, now, self.session.connection.rtt)
        self._input_ack = max(self._input_ack, input_ack)
        players = self.info.players
        for _ in range(runs):
            first, count, absolute = read_run_header(r, newest)
            if absolute:
                prev = np.zeros((players, self.itemsize), np.uint8)
            else:
                held = self._frames.get(first - 1)
                prev = held[0] if held is not None else (self._zero() if first == 0 else None)
            if prev is None:
                self.counters["undecodable_runs"] += 1
                return  # we lack the frame it is encoded against (and so all after it)
            for t in range(first, first + count):
                held = self._frames.get(t)
                if held is not None:  # a repeat of a frame we hold: skip its bytes
                    skip_frame(r, players, self.itemsize)
                    prev = held[0]
                    continue
                cur, missing = decode_frame(r, prev)
                if t >= self.next_needed:
                    self._frames[t] = (cur, missing)
                    self.counters["frames"] += 1
                prev = cur
        r.done()
        while self.next_needed in self._frames:
            self.next_needed += 1

    def _zero(self) -> np.ndarray:
        return np.zeros((self.info.players, self.itemsize), np.uint8)

    def _on_keyframe_part(self, payload, now: float) -> None:
        max_total = 64 << 20
        part = parse_keyframe_part(payload, max_total)
        self.clock.sample(part.server_tick - 1, now, self.session.connection.rtt)
        if part.tick <= self._kf_loaded:
            return  # already loaded: a late copy
        kf = self._keyframe
        if kf is None or kf[0] != part.tick or kf[2] != part.total:
            kf = (part.tick, part.parts, part.total, bytearray(part.total), np.zeros(part.parts, bool))
            self._keyframe = kf
        tick, parts, total, data, have = kf
        offset = part.index * KEYFRAME_CHUNK
        data[offset : offset + len(part.chunk)] = part.chunk
        have[part.index] = True
        if have.all():
            self._load_keyframe(tick, bytes(data))

    def _load_keyframe(self, tick: int, data: bytes) -> None:
        info = self.info
        self._requests.append(StartState(tick, info.seed, info.players, data))
        resync = self.started and self.current > 0
        self._kf_loaded = tick
        self.origin = self.current = self.next_needed = tick
        self._frames = {t: f for t, f in self._frames.items() if t >= tick}
        while self.next_needed in self._frames:
            self.next_needed += 1
        self._predicted.clear()
        self._saved.clear()
        self._hash_upto = tick - 1
        self.started = True
        self.counters["keyframes"] += 1
        self._events.put(Resynced(tick, "desync" if resync else "join"))

    # -- the update ---------------------------------------------------------------------------
    def update(self, now: float) -> list:
        """Stamp inputs, roll back if needed, advance the simulation, send our packet.
        Returns the requests the caller must carry out, in order."""
        if self.session.state is ClientState.CONNECTED and self.info is not None:
            server_tick = self._server_tick(now)
            if not self.spectator:
                self._stamp(server_tick)
            self._rollback_if_mispredicted()
            self._report_confirmed_hashes()
            self._advance(server_tick)
            self._updates += 1
            if self._updates % self.info.send_every == 0 or self._keyframe is not None:
                self._send(now)
        out, self._requests = self._requests, []
        return out

    def _lead(self) -> float:
        rtt = self.session.connection.rtt
        return input_lead(self._one_way, rtt.jitter, self.info.tick_rate, self.info.send_every, self.info.max_ahead)

    def _server_tick(self, now: float) -> float:
        self._one_way = self.clock.one_way(self.session.connection.rtt, now)
        return self.clock.tick_at(now, self._one_way)

    def _stamp(self, server_tick: float) -> None:
        target = int(math.ceil(server_tick + self._lead())) + self.input_delay
        self._own.stamp(int(server_tick) + 1, target, self._input)  # only ticks not closed yet

    def _rollback_if_mispredicted(self) -> None:
        bad = None
        for t in sorted(self._predicted):
            held = self._frames.get(t)
            if held is None or t >= self.next_needed:
                break
            if not np.array_equal(self._predicted.pop(t), held[0]):
                bad = t
                break
        if bad is None:
            return
        self.counters["rollbacks"] += 1
        self.counters["rolled_back_ticks"] += self.current - bad
        self._requests.append(LoadState(bad))
        self.current = bad
        for t in [t for t in self._predicted if t >= bad]:
            del self._predicted[t]

    def _report_confirmed_hashes(self) -> None:
        """Hash ticks whose state is now known to rest on confirmed inputs only."""
        every = self.info.hash_every
        confirmed = min(self.next_needed, self.current)  # state_t confirmed for t <= this
        t = (self._hash_upto // every + 1) * every
        while t <= confirmed:
            if t >= self.origin and (t == self.current or t in self._saved):
                self._requests.append(ReportHash(t))
            self._hash_upto = t
            t += every

    def _advance(self, server_tick: float) -> None:
        if self.window:
            target = min(int(server_tick + self._lead()), self.next_needed + self.window)
        else:
            target = self.next_needed
        steps = 0
        every = self.info.hash_every
        while self.current < target and steps < self.max_ticks_per_update:
            t = self.current
            held = self._frames.get(t)
            if held is not None and t < self.next_needed:
                inputs, confirmed = held[0], True
                self._predicted.pop(t, None)
            else:
                inputs, confirmed = self._predict(t), False
                self._predicted[t] = inputs
                self.counters["predicted_ticks"] += 1
            if self.window and (not confirmed or t % every == 0):
                self._requests.append(SaveState(t))
                self._saved.add(t)
            records = inputs.view(self.game.input_dtype).reshape(self.info.players).copy()
            self._requests.append(AdvanceTick(t, records, confirmed))
            self.current = t + 1
            steps += 1
            if self.current % every == 0 and self.current <= self.next_needed and self.current > self._hash_upto:
                self._requests.append(ReportHash(self.current))
                self._hash_upto = self.current
        self._forget_old()

    def _predict(self, t: int) -> np.ndarray:
        last = self._frames.get(self.next_needed - 1)
        inputs = last[0].copy() if last is not None else self._zero()
        own = None if self.spectator else self._own.get(t)
        if own is not None:
            inputs[self.slot] = own
        return inputs

    def _forget_old(self) -> None:
        floor = min(self.current, self.next_needed) - self._history
        if len(self._frames) > 2 * self._history:
            self._frames = {t: f for t, f in self._frames.items() if t >= floor}
        horizon = min(self.next_needed, self.current)
        if len(self._saved) > self.window + 4:
            self._saved = {t for t in self._saved if t >= horizon - 1}

    # -- sending ----------------------------------------------------------------------------
    def _send(self, now: float) -> None:
        slot = SPECTATOR_SLOT if self.spectator else self.slot
        records = None
        first = 0
        if not self.spectator:
            first, records = self._own.unacked(self._input_ack)
        keyframe = None
        if self._keyframe is not None and self._keyframe[0] > self._kf_loaded:
            keyframe = (self._keyframe[0], self._keyframe[4])
        payload = pack_input(
            slot,
            self.next_needed,
            self.origin,
            first=first,
            records=records,
            hash_report=self._hash_report if self._hash_sends < _HASH_REPEATS else None,
            keyframe=keyframe,
        )
        self._hash_sends += 1
        self.session.send(PacketType.LS_INPUT, payload, now)

    # -- inspection -----------------------------------------------------------------------
    def stats(self) -> dict:
        conn = self.session.connection
        return {
            "slot": self.slot,
            "current": self.current,
            "confirmed": self.next_needed,
            **self.counters,
            **(conn.stats() if conn is not None else {}),
        }


class LockstepRunner:
    """Carries out a client's requests on a :class:`State` (what bots, tests and simple
    games use; an engine with its own state would implement the same five requests)."""

    def __init__(self, game: Game, client: LockstepClient):
        self.game = game
        self.client = client
        self.state: State | None = None
        self.tick = 0
        self._saved: dict[int, State] = {}
        self._spare: list[State] = []

    def execute(self, requests: list) -> None:
        game = self.game
        for req in requests:
            if isinstance(req, AdvanceTick):
                game.step(self.state, req.inputs, req.tick)
                self.tick = req.tick + 1
            elif isinstance(req, SaveState):
                copy = self._saved.pop(req.tick, None) or (self._spare.pop() if self._spare else None)
                if copy is None:
                    copy = self.state.copy()
                else:
                    copy.restore(self.state)
                self._saved[req.tick] = copy
                self._prune()
            elif isinstance(req, LoadState):
                self.state.restore(self._saved[req.tick])
                self.tick = req.tick
            elif isinstance(req, ReportHash):
                state = self.state if req.tick == self.tick else self._saved[req.tick]
                self.client.report_hash(req.tick, state.hash())
            elif isinstance(req, StartState):
                self.state = game.create(req.seed, req.players)
                if req.keyframe is not None:
                    self.state.unpack_into(req.keyframe)
                self.tick = req.tick
                self._spare.extend(self._saved.values())
                self._saved.clear()
            else:
                raise UsageError(f"unknown request {req!r}")

    def _prune(self) -> None:
        keep = self.client.window + self.client.info.hash_every + 8
        while len(self._saved) > keep:
            self._spare.append(self._saved.pop(min(self._saved)))

    def step(self, now: float) -> None:
        """One client update with its requests carried out."""
        self.execute(self.client.update(now))
