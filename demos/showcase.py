"""`make demo`: what ticksync does, end to end, in about a minute, on this machine alone.

1. The arena (8 bot players, 1000 NPCs) runs headless as fast as it can, with a live table
   of ticks/s and tick time, recording its input log.
2. The recording is replayed at full speed and every recorded state hash is verified.
3. A lockstep server and bot clients play over real UDP on loopback; the bots' state
   hashes are checked against the server's as they play.
4. A state-sync server and predicting bot clients play over real UDP on loopback, with
   delta snapshots, reconciliation and interpolation.

Everything here uses only the public API; read it as an example.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine import ReplayReader, load_game, run_headless
from engine.replay import replay  # not on the facade: engine.replay is also the module's name


def banner(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def headless_and_replay(out: Path, ticks: int) -> None:
    game = load_game("demos.arena")
    path = out / "arena.tsr"
    banner(f"1. arena headless: 8 bots, {game.npcs} NPCs, {ticks} ticks ({ticks // game.tick_rate} s of play), recording")
    stats = run_headless(game, ticks=ticks, players=8, seed=7, record=str(path), game_path="demos.arena")
    print(f"   {stats['ticks_per_s']:,.0f} ticks/s; tick p50 {stats['p50_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms")
    print(f"   recorded {path} ({path.stat().st_size / 1e6:.1f} MB)")

    banner("2. replay at full speed, verifying every recorded hash")
    reader = ReplayReader(str(path))
    t0 = time.perf_counter()
    result = replay(reader, game)
    elapsed = time.perf_counter() - t0
    verdict = "all match" if result.ok else f"DIVERGED at tick {result.divergent_tick}"
    print(
        f"   {result.ticks} ticks in {elapsed:.2f} s = {result.ticks / elapsed:,.0f} ticks/s; "
        f"{result.hashes_checked} hashes, {result.keyframes_checked} keyframes: {verdict}"
    )
    if not result.ok:
        raise SystemExit(1)


def networked(seconds: float) -> None:
    from demos.netplay import play_over_loopback

    banner(f"3. lockstep over UDP on loopback: 4 bot clients, {seconds:.0f} s (hashes checked as they play)")
    ok = play_over_loopback("lockstep", seconds=seconds)
    banner(f"4. state sync over UDP on loopback: 4 predicting bot clients, {seconds:.0f} s")
    ok = play_over_loopback("statesync", seconds=seconds) and ok
    if not ok:
        print("   a bot could not play or desynced (see above)")
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=18000, help="headless ticks (5 minutes of play at 60 Hz)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each networked match")
    ap.add_argument("--out", default="out", help="folder for the recordings")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    headless_and_replay(out, args.ticks)
    networked(args.seconds)
    banner("next: serve it, fill it with bots, play it, watch it")
    print("   ticksync serve demos.arena --mode statesync --open-join           # UDP 7777, HTTP 8080; prints the admin key")
    print("   ticksync bots http://127.0.0.1:8080 --game demos.arena --count 6  # seats from the server's matchmaking")
    print("   ticksync play demos.arena http://127.0.0.1:8080                   # join in a desktop window")
    print("   ticksync replay out/arena.tsr --verify                            # replays are just the inputs")
    print("   ticksync replay out/arena.tsr --watch                             # the recording in a desktop window")
    print("   browser view:  http://127.0.0.1:8080/play")
    print("   dashboard:     http://127.0.0.1:8080/   (rooms, players, live charts; Prometheus at /metrics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
