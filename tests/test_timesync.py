"""The client's estimate of the server's clock (netcode/mode/timesync.py) under changing delay.

On the seeded simulator, a state-sync client's inputs must keep arriving just ahead of the
server's tick (the server-side "input lead", what the dashboard shows) when the path's delay
steps up and back down, and when the server drops ticks; and single jitter spikes must not
move the estimate at all. The browser client's copy of the rule (web/ticksync.js) is run
under Node on the same samples and must give the same estimates.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from demos.arena import Arena
from helpers import StateSyncMatch
from netcode.mode import timesync
from netcode.mode.timesync import FLOOR_SETTLE, FLOOR_WINDOW, RecentFloor
from netcode.sim.network import LinkConfig
from netcode.statesync.server import StateSyncConfig

ROOT = Path(__file__).resolve().parent.parent
TICKSYNC_JS = ROOT / "netcode" / "server" / "web" / "ticksync.js"
BASE = LinkConfig(latency=0.02, jitter=0.004, in_order=True)


# -- the rule on its own ----------------------------------------------------------------


def test_a_lower_sample_moves_the_floor_at_once_and_a_higher_one_never_does():
    f = RecentFloor(tolerance=0.01)
    assert f.add(0.05, 100.0) == 0.05
    assert f.add(0.03, 100.02) == 0.03  # a faster path: believed at once
    assert f.add(0.5, 100.04) == 0.03  # one slow sample: ignored
    assert f.forgets == 0


def test_a_lasting_step_up_replaces_the_floor_after_the_settle_time_and_not_before():
    f, t, dt = RecentFloor(tolerance=0.01), 100.0, 1 / 30
    while t < 101.0:
        f.add(0.02, t)
        t += dt
    step = t
    while t < step + FLOOR_SETTLE - dt:
        assert f.add(0.12, t) == 0.02  # still the old floor: not yet "consistently" different
        t += dt
    while t < step + FLOOR_SETTLE + 2 * dt:
        f.add(0.12, t)
        t += dt
    assert f.value == 0.12 and f.forgets == 1


def test_a_step_up_smaller_than_the_tolerance_waits_for_the_window():
    f, t, dt = RecentFloor(tolerance=0.01), 100.0, 1 / 30
    f.add(0.020, t)
    while t < 100.0 + FLOOR_WINDOW - dt:
        t += dt
        assert f.add(0.025, t) == 0.020
    t += 2 * dt
    assert f.add(0.025, t) == 0.025 and f.forgets == 0


def test_jitter_around_a_steady_floor_never_forgets():
    rng = random.Random(5)
    f, t = RecentFloor(tolerance=1 / 60), 100.0
    for _ in range(3000):  # 100 s at 30 Hz, delays 20 ms plus up to 40 ms of jitter, spikes of 200 ms
        t += 1 / 30
        f.add(0.02 + rng.uniform(0, 0.04) + (0.2 if rng.random() < 0.02 else 0.0), t)
    assert f.forgets == 0
    assert 0.02 <= f.value < 0.02 + 1 / 60


def test_settling_from_the_other_floor_long_after_the_last_sample_keeps_the_newest():
    """The clock settles its RTT floor when the delay floor forgets, at the delay sample's
    time, which may be long after the RTT floor's newest sample (a stalled client)."""
    f = RecentFloor(tolerance=0.01)
    for i in range(30):
        f.add(0.02, 100.0 + i / 30)
    f.add(0.3, 101.0)  # a run begins
    f.add(0.31, 101.1)
    assert f.settle_now() and f.value == 0.3
    assert not f.settle_now()  # no run under way: nothing to forget
    assert f.add(0.29, 105.2) == 0.29


def test_a_lone_late_sample_after_a_gap_does_not_replace_the_floor():
    f = RecentFloor(tolerance=0.01)
    for i in range(30):
        f.add(0.02, 100.0 + i / 30)
    f.add(0.3, 101.5)  # after half a second of nothing, one slow sample
    f.add(0.3, 101.6)
    assert f.value == 0.02 and f.forgets == 0


