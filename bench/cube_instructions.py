"""Instructions per cube-scene packet, counted by callgrind: a CPU figure with no noise.

This machine's wall clock drifts 15-40% between runs, which hides a change of a few
percent. Valgrind's callgrind counts the instructions a run executes instead, and with
Python's hashing seeded and numpy's BLAS threads off the count repeats to within tens of
instructions. This script runs the cube scene's encode (and encode plus decode) of
``--frames`` packets starting at each ``--first`` frame under callgrind, once with
``--frames`` packets and once with 5, so that start-up (imports, loading, the first
packet) cancels, and prints instructions per packet. Decode is the second count less the
first. Given several checkouts (each built in place, as for ``compare_checkouts``), it
runs the same packets in each and prints each one's ratio to the first::

    .venv/bin/python -m bench.cube_instructions                     # this checkout
    .venv/bin/python -m bench.cube_instructions /tmp/before .        # before -> after

Frame 300 is a typical packet (about 300 B); 1416 starts the scene's busiest stretch
(about 1000 B). Instructions are not time: numpy's vectorized loops and ``memcpy`` count
several times what they cost, the coder's branches less. Use it to compare two versions
of the same code, and the wall clock of ``bench.bench_cubes --repeat 5`` for the figure.
Needs ``valgrind`` (Debian's package) and the cube recording; says so when either is missing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_COLLECTED = re.compile(r"Collected : (\d+)")
_SHORT = 5  # packets of the run whose count is subtracted
_CONTEXT = 8  # frames before the first packet it needs (its baseline and predictor, and one warm-up)


def _child(frames_file: str, mode: str, first: int, count: int, tumbling: bool = False) -> None:
    """Encode (and with ``mode`` "both", decode) ``count`` packets from frame ``first``
    with the checkout in the current directory, with the physics predictor or
    (``tumbling``) the tumbling one: what callgrind counts."""
    sys.path.insert(0, os.getcwd())  # the checkout measured, not this file's
    from bench import bench_cubes as bc  # noqa: PLC0415 (the checkout's own)
    from netcode.statesync.snapshot import SnapshotSchema  # noqa: PLC0415

    frames = np.array(np.load(frames_file, mmap_mode="r")[first - _CONTEXT : first + count])
    schema = SnapshotSchema(bc.cube_replication("entropy", True, tumbling), bc.cube_state(frames[0]))
    codes = bc.quantize_frames(schema, frames)
    view = np.ones(bc.CUBES, bool)
    bc.encode_frame(schema, codes, view, _CONTEXT, True)  # the first packet warms caches in both runs
    packets = {i: bc.encode_frame(schema, codes, view, i, True) for i in range(_CONTEXT, _CONTEXT + count)}
    if mode == "both":
        for i, parts in packets.items():
            got = bc.decode_packet(schema, parts, codes, view, i, i - bc.BASELINE_GAP, i - bc.BASELINE_GAP - 1)
            if not np.array_equal(got, codes[i]):
                raise SystemExit(f"frame {first + i - _CONTEXT} does not round-trip")


def _count(checkout: Path, frames_file: str, mode: str, first: int, count: int, tumbling: bool) -> int:
    """Instructions callgrind counted for one child run."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(Path(__file__).resolve()),
           "--child", frames_file, mode, str(first), str(count)] + (["tumbling"] if tumbling else [])
    run = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    found = _COLLECTED.search(run.stderr)
    if run.returncode or not found:
        raise SystemExit(f"{checkout}: the callgrind run failed ({run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return int(found.group(1))


def per_packet(checkout: Path, frames_file: str, first: int, count: int, tumbling: bool = False) -> dict:
    """Instructions per packet of encoding and of decoding ``count`` packets from ``first``."""
    enc = _count(checkout, frames_file, "encode", first, count, tumbling) - _count(checkout, frames_file, "encode", first, _SHORT, tumbling)
    both = _count(checkout, frames_file, "both", first, count, tumbling) - _count(checkout, frames_file, "both", first, _SHORT, tumbling)
    return {"encode": enc / (count - _SHORT), "decode": (both - enc) / (count - _SHORT)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5:] == ["tumbling"])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="*", type=Path, help="checkouts to compare, each built in place (default: this one)")
    ap.add_argument("--file", type=Path, help="a recording in the scene's format (default: ../shared/cubes/cubes-seed1.bin.xz)")
    ap.add_argument("--first", type=int, nargs="+", default=[300, 1416], help="first packet's frame of each stretch")
    ap.add_argument("--frames", type=int, default=30, help=f"packets per stretch (more than {_SHORT})")
    ap.add_argument("--predictor", choices=("physics", "tumbling"), default="physics", help="the game's predictor (bench_cubes')")
    args = ap.parse_args(argv)
    if args.frames <= _SHORT:
        ap.error(f"--frames must be more than {_SHORT}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): no instruction counts")
        return 2
    from bench.bench_cubes import BenchInputError, default_file, load_frames  # noqa: PLC0415

    try:
        frames = load_frames(args.file or default_file())
    except BenchInputError as exc:
        print(f"skipped: {exc}")
        return 2
    for first in args.first:
        if not _CONTEXT <= first <= len(frames) - args.frames:
            ap.error(f"--first {first}: the recording has {len(frames)} frames, and a stretch needs {_CONTEXT} before it")
    checkouts = args.checkouts or [Path(__file__).resolve().parent.parent]
    with tempfile.TemporaryDirectory() as tmp:
        frames_file = str(Path(tmp) / "frames.npy")
        np.save(frames_file, frames)  # children map it: decompressing under valgrind takes minutes
        table = {c: {first: per_packet(c.resolve(), frames_file, first, args.frames, args.predictor == "tumbling") for first in args.first} for c in checkouts}
    print(f"instructions per packet (callgrind, {args.predictor} predictor; {args.frames} packets less {_SHORT}, from each first frame)")
    print(f"{'checkout':40s} {'first':>6s} {'encode':>12s} {'decode':>12s}")
    base = table[checkouts[0]]
    for c in checkouts:
        for first in args.first:
            row = table[c][first]
            ratios = "" if c is checkouts[0] else "  " + "  ".join(f"{row[k] / base[first][k]:.3f}x" for k in ("encode", "decode"))
            print(f"{str(c)[-40:]:40s} {first:6d} {row['encode']:12,.0f} {row['decode']:12,.0f}{ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
