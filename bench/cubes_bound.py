"""How close the cube scene's coder is to the entropy of what it codes.

The range coder (:mod:`netcode.statesync.rangecoder`) can only save what its contexts
know. This script takes the same residuals it codes (each frame against the frame 6
before, moved on by the bench's predictor, as :mod:`bench.bench_cubes` runs them) and
prints, per field, their empirical entropy over the whole recording: with no context,
given each value's activity (how far it moved between the two snapshots the receiver
predicts from), and given that and the largest activity in the row's field, which is
what the coder's contexts see. It also prints what conditioning on the size of the row's
other residuals (the classes of its position and height) would be worth, as if those
were coded first: one order of the fields can have only some of it.

It then says where those bits go by what the cubes were doing (at rest or moving at the
baseline; lying on a face, tipping up, landing or leaning), how many bits a value that
is not zero takes, and how much smaller the residuals would have to be for a target
packet size (``--target``, default 211 B, the issue's half of the reference): each
halving of a residual saves about a bit.

These are static, whole-recording figures: a coder that knew the histograms in advance
and paid nothing to learn them would reach them, and with many sparse contexts they read
lower than any real coder (each value seen once costs nothing here). So they are a floor
for this predictor and these contexts, not a target. When the table's bytes sit close to
the floor, bytes have to come from prediction (smaller residuals), not from the coder.

Run: ``python -m bench.cubes_bound [--file PATH] [--frames N] [--predictor physics|tumbling] [--target B]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench import bench_cubes
from netcode.statesync.snapshot import SnapshotSchema, encode_snapshot


def entropy_bits(values: np.ndarray) -> float:
    """The total bits of ``values`` coded by their own histogram (order-0, static)."""
    if not len(values):
        return 0.0
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def conditional_bits(values: np.ndarray, context: np.ndarray) -> float:
    """The total bits of ``values`` coded by one histogram per ``context`` value."""
    return float(value_bits(values, context).sum()) if len(values) else 0.0


def value_bits(values: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Each value's code length in bits under one static histogram per ``context`` value
    (:func:`conditional_bits` totals them), to attribute a table's cost to its rows."""
    values, context = np.asarray(values, np.int64), np.asarray(context, np.int64)
    low = values.min(initial=0)
    pair_keys = context * (values.max(initial=0) - low + 1) + (values - low)  # one int per (context, value)
    _, pair, pairs = np.unique(pair_keys, return_inverse=True, return_counts=True)
    _, ctx, ctxs = np.unique(context, return_inverse=True, return_counts=True)
    return -np.log2(pairs[pair.ravel()] / ctxs[ctx.ravel()])


def magnitude_class(x: np.ndarray) -> np.ndarray:
    """The bit length of ``|x|`` (at most 9), as the coder's classes count magnitude."""
    return np.minimum(np.ceil(np.log2(np.abs(x) + 1)), 9).astype(np.int64)


def tilt(rotation_codes: np.ndarray) -> np.ndarray:
    """Per row of smallest-three codes (rows, 4), how far the cube leans, in radians:
    the angle between the vertical and its most vertical axis (0 lying on a face, 0.79
    on an edge, 0.96 on a corner)."""
    x, y, z, w = bench_cubes.ROTATION.dequantize(rotation_codes, np.float64).T
    # the z (vertical) components of the cube's three axes: the rotation matrix's third row
    up = np.abs(np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)])).max(axis=0)
    return np.arccos(np.clip(up, -1.0, 1.0))


def residuals(frames: np.ndarray, tumbling: bool) -> tuple:
    """Per packet (frame i >= 7 against i - 6, predicted from i - 7): the coded deltas and
    motion codes (packets, rows, columns), the schema, the real bytes per packet of each
    piece (``encode_snapshot``'s stats: "update table", "header"), and each
    cube's tilt (:func:`tilt`) at the baseline and in the frame (packets, 2, rows)."""
    schema = SnapshotSchema(bench_cubes.cube_replication("entropy", True, tumbling), bench_cubes.cube_state(frames[0]))
    codes = bench_cubes.quantize_frames(schema, frames)
    view = np.ones(bench_cubes.CUBES, bool)
    coding = schema.coding
    deltas, motion, stats, tilts = [], [], {}, []
    r0 = coding.columns_of["orientation"][0]
    for i in range(bench_cubes.BASELINE_GAP + 1, len(frames)):
        base = i - bench_cubes.BASELINE_GAP
        pred = base - 1
        expected = schema.predict(codes[base], view, codes[pred], view, i, base, pred)
        deltas.append(coding.deltas(expected, codes[i]))
        tilts.append((tilt(codes[base][:, r0 : r0 + 4]), tilt(codes[i][:, r0 : r0 + 4])))
        motion.append(schema.motion(codes[base], view, codes[pred], view))
        encode_snapshot(
            i, codes[i], view, b"", budget=bench_cubes.BUDGET, base_tick=base, base_codes=codes[base], base_view=view,
            base_extras=b"", predictor=(pred, codes[pred], view, schema.smooth), stats=stats, coding=coding,
        )
    packets = len(deltas)
    spent = {k: v / packets for k, v in stats.items()}
    return np.stack(deltas), np.stack(motion), schema, spent, np.array(tilts)


