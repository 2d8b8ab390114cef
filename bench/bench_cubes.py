"""The cube scene: snapshot coding on real physics, by the 2015 snapshot-compression challenge's rules.

``../shared/cubes/cubes-seed1.bin.xz`` (relative to the repository; ``--file PATH`` for
another recording, raw or ``.xz``) is 901 cubes at 60 frames per second, 8 little-endian
int32 per cube: the quaternion's largest index and three smallest components (9 bits
each), position x, y, z (1/512 m) and an "interacting" flag. Its README states the rules:
every frame ``i >= 6`` is encoded against frame ``i - 6`` (the receiver holds every frame
up to that one), the score is the mean packet size, and every packet must decode back to
frame ``i`` exactly.

This bench runs those rules through the project's real snapshot codec as a game author
would use it: a :class:`~engine.replication.Replication` spec over a state with the
cubes' fields, :class:`~netcode.statesync.snapshot.SnapshotSchema` to quantize each frame,
:func:`~netcode.statesync.snapshot.encode_snapshot` against the baseline (with the frame
before the baseline as the predictor, the snapshot a client acked before its baseline),
and :func:`~netcode.statesync.snapshot.decode_part` / ``apply_part`` back, asserting every
packet reproduces its frame. It prints bytes per packet, kbps, the ratio to the
challenge's reference bit packer (421.6 B on seed 1), encode and decode microseconds per
packet (p50 / p99, this thread's CPU time) and where the bytes go.

Run: ``python -m bench.bench_cubes [--file PATH] [--frames N] [--no-predictor]
[--coding packed|entropy] [--predictor linear|physics|tumbling] [--repeat N]`` (defaults: entropy coding
with the bench's physics-aware predictor; ``--coding packed --predictor linear`` is the older
format; ``--repeat N`` makes N passes, 3 by default, and keeps each packet's least time: on
a machine others share, their stalls hit other packets in each pass).
``--model`` also trains the entropy coder's starting model (:mod:`netcode.statesync.training`)
on the recording's first half (or on ``--train PATH``, another recording) and prints the
figures with it, and B/packet over the held-out half with and without it.
``TICKSYNC_PURE=1 python -m bench.bench_cubes --frames 300 --bits`` also says which fields
and which decisions (changed flags, magnitude classes, signs, mantissas) the table's bytes
go to, from the coder's source run as Python (slowly).
"""

from __future__ import annotations

import argparse
import lzma
import math
import sys
import time
from pathlib import Path

import numpy as np

from engine.bodies import Bodies
from engine.quantize import Int, SmallestThree
from engine.replication import Replication
from engine.state import State
from netcode import compiled
from netcode.statesync import rangecoder
from netcode.statesync.snapshot import SnapshotSchema, apply_part, decode_part, encode_snapshot
from netcode.statesync.training import Trainer



def default_file() -> Path:
    """``../shared/cubes/cubes-seed1.bin.xz`` beside the repository, or beside a folder
    above it (a git worktree lives deeper than the main checkout)."""
    repo = Path(__file__).resolve().parent.parent
    for folder in repo.parents:
        candidate = folder / "shared" / "cubes" / "cubes-seed1.bin.xz"
        if candidate.exists():
            return candidate
    return repo.parent / "shared" / "cubes" / "cubes-seed1.bin.xz"


CUBES = 901
INTS = 8
BASELINE_GAP = 6  # the challenge's rule: frame i against frame i - 6
REFERENCE_BYTES = 421.6  # the challenge's reference bit packer on seed 1 (the scene's README)
BUDGET = 1150  # bytes per part, as the state-sync server's


class BenchInputError(Exception):
    """A recording that is missing or not in the scene's format: the user's to fix."""


def load_frames(path: Path, limit: int | None = None) -> np.ndarray:
    """The recording as a (frames, 901, 8) int32 array; ``.xz`` files are decompressed."""
    if not path.exists():
        raise BenchInputError(f"no cube recording at {path} (see ../shared/cubes/README.md, or pass --file)")
    frame = CUBES * INTS * 4
    size = -1 if limit is None else limit * frame  # read no further than asked
    try:
        with (lzma.open(path) if path.suffix == ".xz" else path.open("rb")) as f:
            raw = f.read(size)
    except (OSError, lzma.LZMAError) as exc:
        raise BenchInputError(f"{path}: {exc}") from None
    if len(raw) % frame:
        raise BenchInputError(f"{path}: {len(raw)} bytes is not a whole number of {frame}-byte frames")
    return np.frombuffer(raw, "<i4").reshape(-1, CUBES, INTS)


