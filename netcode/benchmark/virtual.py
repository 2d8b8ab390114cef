"""The measuring harness shared by the virtual-time server benches (``lockstep_virtual``,
``statesync_virtual``).

Both benches do the same thing to a different sans-IO server: put it behind a probe on the
seeded simulator with a clean link, connect N clients through the real handshake, warm
up, then measure a few virtual seconds with the probe counting. Keeping that here means
the two report their common columns (tick / step / recv times, CPU per simulated second,
bandwidth per client) the same way, so their tables can be compared. What it provides:

* :data:`LINK` (the clean, loopback-like link) and :func:`network`, the simulator with the
  probed server at address ``"server"``;
* :class:`ServerProbe`: the server as the simulator's endpoint, timing ``on_tick``, the game
  step inside it, ``receive_datagram`` and the timer, and counting datagrams and bytes (UDP/IP
  headers included) per peer address; a bench subclasses it to record its own per-tick facts
  (:meth:`ServerProbe.ticked`);
* :class:`Figures`: what the probe measured, per row (percentiles come from :func:`pct`);
* :class:`FakeSession`: the session plumbing of a lightweight client (a real
  :class:`~netcode.session.SessionClient` plus the server clock), which each bench completes
  with its protocol's payloads and inputs; :func:`fake_updates` drives a list of them with
  one ``bot_inputs`` call for all;
* the run itself: :class:`Match`, :func:`player_token`, :func:`add_clients`,
  :func:`schedule`, :func:`warm_up`, :func:`measure`;
* the command line and report scaffolding: :func:`parse_args`, :func:`print_command`,
  :func:`run_rows`, :func:`profile_row`.

What a bench reports beyond that (its rows, columns, extras, targets) stays in the bench.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import hashlib
import io
import pstats
import random
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netcode.events import Connected
from netcode.session.handshake import GameIdentity
from netcode.mode.inputs import StampedInputs
from netcode.sim.network import LinkConfig, NetSim
from netcode.session import SessionClient
from netcode.sim.driver import VirtualNetwork
from netcode.mode.timesync import ServerClock
from netcode.session.token import mint_token
from netcode.session.wire import UDP_IP_OVERHEAD, PacketType

LINK = LinkConfig(latency=0.0005)  # clean, loopback-like: no loss, no jitter

Profilers = tuple[cProfile.Profile, cProfile.Profile]  # (on_tick, receive_datagram)


# -- the measured server ------------------------------------------------------------------
class ServerProbe:
    """Wraps the server as the simulator's endpoint: times every call into it and counts
    bytes per peer address. ``measuring`` gates the counters (off during the warm-up).

    ``server`` is any of the sans-IO servers (``LockstepServer``, ``StateSyncServer``): it needs
    ``game``, ``tick``, the endpoint methods, ``on_tick`` and ``events``."""

    def __init__(self, server: Any, profilers: Profilers | None = None):
        self.server = server
        self.tick_prof, self.recv_prof = profilers or (None, None)
        self.measuring = False
        self.tick_ms: list[float] = []
        self.step_ms: list[float] = []
        self.recv_ms: list[float] = []  # per tick: receive_datagram time since the last tick
        # The same two, as this thread's CPU time (time.thread_time): what a contended machine
        # cannot inflate, so a lossy run's cost is told from the machine's load.
        self.tick_cpu_ms: list[float] = []
        self.recv_cpu_ms: list[float] = []
        self._recv_cpu_acc = 0.0
        self.timer_s = 0.0
        self._recv_acc = 0.0
        self._step_acc = 0.0
        self.down: dict[Hashable, list[int]] = {}  # addr -> [datagrams, bytes incl. headers]
        self.up: dict[Hashable, list[int]] = {}
        # Time the game step inside on_tick: a per-server copy of the game whose step is
        # wrapped (clients keep the plain one).
        game = copy.copy(server.game)
        plain = type(game).step

        def timed_step(state, inputs, tick, _plain=plain, _game=game):
            t0 = time.perf_counter()
            _plain(_game, state, inputs, tick)
            self._step_acc += time.perf_counter() - t0

        game.step = timed_step  # instance attribute shadows the method
        server.game = game

    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        prof = self.recv_prof if self.measuring else None
        if prof:
            prof.enable()
        # The CPU clock is a system call (about 1 us here): read outside the wall interval,
        # or every datagram's time would carry it.
        c0 = time.thread_time()
        t0 = time.perf_counter()
        self.server.receive_datagram(data, addr, now)
        dt = time.perf_counter() - t0
        cpu = time.thread_time() - c0
        if prof:
            prof.disable()
        if self.measuring:
            self._recv_acc += dt
            self._recv_cpu_acc += cpu
            c = self.up.get(addr)
            if c is None:
                c = self.up[addr] = [0, 0]
            c[0] += 1
            c[1] += len(data) + UDP_IP_OVERHEAD

    def datagrams_to_send(self) -> list[tuple[bytes, Hashable]]:
        out = self.server.datagrams_to_send()
        if self.measuring:
            down = self.down
            for data, addr in out:
                c = down.get(addr)
                if c is None:
                    c = down[addr] = [0, 0]
                c[0] += 1
                c[1] += len(data) + UDP_IP_OVERHEAD
        return out

    def next_deadline(self) -> float | None:
        return self.server.next_deadline()

    def handle_timer(self, now: float) -> None:
        t0 = time.perf_counter()
        self.server.handle_timer(now)
        if self.measuring:
            self.timer_s += time.perf_counter() - t0

    def on_tick(self, now: float) -> None:
        prof = self.tick_prof if self.measuring else None
        self._step_acc = 0.0
        if prof:
            prof.enable()
        c0 = time.thread_time()
        t0 = time.perf_counter()
        self.server.on_tick(now)
        dt = time.perf_counter() - t0
        cpu = time.thread_time() - c0
        if prof:
            prof.disable()
        self.server.events()  # drain: a real room loop does
        if self.measuring:
            self.tick_ms.append(dt * 1e3)
            self.step_ms.append(self._step_acc * 1e3)
            self.recv_ms.append(self._recv_acc * 1e3)
            self.tick_cpu_ms.append(cpu * 1e3)
            self.recv_cpu_ms.append(self._recv_cpu_acc * 1e3)
        self.ticked()
        self._recv_acc = self._recv_cpu_acc = 0.0

    def ticked(self) -> None:
        """After every tick (measuring or not), outside the timed calls: a bench's own
        per-tick records. Nothing here."""

    def figures(self, names: Sequence[Hashable], seconds: float) -> Figures:
        """What was measured, with traffic averaged over the clients at ``names``."""
        tick_ms = np.array(self.tick_ms)
        recv_ms = np.array(self.recv_ms)
        cpu = (tick_ms.sum() + recv_ms.sum()) / 1e3 + self.timer_s
        down = [self.down.get(name, [0, 0]) for name in names]
        up = [self.up.get(name, [0, 0]) for name in names]
        return Figures(
            seconds=seconds,
            tick_ms=tick_ms,
            step_ms=np.array(self.step_ms),
            recv_ms=recv_ms,
            tick_cpu_ms=np.array(self.tick_cpu_ms),
            recv_cpu_ms=np.array(self.recv_cpu_ms),
            cpu_ms_per_s=cpu * 1e3 / seconds,
            down_bytes=float(np.mean([b for _, b in down])),
            down_dgrams=float(np.mean([d for d, _ in down])),
            up_bytes=float(np.mean([b for _, b in up])),
        )

    def up_datagrams(self) -> int:
        """Datagrams received from all clients while measuring."""
        return sum(c[0] for c in self.up.values())


@dataclass(kw_only=True)
class Figures:
    """The server figures every bench reports for a row: wall ms per tick, and per simulated
    second the server's CPU and each client's traffic (mean over the clients, datagrams
    counted as payload + 28 bytes UDP/IPv4). A bench's ``Result`` extends it."""

    seconds: float  # virtual seconds measured
    tick_ms: np.ndarray  # per tick: server.on_tick
    step_ms: np.ndarray  # per tick: the game step inside it
    recv_ms: np.ndarray  # per tick: server.receive_datagram since the previous tick
    tick_cpu_ms: np.ndarray  # the same two as this thread's CPU time (contention does not inflate it)
    recv_cpu_ms: np.ndarray
    cpu_ms_per_s: float  # ticks + datagrams + timers; 1000 = one core busy
    down_bytes: float  # per client, server -> client, over the measurement
    down_dgrams: float
    up_bytes: float  # per client, client -> server

    @property
    def down_kbps(self) -> float:
        return self.down_bytes * 8 / self.seconds / 1e3

    @property
    def up_kbps(self) -> float:
        return self.up_bytes * 8 / self.seconds / 1e3

    @property
    def down_pps(self) -> float:
        return self.down_dgrams / self.seconds


