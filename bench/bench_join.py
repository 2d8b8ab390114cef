"""How long a player joining a state-sync room waits, at 0/10/20% loss.

A joining client first completes the session handshake (four legs, any of which may be
lost), then needs one whole full snapshot: a 1,000-entity arena's is five or six parts, and
at 20% loss all arrive only a third of the time. This bench joins ``--clients`` real
:class:`~netcode.statesync.client.StateSyncClient` s at once to the real sans-IO server
(the arena, ``--npcs`` NPCs) on the seeded simulator, virtual time, ``--latency`` one way
and ``--loss`` each way, over seeds 1..``--seeds``, and prints per loss rate:

* **connected**: seconds from ``connect()`` until the handshake is done (percentiles over
  every client of every seed);
* **joined**: until the client holds its first whole snapshot;
* **B/client**: snapshot bytes the server sent a client in the first ``--seconds``;
* **dropped**: snapshot parts per client the client could not apply (sent against a
  baseline it did not hold whole: wasted);
* **resends**: full snapshots' lost parts sent again, per client.

The room is :mod:`bench.bench_encode_budget`'s (real clients, the arena's bots).

Run: ``python -m bench.bench_join [--loss 0,0.1,0.2] [--seeds 10] [--clients 16]
[--npcs 1000] [--latency 0.04] [--seconds 4]``. About 10 s per loss rate on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from bench.bench_encode_budget import add_players, drive
from demos.arena import Arena
from netcode.session.client import ClientState
from netcode.sim.driver import VirtualNetwork
from netcode.sim.network import LinkConfig, NetSim
from netcode.statesync.server import StateSyncConfig, StateSyncServer

SECRET = b"bench-join-secret-0123456789abcd"
STEP = 0.01  # seconds of virtual time between looks at the clients


def join(seed: int, clients: int, npcs: int, latency: float, loss: float, seconds: float) -> dict:
    """One room: ``clients`` join at once; when each was connected and joined (None: not
    within ``seconds``), and the server's and clients' counts."""
    game = Arena(npcs=npcs)
    net = VirtualNetwork(NetSim(seed, LinkConfig(latency=latency, loss=loss)), start=100.0)
    server = StateSyncServer(game, StateSyncConfig(players=clients, seed=1), secret=SECRET, rng=random.Random(seed))
    net.add("server", server)
    start = net.now
    players = add_players(net, game, clients, seed, SECRET)
    drive(net, game, server.on_tick, players, 1 / server.tick_rate)
    connected: list[float | None] = [None] * clients
    joined: list[float | None] = [None] * clients
    for _ in range(int(round(seconds / STEP))):
        net.run_for(STEP)
        for i, c in enumerate(players):
            if connected[i] is None and c.session.state is ClientState.CONNECTED:
                connected[i] = net.now - start
            if joined[i] is None and c.counters["snapshots_complete"]:
                joined[i] = net.now - start
    peers = server.peers.values()
    return {
        "connected": connected,
        "joined": joined,
        "bytes": sum(p.counters["snapshot_bytes"] for p in peers),
        "dropped": sum(c.counters["no_baseline"] for c in players),
        "resends": sum(p.counters["full_resends"] for p in peers),
    }


def row(loss: float, seeds: int, clients: int, npcs: int, latency: float, seconds: float) -> dict:
    runs = [join(seed, clients, npcs, latency, loss, seconds) for seed in range(1, seeds + 1)]
    n = seeds * clients

    def times(key: str) -> tuple[np.ndarray, int]:
        got = [t for r in runs for t in r[key] if t is not None]
        return np.array(got), n - len(got)

    conn, conn_missing = times("connected")
    joined, join_missing = times("joined")
    return {
        "loss": loss,
        "connected": conn,
        "joined": joined,
        "never_joined": join_missing,
        "never_connected": conn_missing,
        "bytes_per_client": sum(r["bytes"] for r in runs) / n,
        "dropped_per_client": sum(r["dropped"] for r in runs) / n,
        "resends_per_client": sum(r["resends"] for r in runs) / n,
    }


def _pcts(values: np.ndarray) -> str:
    if not len(values):
        return f"{'-':>6}" * 4
    return "".join(f"{np.percentile(values, q):6.2f}" for q in (50, 90, 99, 100))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss", default="0,0.1,0.2", help="loss rates each way, comma-separated")
    ap.add_argument("--seeds", type=int, default=10, help="rooms per loss rate (seeds 1..N)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--npcs", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.04, help="one way, seconds")
    ap.add_argument("--seconds", type=float, default=4.0, help="virtual seconds each room runs")
    args = ap.parse_args(argv)
    print(f"{args.clients} clients join an arena of {args.npcs} NPCs at once, {args.latency * 1e3:g} ms one way, "
          f"seeds 1-{args.seeds}; seconds from connect() (p50 p90 p99 max over every client)")
    print(f"{'loss':>5} | {'connected':^24} | {'joined':^24} | {'never':>5} {'B/client':>9} {'dropped':>8} {'resends':>8}")
    for loss in (float(x) for x in args.loss.split(",")):
        r = row(loss, args.seeds, args.clients, args.npcs, args.latency, args.seconds)
        print(f"{loss:5.0%} | {_pcts(r['connected'])} | {_pcts(r['joined'])} | {r['never_joined']:5d} "
              f"{r['bytes_per_client']:9.0f} {r['dropped_per_client']:8.1f} {r['resends_per_client']:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
