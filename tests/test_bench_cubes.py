"""The cube-scene bench (bench/bench_cubes.py) on the first frames of the shared recording:
every packet round-trips through the real codec, entropy coding beats packed, and a bad
--file is a one-line usage error. Skips where ../shared/cubes is not on this machine."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bench_cubes
from netcode.statesync import rangecoder

FILE = bench_cubes.default_file()
needs_recording = pytest.mark.skipif(not FILE.exists(), reason=f"no cube recording at {FILE} (see ../shared/cubes/README.md)")


@needs_recording
def test_the_first_frames_round_trip_and_entropy_coding_is_smaller():
    frames = bench_cubes.load_frames(FILE, 80)
    assert frames.shape == (80, 901, 8)
    packed = bench_cubes.run(frames, True, "packed", False)  # raises unless every packet decodes back
    entropy = bench_cubes.run(frames, True, "entropy", True)
    assert packed["packets"] == entropy["packets"] == 74
    assert entropy["bytes"] < 0.9 * packed["bytes"], (entropy["bytes"], packed["bytes"])
    assert entropy["where"]["update table"] > 0


def test_a_missing_or_malformed_recording_is_a_usage_error(tmp_path):
    bad = tmp_path / "cubes.bin"
    bad.write_bytes(b"\0" * 100)
    for path in (tmp_path / "absent.bin.xz", bad):
        out = subprocess.run([sys.executable, "-m", "bench.bench_cubes", "--file", str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and str(path) in out.stderr


@needs_recording
def test_the_bits_breakdown_accounts_for_the_table():
    """--bits (the coder's source run as Python) charges every decision to a field: the
    charges add up to the table's bytes, give or take the range coder's flush. With the
    compiled coder it is refused, saying how to run it."""
    cmd = [sys.executable, "-m", "bench.bench_cubes", "--frames", "20", "--bits"]
    root = Path(bench_cubes.__file__).resolve().parent.parent
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root, env={**os.environ, "TICKSYNC_PURE": "1"})
    assert out.returncode == 0, out.stderr
    table = float(out.stdout.split("update table")[1].split()[0])
    lines = out.stdout.split("by field and decision")[1].splitlines()[1:]
    charged = {line.rsplit(None, 1)[0].strip(): float(line.rsplit(None, 1)[1]) for line in lines if line.strip()}
    assert {"changed flags", "xy class", "orientation[1-3] class", "z low bits"} <= set(charged)
    assert abs(sum(charged.values()) - table) < 6, (charged, table)
    if rangecoder.compiled:
        env = {k: v for k, v in os.environ.items() if k != "TICKSYNC_PURE"}
        refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root, env=env)
        assert refused.returncode == 2 and "TICKSYNC_PURE=1" in refused.stderr


@needs_recording
def test_tumbling_cubes_round_trip_and_cost_less_with_the_games_turn_and_height_guesses():
    """A busy stretch of the scene (cubes pushed over and rolling): the predictor that
    turns spinning cubes on and the height guessed again from the sent orientation
    decode back exactly and save bytes over the plain physics predictor."""
    frames = bench_cubes.load_frames(FILE, 1520)[1400:]
    plain = bench_cubes.run(frames, True, "entropy", True)
    tumbling = bench_cubes.run(frames, True, "entropy", True, tumbling=True)  # raises unless every packet decodes back
    assert tumbling["bytes"] < 0.985 * plain["bytes"], (tumbling["bytes"], plain["bytes"])


@needs_recording
def test_carried_models_round_trip_and_cost_less_than_learning_each_packet_afresh():
    """``--learn``: each packet's coder starts where its baseline's packet ended. The run
    raises unless every packet decodes back and the receiver's model is the sender's."""
    frames = bench_cubes.load_frames(FILE, 1520)[1400:]
    plain = bench_cubes.run(frames, True, "entropy", True)
    learned = bench_cubes.run(frames, True, "entropy", True, learn=True)
    assert learned["bytes"] < 0.98 * plain["bytes"], (learned["bytes"], plain["bytes"])


@needs_recording
def test_the_instruction_counters_child_run_encodes_and_decodes_its_stretch(tmp_path):
    """What bench.cube_instructions runs under callgrind: it decodes every packet back (and
    exits non-zero on a mismatch), with the checkout in its working directory."""
    import numpy as np

    from bench import cube_instructions

    frames_file = tmp_path / "frames.npy"
    np.save(frames_file, bench_cubes.load_frames(FILE, 30))
    script = Path(cube_instructions.__file__)
    for mode in ("encode", "both"):
        out = subprocess.run([sys.executable, str(script), "--child", str(frames_file), mode, "12", "6"],
                             cwd=Path(bench_cubes.__file__).parent.parent, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr


def test_the_instruction_counter_refuses_too_few_frames():
    from bench import cube_instructions

    with pytest.raises(SystemExit) as exc:
        cube_instructions.main(["--frames", "5"])
    assert exc.value.code == 2


@needs_recording
def test_predicting_from_a_newer_frame_than_the_rules_allow_round_trips_and_is_smaller():
    """--newer (outside the rules, for comparison with entries that read frame i - 1): the
    predictor snapshot it makes moves each cube from the baseline as it moved from i - 7 to
    i - 1, so the packets shrink; they decode with the same snapshot."""
    frames = bench_cubes.load_frames(FILE, 80)
    legal = bench_cubes.run(frames, True, "entropy", True, tumbling=True)
    newer = bench_cubes.run(frames, True, "entropy", True, tumbling=True, newer=True)  # raises unless each decodes back
    assert newer["bytes"] < 0.9 * legal["bytes"], (newer["bytes"], legal["bytes"])


@needs_recording
def test_the_browser_decoder_bench_rebuilds_every_frame_and_times_both_decoders():
    """bench_cubes_web: the browser's decoder (Node.js) rebuilds every frame of a stretch
    from the frames it rebuilt itself, as the page's client does, and the table has a row
    for each decoder; a recording too short for one packet is a one-line usage error."""
    root = Path(bench_cubes.__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "bench.bench_cubes_web", "--frames", "40"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr
    assert "33 packets" in out.stdout and "every frame rebuilt exactly" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith(("browser", "Python"))]
    assert len(rows) == 2, out.stdout
    [float(x) for row in rows for x in row[-3:]]  # each row ends in its p50, p99 and max (numbers, not judged)
    short = subprocess.run([*cmd[:-1], "5"], capture_output=True, text=True, timeout=120, cwd=root)
    assert short.returncode == 2 and short.stderr.count("\n") == 1