class RecordedRotation(SmallestThree):
    """The recording's orientations are already smallest-three codes (largest index, three
    9-bit components): state and codes are the same integers, and changes are coded as
    :class:`~engine.quantize.SmallestThree` codes them (against the rebased baseline)."""

    def quantize(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, np.int64).reshape(-1, 4)

    def dequantize(self, codes: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return codes.astype(dtype)


def cube_replication(coding: str = "packed", physics: bool = False, tumbling: bool = False, model: bytes | None = None) -> Replication:
    """The cubes' fields as a game author declares them: the orientation as smallest
    three, x, y the position and z its height as integers in their ranges, and the
    interacting flag. With entropy coding every field is in one group: a cube that moves
    turns and is touched at once (one flag a cube measured smaller than a flag for the
    orientation, one for the position and one for the interacting flag). ``physics``: the
    engine's rigid-body predictor as :func:`cube_bodies` sets it (``tumbling``: turning
    spinning cubes on and, entropy-coded, guessing heights again from the sent
    orientation: fewer bytes, more CPU). ``model``: the entropy coder's trained starting
    model (see :func:`train_model`)."""
    options = {}
    if coding == "entropy":
        options = {"coding": "entropy", "groups": (("orientation", "xy", "z", "interacting"),), "model": model}
    if physics:
        options["predictor"] = cube_bodies(tumbling, coding == "entropy")
    return Replication(
        alive="alive",
        fields={
            "orientation": RecordedRotation(9),
            "xy": Int(-(1 << 20), (1 << 20) - 1),
            "z": Int(-(1 << 20), (1 << 20) - 1),
            "interacting": Int(0, 1),
        },
        position="xy",
        continuous=("z",),
        **options,
    )


FLOOR = 102  # the small cubes' resting height (z of a cube lying on the ground)
ZERO = 1 << 20  # the code of height (and x, y) 0: the fields' Int quantizers start at -2**20
ROTATION = SmallestThree(9)  # the recording's rotation codes (bench-side turns, --newer)
SPINNING = 0.9999  # a turn whose quaternion's w is below this spins (above: the codes' jitter)
HALF = 102.4  # a small cube's half-size (0.2 m in 1/512 m): the height of its centre lying flat
REACH = 200  # above this a cube's centre is off the floor (on a corner it is HALF * sqrt(3) up)
# How the recording's cubes stand, measured: a resting cube's centre sits about a code
# below its geometric height lying flat (the physics' contact slop; 101.9 on average,
# and -1 was the commonest height residual, not 0) and reaches a little further per unit
# of uprightness (a fit over the tumbled cubes that landed: -1.9 + 104.0 per unit).
SINK = 1  # codes a resting cube sits below its geometric height
STANDING = 102.9  # codes of height per unit of uprightness (HALF, geometrically)
FRICTION = 0.4  # codes per tick per tick a sliding cube slows by (measured: cube_bodies)


def cube_bodies(tumbling: bool = False, entropy: bool = True) -> Bodies:
    """The scene's predictor as its author sets the engine's :class:`~engine.bodies.Bodies`
    (every client runs it, browsers too), with what each number measured on seed 1:

    * resting cubes stay where they are; sliding cubes keep their velocity (taking a tenth
      off measured worse), less ``friction``: a constant deceleration of 0.4 codes per
      tick per tick, each axis's travel 7 codes shorter over 6 ticks (about 2.7 m/s/s,
      a friction coefficient near 0.3): 358.6 -> 357.9 B/packet, tumbling with --learn
      328.3 -> 327.7 (0.3 and 0.5: 0.3 and 0.1 less; applied along the velocity, or
      stopping as a decelerated body would, v**2 / 2a: no better);
    * ``floor``: a falling cube keeps falling at its speed, but not through the floor (a
      clamp that compared the floor with the offset codes, so never held until fixed:
      349.0 -> 348.7 B/packet with the tumbling options); a rising one stays at its height
      (the best share of a rising cube's velocity is 0-1 of 6 ticks, a falling one's 5-6;
      pulling every moving cube down by gravity measured 2.6 B/packet worse; holding risers:
      345.3 -> 344.7, --learn 328.7 -> 328.3; falling at 0.6, 0.8, 1.2 of its speed: 0.3,
      0.15 worse, 0.04 better; pulled a further 29 codes down, gravity over 6 ticks: no better);

    and with ``tumbling``:

    * ``rotation``, ``spin``, ``turning``: a cube that turned by more than the codes' jitter
      keeps turning for two thirds of the time ahead (4 of 6 ticks): 359.3 -> 355.5 B/packet
      (3, 5 and 6 turns: 355.7, 355.6, 356.1). Turning every cube that changed at all
      measured worse (jitter extrapolated is noise doubled), as did laying slow cubes near
      the floor face-down and rolling cubes by their travel;
    * ``aloft``: a cube off the floor (higher than one on its corner) turns on for all the
      time ahead at any spin: 346.1 -> 344.7, --learn 329.9 -> 328.3 (from 170, 250 or 300
      codes up: no better; only its turns above the jitter: 0.25 worse);
    * ``box``, ``ground`` (entropy coding): a low cube whose orientation did not come as
      expected (a tumble) stands as high as its lowest corner lets it: 355.5 -> 349.0
      B/packet; with the measured standing (``SINK``, ``STANDING``) rather than the
      geometric ``HALF``, 348.7 -> 346.7 (no sink and 101.9 per unit: 347.1; the fit's own
      2 and 104.0: 348.5; REACH 150-260: no better)."""
    if not tumbling:
        return Bodies(moves=("xy", "z"), height="z", floor=ZERO + FLOOR, friction=FRICTION)
    return Bodies(moves=("xy", "z"), height="z", floor=ZERO + FLOOR, rotation="orientation", spin=SPINNING, turning=(2, 3),
                  aloft=ZERO + REACH, box=STANDING if entropy else None, ground=ZERO - SINK, friction=FRICTION)


def cube_state(frame: np.ndarray) -> State:
    return State(
        {
            "alive": np.ones(CUBES, bool),
            "orientation": frame[:, 0:4].copy(),
            "xy": frame[:, 4:6].copy(),
            "z": frame[:, 6].copy(),
            "interacting": frame[:, 7].copy(),
        }
    )


def quantize_frames(schema: SnapshotSchema, frames: np.ndarray) -> np.ndarray:
    """Every frame's codes through the schema, as the server quantizes its state."""
    state = cube_state(frames[0])
    out = np.empty((len(frames), CUBES, schema.columns), np.int64)
    for i, frame in enumerate(frames):
        state.orientation[:] = frame[:, 0:4]
        state.xy[:] = frame[:, 4:6]
        state.z[:] = frame[:, 6]
        state.interacting[:] = frame[:, 7]
        out[i] = schema.quantize(state)[0]
    return out


def clock() -> int:
    """This thread's CPU time in ns: on a shared machine, wall time would count the time
    other processes held the core; the encode and decode figures are the work done."""
    return time.thread_time_ns()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


class BitCounter:
    """Where an entropy-coded table's bits go, by field and by kind of decision: wraps the
    range coder's Encoder while the source runs as plain Python (``TICKSYNC_PURE=1``; the
    compiled coder's methods are C and cannot be wrapped) and charges each decision
    -log2 of the probability it was coded with (each even-odds bit one bit)."""

    def __init__(self, schema: SnapshotSchema):
        if rangecoder.compiled:
            raise BenchInputError("--bits needs the coder's source run as Python: set TICKSYNC_PURE=1")
        coding = schema.coding
        self.groups, self.sets = coding.groups, coding.table_sets
        set_of = np.empty(schema.columns, np.int64)
        set_of[coding.order] = coding.table_fields
        self.names: dict[int, str] = {}  # context set -> the field (and components) using it
        for name, (c0, c1) in coding.columns_of.items():
            for k in np.unique(set_of[c0:c1]):
                parts = np.flatnonzero(set_of[c0:c1] == k)
                whole = len(parts) == c1 - c0
                self.names[int(k)] = name if whole else f"{name}[{parts[0]}{'' if len(parts) == 1 else f'-{parts[-1]}'}]"
        self.bits: dict[str, float] = {}
        self.on = False
        self.field = ""
        counter, encoder = self, rangecoder.Encoder
        bit, even = encoder.bit, encoder.even

        def counted_bit(enc, ctx, b):
            if counter.on:
                p = enc.p[ctx] / (1 << 12)
                kind, which = rangecoder.context_kind(ctx, counter.groups, counter.sets)
                counter.field = "" if kind == "changed" else counter.names[which]
                key = "changed flags" if kind == "changed" else f"{counter.field} {kind}"
                counter.bits[key] = counter.bits.get(key, 0.0) - math.log2(p if b == 0 else 1.0 - p)
            bit(enc, ctx, b)

        def counted_even(enc, b):  # the low bits of the value whose top bits came just before
            if counter.on:
                key = f"{counter.field} low bits"
                counter.bits[key] = counter.bits.get(key, 0.0) + 1.0
            even(enc, b)

        encoder.bit, encoder.even = counted_bit, counted_even


def _turn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The quaternion products ``a b`` of (x, y, z, w) rows."""
    ax, ay, az, aw = a.T
    bx, by, bz, bw = b.T
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], axis=1)


def newer_older(codes: np.ndarray, i: int) -> tuple[int, np.ndarray]:
    """Outside the challenge's rules, for comparison: a predictor snapshot for frame ``i``
    that reads frame ``i - 1``, as a public entry's predictor does (its velocities come from
    the previous packet's pair of frames). It is set ``BASELINE_GAP`` ticks before the
    baseline such that the motion from it to the baseline is the recording's motion from
    frame ``i - 7`` to ``i - 1``: positions by that difference, orientations turned back
    by that turn. The tick and the codes."""
    base = i - BASELINE_GAP
    out = codes[base - 1].copy()
    out[:, 4:7] = codes[base, :, 4:7] - (codes[i - 1, :, 4:7] - codes[i - 7, :, 4:7])
    q = [ROTATION.dequantize(codes[k, :, 0:4], np.float64) for k in (i - 7, i - 1, base)]
    # the baseline turned back by the turn from i - 7 to i - 1 (its conjugate, the inverse)
    turned = _turn(_turn(q[0], q[1] * np.array([-1.0, -1.0, -1.0, 1.0])), q[2])
    turned /= np.linalg.norm(turned, axis=1, keepdims=True)
    still = np.all(codes[i - 1, :, 0:4] == codes[i - 7, :, 0:4], axis=1)
    out[:, 0:4] = np.where(still[:, None], codes[base, :, 0:4], ROTATION.quantize(turned))
    return base - BASELINE_GAP, out


def older_snapshot(codes: np.ndarray, i: int, use_predictor: bool, newer: bool = False) -> tuple[int, np.ndarray] | None:
    """The snapshot frame ``i``'s packet is predicted from (its tick and codes): by the
    rules the frame before the baseline, the newest one the receiver holds but the
    baseline (``use_predictor``); with ``newer``, :func:`newer_older`'s."""
    base = i - BASELINE_GAP
    if not use_predictor or base < 1:
        return None
    if newer:
        return newer_older(codes, i)
    return base - 1, codes[base - 1]


def encode_frame(schema: SnapshotSchema, codes: np.ndarray, view: np.ndarray, i: int, use_predictor: bool, stats: dict | None = None,
                 start=None, end=None, older: tuple[int, np.ndarray] | None = None) -> list[bytes]:
    """Frame ``i``'s packet by the challenge's rules: against the frame BASELINE_GAP
    before it, with the frame before that as the predictor snapshot (``use_predictor``;
    ``older``: another predictor snapshot, its tick and codes); ``start``, ``end``:
    carried coder models (``encode_snapshot``'s)."""
    base = i - BASELINE_GAP
    if older is None:
        older = older_snapshot(codes, i, use_predictor)
    predictor = None if older is None else (older[0], older[1], view, schema.smooth)
    return encode_snapshot(
        i, codes[i], view, b"", budget=BUDGET, base_tick=base, base_codes=codes[base],
        base_view=view, base_extras=b"", predictor=predictor, stats=stats, coding=schema.coding, start=start, end=end,
    )


def train_model(frames: np.ndarray, use_predictor: bool = True, physics: bool = False, tumbling: bool = False, layout: int = 0) -> bytes:
    """The entropy coder's starting model (:mod:`netcode.statesync.training`) learned from
    encoding ``frames`` (a recording, or the part of one the figures do not score) by
    the challenge's rules, as a game would train on its own recordings; its bytes."""
    schema = SnapshotSchema(cube_replication("entropy", physics, tumbling), cube_state(frames[0]))
    codes = quantize_frames(schema, frames)
    view = np.ones(CUBES, bool)
    trainer = Trainer(schema, layout)
    with trainer:
        for i in range(BASELINE_GAP, len(frames)):
            encode_frame(schema, codes, view, i, use_predictor)
    return trainer.model().to_bytes()


def decode_packet(schema: SnapshotSchema, parts: list[bytes], codes: np.ndarray, view: np.ndarray, i: int, base: int, pred: int | None,
                  start=None, end=None, pred_codes: np.ndarray | None = None) -> np.ndarray:
    """Frame ``i``'s codes as a client gets them: from the baseline (moved on by the
    predictor, frame ``pred``'s codes or ``pred_codes``) with each part applied."""
    older = None if pred is None else codes[pred] if pred_codes is None else pred_codes
    got = codes[base] if pred is None else schema.predict(codes[base], view, older, view, i, base, pred)
    motion = schema.motion(codes[base], view, *(() if pred is None else (older, view)))
    got, got_view = got.copy(), view.copy()
    for p in parts:
        part = decode_part(p, schema.capacity, schema.columns, schema.extras_size, schema.coding)
        apply_part(part, got, got_view, schema.coding, motion, start, end)
    return got


def _timed_pass(schema: SnapshotSchema, codes: np.ndarray, view: np.ndarray, use_predictor: bool, learn: bool, newer: bool,
                counter: "BitCounter | None", sizes: list | None, stats: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """Encode and decode every packet once, checking each; the encode and decode
    microseconds per packet. ``sizes`` (a list) gains each packet's bytes, and with
    ``stats`` (a dict) each packet is encoded again, untimed, for where its bytes go
    (and ``counter``'s bits)."""
    enc_us, dec_us = [], []
    carried = {}  # learn: the model each frame's packet left, as the receiver keeps it
    for i in range(BASELINE_GAP, len(codes)):
        base = i - BASELINE_GAP
        older = older_snapshot(codes, i, use_predictor, newer and i >= 2 * BASELINE_GAP)  # (its tick is not before 0)
        pred = None if older is None else older[0]
        start = carried.pop(base, None)
        sent, kept = (schema.coding.carried(), schema.coding.carried()) if learn else (None, None)
        t0 = clock()
        parts = encode_frame(schema, codes, view, i, use_predictor, None, start, sent, older)
        t1 = clock()
        got = decode_packet(schema, parts, codes, view, i, base, pred, start, kept, None if older is None else older[1])
        t2 = clock()
        if not np.array_equal(got, codes[i]):
            bad = np.flatnonzero((got != codes[i]).any(axis=1))
            raise AssertionError(f"frame {i} does not round-trip: cubes {bad[:10].tolist()} differ")
        if learn:
            if not (np.array_equal(sent[0], kept[0]) and np.array_equal(sent[1], kept[1])):
                raise AssertionError(f"frame {i}: the receiver's carried model is not the sender's")
            carried[i] = kept
        enc_us.append((t1 - t0) / 1000)
        dec_us.append((t2 - t1) / 1000)
        if sizes is not None:
            sizes.append(sum(len(p) for p in parts))
        if stats is not None:  # where the bytes go: counted on a second encode, outside the timing
            if counter is not None:
                counter.on = True
            encode_frame(schema, codes, view, i, use_predictor, stats, start, schema.coding.carried() if learn else None, older)
            if counter is not None:
                counter.on = False
    return np.array(enc_us), np.array(dec_us)


def run(frames: np.ndarray, use_predictor: bool = True, coding: str = "packed", physics: bool = False, bits: bool = False, repeat: int = 1,
        tumbling: bool = False, model: bytes | None = None, learn: bool = False, newer: bool = False) -> dict:
    """Encode every frame from the sixth on by the challenge's rules, decode each packet
    on its own from its baseline (and predictor), and check it; the figures. ``bits``:
    also where the entropy-coded table's bits go (see :class:`BitCounter`). ``repeat``:
    that many passes over the recording, each packet's least time kept (the work itself,
    less what other processes on a shared machine took from it: their stalls last tenths
    of a second, so times taken back to back share them, and passes apart do not).
    ``model``: the entropy coder's trained starting model (bytes). ``learn``: each
    packet's coder starts from the model its baseline's packet ended in, as the receiver
    decoded it (the rules say it holds every frame up to the baseline; see
    ``SnapshotCoding.carried``). ``newer``: predict from frames up to ``i - 1``
    (:func:`newer_older`), which the rules forbid."""
    schema = SnapshotSchema(cube_replication(coding, physics, tumbling, model), cube_state(frames[0]))
    counter = BitCounter(schema) if bits else None
    codes = quantize_frames(schema, frames)
    # The quantized codes must hold the recording exactly, or the round trip proves nothing.
    state = cube_state(frames[0])
    for i in (0, len(frames) - 1):
        schema.apply(state, codes[i], np.ones(CUBES, bool), None)
        if not (np.array_equal(state.xy, frames[i][:, 4:6]) and np.array_equal(state.orientation, frames[i][:, 0:4])):
            raise BenchInputError(f"frame {i} is outside the fields' ranges")
    view = np.ones(CUBES, bool)
    sizes, stats = [], {}
    enc_us = dec_us = None
    for one in range(repeat):  # whole passes: a stall of the machine's hits each in other packets
        enc, dec = _timed_pass(schema, codes, view, use_predictor, learn, newer, counter if one == 0 else None,
                               sizes if one == 0 else None, stats if one == 0 else None)
        enc_us = enc if enc_us is None else np.minimum(enc_us, enc)
        dec_us = dec if dec_us is None else np.minimum(dec_us, dec)
    enc_us, dec_us = enc_us.tolist(), dec_us.tolist()
    packets = len(sizes)
    mean = sum(sizes) / packets
    return {
        "packets": packets,
        "sizes": sizes,
        "bytes": mean,
        "kbps": mean * 60 * 8 / 1000,
        "ratio": mean / REFERENCE_BYTES,
        "max_bytes": max(sizes),
        "encode_p50": pct(enc_us, 50),
        "encode_p99": pct(enc_us, 99),
        "decode_p50": pct(dec_us, 50),
        "decode_p99": pct(dec_us, 99),
        "where": {k: v / packets for k, v in sorted(stats.items(), key=lambda kv: -kv[1])},
        "bits": None if counter is None else {k: v / 8 / packets for k, v in sorted(counter.bits.items(), key=lambda kv: -kv[1])},
    }


def report(res: dict, path: Path, args) -> None:
    predictor = "no predictor" if args.no_predictor else f"{args.predictor} predictor from the frame before the baseline"
    if getattr(args, "newer", False) and not args.no_predictor:
        predictor = f"{args.predictor} predictor with its motion from frames i - 7 to i - 1 (--newer: outside the rules, which allow up to i - 6)"
    print(f"cube scene {path.name}: {res['packets']} packets, each frame against the frame {BASELINE_GAP} before;"
          f" {args.coding} coding, {predictor}" + ("; each packet's coder starts where its baseline's ended (--learn)" if args.learn else ""))
    for module in ("netcode.statesync.bitpack", "netcode.statesync.rangecoder"):
        print(f"  {module}: {compiled.statuses.get(module, '?')}")
    print(f"  {res['bytes']:.1f} B/packet ({res['kbps']:.1f} kbps), {res['ratio']:.3f}x the reference"
          f" {REFERENCE_BYTES} B; largest packet {res['max_bytes']} B; every packet round-trips exactly")
    least = f" (each packet's least of {args.repeat} passes)" if args.repeat > 1 else ""
    print(f"  CPU per packet{least}: encode {res['encode_p50']:.0f} us p50, {res['encode_p99']:.0f} us p99;"
          f" decode {res['decode_p50']:.0f} us p50, {res['decode_p99']:.0f} us p99")
    print("  where the bytes go (B/packet):")
    for name, b in res["where"].items():
        print(f"    {name:<22} {b:8.1f}")
    if res["bits"] is not None:
        print("  the update table's bytes, by field and decision (B/packet; a part cut for its budget adds what was coded before the cut):")
        for name, b in res["bits"].items():
            print(f"    {name:<26} {b:8.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=None, help="a recording in the scene's format (raw or .xz)")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    ap.add_argument("--no-predictor", action="store_true", help="code against the baseline alone")
    ap.add_argument("--coding", choices=("packed", "entropy"), default="entropy", help="the spec's snapshot coding")
    ap.add_argument("--predictor", choices=("linear", "physics", "tumbling"), default="physics",
                    help="the default linear predictor, the game's, or the game's turning spinning cubes on and guessing heights again from the sent orientation")
    ap.add_argument("--repeat", type=int, default=3, help="N passes, each packet's least time kept (default 3: a shared machine's stalls hit other packets in each)")
    ap.add_argument("--bits", action="store_true", help="where the table's bits go, by field (entropy coding; TICKSYNC_PURE=1, slow)")
    ap.add_argument("--model", action="store_true",
                    help="also start the entropy coder from a model trained on the recording's first half (or on --train): B/packet over the held-out half with and without it")
    ap.add_argument("--layout", type=int, choices=(0, 1), default=0, help="with --model: the model's context layout (1: richer contexts)")
    ap.add_argument("--train", type=Path, default=None, help="with --model: train on this recording instead (all its frames)")
    ap.add_argument("--learn", action="store_true",
                    help="each packet's entropy coder starts from the model its baseline's packet ended in (carried models), not afresh")
    ap.add_argument("--newer", action="store_true",
                    help="outside the rules, for comparison: predict with the motion from frame i - 7 to i - 1, as a public entry's predictor reads")
    args = ap.parse_args(argv)
    args.file = args.file or default_file()
    if args.bits:
        args.repeat = 1  # (its pass is the coder's source run as Python: slow, and not the figure)
    try:
        frames = load_frames(args.file, args.frames)
        if len(frames) <= BASELINE_GAP:
            raise BenchInputError(f"{args.file}: {len(frames)} frames, need more than {BASELINE_GAP}")
        compiled.load("netcode.statesync.bitpack")
        compiled.load("netcode.statesync.rangecoder")
        if args.bits and args.coding != "entropy":
            raise BenchInputError("--bits breaks down entropy-coded tables: use --coding entropy")
        if args.model and args.coding != "entropy":
            raise BenchInputError("--model trains the entropy coder: use --coding entropy")
        if args.learn and args.coding != "entropy":
            raise BenchInputError("--learn carries the entropy coder's model: use --coding entropy")
        if args.train and not args.model:
            raise BenchInputError("--train names what --model trains on: add --model")
        options = (not args.no_predictor, args.coding, args.predictor != "linear", args.bits, max(args.repeat, 1), args.predictor == "tumbling")
        if args.newer and args.no_predictor:
            raise BenchInputError("--newer changes what the predictor reads: drop --no-predictor")
        res = run(frames, *options, learn=args.learn, newer=args.newer)
        if args.model:
            training = load_frames(args.train) if args.train else frames[: len(frames) // 2]
            if len(training) <= BASELINE_GAP:
                raise BenchInputError(f"{len(training)} frames to train on, need more than {BASELINE_GAP}")
            t0 = time.perf_counter()
            model = train_model(training, not args.no_predictor, args.predictor != "linear", args.predictor == "tumbling", args.layout)
            trained_s = time.perf_counter() - t0
            with_model = run(frames, *options, model=model, learn=args.learn, newer=args.newer)
    except BenchInputError as exc:
        print(f"bench_cubes: {exc}", file=sys.stderr)
        return 2
    report(res, args.file, args)
    if args.model:
        # Scored on frames the model never saw: the second half (the packets of frames
        # from len // 2 on), unless it was trained on another recording (then all).
        held = 0 if args.train else max(len(frames) // 2 - BASELINE_GAP, 0)
        source = f"{args.train.name} ({len(training)} frames)" if args.train else f"frames 0..{len(training) - 1} of this recording"
        print(f"with a coder model (context layout {args.layout}) trained on {source} in {trained_s:.1f} s ({len(model)} B):")
        report(with_model, args.file, args)
        plain, trained = np.mean(res["sizes"][held:]), np.mean(with_model["sizes"][held:])
        print(f"  held-out packets ({len(res['sizes']) - held}, frames {held + BASELINE_GAP}..{len(frames) - 1}): {plain:.1f} B/packet without the model,"
              f" {trained:.1f} B/packet with it ({trained / plain:.3f}x)")  # (the reference's 421.6 B is the whole file's, not a half's)
    return 0


if __name__ == "__main__":
    sys.exit(main())
