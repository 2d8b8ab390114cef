"""Before/after CPU of the loopback Colyseus bench: two (or more) checkouts, run alternately.

This VM's speed drifts by 15-20% between sittings and by a point or two between runs, so a
before/after figure only means something when both sides run in the same minutes. This
script runs ``python -m bench.bench_statesync_loopback`` from each checkout in turn (ABBA
order, so a drift does not favour one side), reads the server CPU line of each run and
prints every run and the medians.

Each checkout must have its compiled parts built in place first::

    git worktree add /tmp/before <commit>
    (cd /tmp/before && ../path/to/.venv/bin/python setup.py build_ext --inplace)
    .venv/bin/python -m bench.compare_checkouts /tmp/before . --runs 5 -- --seconds 15 --warmup 4

Arguments after ``--`` go to the loopback bench. Every run is bounded in time.

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


def _run(checkout: Path, bench_args: list[str], timeout: float) -> float | None:
    # The checkout's directory comes first on sys.path with -m, so its code is what runs.
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_statesync_loopback", *bench_args],
        cwd=checkout, capture_output=True, text=True, timeout=timeout,
    )
    m = _CPU.search(out.stdout)
    if m is None:
        print(f"{checkout}: no CPU figure (exit {out.returncode}): {out.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return float(m.group(1))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ours, bench_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkouts", nargs="+", type=Path)
    p.add_argument("--runs", type=int, default=5, help="runs per checkout")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    args = p.parse_args(ours)
    for c in args.checkouts:
        if not (c / "bench" / "bench_statesync_loopback.py").exists():
            p.error(f"{c} is not a ticksync checkout")
    figures: dict[Path, list[float]] = {c: [] for c in args.checkouts}
    run_args = {c: _args_for(c, bench_args) for c in args.checkouts}
    for k in range(args.runs):
        for c in args.checkouts if k % 2 == 0 else args.checkouts[::-1]:
            cpu = _run(c, run_args[c], args.timeout)
            if cpu is not None:
                figures[c].append(cpu)
            print(f"run {k + 1}: {c}: {cpu if cpu is not None else 'failed'}", flush=True)
    print(f"\nserver CPU, % of one core ({' '.join(bench_args) or 'bench defaults'}):")
    for c, runs in figures.items():
        median = f"{statistics.median(runs):.1f}" if runs else "-"
        print(f"  {str(c):40s} median {median:>5s}  runs {runs}")


if __name__ == "__main__":
    main()
