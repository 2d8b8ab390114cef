"""Tests for the seeded link simulator (netcode.sim.network) and the virtual-time driver
(netcode.sim.driver).

Randomized tests take a ``seed`` fixture: random per run unless ``TICKSYNC_SEED`` is set,
and printed, so a failure is rerun with ``TICKSYNC_SEED=<seed> pytest tests/test_netsim.py``.
Statistical bounds are >= 5 standard deviations wide, so they fail by chance less than
once in a million runs but still catch a model that is off by a few percent.
"""

from __future__ import annotations

import math
import os
import random
from collections import Counter

import pytest

from netcode.sim.network import DRAWS_PER_PACKET, LinkConfig, LinkStats, NetSim
from netcode.sim.driver import VirtualNetwork

A, B, C, D = ("10.0.0.1", 5000), ("10.0.0.2", 6000), "c", "d"
T0 = 100.0


@pytest.fixture
def seed() -> int:
    env = os.environ.get("TICKSYNC_SEED")
    s = int(env) if env else random.SystemRandom().randrange(2**32)
    print(f"seed={s}")
    return s


def pkt(i: int) -> bytes:
    return i.to_bytes(4, "big")


def idx(data: bytes) -> int:
    return int.from_bytes(data[:4], "big")


def stream(sim: NetSim, n: int, gap: float, src=A, dst=B, size: int = 4, start: float = T0) -> list[float]:
    """Send n numbered packets src->dst, one every ``gap`` s; return their send times."""
    times = []
    for i in range(n):
        t = start + i * gap
        sim.send(src, dst, pkt(i) + bytes(size - 4), t)
        times.append(t)
    return times


def drain(sim: NetSim) -> list[tuple[float, object, object, bytes]]:
    """Deliver everything in flight; return (arrival time, dst, src, data) in delivery order."""
    log = []
    while (t := sim.next_delivery_time()) is not None:
        log.extend((t, dst, src, data) for dst, src, data in sim.deliver(t))
    return log


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= sigmas * sd + 1


# -- config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": 1.5},
        {"loss": -0.1},
        {"burst_exit": 2.0},
        {"latency": -1.0},
        {"jitter": float("nan")},
        {"bandwidth": 0},
        {"queue_bytes": -1},
        {"jitter_dist": "pareto"},
    ],
)
def test_invalid_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        LinkConfig(**kwargs)


def test_from_rtt_splits_rtt_into_one_way_latency():
    cfg = LinkConfig.from_rtt(0.150, loss=0.1)
    assert cfg.latency == pytest.approx(0.075) and cfg.loss == 0.1


# -- basic delivery ----------------------------------------------------------------------


def test_perfect_link_delivers_in_order_at_exactly_the_latency():
    sim = NetSim(1, LinkConfig(latency=0.05))
    sim.send(A, B, b"x", T0)
    sim.send(A, B, b"y", T0)
    sim.send(B, A, b"z", T0 + 0.01)
    assert sim.next_delivery_time() == pytest.approx(T0 + 0.05)
    assert sim.deliver(T0 + 0.0499) == []  # not yet due
    assert sim.deliver(T0 + 0.05) == [(B, A, b"x"), (B, A, b"y")]  # ties in send order
    assert sim.deliver(T0 + 1.0) == [(A, B, b"z")]
    assert sim.next_delivery_time() is None and sim.in_flight == 0
    s = sim.stats(A, B)
    assert (s.sent, s.delivered, s.dropped, s.bytes_sent, s.bytes_delivered) == (2, 2, 0, 2, 2)
    assert sim.stats(C, D) == LinkStats()
    assert sim.total_stats().delivered == 3


