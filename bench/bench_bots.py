"""What a state-sync bot costs: CPU per bot per second of play, on virtual time.

``ticksync bots --count 64`` against a state-sync arena saturated its core in earlier soaks.
A real-process run measures that too (``/usr/bin/time -v``), but on a shared machine its
CPU% moves with everything else. This bench runs the same client work on the seeded
simulator instead: the real sans-IO :class:`~netcode.statesync.server.StateSyncServer`
(the arena, 1000 NPCs, all moving: what ``ticksync serve demos.arena`` runs) and N real
:class:`~netcode.statesync.client.StateSyncClient` s driven as ``GameClient`` drives a bot
(``game.bot_inputs`` on its prediction every 4th update, ``update`` every tick, events
drained), with the options :func:`netcode.client.run_bots` gives its bots. Only the
clients' calls are timed (``time.thread_time``): decoding and applying snapshot parts,
prediction and reconciliation, input packets. Sockets and asyncio are left out; they are
the same for every version.

Because it uses only the public client API, it runs against another checkout too, for a
before/after ratio in one sitting::

    python -m bench.bench_bots                      # this checkout
    PYTHONPATH=/tmp/before python bench/bench_bots.py   # another one, from its directory

Run: ``python -m bench.bench_bots [--clients 16] [--seconds 10] [--warmup 2] [--rtt 0.001]``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import sys
import time

import numpy as np

from demos.arena import Arena
from netcode.benchmark.virtual import player_token
from netcode.sim.driver import VirtualNetwork
from netcode.sim.network import LinkConfig, NetSim
from netcode.statesync.client import StateSyncClient
from netcode.statesync.server import StateSyncConfig, StateSyncServer

SECRET = b"bench-bots-secret-0123456789abcdef"
BOT_EVERY = 4  # GameClient's default: bots pick new controls every 4th update


class TimedClient:
    """A client as the simulator's endpoint, with the CPU of every call into it summed."""

    def __init__(self, client: StateSyncClient):
        self.client = client
        self.cpu = 0.0
        self.measuring = False

    def receive_datagram(self, data, addr, now):
        c0 = time.thread_time()
        self.client.receive_datagram(data, addr, now)
        if self.measuring:
            self.cpu += time.thread_time() - c0

    def datagrams_to_send(self):
        return self.client.datagrams_to_send()

    def next_deadline(self):
        return self.client.next_deadline()

    def handle_timer(self, now):
        c0 = time.thread_time()
        self.client.handle_timer(now)
        if self.measuring:
            self.cpu += time.thread_time() - c0


def bot_options() -> dict:
    """What run_bots gives its bots, where this checkout has it."""
    try:
        from netcode.client import BOT_RECONCILE_EVERY
    except ImportError:
        return {}
    if "reconcile_every" in inspect.signature(StateSyncClient).parameters:
        return {"reconcile_every": BOT_RECONCILE_EVERY}
    return {}


def run(clients: int, seconds: float, warmup: float, rtt: float) -> dict:
    game = Arena()
    server = StateSyncServer(game, StateSyncConfig(players=clients, seed=1), secret=SECRET, rng=random.Random(1))
    net = VirtualNetwork(NetSim(1, LinkConfig.from_rtt(rtt)), start=100.0)
    net.add("server", server)
    options = bot_options()
    bots = []
    for i in range(clients):
        c = StateSyncClient(game, server="server", token=player_token(SECRET, i), rng=random.Random(i), **options)
        bots.append(TimedClient(c))
        net.add(f"c{i}", bots[-1])
        c.connect(net.now)
        net.flush(f"c{i}")
    dt = 1.0 / server.tick_rate
    updates = [0]
    slots = [np.array([i]) for i in range(clients)]

    def update_bots(now):
        updates[0] += 1
        pick = updates[0] % BOT_EVERY == 0
        for i, b in enumerate(bots):
            c0 = time.thread_time()
            c = b.client
            if pick and c.predicted is not None and c.slot is not None and c.slot >= 0:
                c.set_input(game.bot_inputs(c.predicted, c.predicted_tick, slots[i])[0])
            c.update(now)
            c.events()
            if b.measuring:
                b.cpu += time.thread_time() - c0

    def tick(now):
        server.on_tick(now)
        server.events()

    net.every(dt, tick)
    net.every(dt, update_bots, start=net.now + dt / 2)
    net.run_for(warmup)
    if server.stats()["players"] != clients:
        raise RuntimeError(f"only {server.stats()['players']} of {clients} bots connected in the warm-up")
    start = [(b.client.predicted_tick, dict(b.client.counters)) for b in bots]
    for b in bots:
        b.measuring = True
    wall = time.perf_counter()
    net.run_for(seconds)
    wall = time.perf_counter() - wall
    cpu = sum(b.cpu for b in bots)
    ticks = sum(b.client.predicted_tick - t0 for b, (t0, _) in zip(bots, start))
    stepped = sum(b.client.counters["predicted_ticks"] - c0["predicted_ticks"] for b, (_, c0) in zip(bots, start))
    parts = sum(b.client.counters["parts"] - c0["parts"] for b, (_, c0) in zip(bots, start))
    return {
        "clients": clients,
        "cpu_ms_per_bot_s": cpu / clients / seconds * 1e3,
        "bots_per_core": 1.0 / (cpu / clients / seconds) if cpu else float("inf"),
        "steps_per_tick": stepped / max(ticks, 1),
        "parts_per_bot_s": parts / clients / seconds,
        "options": options,
        "wall": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0, help="virtual seconds measured")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rtt", type=float, default=0.001, help="round trip of every bot's link, seconds")
    args = ap.parse_args(argv)
    import netcode

    print("$ python -m bench.bench_bots " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(f"netcode from {os.path.dirname(netcode.__file__)}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    r = run(args.clients, args.seconds, args.warmup, args.rtt)
    print(
        f"{r['clients']} bots, RTT {args.rtt * 1e3:g} ms, options {r['options'] or 'none'}: "
        f"{r['cpu_ms_per_bot_s']:.1f} ms CPU per bot per second ({r['bots_per_core']:.0f} bots per core, sockets and asyncio aside); "
        f"{r['steps_per_tick']:.2f} game steps per tick of progress; {r['parts_per_bot_s']:.1f} snapshot parts per bot per second; "
        f"wall {r['wall']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
