"""Before/after figures of a bench in two (or more) checkouts, run alternately.

This VM's speed drifts by 15-20% between sittings and by a point or two between runs, so a
before/after figure only means something when both sides run in the same minutes. This
script runs ``python -m bench.bench_statesync_loopback`` from each checkout in turn (ABBA
order, so a drift does not favour one side), reads the server CPU line of each run and
prints every run, the medians, and each round's ratio (the two runs of a round are next
to each other in time, so drift between rounds cancels: their median and range say more
than the ratio of medians when single runs spread by a third).

Each checkout must have its compiled parts built in place first::

    git worktree add /tmp/before <commit>
    (cd /tmp/before && ../path/to/.venv/bin/python setup.py build_ext --inplace)
    .venv/bin/python -m bench.compare_checkouts /tmp/before . --runs 5 -- --seconds 15 --warmup 4

Arguments after ``--`` go to the bench. Every run is bounded in time.

``--bench loopback`` (the default) is the loopback Colyseus bench and its server CPU line;
``--bench lockstep`` is ``python -m bench.bench_lockstep`` and, from its first 256-client
row, the p99 of a tick's work with its input packets (``t+r``), the same in CPU time and
the server CPU per simulated second::

    .venv/bin/python -m bench.compare_checkouts /tmp/before . --bench lockstep --runs 5 -- --rows swarm256f

``--bench statesync`` is ``python -m bench.bench_statesync`` (virtual time) and, from each of
its rows, a snapshot tick's p50 and p99 and the server CPU per simulated second::

    .venv/bin/python -m bench.compare_checkouts /tmp/before . --bench statesync --runs 4 -- --rows noshare_64,budget_64 --seconds 3

``--plaintext`` (sessions unsealed) goes only to checkouts whose bench knows it: a checkout
from before sealed sessions (before b0007de, such as 3aaeb46, issue 10's "today's main") has
no sealing to switch off, so its plain run already is the plaintext protocol, and both sides
compare the same work. The script says which checkouts ran without the flag.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

_CPU = re.compile(r"server CPU, % of one core\s+([\d.]+)")
PLAINTEXT = "--plaintext"


def _knows(checkout: Path, flag: str) -> bool:
    """Whether ``checkout``'s loopback bench accepts ``flag`` (asked through its --help)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_statesync_loopback", "--help"],
        cwd=checkout, capture_output=True, text=True, timeout=60,
    )
    return flag in out.stdout


def _args_for(checkout: Path, bench_args: list[str]) -> list[str]:
    """The bench arguments ``checkout`` runs with: ``--plaintext`` left out where its bench
    predates sealed sessions (its sessions are plaintext anyway)."""
    if PLAINTEXT in bench_args and not _knows(checkout, PLAINTEXT):
        print(f"{checkout}: its bench has no {PLAINTEXT} (sessions from before sealing are unsealed): run without it")
        return [a for a in bench_args if a != PLAINTEXT]
    return bench_args


def _loopback_figures(stdout: str) -> dict[str, float] | None:
    m = _CPU.search(stdout)
    return None if m is None else {"server CPU, % of one core": float(m.group(1))}


def _column(header: str, row: str, name: str) -> float | None:
    """The figure in ``row`` under the right-aligned column ``name`` of ``header`` (found by
    where the name ends, not by position: older checkouts' tables have fewer columns)."""
    at = header.find(f" {name}")
    if at < 0:
        return None
    end = at + 1 + len(name)
    token = row[:end].split()[-1] if row[:end].strip() and (end >= len(row) or row[end] == " ") else None
    try:
        return float(token) if token is not None else None
    except ValueError:
        return None


def _lockstep_figures(stdout: str) -> dict[str, float] | None:
    """From the first table row of 256 clients: its t+r p99, cpu (p99) and cpu ms/s columns,
    read under the table's header (a checkout from before the cpu column has none)."""
    header = None
    for line in stdout.splitlines():
        if "t+r p99" in line and "cpu ms/s" in line:
            header = line
            continue
        label = line[:15]
        if header is not None and " 256 " in f" {label} ":
            got = {f"{label.strip()} t+r p99 ms": _column(header, line, "t+r p99"),
                   "cpu p99 ms": _column(header, line, "cpu"), "cpu ms/s": _column(header, line, "cpu ms/s")}
            got = {k: v for k, v in got.items() if v is not None}
            return got if f"{label.strip()} t+r p99 ms" in got else None
    return None


