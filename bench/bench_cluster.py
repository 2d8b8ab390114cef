"""``python -m bench.bench_cluster``: what the Redis cluster costs a join.

Starts ``ticksync serve demos.pong --mode lockstep --workers 2`` (two nodes and a redis-server of their
own) with one-seat rooms ticking at 10 Hz (light: the bench is about joins), then, all through the first node's HTTP API, one request at a
time:

* rooms created per second: fresh users, so every join makes a room, placed by load on
  either node (half of them are asked of the other node over HTTP);
* join latency, p50/p99: a user asking again for the seat it holds, on this node (one
  Redis read) and on the other node (one Redis read and one HTTP hop).
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proc, dashboards = start(Path(tmp), args.rooms)
        try:
            asyncio.run(measure(dashboards, args.rooms, args.repeats))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