def test_late_deliver_returns_everything_due_in_arrival_order(seed):
    sim = NetSim(seed, LinkConfig(latency=0.02, jitter=0.05))
    stream(sim, 200, 0.001)
    out = sim.deliver(T0 + 10)
    assert len(out) == 200
    # Arrival order is not send order under jitter, but re-deriving arrivals from a twin
    # simulator shows the batch is sorted by arrival time.
    twin = NetSim(seed, LinkConfig(latency=0.02, jitter=0.05))
    stream(twin, 200, 0.001)
    assert [d for _, _, _, d in drain(twin)] == [d for _, _, d in out]


def test_configure_one_way_leaves_reverse_direction_alone():
    sim = NetSim(3)
    sim.configure(A, B, LinkConfig(latency=0.1), both_ways=False)
    assert sim.config(A, B).latency == 0.1 and sim.config(B, A) == LinkConfig()
    sim.send(A, B, b"ab", T0)
    sim.send(B, A, b"ba", T0)
    assert drain(sim) == [(T0, A, B, b"ba"), (pytest.approx(T0 + 0.1), B, A, b"ab")]


# -- determinism -------------------------------------------------------------------------

MESSY = LinkConfig(
    latency=0.04,
    jitter=0.03,
    loss=0.1,
    burst_enter=0.02,
    burst_exit=0.3,
    duplicate=0.05,
    reorder=0.05,
    bandwidth=400_000,
    queue_limit=0.05,
)


def messy_run(seed: int, other_traffic: bool) -> list:
    sim = NetSim(seed, MESSY)
    for i in range(2000):
        t = T0 + i * 0.002
        sim.send(A, B, pkt(i) + bytes(60), t)
        if i % 3 == 0:
            sim.send(B, A, pkt(i), t)
        if other_traffic:  # heavy traffic on unrelated links, and on the reverse direction
            sim.send(C, D, pkt(i), t)
            sim.send(D, A, pkt(i), t)
    return [e for e in drain(sim) if e[1] in (A, B) and e[2] in (A, B)]


def test_same_seed_same_log_different_seed_different_log(seed):
    log = messy_run(seed, other_traffic=False)
    assert log == messy_run(seed, other_traffic=False)  # timings included, exactly
    assert log != messy_run(seed + 1, other_traffic=False)
    # the messy link really was messy
    received = Counter(idx(d) for _, dst, _, d in log if dst == B)
    assert 1000 < len(received) < 2000 and max(received.values()) == 2


def test_fates_do_not_depend_on_traffic_on_other_links(seed):
    assert messy_run(seed, other_traffic=False) == messy_run(seed, other_traffic=True)


def test_seed_derivation_is_stable_across_processes():
    # Pinned: a per-process salted hash() (or any change of derivation) would break this,
    # and with it the promise that a printed seed reproduces a run elsewhere.
    rng = NetSim(12345)._dir(("10.0.0.1", 5000), "srv").rng
    assert rng.random() == 0.08043829692273763


def test_every_send_consumes_the_same_number_of_draws(seed):
    # Whatever the fate (down, queue overflow, loss, duplicated), a send uses exactly
    # DRAWS_PER_PACKET numbers, which is what keeps fates aligned across configs.
    sim = NetSim(seed, MESSY)
    sim.add_outage(A, B, T0 + 0.5, T0 + 0.7)
    stream(sim, 500, 0.002, size=200)
    s = sim.stats(A, B)
    assert s.dropped_down and s.dropped_queue and s.dropped_loss and s.duplicated
    fresh = NetSim(seed)._dir(A, B).rng
    for _ in range(500 * DRAWS_PER_PACKET):
        fresh.random()
    assert sim._dirs[(A, B)].rng.getstate() == fresh.getstate()


def test_changing_one_knob_keeps_other_fates(seed):
    # Every send draws the same numbers, so adding loss only removes packets: the survivors
    # arrive at the very same times as on the lossless link.
    base = dict(latency=0.03, jitter=0.02, duplicate=0.1)
    a, b = NetSim(seed, LinkConfig(**base)), NetSim(seed, LinkConfig(**base, loss=0.3))
    stream(a, 3000, 0.005)
    stream(b, 3000, 0.005)
    lossless, lossy = drain(a), drain(b)
    assert len(lossy) < 0.8 * len(lossless)
    assert set(lossy) <= set(lossless)