def pct(a: np.ndarray, q: float) -> float:
    """Percentile ``q`` of ``a``, NaN when it is empty."""
    return float(np.percentile(a, q)) if len(a) else float("nan")


# -- lightweight clients ----------------------------------------------------------------------
class FakeSession:
    """The plumbing of a lightweight client: a real :class:`~netcode.session.SessionClient`
    (handshake, sequence numbers, acks, RTT) as the simulator's endpoint, and the real
    client's :class:`~netcode.mode.timesync.ServerClock`, seeded from the accepted handshake.

    A subclass sets ``Info`` (the protocol's info class, parsed from the ``Connected``
    event), reads its packets in ``_on_payload`` and sends its inputs from ``update``; the
    bots' controls arrive in ``input`` (raw bytes of one input record), and ``_own`` stamps
    them as the real client does."""

    Info: Any  # e.g. LockstepInfo, StateSyncInfo: has tick_rate and server_tick

    def __init__(self, game, slot: int, token: bytes, server: Hashable = "server", rng=None):
        self.slot = slot
        self.itemsize = game.input_dtype.itemsize
        self.session = SessionClient(
            server=server,
            token=token,
            game=GameIdentity.of(game),
            on_payload=self._on_payload,
            rng=rng or random.Random(slot),
        )
        self.info = None  # an Info once connected
        self.clock: ServerClock | None = None
        self.input = np.zeros(self.itemsize, np.uint8)
        self._own = StampedInputs(self.itemsize)

    # endpoint interface
    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        self.session.receive_datagram(data, addr, now)
        for ev in self.session.events():
            if isinstance(ev, Connected):
                self.info = self.Info.parse(ev.info)
                self.clock = ServerClock(self.info.tick_rate)
                self.clock.seed(self.info.server_tick, now)
                self._connected()

    def datagrams_to_send(self):
        return self.session.datagrams_to_send()

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.session.handle_timer(now)

    @property
    def connected(self) -> bool:
        return self.session.connected

    def _connected(self) -> None:
        """Once ``info`` and ``clock`` are set. Nothing here."""

    def _on_payload(self, conn, ptype: PacketType, payload: memoryview, now: float) -> None:
        raise NotImplementedError

    def update(self, now: float) -> None:
        raise NotImplementedError


