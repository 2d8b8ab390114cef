"""The browser's moving bodies (netcode/server/web/bodies.js) against the Python they twin:
engine.motion.extrapolated, engine.smallest_three.turned and standing. A predictor's guess
is what both ends code against, so every code must be the same: compared exactly, on random
tables, spinning rotations, hostile codes and parameters, and the real cube recording.

The browser holds codes as doubles (Float64Array): inputs are made of values a double holds
exactly, and results beyond 2**53 compare as the double nearest Python's integer (all a
Float64Array can hold; below 2**53, which every quantizer's codes are, exactly)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench import bench_cubes
from engine import motion, smallest_three
from netcode.statesync.snapshot import encode_snapshot
from engine.quantize import SmallestThree
from test_web_client import js

NONE = -(1 << 63)  # Python's "no floor"; the browser's is null
ROTATION = SmallestThree(9)
SCALE = ROTATION.scale
COLUMNS = 8  # the tables' width: a rotation's 4 codes, then position and more
FINE = (1 << 50) - 1  # a rotation scale whose codes show a float step's last bits


def exact(a) -> np.ndarray:
    """Codes as the browser holds them: each the double nearest it (int64)."""
    return np.asarray(a, np.float64).astype(np.int64)


def same(js_table, py_table) -> None:
    """A browser table equals Python's, code for code (as doubles: exact below 2**53)."""
    got = np.array(js_table, np.float64)
    want = np.asarray(py_table, np.int64).ravel().astype(np.float64)
    assert got.shape == want.shape
    wrong = np.flatnonzero(got != want)
    assert not len(wrong), f"{len(wrong)} codes differ, first at {wrong[0]}: browser {got[wrong[0]]!r}, Python {want[wrong[0]]!r}"


def low_for_js(low):
    if low is None or isinstance(low, int):
        return None if low == NONE else low
    return [None if x == NONE else x for x in low]


def extrapolated_case(base, older, c0, c1, num, den, rows=None, low=None, out=None, slow=None, aloft=None):
    """(the unit.mjs op, Python's (moved, out)) for one extrapolated() call."""
    start = (base if out is None else out).copy()
    py_out = start.copy()
    moved = motion.extrapolated(base, older, c0, c1, num, den, py_out, rows, low, slow, aloft)
    op = {
        "op": "extrapolated", "base": base.ravel().tolist(), "older": older.ravel().tolist(), "columns": base.shape[1],
        "c0": c0, "c1": c1, "num": num, "den": den, "out": start.ravel().tolist(),
        "rows": None if rows is None else rows.astype(int).tolist(), "low": low_for_js(low), "slow": slow,
        "aloft": None if aloft is None else list(aloft),
    }
    return op, (moved, py_out)


def turned_case(base, older, col, turns, still, rows=None, out=None, scale=SCALE, aloft=None):
    start = (base if out is None else out).copy()
    py_out = start.copy()
    moved = smallest_three.turned(base, older, col, turns, still, scale, py_out, rows, aloft)
    op = {
        "op": "turned", "base": base.ravel().tolist(), "older": older.ravel().tolist(), "columns": base.shape[1], "col": col,
        "turns": turns, "still": still, "scale": scale, "out": start.ravel().tolist(),
        "rows": None if rows is None else rows.astype(int).tolist(), "aloft": None if aloft is None else list(aloft),
    }
    return op, (moved, py_out)


def standing_case(expected, known, rot, z, below, half, ground, out=None, scale=SCALE):
    start = (expected if out is None else out).copy()
    py_out = start.copy()
    smallest_three.standing(expected[:, rot:rot + 4], known[:, rot:rot + 4], expected[:, z], below, half, ground, scale, py_out[:, z])
    op = {
        "op": "standing", "expected": expected.ravel().tolist(), "known": known.ravel().tolist(), "columns": expected.shape[1],
        "rot": rot, "z": z, "below": below, "half": half, "ground": ground, "scale": scale, "out": start.ravel().tolist(),
    }
    return op, py_out


def check_moves(cases) -> None:
    """Run (op, (moved, out)) cases through the browser in one go; each must equal Python's."""
    results = js(*(op for op, _ in cases))
    for (op, (moved, out)), got in zip(cases, results):
        assert "range_error" not in got, got
        assert got["moved"] == moved, op["op"]
        same(got["out"], out)


