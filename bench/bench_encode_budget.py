"""``python -m bench.bench_encode_budget``: what the state-sync encode budget saves when
clients' acks scatter.

The arena with N predicting clients on the seeded simulator (no sockets, so no contention
with other processes), one-way latency 40 ms and jitter from 10 to 100 ms, with the budget
off (one encoding per distinct baseline the clients need), at the default with all of a
snapshot's encodings on its own tick ("6 1t") and at the default spread over that tick and
the next ("6", ``spread_encodes``). Per cell: encodings per snapshot (mean, max), the CPU
of a server tick, every tick counted (thread time: inputs, step, quantize, choose
baselines, encode, send; p50, p99), client-snapshots deferred, the age of the clients'
newest acks in ticks (p95 over every client at every tick: what a player sees, where the
share deferred also counts the clients the pacing no longer holds back), and snapshot
bytes per client per second. ``--carry``: the arena's snapshots entropy-coded with carried coder
models (``Replication(carry=True)``), where clients share an encoding only when they hold
the model it starts from; ``--loss``: the links' packet loss (under loss carried models
part ways, so fewer clients share). Usage: ``python -m bench.bench_encode_budget
[--clients 64] [--seconds 8] [--jitter 0.01 0.05 0.1] [--budget 6] [--carry] [--loss 0.2]``.
"""

from __future__ import annotations

import argparse
import dataclasses
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


class CarryArena(Arena):
    """The arena with entropy-coded snapshots whose coders start where their baselines'
    ended (``--carry``)."""

    replication = dataclasses.replace(Arena.replication, coding="entropy", groups=(("pos", "aim"),), carry=True)


def add_players(net: VirtualNetwork, game, clients: int, seed: int, secret: bytes = SECRET) -> list[StateSyncClient]:
    """``clients`` real state-sync clients on ``net`` (``c0``.. in slots 0..), with tokens of
    ``secret``'s, each connecting as it is added."""
    players = []
    for slot in range(clients):
        key = hashlib.sha512(repr((slot, seed)).encode()).digest()
        tok = mint_token(secret, "default", expires=1e9, slot=slot, user=f"c{slot}", nonce=key[:12], keys=key)
        client = StateSyncClient(game, server="server", token=tok, rng=random.Random(slot))
        players.append(client)
        net.add(f"c{slot}", client)
        client.connect(net.now)
    return players


def drive(net: VirtualNetwork, game, on_tick, players: list[StateSyncClient], dt: float) -> None:
    """Every ``dt``: the server's ``on_tick``, and half a tick later each player's update, with
    the game's bot inputs every fourth."""
    updates = [0]

    def update_all(now):
        updates[0] += 1
        for c in players:
            if c.predicted is not None and updates[0] % 4 == 0:
                c.set_input(game.bot_inputs(c.predicted, c.predicted_tick, np.array([c.slot]))[0])
            c.update(now)

    net.every(dt, on_tick)
    net.every(dt, update_all, start=net.now + dt / 2)


