"""Lockstep server cost and bandwidth at 8, 64 and 256 clients, on virtual time.

What it runs: the real sans-IO :class:`~netcode.lockstep.LockstepServer` and N clients over
the seeded simulator (:class:`~netcode.simdriver.VirtualNetwork`) on a clean link (no loss,
0.5 ms one way, like loopback), 60 Hz, every client connected through the real handshake.
After a warm-up it measures, for ``--seconds`` of virtual play:

* server tick work: wall time of each ``server.on_tick(now)`` (close the frame, step the
  game, encode, send), ``time.perf_counter`` around the call; p50 / p99 / max;
* the game step alone, inside that (the server's game object has a timed ``step``), so the
  rest is netcode;
* input processing: time in ``server.receive_datagram`` between two ticks (the input
  packets of that tick), p50 / p99 / max per tick;
* server CPU per simulated second: everything above plus its timer (housekeeping), in ms
  per second of play (1000 = one core busy);
* bandwidth per client: (payload + 28 bytes UDP/IPv4 header) x datagrams, server to client
  (down) and client to server (up), in kbit/s, averaged over the clients.

Clients. ``real`` rows use :class:`~netcode.lockstep_client.LockstepClient` with a
:class:`~netcode.lockstep_client.LockstepRunner` per client (each runs the game, so acks,
input timing and hash reports are exactly a player's). That costs a game step per client
per tick in this one Python process, which at 256 clients would dominate the run, so the
``fake`` rows drive lightweight clients instead: a real :class:`~netcode.session.SessionClient`
(handshake, sequence numbers, acks) that parses only the LS_FRAMES header, acks
``next_needed = newest + 1`` (exactly what a real client acks on a lossless link, where it
holds every frame), estimates the server tick with the real client's
:class:`~netcode.timesync.ServerClock` and :func:`~netcode.timesync.input_lead`, stamps its bot's input on
the ticks ahead and sends LS_INPUT packets built with :func:`~netcode.lockstep_wire.pack_input`
every ``send_every`` updates, repeating the inputs the server has not acked, plus the latest
hash report (the value comes from the server's own record: nothing is simulated client-side).
Bot controls come from ``game.bot_inputs`` on an unstepped copy of the initial state, for
all fake clients in one call every 4 updates (as the test harness's bots do); swarm bots
depend only on the (fixed) control points, so their inputs are the real bots' inputs. The
"swarm 64 fake" row is there to compare with "swarm 64 real" (the server's figures should
match); the opt-in "swarm256" row does the same at 256 for a few seconds (~25 s of wall time).

Fairness details: clients are spread over the two phases of ``send_every`` (as independent
players would be), so each tick receives half of the input packets rather than all of them
every other tick; after the warm-up everything built so far is ``gc.freeze()``-d, so full
garbage collections during the measurement do not walk the client objects that share this
process with the server (a server process would not hold them).

Run: ``python -m bench.bench_lockstep [--seconds 20] [--rows arena8,swarm64f,...] [--profile]``
(under a minute on a 2-core machine with the defaults). ``--profile`` then replays the last
row for 5 s with cProfile around the server calls only (on_tick and receive_datagram
separately) and prints the top functions.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import io
import math
import pstats
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable

import numpy as np

from demos.arena import Arena
from demos.swarm import Swarm
from engine.model import Game
from netcode.events import Connected
from netcode.handshake import GameIdentity
from netcode.lockstep import LockstepConfig, LockstepServer
from netcode.inputs import StampedInputs
from netcode.lockstep_client import LockstepClient, LockstepRunner
from netcode.timesync import ServerClock, input_lead, one_way
from netcode.lockstep_wire import LockstepInfo, pack_input, parse_frames_header
from netcode.netsim import LinkConfig, NetSim
from netcode.session import ClientState, SessionClient
from netcode.simdriver import VirtualNetwork
from netcode.token import mint_token
from netcode.wire import UDP_IP_OVERHEAD, PacketType

SECRET = b"bench-lockstep-secret-0123456789"
LINK = LinkConfig(latency=0.0005)  # clean, loopback-like: no loss, no jitter
RATE = 60
TARGET_TICK_P99_MS = 2.0  # 256 clients at 60 Hz
TARGET_DOWN_KBPS = 20.0  # per client at 8 players, UDP/IP headers included

Profilers = tuple[cProfile.Profile, cProfile.Profile]  # (on_tick, receive_datagram)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    make_game: Callable[[], Game]
    clients: int
    fake: bool
    seconds_scale: float = 1.0  # fraction of --seconds this row plays (keeps the run short)


ROWS = [
    Row("arena8", "arena 8 real", lambda: Arena(), 8, False),
    Row("swarm8", "swarm 8 real", lambda: Swarm(), 8, False),
    Row("swarm64", "swarm 64 real", lambda: Swarm(), 64, False),
    Row("swarm64f", "swarm 64 fake", lambda: Swarm(), 64, True),
    Row("swarm256f", "swarm 256 fake", lambda: Swarm(), 256, True),
    # Opt-in (not in the default run): 256 real clients, to check the fake ones; ~1 min.
    Row("swarm256", "swarm 256 real", lambda: Swarm(), 256, False, 0.2),
]
DEFAULT_ROWS = "arena8,swarm8,swarm64,swarm64f,swarm256f"


# -- the measured server ------------------------------------------------------------------
class ServerProbe:
    """Wraps the server as the simulator's endpoint: times every call into it and counts
    bytes per peer address. ``measuring`` gates the counters (off during the warm-up)."""

    def __init__(self, server: LockstepServer, profilers: Profilers | None = None):
        self.server = server
        self.tick_prof, self.recv_prof = profilers or (None, None)
        self.measuring = False
        self.tick_ms: list[float] = []
        self.step_ms: list[float] = []
        self.recv_ms: list[float] = []  # per tick: receive_datagram time since the last tick
        self.sent: list[bool] = []  # per tick: did it send frames (every send_every ticks)
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
        t0 = time.perf_counter()
        self.server.receive_datagram(data, addr, now)
        dt = time.perf_counter() - t0
        if prof:
            prof.disable()
        if self.measuring:
            self._recv_acc += dt
            c = self.up.setdefault(addr, [0, 0])
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
        t0 = time.perf_counter()
        self.server.on_tick(now)
        dt = time.perf_counter() - t0
        if prof:
            prof.disable()
        self.server.events()  # drain: a real room loop does
        if self.measuring:
            self.tick_ms.append(dt * 1e3)
            self.step_ms.append(self._step_acc * 1e3)
            self.recv_ms.append(self._recv_acc * 1e3)
            self.sent.append(self.server.tick % self.server.config.send_every == 0)
        self._recv_acc = 0.0


# -- lightweight clients --------------------------------------------------------------------


class FakeClient:
    """A player's lockstep traffic without the game: see the module docstring."""

    def __init__(self, game: Game, slot: int, token: bytes, hashes: dict[int, int], input_delay: int = 2):
        self.slot = slot
        self.hashes = hashes  # the server's recorded hashes (what a correct client reports)
        self.input_delay = input_delay
        self.itemsize = game.input_dtype.itemsize
        self.session = SessionClient(
            server="server",
            token=token,
            game=GameIdentity.of(game),
            on_payload=self._on_payload,
            rng=random.Random(slot),
        )
        self.info: LockstepInfo | None = None
        self.clock: ServerClock | None = None
        self.newest = -1  # newest frame received
        self.input_ack = -1
        self.input = np.zeros(self.itemsize, np.uint8)
        self._own = StampedInputs(self.itemsize)
        self._updates = slot  # phase: clients do not all send on the same update

    # endpoint interface
    def receive_datagram(self, data: bytes, addr: Hashable, now: float) -> None:
        self.session.receive_datagram(data, addr, now)
        for ev in self.session.events():
            if isinstance(ev, Connected):
                self.info = LockstepInfo.parse(ev.info)
                self.clock = ServerClock(self.info.tick_rate)
                self.clock.seed(self.info.server_tick, now)

    def datagrams_to_send(self):
        return self.session.datagrams_to_send()

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.session.handle_timer(now)

    def _on_payload(self, conn, ptype: PacketType, payload: memoryview, now: float) -> None:
        if ptype is PacketType.LS_FRAMES:
            newest, input_ack, _, _ = parse_frames_header(payload)
            self.clock.sample(newest, now)
            if newest > self.newest:
                self.newest = newest
            if input_ack > self.input_ack:
                self.input_ack = input_ack

    def update(self, now: float) -> None:
        """What LockstepClient.update does for traffic: stamp, then send every send_every."""
        if self.info is None or not self.session.connected:
            return
        info = self.info
        conn = self.session.connection
        rtt = conn.rtt
        server_tick = self.clock.tick_at(now, one_way(rtt))
        target = int(math.ceil(server_tick + input_lead(rtt, info.tick_rate, info.send_every))) + self.input_delay
        self._own.stamp(int(server_tick) + 1, target, self.input)
        self._updates += 1
        if self._updates % info.send_every:
            return
        first, records = self._own.unacked(self.input_ack)
        confirmed = self.newest + 1
        h = confirmed // info.hash_every * info.hash_every
        report = (h, self.hashes[h]) if h in self.hashes else None
        payload = pack_input(self.slot, confirmed, 0, first=first, records=records, hash_report=report)
        self.session.send(PacketType.LS_INPUT, payload, now)


