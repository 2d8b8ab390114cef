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


def test_value_bits_are_each_values_share_of_its_contexts_total():
    values = np.array([0, 0, 0, 1, 5, 5, 7, 7])
    context = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    bits = cubes_bound.value_bits(values, context)
    # context 0: three 0s and a 1 (p 3/4, 1/4); context 1: two 5s, two 7s (1 bit each)
    assert bits == pytest.approx([-np.log2(0.75)] * 3 + [2.0] + [1.0] * 4)
    assert bits.sum() == pytest.approx(cubes_bound.conditional_bits(values, context))


def _codes(quaternions):
    return bench_cubes.ROTATION.quantize(np.array(quaternions, np.float64))


def test_tilt_is_how_far_the_most_vertical_axis_leans():
    half, third = np.sqrt(0.5), np.arccos(1 / np.sqrt(3))
    yaw = [0, 0, np.sin(0.3), np.cos(0.3)]  # turned about the vertical: still on a face
    edge = [np.sin(np.pi / 8), 0, 0, np.cos(np.pi / 8)]  # 45 degrees about x: on an edge
    axis = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)  # x and y axes' diagonal up: on a corner
    corner = [*(axis * np.sin(third / 2)), np.cos(third / 2)]
    lean = cubes_bound.tilt(_codes([[0, 0, 0, 1], yaw, edge, corner, [half, 0, 0, half]]))
    assert lean == pytest.approx([0, 0, np.pi / 4, third, 0], abs=0.01)  # a quarter turn lies flat again


def test_by_state_attributes_each_rows_bits_to_what_its_cube_did():
    cols = {"a": (0, 1)}
    # 2 packets of 3 cubes; deltas in column a, motion (activity * 3 + direction) per cube
    deltas = np.array([[[4], [0], [1]], [[4], [2], [0]]])
    motion = np.array([[[0], [0], [4]], [[0], [4], [0]]])
    flat, leaning = 0.0, 0.5
    tilts = np.array([[[flat, flat, leaning], [flat, leaning, leaning]], [[flat, leaning, flat], [leaning, leaning, flat]]])
    res = cubes_bound.by_state(deltas, motion, tilts, cols)
    states = res["states"]
    # rows that changed: cube 0 twice (at rest, on a face then tipping up), cube 2 (moving,
    # leaning at both ends), cube 1 (moving, leaning at both ends)
    assert states["at rest at the baseline"][1] == 1.0 and states["moving at the baseline"][1] == 1.0
    assert states["on a face at both ends"][1] == 0.5 and states["tipping up"][1] == 0.5
    assert states["leaning at both ends"][1] == 1.0 and states["landing"][1] == 0.0
    # the at-rest context holds two 4s (no bits); the moving one a 1 and a 2 (a bit each)
    assert states["at rest at the baseline"][0] == 0.0 and states["moving at the baseline"][0] == 1.0
    assert res["value bytes"] == pytest.approx(2 / 2 / 8) and res["nonzero values"] == 2.0


def test_magnitude_classes_are_bit_lengths_capped_at_nine():
    x = np.array([0, 1, -1, 2, -3, 4, 255, 256, -(1 << 20)])
    assert cubes_bound.magnitude_class(x).tolist() == [0, 1, 1, 2, 2, 3, 8, 9, 9]


@pytest.mark.skipif(not FILE.exists(), reason=f"no cube recording at {FILE} (see ../shared/cubes/README.md)")
def test_on_the_recording_the_floor_is_below_the_coders_table(capsys):
    assert cubes_bound.main(["--frames", "60"]) == 0
    out = capsys.readouterr().out
    floor, table = (float(part.split("B/packet")[0].split()[-1]) for part in out.split("floor with the coder's contexts:")[1].split(";"))
    assert 0 < floor < table
    shares = {line.split("%")[0].rsplit(None, 1)[0].strip(): float(line.split("%")[0].split()[-1])
              for line in out.splitlines() if "changed rows/packet" in line}
    # Where the recording's bits go (the unit test above checks how rows are split): cubes
    # moving at the baseline cost most, more than the resting ones, and leaning cubes most
    # of those (about 91% and 75% over the whole recording).
    assert shares["moving at the baseline"] > 2 * shares["at rest at the baseline"]
    assert shares["leaning at both ends"] > shares["on a face at both ends"] + shares["tipping up"] + shares["landing"], shares
    # What 211 B asks: fewer bits per value than each costs now (a cut that exceeded them
    # would mean the bytes and bits were mixed up), and more than none (60 frames of the
    # scene's start, the player pushing through the field, cost far above 211 B).
    each = float(out.split("values not zero:")[1].split("bits each")[0])
    needed = float(out.split("211 B/packet needs")[1].split("bits fewer")[0])
    assert 0 < needed < each, (needed, each)


def test_a_missing_recording_is_a_usage_error(tmp_path, capsys):
    assert cubes_bound.main(["--file", str(tmp_path / "absent.bin")]) == 2
    assert "absent.bin" in capsys.readouterr().err
