"""The Colyseus comparison, over real UDP on loopback: server CPU and bytes per client.

The peer to beat (issue text): 1000 entities that all move every tick, 60 Hz simulation,
30 Hz state, every client sending an input at 60 Hz, 100 clients over loopback; Colyseus
0.16 (Node 20) on this 2-core machine kind used about 14% of one core for its server and
sent 3.3 Mbit/s to each client. Target: no more server CPU than that, with at most a
quarter of the bytes (0.825 Mbit/s per client).

Scenario ``colyseus`` (the default and only one; the knobs are flags so it can be rerun
with other numbers):

* server process: the real :class:`~netcode.statesync.server.StateSyncServer` on
  :func:`~netcode.transport.udp.open_udp_server` (127.0.0.1, default transport limits) and
  a 60 Hz :class:`~engine.loop.TickLoop` on :class:`~engine.loop.RealClock` (whose sleeps are
  padded so uvloop's early timers do not spin) on uvloop (:func:`~engine.loop.run_async`);
  each tick runs ``server.on_tick(loop.time())`` and then flushes the transport (one
  ``sendto`` per datagram). Game: ``statesync_virtual.BenchArena`` (the arena demo with
  ``max_players`` raised to 256; 100 players do not fit the demo's 64) with **1000 NPCs all
  moving plus the 100 players' own entities** (1100 entities: a superset of the workload,
  so every figure here is if anything against us; ``--npcs 900`` gives exactly 1000).
* load-generator process: 100 ``statesync_virtual.FakeClient`` s (a real ``SessionClient``
  each: real handshakes, sequence numbers, acks; complete snapshots are acked; inputs are
  stamped with the real client's timing helpers and sent every 1/60 s) on their own UDP
  sockets connected to the server, driven by one ``selectors`` loop (no asyncio: cheaper per
  packet). Clients update in 4 phase groups a quarter tick apart, as independent players
  would, instead of 100 packets in one burst. Bot controls are ``game.bot_inputs`` over a
  dead-reckoned copy of the players' positions (stick velocity, clamped to the world), so
  the bots steer away from walls like the server's bots without the load generator
  simulating the game.
* both processes are pinned to different CPUs when ``os.sched_setaffinity`` works; this
  (parent) process only orchestrates and sleeps.

Measured over ``--seconds`` after a ``--warmup`` (clients connected): the server process's
CPU time (``resource.getrusage`` of that process: user + system, so the kernel's UDP work
for its sockets counts) as % of one core; its tick p50/p99 from ``TickLoop.stats`` (the
tick's work including the flush's ``sendto`` calls); bytes per second received per client
from the load generator's counters (with and without 28 bytes of UDP/IPv4 headers per
datagram); input packets per second the clients sent (intended: 100 x 60 = 6000/s) and the
server received. Everything stays on 127.0.0.1 and every wait is bounded.

Run: ``python -m bench.bench_statesync_loopback [colyseus] [--seconds 20] [--warmup 5] [--clients 100]
[--npcs 1000] [--moving 1.0] [--loadgens 1] [--read tick|event] [--general-path] [--repeat 1] [--breakdown]
[--profile]`` (about 30 s a run).
``--profile`` runs cProfile inside the server process during the measurement (it slows the
server, so its CPU figure is then not comparable) and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import math
import multiprocessing as mp
import os
import pstats
import random
import resource
import selectors
import socket
import sys
import time
import types

import numpy as np

from netcode.benchmark.statesync_virtual import SECRET, BenchArena, FakeClient, token
from demos.arena.game import _STICK, WORLD
from engine.loop import RealClock, TickLoop, TickStats, run_async
from netcode import compiled
from netcode.statesync.server import StateSyncServer, StateSyncConfig
from netcode.transport.udp import open_udp_server
from netcode.session.wire import UDP_IP_OVERHEAD

COLYSEUS_CPU_PCT = 14.0  # % of one core, Colyseus 0.16 on Node 20, same workload and machine kind
COLYSEUS_MBPS = 3.3  # Mbit/s sent to each client
TARGET_MBPS = COLYSEUS_MBPS / 4
HOST = "127.0.0.1"  # loopback only
PHASES = 4  # client update groups per tick


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def _cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_split() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


# -- the server process -------------------------------------------------------------------
def _server_main(pipe, args: dict, cpu: int | None) -> None:
    _pin(cpu)
    run_async(_serve(pipe, args))


async def _serve(pipe, args: dict) -> None:
    loop = asyncio.get_running_loop()
    game = BenchArena(npcs=args["npcs"], moving=args["moving"])
    server = StateSyncServer(
        game,
        StateSyncConfig(players=args["clients"], seed=1, snapshot_rate=30),
        secret=SECRET,
        wall_offset=time.time() - loop.time(),
        rng=random.Random(1),
    )
    # Where the CPU goes: wall time in the tick's poll (socket reads and the input datagrams),
    # in the sans-IO tick and in the tick's flush (the sendto calls); the rest of the
    # process's CPU is the event loop and the kernel. With --breakdown the endpoint's share
    # of the poll and parts of the tick are timed too, through wrappers called instead of
    # the methods (per batch when the socket is polled; per datagram with --read event,
    # where the wrapper itself costs the server CPU).
    spent = {"on_tick": 0.0, "flush": 0.0, "receive": 0.0, "poll": 0.0, "step": 0.0, "snapshot": 0.0, "encode": 0.0, "quantize": 0.0}
    clock = time.perf_counter
    if args["breakdown"]:
        def timed(owner, name, key):  # one clock pair per call: per tick, cheap
            plain = getattr(owner, name)

            def wrapper(*a, **kw):
                t0 = clock()
                out = plain(*a, **kw)
                spent[key] += clock() - t0
                return out

            setattr(owner, name, wrapper)

        import netcode.statesync.server as ss_mod

        timed(game, "step", "step")
        timed(server, "_snapshot", "snapshot")
        timed(ss_mod, "encode_snapshot", "encode")  # statesync looks it up as a module global
        timed(server.schema, "quantize", "quantize")
        # Per datagram (--read event: receive_datagram calls it) or per poll's batch (tick).
        timed(server, "receive_many", "receive")
    if args["general_path"]:  # the compiled paths off: for before/after figures in one sitting
        server.fast_receive = None
    transport = await open_udp_server(server, HOST, 0, socket_buffer=4 << 20, polled=args["read"] == "tick")
    if args["general_path"] and hasattr(transport, "batched"):
        transport.batched = False
    poll = getattr(transport, "poll", None)
    prof = cProfile.Profile() if args["profile"] else None

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
            cmd = await asyncio.wait_for(commands.get(), timeout=args["warmup"] + args["seconds"] + 60)
            if cmd == "start":
                ticker.stats = TickStats(window=8192)
                spent.update(dict.fromkeys(spent, 0.0))
                mark = (time.perf_counter(), _cpu_split(), server.tick, dict(server.stats_counters),
                        transport.received, transport.sent, transport.bytes_sent)
                if prof:
                    prof.enable()
            elif cmd == "stop":
                if prof:
                    prof.disable()
                wall = time.perf_counter() - mark[0]
                user, system = (b - a for a, b in zip(mark[1], _cpu_split()))
                cpu = user + system
                sc = {k: server.stats_counters[k] - mark[3][k] for k in mark[3]}
                stats = ticker.stats
                p50, p99, pmax = (x * 1e3 for x in stats.duration_percentiles(50, 99, 100))
                report = {
                    "wall": wall,
                    "cpu": cpu,
                    "cpu_user": user,
                    "cpu_sys": system,
                    "ticks": server.tick - mark[2],
                    "tick_p50_ms": p50,
                    "tick_p99_ms": p99,
                    "tick_max_ms": pmax,
                    "late_ticks": stats.late,
                    "dropped_ticks": stats.dropped,
                    "encodes_per_snapshot": sc["encodes"] / max(sc["snapshots"], 1),
                    "missing_inputs": sc["missing_inputs"],
                    "spent": dict(spent),
                    "received": transport.received - mark[4],
                    "sent": transport.sent - mark[5],
                    "bytes_sent": transport.bytes_sent - mark[6],
                    "transport_dropped": dict(transport.dropped),
                    "players": int(server.present.sum()),
                    "entities": int(server.schema.capacity),
                }
                if prof:
                    parts = []
                    for key, count in (("tottime", 25), ("cumulative", 30)):
                        out = io.StringIO()
                        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(count)
                        parts.append(f"top by {key}:\n" + out.getvalue().split("\n\n", 1)[-1].rstrip())
                    report["profile"] = "\n\n".join(parts)
                pipe.send(("report", report))
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


# -- the load-generator process -----------------------------------------------------------
def _loadgen_main(pipe, server_port: int, slots: list[int], args: dict, cpu: int | None) -> None:
    _pin(cpu)
    try:
        _loadgen(pipe, (HOST, server_port), slots, args)
    except Exception as exc:  # report, so the parent prints why instead of timing out
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


def _loadgen(pipe, server: tuple[str, int], slots: list[int], args: dict) -> None:
    game = BenchArena(npcs=args["npcs"], moving=args["moving"])
    sel = selectors.DefaultSelector()
    clients: list[FakeClient] = []
    socks: list[socket.socket] = []
    for slot in slots:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.connect(server)
        sock.setblocking(False)
        client = FakeClient(game, slot, token(slot, time.time() + 3600), server=server, rng=random.Random(slot))
        clients.append(client)
        socks.append(sock)
        sel.register(sock, selectors.EVENT_READ, len(clients) - 1)
    sel.register(pipe.fileno(), selectors.EVENT_READ, -1)
    sends = [s.send for s in socks]
    recvs = [s.recv for s in socks]
    n = len(clients)
    down = np.zeros((n, 2), np.int64)  # datagrams, payload bytes
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

    t0 = time.perf_counter()
    for i, c in enumerate(clients):
        c.session.connect(t0)
        flush(i)
    # Players' positions, dead-reckoned from their inputs (see the module docstring).
    pos = game.create(1, args["clients"]).pos[slots].astype(np.int64)
    bots = types.SimpleNamespace(pos=pos)
    vel = np.zeros_like(pos)
    local = np.arange(n)
    dt = 1.0 / game.tick_rate
    next_at = [t0 + k * dt / PHASES for k in range(PHASES)]
    groups = [list(range(k, n, PHASES)) for k in range(PHASES)]
    updates = 0
    missed_updates = 0
    ready_sent = False
    deadline = t0 + args["warmup"] + args["seconds"] + 60  # hard bound on this process
    window = [0.0, 0.0]
    cpu0 = 0.0
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
                    window[0] = time.perf_counter()
                    cpu0 = _cpu_seconds()
                elif cmd == "stop":
                    counting = False
                    window[1] = time.perf_counter()
                    pipe.send(("report", {
                        "wall": window[1] - window[0],
                        "down_datagrams": down[:, 0].tolist(),
                        "down_bytes": down[:, 1].tolist(),
                        "inputs_sent": sent_inputs,
                        "send_errors": send_errors,
                        "missed_updates": missed_updates,
                        "no_baseline": sum(c.counters["no_baseline"] for c in clients),
                        "complete": sum(c.counters["complete"] for c in clients),
                        "cpu": _cpu_seconds() - cpu0,
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
            if k == 0:
                pos += vel * (1 + behind)  # the ticks the server ran since the last update
                np.clip(pos, 0, WORLD, out=pos)
                if updates % 4 == 0:  # as the harness bots: new controls every 4 updates
                    tick = int(clients[0].clock.tick_at(now, 0.0)) if clients[0].clock else 0
                    raw = game.bot_inputs(bots, tick, local)
                    rows = np.frombuffer(raw.tobytes(), np.uint8).reshape(n, -1)
                    for c, r in zip(clients, rows):
                        c.input = r
                    vel = _STICK[raw["move"].view(np.uint8)].astype(np.int64)
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
        if not ready_sent and all(c.connected and c.acked >= 0 for c in clients):
            pipe.send(("ready", None))
            ready_sent = True
    for i, c in enumerate(clients):
        c.session.disconnect(time.perf_counter())
        flush(i)
    for s in socks:
        s.close()
    sel.close()


# -- orchestration --------------------------------------------------------------------------
def _expect(pipe, proc, what: str, timeout: float):
    end = time.monotonic() + timeout
    while not pipe.poll(0.05):
        if not proc.is_alive():
            raise RuntimeError(f"{proc.name} died (exit code {proc.exitcode}) while waiting for {what!r}")
        if time.monotonic() > end:
            raise TimeoutError(f"{proc.name} did not send {what!r} within {timeout:g} s")
    kind, value = pipe.recv()
    if kind == "error":
        raise RuntimeError(f"{proc.name}: {value}")
    if kind != what:
        raise RuntimeError(f"{proc.name} sent {kind!r}, expected {what!r}")
    return value


def run(args: argparse.Namespace) -> dict:
    ctx = mp.get_context("spawn")
    server_cpu, client_cpu = _cpus()
    cfg = {k: getattr(args, k) for k in ("npcs", "moving", "clients", "seconds", "warmup", "profile", "read", "breakdown", "general_path")}
    s_parent, s_child = ctx.Pipe()
    server = ctx.Process(target=_server_main, args=(s_child, cfg, server_cpu), name="server", daemon=True)
    server.start()
    gens = []
    try:
        port = _expect(s_parent, server, "port", 30)
        per = math.ceil(args.clients / args.loadgens)
        for g in range(args.loadgens):
            slots = list(range(g * per, min(args.clients, (g + 1) * per)))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_loadgen_main, args=(child, port, slots, cfg, client_cpu), name=f"loadgen{g}", daemon=True)
            proc.start()
            gens.append((proc, parent))
        for proc, pipe in gens:
            _expect(pipe, proc, "ready", 30)
        time.sleep(args.warmup)
        s_parent.send("start")
        for _, pipe in gens:
            pipe.send("start")
        time.sleep(args.seconds)
        for _, pipe in gens:
            pipe.send("stop")
        s_parent.send("stop")
        gen_reports = [_expect(pipe, proc, "report", 10) for proc, pipe in gens]
        server_report = _expect(s_parent, server, "report", 10)
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


def report(args: argparse.Namespace, res: dict) -> None:
    s, gens = res["server"], res["loadgens"]
    down_b = np.concatenate([g["down_bytes"] for g in gens]).astype(float)
    down_d = np.concatenate([g["down_datagrams"] for g in gens]).astype(float)
    wall_g = float(np.mean([g["wall"] for g in gens]))
    per_client_bps = (down_b + down_d * UDP_IP_OVERHEAD) * 8 / wall_g
    per_client_payload_bps = down_b * 8 / wall_g
    mbps = float(per_client_bps.mean()) / 1e6
    mbps_payload = float(per_client_payload_bps.mean()) / 1e6
    cpu_pct = 100 * s["cpu"] / s["wall"]
    inputs_sent = sum(g["inputs_sent"] for g in gens) / wall_g
    inputs_recv = s["received"] / s["wall"]
    server_cpu, client_cpu = res["pinned"]
    pinned = f"server on CPU {server_cpu}, load generator on CPU {client_cpu}" if server_cpu is not None else "not pinned"
    print(f"{args.scenario} scenario over UDP on {HOST}: {s['players']} clients, {s['entities']} entities "
          f"({args.npcs} NPCs, {args.moving:.0%} moving, + {args.clients} players), 60 Hz, 30 Hz snapshots, "
          f"inputs at 60 Hz; server socket read per {args.read}; "
          f"{'general path only' if args.general_path else 'compiled paths: ' + compiled.status}; {args.seconds:g} s measured after {args.warmup:g} s; {pinned}; "
          f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print()
    head = f"{'':<34} {'ticksync':>12} {'Colyseus 0.16':>14} {'target':>12} {'met':>4}"
    print(head)
    print("-" * len(head))
    print(f"{'server CPU, % of one core':<34} {cpu_pct:>12.1f} {COLYSEUS_CPU_PCT:>14.1f} {'<= 14.0':>12} "
          f"{'yes' if cpu_pct <= COLYSEUS_CPU_PCT else 'NO':>4}")
    print(f"{'  of which user / system':<34} {100 * s['cpu_user'] / s['wall']:>6.1f} /{100 * s['cpu_sys'] / s['wall']:>5.1f}")
    sp = {k: 100 * v / s["wall"] for k, v in s["spent"].items()}
    sp["poll"] -= sp["receive"] if args.read == "tick" else 0.0  # the poll delivers the datagrams
    step, snapshot, encode, quantize = (sp.pop(k) for k in ("step", "snapshot", "encode", "quantize"))  # parts of on_tick
    rest = cpu_pct - sum(sp.values())
    print(f"{'  of which sans-IO on_tick':<34} {sp['on_tick']:>6.1f}")
    if args.breakdown:
        print(f"{'    of which game step':<34} {step:>6.1f}")
        print(f"{'    of which snapshots':<34} {snapshot:>6.1f}")
        print(f"{'      of which quantize':<34} {quantize:>6.1f}")
        print(f"{'      of which encode':<34} {encode:>6.1f}")
    if args.breakdown:
        print(f"{'  of which sans-IO input datagrams':<34} {sp['receive']:>6.1f}")
    if args.read == "tick":
        label = "  of which socket reads (poll)" if args.breakdown else "  of which poll: reads + inputs"
        print(f"{label:<34} {sp['poll']:>6.1f}")
    print(f"{'  of which flush (sendto)':<34} {sp['flush']:>6.1f}")
    print(f"{'  of which the rest (loop, kernel)':<34} {rest:>6.1f}")
    print(f"{'down Mbit/s per client (UDP/IP)':<34} {mbps:>12.3f} {COLYSEUS_MBPS:>14.2f} {f'<= {TARGET_MBPS:.3f}':>12} "
          f"{'yes' if mbps <= TARGET_MBPS else 'NO':>4}")
    print(f"{'down Mbit/s per client (payload)':<34} {mbps_payload:>12.3f} {'':>14} {'':>12} {'':>4}")
    print(f"{'bytes ratio to Colyseus':<34} {mbps / COLYSEUS_MBPS:>12.3f} {1.0:>14.2f} {'<= 0.25':>12} "
          f"{'yes' if mbps / COLYSEUS_MBPS <= 0.25 else 'NO':>4}")
    print()
    print(f"server: tick p50 {s['tick_p50_ms']:.2f} ms, p99 {s['tick_p99_ms']:.2f} ms, max {s['tick_max_ms']:.2f} ms "
          f"(TickLoop.stats: on_tick + flush); {s['ticks']} ticks in {s['wall']:.1f} s; late {s['late_ticks']}, "
          f"dropped {s['dropped_ticks']}; encodes/snapshot {s['encodes_per_snapshot']:.2f}; "
          f"datagrams sent {s['sent'] / s['wall']:.0f}/s ({s['bytes_sent'] / s['wall'] * 8 / 1e6:.1f} Mbit/s payload in total); "
          f"missing inputs {s['missing_inputs'] / max(s['ticks'], 1):.2f} per tick; transport drops {s['transport_dropped'] or 0}")
    print(f"clients: input packets sent {inputs_sent:.0f}/s (intended {args.clients * 60}/s), received by the server "
          f"{inputs_recv:.0f}/s; updates missed by the load generator {sum(g['missed_updates'] for g in gens)}; "
          f"snapshot datagrams {down_d.mean() / wall_g:.1f}/s per client (min {down_d.min() / wall_g:.1f}, max {down_d.max() / wall_g:.1f}); "
          f"down per client min {per_client_bps.min() / 1e6:.3f} max {per_client_bps.max() / 1e6:.3f} Mbit/s; "
          f"no-baseline parts {sum(g['no_baseline'] for g in gens)}; send errors {sum(g['send_errors'] for g in gens)}; "
          f"load generator CPU {100 * sum(g['cpu'] for g in gens) / wall_g:.0f}% of a core")
    if "profile" in s:
        print()
        print("cProfile inside the server process during the measurement (CPU figure above is inflated by it):")
        print(s["profile"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="colyseus", choices=("colyseus",), help="named workload (default colyseus)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after all clients connected (default 5)")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--npcs", type=int, default=1000)
    ap.add_argument("--moving", type=float, default=1.0)
    ap.add_argument("--loadgens", type=int, default=1,
                    help="load-generator processes (default 1; they share the client CPU, so this helps only with more cores)")
    ap.add_argument("--read", choices=("tick", "event"), default="tick",
                    help="server socket read once per tick (polled, as TickServer does; default) or per datagram")
    ap.add_argument("--repeat", type=int, default=1, help="runs; the table shows the median one (default 1)")
    ap.add_argument("--general-path", action="store_true",
                    help="switch the compiled fast paths off (netcode/statesync/fastpath.py, recvmmsg/sendmmsg): the 'before'")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time each input datagram (costs the server about half a point of CPU itself)")
    ap.add_argument("--profile", action="store_true", help="cProfile the server process during the measurement")
    args = ap.parse_args(argv)
    if not (0 < args.seconds <= 120 and 0 <= args.warmup <= 60 and 1 <= args.clients <= 256 and 1 <= args.loadgens <= 8
            and 1 <= args.repeat <= 20):
        ap.error("seconds in (0, 120], warmup in [0, 60], clients 1..256, loadgens 1..8, repeat 1..20")
    print("$ python -m bench.bench_statesync_loopback " + " ".join(argv if argv is not None else sys.argv[1:]), flush=True)
    results = [run(args) for _ in range(args.repeat)]
    # The median run's table (a shared VM's neighbours move single runs by a point or two).
    cpu = [100 * r["server"]["cpu"] / r["server"]["wall"] for r in results]
    order = sorted(range(len(results)), key=cpu.__getitem__)
    report(args, results[order[len(order) // 2]])
    if len(results) > 1:
        print(f"\nserver CPU over {len(results)} runs, % of one core: " + ", ".join(f"{c:.1f}" for c in cpu)
              + f"; median {sorted(cpu)[len(cpu) // 2]:.1f}, min {min(cpu):.1f}, max {max(cpu):.1f} (the table is the median run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