# -- loss --------------------------------------------------------------------------------


def test_loss_rate_within_statistical_bounds(seed):
    n, p = 20_000, 0.2
    sim = NetSim(seed, LinkConfig(latency=0.01, loss=p))
    stream(sim, n, 0.001)
    got = drain(sim)
    s = sim.stats(A, B)
    assert s.dropped_loss == n - len(got) == n - s.delivered
    assert within(s.dropped_loss, n, p), s
    assert s.dropped_burst == s.dropped_queue == s.dropped_down == 0


def loss_runs(delivered: set[int], n: int) -> list[int]:
    runs, cur = [], 0
    for i in range(n):
        if i in delivered:
            if cur:
                runs.append(cur)
            cur = 0
        else:
            cur += 1
    if cur:
        runs.append(cur)
    return runs


def test_burst_loss_produces_runs_of_mean_length_one_over_exit(seed):
    n, enter, exit_ = 50_000, 0.01, 0.25
    sim = NetSim(seed, LinkConfig(burst_enter=enter, burst_exit=exit_, burst_loss=1.0))
    stream(sim, n, 0.001)
    delivered = {idx(d) for *_, d in drain(sim)}
    runs = loss_runs(delivered, n)
    s = sim.stats(A, B)
    assert s.dropped_burst == n - len(delivered) and s.dropped_loss == 0
    # Stationary loss rate enter / (enter + exit) ~ 3.8 %; ~480 runs of geometric length.
    # The losses come in runs, so their count varies more than independent losses' would:
    # a two-state chain whose states persist (1 - enter - exit = 0.74 per step) has its
    # count's variance (1 + 0.74) / (1 - 0.74) = 6.7 times the binomial's (sd ~111 packets,
    # not 43; measured over seeds 1-200: 122). The binomial bound at 8 of its sigmas was 3.1
    # true ones, and seed 13 (2333 lost, 3.7 true sigmas out) failed it.
    persist = 1 - enter - exit_
    assert within(s.dropped_burst, n, enter / (enter + exit_), sigmas=4 * math.sqrt((1 + persist) / (1 - persist)))
    mean = sum(runs) / len(runs)
    assert 0.75 / exit_ < mean < 1.25 / exit_, (mean, len(runs))
    assert max(runs) >= 10
    # Independent loss at the same average rate has runs of mean ~1.04: bursts are different.
    iid = NetSim(seed, LinkConfig(loss=enter / (enter + exit_)))
    stream(iid, n, 0.001)
    iid_runs = loss_runs({idx(d) for *_, d in drain(iid)}, n)
    assert sum(iid_runs) / len(iid_runs) < 1.2


# -- delay, jitter, reordering, duplication ----------------------------------------------


def delays(sim: NetSim, sent: list[float]) -> list[float]:
    return [t - sent[idx(d)] for t, _, _, d in drain(sim)]


@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_latency_plus_jitter_bounds_and_mean(seed, dist):
    lat, jit, n = 0.05, 0.02, 5000
    sim = NetSim(seed, LinkConfig(latency=lat, jitter=jit, jitter_dist=dist))
    ds = delays(sim, stream(sim, n, 0.001))
    assert len(ds) == n
    hi = lat + (jit if dist == "uniform" else 3 * jit)
    assert all(lat - 1e-9 <= d <= hi + 1e-9 for d in ds)
    mean_extra = jit * (0.5 if dist == "uniform" else math.sqrt(2 / math.pi))
    sd = jit * (1 / math.sqrt(12) if dist == "uniform" else math.sqrt(1 - 2 / math.pi))
    assert abs(sum(ds) / n - lat - mean_extra) < 5 * sd / math.sqrt(n)
    assert max(ds) - min(ds) > 0.9 * jit  # the jitter range is actually used


