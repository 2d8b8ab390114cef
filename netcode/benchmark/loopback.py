"""One load run over real UDP on loopback: a server process and a load-generator process.

* server process: the real sans-IO mode server (:class:`~netcode.lockstep.server.LockstepServer`
  or :class:`~netcode.statesync.server.StateSyncServer`) on
  :func:`~netcode.transport.udp.open_udp_server` (127.0.0.1, default transport limits) and a
  :class:`~engine.loop.TickLoop` on :class:`~engine.loop.RealClock` on uvloop
  (:func:`~engine.loop.run_async`); each tick polls the socket (``read="tick"``, as a room
  does), runs ``server.on_tick`` and flushes. It measures itself between "start" and
  "stop": CPU time of the process (``getrusage``: user + system, so the kernel's UDP work
  for its sockets counts), tick work and lateness percentiles (``TickLoop.stats``), RSS,
  datagrams and bytes, the mode's counters (desyncs, missing inputs, encodes).
* load-generator process: the players. Most are lightweight fake clients (a real
  ``SessionClient`` each, with the mode's input stamping and acks:
  :class:`~netcode.benchmark.lockstep_virtual.FakeClient`,
  :class:`~netcode.benchmark.statesync_virtual.FakeClient`), driven by one ``selectors`` loop
  in 4 phase groups a quarter tick apart; ``real_clients`` of them are full clients that run
  the game (:class:`RealPlayer`), so a desync is seen the way a player sees it. Bot controls
  come from ``game.bot_inputs``: for the arena over dead-reckoned player positions, for any
  other game over its unstepped initial state. It counts every datagram and byte each way
  per client, the clients' own loss figures (packets unacked by the server) and desyncs.
* both are pinned to different CPUs where there are two (:mod:`.processes`); the parent
  only orchestrates. Everything stays on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import math
import multiprocessing as mp
import pstats
import random
import selectors
import socket
import time
import types
from dataclasses import dataclass, fields

import numpy as np

from demos.arena import Arena
from demos.arena.game import _STICK, WORLD
from engine.loop import RealClock, TickLoop, TickStats, run_async
from engine.model import Game
from netcode.benchmark import lockstep_virtual, statesync_virtual
from netcode.benchmark.processes import cpu_pair, cpu_seconds, cpu_split, expect, pin, rss_bytes
from netcode.benchmark.virtual import player_token
from netcode.events import Resynced
from netcode.lockstep.client import LockstepClient, LockstepRunner
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.session.connection import SessionConfig
from netcode.statesync.client import StateSyncClient
from netcode.statesync.server import StateSyncConfig, StateSyncServer
from netcode.transport.udp import open_udp_server

__all__ = ["HOST", "MODES", "LoopbackSpec", "RealPlayer", "run"]

HOST = "127.0.0.1"  # loopback only
PHASES = 4  # client update groups per tick
SECRET = statesync_virtual.SECRET
MODES = ("lockstep", "statesync")


@dataclass(frozen=True)
class LoopbackSpec:
    """What one run plays. ``game`` is pickled into both processes (a game class must be
    importable by its module path). ``snapshot_rate`` (state sync): default half the tick
    rate. ``read``: the server reads its socket once per tick ("tick", as a room does) or
    per datagram ("event"). ``general_path``: one datagram per system call (no recvmmsg/sendmmsg);
    ``breakdown`` times the parts of a tick; ``profile`` runs cProfile in the server.
    ``plaintext``: sessions unsealed (``insecure_plaintext_loopback``), as the protocol was
    before sessions were sealed, for comparisons with such checkouts and with Colyseus over ws://."""

    game: Game
    mode: str = "statesync"
    clients: int = 100
    tick_rate: int | None = None
    snapshot_rate: int | None = None
    seconds: float = 20.0
    warmup: float = 5.0
    real_clients: int = 0
    loadgens: int = 1
    read: str = "tick"
    general_path: bool = False
    breakdown: bool = False
    profile: bool = False
    plaintext: bool = False

    @property
    def rate(self) -> int:
        return self.tick_rate or self.game.tick_rate


def _entities(server) -> int:
    """Entities in the room: the rows of the game's entity table (its replication's
    ``alive`` column), else the longest array of the state."""
    replication = getattr(server.game, "replication", None)
    if replication is not None:
        return len(server.state[replication.alive])
    return max((len(a) for _, a in server.state.items() if getattr(a, "ndim", 0) >= 1), default=0)


# -- the server process -------------------------------------------------------------------
def _server_main(pipe, spec: LoopbackSpec, cpu: int | None) -> None:
    pin(cpu)
    try:
        run_async(_serve(pipe, spec))
    except Exception as exc:  # report, so the parent says why instead of timing out
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


