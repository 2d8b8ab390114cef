"""bench/cubes_bound.py: the entropy figures it prints are right on distributions whose
entropy is known, and on the recording its floor sits below what the coder spends."""

import numpy as np
import pytest

from bench import bench_cubes, cubes_bound

FILE = bench_cubes.default_file()


def test_entropy_of_known_distributions():
    uniform = np.tile(np.arange(4), 25)
    assert cubes_bound.entropy_bits(uniform) == pytest.approx(200.0)  # 2 bits each
    assert cubes_bound.entropy_bits(np.zeros(50, np.int64)) == 0.0
    assert cubes_bound.entropy_bits(np.array([], np.int64)) == 0.0
    skewed = np.array([0] * 6 + [1] * 2)  # p = 3/4, 1/4
    assert cubes_bound.entropy_bits(skewed) == pytest.approx(-6 * np.log2(0.75) - 2 * np.log2(0.25))


def test_a_context_that_decides_the_value_leaves_nothing_and_an_unrelated_one_changes_nothing():
    values = np.tile(np.arange(4), 24)
    assert cubes_bound.conditional_bits(values, values * 7) == 0.0
    unrelated = np.repeat(np.arange(2), 48)  # each half holds every value equally often
    assert cubes_bound.conditional_bits(values, unrelated) == pytest.approx(cubes_bound.entropy_bits(values))


def test_magnitude_classes_are_bit_lengths_capped_at_nine():
    x = np.array([0, 1, -1, 2, -3, 4, 255, 256, -(1 << 20)])
    assert cubes_bound.magnitude_class(x).tolist() == [0, 1, 1, 2, 2, 3, 8, 9, 9]


@pytest.mark.skipif(not FILE.exists(), reason=f"no cube recording at {FILE} (see ../shared/cubes/README.md)")
def test_on_the_recording_the_floor_is_below_the_coders_table(capsys):
    assert cubes_bound.main(["--frames", "60"]) == 0
    out = capsys.readouterr().out
    floor, table = (float(part.split("B/packet")[0].split()[-1]) for part in out.split("floor with the coder's contexts:")[1].split(";"))
    assert 0 < floor < table


def test_a_missing_recording_is_a_usage_error(tmp_path, capsys):
    assert cubes_bound.main(["--file", str(tmp_path / "absent.bin")]) == 2
    assert "absent.bin" in capsys.readouterr().err