def order_of_arrival(sim: NetSim) -> list[int]:
    return [idx(d) for *_, d in drain(sim)]


def inversions(seq: list[int]) -> int:
    return sum(1 for x, y in zip(seq, seq[1:]) if y < x)


def test_jitter_reorders_packets_sent_closer_than_the_jitter(seed):
    sim = NetSim(seed, LinkConfig(latency=0.05, jitter=0.02))
    stream(sim, 1000, 0.002)
    assert inversions(order_of_arrival(sim)) > 50


def test_reorder_holds_back_a_fraction_by_reorder_delay(seed):
    n, p = 10_000, 0.1
    sim = NetSim(seed, LinkConfig(latency=0.03, reorder=p, reorder_delay=0.05))
    sent = stream(sim, n, 0.01)
    ds = delays(sim, sent)
    late = [d for d in ds if d > 0.03 + 1e-9]
    assert all(d == pytest.approx(0.03) or d == pytest.approx(0.08) for d in ds)
    assert within(len(late), n, p)
    sim2 = NetSim(seed, LinkConfig(latency=0.03, reorder=p, reorder_delay=0.05))
    stream(sim2, n, 0.01)
    assert inversions(order_of_arrival(sim2)) > 0.5 * n * p  # held-back ones arrive after later ones


def test_zero_jitter_link_never_reorders(seed):
    sim = NetSim(seed, LinkConfig(latency=0.05, loss=0.2))
    stream(sim, 3000, 0.0005)
    seq = order_of_arrival(sim)
    assert seq == sorted(seq)


def test_in_order_link_never_reorders_despite_jitter_reorder_and_duplicates(seed):
    sim = NetSim(seed, LinkConfig(latency=0.05, jitter=0.05, reorder=0.2, duplicate=0.2, in_order=True))
    stream(sim, 3000, 0.001)
    seq = order_of_arrival(sim)
    assert seq == sorted(seq) and len(seq) > 3000  # duplicates arrive, adjacent and in order


def test_duplicates_counted_and_delivered_with_their_own_delay(seed):
    n, p = 20_000, 0.1
    sim = NetSim(seed, LinkConfig(latency=0.02, jitter=0.03, duplicate=p))
    sent = stream(sim, n, 0.001)
    log = drain(sim)
    s = sim.stats(A, B)
    assert within(s.duplicated, n, p)
    assert s.delivered == len(log) == n + s.duplicated
    copies = Counter(idx(d) for *_, d in log)
    assert set(copies.values()) == {1, 2} and sum(c == 2 for c in copies.values()) == s.duplicated
    arrivals: dict[int, list[float]] = {}
    for t, _, _, d in log:
        arrivals.setdefault(idx(d), []).append(t)
    gaps = [abs(ts[1] - ts[0]) for ts in arrivals.values() if len(ts) == 2]
    assert sum(g > 1e-6 for g in gaps) > 0.9 * len(gaps)  # independent delays, not one copy twice
    assert all(0.02 - 1e-9 <= t - sent[i] <= 0.05 + 1e-9 for i, ts in arrivals.items() for t in ts)


# -- bandwidth ---------------------------------------------------------------------------


def test_bandwidth_serializes_packets_and_overflow_drops():
    # 1000-byte packets on 80 kbit/s take 0.1 s each; the queue holds 0.25 s of waiting.
    sim = NetSim(5, LinkConfig(latency=0.02, bandwidth=80_000, queue_limit=0.25))
    stream(sim, 5, 0.0, size=1000)  # a burst of five at T0
    log = drain(sim)
    assert [t for t, *_ in log] == pytest.approx([T0 + 0.12, T0 + 0.22, T0 + 0.32])
    assert [idx(d) for *_, d in log] == [0, 1, 2]
    s = sim.stats(A, B)
    assert (s.delivered, s.dropped_queue) == (3, 2)
    # The link is idle again once the queue drains: no lingering backlog.
    sim.send(A, B, bytes(1000), T0 + 5)
    assert drain(sim)[0][0] == pytest.approx(T0 + 5.12)


