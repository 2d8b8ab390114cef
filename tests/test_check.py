import random

import numpy as np

from demos.arena import Arena
from engine import Game, State
from engine.check import check


def test_demos_are_deterministic():
    assert check("demos.pong", ticks=300).ok
    assert check("demos.arena", ticks=200, other_process=False).ok


class Leaky(Game):
    """Deterministic until tick 37, then it reads Python's global random."""

    name, version = "leaky", "1"
    input_dtype = np.dtype([("a", "i1")])

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        state.x += inputs["a"]
        if tick >= 37:
            state.x[0] += random.randint(0, 1 << 30)


class Stateful(Game):
    """Keeps a counter outside the state: rollback re-simulation sees another value."""

    name, version = "stateful", "1"
    input_dtype = np.dtype([("a", "i1")])

    def __init__(self):
        self.calls = 0

    def create(self, seed, players):
        return State({"x": np.zeros(1, np.int64)})

    def step(self, state, inputs, tick):
        self.calls += 1
        if tick >= 10:
            state.x[0] += self.calls


def test_check_names_the_first_bad_tick():
    result = check(Leaky(), ticks=100)
    assert not result.ok
    assert result.first_bad_tick == 37
    assert result.differing == ["x"]
    assert "37" in result.describe()


def test_check_catches_state_kept_outside_the_state():
    result = check(Stateful(), ticks=50)
    assert not result.ok and result.first_bad_tick == 10


def test_arena_npc_fraction_changes_motion():
    still = Arena(npcs=100, moving=0.0)
    s = still.create(1, 2)
    before = s.pos[2:].copy()
    for t in range(30):
        still.step(s, still.neutral_inputs(2), t)
    assert np.array_equal(s.pos[2:], before)
