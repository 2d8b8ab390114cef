"""Seeded network link simulator: latency, jitter, loss, burst loss, duplication, reordering,
bandwidth caps with a bounded queue, and outages.

Protocol objects in ticksync are sans-IO, so their behaviour over a bad network is tested by
handing their datagrams to a :class:`NetSim` on virtual time instead of a socket. That is
how a test runs minutes of 20 %-loss, 150 ms-RTT play in a fraction of a second and gets the
same result every time (the design anchor is netcode.io's network simulator).

The simulator is sans-IO too: it never reads a clock; every call takes ``now`` (seconds).

Model, per *direction* of a link (``src -> dst``), applied to each :meth:`NetSim.send` in
this order:

1. Gilbert-Elliott burst state advances (good -> bad with ``burst_enter``, bad -> good with
   ``burst_exit``), once per packet.
2. Down (``set_down`` or an ``outage`` window covering ``now``): dropped as ``dropped_down``.
3. Bandwidth (if capped): the packet waits for the link to finish the ones before it
   (``depart = max(now, free_at)``; ``free_at = depart + bits / bandwidth``). If the wait
   exceeds ``queue_limit`` seconds, or the bytes already waiting plus this packet exceed
   ``queue_bytes``, it is dropped as ``dropped_queue`` and uses no bandwidth.
4. Loss in transit (after the bottleneck, so a lost packet still used bandwidth): with
   probability ``loss`` -> ``dropped_loss``; else if in the bad state, with probability
   ``burst_loss`` -> ``dropped_burst``.
5. Delay: ``latency`` + jitter (uniform in ``[0, jitter]``, or ``|N(0, jitter)|`` truncated at
   ``3 * jitter``) + ``reorder_delay`` with probability ``reorder``. With ``in_order`` the
   arrival is clamped to be no earlier than the previous one, so the direction is FIFO.
6. Duplication: with probability ``duplicate`` a second copy is scheduled with its own
   independent jitter/reorder delay.

A packet in flight is also dropped (``dropped_down``) if its direction is down when it
arrives: an outage cuts what is on the wire, not only what is sent during it.

Determinism: each direction has its own ``random.Random`` seeded from a hash of
``(seed, src, dst)`` (blake2b of their ``repr``, not the per-process salted ``hash()``), used
only by sends on that direction, so fates do not depend on traffic elsewhere. Every send
draws exactly :data:`DRAWS_PER_PACKET` numbers whatever its fate, so the n-th packet on a
direction always sees the same draws: changing one knob (say ``loss``) does not reshuffle
the jitter or duplication of the others. Addresses may be any hashable whose ``repr`` is
stable across processes (str, int, bytes, tuples of those), e.g. ``("10.0.0.1", 5000)``.

The driver that runs protocol endpoints over a NetSim on virtual time is
:class:`netcode.sim.driver.VirtualNetwork`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, fields, replace
from statistics import NormalDist
from typing import Hashable, Literal

__all__ = ["Address", "LinkConfig", "LinkStats", "NetSim", "DRAWS_PER_PACKET"]

Address = Hashable

DRAWS_PER_PACKET = 8
_EPS = 1e-9  # float slack for queue-limit comparisons (waits are sums of bits/bandwidth)
_STD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Behaviour of one direction of a link. Times in seconds, probabilities in [0, 1].

    The defaults are a perfect link: no delay, no loss, unlimited bandwidth.
    """

    latency: float = 0.0  # one-way propagation delay
    jitter: float = 0.0  # scale of the random extra delay (see jitter_dist)
    jitter_dist: Literal["uniform", "normal"] = "uniform"
    loss: float = 0.0  # independent loss probability per packet
    burst_enter: float = 0.0  # Gilbert-Elliott P(good -> bad) per packet
    burst_exit: float = 1.0  # P(bad -> good) per packet; mean burst length 1 / burst_exit
    burst_loss: float = 1.0  # loss probability while in the bad state
    duplicate: float = 0.0  # P(a second copy is delivered, with its own delay)
    reorder: float = 0.0  # P(a packet is held back by reorder_delay)
    reorder_delay: float = 0.05
    in_order: bool = False  # FIFO delivery: jitter and reorder delay but never reorder
    bandwidth: float | None = None  # bits per second; None = unlimited
    queue_limit: float = 0.25  # max seconds a packet may wait for the bandwidth cap
    queue_bytes: int | None = None  # optional cap on bytes waiting (incl. the new packet)

    def __post_init__(self) -> None:
        for name in ("loss", "burst_enter", "burst_exit", "burst_loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"LinkConfig.{name} must be a probability in [0, 1], got {p!r}")
        for name in ("latency", "jitter", "reorder_delay", "queue_limit"):
            v = getattr(self, name)
            if not v >= 0.0:  # also rejects NaN
                raise ValueError(f"LinkConfig.{name} must be >= 0 seconds, got {v!r}")
        if self.jitter_dist not in ("uniform", "normal"):
            raise ValueError(f"LinkConfig.jitter_dist must be 'uniform' or 'normal', got {self.jitter_dist!r}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"LinkConfig.bandwidth must be > 0 bits/s or None, got {self.bandwidth!r}")
        if self.queue_bytes is not None and self.queue_bytes < 0:
            raise ValueError(f"LinkConfig.queue_bytes must be >= 0 or None, got {self.queue_bytes!r}")

    @classmethod
    def from_rtt(cls, rtt: float, **kwargs: object) -> LinkConfig:
        """A config whose one-way latency is half of ``rtt``; configure it ``both_ways``."""
        return cls(latency=rtt / 2.0, **kwargs)  # type: ignore[arg-type]


@dataclass(slots=True)
class LinkStats:
    """Counters for one direction. ``sent`` counts every send; ``delivered`` every copy
    handed out by :meth:`NetSim.deliver` (duplicates included)."""

    sent: int = 0
    delivered: int = 0
    dropped_loss: int = 0
    dropped_burst: int = 0
    dropped_queue: int = 0
    dropped_down: int = 0
    duplicated: int = 0
    bytes_sent: int = 0
    bytes_delivered: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_loss + self.dropped_burst + self.dropped_queue + self.dropped_down

    def __iadd__(self, other: LinkStats) -> LinkStats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


class _Direction:
    """Mutable state of one direction: its config, RNG, burst state, queue, outages."""

    __slots__ = ("src", "dst", "config", "rng", "bad", "free_at", "last_arrival", "down", "outages", "stats")

    def __init__(self, src: Address, dst: Address, config: LinkConfig, rng: random.Random):
        self.src = src
        self.dst = dst
        self.config = config
        self.rng = rng
        self.bad = False
        self.free_at = float("-inf")  # when the bandwidth-capped link finishes its queue
        self.last_arrival = float("-inf")
        self.down = False
        self.outages: list[tuple[float, float]] = []
        self.stats = LinkStats()

    def is_down(self, t: float) -> bool:
        if self.down:
            return True
        for start, end in self.outages:
            if start <= t < end:
                return True
        return False


def _direction_seed(seed: int, src: Address, dst: Address) -> int:
    digest = hashlib.blake2b(repr((seed, src, dst)).encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


class NetSim:
    """Simulated network between arbitrary addresses, on caller-supplied virtual time.

    Call :meth:`send` for each datagram, then :meth:`deliver` with a later ``now`` to get
    the ones that have arrived; :meth:`next_delivery_time` says when to call it next.
    Directions not configured use ``default``.
    """

    def __init__(self, seed: int, default: LinkConfig = LinkConfig()):
        self.seed = seed
        self.default = default
        self._dirs: dict[tuple[Address, Address], _Direction] = {}
        # (arrival, send sequence, direction, data): the sequence breaks ties in send order
        # and keeps directions from ever being compared.
        self._heap: list[tuple[float, int, _Direction, bytes]] = []
        self._seq = 0

    # -- configuration -------------------------------------------------------------------

    def _dir(self, src: Address, dst: Address) -> _Direction:
        d = self._dirs.get((src, dst))
        if d is None:
            rng = random.Random(_direction_seed(self.seed, src, dst))
            d = self._dirs[(src, dst)] = _Direction(src, dst, self.default, rng)
        return d

    def _pairs(self, a: Address, b: Address, both_ways: bool) -> list[_Direction]:
        return [self._dir(a, b), self._dir(b, a)] if both_ways else [self._dir(a, b)]

    def configure(self, a: Address, b: Address, config: LinkConfig, *, both_ways: bool = True) -> None:
        """Set the config of ``a -> b`` (and ``b -> a`` unless ``both_ways=False``).

        Takes effect for later sends; RNG, burst state and queue carry over."""
        for d in self._pairs(a, b, both_ways):
            d.config = config

    def config(self, src: Address, dst: Address) -> LinkConfig:
        return self._dirs[(src, dst)].config if (src, dst) in self._dirs else self.default

    def set_down(self, a: Address, b: Address, down: bool, *, both_ways: bool = True) -> None:
        """Take a link down (drops every packet sent, and every packet arriving, while down)
        or bring it back up."""
        for d in self._pairs(a, b, both_ways):
            d.down = down

    def add_outage(self, a: Address, b: Address, start: float, end: float, *, both_ways: bool = True) -> None:
        """Schedule the link to be down during ``[start, end)`` of virtual time."""
        if not end >= start:
            raise ValueError(f"outage must have end >= start, got [{start!r}, {end!r})")
        for d in self._pairs(a, b, both_ways):
            d.outages.append((start, end))

    # -- traffic -------------------------------------------------------------------------

    def send(self, src: Address, dst: Address, data: bytes, now: float) -> None:
        """Hand ``data`` from ``src`` to the network for ``dst`` at time ``now``."""
        d = self._dirs.get((src, dst)) or self._dir(src, dst)
        cfg = d.config
        st = d.stats
        size = len(data)
        st.sent += 1
        st.bytes_sent += size
        r = d.rng.random
        # Fixed number of draws per packet, whatever happens to it (see module docstring).
        u_state, u_loss, u_burst, u_jit, u_reo, u_dup, u_djit, u_dreo = r(), r(), r(), r(), r(), r(), r(), r()

        # The burst chain advances for every packet, so its timing is a property of the
        # packet sequence, not of what else happened to the packets.
        if d.bad:
            if u_state < cfg.burst_exit:
                d.bad = False
        elif u_state < cfg.burst_enter:
            d.bad = True

        if d.down or (d.outages and d.is_down(now)):
            st.dropped_down += 1
            return

        out = now
        bw = cfg.bandwidth
        if bw is not None:
            wait = d.free_at - now
            if wait < 0.0:
                wait = 0.0
            qb = cfg.queue_bytes
            if wait > cfg.queue_limit + _EPS or (qb is not None and wait * bw / 8.0 + size > qb + _EPS):
                st.dropped_queue += 1
                return
            d.free_at = now + wait + size * 8.0 / bw
            out = d.free_at  # propagation starts once the last bit is on the wire

        if u_loss < cfg.loss:
            st.dropped_loss += 1
            return
        if d.bad and u_burst < cfg.burst_loss:
            st.dropped_burst += 1
            return

        self._schedule(d, data, out + self._delay(cfg, u_jit, u_reo))
        if u_dup < cfg.duplicate:
            st.duplicated += 1
            self._schedule(d, data, out + self._delay(cfg, u_djit, u_dreo))

    @staticmethod
    def _delay(cfg: LinkConfig, u_jit: float, u_reo: float) -> float:
        delay = cfg.latency
        if cfg.jitter:
            if cfg.jitter_dist == "uniform":
                delay += cfg.jitter * u_jit
            else:  # half-normal by inverse CDF: one uniform draw, truncated at 3 sigma
                z = _STD_NORMAL.inv_cdf(min(0.5 + 0.5 * u_jit, 0.9999))
                delay += cfg.jitter * min(z, 3.0)
        if u_reo < cfg.reorder:
            delay += cfg.reorder_delay
        return delay

    def _schedule(self, d: _Direction, data: bytes, arrival: float) -> None:
        if d.config.in_order and arrival < d.last_arrival:
            arrival = d.last_arrival  # equal times keep send order via the sequence number
        if arrival > d.last_arrival:
            d.last_arrival = arrival
        heapq.heappush(self._heap, (arrival, self._seq, d, data))
        self._seq += 1

    def next_delivery_time(self) -> float | None:
        """Arrival time of the earliest packet in flight, or None if nothing is in flight."""
        return self._heap[0][0] if self._heap else None

    def deliver(self, now: float) -> list[tuple[Address, Address, bytes]]:
        """Remove and return every packet that has arrived by ``now`` as ``(dst, src, data)``,
        in arrival order (ties in send order)."""
        heap = self._heap
        out: list[tuple[Address, Address, bytes]] = []
        while heap and heap[0][0] <= now:
            arrival, _, d, data = heapq.heappop(heap)
            st = d.stats
            if d.down or (d.outages and d.is_down(arrival)):
                st.dropped_down += 1
                continue
            st.delivered += 1
            st.bytes_delivered += len(data)
            out.append((d.dst, d.src, data))
        return out

    @property
    def in_flight(self) -> int:
        """Packets scheduled but not yet delivered (or dropped at arrival)."""
        return len(self._heap)

    # -- statistics ----------------------------------------------------------------------

    def stats(self, src: Address, dst: Address) -> LinkStats:
        """A copy of the counters of direction ``src -> dst`` (zeros if never used)."""
        d = self._dirs.get((src, dst))
        return replace(d.stats) if d is not None else LinkStats()

    def total_stats(self) -> LinkStats:
        """Counters summed over every direction."""
        total = LinkStats()
        for d in self._dirs.values():
            total += d.stats
        return total