def test_queue_bytes_limit():
    sim = NetSim(5, LinkConfig(bandwidth=80_000, queue_limit=10.0, queue_bytes=2500))
    stream(sim, 4, 0.0, size=1000)  # 1000 in queue, then 2000, then 3000 > 2500
    assert sim.stats(A, B).dropped_queue == 2
    assert len(drain(sim)) == 2


def test_sustained_overload_delivers_at_capacity(seed):
    # Offer 2x the capacity for 20 s: deliveries run at the capacity, about half is dropped.
    bw, size = 100_000, 500  # 25 packets/s capacity
    sim = NetSim(seed, LinkConfig(latency=0.01, jitter=0.001, bandwidth=bw, queue_limit=0.2))
    stream(sim, 1000, 0.02, size=size)  # 50 packets/s for 20 s
    log = drain(sim)
    rate = len(log) / (log[-1][0] - log[0][0])
    assert 24 < rate < 26.5
    assert sim.stats(A, B).dropped_queue == 1000 - len(log)
    times = [t for t, *_ in log]
    assert min(b - a for a, b in zip(times, times[1:])) > size * 8 / bw - 0.0011  # serialized


# -- outages -----------------------------------------------------------------------------


def test_set_down_drops_everything_then_recovers():
    sim = NetSim(9, LinkConfig(latency=0.05))
    got: list[tuple[float, object, int]] = []
    t = T0
    for i in range(3000):  # both ways, every 10 ms, for 30 s
        t = T0 + i * 0.01
        if abs(t - (T0 + 10)) < 1e-9:
            sim.set_down(A, B, True)
        if abs(t - (T0 + 20)) < 1e-9:
            sim.set_down(A, B, False)
        got.extend((t, dst, idx(d)) for dst, _, d in sim.deliver(t))
        sim.send(A, B, pkt(i), t)
        sim.send(B, A, pkt(i), t)
    for dst in (A, B):
        mine = [(tt, i) for tt, d, i in got if d == dst]
        assert not any(T0 + 10 <= tt < T0 + 20 for tt, _ in mine)
        sent_idx = {i for _, i in mine}
        # in flight at the cut (sent 9.95..9.99) is lost too; sent from 20 s on arrives
        assert sent_idx.isdisjoint(range(995, 2000))
        assert set(range(0, 995)) <= sent_idx and set(range(2000, 2990)) <= sent_idx
    s = sim.stats(A, B)
    assert s.dropped_down == 1005 and s.dropped == 1005


def test_outage_window_is_scheduled_in_virtual_time():
    sim = NetSim(9, LinkConfig(latency=0.05))
    sim.add_outage(A, B, T0 + 10, T0 + 20, both_ways=False)
    stream(sim, 3000, 0.01)
    stream(sim, 3000, 0.01, src=B, dst=A)
    arrived = {idx(d) for _, dst, _, d in drain(sim) if dst == B}
    lost = set(range(3000)) - arrived
    assert lost == set(range(995, 2000))  # arrivals in [10, 20) and sends in [10, 20)
    assert sim.stats(B, A).delivered == 3000  # only one way was configured down
    with pytest.raises(ValueError):
        sim.add_outage(A, B, T0 + 5, T0 + 1)


# -- driver ------------------------------------------------------------------------------


class Echo:
    """Replies to every datagram with the same bytes."""

    def __init__(self) -> None:
        self.out: list[tuple[bytes, object]] = []
        self.received = 0

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        self.received += 1
        self.out.append((data, addr))

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def next_deadline(self):
        return None

    def handle_timer(self, now: float) -> None:
        raise AssertionError("echo has no timers")


class Sink(Echo):
    """Counts what it receives and never replies."""

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        self.received += 1