def run_cell(
    clients: int, jitter: float, budget: int | None, seconds: float, warmup: float, seed: int = 1, spread: bool = True, carry: bool = False, loss: float = 0.0
) -> dict:
    game = CarryArena() if carry else Arena()
    net = VirtualNetwork(NetSim(seed, LinkConfig(latency=0.04, jitter=jitter, loss=loss)), start=100.0)
    server = StateSyncServer(game, StateSyncConfig(players=clients, seed=1, encode_budget=budget, spread_encodes=spread), secret=SECRET, rng=random.Random(seed))
    net.add("server", server)
    players = add_players(net, game, clients, seed)
    dt = 1 / server.tick_rate
    samples: list[tuple[int, int, float]] = []  # (tick, encodings, CPU seconds) per tick
    ages: list[int] = []  # every joined client's newest ack's age at every tick, in ticks
    on_tick = server.on_tick
    measuring = [False]

    def timed(now):
        before, t0 = server.stats_counters["encodes"], time.thread_time()
        on_tick(now)
        if measuring[0]:
            samples.append((server.tick, server.stats_counters["encodes"] - before, time.thread_time() - t0))
            ages.extend(server.tick - c.acked for c in players if c.acked >= 0)

    drive(net, game, timed, players, dt)
    net.run_for(warmup)
    start = dict(server.stats_counters)
    bytes0 = sum(p.counters["snapshot_bytes"] for p in server.peers.values())
    measuring[0] = True
    net.run_for(seconds)
    per_snapshot: dict[int, int] = {}  # a snapshot's encodings: on its tick and the next (spread)
    for tick, n, _ in samples:
        per_snapshot[tick // server.snapshot_every] = per_snapshot.get(tick // server.snapshot_every, 0) + n
    encodes = np.array(list(per_snapshot.values()))
    cpu_ms = np.array([c for _, _, c in samples]) * 1e3
    snaps = server.stats_counters["snapshots"] - start["snapshots"]
    sent = sum(p.counters["snapshot_bytes"] for p in server.peers.values()) - bytes0
    return {
        "jitter_ms": round(jitter * 1e3),
        "budget": "off" if budget is None else f"{budget}{'' if spread else ' 1t'}",
        "encodes_mean": float(encodes.mean()),
        "encodes_max": int(encodes.max()),
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
        "deferred_pct": 100.0 * (server.stats_counters["deferred"] - start["deferred"]) / max(1, snaps * clients),
        "ack_age_p95": float(np.percentile(ages, 95)) if ages else float("nan"),
        "bytes_per_client_s": sent / clients / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--jitter", type=float, nargs="+", default=[0.01, 0.05, 0.1], help="seconds")
    ap.add_argument("--budget", type=int, default=StateSyncConfig(players=1).encode_budget)
    ap.add_argument("--carry", action="store_true", help="entropy-coded snapshots with carried coder models")
    ap.add_argument("--loss", type=float, default=0.0, help="packet loss of every link (0-1)")
    ap.add_argument("--seeds", type=int, default=1,
                    help="rooms per cell (seeds 1..N), figures averaged (enc max: the largest): under loss one room's "
                         "deferrals swing by half with the order its clients' packets happen to take")
    args = ap.parse_args(argv)
    what = "arena, entropy-coded with carried models" if args.carry else "arena"
    seeds = f", seeds 1-{args.seeds} averaged" if args.seeds > 1 else ""
    print(f"{what}, {args.clients} clients, 40 ms one-way + jitter, {args.loss:.0%} loss, {args.seconds:g} s measured{seeds}")
    print(f"{'jitter':>7} {'budget':>7} {'enc/snap':>9} {'enc max':>8} {'cpu p50':>8} {'cpu p99':>8} {'deferred':>9} {'age p95':>8} {'B/client/s':>11}")
    for jitter in args.jitter:
        for budget, spread in ((None, True), (args.budget, False), (args.budget, True)):
            runs = [run_cell(args.clients, jitter, budget, args.seconds, args.warmup, seed=seed, spread=spread, carry=args.carry, loss=args.loss)
                    for seed in range(1, args.seeds + 1)]
            r = dict(runs[0], encodes_max=max(run["encodes_max"] for run in runs))
            for k in ("encodes_mean", "cpu_p50_ms", "cpu_p99_ms", "deferred_pct", "ack_age_p95", "bytes_per_client_s"):
                r[k] = float(np.mean([run[k] for run in runs]))
            print(
                f"{r['jitter_ms']:>5}ms {r['budget']!s:>7} {r['encodes_mean']:>9.1f} {r['encodes_max']:>8} "
                f"{r['cpu_p50_ms']:>6.2f}ms {r['cpu_p99_ms']:>6.2f}ms {r['deferred_pct']:>8.1f}% {r['ack_age_p95']:>8.0f} {r['bytes_per_client_s']:>11.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
