"""The engine's commands of the ``ticksync`` CLI: run, replay, check (no network).

    ticksync run GAME --ticks N [--players P] [--record FILE [--force]]   headless run with bots
    ticksync replay FILE [--verify] [--seek T [--dump | --json]]         re-simulate a recording
    ticksync check GAME [--ticks N] [--input-seeds N] [--strict]   determinism check

:mod:`netcode.cli` adds the networked commands and is the entry point. GAME is an import
path such as ``demos.arena`` (its ``GAME``) or ``demos.arena:Arena``. Exit codes: 0 fine,
1 the check or verification found a divergence (or a recording damaged before its end), 2
bad arguments or unreadable input (one line on stderr, never a traceback; ``--traceback``
or ``TICKSYNC_TRACEBACK=1`` for the full story).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Sequence

import numpy as np
import orjson

from engine.check import check
from engine.errors import UsageError
from engine.model import Game, GameError, load_game
from engine.replay import ReplayReader, ReplayWriter, replay, seek
from engine.state import State

__all__ = ["CliError", "LiveTable", "add_commands", "check_record_path", "game_and_players", "load_game_or_fail", "run_headless"]


class CliError(UsageError):
    """Something the user can fix (the command line's caller's fault): printed as one line,
    exit code 2."""


def load_game_or_fail(path: str) -> Game:
    try:
        return load_game(path)
    except GameError as exc:
        raise CliError(str(exc)) from exc  # the cause is what --traceback shows


class LiveTable:
    """Prints a row of progress about once a second (a growing table: fine on a terminal
    and in CI logs alike)."""

    def __init__(self, columns: Sequence[tuple[str, int]], out=sys.stdout, every: float = 1.0):
        self.columns = columns
        self.out = out
        self.every = every
        self._next = time.perf_counter() + every
        header = " ".join(f"{name:>{width}}" for name, width in columns)
        print(header, file=out)
        print("-" * len(header), file=out, flush=True)

    def due(self, now: float) -> bool:
        return now >= self._next

    def row(self, now: float, *values) -> None:
        self._next = now + self.every
        cells = []
        for (name, width), v in zip(self.columns, values):
            cells.append(f"{v:>{width}.2f}" if isinstance(v, float) else f"{v!s:>{width}}")
        print(" ".join(cells), file=self.out, flush=True)


def run_headless(
    game: Game,
    *,
    ticks: int,
    players: int,
    seed: int,
    record: str | None = None,
    game_path: str = "",
    table: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Play ``ticks`` ticks with scripted bots as fast as possible; optionally record."""
    game.check_players(players)
    state = game.create(seed, players)
    slots = np.arange(players)
    writer = None
    if record:
        writer = ReplayWriter(
            record,
            game,
            seed=seed,
            players=players,
            tick_rate=game.tick_rate,
            mode="offline",
            keyframe_every=30 * game.tick_rate,
            meta={"game_path": game_path},
        )
    live = LiveTable([("tick", 9), ("ticks/s", 10), ("p50 ms", 8), ("p99 ms", 8), ("state hash", 18)]) if table else None
    durations = np.zeros(ticks)
    start = last = clock()
    last_tick = 0
    try:
        for t in range(ticks):
            t0 = clock()
            inputs = game.bot_inputs(state, t, slots).astype(game.input_dtype, copy=False)
            game.sanitize_inputs(inputs)
            if writer:
                writer.record(t, inputs, state)
            game.step(state, inputs, t)
            now = clock()
            durations[t] = now - t0
            if live and (live.due(now) or t == ticks - 1):
                window = durations[last_tick : t + 1]
                rate = (t + 1 - last_tick) / max(now - last, 1e-9)
                p50, p99 = np.percentile(window, [50, 99]) * 1e3
                live.row(now, t + 1, rate, float(p50), float(p99), f"{state.hash():016x}")
                last, last_tick = now, t + 1
    finally:
        if writer:
            writer.close(final_state=state)
    elapsed = clock() - start
    return {
        "ticks": ticks,
        "elapsed": elapsed,
        "ticks_per_s": ticks / max(elapsed, 1e-9),
        "hash": state.hash(),
        "p50_ms": float(np.percentile(durations, 50) * 1e3) if ticks else 0.0,
        "p99_ms": float(np.percentile(durations, 99) * 1e3) if ticks else 0.0,
    }


