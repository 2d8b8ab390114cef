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
from engine.model import Game
from engine.replay import ReplayReader, record_run, replay

TARGET = 20_000


def record(game: Game, players: int, ticks: int, path: Path) -> float:
    """Record ``ticks`` of ``game`` with bot players into ``path``; seconds it took."""
    t0 = time.perf_counter()
    record_run(game, 1, players, ticks, str(path), hash_every=60, keyframe_every=1800)
    return time.perf_counter() - t0


def best_rate(game: Game, path: Path, verify: bool, repeat: int) -> float:
    """Ticks per second of the fastest of ``repeat`` full-speed replays of ``path``."""
    best = 0.0
    for _ in range(repeat):
        reader = ReplayReader(str(path))
        t0 = time.perf_counter()
        result = replay(reader, game, verify=verify)
        rate = result.ticks / (time.perf_counter() - t0)
        if not result.ok:
            raise RuntimeError(f"the replay of a fresh recording of {game.describe()} did not verify: {result}")
        best = max(best, rate)
    return best


def replay_cells(game: Game, ticks: int, players: int = 8, repeat: int = 2) -> list[dict]:
    """The throughput cells of ``ticksync bench``: replay ticks/s without and with verifying
    the recorded hashes (a recording of ``ticks`` ticks made first, in a temporary file)."""
    players = min(players, game.max_players)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tsr"
        recorded = record(game, players, ticks, path)
        size = path.stat().st_size
        out = []
        for verify in (False, True):
            rate = best_rate(game, path, verify, repeat)
            out.append({
                "kind": "throughput",
                "key": "replay/verify" if verify else "replay",
                "label": f"replay{' + verify hashes' if verify else ''}, {game.describe()}, {players} players",
                "value": rate,
                "unit": "ticks/s",
                "ticks": ticks,
                "record_s": recorded,
                "file_bytes": size,
            })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=36_000, help="ticks recorded (default: 10 minutes at 60 Hz)")
    ap.add_argument("--players", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many replays")
    args = ap.parse_args()
    game = Arena(npcs=1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arena.tsr"
        recorded = record(game, args.players, args.ticks, path)
        print(f"recorded {args.ticks} ticks of arena (1000 NPCs, {args.players} bots) in {recorded:.1f} s, "
              f"{path.stat().st_size / 1e6:.1f} MB")
        print(f"{'run':<22}{'ticks/s':>12}{'hour of 60 Hz in':>20}")
        for verify in (False, True):
            best = best_rate(game, path, verify, args.repeat)
            label = "replay + verify" if verify else "replay"
            print(f"{label:<22}{best:>12,.0f}{216_000 / best:>18.1f} s")
        print(f"target >= {TARGET:,} ticks/s: {'met' if best >= TARGET else 'MISSED'} (with verification)")


if __name__ == "__main__":
    main()