# -- one row --------------------------------------------------------------------------------
@dataclass
class Result:
    row: Row
    seconds: float
    ticks: int
    tick_ms: np.ndarray
    step_ms: np.ndarray
    recv_ms: np.ndarray
    cpu_ms_per_s: float
    down_kbps: float
    up_kbps: float
    down_pps: float
    wall: float
    extra: dict = field(default_factory=dict)


def _token(slot: int) -> bytes:
    return mint_token(SECRET, "default", expires=1e9, slot=slot, user=f"p{slot}", nonce=slot.to_bytes(8, "little"))


@dataclass
class Match:
    """A server (behind its probe) and its clients on one virtual network, ticking."""

    row: Row
    net: VirtualNetwork
    server: LockstepServer
    probe: ServerProbe
    names: list[str]
    real: list[tuple[LockstepClient, LockstepRunner]]  # empty for fake rows


def build(row: Row, profilers: Profilers | None = None) -> Match:
    """Server and clients connected (handshakes started), tickers registered; nothing run."""
    game = row.make_game()
    n = row.clients
    net = VirtualNetwork(NetSim(1, LINK), start=100.0)
    server = LockstepServer(game, LockstepConfig(players=n, seed=1), secret=SECRET, rng=random.Random(1))
    probe = ServerProbe(server, profilers)
    net.add("server", probe)
    dt = 1.0 / server.tick_rate
    names = [f"c{i}" for i in range(n)]
    pairs: list[tuple[LockstepClient, LockstepRunner]] = []
    if row.fake:
        fakes = [FakeClient(game, i, _token(i), server.hashes) for i in range(n)]
        for name, c in zip(names, fakes):
            net.add(name, c)
            c.session.connect(net.now)
            net.flush(name)
        reference = game.create(1, n)  # bots read only fixed things of it (see docstring)
        slots = np.arange(n)
        updates = [0]

        def client_updates(now: float) -> None:
            if updates[0] % 4 == 0:
                raw = game.bot_inputs(reference, server.tick, slots).astype(game.input_dtype, copy=False)
                rows = np.frombuffer(raw.tobytes(), np.uint8).reshape(n, -1)
                for c, r in zip(fakes, rows):
                    c.input = r
            updates[0] += 1
            for c in fakes:
                c.update(now)

    else:
        for name, i in zip(names, range(n)):
            client = LockstepClient(game, server="server", token=_token(i), rng=random.Random(i))
            pairs.append((client, LockstepRunner(game, client)))
            net.add(name, client)

        def connect(parity: int) -> Callable[[float], None]:
            def go(now: float) -> None:
                for client, _ in pairs[parity::2]:
                    if client.session.state is ClientState.IDLE:
                        client.connect(now)

            return go

        # Odd slots connect one tick later, so (as with real players) clients do not all
        # send their input packets on the same tick.
        connect(0)(net.now)
        net.flush_all()
        net.run_for(dt, tick=connect(1), tick_interval=dt)
        updates = [0]

        def client_updates(now: float) -> None:
            bots = updates[0] % 4 == 0
            updates[0] += 1
            for client, runner in pairs:
                if bots and runner.state is not None and client.slot is not None:
                    client.set_input(game.bot_inputs(runner.state, runner.tick, np.array([client.slot]))[0])
                runner.step(now)
                client.events()

    net.every(dt, probe.on_tick)
    net.every(dt, client_updates, start=net.now + dt / 2)  # clients between server ticks
    return Match(row, net, server, probe, names, pairs)


