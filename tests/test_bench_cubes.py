"""The cube-scene bench (bench/bench_cubes.py) on the first frames of the shared recording:
every packet round-trips through the real codec, entropy coding beats packed, and a bad
--file is a one-line usage error. Skips where ../shared/cubes is not on this machine."""

import subprocess
import sys

import pytest

from bench import bench_cubes

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