def check_record_path(path: str, force: bool) -> None:
    """Refuse, with a CliError, a recording that would overwrite a file (unless ``force``)
    or go into a directory that does not exist. A missing directory is not created: a typo
    in a path should not leave directories behind; the message says how to create it."""
    if os.path.isdir(path):
        raise CliError(f"cannot record to {path}: it is a directory")
    if os.path.lexists(path) and not force:
        raise CliError(f"{path} exists: pass --force to overwrite it")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise CliError(f"cannot record to {path}: the directory {parent} does not exist (mkdir -p {parent})")


def game_and_players(path: str, players: int) -> tuple[Game, int]:
    """The game at ``path`` and the player count to run (0: min(8, the game's maximum)),
    or a CliError saying what is wrong with them."""
    game = load_game_or_fail(path)
    players = players or min(game.max_players, 8)
    try:
        game.check_players(players)
    except GameError as exc:
        raise CliError(str(exc)) from None
    return game, players


def cmd_run(args) -> int:
    game, players = game_and_players(args.game, args.players)
    if args.record:
        check_record_path(args.record, args.force)
    print(f"running {game.describe()}: {players} players, {args.ticks} ticks, seed {args.seed}")
    stats = run_headless(
        game, ticks=args.ticks, players=players, seed=args.seed, record=args.record, game_path=args.game
    )
    print(
        f"ran {stats['ticks']} ticks in {stats['elapsed']:.2f} s: {stats['ticks_per_s']:,.0f} ticks/s, "
        f"tick p50 {stats['p50_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms, final hash {stats['hash']:016x}"
    )
    if args.record:
        print(f"recorded to {args.record}")
    return 0


