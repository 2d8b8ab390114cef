"""`make demo-cluster`: two worker processes sharing one lobby over Redis.

1. ``ticksync serve demos.arena --workers 2`` starts two cluster nodes and a redis-server of
   their own (nothing kept on disk).
2. Twelve bots ask the *second* worker for seats: eight fill a room there, and the next
   four get a new room on the least-loaded node, the first worker; each ticket names its
   room's own UDP address.
3. While they play, the *first* worker's ``GET /api/rooms`` lists both rooms, each with its
   node, address and players.
4. Ctrl-C (here: SIGINT) to the command stops both workers and Redis.

Everything here uses only the command line and the public API; read it as an example.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from engine import load_game
from netcode import run_bots
from netcode.client import matchmake

BOTS = 12
PLAY_S = 8.0


def banner(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 74 - len(text)), flush=True)


DEMO_SERVE = ["demos.arena", "--mode", "statesync", "--duration", "120"]


def start_workers(log: Path, serve_args: list[str] = DEMO_SERVE) -> tuple[subprocess.Popen, list[str]]:
    """``ticksync serve SERVE_ARGS --workers 2`` on free ports, its output in ``log``: the
    process and the two workers' dashboard URLs once both are up (exits if they are not
    within 30 s)."""
    cmd = [sys.executable, "-m", "netcode.cli", "serve", *serve_args, "--workers", "2", "--port", "0", "--ws-port", "0"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    end = time.monotonic() + 30
    while len(dashboards := re.findall(r"^\s+dashboard\s+(\S+)", log.read_text(), re.M)) < 2:
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            sys.exit(f"the workers did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc, dashboards


def show_lobby(dashboard: str) -> None:
    with urllib.request.urlopen(dashboard + "api/rooms", timeout=5) as r:
        listing = json.load(r)
    nodes = ", ".join(f"{n['id']} ({n['http']})" for n in listing["cluster"]["nodes"])
    print(f"   asked {dashboard}api/rooms: node {listing['cluster']['node']}; the cluster: {nodes}")
    for room in listing["rooms"]:
        print(f"   room {room['name']:<28} node {room['node']}  {room['udp']:<24} players {room['players']}/{room['slots']}")


async def play(game, dashboards: list[str]) -> list:
    banner(f"2. {BOTS} bots ask the second worker ({dashboards[1]}) for seats")
    tickets = await matchmake(dashboards[1], game, BOTS, mode="statesync")
    for room in dict.fromkeys(t["room"] for t in tickets):
        mine = [t for t in tickets if t["room"] == room]
        print(f"   {len(mine)} seats in {room} on node {mine[0]['node']} at {mine[0]['udp']}")
    bots = asyncio.create_task(
        run_bots("", game, BOTS, PLAY_S, tokens=[t["token"] for t in tickets], urls=[t["udp"] for t in tickets], mode="statesync")
    )
    await asyncio.sleep(PLAY_S / 2)
    banner("3. the first worker lists every node's rooms")
    await asyncio.to_thread(show_lobby, dashboards[0])
    return await bots


def main() -> None:
    game = load_game("demos.arena")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "workers.log"
        banner("1. ticksync serve demos.arena --workers 2 (and a redis-server of its own)")
        proc, dashboards = start_workers(log)
        print("   " + "\n   ".join(line for line in log.read_text().splitlines() if "workers on" in line or "cluster" in line))
        try:
            reports = asyncio.run(play(game, dashboards))
            played = sum(r.played for r in reports)
            print(f"\n   {played}/{BOTS} bots played; {sum(r.ticks for r in reports):,} ticks simulated, "
                  f"{sum(r.desyncs for r in reports)} desyncs")
        finally:
            banner("4. Ctrl-C to the command: both workers and Redis stop")
            proc.send_signal(signal.SIGINT)
            code = proc.wait(30)
            print(f"   exit {code}; " + "; ".join(line.strip() for line in log.read_text().splitlines() if line.startswith("stopping")))


if __name__ == "__main__":
    main()
