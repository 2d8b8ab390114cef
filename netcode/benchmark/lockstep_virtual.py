"""Lockstep server cost and bandwidth at 8, 64 and 256 clients, on virtual time.

What it runs: the real sans-IO :class:`~netcode.lockstep.server.LockstepServer` and N clients over
the seeded simulator (:class:`~netcode.sim.driver.VirtualNetwork`) on a clean link (no loss,
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

Clients. ``real`` rows use :class:`~netcode.lockstep.client.LockstepClient` with a
:class:`~netcode.lockstep.client.LockstepRunner` per client (each runs the game, so acks,
input timing and hash reports are exactly a player's). That costs a game step per client
per tick in this one Python process, which at 256 clients would dominate the run, so the
``fake`` rows drive lightweight clients instead: a real :class:`~netcode.session.SessionClient`
(handshake, sequence numbers, acks) that parses only the LS_FRAMES header, acks
``next_needed = newest + 1`` (exactly what a real client acks on a lossless link, where it
holds every frame), estimates the server tick with the real client's
:class:`~netcode.mode.timesync.ServerClock` and :func:`~netcode.mode.timesync.input_lead`, stamps its bot's input on
the ticks ahead and sends LS_INPUT packets built with :func:`~netcode.lockstep.wire.pack_input`
every ``send_every`` updates, repeating the inputs the server has not acked, plus the latest
hash report (the value comes from the server's own record: nothing is simulated client-side).
Bot controls come from ``game.bot_inputs`` on an unstepped copy of the initial state, for
all fake clients in one call every 4 updates (as the test harness's bots do); swarm bots
depend only on the (fixed) control points, so their inputs are the real bots' inputs. The
"swarm 64 fake" row is there to compare with "swarm 64 real" (the server's figures should
match); the opt-in "swarm256" row does the same at 256, for 1.25 x ``--seconds`` (1500 ticks at
the default 20: a p99 needs that many), in about 40 s of wall time: the real clients' game
steps are computed once per distinct (tick, inputs, state) and copied to the others
(:class:`SharedSteps`; deterministic, so every client's state and traffic are its own).

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

import copy
import math
import random
import sys
import time
from dataclasses import dataclass, field
from collections.abc import Hashable
from typing import Callable

import numpy as np

from netcode.benchmark.virtual import (
    LINK,
    FakeSession,
    Figures,
    Match,
    Profilers,
    ServerProbe,
    add_clients,
    fake_updates,
    measure,
    network,
    parse_args,
    pct,
    player_token,
    print_command,
    profile_row,
    run_rows,
    schedule,
    warm_up,
)
from demos.arena import Arena
from demos.swarm import Swarm
from engine.model import Game
from engine.state import State
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.lockstep.client import LockstepClient, LockstepRunner
from netcode.mode.timesync import input_lead
from netcode.lockstep.wire import LockstepInfo, pack_input, parse_frames_header
from netcode.session import ClientState
from netcode.session.wire import PacketType

SECRET = b"bench-lockstep-secret-0123456789"
RATE = 60
TARGET_TICK_P99_MS = 2.0  # 256 clients at 60 Hz
TARGET_DOWN_KBPS = 20.0  # per client at 8 players, UDP/IP headers included


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
    # Opt-in (not in the default run): 256 real clients, to check the fake ones; ~40 s.
    # Its steps are shared between the clients (see SharedSteps), so it can afford 1500
    # ticks: a p99 over fewer is a handful of ticks.
    Row("swarm256", "swarm 256 real", lambda: Swarm(), 256, False, 1.25),
]
DEFAULT_ROWS = "arena8,swarm8,swarm64,swarm64f,swarm256f"


# -- the measured server ------------------------------------------------------------------
class LockstepProbe(ServerProbe):
    """The common probe (see ``netcode.benchmark.virtual``), plus which ticks sent frames."""

    def __init__(self, server: LockstepServer, profilers: Profilers | None = None):
        super().__init__(server, profilers)
        self.sent: list[bool] = []  # per tick: did it send frames (every send_every ticks)

    def ticked(self) -> None:
        if self.measuring:
            self.sent.append(self.server.tick % self.server.config.send_every == 0)


# -- lightweight clients --------------------------------------------------------------------
class FakeClient(FakeSession):
    """A player's lockstep traffic without the game: see the module docstring."""

    Info = LockstepInfo

    def __init__(self, game: Game, slot: int, token: bytes, hashes: dict[int, int], input_delay: int = 2,
                 server: Hashable = "server", rng=None):
        super().__init__(game, slot, token, server, rng)
        self.hashes = hashes  # the server's recorded hashes (what a correct client reports; {} reports none)
        self.input_delay = input_delay
        self.newest = -1  # newest frame received
        self.input_ack = -1
        self._updates = slot  # phase: clients do not all send on the same update

    def _on_payload(self, conn, ptype: PacketType, payload: memoryview, now: float) -> None:
        if ptype is PacketType.LS_FRAMES:
            newest, input_ack, _, _, _ = parse_frames_header(payload)
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
        ahead = self.clock.one_way(rtt, now)
        server_tick = self.clock.tick_at(now, ahead)
        target = int(math.ceil(server_tick + input_lead(ahead, rtt.jitter, info.tick_rate, info.send_every))) + self.input_delay
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