def cmd_replay(args) -> int:
    try:
        reader = ReplayReader(args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    path = args.game or reader.meta.get("game_path") or f"demos.{reader.game}"
    game = load_game_or_fail(path)
    reader.check_game(game)
    summary = (
        f"replay of {reader.game} {reader.game_version}: {reader.players} players, seed {reader.seed}, "
        f"{reader.tick_rate} Hz, mode {reader.mode}, {reader.ticks} ticks recorded{_meant(reader)}"
    )
    if not args.json:  # --json: stdout is the JSON document alone
        print(summary)
    if (args.dump or args.json) and args.seek is None:
        raise CliError("--dump and --json show the state at a tick: add --seek T")
    if args.seek is not None:
        if not 0 <= args.seek <= reader.ticks:
            raise CliError(f"--seek {args.seek}: this recording holds the states of ticks 0..{reader.ticks}")
        t0 = time.perf_counter()
        state = seek(reader, game, args.seek)
        if args.json:
            print(orjson.dumps(state_as_json(state, args.seek)).decode())
            return 0
        print(f"state at tick {args.seek}: hash {state.hash():016x} ({time.perf_counter() - t0:.3f} s)")
        if args.dump:
            print(state_table(state))
        return 0
    t0 = time.perf_counter()
    result = replay(reader, game, verify=args.verify)
    elapsed = time.perf_counter() - t0
    rate = result.ticks / max(elapsed, 1e-9)
    seconds = result.ticks / reader.tick_rate if reader.tick_rate else 0
    print(f"re-simulated {result.ticks} ticks ({seconds:.0f} s of play) in {elapsed:.2f} s: {rate:,.0f} ticks/s")
    if reader.damage:
        # A torn tail is what a crash leaves; damage before the end lost ticks that were there.
        print(f"{'ERROR' if args.verify else 'warning'}: the file is {reader.damage}; replayed up to tick {reader.ticks}")
    elif reader.tail:
        print(f"warning: {reader.tail}; replayed up to there")
    if args.verify:
        if result.divergent_tick is not None:
            arrays = f" (arrays differing: {', '.join(result.differing)})" if result.differing else ""
            print(f"DIVERGED: the recorded state at tick {result.divergent_tick} differs from the re-simulation{arrays}")
            return 1
        part = f" in the intact {result.ticks} ticks" if reader.damage else ""
        print(
            f"verified: {result.hashes_checked} recorded hashes and {result.keyframes_checked} keyframes match{part}"
        )
        if reader.damage:
            return 1
    return 0


def state_as_json(state: State, tick: int) -> dict:
    """Every array of ``state`` as plain JSON values, with its dtype and shape."""
    arrays = {
        name: {"dtype": str(arr.dtype), "shape": list(arr.shape), "values": arr.tolist()} for name, arr in state.items()
    }
    return {"tick": tick, "hash": f"{state.hash():016x}", "arrays": arrays}


def _cell(value) -> str:
    if isinstance(value, np.ndarray):
        return ",".join(_cell(v) for v in value.reshape(-1))
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def state_table(state: State) -> str:
    """The state as text: scalars one per line, then one table per entity-row count (the
    arrays whose first axis has that length, side by side; a row's sub-array joined by
    commas)."""
    lines = [f"{name} = {_cell(arr[()])}" for name, arr in state.items() if arr.ndim == 0]
    groups: dict[int, list[str]] = {}
    for name, arr in state.items():
        if arr.ndim:
            groups.setdefault(arr.shape[0], []).append(name)
    for rows, names in groups.items():
        cells = [[str(i)] + [_cell(state[n][i]) for n in names] for i in range(rows)]
        header = ["row", *names]
        widths = [max(len(h), *(len(r[c]) for r in cells)) if cells else len(h) for c, h in enumerate(header)]
        lines.append("")
        lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        lines.extend("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells)
    return "\n".join(lines)


def _meant(reader: ReplayReader) -> str:
    if reader.expected_ticks is not None and reader.expected_ticks != reader.ticks:
        return f" (of the {reader.expected_ticks} it was meant to hold)"
    return ""


def cmd_check(args) -> int:
    load_game_or_fail(args.game)  # a clear error before any work
    result = check(
        args.game, ticks=args.ticks, players=args.players, seed=args.seed, rollback=args.rollback, input_seeds=args.input_seeds
    )
    print(result.describe())
    return 0 if result.ok and not (args.strict and result.warnings) else 1


def add_commands(sub) -> None:
    p = sub.add_parser("run", help="run a game headless with scripted bots")
    p.add_argument("game", help="import path, e.g. demos.arena")
    p.add_argument("--ticks", type=int, default=3600)
    p.add_argument("--players", type=int, default=0, help="default: min(8, the game's maximum)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--record", metavar="FILE", help="write the replay log here (its directory must exist)")
    p.add_argument("--force", action="store_true", help="overwrite the --record file if it exists")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", help="re-simulate a recorded input log")
    p.add_argument("file")
    p.add_argument("--verify", action="store_true", help="compare recorded state hashes")
    p.add_argument("--seek", type=int, metavar="T", help="print the state hash at tick T")
    p.add_argument("--dump", action="store_true", help="with --seek: print the whole state at T as tables")
    p.add_argument("--json", action="store_true", help="with --seek: print the whole state at T as JSON")
    p.add_argument("--game", help="import path of the game (default: from the recording)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("check", help="determinism check (rollback and re-simulate every tick)")
    p.add_argument("game")
    p.add_argument("--ticks", type=int, default=1800, help="ticks per run (default 1800: 30 s at 60 Hz)")
    p.add_argument("--players", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rollback", type=int, default=2)
    p.add_argument(
        "--input-seeds", type=int, default=2, metavar="N", help="random-input runs beside the bots' run (default 2)"
    )
    p.add_argument("--strict", action="store_true", help="a warning (float state in lockstep) fails the check too")
    p.set_defaults(func=cmd_check)