def bounds(deltas: np.ndarray, motion: np.ndarray, columns_of: dict) -> dict:
    """Bytes per packet, by field and by what it is conditioned on (see the module's doc)."""
    packets = len(deltas)
    changed = (deltas != 0).any(axis=2)
    top = motion.max(axis=2) // 3  # a row's largest activity: the changed flag's context
    out = {"changed rows": changed.sum() / packets, "flags": conditional_bits(changed.ravel().astype(np.int64), top.ravel()) / packets / 8}
    classes = {name: magnitude_class(np.abs(deltas[:, :, c0:c1]).max(axis=2))[changed] for name, (c0, c1) in columns_of.items()}
    for name, (c0, c1) in columns_of.items():
        x = deltas[:, :, c0:c1][changed]
        act = motion[:, :, c0:c1][changed] // 3
        most = np.repeat(act.max(axis=1, keepdims=True), c1 - c0, axis=1)
        seen = act * 8 + most
        row = {
            "no context": entropy_bits(x.ravel()),
            "activity": conditional_bits(x.ravel(), act.ravel()),
            "activity, row's most": conditional_bits(x.ravel(), seen.ravel()),
        }
        others = [k for k in ("xy", "z") if k in classes and k != name]
        if others:
            by = sum(classes[k] * 10**j for j, k in enumerate(others))
            row["also " + " and ".join(others) + " classes"] = conditional_bits(x.ravel(), (seen * 100 + by[:, None]).ravel())
        out[name] = {k: v / packets / 8 for k, v in row.items()}
    return out


FLAT = 0.01  # radians: a cube leaning less lies on a face (the codes' jitter is about 0.005)


def by_state(deltas: np.ndarray, motion: np.ndarray, tilts: np.ndarray, columns_of: dict) -> dict:
    """Where the values' bits go (each value's code length under the coder's contexts, as
    in :func:`bounds`, summed per row), by what the cube was doing: at rest at the baseline
    or moving, and, by its tilt at the baseline and in the frame, lying on a face at both
    (sliding, spinning), tipping up, landing, or leaning at both (tumbling, piled,
    pushed). Per state: its share of the bits and its changed rows per packet. Also the
    values' bits per packet and how many values were not zero."""
    packets = len(deltas)
    changed = (deltas != 0).any(axis=2)
    row_bits = np.zeros(changed.sum())
    for c0, c1 in columns_of.values():
        x = deltas[:, :, c0:c1][changed]
        act = motion[:, :, c0:c1][changed] // 3
        seen = act * 8 + act.max(axis=1, keepdims=True)
        row_bits += value_bits(x.ravel(), seen.ravel()).reshape(x.shape).sum(axis=1)
    total = row_bits.sum()
    moving = (motion // 3 > 0).any(axis=2)[changed]
    lean_base, lean_now = tilts[:, 0][changed] >= FLAT, tilts[:, 1][changed] >= FLAT
    states = {
        "at rest at the baseline": ~moving,
        "moving at the baseline": moving,
        "on a face at both ends": ~lean_base & ~lean_now,
        "tipping up": ~lean_base & lean_now,
        "landing": lean_base & ~lean_now,
        "leaning at both ends": lean_base & lean_now,
    }
    return {
        "states": {name: (row_bits[m].sum() / total, m.sum() / packets) for name, m in states.items()},
        "value bytes": total / packets / 8,
        "nonzero values": np.count_nonzero(deltas) / packets,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=None, help="a recording in the scene's format (raw or .xz)")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    ap.add_argument("--predictor", choices=("physics", "tumbling"), default="physics")
    ap.add_argument("--target", type=float, default=211.0, help="B/packet to say what the prediction would need (the issue's 0.5x)")
    args = ap.parse_args(argv)
    path = args.file or bench_cubes.default_file()
    try:
        frames = bench_cubes.load_frames(path, args.frames)
        if len(frames) <= bench_cubes.BASELINE_GAP + 1:
            raise bench_cubes.BenchInputError(f"{path}: {len(frames)} frames, need more than {bench_cubes.BASELINE_GAP + 1}")
    except bench_cubes.BenchInputError as exc:
        print(f"cubes_bound: {exc}", file=sys.stderr)
        return 2
    deltas, motion, schema, spent, tilts = residuals(frames, args.predictor == "tumbling")
    table = spent.get("update table", 0.0)
    res = bounds(deltas, motion, schema.coding.columns_of)
    print(f"cube scene {path.name}: {len(deltas)} packets, {args.predictor} predictor; {res['changed rows']:.1f} changed rows per packet")
    print("  static entropy of the coded residuals, B/packet (a floor for this predictor, see the doc):")
    floor = res["flags"]
    print(f"    {'changed flags':<14} {res['flags']:7.1f}   (given the row's largest activity)")
    for name in schema.coding.columns_of:
        row = res[name]
        floor += row["activity, row's most"]
        print(f"    {name:<14} " + ";  ".join(f"{k} {v:.1f}" for k, v in row.items()))
    print(f"  floor with the coder's contexts: {floor:.1f} B/packet; the coder's update table: {table:.1f} B/packet")
    where = by_state(deltas, motion, tilts, schema.coding.columns_of)
    print("  where the values' bits go, by what the cube was doing (tilt: its most vertical axis off the vertical):")
    for name, (share, rows) in where["states"].items():
        print(f"    {name:<26} {100 * share:5.1f}%   {rows:5.1f} changed rows/packet")
    # Each halving of a residual saves about a bit: what a target asks of the prediction.
    nonzero, cut = where["nonzero values"], table + spent.get("header", 0.0) - args.target
    print(f"  {where['value bytes']:.1f} B/packet of values, {nonzero:.0f} values not zero: {8 * where['value bytes'] / nonzero:.1f} bits each")
    if cut > 0:
        bits = 8 * cut / nonzero
        print(f"  {args.target:g} B/packet needs {bits:.1f} bits fewer per such value: residuals about {2 ** bits:.1f}x smaller")
    return 0


if __name__ == "__main__":
    sys.exit(main())
