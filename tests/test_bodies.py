"""engine.bodies.Bodies: the built-in rigid-body predictor, as the cube scene's author sets it
(bench.bench_cubes.cube_bodies): what it expects of resting, sliding, falling, rising,
spinning and tumbled bodies, and how a spec takes it (checked, fingerprinted by its numbers,
its height guess the spec's refine). Its bytes on the recorded scene are test_bench_cubes's;
the browser's twin is checked against it in test_web_bodies."""

import numpy as np
import pytest

from bench import bench_cubes
from engine import Bodies, Int, Replication, SmallestThree

COLUMNS = {"orientation": (0, 4), "xy": (4, 6), "z": (6, 7), "interacting": (7, 8)}


def cube_predictor(tumbling: bool):
    """The scene's Bodies as its spec binds it (to the rotation's scale)."""
    return bench_cubes.cube_replication("entropy", True, tumbling).predictor


def cubes(heights, turns=None):
    """Codes of cubes at these heights (1/512 m), turned about x by ``turns`` radians (none: upright)."""
    angles = np.zeros(len(heights)) if turns is None else np.asarray(turns, float)
    quats = np.stack([np.sin(angles / 2), 0 * angles, 0 * angles, np.cos(angles / 2)], axis=1)
    codes = np.zeros((len(heights), 8), np.int64)
    codes[:, 0:4] = bench_cubes.ROTATION.quantize(quats)
    codes[:, 4:6] = bench_cubes.ZERO
    codes[:, 6] = bench_cubes.ZERO + np.asarray(heights)
    return codes


def test_a_rising_body_is_held_a_falling_one_falls_to_the_floor_and_a_sliding_one_slides():
    """Gravity: a cube rising at the baseline is guessed at its height 6 ticks on; one
    falling keeps falling at its speed, but not through the floor; a resting one rests; one
    sliding keeps its velocity (floor division: a velocity of -1 over 2 ticks is -3 over 6)
    less friction's 7 codes over 6 ticks (0.4 * 6 * 6 / 2, rounded down), so the slow axis stops."""
    older = cubes([150, 300, 120, 102, 102])
    base = cubes([160, 290, 110, 102, 102])
    older[4, 4:6] -= [7, -1]
    got = cube_predictor(False)(base, older, None, 6, 2, COLUMNS)
    assert (got[:, 6] - bench_cubes.ZERO).tolist() == [160, 290 - 30, bench_cubes.FLOOR, 102, 102]
    assert (got[4, 4:6] - base[4, 4:6]).tolist() == [21 - 7, 0]
    rows = np.array([True, True, False, True, True])  # a row outside the mask keeps the baseline's
    assert cube_predictor(False)(base, older, rows, 6, 2, COLUMNS)[2, 6] == base[2, 6]


def test_friction_shortens_a_grounded_bodys_slide_to_a_stop_and_spares_one_aloft_and_the_height():
    """With ``friction`` (codes per tick per tick), a body no higher than ``aloft`` loses
    friction * ahead**2 / 2 codes of travel on each moving axis but the height, stopping
    rather than turning back; one higher flies on as without friction, and heights fall as
    before. The loss grows with the time ahead: a client further behind is told less."""
    spec = Replication(alive="alive", fields=FIELDS, predictor=Bodies(moves=("pos", "z"), height="z", floor=0, aloft=50, friction=0.5))
    bodies, columns = spec.predictor, {"rot": (0, 4), "pos": (4, 5), "z": (5, 6)}
    older = np.zeros((4, 6), np.int64)
    older[:, 5] = [10, 10, 90, 20]  # three on the ground (one falling), one aloft
    base = older.copy()
    base[:, 4] = [30, -1, 30, 30]  # sliding at 30, -1, 30 and 30 codes a tick
    base[3, 5] = 14
    got = bodies(base, older, None, 6, 1, columns)
    assert (got[:, 4] - base[:, 4]).tolist() == [180 - 9, 0, 180, 180 - 9]  # 0.5 * 36 / 2 = 9
    assert got[:, 5].tolist() == [10, 10, 90, 0]  # the falling one: 14 - 6 * 6, not through 0
    assert (bodies(base, older, None, 12, 1, columns)[0, 4] - base[0, 4]) == 360 - 36
    still = Bodies(moves=("pos", "z"), height="z", floor=0, aloft=50)
    assert (Replication(alive="alive", fields=FIELDS, predictor=still).predictor(base, older, None, 6, 1, columns)[:, 4] - base[:, 4]).tolist() == [180, -6, 180, 180]


def test_a_body_off_the_floor_keeps_turning_however_slowly():
    """A cube higher than one on its corner (in flight, or borne on others) turns on for
    all 6 ticks even at a spin the floor's cubes take for jitter; on the floor the same
    slow turn is left as it was, and a faster one is turned on for 4 ticks."""
    slow, fast = 0.01, 0.06  # radians a tick: below and above the floor's spin threshold
    older = cubes([400, 102, 102], [0.2, 0.2, 0.2])
    base = cubes([400, 102, 102], [0.2 + slow, 0.2 + slow, 0.2 + fast])
    got = cube_predictor(True)(base, older, None, 6, 1, COLUMNS)

    def angle(codes):  # about x, as the codes hold it (a 9-bit component is about 0.0055 rad)
        quats = bench_cubes.ROTATION.dequantize(codes[:, 0:4], np.float64)
        return 2 * np.arctan2(quats[:, 0], quats[:, 3])

    turn = angle(base) - angle(older)  # (as quantized: about slow, slow and fast)
    expected = angle(base) + turn * [6, 0, 4]
    assert np.abs(angle(got) - expected).max() < 0.003, (angle(got), expected)
    assert np.array_equal(got[1], base[1])
    assert np.array_equal(got[:, 4:], base[:, 4:])