def run_row(row: Row, seconds: float, warmup: float, profilers: Profilers | None = None) -> Result:
    started = time.perf_counter()
    m = build(row, profilers)
    net, server, probe, names, pairs, n = m.net, m.server, m.probe, m.names, m.real, row.clients
    net.run_for(warmup)
    connected = server.stats()["players"]
    if connected != n:
        raise RuntimeError(f"{row.label}: only {connected} of {n} clients connected during the warm-up")
    # Everything built so far (the clients above all) goes to the permanent generation, so
    # full collections during the measurement do not rescan this process's client side.
    gc.collect()
    gc.freeze()
    probe.measuring = True
    tick0 = server.tick
    missing0 = server.stats().get("missing_inputs", 0)
    try:
        net.run_for(seconds)
    finally:
        probe.measuring = False
        gc.unfreeze()
    ticks = server.tick - tick0
    tick_ms = np.array(probe.tick_ms)
    recv_ms = np.array(probe.recv_ms)
    cpu = (tick_ms.sum() + recv_ms.sum()) / 1e3 + probe.timer_s
    down = [probe.down.get(name, [0, 0]) for name in names]
    up = [probe.up.get(name, [0, 0]) for name in names]
    sent = np.array(probe.sent)
    extra = {
        "on_tick p50/p99 ms on send ticks": f"{_pct(tick_ms[sent], 50):.3f}/{_pct(tick_ms[sent], 99):.3f}",
        "on other ticks": f"{_pct(tick_ms[~sent], 50):.3f}/{_pct(tick_ms[~sent], 99):.3f}",
        "input packets per tick": f"{sum(c[0] for c in probe.up.values()) / max(ticks, 1):.1f}",
        "missing inputs": server.stats().get("missing_inputs", 0) - missing0,
    }
    if not row.fake:
        lags = [server.tick - c.next_needed for c, _ in pairs]
        extra["max client lag (ticks)"] = max(lags)
    return Result(
        row=row,
        seconds=seconds,
        ticks=ticks,
        tick_ms=tick_ms,
        step_ms=np.array(probe.step_ms),
        recv_ms=recv_ms,
        cpu_ms_per_s=cpu * 1e3 / seconds,
        down_kbps=float(np.mean([b for _, b in down])) * 8 / seconds / 1e3,
        up_kbps=float(np.mean([b for _, b in up])) * 8 / seconds / 1e3,
        down_pps=float(np.mean([d for d, _ in down])) / seconds,
        wall=time.perf_counter() - started,
        extra=extra,
    )


