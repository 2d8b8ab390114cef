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
  (parent) process only orchestrates and sleeps. The processes are :mod:`.loopback`'s (the
  same ones ``ticksync bench`` runs for each cell); this module is the workload and its report.

Measured over ``--seconds`` after a ``--warmup`` (clients connected): the server process's
CPU time (``resource.getrusage`` of that process: user + system, so the kernel's UDP work
for its sockets counts) as % of one core; its tick p50/p99 from ``TickLoop.stats`` (the
tick's work including the flush's ``sendto`` calls); bytes per second received per client
from the load generator's counters (with and without 28 bytes of UDP/IPv4 headers per
datagram); input packets per second the clients sent (intended: 100 x 60 = 6000/s) and the
server received. Everything stays on 127.0.0.1 and every wait is bounded.

Run: ``python -m bench.bench_statesync_loopback [colyseus] [--seconds 20] [--warmup 5] [--clients 100]
[--npcs 1000] [--moving 1.0] [--loadgens 1] [--read tick|event] [--general-path] [--repeat 1] [--breakdown]
[--profile] [--plaintext]`` (about 30 s a run).
``--profile`` runs cProfile inside the server process during the measurement (it slows the
server, so its CPU figure is then not comparable) and prints the top functions.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from netcode import compiled
from netcode.benchmark import loopback
from netcode.benchmark.loopback import HOST, LoopbackSpec
from netcode.benchmark.statesync_virtual import BenchArena
from netcode.session.wire import UDP_IP_OVERHEAD

COLYSEUS_CPU_PCT = 14.0  # % of one core, Colyseus 0.16 on Node 20, same workload and machine kind
COLYSEUS_MBPS = 3.3  # Mbit/s sent to each client
TARGET_MBPS = COLYSEUS_MBPS / 4


def run(args: argparse.Namespace) -> dict:
    """One run of the workload over real UDP (see :mod:`.loopback`)."""
    spec = LoopbackSpec(
        game=BenchArena(npcs=args.npcs, moving=args.moving),
        mode="statesync",
        clients=args.clients,
        snapshot_rate=30,
        seconds=args.seconds,
        warmup=args.warmup,
        loadgens=args.loadgens,
        read=args.read,
        general_path=args.general_path,
        breakdown=args.breakdown,
        profile=args.profile,
        plaintext=args.plaintext,
    )
    return loopback.run(spec)


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
          f"inputs at 60 Hz; sessions {'in plaintext' if args.plaintext else 'sealed (AES-GCM)'}; server socket read per {args.read}; "
          f"{'one datagram per system call' if args.general_path else 'recvmmsg/sendmmsg'}; receive loop: {compiled.status}; {args.seconds:g} s measured after {args.warmup:g} s; {pinned}; "
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
                    help="read and send one datagram per system call (recvmmsg/sendmmsg off); for the interpreted "
                         "protocol modules run with TICKSYNC_PURE=1")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time each input datagram (costs the server about half a point of CPU itself)")
    ap.add_argument("--profile", action="store_true", help="cProfile the server process during the measurement")
    ap.add_argument("--plaintext", action="store_true",
                    help="sessions unsealed (insecure_plaintext_loopback), as before sessions were sealed and as "
                         "Colyseus over ws://; default: sealed with AES-GCM")
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