def test_the_height_guess_stands_a_tumbled_low_body_as_the_recording_rests_them():
    """refine (box): a low cube whose orientation came other than expected stands at the
    measured resting height (lying flat: FLOOR, the recording's flat cubes' code; on an
    edge, higher); a high cube, or one whose orientation came as expected, keeps the
    predictor's height. It is the spec's refine, for the height alone."""
    spec = bench_cubes.cube_replication("entropy", True, True)
    turn = np.pi / 5
    flat = [0, 0, np.sin(turn / 2), np.cos(turn / 2)]  # turned about the vertical: lying flat
    edge = [np.sin(np.pi / 8), 0, 0, np.cos(np.pi / 8)]  # tipped 45 degrees: on an edge
    expected = np.zeros((4, 8), np.int64)
    expected[:, 0:4] = bench_cubes.ROTATION.quantize(np.array([[0, 0, 0, 1.0]] * 4))
    expected[:, 6] = bench_cubes.ZERO + np.array([150, 150, 150, 400])
    known = expected.copy()
    known[:, 0:4] = bench_cubes.ROTATION.quantize(np.array([flat, edge, [0, 0, 0, 1.0], flat]))
    assert spec.refined == ("z",) and spec.refine == spec.predictor.refine
    got = spec.refine(expected, known, COLUMNS)
    assert got[0, 6] == bench_cubes.ZERO + bench_cubes.FLOOR
    assert bench_cubes.ZERO + 140 <= got[1, 6] <= bench_cubes.ZERO + 150  # sqrt(2) half-sizes, measured
    assert got[2, 6] == expected[2, 6] and got[3, 6] == expected[3, 6]
    assert np.array_equal(np.delete(got, 6, axis=1), np.delete(expected, 6, axis=1))


FIELDS = {"rot": SmallestThree(9), "pos": Int(0, 1000), "z": Int(0, 1000), "hp": Int(0, 9)}


def spec(predictor, **options):
    return Replication(alive="alive", fields=FIELDS, coding="entropy", predictor=predictor, **options)


def test_a_spec_checks_its_bodies_and_names_them_by_their_numbers():
    """The fingerprint (the spec's repr) changes with any number of the predictor, so a
    client whose Bodies differ is refused at the handshake rather than decoding wrong."""
    one = spec(Bodies(moves=("pos", "z"), height="z", floor=10, rotation="rot", aloft=50, box=10.0, ground=5))
    assert "Bodies(moves=('pos', 'z'), height='z', floor=10" in repr(one)
    other = spec(Bodies(moves=("pos", "z"), height="z", floor=11, rotation="rot", aloft=50, box=10.0, ground=5))
    assert repr(one) != repr(other)
    assert repr(one) != repr(spec(Bodies(moves=("pos", "z"), height="z", floor=10, rotation="rot", aloft=50, box=10.0, ground=5, friction=0.5)))
    assert one.refined == ("z",)
    assert spec(Bodies(moves=("pos",))).refine is None
    bad = [
        (Bodies(moves=("nope",)), "not a replicated field"),
        (Bodies(moves=("rot",)), "codes its own deltas"),
        (Bodies(moves=("pos",), rotation="hp"), "SmallestThree"),
    ]
    for bodies, why in bad:
        with pytest.raises(ValueError, match=why):
            spec(bodies)
    with pytest.raises(ValueError, match="coding='entropy'"):
        Replication(alive="alive", fields=FIELDS, predictor=Bodies(moves=("z",), height="z", rotation="rot", aloft=5, box=1.0, ground=0))
    with pytest.raises(ValueError, match="no refine"):
        spec(Bodies(moves=("z",), height="z", rotation="rot", aloft=5, box=1.0, ground=0), refine=lambda e, k, c: e, refined=("hp",))


@pytest.mark.parametrize(
    "options, why",
    [
        ({"moves": ()}, "fields that move"),
        ({"moves": ("z", "z")}, "distinct"),
        ({"moves": ("pos",), "height": "z"}, "one of moves"),
        ({"moves": ("pos",), "floor": 3}, "height field"),
        ({"moves": ("z",), "height": "z", "floor": 2.5}, "integer"),
        ({"moves": ("z",), "height": "z", "floor": 1 << 60}, "integer"),
        ({"moves": ("pos",), "spin": 0}, "spin"),
        ({"moves": ("pos",), "turning": (1, 0)}, "turning"),
        ({"moves": ("z",), "height": "z", "box": 3.0}, "needs rotation, aloft and ground"),
        ({"moves": ("pos",), "friction": -0.5}, "friction"),
        ({"moves": ("pos",), "friction": float("nan")}, "friction"),
        ({"moves": ("pos",), "friction": float("inf")}, "friction"),
        ({"moves": ("pos",), "friction": True}, "friction"),
        ({"moves": ("pos",), "friction": "0.4"}, "friction"),
        ({"moves": ("z",), "height": "z", "friction": 0.4}, "but the height"),
        ({"moves": ("z",), "height": "z", "rotation": "rot", "aloft": 5, "ground": 0, "box": -1.0}, "positive"),
    ],
)
def test_bodies_refuse_numbers_that_make_no_predictor(options, why):
    with pytest.raises(ValueError, match=why):
        Bodies(**options)


def test_a_bodies_outside_a_spec_says_what_it_needs():
    """Only a spec knows the rotation's scale: an unbound Bodies that turns says so."""
    bodies = Bodies(moves=("pos",), rotation="rot")
    table = np.zeros((2, 8), np.int64)
    with pytest.raises(ValueError, match="Replication"):
        bodies(table, table, None, 6, 1, {"rot": (0, 4), "pos": (4, 6), "z": (6, 7), "hp": (7, 8)})