# -- report ---------------------------------------------------------------------------------
def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if len(a) else float("nan")


HEADER = (
    f"{'row':<15} {'s':>4} {'tick p50':>8} {'p99':>6} {'max':>6} {'step p50':>8} {'p99':>6} "
    f"{'recv p50':>8} {'p99':>6} {'max':>6} {'t+r p99':>7} {'cpu ms/s':>8} {'down kbps':>9} {'pkt/s':>5} "
    f"{'up kbps':>7} {'wall s':>6}"
)


def format_row(r: Result) -> str:
    both = r.tick_ms + r.recv_ms
    return (
        f"{r.row.label:<15} {r.seconds:>4.0f} "
        f"{_pct(r.tick_ms, 50):>8.3f} {_pct(r.tick_ms, 99):>6.3f} {r.tick_ms.max():>6.2f} "
        f"{_pct(r.step_ms, 50):>8.3f} {_pct(r.step_ms, 99):>6.3f} "
        f"{_pct(r.recv_ms, 50):>8.3f} {_pct(r.recv_ms, 99):>6.3f} {r.recv_ms.max():>6.2f} {_pct(both, 99):>7.3f} "
        f"{r.cpu_ms_per_s:>8.1f} {r.down_kbps:>9.2f} {r.down_pps:>5.1f} {r.up_kbps:>7.2f} {r.wall:>6.1f}"
    )