def test_a_stall_longer_than_the_window_does_not_make_the_burst_after_it_the_floor():
    """A client whose process stalled for longer than the window reads every packet of the
    stall at once, each late by up to the stall. A silence is no evidence the path changed:
    the floor stays, and the next on-time samples confirm it. (Aged by wall time, the floor
    expired whole and the least late of the burst became the floor: a starved client's
    one-way estimate went to 134 ms on a 1 ms path.)"""
    f = RecentFloor(tolerance=0.01)
    for i in range(30):
        f.add(0.02, 100.0 + i / 30)
    stall = 101.0 + FLOOR_WINDOW + 0.5
    for late in (2.4, 1.5, 0.9, 0.3):
        assert f.add(0.02 + late, stall) == 0.02
    assert f.add(0.021, stall + 1 / 30) == 0.02 and f.forgets == 0


def test_after_a_silence_a_lasting_change_is_still_followed_within_the_settle_time():
    """The same silence, then a path that really is slower (a server that restarted, a
    route that changed): every sample after it lies above the floor, so it is replaced a
    settle time later, as without the silence."""
    f = RecentFloor(tolerance=0.01)
    for i in range(30):
        f.add(0.02, 100.0 + i / 30)
    t = 101.0 + FLOOR_WINDOW + 0.5
    while t < 101.0 + FLOOR_WINDOW + 0.5 + FLOOR_SETTLE + 2 / 30:
        f.add(0.15, t)
        t += 1 / 30
    assert f.value == 0.15 and f.forgets == 1


def test_the_jitter_margin_is_capped_and_the_lead_stays_within_half_the_servers_limit():
    rate = 60
    capped = timesync.input_lead(0.02, timesync.MAX_JITTER_MARGIN / 2, rate, 1)
    assert timesync.input_lead(0.02, 3.0, rate, 1) == capped  # seconds of "jitter": our own stalls
    assert timesync.input_lead(0.02, 0.01, rate, 1) < capped  # a network's jitter counts whole
    assert timesync.input_lead(10.0, 0.0, rate, 1, max_ahead=240) == 120  # never refused as from the future