# -- real clients' game steps ------------------------------------------------------------------
class SharedSteps:
    """The real clients' game, whose ``step`` is computed once per distinct (tick, inputs,
    state) and copied to every client that asks for the same one. Lockstep is
    deterministic, so each client ends with exactly the state its own step would give (and
    sends exactly the same traffic); 256 clients then cost about one step per tick instead
    of 256, which is what lets the 256-client row run long enough for a p99. The state is
    identified by its 64-bit XXH3 hash, the value clients report to the server anyway."""

    KEEP = 128  # ticks of results kept: beyond the clients' rollback window

    def __init__(self, game: Game):
        self.game = copy.copy(game)
        self._by_tick: dict[int, dict[tuple[bytes, int], State]] = {}
        plain = type(game).step

        def shared_step(state, inputs, tick, _plain=plain, _game=self.game, _by_tick=self._by_tick):
            done = _by_tick.get(tick)
            if done is None:
                done = _by_tick[tick] = {}
                _by_tick.pop(tick - self.KEEP, None)
            key = (inputs.tobytes(), state.hash())
            after = done.get(key)
            if after is None:
                _plain(_game, state, inputs, tick)
                done[key] = state.copy()
            else:
                state.restore(after)

        self.game.step = shared_step  # instance attribute shadows the method


# -- one row --------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Result(Figures):
    """The common figures (times, CPU, bandwidth: see ``netcode.benchmark.virtual``) of one row."""

    row: Row
    ticks: int
    wall: float
    extra: dict = field(default_factory=dict)


@dataclass
class LockstepMatch(Match):
    real: list[tuple[LockstepClient, LockstepRunner]]  # empty for fake rows


def build(row: Row, profilers: Profilers | None = None) -> LockstepMatch:
    """Server and clients connected (handshakes started), tickers registered; nothing run."""
    game = row.make_game()
    n = row.clients
    server = LockstepServer(game, LockstepConfig(players=n, seed=1), secret=SECRET, rng=random.Random(1))
    probe = LockstepProbe(server, profilers)
    net = network(probe)
    dt = 1.0 / server.tick_rate
    names = [f"c{i}" for i in range(n)]
    pairs: list[tuple[LockstepClient, LockstepRunner]] = []
    if row.fake:
        fakes = [FakeClient(game, i, player_token(SECRET, i), server.hashes) for i in range(n)]
        add_clients(net, names, fakes)
        reference = game.create(1, n)  # bots read only fixed things of it (see docstring)
        slots = np.arange(n)
        client_updates = fake_updates(
            fakes, lambda: game.bot_inputs(reference, server.tick, slots).astype(game.input_dtype, copy=False)
        )

    else:
        shared = SharedSteps(game).game
        for name, i in zip(names, range(n)):
            client = LockstepClient(game, server="server", token=player_token(SECRET, i), rng=random.Random(i))
            pairs.append((client, LockstepRunner(shared, client)))
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

    schedule(net, dt, probe, client_updates)
    return LockstepMatch(row, net, server, probe, names, pairs)


def run_row(row: Row, seconds: float, warmup: float, profilers: Profilers | None = None) -> Result:
    started = time.perf_counter()
    m = build(row, profilers)
    server, probe = m.server, m.probe
    warm_up(m, warmup, row.clients)
    tick0 = server.tick
    missing0 = server.stats().get("missing_inputs", 0)
    measure(m, seconds)
    ticks = server.tick - tick0
    fig = probe.figures(m.names, seconds)
    tick_ms = fig.tick_ms
    sent = np.array(probe.sent)
    extra = {
        "on_tick p50/p99 ms on send ticks": f"{pct(tick_ms[sent], 50):.3f}/{pct(tick_ms[sent], 99):.3f}",
        "on other ticks": f"{pct(tick_ms[~sent], 50):.3f}/{pct(tick_ms[~sent], 99):.3f}",
        "input packets per tick": f"{probe.up_datagrams() / max(ticks, 1):.1f}",
        "missing inputs": server.stats().get("missing_inputs", 0) - missing0,
    }
    if not row.fake:
        lags = [server.tick - c.next_needed for c, _ in m.real]
        extra["max client lag (ticks)"] = max(lags)
    return Result(**vars(fig), row=row, ticks=ticks, wall=time.perf_counter() - started, extra=extra)


