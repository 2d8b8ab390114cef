"""Replay throughput: record the 1000-NPC arena with bot players, then re-simulate it at
full speed with and without verifying hashes, and print ticks/s.

Run: .venv/bin/python -m bench.replay_throughput [--ticks 36000] [--players 8]
Target (issue 2): >= 20,000 ticks/s, i.e. an hour of 60 Hz play in about 11 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from demos.arena import Arena
from engine.replay import ReplayReader, record_run, replay

TARGET = 20_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=36_000, help="ticks recorded (default: 10 minutes at 60 Hz)")
    ap.add_argument("--players", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many replays")
    args = ap.parse_args()
    game = Arena(npcs=1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arena.tsr"
        t0 = time.perf_counter()
        record_run(game, 1, args.players, args.ticks, str(path), hash_every=60, keyframe_every=1800)
        recorded = time.perf_counter() - t0
        print(f"recorded {args.ticks} ticks of arena (1000 NPCs, {args.players} bots) in {recorded:.1f} s, "
              f"{path.stat().st_size / 1e6:.1f} MB")
        print(f"{'run':<22}{'ticks/s':>12}{'hour of 60 Hz in':>20}")
        for verify in (False, True):
            best = 0.0
            for _ in range(args.repeat):
                reader = ReplayReader(str(path))
                t0 = time.perf_counter()
                result = replay(reader, game, verify=verify)
                rate = result.ticks / (time.perf_counter() - t0)
                assert result.ok
                best = max(best, rate)
            label = "replay + verify" if verify else "replay"
            print(f"{label:<22}{best:>12,.0f}{216_000 / best:>18.1f} s")
        print(f"target >= {TARGET:,} ticks/s: {'met' if best >= TARGET else 'MISSED'} (with verification)")


if __name__ == "__main__":
    main()
