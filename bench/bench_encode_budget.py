"""``python -m bench.bench_encode_budget``: what the state-sync encode budget saves when
clients' acks scatter.

The arena with N predicting clients on the seeded simulator (no sockets, so no contention
with other processes), one-way latency 40 ms and jitter from 10 to 100 ms, with the budget
off (one encoding per distinct baseline the clients need) and at the default. Per cell:
encodings per snapshot (mean, max), the CPU of a snapshot tick (thread time: quantize,
choose baselines, encode, send; p50, p99), client-snapshots deferred, and snapshot bytes
per client per second. Usage: ``python -m bench.bench_encode_budget [--clients 64]
[--seconds 8] [--jitter 0.01 0.05 0.1] [--budget 6]``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time

import numpy as np

from demos.arena import Arena
from netcode.session.token import mint_token
from netcode.sim.driver import VirtualNetwork
from netcode.sim.network import LinkConfig, NetSim
from netcode.statesync.client import StateSyncClient
from netcode.statesync.server import StateSyncConfig, StateSyncServer

SECRET = b"bench-encode-budget-secret-0123"


def run_cell(clients: int, jitter: float, budget: int | None, seconds: float, warmup: float, seed: int = 1) -> dict:
    game = Arena()
    net = VirtualNetwork(NetSim(seed, LinkConfig(latency=0.04, jitter=jitter)), start=100.0)
    server = StateSyncServer(game, StateSyncConfig(players=clients, seed=1, encode_budget=budget), secret=SECRET, rng=random.Random(seed))
    net.add("server", server)
    players = []
    for slot in range(clients):
        key = hashlib.sha512(repr((slot, seed)).encode()).digest()
        tok = mint_token(SECRET, "default", expires=1e9, slot=slot, user=f"c{slot}", nonce=key[:12], keys=key)
        client = StateSyncClient(game, server="server", token=tok, rng=random.Random(slot))
        players.append(client)
        net.add(f"c{slot}", client)
        client.connect(net.now)
    dt = 1 / server.tick_rate
    samples: list[tuple[int, float]] = []  # (encodings, CPU seconds) per snapshot tick
    snapshot = server._snapshot
    measuring = [False]

    def timed(now):
        before, t0 = server.stats_counters["encodes"], time.thread_time()
        snapshot(now)
        if measuring[0]:
            samples.append((server.stats_counters["encodes"] - before, time.thread_time() - t0))

    server._snapshot = timed
    updates = [0]

    def update_all(now):
        updates[0] += 1
        for c in players:
            if c.predicted is not None and updates[0] % 4 == 0:
                c.set_input(game.bot_inputs(c.predicted, c.predicted_tick, np.array([c.slot]))[0])
            c.update(now)

    net.every(dt, server.on_tick)
    net.every(dt, update_all, start=net.now + dt / 2)
    net.run_for(warmup)
    start = dict(server.stats_counters)
    bytes0 = sum(p.counters["snapshot_bytes"] for p in server.peers.values())
    measuring[0] = True
    net.run_for(seconds)
    encodes = np.array([e for e, _ in samples])
    cpu_ms = np.array([c for _, c in samples]) * 1e3
    snaps = server.stats_counters["snapshots"] - start["snapshots"]
    sent = sum(p.counters["snapshot_bytes"] for p in server.peers.values()) - bytes0
    return {
        "jitter_ms": round(jitter * 1e3),
        "budget": "off" if budget is None else budget,
        "encodes_mean": float(encodes.mean()),
        "encodes_max": int(encodes.max()),
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
        "deferred_pct": 100.0 * (server.stats_counters["deferred"] - start["deferred"]) / max(1, snaps * clients),
        "bytes_per_client_s": sent / clients / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--jitter", type=float, nargs="+", default=[0.01, 0.05, 0.1], help="seconds")
    ap.add_argument("--budget", type=int, default=StateSyncConfig(players=1).encode_budget)
    args = ap.parse_args(argv)
    print(f"arena, {args.clients} clients, 40 ms one-way + jitter, {args.seconds:g} s measured")
    print(f"{'jitter':>7} {'budget':>6} {'enc/snap':>9} {'enc max':>8} {'cpu p50':>8} {'cpu p99':>8} {'deferred':>9} {'B/client/s':>11}")
    for jitter in args.jitter:
        for budget in (None, args.budget):
            r = run_cell(args.clients, jitter, budget, args.seconds, args.warmup)
            print(
                f"{r['jitter_ms']:>5}ms {r['budget']!s:>6} {r['encodes_mean']:>9.1f} {r['encodes_max']:>8} "
                f"{r['cpu_p50_ms']:>6.2f}ms {r['cpu_p99_ms']:>6.2f}ms {r['deferred_pct']:>8.1f}% {r['bytes_per_client_s']:>11.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