def spins(rng, n: int, angles, scale: int = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """(older, base): n random rotations' codes, and theirs turned by a random axis through
    an angle drawn from ``angles`` (radians), as a body spun between two snapshots. At a
    fine ``scale`` (2**50) the codes show a float step's last bits: a step taken in another
    order than Python's changes codes there (at 9 bits, only at a rounding's very edge)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    half = rng.choice(angles, n) / 2
    turn = np.column_stack([axis * np.sin(half)[:, None], np.cos(half)])  # x y z w
    codes = lambda q: smallest_three.to_codes(q, np.argmax(np.abs(q), axis=1), scale)  # noqa: E731
    return codes(q), codes(_product(turn, q))


def _product(a, b):
    ax, ay, az, aw = a.T
    bx, by, bz, bw = b.T
    return np.column_stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz])


def tables(rng, n: int, rotations) -> tuple[np.ndarray, np.ndarray]:
    """(older, base) tables of n rows: ``rotations`` (older, base codes) in columns 0..3,
    positions moving at rest, small, large and negative velocities in 4..6, a flag in 7."""
    older_rot, base_rot = rotations
    base = np.zeros((n, COLUMNS), np.int64)
    base[:, 0:4] = base_rot
    base[:, 4:7] = rng.integers(-(1 << 20), 1 << 20, (n, 3)) + (1 << 20)
    base[:, 7] = rng.integers(0, 2, n)
    speed = rng.choice([0, 0, 0, 3, 40, 5000, 1 << 30], (n, 1))  # most rest
    velocity = rng.integers(-1, 2, (n, 3)) * rng.integers(0, speed + 1, (n, 3))
    velocity[rng.random(n) < 0.2, 1:] = 0  # some move in one column only
    older = base.copy()
    older[:, 0:4] = older_rot
    older[:, 4:7] -= velocity
    older[:, 7] ^= rng.random(n) < 0.1
    return older, base


# -- extrapolated ---------------------------------------------------------------------------


def test_extrapolated_matches_python_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    older, base = tables(rng, 500, spins(rng, 500, [0.0, 0.1]))
    mask = rng.random(500) < 0.7
    floor = int(base[:, 6].min()) + 3000  # some rows start below it
    cases = []
    for num, den in [(6, 1), (4, 1), (2, 3), (1, 7), (-3, 2), (0, 5), (5, 6), ([6, 6, 4], [1, 1, 3])]:
        for rows in (None, mask):
            for low in (None, (NONE, NONE, floor), floor):
                cases.append(extrapolated_case(base, older, 4, 7, num, den, rows, low))
    cases.append(extrapolated_case(base, older, 0, COLUMNS, 6, 1))  # every column, rotation codes too
    cases.append(extrapolated_case(base, older, 5, 5, 6, 1))  # no columns: nothing moves
    # into a table other than the baseline: rows and columns not moved are left as they were
    cases.append(extrapolated_case(base, older, 4, 7, 2, 3, mask, (NONE, NONE, floor), out=rng.integers(-9, 9, base.shape)))
    # friction: steps shortened towards zero, stopping there, per column (none on the height)
    # (above a height in a column, rows slide free)
    for slow in (7, [3, 40, 0], [1 << 62, 0, 5000]):
        cases.append(extrapolated_case(base, older, 4, 7, 6, 1, mask, (NONE, NONE, floor), slow=slow))
        cases.append(extrapolated_case(base, older, 4, 7, -3, 2, None, None, slow=slow))
        cases.append(extrapolated_case(base, older, 4, 7, 6, 1, mask, (NONE, NONE, floor), slow=slow, aloft=(6, int(np.median(base[:, 6])))))
        cases.append(extrapolated_case(base, older, 4, 6, 2, 3, None, None, slow=slow[:2] if isinstance(slow, list) else slow, aloft=(7, 0)))
    assert any(moved for _, (moved, _) in cases)
    check_moves(cases)


def test_extrapolated_matches_python_on_hostile_codes(seed):
    rng = np.random.default_rng(seed)
    n = 400
    big = 2.0 ** rng.integers(40, 63, (n, 3))  # 2**40 .. 2**62: beyond a double's exact integers
    base = exact(rng.uniform(-1, 1, (n, 3)) * big)
    older = exact(base - rng.uniform(-1, 1, (n, 3)) * 2.0 ** rng.integers(0, 62, (n, 3)))  # |older| < 2**63
    near = [2 ** 61, -(2 ** 61), 2 ** 61 + 2 ** 9, -(2 ** 61) - 2 ** 9, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 62, -(2 ** 62),
            (1 << 63) - (1 << 10), -(1 << 63), 0, 1, -1]
    edges = np.array(near, np.int64)
    base[:50] = rng.choice(edges, (50, 3))  # around the guard (2**61) and a double's edge (2**53)
    older[:50] = rng.choice(edges, (50, 3))
    older[50:60] = exact(base[50:60] - 2.0 ** 52)  # velocities about 2**52..2**53: steps far past 2**53
    base[60:70] = rng.integers(-1000, 1000, (10, 3))  # small codes...
    older[60:70] = exact(base[60:70] - 2.0 ** rng.integers(50, 63, (10, 3)))  # ...with huge velocities
    base = np.column_stack([base, rng.integers(0, 3, n)])
    older = np.column_stack([older, base[:, 3]])
    cases = []
    for num, den in [(6, 1), (2, 3), (1, 1), (2 ** 62, 1), (-(2 ** 62), 3), (2 ** 40 + 3, 2 ** 62), (2 ** 61 + 2 ** 10, 7),
                     (3, 2 ** 53 + 2), (2 ** 53 - 1, 2 ** 52 + 1), ([1, 2 ** 30, -(2 ** 50)], [1, 3, 2 ** 40])]:
        for low in (None, (NONE, -(2 ** 60), 2 ** 55), -(1 << 62)):
            cases.append(extrapolated_case(base, older, 0, 3, num, den, None, low))
        for slow in (3, [2 ** 62, 2 ** 53 + 2, 2 ** 40 + 1]):  # friction past a double's integers (JSON carries doubles), and at its bound
            cases.append(extrapolated_case(base, older, 0, 3, num, den, None, None, slow=slow))
    check_moves(cases)


def test_extrapolated_rejects_parameters_as_python_does():
    base = np.array([[5, 6], [1, 1]], np.int64)
    older = np.array([[1, 6], [1, 2]], np.int64)
    bad = [(6, 0, None), (6, -1, None), (2 ** 62 + 2 ** 11, 1, None), (-(2 ** 62) - 2 ** 11, 1, None), (6, 2 ** 62 + 2 ** 11, None),
           ([6], 1, None), (6, [1, 1, 1], None), (0.5, 1, None), (6, 1, 1.5), (6, 1, [0, 2 ** 63])]
    bad = [(num, den, low, None, None) for num, den, low in bad] + [(6, 1, None, slow, None) for slow in (-1, 2 ** 62 + 2 ** 11, 0.5, [1, 2, 3])]
    bad += [(6, 1, None, 3, aloft) for aloft in ([2, 0], [-1, 0], [0, 2 ** 63], [0], [0.5, 1])]
    ops = []
    for num, den, low, slow, aloft in bad:
        with pytest.raises(ValueError):
            motion.extrapolated(base, older, 0, 2, num, den, base.copy(), None, low, slow, aloft)
        ops.append({"op": "extrapolated", "base": base.ravel().tolist(), "older": older.ravel().tolist(), "columns": 2, "c0": 0, "c1": 2,
                    "num": num, "den": den, "low": low, "slow": slow, "aloft": aloft})
    # no columns: only whether each is an integer is checked (Python checks ranges of w > 0 values)
    with pytest.raises(ValueError):
        motion.extrapolated(base, older, 1, 1, 0.5, 1, base.copy())
    ops.append({"op": "extrapolated", "base": base.ravel().tolist(), "older": older.ravel().tolist(), "columns": 2, "c0": 1, "c1": 1,
                "num": 0.5, "den": 1})
    for got in js(*ops):
        assert "range_error" in got, got
    check_moves([extrapolated_case(base, older, 1, 1, 6, 0)])
    # and the bounds themselves are taken, as Python takes them
    check_moves([extrapolated_case(base, older, 0, 2, 2 ** 62, 2 ** 62, None, [-(2 ** 63), 2 ** 63 - 2 ** 10])])


# -- turned ---------------------------------------------------------------------------------


def test_turned_matches_python_on_spinning_rotations(seed):
    rng = np.random.default_rng(seed)
    n = 600
    # turns from none through the codes' jitter and the 0.9999 threshold (w = cos(angle / 2):
    # about 0.028 rad) to fast spins and half turns and more (w < 0: the short way round)
    angles = [0.0, 0.005, 0.02, 0.027, 0.0283, 0.029, 0.035, 0.1, 0.5, 1.5, 3.0, 3.1, 4.0, 6.0]
    older, base = tables(rng, n, spins(rng, n, angles))
    mask = rng.random(n) < 0.6
    cases = []
    for turns in (1, 2, 3, 4, 5, 6, 64, 65, 1000, 0, -3):
        for still in (0.9999, 2.0, 0.99995, 0.5):
            cases.append(turned_case(base, older, 0, turns, still, mask if turns % 2 else None))
    # a table whose rotation sits elsewhere, written into a table other than the baseline
    shifted_base, shifted_older = np.roll(base, 3, axis=1), np.roll(older, 3, axis=1)
    cases.append(turned_case(shifted_base, shifted_older, 3, 4, 0.9999, None, out=rng.integers(-9, 9, base.shape)))
    fine_older, fine_base = spins(rng, n, angles, FINE)
    cases += [turned_case(fine_base, fine_older, 0, turns, 0.9999, scale=FINE) for turns in (1, 6, 64)]
    # a turn whose w is exactly ``still`` is a jitter (w >= still): Python's w, in Python's steps
    older_q, base_q = smallest_three.unit(older[:, 0:4], SCALE), smallest_three.unit(base[:, 0:4], SCALE)
    edge = next(r for r in range(n) if (older[r, 0:4] != base[r, 0:4]).any())
    (ax, ay, az, aw), (px, py, pz, pw) = base_q[edge].tolist(), older_q[edge].tolist()
    w = abs(aw * pw - ax * -px - ay * -py - az * -pz)
    at_edge = turned_case(base, older, 0, 3, w)
    assert (at_edge[1][1][edge] == base[edge]).all()  # Python kept it: a jitter
    cases.append(at_edge)
    assert sum(moved for _, (moved, _) in cases) > n  # rows did turn
    check_moves(cases)


def test_turned_aloft_matches_python(seed):
    """turned's ``aloft`` ([column, height, turns, still]): rows above the height turn by its
    own turns and still in the same pass, in the browser as in Python, at heights either side
    of the line and on it, with no turns aloft or none below, and past MAX_TURNS; bad ones are
    refused by both."""
    rng = np.random.default_rng(seed)
    n = 500
    older, base = tables(rng, n, spins(rng, n, [0.0, 0.02, 0.3, 2.0]))
    line = int(np.median(base[:, 6]))
    base[::17, 6] = line  # on the line: not above it
    mask = rng.random(n) < 0.7
    cases = [turned_case(base, older, 0, turns, 0.9999, mask if k % 2 else None, aloft=(6, height, up, 2.0))
             for k, (turns, up, height) in enumerate([(4, 6, line), (1, 0, line), (0, 3, line), (70, 90, line), (2, 6, -(2 ** 63)),
                                                       (3, 3, 2 ** 62)])]
    plain = turned_case(base, older, 0, 4, 0.9999)
    assert not np.array_equal(plain[1][1], cases[0][1][1])  # (the bodies aloft did turn otherwise)
    check_moves(cases)
    bad = [[7 + 1, 0, 3, 2.0], [-1, 0, 3, 2.0], [6, 2 ** 63, 3, 2.0], [6, 0, 3], [6, 0.5, 3, 2.0], [6, 0, 1.5, 2.0], [6, 0, 3, "2.0"]]
    ops = []
    for aloft in bad:
        op, _ = turned_case(base, older, 0, 3, 0.9999)
        with pytest.raises(ValueError):
            smallest_three.turned(base, older, 0, 3, 0.9999, SCALE, base.copy(), None, aloft)
        ops.append({**op, "aloft": aloft})
    for got in js(*ops):
        assert "range_error" in got, got


def test_turned_matches_python_on_hostile_codes(seed):
    rng = np.random.default_rng(seed)
    n = 300
    older, base = spins(rng, n, [0.3, 2.0])
    junk = np.array([7, -1, -5, 4, 512, 10 ** 6, -(10 ** 6), 2 ** 40, -(2 ** 62), SCALE, 0, 3], np.int64)
    for table in (older, base):
        hit = rng.random((n, 4)) < 0.1  # a few codes per table no quantizer makes
        table[hit] = rng.choice(junk, hit.sum())
    cases = [turned_case(base, older, 0, turns, still) for turns in (1, 6, 64) for still in (0.9999, 2.0)]
    # and a scale the codes were not made at (every code in range, none a quantizer's)
    cases.append(turned_case(base, older, 0, 4, 2.0, scale=2 ** 50))
    check_moves(cases)


# -- standing -------------------------------------------------------------------------------


def test_standing_matches_python(seed):
    rng = np.random.default_rng(seed)
    n = 600
    older, base = tables(rng, n, spins(rng, n, [0.0, 0.0, 0.05, 0.8, 2.5]))
    below, ground = (1 << 20) + 200, (1 << 20) - 1
    base[:, 6] = (1 << 20) + rng.integers(-50, 400, n)  # around ``below``: some rows above it
    known = base.copy()
    known[:, 0:4] = older[:, 0:4]  # the orientation that came: often not the expected one
    junk = np.array([7, -1, -5, 10 ** 6, -(10 ** 6), 2 ** 40, -(2 ** 62), 2 ** 62, 512], np.int64)
    hostile = known.copy()
    hit = rng.random((n, 4)) < 0.15
    hostile[:, 0:4][hit] = rng.choice(junk, hit.sum())
    cases = [standing_case(base, known, 0, 6, below, 102.9, ground), standing_case(base, hostile, 0, 6, below, 102.9, ground),
             standing_case(base, known, 0, 6, below, -3.7, ground), standing_case(base, hostile, 0, 6, 2 ** 62, 0.4, -5),
             standing_case(base, known, 0, 6, below, 102.9, ground, out=rng.integers(-9, 9, base.shape))]
    # a half-size of 2**52 puts the reach's last bits in the height: its steps in Python's order
    cases += [standing_case(base, known, 0, 6, below, 2.0 ** 52, 0), standing_case(base, hostile, 0, 6, below, 2.0 ** 52, 0)]
    fine = base.copy()
    fine[:, 0:4], _ = spins(rng, n, [0.0], FINE)
    cases.append(standing_case(base, fine, 0, 6, below, 2.0 ** 52, 0, scale=FINE))
    results = js(*(op for op, _ in cases))
    for (op, want), got in zip(cases, results):
        same(got, want)
    assert (cases[0][1] != base).any()  # some heights were guessed


# -- the cube recording ---------------------------------------------------------------------


def test_bodies_match_python_on_the_cube_recording():
    path = bench_cubes.default_file()
    if not path.exists():
        pytest.skip(f"no cube recording at {path} (see ../shared/cubes/README.md): the predictor's real inputs are not tested")
    frames = bench_cubes.load_frames(path, 200).astype(np.int64)
    frames[:, :, 4:7] += 1 << 20  # raw positions as codes, as the bench's quantizers make them
    cases, standings = [], []
    for i in range(7, len(frames), 3):
        older, base, known = frames[i - 7], frames[i - 6], frames[i]
        cases.append(extrapolated_case(base, older, 4, 7, 6, 1, None, (NONE, NONE, (1 << 20) + 102)))
        cases.append(turned_case(base, older, 0, 4, 0.9999))
        cases.append(turned_case(base, older, 0, 6, 2.0))
        standings.append(standing_case(base, known, 0, 6, (1 << 20) + 200, 102.9, (1 << 20) - 1))
    check_moves(cases)
    for (op, want), got in zip(standings, js(*(op for op, _ in standings))):
        same(got, want)
    # the recording's cubes move, spin and tumble: each function did write rows
    assert all(sum(moved for _, (moved, _) in cases[k::3]) for k in range(3)), [moved for _, (moved, _) in cases]
    assert any((want != np.reshape(op["expected"], want.shape)).any() for op, want in standings)


# -- the predictor itself: what a part naming one applies to ----------------------------------


def test_js_decodes_the_protocol_md_bodies_vector_with_the_engine_predictor():
    """PROTOCOL.md's snapshot_bodies: the browser's Bodies (the schema's numbers) expects what
    Python's does, so the part rebuilds tick 7 code for code; with the linear default in its
    place (a client that ignored the schema's predictor) it does not."""
    import test_protocol_vectors as v

    n = len(v.ALL4)
    op = {"op": "apply", "parts": [v.VECTORS["snapshot_bodies"]], "codes": v.BODIES_BASE.ravel().tolist(), "view": [1] * n,
          "capacity": n, "columns": v.BODIES.columns, "extras_size": 0, "coding": v.BODIES.coding.describe(),
          "pred": {"tick": 4, "codes": v.BODIES_PRED.ravel().tolist(), "view": [1] * n}, "smooth": v.BODIES.smooth.astype(int).tolist()}
    got, linear = js({**op, "bodies": v.BODIES.coding.bodies_json()}, op)
    same(got["codes"], v.BODIES_CODES)
    assert "error" in linear or not np.array_equal(np.array(linear["codes"]), v.BODIES_CODES.ravel())
    # snapshot_friction: the same with friction, which a client must apply to rebuild it
    op = {**op, "parts": [v.VECTORS["snapshot_friction"]], "codes": v.FRICTION_BASE.ravel().tolist(), "coding": v.FRICTION.coding.describe()}
    got, frictionless = js({**op, "bodies": v.FRICTION.coding.bodies_json()}, {**op, "bodies": v.BODIES.coding.bodies_json()})
    same(got["codes"], v.FRICTION_CODES)
    assert "error" in frictionless or not np.array_equal(np.array(frictionless["codes"]), v.FRICTION_CODES.ravel())


def test_js_decodes_the_cube_scene_as_python_codes_it():
    """The cube scene's busiest stretch as the bench codes it with everything on: the
    scene's Bodies (sliding, falling, spinning, heights guessed from how a cube lands),
    entropy coding, and each packet's coder starting where its baseline's ended. The
    browser rebuilds every frame from its baseline, predictor and the model it carried,
    code for code, and ends in the model Python's receiver keeps."""
    path = bench_cubes.default_file()
    if not path.exists():
        pytest.skip(f"no cube recording at {path} (see ../shared/cubes/README.md): the scene's packets are not tested")
    frames = bench_cubes.load_frames(path, 1440)[1400:]
    schema = bench_cubes.SnapshotSchema(bench_cubes.cube_replication("entropy", True, True), bench_cubes.cube_state(frames[0]))
    codes = bench_cubes.quantize_frames(schema, frames)
    n = bench_cubes.CUBES
    view = np.ones(n, bool)
    shape = {"capacity": n, "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(),
             "bodies": schema.coding.bodies_json(), "carry": True}
    carried, ops, wanted = {}, [], []
    for i in range(bench_cubes.BASELINE_GAP + 1, len(frames)):
        base = i - bench_cubes.BASELINE_GAP
        start = carried.pop(base, None)
        sent = schema.coding.carried()
        parts = bench_cubes.encode_frame(schema, codes, view, i, True, None, start, sent, (base - 1, codes[base - 1]))
        carried[i] = sent
        ops.append({"op": "apply", "parts": [p.hex() for p in parts], "codes": codes[base].ravel().tolist(), "view": [1] * n,
                    "pred": {"tick": base - 1, "codes": codes[base - 1].ravel().tolist(), "view": [1] * n},
                    "start": None if start is None else {"probs": start[0].tolist(), "seen": start[1].tolist()}, **shape})
        wanted.append((codes[i], sent))
    for i, (got, (frame, model)) in enumerate(zip(js(*ops), wanted)):
        assert "error" not in got, (i, got)
        same(got["codes"], frame)
        assert got["end"]["probs"] == model[0].tolist() and got["end"]["seen"] == model[1].tolist(), f"packet {i}: the carried model"
    # The stretch exercises every rule: cubes turned on by their spin, and heights guessed
    # again from how a cube landed (a test on a quiet stretch would prove less).
    turned = guessed = 0
    for i in range(bench_cubes.BASELINE_GAP + 1, len(frames)):
        base = i - bench_cubes.BASELINE_GAP
        expected = schema.predict(codes[base], view, codes[base - 1], view, i, base, base - 1)
        turned += int((expected[:, 0:4] != codes[base, :, 0:4]).any(axis=1).sum())
        guessed += int((schema.coding.second_guess(expected, codes[i])[:, 6] != expected[:, 6]).sum())
    assert min(turned, guessed) > 30 * len(ops), (turned, guessed, len(ops))  # (measured: about 130 a packet each)


def test_js_guesses_a_tumbled_height_near_2_53_as_python_does():
    """A tumbled body resting at 40 whose height delta (a hostile server's) brings the box's
    guess (28) to 2**53 - 1: Python adds the delta to the guess; the browser added it to
    the expected height first (2**53 + 11, which a double rounds) and took the difference
    back out, one code off. It now adds it to the guess too."""
    import test_protocol_vectors as v

    base, pred = v.BODIES_BASE.copy(), v.BODIES_PRED.copy()
    base[3, 6] = pred[3, 6] = 40
    n = len(v.ALL4)
    expected = v.BODIES.predict(base, v.ALL4, pred, v.ALL4, 7, 5, 4)
    codes = expected.copy()
    codes[3, 0:4] = v.BODIES_CODES[3, 0:4]  # tipped onto an edge
    guess = int(v.BODIES.coding.second_guess(expected, codes)[3, 6])
    codes[3, 6] = (1 << 53) - 1
    assert expected[3, 6] - guess == 12  # so the delta, 2**53 - 29, on the expected 40 passes 2**53
    parts = encode_snapshot(7, codes, v.ALL4, b"", budget=1150, base_tick=5, base_codes=base, base_view=v.ALL4, base_extras=b"",
                            predictor=(4, pred, v.ALL4, v.BODIES.smooth), coding=v.BODIES.coding)
    op = {"op": "apply", "parts": [p.hex() for p in parts], "codes": base.ravel().tolist(), "view": [1] * n, "capacity": n,
          "columns": v.BODIES.columns, "extras_size": 0, "coding": v.BODIES.coding.describe(), "bodies": v.BODIES.coding.bodies_json(),
          "pred": {"tick": 4, "codes": pred.ravel().tolist(), "view": [1] * n}, "smooth": v.BODIES.smooth.astype(int).tolist()}
    (got,) = js(op)
    assert "error" not in got, got
    same(got["codes"], codes)


@pytest.mark.parametrize("aloft", [None, 300])
def test_js_predicts_friction_as_python_does(seed, aloft):
    """Sliding bodies under a spec's ``friction`` (grounded ones slide short or stop, those
    above ``aloft`` fly free): the browser rebuilds Python's deltas code for code from its
    own Bodies, and one that ignored the friction (the schema's number set to 0) does not."""
    from engine import Bodies, Int, Replication, State
    from netcode.statesync.snapshot import SnapshotSchema

    rng = np.random.default_rng(seed)
    n = 300
    bodies = Bodies(moves=("pos", "z"), height="z", floor=0, aloft=aloft, friction=0.75)
    state = State({"alive": np.ones(n, bool), "pos": np.zeros((n, 2), np.int64), "z": np.zeros(n, np.int64)})
    spec = Replication(alive="alive", fields={"pos": Int(0, 1 << 20), "z": Int(0, 4095)}, coding="entropy", predictor=bodies)
    schema = SnapshotSchema(spec, state)
    older = np.column_stack([rng.integers(1000, 1 << 19, (n, 2)), rng.choice([0, 0, 150, 600], n)])
    velocity = rng.integers(-1, 2, (n, 2)) * rng.choice([0, 1, 2, 9, 60], (n, 1))  # most rest, some creep
    falling = rng.choice([0, 0, 4, 30], n) * (older[:, 2] > 0)  # friction spares heights: falls are not shortened
    base = older + np.column_stack([velocity, -falling])
    view = np.ones(n, bool)
    ahead = 5
    expected = schema.predict(base, view, older, view, 1 + ahead, 1, 0)
    codes = expected + rng.integers(-1, 2, expected.shape) * (rng.random(expected.shape) < 0.2)  # surprises too
    codes[:, 2] = np.maximum(codes[:, 2], 0)
    parts = encode_snapshot(1 + ahead, codes, view, b"", budget=1200, base_tick=1, base_codes=base, base_view=view, base_extras=b"",
                            predictor=(0, older, view, schema.smooth), coding=schema.coding)
    op = {"op": "apply", "parts": [p.hex() for p in parts], "codes": base.ravel().tolist(), "view": [1] * n, "capacity": n,
          "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(),
          "pred": {"tick": 0, "codes": older.ravel().tolist(), "view": [1] * n}, "smooth": schema.smooth.astype(int).tolist()}
    frictionless = {**schema.coding.bodies_json(), "friction": 0}
    got, unaware = js({**op, "bodies": schema.coding.bodies_json()}, {**op, "bodies": frictionless})
    assert "error" not in got, got
    same(got["codes"], codes)
    assert "error" in unaware or not np.array_equal(np.array(unaware["codes"]), codes.ravel())
    # the friction mattered: some grounded bodies were expected short of where they slid
    linear = Bodies(moves=("pos", "z"), height="z", floor=0, aloft=aloft)
    plain = SnapshotSchema(dataclasses.replace(spec, predictor=linear), state)
    assert (plain.predict(base, view, older, view, 1 + ahead, 1, 0) != expected).any(axis=1).sum() > 20


def test_js_bodies_predict_each_snapshot_from_its_own_views_when_reused(seed):
    """A page keeps one Bodies for every snapshot (its row mask is scratch): a snapshot whose
    predictor snapshot holds only some bodies, decoded after one that held them all, moves
    only those, as Python's receiver does, not those the last snapshot's mask left set."""
    from engine import Bodies, Int, Replication, State
    from netcode.statesync.snapshot import SnapshotSchema

    rng = np.random.default_rng(seed)
    n = 200
    state = State({"alive": np.ones(n, bool), "pos": np.zeros((n, 2), np.int64), "z": np.zeros(n, np.int64)})
    spec = Replication(alive="alive", fields={"pos": Int(0, 1 << 20), "z": Int(0, 4095)}, coding="entropy",
                       predictor=Bodies(moves=("pos", "z"), height="z", floor=0))
    schema = SnapshotSchema(spec, state)
    older = np.column_stack([rng.integers(1000, 1 << 19, (n, 2)), np.zeros(n, np.int64)])
    base = older + np.column_stack([rng.integers(-40, 41, (n, 2)), np.zeros(n, np.int64)])  # every body moved
    view, some = np.ones(n, bool), rng.random(n) < 0.5
    ops = []
    for held in (view, some):  # what the receiver holds of the predictor snapshot
        expected = schema.predict(base, view, older, held, 7, 1, 0)
        codes = expected + rng.integers(-1, 2, expected.shape) * (rng.random(expected.shape) < 0.1)
        codes[:, 2] = np.maximum(codes[:, 2], 0)
        parts = encode_snapshot(7, codes, view, b"", budget=1200, base_tick=1, base_codes=base, base_view=view, base_extras=b"",
                                predictor=(0, older, held, schema.smooth), coding=schema.coding)
        ops.append(({"op": "apply", "parts": [p.hex() for p in parts], "codes": base.ravel().tolist(), "view": [1] * n, "capacity": n,
                     "columns": schema.columns, "extras_size": 0, "coding": schema.coding.describe(), "bodies": schema.coding.bodies_json(),
                     "pred": {"tick": 0, "codes": older.ravel().tolist(), "view": held.astype(int).tolist()},
                     "smooth": schema.smooth.astype(int).tolist()}, codes))
    assert (schema.predict(base, view, older, view, 7, 1, 0) != schema.predict(base, view, older, some, 7, 1, 0)).any(axis=1).sum() > 50
    (got,) = js({"op": "apply_seq", "ops": [op for op, _ in ops]})
    for out, (_, codes) in zip(got, ops):
        assert "error" not in out, out
        same(out["codes"], codes)


@pytest.mark.network
def test_js_client_plays_a_bodies_room_over_a_real_websocket():
    """A room whose spec predicts with Bodies (hopping bodies: rising ones held, falling ones
    stopped at the floor, where the linear default would carry them on): the browser's
    client plays it over a real WebSocket and its newest snapshot is the server's, code for
    code, having applied most parts against the predictor's guess."""
    import asyncio

    from hoppers_game import NPCS, Hoppers
    from helpers import SECRET
    from netcode.server.tickserver import RoomConfig, TickServer
    from netcode.statesync.snapshot import predict
    from test_web_client import _harness, _same_snapshot, run

    game = Hoppers()

    async def scenario():
        server = TickServer(secret=SECRET, udp_port=None, http_port=0, open_join=True)
        room = server.add_room(game, RoomConfig("default", mode="statesync", players=2, seed=5))
        async with server:
            player, held, _ = await _harness(server, room.mode, "--room", "default", "--seconds", "2", "--move", "1,0", timeout=25)
            history = room.mode.history
            ticks = sorted(int(t) for t in history.ticks if t >= 0)[-3:]  # a predictor, a baseline, a snapshot
            both = [history.codes[history.index(t)].copy() for t in ticks[:2]]
        return player, held, room.mode.schema, both, ticks

    player, held, schema, both, ticks = run(scenario(), timeout=60)
    stats = player["stats"]
    assert stats["drops"] == {} and stats["noBaseline"] == 0, stats
    assert stats["predictedParts"] > stats["deltaParts"] / 2 and stats["deltaParts"] > 10, stats
    _same_snapshot(player, held, 2 + NPCS)
    # The test means something only where Bodies and the linear default disagree: they do,
    # on many of the hoppers, two snapshots on.
    older, base = both
    view = np.ones(len(base), bool)
    bodies = schema.predict(base, view, older, view, ticks[2], ticks[1], ticks[0])
    linear = predict(base, view, older, view, ticks[2], ticks[1], ticks[0], schema.smooth)
    assert (bodies != linear).any(axis=1).sum() > NPCS // 10
