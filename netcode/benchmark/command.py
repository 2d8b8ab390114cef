"""``ticksync bench [GAME]``: the load matrix, the capacity search and the throughput cells
as one command, with a progress bar, JSON + Markdown + PNG results, ``--compare`` and
``--readme``. :mod:`netcode.cli` adds the subcommand with :func:`add_parser`.

rich (the progress bar) and matplotlib (the plots) come with ``pip install 'ticksync[bench]'``;
without them the command says so in one line (exit 2). Exit 1 when a cell failed (a
process died or hung; the other cells still run and are written).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path

from engine.cli import CliError
from engine.model import GameError

__all__ = ["add_parser", "cmd_bench", "run_bench"]

DEFAULT_OUT = "out/bench"


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of whole numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive whole numbers")
    return values


def _modes(text: str) -> tuple[str, ...]:
    from netcode.benchmark.loopback import MODES

    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if v not in MODES]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: modes are {', '.join(MODES)}")
    return values


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark a game's server over UDP loopback: mode x clients x entities x tick rate, capacity, replay, codec",
        description="Server tick time, CPU, RSS, bytes and loss per client for each cell of a matrix (a server process "
        "and a bot process on UDP loopback), the largest client count per mode whose p99 tick fits the tick "
        "budget, and replay and snapshot-codec throughput. About 5 minutes; --quick under one.",
    )
    p.add_argument("game", nargs="?", help="import path of the game (default: the arena demo, up to 256 players)")
    p.add_argument("--quick", action="store_true", help="a small matrix, 2 s per cell, no capacity probes (< 1 minute)")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"where bench.json, bench.md and the plots go (default {DEFAULT_OUT})")
    p.add_argument("--compare", metavar="OLD.json", help="print the change against an earlier run, cell by cell")
    p.add_argument("--readme", metavar="PATH", nargs="?", const="README.md",
                   help="rewrite the performance section between the markers of PATH (default README.md)")
    p.add_argument("--from", dest="from_json", metavar="RUN.json",
                   help="use an earlier run's JSON instead of running (with --out, --compare, --readme)")
    p.add_argument("--modes", type=_modes, help="comma list (default lockstep,statesync)")
    p.add_argument("--clients", type=_ints, help="comma list of client counts")
    p.add_argument("--entities", type=_ints, help="comma list of NPC counts (games whose constructor takes npcs)")
    p.add_argument("--tick-rates", type=_ints, help="comma list of tick rates (Hz)")
    p.add_argument("--seconds", type=float, help="seconds measured per cell")
    p.add_argument("--warmup", type=float, help="seconds played before measuring")
    p.add_argument("--capacity-probes", type=int, help="extra cells per mode bisecting the capacity")
    p.add_argument("--real-clients", type=int, help="full clients per lockstep cell, running the game (desyncs); default 1")
    p.add_argument("--no-throughput", action="store_true", help="skip the replay and codec cells")
    p.set_defaults(func=cmd_bench)


def _need_extras() -> None:
    missing = []
    for module in ("rich", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise CliError(f"ticksync bench needs {' and '.join(missing)}: pip install 'ticksync[bench]'")


def _plan(args):
    from netcode.benchmark.matrix import PLANS

    plan = PLANS["quick" if args.quick else "full"]
    overrides = {
        "modes": args.modes, "clients": args.clients, "entities": args.entities, "tick_rates": args.tick_rates,
        "seconds": args.seconds, "warmup": args.warmup, "capacity_probes": args.capacity_probes,
        "real_clients": args.real_clients,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.game and args.entities is None:
        overrides["entities"] = (None,)  # another game: as it is, unless asked
    plan = dataclasses.replace(plan, **overrides)
    if not 0 < plan.seconds <= 120 or not 0 <= plan.warmup <= 60:
        raise CliError("--seconds must be in (0, 120] and --warmup in [0, 60]")
    if plan.capacity_probes < 0 or plan.real_clients < 0:
        raise CliError("--capacity-probes and --real-clients must not be negative")
    return plan


def _command(args) -> str:
    """The run as a command line (what the results say they came from)."""
    parts = ["ticksync bench"] + ([args.game] if args.game else []) + (["--quick"] if args.quick else [])
    for name in ("modes", "clients", "entities", "tick_rates", "seconds", "warmup", "capacity_probes", "real_clients"):
        v = getattr(args, name)
        if v is not None:
            parts.append(f"--{name.replace('_', '-')} " + (",".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}"))
    if args.no_throughput:
        parts.append("--no-throughput")
    return " ".join(parts)


def run_bench(game, plan, command: str, *, throughput: bool = True, progress=None) -> dict:
    """Run the plan on ``game``: the matrix, the capacity search, the throughput cells.
    ``progress(description, advance_total)``: called before each step (optional)."""
    from netcode.benchmark.matrix import capacity_search, measure_cell
    from netcode.benchmark.results import FORMAT, machine
    from netcode.benchmark.throughput import CELLS

    started = time.perf_counter()
    doc = {
        "ticksync_bench": FORMAT,
        "machine": machine(),
        "command": command,
        "game": game.describe(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "plan": dataclasses.asdict(plan),
        "cells": [],
        "capacity": {},
    }
    step = progress or (lambda description, remaining=None: None)
    cells = plan.cells(game)
    extra = list(CELLS.items()) if throughput else []
    for i, cell in enumerate(cells):
        step(cell.key, len(cells) - i + len(plan.modes) * plan.capacity_probes + len(extra))
        doc["cells"].append(measure_cell(game, cell, plan))

    def probe(cell):
        step(f"capacity: {cell.key}", None)
        return measure_cell(game, cell, plan)

    doc["capacity"] = capacity_search(game, plan, doc["cells"], probe)
    for i, (name, cells_of) in enumerate(extra):
        step(name, len(extra) - i)
        doc["cells"].extend(cells_of(game, plan))
    step("done", 0)
    doc["elapsed_s"] = time.perf_counter() - started
    return doc


def _with_progress(run):
    """Run ``run(progress)`` under a rich progress bar on stderr (stdout keeps the results)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<52}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("starting", total=None)
        state = {"started": False, "done": 0}

        def progress(description: str, remaining: int | None) -> None:
            """A new step begins (the previous one is done); ``remaining``: steps left
            counting this one, when known."""
            state["done"] += state["started"]
            state["started"] = True
            total = {"total": state["done"] + remaining} if remaining is not None else {}
            bar.update(task, description=description, completed=state["done"], **total)

        return run(progress)