def fake_updates(clients: Sequence[FakeSession], bot_inputs: Callable[[], np.ndarray]) -> Callable[[float], None]:
    """The fake clients' ticker: every 4th update one ``bot_inputs()`` call (an array of the
    game's input dtype, one record per client in order) sets all their inputs, as the test
    harness's bots do; every update, each client's ``update``."""
    n = len(clients)
    updates = [0]

    def client_updates(now: float) -> None:
        if updates[0] % 4 == 0:
            raw = bot_inputs()
            rows = np.frombuffer(raw.tobytes(), np.uint8).reshape(n, -1)
            for c, r in zip(clients, rows):
                c.input = r
        updates[0] += 1
        for c in clients:
            c.update(now)

    return client_updates


# -- one row --------------------------------------------------------------------------------
@dataclass
class Match:
    """A server (behind its probe) and its clients on one virtual network, ticking. A bench
    adds its clients."""

    row: Any
    net: VirtualNetwork
    server: Any
    probe: ServerProbe
    names: list[str]  # the clients' addresses, c0 .. c<n-1>


def player_token(secret: bytes, slot: int, expires: float = 1e9) -> bytes:
    """Player ``slot``'s connect token. ``expires`` is the server's wall time: virtual time in
    the simulator (starts at 100)."""
    return mint_token(secret, "default", expires=expires, slot=slot, user=f"p{slot}", nonce=slot.to_bytes(12, "little"),
                      keys=hashlib.sha512(b"virtual-player-%d" % slot).digest())


