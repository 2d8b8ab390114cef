"""What a state-sync client's stall costs: its acks stop, then come back.

A client's process that stalls (a busy core, a pause) or an outage of its uplink stops its
acks while the server's snapshots still reach it. The server should notice, send it a delta
now and then instead of every snapshot (each one repeats every change since the client's
aging baseline), and, once the acks come back, have it current again at once. Unless the
path loses packets: there acks that stop are most likely lost snapshots, and holding would
starve a client that is fine.

This bench runs the real sans-IO server (the arena, ``--npcs`` NPCs) and ``--clients`` real
:class:`~netcode.statesync.client.StateSyncClient` s on the seeded simulator, virtual time.
After ``--warmup`` seconds, client 0's uplink goes down ``--stalls`` times for ``--stall``
seconds each, ``--gap`` seconds apart, over seeds 1..``--seeds``, on each path of
``--paths``:

* **clean**: 40 ms one way, 5 ms of jitter;
* **jitter50**: 40 ms, 0-50 ms of uniform jitter;
* **jitter100**: 40 ms, half-normal jitter of sigma 100 ms (up to 300 ms: snapshots
  overtake each other several deep);
* **loss20**: 40 ms, 10 ms of jitter, 20% loss each way;
* **loss20jitter50**: 40 ms, 0-50 ms of uniform jitter, 20% loss each way.

Per path: **held** stalls (the server held client 0's deltas at least once; of all), **kB
per stall** sent to it while its acks were down, its lag behind the server's tick (p50 and
max over every 0.1 s of the ``--gap`` after each stall, in ticks at 60 a second), the
server's **rate cuts** of its pacing per stall, and the other clients' lag (p99) meanwhile.
On a lossy path the stalls are meant not to be held.

Run: ``python -m bench.bench_stall [--paths clean,jitter50,jitter100,loss20,loss20jitter50] [--seeds 5]
[--stalls 2] [--stall 0.6] [--gap 1.5] [--clients 4] [--npcs 1000] [--warmup 3]``. About 10 s
per path on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from bench.bench_encode_budget import add_players, drive
from demos.arena import Arena
from netcode.sim.driver import VirtualNetwork
from netcode.sim.network import LinkConfig, NetSim
from netcode.statesync.server import StateSyncConfig, StateSyncServer

SECRET = b"bench-stall-secret-0123456789abc"
STEP = 0.1  # seconds of virtual time between looks at the clients
PATHS = {
    "clean": LinkConfig(latency=0.04, jitter=0.005),
    "jitter50": LinkConfig(latency=0.04, jitter=0.05),
    "jitter100": LinkConfig(latency=0.04, jitter=0.1, jitter_dist="normal"),
    "loss20": LinkConfig(latency=0.04, jitter=0.01, loss=0.2),
    "loss20jitter50": LinkConfig(latency=0.04, jitter=0.05, loss=0.2),
}


def room(seed: int, link: LinkConfig, clients: int, npcs: int, warmup: float, stalls: int, stall: float, gap: float) -> dict:
    """One room on ``link``: client 0's uplink down ``stalls`` times; per stall whether its
    deltas were held, the bytes sent to it meanwhile and the rate cuts, and the lags after."""
    game = Arena(npcs=npcs)
    net = VirtualNetwork(NetSim(seed, link), start=100.0)
    server = StateSyncServer(game, StateSyncConfig(players=clients, seed=1), secret=SECRET, rng=random.Random(seed))
    net.add("server", server)
    players = add_players(net, game, clients, seed, SECRET)
    drive(net, game, server.on_tick, players, 1 / server.tick_rate)
    net.run_for(warmup)

    out = {"held": [], "bytes": [], "cuts": [], "lag": [], "others": []}
    for _ in range(stalls):
        before = dict(server.stats()["peers"][0])
        net.sim.set_down("c0", "server", True, both_ways=False)
        net.run_for(stall)
        net.sim.set_down("c0", "server", False, both_ways=False)
        during = server.stats()["peers"][0]
        out["held"].append(during["held"] > before["held"])
        out["bytes"].append(during["snapshot_bytes"] - before["snapshot_bytes"])
        for _ in range(int(round(gap / STEP))):
            net.run_for(STEP)
            out["lag"].append(server.tick - players[0].acked)
            out["others"] += [server.tick - c.acked for c in players[1:]]
        out["cuts"].append(server.stats()["peers"][0]["rate_cuts"] - before["rate_cuts"])
    return out


def row(path: str, seeds: int, clients: int, npcs: int, warmup: float, stalls: int, stall: float, gap: float) -> dict:
    runs = [room(seed, PATHS[path], clients, npcs, warmup, stalls, stall, gap) for seed in range(1, seeds + 1)]

    def joined(key: str) -> np.ndarray:
        return np.array([v for r in runs for v in r[key]])

    held, lag, others = joined("held"), joined("lag"), joined("others")
    return {
        "path": path,
        "held": int(held.sum()),
        "stalls": len(held),
        "kb_per_stall": joined("bytes").mean() / 1e3,
        "lag_p50": float(np.percentile(lag, 50)),
        "lag_max": int(lag.max()),
        "cuts_per_stall": joined("cuts").mean(),
        "others_p99": float(np.percentile(others, 99)) if len(others) else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated, of " + ", ".join(PATHS))
    ap.add_argument("--seeds", type=int, default=5, help="rooms per path (seeds 1..N)")
    ap.add_argument("--stalls", type=int, default=2, help="stalls per room")
    ap.add_argument("--stall", type=float, default=0.6, help="seconds client 0's uplink is down each time")
    ap.add_argument("--gap", type=float, default=1.5, help="seconds between stalls (the lag after one is measured over it)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--npcs", type=int, default=1000)
    ap.add_argument("--warmup", type=float, default=3.0, help="virtual seconds before the first stall")
    args = ap.parse_args(argv)
    paths = args.paths.split(",")
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        ap.error(f"unknown path {unknown[0]!r}: choose from {', '.join(PATHS)}")
    print(f"client 0 of {args.clients} in an arena of {args.npcs} NPCs: its uplink down {args.stalls}x {args.stall:g} s, "
          f"{args.gap:g} s apart, seeds 1-{args.seeds}; lag in ticks (60/s) over the {args.gap:g} s after each")
    print(f"{'path':>14} | {'held':>7} {'kB/stall':>8} | {'lag p50':>7} {'max':>4} | {'cuts/stall':>10} | {'others p99':>10}")
    for path in paths:
        r = row(path, args.seeds, args.clients, args.npcs, args.warmup, args.stalls, args.stall, args.gap)
        print(f"{path:>14} | {r['held']:>3}/{r['stalls']:<3} {r['kb_per_stall']:8.1f} | {r['lag_p50']:7.0f} {r['lag_max']:4d} | "
              f"{r['cuts_per_stall']:10.1f} | {r['others_p99']:10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
