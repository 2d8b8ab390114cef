"""Play a match over real UDP on loopback: a TickServer room and bot clients, in one process.

Used by ``make demo``; also a compact example of the server and client APIs::

    python -m demos.netplay statesync --seconds 10 --bots 4
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

from engine import load_game, run_async
from netcode import RoomConfig, TickServer, run_bots


async def _match(mode: str, seconds: float, bots: int, game_path: str, record: str | None) -> bool:
    game = load_game(game_path)
    secret = secrets.token_bytes(32)
    server = TickServer(secret=secret, host="127.0.0.1", udp_port=0, http_port=None)
    server.add_room(game, RoomConfig(name="demo", mode=mode, players=bots, record=record, game_path=game_path))
    await server.start()
    try:
        play = asyncio.ensure_future(run_bots(server.udp_url, game, bots, seconds, secret=secret, room="demo", mode=mode))
        print(f"   {'time':>5} {'tick':>6} {'players':>7} {'tick p99 ms':>11} {'kbps out':>9} {'desyncs':>7}")
        t = 0
        while not play.done():
            await asyncio.sleep(1.0)
            t += 1
            room = server.room_report("demo", detail=False)
            print(
                f"   {t:>4}s {room['tick']:>6} {room['players']:>4}/{room['slots']:<2} {room['tick_ms_p99']:>11.2f} "
                f"{room.get('kbps_out', 0.0):>9.1f} {room['desyncs']:>7}",
                flush=True,
            )
        reports = play.result()
    finally:
        await server.stop("demo over")
    ok = all(r.played and not r.desyncs for r in reports)
    for r in reports:
        rtt = f"{r.rtt_ms:.1f} ms" if r.rtt_ms is not None else "-"
        unit = "frames" if mode == "lockstep" else "snapshots"
        print(f"   {r.name}: slot {r.slot}, {r.frames} {unit}, {r.ticks} ticks, rtt {rtt}, desyncs {r.desyncs}: {r.status}")
    return ok


def play_over_loopback(mode: str, *, seconds: float = 10.0, bots: int = 4, game: str = "demos.arena", record: str | None = None) -> bool:
    return run_async(_match(mode, seconds, bots, game, record))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("lockstep", "statesync"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--bots", type=int, default=4)
    ap.add_argument("--game", default="demos.arena")
    ap.add_argument("--record", help="replay file to write")
    args = ap.parse_args(argv)
    return 0 if play_over_loopback(args.mode, seconds=args.seconds, bots=args.bots, game=args.game, record=args.record) else 1


if __name__ == "__main__":
    sys.exit(main())