def network(probe: ServerProbe) -> VirtualNetwork:
    """The seeded simulator on :data:`LINK`, virtual clock at 100, the probe at ``"server"``."""
    net = VirtualNetwork(NetSim(1, LINK), start=100.0)
    net.add("server", probe)
    return net


def add_clients(net: VirtualNetwork, names: Sequence[str], clients: Sequence) -> None:
    """Each client at its address, its handshake started and its first datagram sent now."""
    for name, c in zip(names, clients):
        net.add(name, c)
        c.session.connect(net.now)
        net.flush(name)


def schedule(net: VirtualNetwork, dt: float, probe: ServerProbe, client_updates: Callable[[float], None]) -> None:
    """Server ticks every ``dt``; the clients' updates every ``dt`` too, half-way between."""
    net.every(dt, probe.on_tick)
    net.every(dt, client_updates, start=net.now + dt / 2)  # clients between server ticks


def warm_up(m: Match, seconds: float, clients: int) -> None:
    """Run ``seconds`` unmeasured; every client must have connected by then."""
    m.net.run_for(seconds)
    connected = m.server.stats()["players"]
    if connected != clients:
        raise RuntimeError(f"{m.row.label}: only {connected} of {clients} clients connected during the warm-up")


def measure(m: Match, seconds: float) -> None:
    """Run ``seconds`` of virtual play with the probe counting.

    Everything built so far (the clients above all) goes to the permanent generation first
    (``gc.freeze``), so full collections during the measurement do not rescan the client
    side sharing this process with the server (a server process would not hold it)."""
    gc.collect()
    gc.freeze()
    m.probe.measuring = True
    try:
        m.net.run_for(seconds)
    finally:
        m.probe.measuring = False
        gc.unfreeze()


# -- command line and report ------------------------------------------------------------------
def parse_args(doc: str, argv: list[str] | None, rows: Sequence, default_rows: str, seconds: float, warmup: float):
    """The benches' common options; returns (args, the rows asked for, in table order)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=seconds, help="virtual seconds measured per row")
    ap.add_argument("--warmup", type=float, default=warmup, help="virtual seconds before measuring")
    ap.add_argument("--rows", default=default_rows, help="comma list of: " + ", ".join(r.key for r in rows))
    ap.add_argument("--profile", action="store_true", help="cProfile the server calls of the last row")
    args = ap.parse_args(argv)
    wanted = args.rows.split(",")
    chosen = [r for r in rows if r.key in wanted]
    if not chosen:
        ap.error(f"no rows match {args.rows!r}")
    return args, chosen


def print_command(module: str, argv: list[str] | None) -> None:
    """The command line as run, first line of the report."""
    print(f"$ python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:]))


def run_rows(rows: Sequence, args, run_row: Callable, header: str, format_row: Callable) -> list:
    """The table: the header, then each row's line as soon as it has run."""
    print(header)
    results = []
    for row in rows:
        r = run_row(row, args.seconds * row.seconds_scale, args.warmup)
        results.append(r)
        print(format_row(r), flush=True)
    return results


def profile_row(run_row: Callable, row, seconds: float, warmup: float, limit: float, top: int) -> None:
    """Replay ``row`` for ``min(seconds, limit)`` with cProfile around the server calls only
    and print the top functions by own time, on_tick and receive_datagram separately. A
    separate run: the profiler's overhead must not leak into the table."""
    profilers = (cProfile.Profile(), cProfile.Profile())
    run_row(row, min(seconds, limit), warmup, profilers)
    for prof, what in zip(profilers, ("server.on_tick", "server.receive_datagram")):
        print()
        print(f"cProfile of {what} in '{row.label}' ({limit:g} s), top by own time:")
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
        print(out.getvalue().split("\n\n", 1)[-1].rstrip())