class Pinger:
    """Sends a numbered ping every ``interval`` from a timer; records round-trip times."""

    def __init__(self, peer, start: float, interval: float = 0.1) -> None:
        self.peer, self.interval = peer, interval
        self.deadline: float | None = start
        self.sent_at: dict[int, float] = {}
        self.rtts: dict[int, float] = {}
        self.timer_calls: list[float] = []
        self.out: list[tuple[bytes, object]] = []

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        i = idx(data)
        self.rtts.setdefault(i, now - self.sent_at[i])

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def next_deadline(self):
        return self.deadline

    def handle_timer(self, now: float) -> None:
        assert self.deadline is not None and now >= self.deadline
        self.timer_calls.append(now)
        i = len(self.sent_at)
        self.sent_at[i] = now
        self.out.append((pkt(i), self.peer))
        self.deadline += self.interval


def test_driver_runs_timers_and_flushes_replies():
    net = VirtualNetwork(NetSim(1, LinkConfig(latency=0.03)), start=T0)
    pinger = Pinger(B, start=T0 + 0.1)
    net.add(A, pinger)
    net.add(B, Echo())
    net.run_until(T0 + 10.07)
    assert net.now == T0 + 10.07
    # timers fired exactly at their deadlines, none skipped: 100.1, 100.2, ..., 110.0
    assert len(pinger.timer_calls) == 100
    assert pinger.timer_calls == pytest.approx([T0 + 0.1 * k for k in range(1, 101)])
    # every reply came back without any explicit flush: the flush rule sent it
    assert len(pinger.rtts) == 100 and all(r == pytest.approx(0.06) for r in pinger.rtts.values())


def test_driver_with_loss_is_deterministic(seed):
    def run(s: int):
        net = VirtualNetwork(NetSim(s, LinkConfig(latency=0.05, jitter=0.02, loss=0.2)), start=T0)
        pinger = Pinger(B, start=T0, interval=0.05)
        net.add(A, pinger)
        net.add(B, Echo())
        net.run_until(T0 + 30)
        return pinger.rtts

    rtts = run(seed)
    assert rtts == run(seed) and rtts != run(seed + 1)
    n = 601  # pings at T0 .. T0+30 inclusive
    assert within(len(rtts), n, 0.64, sigmas=6)  # both legs survive 20 % loss
    assert all(0.1 - 1e-9 <= r <= 0.14 + 1e-9 for r in rtts.values())


def test_ticks_run_on_schedule_and_their_sends_are_flushed():
    net = VirtualNetwork(NetSim(2, LinkConfig(latency=0.01)), start=T0)
    echo_a, sink = Echo(), Sink()
    net.add(A, echo_a)
    net.add(B, sink)
    ticks: list[float] = []

    def tick(now: float) -> None:  # a "user call": queue a datagram, no explicit flush
        ticks.append(now)
        echo_a.out.append((pkt(len(ticks)), B))

    net.run_until(T0 + 1, tick=tick, tick_interval=1 / 60)
    assert len(ticks) == 60 and ticks[0] == pytest.approx(T0 + 1 / 60) and ticks[-1] == pytest.approx(T0 + 1)
    net.run_until(T0 + 2, tick=tick, tick_interval=1 / 60)  # continues without a double tick
    assert len(ticks) == 120 and len(set(round(t, 9) for t in ticks)) == 120
    assert sink.received == 119  # the tick at T0+2 is still in flight
    net.run_until(T0 + 3)
    assert sink.received == 120 and net.sim.in_flight == 0


def test_every_keeps_phase_and_can_be_cancelled():
    net = VirtualNetwork(NetSim(2), start=T0)
    seen: list[float] = []
    ticker = net.every(0.5, seen.append)
    net.run_until(T0 + 1.2)
    net.run_until(T0 + 2.0)
    assert seen == [T0, T0 + 0.5, T0 + 1.0, T0 + 1.5, T0 + 2.0]
    ticker.cancel()
    net.run_until(T0 + 5)
    assert len(seen) == 5 and net.now == T0 + 5