def test_a_client_that_reads_its_socket_late_does_not_count_the_wait_as_latency():
    """A starved client reads its socket every half second, every packet since at once; its
    acks come back in the oldest of them. The round trip it measures is mostly that wait, which
    the packets' own lateness shows: one-way latency stays the path's (20 ms), where counting
    the wait put the clock and the inputs a quarter of a second ahead."""
    from netcode.session.connection import RttEstimator

    rate, path = 60, 0.02
    clock, rtt = timesync.ServerClock(rate), RttEstimator()
    sent_at = read = 100.0
    for _ in range(40):  # 20 s
        read += 0.5
        # The server's snapshots since the last read (every other tick); the first one after
        # our send came back acked it.
        ticks = range(int((read - 0.5) * rate) // 2 * 2 + 2, int((read - path) * rate), 2)
        for i, tick in enumerate(ticks):
            if i == 0:
                rtt.sample(read - sent_at)  # what the session measures: ~0.5 s
            clock.sample(tick - 1, read, rtt)
        ahead = clock.one_way(rtt, read)
        sent_at = read  # our packet leaves after the read
    assert rtt.min_rtt > 0.4  # the raw samples hold the wait
    assert ahead < path + 2 / rate, ahead
    server_tick = read * rate  # the server's tick at `read` (it runs tick t at t / rate)
    assert abs(clock.tick_at(read, ahead) - server_tick) <= 3


def test_a_packet_sent_again_with_a_fresh_ack_counts_its_round_trip_whole():
    """A full snapshot's part that went again (or was paced after the others) carries an old
    tick and a fresh ack. It is late by its tick, but the wait was the server's, not ours:
    the round trip it acks holds none of it. Taking that lateness off as a late read's made
    the RTT sample negative, and the clock forgot its floors half a second later."""
    from netcode.session.connection import RttEstimator

    rate, path = 60, 0.02
    clock, rtt = timesync.ServerClock(rate), RttEstimator()
    now, ahead = 100.0, []
    for i in range(90):  # 3 s of snapshots every other tick, each acking our last send
        now += 2 / rate
        rtt.sample(2 * path)
        clock.sample(round((now - path) * rate) - 1, now, rtt)
        if i == 30:  # and the part of the snapshot of 200 ms ago, sent again
            rtt.sample(2 * path + 0.001)
            clock.sample(round((now - path - 0.2) * rate) - 1, now, rtt)
        ahead.append(clock.one_way(rtt, now))
    assert clock.forgets == 0
    assert min(ahead) == pytest.approx(path, abs=0.002), min(ahead)
    assert abs(clock.tick_at(now, ahead[-1]) - now * rate) <= 1


# -- a state-sync client on the simulator -------------------------------------------------


def _match(seed, link=BASE):
    game = Arena(npcs=20)
    match = StateSyncMatch(game, 1, seed=seed, link=link, config=StateSyncConfig(players=1, seed=3))
    client = match.add_client("a", slot=0)
    return match, client


def _lead(match) -> int:
    """The server's view: how far ahead of its tick the player's newest input is."""
    s = match.server
    return int(s.inputs.newest[0]) - s.tick + 1


def _leads(match, seconds, every=0.05):
    out = []
    for _ in range(round(seconds / every)):
        match.run(every)
        out.append(_lead(match))
    return out


def test_input_lead_recovers_within_two_seconds_of_a_delay_step_up_and_down(seed):
    match, client = _match(seed)
    match.run(4.0)
    steady = _leads(match, 2.0)
    lo, hi = min(steady), max(steady)
    assert 1 <= lo and hi <= 8, steady  # inputs arrive a few ticks early, never late

    slow = LinkConfig(latency=0.12, jitter=0.004, in_order=True)  # a queue that stays: +100 ms each way
    match.net.sim.configure("a", "server", slow)
    match.run(1.0)  # the first slow packets, 0.5 s of settling, the RTT's samples catching up
    after_up = _leads(match, 3.0)
    assert min(after_up) >= lo - 1, (steady, after_up)  # no longer late
    assert max(after_up[20:]) <= hi + 1, (steady, after_up)  # and the jitter margin back to normal by 2 s

    match.net.sim.configure("a", "server", BASE)  # and it drains
    match.run(1.0)
    after_down = _leads(match, 3.0)
    assert min(after_down) >= lo - 1 and max(after_down[20:]) <= hi + 1, (steady, after_down)
    assert client.clock.forgets >= 1  # the step up was forgotten by the rule, not by the window


def test_input_lead_recovers_within_two_seconds_after_the_server_drops_ticks(seed):
    match, client = _match(seed)
    match.run(4.0)
    steady = _leads(match, 2.0)
    server, on_tick = match.server, match.server.on_tick
    stalled_until = match.net.now + 0.3

    def stalling(now):  # a server that fell behind and dropped 18 ticks rather than catch up
        if now >= stalled_until:
            on_tick(now)

    server.on_tick = stalling
    match.run(1.0)  # 0.3 s stalled, 0.5 s of settling
    after = _leads(match, 3.0)
    assert min(after) >= min(steady) - 1, (steady, after)
    # Inputs already stamped 18 ticks ahead drain one tick per tick; after that, back to normal.
    assert max(after[10:]) <= max(steady) + 1, (steady, after)


def test_single_jitter_spikes_do_not_move_the_clock(seed):
    spiky = LinkConfig(latency=0.02, jitter=0.004, reorder=0.03, reorder_delay=0.2)  # 3% of packets 200 ms late
    match, client = _match(seed, spiky)
    match.run(3.0)
    offsets = []
    for _ in range(100):
        match.run(0.1)
        offsets.append(client.clock._offset)
    assert client.clock.forgets == 0
    assert max(offsets) - min(offsets) <= 1.0, (min(offsets), max(offsets))  # within the tolerance: one tick


# -- the browser client's copy -------------------------------------------------------------


def test_the_browser_client_uses_the_same_constants():
    text = TICKSYNC_JS.read_text()
    names = [n for n in timesync.__all__ if n.startswith(("FLOOR_", "MAX_"))]
    assert names
    for name in names:
        m = re.search(rf"export const {name} = ([0-9.]+);", text)
        assert m, f"{name} is missing from {TICKSYNC_JS.name}"
        assert float(m.group(1)) == getattr(timesync, name), name


@pytest.mark.parametrize("acks_in_samples", [False, True], ids=["rtt-apart", "rtt-with-snapshot"])
def test_the_browser_clock_gives_the_same_estimates_as_the_python_one(tmp_path, acks_in_samples):
    """``acks_in_samples``: RTT samples come in the snapshots' packets (the clients' way, so
    the sample is taken less the packet's lateness), else on their own."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run web/ticksync.js (Debian: apt-get install nodejs)", pytrace=False)
    rng = random.Random(11)
    rate, t, tick, delay = 60, 100.0, 6000, 0.03
    events = []
    for i in range(600):  # 20 s of snapshots at 30 Hz with RTT samples, a step up, a step down, a stall
        t += 1 / 30
        if i == 200:
            delay = 0.13
        elif i == 400:
            delay = 0.03
        elif i == 500:
            tick -= 18
        # RTT samples come less often than snapshots (and stop for a while): the floors settle
        # each other at times that are not their own samples'.
        rtt = 2 * delay + rng.uniform(0, 0.01) if i % 3 == 0 and not 300 <= i < 330 else None
        events.append({"tick": tick + int(t * rate) - 6000, "now": t, "delay": delay, "rtt": rtt})
        events[-1]["tick"] -= int(delay * rate)
        if i in (100, 101):  # a part of an older snapshot sent again, its ack fresh
            events.append({"tick": events[-1]["tick"] - 12, "now": t + 0.001, "delay": delay, "rtt": 2 * delay})
    # Then the client stalls for longer than the floors' window and reads what came meanwhile
    # at once (late by up to the stall, the RTT samples with it), and plays on.
    stall = t + FLOOR_WINDOW + 0.5
    for k in range(10):
        sent = t + 0.25 * k
        events.append({"tick": tick + int(sent * rate) - 6000 - int(delay * rate), "now": stall, "delay": delay,
                       "rtt": stall - sent + delay if k % 2 else None})
    for i in range(60):
        t = stall + (i + 1) / 30
        events.append({"tick": tick + int(t * rate) - 6000 - int(delay * rate), "now": t, "delay": delay,
                       "rtt": 2 * delay + rng.uniform(0, 0.01) if i % 3 == 0 else None})

    from netcode.mode.timesync import ServerClock
    from netcode.session.connection import RttEstimator

    clock, rtt, expect = ServerClock(rate), RttEstimator(), []
    for e in events:
        if acks_in_samples:
            if e["rtt"] is not None:
                rtt.sample(e["rtt"])
            clock.sample(e["tick"], e["now"], rtt)
        else:
            clock.sample(e["tick"], e["now"])
            if e["rtt"] is not None:
                rtt.sample(e["rtt"])
        ahead = clock.one_way(rtt, e["now"])
        expect.append([clock.tick_at(e["now"], ahead), ahead])
    script = tmp_path / "clock.mjs"
    script.write_text(
        f"import {{ RttEstimator, ServerClock }} from {json.dumps(TICKSYNC_JS.as_uri())};\n"
        f"const events = {json.dumps(events)};\n"
        f"const clock = new ServerClock({rate}), rtt = new RttEstimator(), out = [];\n"
        "for (const e of events) {\n"
        + ("  if (e.rtt !== null) rtt.sample(e.rtt); clock.sample(e.tick, e.now, rtt);\n" if acks_in_samples else
           "  clock.sample(e.tick, e.now); if (e.rtt !== null) rtt.sample(e.rtt);\n")
        + "  const ahead = clock.oneWay(rtt, e.now);\n"
        "  out.push([clock.tickAt(e.now, ahead), ahead]);\n"
        "}\n"
        "process.stdout.write(JSON.stringify({out, forgets: clock.forgets}));\n"
    )
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["forgets"] == clock.forgets >= 2
    flat = [x for pair in got["out"] for x in pair]
    assert flat == pytest.approx([x for pair in expect for x in pair], abs=1e-9)
