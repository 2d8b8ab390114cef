"""Fixed-timestep tick loop with an injected clock.

Tick n is due at ``epoch + n * dt``: deadlines are computed, never accumulated, so the loop
does not drift however long it runs (no ``sleep(dt)`` chains). After a stall the loop runs
at most ``max_catchup`` overdue ticks back to back and drops the rest of the backlog by
moving its epoch, so a hiccup costs a short burst instead of a death spiral; dropped ticks
are counted.

The core (:meth:`TickLoop.poll`) takes ``now`` and runs what is due, so tests drive it on a
:class:`ManualClock`; :meth:`TickLoop.run` is the asyncio driver over a real clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol, TypeVar

import numpy as np

__all__ = ["Clock", "ManualClock", "RealClock", "TickLoop", "TickStats", "run_async"]

T = TypeVar("T")


class Clock(Protocol):
    """What a :class:`TickLoop` reads time from: :class:`RealClock` (the event loop's
    monotonic clock) or :class:`ManualClock` (virtual time for tests)."""

    def now(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class ManualClock:
    """Virtual time for tests: ``sleep_until`` jumps straight to the deadline."""

    def __init__(self, start: float = 100.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError("time does not run backwards")
        self.t += dt

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)
        await asyncio.sleep(0)  # still yield, so other tasks run between ticks


class RealClock:
    """Monotonic wall time (perf_counter) with asyncio sleeps.

    Sleeps are padded by half a millisecond: uvloop's timers have millisecond resolution
    and fire up to a millisecond early, so sleeping exactly to a deadline wakes before it
    and re-sleeps in a spin (measured: ~14 wake-ups per 60 Hz tick); padded, the loop
    wakes once per tick, ~0.5 ms late.
    """

    pad = 0.0005

    def now(self) -> float:
        return time.perf_counter()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.perf_counter()
        await asyncio.sleep(delay + self.pad if delay > 0 else 0)


@dataclass
class TickStats:
    """Per-tick work time (wall and this thread's CPU) and lateness over the last ``window``
    ticks, plus totals. Wall time well above CPU time means the tick waited for a core
    (contention, the process descheduled), not that it had more work."""

    window: int = 4096
    ticks: int = 0
    dropped: int = 0  # overdue ticks skipped after stalls
    late: int = 0  # ticks that started more than one dt after their deadline
    _durations: np.ndarray = field(init=False, repr=False)
    _lateness: np.ndarray = field(init=False, repr=False)
    _cpu: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self._durations = np.zeros(self.window)
        self._lateness = np.zeros(self.window)
        self._cpu = np.zeros(self.window)

    def add(self, duration: float, lateness: float, cpu: float = 0.0) -> None:
        i = self.ticks % self.window
        self._durations[i] = duration
        self._lateness[i] = lateness
        self._cpu[i] = cpu
        self.ticks += 1

    def _recent(self, arr: np.ndarray) -> np.ndarray:
        return arr[: min(self.ticks, self.window)]

    def duration_percentiles(self, *qs: float) -> list[float]:
        d = self._recent(self._durations)
        return [float(np.percentile(d, q)) if len(d) else 0.0 for q in qs]

    def lateness_percentiles(self, *qs: float) -> list[float]:
        d = self._recent(self._lateness)
        return [float(np.percentile(d, q)) if len(d) else 0.0 for q in qs]

    def cpu_percentiles(self, *qs: float) -> list[float]:
        d = self._recent(self._cpu)
        return [float(np.percentile(d, q)) if len(d) else 0.0 for q in qs]

    def last_percentile(self, count: int, q: float, cpu: bool = False) -> float:
        """The ``q`` percentile of the last ``count`` ticks' wall (or CPU) time: what a
        monitor sampling every few seconds needs, where the whole window would still hold
        the start of the match a minute later."""
        n = min(self.ticks, self.window, count)
        if n == 0:
            return 0.0
        arr = self._cpu if cpu else self._durations
        end = self.ticks % self.window
        idx = np.arange(end - n, end) % self.window
        return float(np.percentile(arr[idx], q))

    def summary(self, last: int = 300) -> dict:
        """Ticks run, dropped and late, and the recent ticks' duration (wall), CPU and lateness
        percentiles (ms); ``*_last`` figures cover only the ``last`` ticks (5 s at 60 Hz)."""
        p50, p99 = self.duration_percentiles(50, 99)
        c50, c99 = self.cpu_percentiles(50, 99)
        l50, l99 = self.lateness_percentiles(50, 99)
        return {
            "ticks": self.ticks,
            "dropped": self.dropped,
            "late": self.late,
            "tick_ms_p50": p50 * 1e3,
            "tick_ms_p99": p99 * 1e3,
            "cpu_ms_p50": c50 * 1e3,
            "cpu_ms_p99": c99 * 1e3,
            "late_ms_p50": l50 * 1e3,
            "late_ms_p99": l99 * 1e3,
            "tick_ms_p99_last": self.last_percentile(last, 99) * 1e3,
            "cpu_ms_p99_last": self.last_percentile(last, 99, cpu=True) * 1e3,
        }


class TickLoop:
    """Calls ``on_tick(tick)`` at ``rate`` ticks per second.

    ``timer`` measures how long each tick's work took (for stats only); it defaults to
    ``time.perf_counter`` and is separate from the schedule's clock so that a manual clock
    still yields real work durations. ``cpu_timer`` (default ``time.thread_time``: this
    thread's CPU, so other threads and processes do not count) measures the work itself.
    """

    def __init__(
        self,
        rate: float,
        on_tick: Callable[[int], None],
        *,
        max_catchup: int = 5,
        start_tick: int = 0,
        timer: Callable[[], float] = time.perf_counter,
        cpu_timer: Callable[[], float] = time.thread_time,
        stats_window: int = 4096,
    ):
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"tick rate must be a positive number, got {rate!r}")
        if max_catchup < 1:
            raise ValueError("max_catchup must be at least 1")
        self.rate = float(rate)
        self.dt = 1.0 / self.rate
        self.on_tick = on_tick
        self.max_catchup = max_catchup
        self.tick = start_tick  # the next tick to run
        self._first_tick = start_tick
        self._epoch: float | None = None
        self._timer = timer
        self._cpu_timer = cpu_timer
        self.stats = TickStats(window=stats_window)
        self._stopped = False

    def start(self, now: float) -> None:
        """Anchor the schedule: the next tick is due at ``now``."""
        self._epoch = now - (self.tick - self._first_tick) * self.dt

    def deadline_of(self, tick: int) -> float:
        if self._epoch is None:
            raise RuntimeError("TickLoop.start(now) has not been called")
        return self._epoch + (tick - self._first_tick) * self.dt

    def next_deadline(self) -> float:
        """When the next tick is due (the loop's own deadlines never drift)."""
        return self.deadline_of(self.tick)

    def poll(self, now: float, *, limit: int | None = None) -> int:
        """Run every tick due at ``now`` (at most ``max_catchup``, and at most ``limit``);
        returns how many ran."""
        if self._epoch is None:
            self.start(now)
        due = int(math.floor((now - self.next_deadline()) / self.dt + 1e-9)) + 1
        if due <= 0:
            return 0
        if due > self.max_catchup:
            # Drop the backlog beyond the burst by sliding the schedule forward.
            skip = due - self.max_catchup
            self._epoch += skip * self.dt
            self.stats.dropped += skip
            due = self.max_catchup
        if limit is not None:
            due = min(due, limit)
        timer, cpu_timer, stats = self._timer, self._cpu_timer, self.stats
        for _ in range(due):
            lateness = now - self.next_deadline()
            if lateness > self.dt:
                stats.late += 1
            t0, c0 = timer(), cpu_timer()
            self.on_tick(self.tick)
            self.tick += 1
            stats.add(timer() - t0, lateness, cpu_timer() - c0)
        return due

    def stop(self) -> None:
        """End :meth:`run` after the tick in progress."""
        self._stopped = True

    async def run(self, clock: Clock | None = None, *, ticks: int | None = None) -> None:
        """Run until :meth:`stop` is called or ``ticks`` ticks have run."""
        clock = clock or RealClock()
        end = None if ticks is None else self.tick + ticks
        self._stopped = False
        if self._epoch is None:
            self.start(clock.now())
        while not self._stopped and (end is None or self.tick < end):
            await clock.sleep_until(self.next_deadline())
            # Never run past the requested tick count, even inside a catch-up burst.
            self.poll(clock.now(), limit=None if end is None else end - self.tick)


def run_async(main: Awaitable[T]) -> T:
    """Run a coroutine on uvloop when it is installed (everywhere but Windows), else asyncio."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
