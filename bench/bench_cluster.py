"""``python -m bench.bench_cluster``: what the Redis cluster costs a join.

Starts ``ticksync serve demos.pong --mode lockstep --workers 2`` (two nodes and a redis-server of their
own) with one-seat rooms ticking at 10 Hz (light: the bench is about joins), then, all through the first node's HTTP API, one request at a
time:

* rooms created per second: fresh users, so every join makes a room, placed by load on
  either node (half of them are asked of the other node over HTTP);
* join latency, p50/p99: a user asking again for the seat it holds, on this node (one
  Redis read) and on the other node (one Redis read and one HTTP hop).

``--capacity``: the most rooms and players 2 workers hold at 60 Hz. Two workers serve
``demos.arena`` in state sync at 60 Hz with ``--players`` seats a room; the bench steps the
number of full rooms up (bots from matchmaking, placed by load on either worker), holds
each step ``--step-s`` seconds, then reads every room's loop stats from its own worker. A
step passes when the worst room's p99 tick time is inside the tick (16.7 ms) and the rooms
ran at 60 Hz: at most 1% of their ticks in the step dropped (the loop skips ticks it is
too late for). The worst p99 lateness is shown beside them. The bots play in this process, on the same cores
as the workers: the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from demos.cluster import start_workers


def start(tmp: Path, rooms: int) -> tuple[subprocess.Popen, list[str]]:
    config = tmp / "bench.toml"
    config.write_text(f"[matchmaking]\nplayers = 1\nmax_rooms = {rooms}\nempty_timeout = 600\npending_s = 600\n")
    serve = ["demos.pong", "--mode", "lockstep", "--config", str(config), "--tick-rate", "10"]
    return start_workers(tmp / "workers.log", serve)


async def join(http, url: str, user: str) -> dict:
    async with http.post(url + "api/matchmake", json={"game": "pong", "user": user}) as r:
        answer = await r.json()
        if r.status != 200:
            raise SystemExit(f"join refused: {r.status} {answer}")
        return answer


async def measure(dashboards: list[str], rooms: int, repeats: int) -> None:
    here = dashboards[0]
    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        tickets = [await join(http, here, f"u{i}") for i in range(rooms)]
        took = time.perf_counter() - t0
        local = [t for t in tickets if t["http"] == here]
        remote = [t for t in tickets if t["http"] != here]
        print(f"rooms created through one node: {rooms} in {took:.2f} s = {rooms / took:,.0f} rooms/s "
              f"({len(local)} on it, {len(remote)} on the other node)")
        for label, ticket in (("this node", local[0]), ("the other node", remote[0])):
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                again = await join(http, here, ticket["user"])
                times.append(time.perf_counter() - t)
                assert again["room"] == ticket["room"]
            ms = np.array(times) * 1e3
            print(f"join latency, seat on {label}: p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms ({repeats} joins)")


TICK_MS = 1000 / 60


def start_capacity(tmp: Path, players: int, rooms: int) -> tuple[subprocess.Popen, list[str]]:
    config = tmp / "capacity.toml"
    config.write_text(f"[matchmaking]\nplayers = {players}\nmax_rooms = {rooms}\nempty_timeout = 600\n")
    serve = ["demos.arena", "--mode", "statesync", "--config", str(config), "--tick-rate", "60", "--status-every", "0"]
    return start_workers(tmp / "workers.log", serve)


async def room_stats(http, dashboards: list[str]) -> dict[str, dict]:
    """Every room's loop stats, read from the worker that runs it."""
    out = {}
    for url in dashboards:
        async with http.get(url + "api/rooms") as r:
            listing = await r.json()
        me = listing["cluster"]["node"]
        out.update({room["name"]: room for room in listing["rooms"] if room["node"] == me})
    return out


async def capacity(dashboards: list[str], players: int, steps: list[int], step_s: float) -> None:
    from engine import load_game
    from netcode.client import matchmake, run_bots

    game = load_game("demos.arena")
    bots: list[asyncio.Task] = []
    held, best = 0, None
    print(f"{'rooms':>5} {'players':>7} {'on nodes':>9} {'tick p99 ms':>11} {'late p99 ms':>11} {'dropped':>11}  verdict")
    async with aiohttp.ClientSession() as http:
        before = await room_stats(http, dashboards)
        try:
            for rooms in steps:
                fresh = (rooms - held) * players
                tickets = await matchmake(dashboards[len(bots) % 2], game, fresh, mode="statesync")
                bots.append(asyncio.create_task(run_bots("", game, fresh, 3600, tickets=tickets, mode="statesync")))
                held = rooms
                await asyncio.sleep(2.0)  # joins settle
                before = await room_stats(http, dashboards)
                await asyncio.sleep(step_s)
                after = await room_stats(http, dashboards)
                def grew(key: str) -> int:
                    return sum(r[key] - before.get(n, {key: 0})[key] for n, r in after.items())

                dropped, ran = grew("dropped_ticks"), grew("tick")
                tick99 = max(r["tick_ms_p99"] for r in after.values())
                late99 = max(r["late_ms_p99"] for r in after.values())
                playing = sum(r["players"] for r in after.values())
                ok = tick99 < TICK_MS and dropped <= 0.01 * (ran + dropped)
                per_node = "/".join(str(sum(1 for r in after.values() if r.get("http") == u)) for u in dashboards)
                print(f"{len(after):>5} {playing:>7} {per_node:>9} {tick99:>11.2f} {late99:>11.2f} {f'{dropped}/{ran + dropped}':>11}  "
                      f"{'inside the tick' if ok else 'over'}", flush=True)
                if not ok:
                    break
                best = (len(after), playing)
        finally:
            for task in bots:
                task.cancel()
            await asyncio.gather(*bots, return_exceptions=True)
    if best is None:
        print("capacity: not even the first step held at 60 Hz")
    else:
        print(f"capacity at 60 Hz, 2 workers: {best[0]} rooms, {best[1]} players (lower bound: the bots share the cores)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--capacity", action="store_true", help="step rooms up until 2 workers miss 60 Hz (see the docstring)")
    parser.add_argument("--players", type=int, default=4, help="--capacity: players a room")
    parser.add_argument("--steps", default="2,4,8,12,16,24,32", help="--capacity: room counts to try, ascending")
    parser.add_argument("--step-s", type=float, default=8.0, help="--capacity: seconds each step is held")
    args = parser.parse_args(argv)
    steps = [int(x) for x in args.steps.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.capacity:
            proc, dashboards = start_capacity(Path(tmp), args.players, max(steps) + 2)
        else:
            proc, dashboards = start(Path(tmp), args.rooms)
        try:
            if args.capacity:
                asyncio.run(capacity(dashboards, args.players, steps, args.step_s))
            else:
                asyncio.run(measure(dashboards, args.rooms, args.repeats))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