def cmd_bench(args) -> int:
    from netcode.benchmark import results
    from netcode.benchmark.matrix import game_with_entities, resolve_game
    from netcode.benchmark.readme import update_readme

    _need_extras()
    try:
        old = results.load(args.compare) if args.compare else None
        if args.from_json:
            doc = results.load(args.from_json)
        else:
            plan = _plan(args)
            game = resolve_game(args.game)
            for entities in plan.entities:
                game_with_entities(game, entities)  # fails now, not after minutes, when the game has no such knob
            doc = _with_progress(lambda progress: run_bench(game, plan, _command(args),
                                                            throughput=not args.no_throughput, progress=progress))
    except (ValueError, GameError) as exc:
        raise CliError(str(exc)) from None
    from netcode.benchmark.plots import plot

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        results.write_json(doc, out / "bench.json")
        md = results.markdown(doc)
        (out / "bench.md").write_text(md)
        pngs = plot(doc, out)
    except OSError as exc:
        raise CliError(f"cannot write the results into {out}: {exc.strerror or exc}") from None
    print(md)
    print(f"written: {out / 'bench.json'}, {out / 'bench.md'}" + "".join(f", {p}" for p in pngs))
    if old is not None:
        print()
        print(results.compare(old, doc))
    if args.readme:
        try:
            update_readme(args.readme, md)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        print(f"updated the performance section of {args.readme}")
    failed = [c for c in doc["cells"] if c["kind"] == "failed"]
    if failed:
        print(f"FAILED: {len(failed)} cell(s): " + "; ".join(f"{c['key']}: {c['reason']}" for c in failed))
        return 1
    return 0
