"""The browser client's decoder on the cube scene: can a page keep up with 60 packets a second?

:mod:`bench.bench_cubes` times Python's encode and decode. A browser decodes the same packets
with ``netcode/server/web/`` (``entropy.js``, ``bodies.js``): this bench codes the recording as
bench_cubes does with everything the browser runs (entropy coding, the scene's
:class:`~engine.bodies.Bodies` with ``--predictor tumbling`` (default) or ``physics``, carried
coder models), hands the packets to ``bench/cubes_web_decode.mjs`` under Node.js (the V8 of
Chromium, without a page), which rebuilds every frame from the frames it rebuilt itself as the
page's client does, and prints the microseconds per packet (p50, p99, max) beside Python's.
Every frame is checked against the recording (a checksum of its codes).

Run: ``python -m bench.bench_cubes_web [--file PATH] [--frames N] [--predictor physics|tumbling]``.
Needs ``node`` (Node.js 20+) and the recording; says so when either is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import bench_cubes

DRIVER = Path(__file__).resolve().parent / "cubes_web_decode.mjs"


def checksum(codes: np.ndarray) -> int:
    """What the driver computes of a rebuilt frame: its codes weighted by position."""
    flat = codes.ravel()
    return int(np.dot(flat, np.arange(len(flat)) % 1009 + 1))


def job(frames: np.ndarray, tumbling: bool) -> tuple[dict, list[float]]:
    """The driver's job (the coding, the first frames, every packet and its frame's checksum)
    and Python's decode microseconds per packet, coded as bench_cubes --learn codes them."""
    schema = bench_cubes.SnapshotSchema(bench_cubes.cube_replication("entropy", True, tumbling), bench_cubes.cube_state(frames[0]))
    codes = bench_cubes.quantize_frames(schema, frames)
    view = np.ones(bench_cubes.CUBES, bool)
    gap = bench_cubes.BASELINE_GAP
    first = gap + 1  # (the first packet with a predictor snapshot before its baseline)
    carried, packets, python_us = {}, [], []
    for i in range(first, len(frames)):
        base = i - gap
        start = carried.pop(base, None)
        sent, kept = schema.coding.carried(), schema.coding.carried()
        parts = bench_cubes.encode_frame(schema, codes, view, i, True, None, start, sent, (base - 1, codes[base - 1]))
        t0 = time.perf_counter_ns()
        got = bench_cubes.decode_packet(schema, parts, codes, view, i, base, base - 1, start, kept)
        python_us.append((time.perf_counter_ns() - t0) / 1000)
        if not np.array_equal(got, codes[i]):
            raise AssertionError(f"frame {i} does not round-trip in Python")
        carried[i] = sent
        packets.append({"parts": [p.hex() for p in parts], "sum": checksum(codes[i])})
    out = {"capacity": bench_cubes.CUBES, "columns": schema.columns, "gap": gap, "first": first,
           "coding": schema.coding.describe(), "bodies": schema.coding.bodies_json(),
           "frames": [codes[k].ravel().tolist() for k in range(first)], "packets": packets}
    return out, python_us


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=bench_cubes.default_file(), help="a recording in the scene's format (raw or .xz)")
    ap.add_argument("--frames", type=int, help="only the first N frames")
    ap.add_argument("--predictor", choices=("physics", "tumbling"), default="tumbling", help="the scene's Bodies (see bench_cubes)")
    args = ap.parse_args(argv)
    node = shutil.which("node")
    if node is None:
        print("bench_cubes_web: needs Node.js 20+ (`node` is not on PATH; Debian: apt-get install nodejs)", file=sys.stderr)
        return 2
    try:
        frames = bench_cubes.load_frames(args.file, args.frames)
    except bench_cubes.BenchInputError as exc:
        print(f"bench_cubes_web: {exc}", file=sys.stderr)
        return 2
    if len(frames) < bench_cubes.BASELINE_GAP + 2:
        print(f"bench_cubes_web: {len(frames)} frames, need at least {bench_cubes.BASELINE_GAP + 2}", file=sys.stderr)
        return 2
    work, python_us = job(frames, args.predictor == "tumbling")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(work, f)
        f.flush()
        done = subprocess.run([node, str(DRIVER), f.name], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        print(f"bench_cubes_web: the driver failed:\n{done.stderr}", file=sys.stderr)
        return 1
    result = json.loads(done.stdout)
    if result["wrong"] is not None:
        print(f"bench_cubes_web: the browser's decoder rebuilt frame {result['wrong']} wrong", file=sys.stderr)
        return 1
    sizes = [sum(len(p) // 2 for p in packet["parts"]) for packet in work["packets"]]
    print(f"cube scene {args.file.name}: {len(sizes)} packets, {np.mean(sizes):.1f} B/packet (entropy coding, Bodies {args.predictor},"
          f" carried models); every frame rebuilt exactly by the browser's decoder")
    print(f"{'decoder':<28}{'p50 us':>9}{'p99 us':>9}{'max us':>9}")
    for name, us in (("browser (Node.js, V8)", result["micros"]), ("Python (this install)", python_us)):
        print(f"{name:<28}{np.percentile(us, 50):9.0f}{np.percentile(us, 99):9.0f}{max(us):9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