def _statesync_figures(stdout: str) -> dict[str, float] | None:
    """From every row of the virtual state-sync table: a snapshot tick's p50 and p99 and the
    cpu ms/s column (the row's label is what comes before its entity count)."""
    header, got = None, {}
    for line in stdout.splitlines():
        if "snap p50" in line and "cpu ms/s" in line:
            header = line
            continue
        row = re.match(r"(\S.*?)\s{2,}\d+\s", line) if header is not None else None
        if row is None:
            continue
        label = row.group(1)
        for name, column in (("snap p50 ms", "snap p50"), ("snap p99 ms", "p99"), ("cpu ms/s", "cpu ms/s")):
            value = _column(header, line, column)  # (the first "p99" is the snapshot tick's)
            if value is not None:
                got[f"{label} {name}"] = value
    return got or None


# --bench NAME -> (module run in each checkout, what to read from its output)
BENCHES = {
    "loopback": ("bench.bench_statesync_loopback", _loopback_figures),
    "lockstep": ("bench.bench_lockstep", _lockstep_figures),
    "statesync": ("bench.bench_statesync", _statesync_figures),
}


def _run(checkout: Path, bench: str, bench_args: list[str], timeout: float) -> dict[str, float] | None:
    module, read = BENCHES[bench]
    # The checkout's directory comes first on sys.path with -m, so its code is what runs.
    out = subprocess.run(
        [sys.executable, "-m", module, *bench_args],
        cwd=checkout, capture_output=True, text=True, timeout=timeout,
    )
    figures = read(out.stdout)
    if figures is None:
        print(f"{checkout}: no figures (exit {out.returncode}): {out.stderr.strip()[-300:]}", file=sys.stderr)
    return figures


def paired_ratios(first: list[float | None], other: list[float | None]) -> list[float]:
    """``other``'s figure over ``first``'s, round by round (the two runs of a round are
    next to each other in time, so the machine's drift between rounds cancels out of each
    ratio); rounds where either run failed are left out."""
    return [o / f for f, o in zip(first, other) if f and o is not None]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ours, bench_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkouts", nargs="+", type=Path)
    p.add_argument("--runs", type=int, default=5, help="runs per checkout")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    p.add_argument("--bench", choices=sorted(BENCHES), default="loopback", help="which bench (default: loopback)")
    args = p.parse_args(ours)
    for c in args.checkouts:
        if not (c / "bench" / "bench_statesync_loopback.py").exists():
            p.error(f"{c} is not a ticksync checkout")
    figures: dict[Path, list[dict[str, float] | None]] = {c: [] for c in args.checkouts}  # a run per round
    if args.bench == "loopback":
        run_args = {c: _args_for(c, bench_args) for c in args.checkouts}
    else:
        run_args = dict.fromkeys(args.checkouts, bench_args)
    for k in range(args.runs):
        for c in args.checkouts if k % 2 == 0 else args.checkouts[::-1]:
            got = _run(c, args.bench, run_args[c], args.timeout)
            figures[c].append(got)
            shown = ", ".join(f"{name} {value:g}" for name, value in got.items()) if got else "failed"
            print(f"run {k + 1}: {c}: {shown}", flush=True)
    print(f"\nmedians ({BENCHES[args.bench][0]} {' '.join(bench_args) or 'with its defaults'}):")
    names = [name for runs in figures.values() for got in runs if got for name in got]
    for name in dict.fromkeys(names):
        print(f"  {name}:")
        medians = {}
        rounds = {c: [got.get(name) if got else None for got in runs] for c, runs in figures.items()}
        for c in args.checkouts:
            values = [v for v in rounds[c] if v is not None]
            medians[c] = statistics.median(values) if values else None
            median = f"{medians[c]:.3f}" if values else "-"
            print(f"    {str(c):40s} median {median:>8s}  runs {values}")
        first = medians[args.checkouts[0]]
        for c in args.checkouts[1:]:
            if first and medians[c] is not None:
                print(f"    {str(c):40s} / {args.checkouts[0]}: {medians[c] / first:.3f}x")
            paired = paired_ratios(rounds[args.checkouts[0]], rounds[c])
            if paired:
                print(f"    {'':40s}   round by round: median {statistics.median(paired):.3f}x, "
                      f"{min(paired):.3f}-{max(paired):.3f}x over {len(paired)} rounds "
                      f"({', '.join(f'{r:.3f}' for r in paired)})")


if __name__ == "__main__":
    main()
