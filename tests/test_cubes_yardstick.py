"""bench/cubes_yardstick.py: the plain adaptive coder's costs are right where they can be
worked out by hand, its models carry from the baseline's packet, and on the recording the
project's coder is well ahead of it."""

import numpy as np
import pytest

from bench import bench_cubes, cubes_yardstick

FILE = bench_cubes.default_file()


def _scene(cubes: int, frames: int) -> np.ndarray:
    """Cubes lying still: largest index 3, components at rest, spread along x."""
    scene = np.zeros((frames, cubes, 8), np.int32)
    scene[:, :, 0] = 3
    scene[:, :, 1:4] = 256
    scene[:, :, 4] = np.arange(cubes) * 600
    scene[:, :, 6] = 102
    return scene


def test_with_fresh_models_each_decision_costs_one_bit():
    scene = _scene(1, 7)
    scene[6, 0, 7] = 1  # touched: orientation unchanged, position unchanged, interacting 1
    sizes = cubes_yardstick.plain_coder_bytes(scene)
    assert sizes.tolist() == [3 / 8 + cubes_yardstick.FLUSH]


def test_a_packet_starts_from_where_its_baselines_packet_ended():
    scene = _scene(900, 13)
    sizes = cubes_yardstick.plain_coder_bytes(scene)
    # packets 6..11 each start afresh (no baseline packet) and code the same still scene
    assert np.all(sizes[:6] == sizes[0])
    # packet 12's baseline is frame 6, whose packet learned that nothing changes
    assert sizes[6] < 0.5 * sizes[0], sizes


def test_a_delta_costs_about_a_bit_more_per_doubling_and_a_largest_switch_costs_more():
    def cost(step: int, switch: bool = False) -> float:
        scene = _scene(1, 7)
        scene[6, 0, 4] += step
        if switch:
            scene[6, 0, 0] = 2
        return float(cubes_yardstick.plain_coder_bytes(scene)[0])

    small, large = cost(1), cost(1 << 10)
    # exp-Golomb: 10 more unary class decisions and 10 more bits below the leading one
    assert 8 * (large - small) == pytest.approx(20, abs=2)
    assert cost(0, switch=True) > cost(0) + 27 / 8 * 0.9  # three 9-bit components in full


def test_the_frames_must_be_in_the_scenes_layout():
    with pytest.raises(ValueError, match="cubes, 8"):
        cubes_yardstick.plain_coder_bytes(np.zeros((10, 901, 7), np.int32))


def test_a_missing_recording_is_a_usage_error(tmp_path, capsys):
    assert cubes_yardstick.main(["--file", str(tmp_path / "absent.bin")]) == 2
    assert "absent.bin" in capsys.readouterr().err


@pytest.mark.skipif(not FILE.exists(), reason=f"no cube recording at {FILE} (see ../shared/cubes/README.md)")
def test_on_the_recording_the_projects_coder_is_well_ahead_of_the_plain_one():
    frames = bench_cubes.load_frames(FILE, 80)
    plain = float(cubes_yardstick.plain_coder_bytes(frames).mean())
    ours = bench_cubes.run(frames, True, "entropy", True)
    assert ours["bytes"] < 0.85 * plain, (ours["bytes"], plain)
