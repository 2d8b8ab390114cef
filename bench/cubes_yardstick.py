"""A yardstick for the cube scene: what a plain adaptive coder makes of this recording.

The issue's target for the cube scene is a ratio to the challenge's reference bit packer
(0.5x of 421.6 B on seed 1). That packer predicts positions with gravity and drag, so how
far below it a coder can go depends on how much of the recording that prediction already
explains, and this recording is not the challenge's data. This script measures the scene
with a yardstick that predicts nothing, the kind of entry published on the original data
as "an adaptive arithmetic coder, 445 B (0.84x the reference)":

* per cube, a bit for "orientation changed"; if so the largest index (a 2-bit tree), then
  the three components as signed deltas from the baseline's when the largest index is the
  same, or as 9-bit trees when it switched;
* a bit for "position changed"; if so x, y and z as signed deltas (x and y share a model);
* the interacting flag, in the context of the baseline's;
* every decision is a binary event with an adaptive probability (12 bits, each event moves
  it 1/32 of the way), signed deltas binarized as exp-Golomb (magnitude class in unary, the
  top four bits below the leading one modelled, the rest even, then the sign);
* each packet's models start where its baseline's packet ended (both ends hold it).

It sums each decision's ideal code length (``-log2 p``) and adds the 4 bytes a 32-bit
arithmetic coder flushes. So it is an estimate of that coder within a byte per packet, not
a coder: nothing here is sent.

It prints the yardstick's B/packet and its ratio to the reference, and the published
ratios carried over: on the original data the best entry made 281.4 B, 0.632x of the plain
coder's 445 B, so a coder as far ahead of the yardstick here would make 0.632x of what this
prints. That is a target stated against a baseline measured on this recording, which the
reference's ratio is not.

Run: ``python -m bench.cubes_yardstick [--file PATH] [--frames N]`` (pure Python: about a
minute for the whole recording).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from bench import bench_cubes

# Published on the challenge's original data (../shared/cubes/README.md), bytes per packet.
ORIGINAL_REFERENCE = 531.95
ORIGINAL_PLAIN = 445.0  # an adaptive arithmetic coder, no prediction
ORIGINAL_BEST = 281.4  # the best entry
FLUSH = 4  # bytes a 32-bit arithmetic coder writes to finish a packet

_BITS = 12
_ONE = 1 << _BITS
_SHIFT = 5  # each event moves a probability 1/32 of the way
_TOP_BITS = 4  # bits below a delta's leading one that get a model; the rest are even
# The ideal cost in bits of an event of probability p / _ONE, for every p a model can hold.
_COST = [0.0] + [-math.log2(p / _ONE) for p in range(1, _ONE)]

# Model slots (one list of probabilities per packet): fixed bits, then each signed-delta
# model's magnitude classes, top bits and sign, then the trees.
_ORIENTATION_CHANGED, _POSITION_CHANGED, _INTERACTING = 0, 1, 2  # interacting: 2 slots
_CLASSES = 34
_DELTA = _CLASSES + (1 << _TOP_BITS) + 1  # slots per signed-delta model
_ORIENTATION_DELTA, _XY_DELTA, _Z_DELTA = 4, 4 + _DELTA, 4 + 2 * _DELTA
_LARGEST_TREE = 4 + 3 * _DELTA  # 3 nodes
_VALUE_TREE = _LARGEST_TREE + 3  # 511 nodes
_SLOTS = _VALUE_TREE + 511


class _Model:
    """One packet's probabilities (of a 1, in 1/_ONE) and the bits its decisions cost."""

    def __init__(self, probs: list[int] | None = None) -> None:
        self.p = list(probs) if probs is not None else [_ONE // 2] * _SLOTS
        self.bits = 0.0

    def bit(self, slot: int, b: int) -> None:
        p = self.p[slot]
        if b:
            self.bits += _COST[p]
            self.p[slot] = p + ((_ONE - p) >> _SHIFT)
        else:
            self.bits += _COST[_ONE - p]
            self.p[slot] = p - (p >> _SHIFT)

    def tree(self, base: int, value: int, width: int) -> None:
        node = 1
        for k in range(width - 1, -1, -1):
            b = (value >> k) & 1
            self.bit(base + node - 1, b)
            node = 2 * node + b

    def delta(self, base: int, v: int) -> None:
        x = abs(v) + 1  # exp-Golomb codes 1.. : the class of x is its bit length - 1
        cls = x.bit_length() - 1
        for k in range(cls):
            self.bit(base + k, 1)
        self.bit(base + cls, 0)
        node = 1
        for k in range(cls - 1, -1, -1):
            b = (x >> k) & 1
            if node < (1 << _TOP_BITS):
                self.bit(base + _CLASSES + node - 1, b)
                node = 2 * node + b
            else:
                self.bits += 1.0
        if v:
            self.bit(base + _CLASSES + (1 << _TOP_BITS), 1 if v < 0 else 0)


def _code(model: _Model, frame: list, baseline: list) -> None:
    for cube, ref in zip(frame, baseline):
        if cube[0:4] != ref[0:4]:
            model.bit(_ORIENTATION_CHANGED, 1)
            model.tree(_LARGEST_TREE, cube[0], 2)
            if cube[0] == ref[0]:
                for j in (1, 2, 3):
                    model.delta(_ORIENTATION_DELTA, cube[j] - ref[j])
            else:
                for j in (1, 2, 3):
                    model.tree(_VALUE_TREE, cube[j], 9)
        else:
            model.bit(_ORIENTATION_CHANGED, 0)
        if cube[4:7] != ref[4:7]:
            model.bit(_POSITION_CHANGED, 1)
            model.delta(_XY_DELTA, cube[4] - ref[4])
            model.delta(_XY_DELTA, cube[5] - ref[5])
            model.delta(_Z_DELTA, cube[6] - ref[6])
        else:
            model.bit(_POSITION_CHANGED, 0)
        model.bit(_INTERACTING + (1 if ref[7] else 0), 1 if cube[7] else 0)


def plain_coder_bytes(frames: np.ndarray, gap: int = bench_cubes.BASELINE_GAP) -> np.ndarray:
    """The yardstick's estimated bytes for each packet of ``frames`` ((n, cubes, 8) ints in
    the scene's layout): frame ``i >= gap`` against frame ``i - gap``, each packet's models
    starting where its baseline's ended (the first ``gap`` packets start afresh)."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[2] != bench_cubes.INTS:
        raise ValueError(f"frames of shape (n, cubes, {bench_cubes.INTS}), not {frames.shape}")
    rows = frames.tolist()
    ended: dict[int, list[int]] = {}
    out = []
    for i in range(gap, len(rows)):
        model = _Model(ended.pop(i - gap, None))
        _code(model, rows[i], rows[i - gap])
        ended[i] = model.p
        out.append(model.bits / 8 + FLUSH)
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=None, help="a recording in the scene's format (raw or .xz)")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    args = ap.parse_args(argv)
    path = args.file or bench_cubes.default_file()
    try:
        frames = bench_cubes.load_frames(path, args.frames)
        if len(frames) <= bench_cubes.BASELINE_GAP:
            raise bench_cubes.BenchInputError(f"{path}: {len(frames)} frames, need more than {bench_cubes.BASELINE_GAP}")
    except bench_cubes.BenchInputError as exc:
        print(f"cubes_yardstick: {exc}", file=sys.stderr)
        return 2
    sizes = plain_coder_bytes(frames)
    plain = float(sizes.mean())
    best = ORIGINAL_BEST / ORIGINAL_PLAIN
    print(f"cube scene {path.name}: {len(sizes)} packets, each frame against the frame {bench_cubes.BASELINE_GAP} before")
    print(f"  plain adaptive coder (no prediction, models carried): {plain:.1f} B/packet, "
          f"{plain / bench_cubes.REFERENCE_BYTES:.3f}x the reference {bench_cubes.REFERENCE_BYTES} B")
    print(f"  on the original data the same kind of coder made {ORIGINAL_PLAIN:.0f} B, "
          f"{ORIGINAL_PLAIN / ORIGINAL_REFERENCE:.3f}x its reference {ORIGINAL_REFERENCE} B")
    print(f"  the best entry there made {ORIGINAL_BEST} B: {ORIGINAL_BEST / ORIGINAL_REFERENCE:.3f}x the reference, "
          f"{best:.3f}x the plain coder")
    print(f"  as far ahead of the plain coder here: {best * plain:.1f} B/packet "
          f"({best * plain / bench_cubes.REFERENCE_BYTES:.3f}x this recording's reference); "
          f"the issue's 0.5x is {bench_cubes.REFERENCE_BYTES / 2:.1f} B, {bench_cubes.REFERENCE_BYTES / 2 / plain:.3f}x the plain coder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