def test_same_instant_order_deliveries_then_timers_then_ticks():
    trace: list[str] = []

    class Recorder(Echo):
        def __init__(self, deadline):
            super().__init__()
            self.deadline = deadline

        def receive_datagram(self, data, addr, now):
            trace.append(f"rx@{now}")

        def next_deadline(self):
            return self.deadline

        def handle_timer(self, now):
            trace.append(f"timer@{now}")
            self.deadline = None

    net = VirtualNetwork(NetSim(0, LinkConfig(latency=1.0)), start=T0)
    net.add(A, Echo())
    net.add(B, Recorder(deadline=T0 + 1))
    net.every(1.0, lambda now: trace.append(f"tick@{now}"), start=T0 + 1)
    net.sim.send(A, B, b"x", T0)
    net.run_until(T0 + 1)
    assert trace == ["rx@101.0", "timer@101.0", "tick@101.0"]


def test_undeliverable_and_removed_endpoints():
    net = VirtualNetwork(NetSim(0, LinkConfig(latency=0.01)), start=T0)
    echo = Echo()
    net.add(A, echo)
    echo.out.append((b"nobody", C))
    net.flush(A)  # user call -> flush
    net.run_until(T0 + 1)
    assert net.undeliverable == 1
    pinger = Pinger(A, start=T0 + 1.5, interval=10.0)
    net.add(B, pinger)
    net.run_until(T0 + 2)
    assert len(pinger.rtts) == 1
    assert net.remove(B) is pinger and B not in net
    net.run_until(T0 + 3)  # its timer is gone with it; the pong it got back is undeliverable
    assert len(pinger.timer_calls) == 1
    with pytest.raises(ValueError):
        net.add(A, Echo())


def test_driver_detects_a_zero_latency_loop():
    net = VirtualNetwork(NetSim(0), start=T0)  # perfect link: zero latency
    net.max_events_per_instant = 1000
    net.add(A, Echo())
    net.add(B, Echo())
    net.sim.send(A, B, b"ping", T0)
    with pytest.raises(RuntimeError, match="stuck"):
        net.run_until(T0 + 1)


def test_driver_detects_a_stuck_deadline():
    class Stuck(Echo):
        def next_deadline(self):
            return T0 + 1  # never advances after handle_timer

        def handle_timer(self, now):
            pass

    net = VirtualNetwork(NetSim(0), start=T0)
    net.max_events_per_instant = 1000
    net.add(A, Stuck())
    with pytest.raises(RuntimeError, match="stuck"):
        net.run_until(T0 + 2)


def test_many_endpoints_at_60hz_complete(seed):
    # A miniature of the other modules' soak runs: 10 clients send an input every 60 Hz
    # tick to a server that echoes it, over a lossy, jittery, duplicating link, for 60 s.
    n_clients, p_loss, p_dup = 10, 0.05, 0.01
    sim = NetSim(seed, LinkConfig.from_rtt(0.1, jitter=0.01, loss=p_loss, duplicate=p_dup))
    net = VirtualNetwork(sim, start=T0)
    server = Echo()
    net.add("server", server)
    clients = [Sink() for _ in range(n_clients)]
    for i, c in enumerate(clients):
        net.add(f"client{i}", c)

    def tick(now: float) -> None:
        for c in clients:
            c.out.append((b"input", "server"))

    net.every(1 / 60, tick, start=T0 + 1 / 60)
    net.run_until(T0 + 60 + 0.2)  # let the last tick's round trip finish
    sent = 60 * 60 * n_clients
    survive = (1 - p_loss) * (1 + p_dup)  # mean copies arriving per packet sent
    assert abs(server.received - sent * survive) < 6 * math.sqrt(sent * 0.06)
    back = sum(c.received for c in clients)
    assert abs(back - server.received * survive) < 6 * math.sqrt(sent * 0.12)
    assert sim.total_stats().delivered == server.received + back