def build_server(spec: LoopbackSpec, wall_offset: float):
    session = {"secret": SECRET, "wall_offset": wall_offset, "rng": random.Random(1)}
    if spec.plaintext:
        session["session_config"] = SessionConfig(insecure_plaintext_loopback=True)
    if spec.mode == "statesync":
        snapshot_rate = spec.snapshot_rate or max(1, spec.rate // 2)
        config = StateSyncConfig(players=spec.clients, seed=1, tick_rate=spec.tick_rate, snapshot_rate=snapshot_rate)
        return StateSyncServer(spec.game, config, **session)
    if spec.mode == "lockstep":
        config = LockstepConfig(players=spec.clients, seed=1, tick_rate=spec.tick_rate)
        return LockstepServer(spec.game, config, **session)
    raise ValueError(f"unknown mode {spec.mode!r} (available: {', '.join(MODES)})")


async def _serve(pipe, spec: LoopbackSpec) -> None:
    loop = asyncio.get_running_loop()
    game = spec.game
    server = build_server(spec, time.time() - loop.time())
    # Where the CPU goes: wall time in the tick's poll (socket reads and the input datagrams),
    # in the sans-IO tick and in the tick's flush (the sendto calls); the rest of the
    # process's CPU is the event loop and the kernel. With breakdown the endpoint's share
    # of the poll and parts of the tick are timed too, through wrappers called instead of
    # the methods (per batch when the socket is polled; per datagram with read="event",
    # where the wrapper itself costs the server CPU).
    spent = {"on_tick": 0.0, "flush": 0.0, "receive": 0.0, "poll": 0.0, "step": 0.0, "snapshot": 0.0, "encode": 0.0, "quantize": 0.0}
    clock = time.perf_counter
    if spec.breakdown:
        def timed(owner, name, key):  # one clock pair per call: per tick, cheap
            plain = getattr(owner, name)

            def wrapper(*a, **kw):
                t0 = clock()
                out = plain(*a, **kw)
                spent[key] += clock() - t0
                return out

            setattr(owner, name, wrapper)

        timed(game, "step", "step")
        timed(server, "receive_many", "receive")
        if spec.mode == "statesync":
            import netcode.statesync.server as ss_mod

            timed(server, "_snapshot", "snapshot")
            timed(ss_mod, "encode_snapshot", "encode")  # statesync looks it up as a module global
            timed(server.schema, "quantize", "quantize")
    transport = await open_udp_server(server, HOST, 0, socket_buffer=4 << 20, polled=spec.read == "tick")
    if spec.general_path and hasattr(transport, "batched"):
        transport.batched = False
    poll = getattr(transport, "poll", None)
    prof = cProfile.Profile() if spec.profile else None

    def on_tick(_tick: int) -> None:
        t0 = clock()
        if poll is not None:
            poll()  # this tick's datagrams, as a room's tick does
        t1 = clock()
        server.on_tick(loop.time())
        server.events()  # drained, as a room loop does
        t2 = clock()
        transport.flush()
        spent["poll"] += t1 - t0
        spent["on_tick"] += t2 - t1
        spent["flush"] += clock() - t2

    ticker = TickLoop(server.tick_rate, on_tick)
    task = asyncio.create_task(ticker.run(RealClock()))
    commands: asyncio.Queue = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    pipe.send(("port", transport.local_address[1]))
    mark = None
    try:
        while True:
            cmd = await asyncio.wait_for(commands.get(), timeout=spec.warmup + spec.seconds + 60)
            if cmd == "start":
                ticker.stats = TickStats(window=int(server.tick_rate * (spec.seconds + 2)) + 64)
                spent.update(dict.fromkeys(spent, 0.0))
                mark = (time.perf_counter(), cpu_split(), server.tick, dict(server.stats_counters),
                        transport.received, transport.sent, transport.bytes_sent, transport.bytes_received)
                if prof:
                    prof.enable()
            elif cmd == "stop":
                if prof:
                    prof.disable()
                pipe.send(("report", _server_report(server, transport, ticker.stats, spent, mark, prof)))
            elif cmd == "quit":
                break
    finally:
        loop.remove_reader(pipe.fileno())
        ticker.stop()
        server.close_all(loop.time())  # goodbyes to every client
        transport.flush()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        transport.close()


def _server_report(server, transport, stats: TickStats, spent: dict, mark: tuple, prof) -> dict:
    wall = time.perf_counter() - mark[0]
    user, system = (b - a for a, b in zip(mark[1], cpu_split()))
    sc = {k: server.stats_counters[k] - mark[3].get(k, 0) for k in server.stats_counters}
    p50, p99, pmax = (x * 1e3 for x in stats.duration_percentiles(50, 99, 100))
    l50, l99, lmax = (x * 1e3 for x in stats.lateness_percentiles(50, 99, 100))
    report = {
        "wall": wall,
        "cpu": user + system,
        "cpu_user": user,
        "cpu_sys": system,
        "rss_bytes": rss_bytes(),
        "tick_rate": server.tick_rate,
        "ticks": server.tick - mark[2],
        "tick_p50_ms": p50,
        "tick_p99_ms": p99,
        "tick_max_ms": pmax,
        "late_p50_ms": l50,
        "late_p99_ms": l99,
        "late_max_ms": lmax,
        "late_ticks": stats.late,
        "dropped_ticks": stats.dropped,
        "encodes_per_snapshot": sc["encodes"] / max(sc["snapshots"], 1) if "encodes" in sc else None,
        "missing_inputs": sc.get("missing_inputs", 0),
        "desyncs": sc.get("desyncs", 0),
        "spent": dict(spent),
        "received": transport.received - mark[4],
        "sent": transport.sent - mark[5],
        "bytes_sent": transport.bytes_sent - mark[6],
        "bytes_received": transport.bytes_received - mark[7],
        "transport_dropped": dict(transport.dropped),
        "players": int(server.present.sum()),
        "entities": _entities(server),
    }
    if prof:
        parts = []
        for key, count in (("tottime", 25), ("cumulative", 30)):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(key).print_stats(count)
            parts.append(f"top by {key}:\n" + out.getvalue().split("\n\n", 1)[-1].rstrip())
        report["profile"] = "\n\n".join(parts)
    return report


# -- the players --------------------------------------------------------------------------
class RealPlayer:
    """A full client that runs the game (a lockstep client and its runner, or a state-sync
    client predicting), with the fake clients' interface: what the load generator needs to
    drive it and read its desyncs. Its bot picks its controls from its own view of the game."""

    def __init__(self, game: Game, mode: str, slot: int, token: bytes, server, rng):
        self.game, self.slot = game, slot
        cls = LockstepClient if mode == "lockstep" else StateSyncClient
        self.client = cls(game, server=server, token=token, rng=rng)
        self.runner = LockstepRunner(game, self.client) if mode == "lockstep" else None
        self.session = self.client.session
        self.input = None  # the load generator's controls are not used: see above
        self.desyncs = 0
        self._updates = 0

    def connect(self, now: float) -> None:
        self.client.connect(now)

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        self.client.receive_datagram(data, addr, now)

    def datagrams_to_send(self):
        return self.client.datagrams_to_send()

    def next_deadline(self):
        return self.client.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.client.handle_timer(now)

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def ready(self) -> bool:
        if self.runner is not None:
            return self.runner.state is not None
        return self.client.acked >= 0

    def update(self, now: float) -> None:
        view, tick = (self.runner.state, self.runner.tick) if self.runner else (self.client.predicted, self.client.predicted_tick)
        if self._updates % 4 == 0 and view is not None:
            self.client.set_input(self.game.bot_inputs(view, tick, np.array([self.slot]))[0])
        self._updates += 1
        if self.runner is not None:
            self.runner.step(now)
        else:
            self.client.update(now)
        for ev in self.client.events():
            if isinstance(ev, Resynced) and ev.reason == "desync":
                self.desyncs += 1


def _fake(game: Game, mode: str, slot: int, token: bytes, server, rng):
    if mode == "lockstep":
        return lockstep_virtual.FakeClient(game, slot, token, {}, server=server, rng=rng)  # no hash reports
    return statesync_virtual.FakeClient(game, slot, token, server=server, rng=rng)


def _ready(c) -> bool:
    """Connected and holding the game: a complete snapshot, or a frame."""
    if isinstance(c, RealPlayer):
        return c.connected and c.ready
    return c.connected and (c.acked >= 0 if hasattr(c, "acked") else c.newest >= 0)


class _Bots:
    """The fake clients' controls from ``game.bot_inputs`` without simulating the game. For
    the arena, over the players' positions dead-reckoned from their own inputs (stick
    velocity, clamped to the world), so they steer away from walls like the server's bots;
    for any other game, over its initial state (its bots then read only what a tick does
    not change, as the swarm's control points)."""

    def __init__(self, game: Game, players: int, slots: list[int]):
        self.game = game
        self.arena = isinstance(game, Arena)
        start = game.create(1, players)
        if self.arena:
            self.pos = start.pos[slots].astype(np.int64)
            self.view = types.SimpleNamespace(pos=self.pos)
            self.vel = np.zeros_like(self.pos)
            self.rows = np.arange(len(slots))
        else:
            self.view = start
            self.rows = np.array(slots)

    def advance(self, ticks: int) -> None:
        if self.arena:
            self.pos += self.vel * ticks  # the ticks the server ran since the last update
            np.clip(self.pos, 0, WORLD, out=self.pos)

    def inputs(self, tick: int) -> np.ndarray:
        raw = self.game.bot_inputs(self.view, tick, self.rows).astype(self.game.input_dtype, copy=False)
        if self.arena:
            self.vel = _STICK[raw["move"].view(np.uint8)].astype(np.int64)
        return raw


# -- the load-generator process -----------------------------------------------------------
def _loadgen_main(pipe, server_port: int, slots: list[int], spec: LoopbackSpec, cpu: int | None) -> None:
    pin(cpu)
    try:
        _loadgen(pipe, (HOST, server_port), slots, spec)
    except Exception as exc:  # report, so the parent prints why instead of timing out
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


def _loadgen(pipe, server: tuple[str, int], slots: list[int], spec: LoopbackSpec) -> None:
    game = spec.game
    sel = selectors.DefaultSelector()
    clients: list = []
    socks: list[socket.socket] = []
    for slot in slots:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.connect(server)
        sock.setblocking(False)
        token = player_token(SECRET, slot, time.time() + 3600)
        make = RealPlayer if slot < spec.real_clients else _fake
        clients.append(make(game, spec.mode, slot, token, server, random.Random(slot)))
        socks.append(sock)
        sel.register(sock, selectors.EVENT_READ, len(clients) - 1)
    sel.register(pipe.fileno(), selectors.EVENT_READ, -1)
    sends = [s.send for s in socks]
    recvs = [s.recv for s in socks]
    n = len(clients)
    fakes = [(i, c) for i, c in enumerate(clients) if not isinstance(c, RealPlayer)]
    real = [c for c in clients if isinstance(c, RealPlayer)]
    down = np.zeros((n, 2), np.int64)  # datagrams, payload bytes
    up = np.zeros((n, 2), np.int64)
    counting = False
    sent_inputs = 0
    send_errors = 0

    def flush(i: int) -> None:
        nonlocal send_errors
        for data, _ in clients[i].datagrams_to_send():
            try:
                sends[i](data)
            except OSError:  # ENOBUFS / ECONNREFUSED after the server left: count, go on
                send_errors += 1
                continue
            if counting:
                up[i, 0] += 1
                up[i, 1] += len(data)

    def session_counts() -> tuple[int, int, int]:
        acked = lost = desyncs = 0
        for c in clients:
            conn = c.session.connection
            if conn is not None:
                acked += conn.counters.acked
                lost += conn.counters.lost
        desyncs = sum(c.desyncs for c in real)
        return acked, lost, desyncs

    t0 = time.perf_counter()
    for i, c in enumerate(clients):
        c.connect(t0) if isinstance(c, RealPlayer) else c.session.connect(t0)
        flush(i)
    bots = _Bots(game, spec.clients, slots)
    dt = 1.0 / spec.rate
    next_at = [t0 + k * dt / PHASES for k in range(PHASES)]
    groups = [list(range(k, n, PHASES)) for k in range(PHASES)]
    updates = 0
    missed_updates = 0
    ready_sent = False
    deadline = t0 + spec.warmup + spec.seconds + 90  # hard bound on this process
    window = [0.0, 0.0]
    cpu0 = 0.0
    mark = (0, 0, 0)
    stop = False
    while not stop:
        now = time.perf_counter()
        if now > deadline:
            break
        k = min(range(PHASES), key=next_at.__getitem__)
        timeout = max(0.0, next_at[k] - now)
        for key, _ in sel.select(timeout):
            i = key.data
            if i < 0:
                cmd = pipe.recv()
                if cmd == "start":
                    counting, sent_inputs, send_errors = True, 0, 0
                    down[:] = 0
                    up[:] = 0
                    window[0] = time.perf_counter()
                    cpu0 = cpu_seconds()
                    mark = session_counts()
                elif cmd == "stop":
                    counting = False
                    window[1] = time.perf_counter()
                    acked, lost, desyncs = (b - a for a, b in zip(mark, session_counts()))
                    pipe.send(("report", {
                        "wall": window[1] - window[0],
                        "down_datagrams": down[:, 0].tolist(),
                        "down_bytes": down[:, 1].tolist(),
                        "up_datagrams": up[:, 0].tolist(),
                        "up_bytes": up[:, 1].tolist(),
                        "acked": acked,
                        "lost": lost,
                        "desyncs": desyncs,
                        "inputs_sent": sent_inputs,
                        "send_errors": send_errors,
                        "missed_updates": missed_updates,
                        "no_baseline": sum(getattr(c, "counters", {}).get("no_baseline", 0) for _, c in fakes),
                        "complete": sum(getattr(c, "counters", {}).get("complete", 0) for _, c in fakes),
                        "cpu": cpu_seconds() - cpu0,
                        "rss_bytes": rss_bytes(),
                    }))
                elif cmd == "quit":
                    stop = True
                continue
            recv, client = recvs[i], clients[i]
            t = time.perf_counter()
            while True:
                try:
                    data = recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # ECONNREFUSED: the server is gone
                    break
                if counting:
                    down[i, 0] += 1
                    down[i, 1] += len(data)
                client.receive_datagram(data, server, t)
        now = time.perf_counter()
        for k in range(PHASES):
            if now < next_at[k]:
                continue
            behind = int((now - next_at[k]) / dt)
            if behind:  # we fell a whole tick behind: skip, and count it
                missed_updates += behind * len(groups[k])
            next_at[k] += (behind + 1) * dt
            if k == 0 and fakes:
                bots.advance(1 + behind)
                if updates % 4 == 0:  # as the harness bots: new controls every 4 updates
                    clock = next((c.clock for _, c in fakes if c.clock is not None), None)
                    tick = int(clock.tick_at(now, 0.0)) if clock else 0
                    rows = np.frombuffer(bots.inputs(tick).tobytes(), np.uint8).reshape(n, -1)
                    for i, c in fakes:
                        c.input = rows[i]
                updates += 1
            for i in groups[k]:
                c = clients[i]
                if c.connected:
                    c.update(now)
                    if counting:
                        sent_inputs += 1
                deadline_i = c.next_deadline()
                if deadline_i is not None and deadline_i <= now:
                    c.handle_timer(now)
                flush(i)
        if not ready_sent and all(_ready(c) for c in clients):
            pipe.send(("ready", None))
            ready_sent = True
    for i, c in enumerate(clients):
        c.session.disconnect(time.perf_counter())
        flush(i)
    for s in socks:
        s.close()
    sel.close()


# -- orchestration --------------------------------------------------------------------------
def run(spec: LoopbackSpec, connect_timeout: float = 30.0) -> dict:
    """Play ``spec`` once: both processes started, ``warmup`` seconds after every client is
    ready, ``seconds`` measured, everything stopped. Returns ``{"server": report,
    "loadgens": [report, ...], "pinned": (server CPU, load CPU)}``."""
    if spec.mode not in MODES:
        raise ValueError(f"unknown mode {spec.mode!r} (available: {', '.join(MODES)})")
    ctx = mp.get_context("spawn")
    server_cpu, client_cpu = cpu_pair()
    s_parent, s_child = ctx.Pipe()
    server = ctx.Process(target=_server_main, args=(s_child, spec, server_cpu), name="server", daemon=True)
    server.start()
    gens = []
    try:
        port = expect(s_parent, server, "port", 30)
        per = math.ceil(spec.clients / spec.loadgens)
        for g in range(spec.loadgens):
            slots = list(range(g * per, min(spec.clients, (g + 1) * per)))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_loadgen_main, args=(child, port, slots, spec, client_cpu), name=f"loadgen{g}", daemon=True)
            proc.start()
            gens.append((proc, parent))
        for proc, pipe in gens:
            expect(pipe, proc, "ready", connect_timeout)
        time.sleep(spec.warmup)
        s_parent.send("start")
        for _, pipe in gens:
            pipe.send("start")
        time.sleep(spec.seconds)
        for _, pipe in gens:
            pipe.send("stop")
        s_parent.send("stop")
        gen_reports = [expect(pipe, proc, "report", 10) for proc, pipe in gens]
        server_report = expect(s_parent, server, "report", 10)
        for _, pipe in gens:
            pipe.send("quit")
        for proc, _ in gens:
            proc.join(5)
        s_parent.send("quit")
        server.join(5)
    finally:
        for proc, _ in gens:
            if proc.is_alive():
                proc.kill()
        if server.is_alive():
            server.kill()
    return {"server": server_report, "loadgens": gen_reports, "pinned": (server_cpu, client_cpu)}


def spec_summary(spec: LoopbackSpec) -> dict:
    """The spec as JSON-friendly fields (the game by its description)."""
    out = {f.name: getattr(spec, f.name) for f in fields(spec)}
    out["game"] = spec.game.describe()
    return out