EXPLAIN = """\
columns (times are wall ms on this machine; everything else per simulated second):
  s          virtual seconds measured (after the warm-up)
  tick       server.on_tick(now) per tick: close frame, step game, encode, send (p50/p99/max)
  step       the game step inside it (the rest of 'tick' is netcode)
  recv       server.receive_datagram time per tick: that tick's input packets (p50/p99/max)
  t+r p99    p99 of tick + recv per tick: all server work of one tick
  cpu ms/s   server CPU per simulated second (tick + recv + timers); 1000 = one core
  down kbps  per client, server -> client, (payload + 28 B UDP/IPv4) x datagrams
  pkt/s      datagrams per second to each client
  up kbps    per client, client -> server, same accounting
  wall s     wall time of the row (clients included)"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="virtual seconds measured per row")
    ap.add_argument("--warmup", type=float, default=3.0, help="virtual seconds before measuring")
    ap.add_argument("--rows", default=DEFAULT_ROWS, help="comma list of: " + ", ".join(r.key for r in ROWS))
    ap.add_argument("--profile", action="store_true", help="cProfile the server calls of the last row")
    args = ap.parse_args(argv)
    wanted = args.rows.split(",")
    rows = [r for r in ROWS if r.key in wanted]
    if not rows:
        ap.error(f"no rows match {args.rows!r}")
    print("$ python -m bench.bench_lockstep " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(f"lockstep on virtual time: {RATE} Hz, clean link ({LINK.latency * 1e3:.1f} ms one way, no loss), "
          f"warm-up {args.warmup:.0f} s; numpy {np.__version__}, python {sys.version.split()[0]}")
    print(EXPLAIN)
    print()
    print(HEADER)
    results = []
    for row in rows:
        r = run_row(row, args.seconds * row.seconds_scale, args.warmup)
        results.append(r)
        print(format_row(r), flush=True)
    print()
    for r in results:
        extra = "; ".join(f"{k} {v}" for k, v in r.extra.items())
        print(f"  {r.row.label}: {r.ticks} ticks; {extra}")
    print()
    print("targets:")
    for r in results:
        if r.row.clients == 256:
            p99 = _pct(r.tick_ms, 99)
            both = _pct(r.tick_ms + r.recv_ms, 99)
            verdict = "OK" if p99 < TARGET_TICK_P99_MS else "MISSED"
            print(f"  {r.row.label}: p99 server tick work {p99:.3f} ms (target < {TARGET_TICK_P99_MS} ms): {verdict}"
                  f"; with input processing {both:.3f} ms per tick")
        if r.row.clients == 8:
            verdict = "OK" if r.down_kbps <= TARGET_DOWN_KBPS else "MISSED"
            print(f"  {r.row.label}: downstream {r.down_kbps:.2f} kbps per client incl. UDP/IP "
                  f"(target <= {TARGET_DOWN_KBPS:.0f}): {verdict}")
    if args.profile:
        # A separate run: the profiler's overhead must not leak into the table.
        profilers = (cProfile.Profile(), cProfile.Profile())
        run_row(rows[-1], min(args.seconds, 5.0), args.warmup, profilers)
        for prof, what in zip(profilers, ("server.on_tick", "server.receive_datagram")):
            print()
            print(f"cProfile of {what} in '{rows[-1].label}' (5 s), top by own time:")
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
            print(out.getvalue().split("\n\n", 1)[-1].rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
