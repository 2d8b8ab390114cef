import subprocess
import sys

import numpy as np
import pytest

from demos.arena import Arena
from engine import State, StateLayoutError


def make_state() -> State:
    return State({"x": np.arange(5, dtype=np.int32), "v": np.zeros((5, 2), np.float32), "score": np.int64(7)})


def test_attribute_writes_copy_into_fixed_arrays():
    s = make_state()
    x = s.x
    s.x = [9, 8, 7, 6, 5]
    assert s.x is x and list(x) == [9, 8, 7, 6, 5] and x.dtype == np.int32
    s.score += 1
    assert int(s.score) == 8 and s.score.shape == ()
    with pytest.raises(AttributeError, match="fixed when the game creates"):
        s.new_field = 3
    with pytest.raises(ValueError):
        s.x = np.zeros(6)  # shapes never change


def test_copy_is_deep_and_restore_is_in_place():
    s = make_state()
    c = s.copy()
    c.x[0] = 100
    assert s.x[0] == 0
    x_before = s.x
    s.restore(c)
    assert s.x is x_before and s.x[0] == 100 and s == c


def test_restore_rejects_another_layout():
    s = make_state()
    other = State({"x": np.arange(6, dtype=np.int32), "v": np.zeros((5, 2), np.float32), "score": np.int64(0)})
    with pytest.raises(StateLayoutError, match="'x'"):
        s.restore(other)


def test_hash_changes_with_any_byte_and_with_layout():
    s = make_state()
    h = s.hash()
    assert h == s.copy().hash()
    s.v[3, 1] = 1e-30
    assert s.hash() != h
    # Same bytes, different dtype: a different state.
    a = State({"x": np.zeros(4, np.int32)})
    b = State({"x": np.zeros(4, np.float32)})
    assert a.hash() != b.hash()


def test_pack_unpack_round_trip_and_size_check():
    s = make_state()
    s.v[:] = 1.5
    blob = s.pack()
    t = make_state()
    t.unpack_into(blob)
    assert t == s and t.hash() == s.hash()
    with pytest.raises(StateLayoutError, match="needs"):
        t.unpack_into(blob[:-1])


def test_differing_names_arrays():
    s = make_state()
    c = s.copy()
    c.v[0, 0] = 2
    assert s.differing(c) == ["v"]


def test_object_arrays_and_bad_names_are_refused():
    with pytest.raises(StateLayoutError):
        State({"x": np.array([object()])})
    with pytest.raises(StateLayoutError):
        State({"_private": np.zeros(1)})
    with pytest.raises(StateLayoutError):
        State({})


HASH_SCRIPT = """
import numpy as np
from demos.arena import Arena
g = Arena(npcs=200)
s = g.create(11, 4)
for t in range(120):
    g.step(s, g.bot_inputs(s, t, np.arange(4)), t)
print(s.hash())
"""


def test_hash_is_the_same_in_another_process():
    g = Arena(npcs=200)
    s = g.create(11, 4)
    for t in range(120):
        g.step(s, g.bot_inputs(s, t, np.arange(4)), t)
    out = subprocess.run(
        [sys.executable, "-c", HASH_SCRIPT], capture_output=True, text=True, timeout=60, env={"PYTHONHASHSEED": "12345", "PATH": ""}
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == s.hash()
