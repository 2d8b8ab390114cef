import asyncio

import pytest

from engine.loop import ManualClock, TickLoop


def test_manual_clock_runs_exactly_n_ticks_in_n_dt():
    ran = []
    loop = TickLoop(60, ran.append)
    clock = ManualClock(100.0)
    loop.start(clock.now())
    for _ in range(600):
        clock.advance(1 / 60)
        loop.poll(clock.now())
    # Tick 0 is due at the start, tick n at start + n/60: 601 ticks by start + 10 s.
    assert ran == list(range(601))
    assert loop.stats.dropped == 0 and loop.stats.late == 0


def test_deadlines_do_not_drift():
    loop = TickLoop(60, lambda t: None)
    loop.start(100.0)
    assert loop.deadline_of(216_000) == pytest.approx(100.0 + 3600.0, abs=1e-9)


def test_async_run_on_manual_clock():
    ran = []
    loop = TickLoop(30, ran.append)
    clock = ManualClock(50.0)
    asyncio.run(loop.run(clock, ticks=90))
    assert ran == list(range(90))
    assert clock.now() == pytest.approx(50.0 + 89 / 30)


def test_catch_up_after_stall_is_bounded():
    ran = []
    loop = TickLoop(60, ran.append, max_catchup=5)
    clock = ManualClock(100.0)
    loop.start(clock.now())
    loop.poll(clock.now())
    clock.advance(1.0)  # a one-second stall: 60 ticks overdue
    assert loop.poll(clock.now()) == 5
    assert loop.stats.dropped == 55
    # The schedule resumes from now: nothing more due until the next tick time.
    assert loop.poll(clock.now()) == 0
    clock.advance(1 / 60)
    assert loop.poll(clock.now()) == 1
    assert ran == list(range(len(ran)))  # ticks stay consecutive: dropping slides time, not ticks


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        TickLoop(0, lambda t: None)


def test_cpu_time_per_tick_tells_waiting_from_working():
    """A tick that sleeps (a stand-in for waiting on a busy core) takes wall time but no CPU;
    a tick that computes takes CPU, never more than its wall time."""
    import time

    def waits(tick):
        time.sleep(0.004)

    def works(tick):
        sum(i * i for i in range(20_000))

    for fn in (waits, works):
        loop = TickLoop(60, fn)
        clock = ManualClock(100.0)
        loop.start(clock.now())
        for _ in range(20):
            clock.advance(1 / 60)
            loop.poll(clock.now())
        s = loop.stats.summary()
        assert s["cpu_ms_p50"] > 0.0 and s["cpu_ms_p99"] >= s["cpu_ms_p50"]
        if fn is waits:
            assert s["tick_ms_p50"] >= 4.0 and s["cpu_ms_p99"] < s["tick_ms_p50"] / 2, s
        else:
            # thread_time and perf_counter tick differently: allow their resolutions.
            assert s["cpu_ms_p50"] <= s["tick_ms_p50"] * 1.05 + 0.1, s


def test_the_last_ticks_percentile_forgets_the_start_and_wraps_around_the_window():
    from engine.loop import TickStats

    stats = TickStats(window=16)
    for _ in range(10):
        stats.add(0.050, 0.0, 0.040)  # a slow start: 50 ms wall, 40 ms CPU
    for _ in range(10):  # wraps the 16-tick ring
        stats.add(0.002, 0.0, 0.001)
    summary = stats.summary(last=8)
    assert summary["tick_ms_p99"] > 40  # the whole window still holds six slow ticks
    assert summary["tick_ms_p99_last"] == pytest.approx(2.0) and summary["cpu_ms_p99_last"] == pytest.approx(1.0)
    stats.add(0.030, 0.0, 0.020)  # the newest tick is in the last 8
    assert stats.last_percentile(8, 100) == pytest.approx(0.030) and stats.last_percentile(8, 100, cpu=True) == pytest.approx(0.020)
    assert TickStats().summary()["tick_ms_p99_last"] == 0.0