# -- report ---------------------------------------------------------------------------------
HEADER = (
    f"{'row':<15} {'s':>4} {'tick p50':>8} {'p99':>6} {'max':>6} {'step p50':>8} {'p99':>6} "
    f"{'recv p50':>8} {'p99':>6} {'max':>6} {'t+r p99':>7} {'cpu':>5} {'cpu ms/s':>8} {'down kbps':>9} {'pkt/s':>5} "
    f"{'up kbps':>7} {'wall s':>6}"
)


def format_row(r: Result) -> str:
    both = r.tick_ms + r.recv_ms
    both_cpu = r.tick_cpu_ms + r.recv_cpu_ms
    return (
        f"{r.row.label:<15} {r.seconds:>4.0f} "
        f"{pct(r.tick_ms, 50):>8.3f} {pct(r.tick_ms, 99):>6.3f} {r.tick_ms.max():>6.2f} "
        f"{pct(r.step_ms, 50):>8.3f} {pct(r.step_ms, 99):>6.3f} "
        f"{pct(r.recv_ms, 50):>8.3f} {pct(r.recv_ms, 99):>6.3f} {r.recv_ms.max():>6.2f} {pct(both, 99):>7.3f} {pct(both_cpu, 99):>5.3f} "
        f"{r.cpu_ms_per_s:>8.1f} {r.down_kbps:>9.2f} {r.down_pps:>5.1f} {r.up_kbps:>7.2f} {r.wall:>6.1f}"
    )


EXPLAIN = """\
columns (times are wall ms on this machine; everything else per simulated second):
  s          virtual seconds measured (after the warm-up)
  tick       server.on_tick(now) per tick: close frame, step game, encode, send (p50/p99/max)
  step       the game step inside it (the rest of 'tick' is netcode)
  recv       server.receive_datagram time per tick: that tick's input packets (p50/p99/max)
  t+r p99    p99 of tick + recv per tick: all server work of one tick
  cpu        the same p99 in this thread's CPU time (time.thread_time): a machine busy with
             other work inflates wall times but not this, so the two tell load from work (it
             carries ~0.5 us per call of reading that clock: a tick has ~130 calls)
  cpu ms/s   server CPU per simulated second (tick + recv + timers); 1000 = one core
  down kbps  per client, server -> client, (payload + 28 B UDP/IPv4) x datagrams
  pkt/s      datagrams per second to each client
  up kbps    per client, client -> server, same accounting
  wall s     wall time of the row (clients included)"""


def main(argv: list[str] | None = None) -> int:
    args, rows = parse_args(__doc__, argv, ROWS, DEFAULT_ROWS, seconds=20.0, warmup=3.0)
    print_command("bench.bench_lockstep", argv)
    print(f"lockstep on virtual time: {RATE} Hz, clean link ({LINK.latency * 1e3:.1f} ms one way, no loss), "
          f"warm-up {args.warmup:.0f} s; numpy {np.__version__}, python {sys.version.split()[0]}")
    print(EXPLAIN)
    print()
    results = run_rows(rows, args, run_row, HEADER, format_row)
    print()
    for r in results:
        extra = "; ".join(f"{k} {v}" for k, v in r.extra.items())
        print(f"  {r.row.label}: {r.ticks} ticks; {extra}")
    print()
    print("targets:")
    for r in results:
        if r.row.clients == 256:
            p99 = pct(r.tick_ms, 99)
            both = pct(r.tick_ms + r.recv_ms, 99)
            verdict = "OK" if p99 < TARGET_TICK_P99_MS else "MISSED"
            print(f"  {r.row.label}: p99 server tick work {p99:.3f} ms (target < {TARGET_TICK_P99_MS} ms): {verdict}"
                  f"; with input processing {both:.3f} ms per tick")
        if r.row.clients == 8:
            verdict = "OK" if r.down_kbps <= TARGET_DOWN_KBPS else "MISSED"
            print(f"  {r.row.label}: downstream {r.down_kbps:.2f} kbps per client incl. UDP/IP "
                  f"(target <= {TARGET_DOWN_KBPS:.0f}): {verdict}")
    if args.profile:
        profile_row(run_row, rows[-1], args.seconds, args.warmup, limit=5.0, top=18)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
