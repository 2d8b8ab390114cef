import random
import time

import numpy as np

from demos.arena import Arena
from engine import Game, Int, Replication, State
from engine.check import check, random_inputs


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


# -- what the check used to miss ------------------------------------------------------------

COUNTER = 0


class Clocked(Game):
    """Reads the wall clock, in 5-second steps: a short run never sees it move."""

    name, version = "clocked", "1"
    input_dtype = np.dtype([("a", "i1")])

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        state.x += int(time.time() / 5) % 7


class FloatOrbit(Game):
    """A float np.sin trajectory, lockstep only: the same bits here, maybe not elsewhere."""

    name, version = "orbit", "1"
    input_dtype = np.dtype([("a", "i1")])

    def create(self, seed, players):
        return State({"pos": np.zeros((players, 2), np.float64)})

    def step(self, state, inputs, tick):
        state.pos[:, 0] = np.sin(tick * 0.05) * 100.0
        state.pos[:, 1] = np.cos(tick * 0.05) * 100.0


class MovesBadly(Game):
    """Deterministic while nobody moves (its bots are the default, idle); any input draws
    from Python's global random."""

    name, version = "movesbadly", "1"
    input_dtype = np.dtype([("move", "i1", (2,))])
    input_limits = {"move": (-1, 1)}

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        moving = inputs["move"].any(axis=1)
        state.x[moving] += random.randint(0, 3)


def test_check_catches_a_step_that_reads_the_clock():
    result = check(Clocked(), ticks=60, other_process=False)
    assert not result.ok and result.first_bad_tick == 0
    assert "clock moved on" in result.reason and result.inputs == "bots"
    assert any("reads the clock" in h and "time.time()" in h for h in result.hints), result.hints


def test_check_warns_about_float_state_in_a_lockstep_game():
    result = check(FloatOrbit(), ticks=60, other_process=False, input_seeds=1)
    assert result.ok  # the same bits on this machine: a warning, not a divergence
    assert any("float arrays in the state (pos)" in w and "lockstep only" in w for w in result.warnings)
    assert any("np.sin" in w for w in result.warnings) and any("np.cos" in w for w in result.warnings)
    assert "warning: float arrays" in result.describe()
    # The demos use integers: no warning there.
    assert not check("demos.pong", ticks=60, other_process=False, input_seeds=1).warnings


def test_check_drives_random_inputs_within_the_limits():
    result = check(MovesBadly(), ticks=200, other_process=False)
    assert not result.ok and result.inputs == "random inputs, seed 1" and result.runs == ["bots", "random inputs, seed 1"]
    assert any("Python's global random" in h for h in result.hints), result.hints
    # Within the limits: a seed's inputs never leave them.
    feed = random_inputs(MovesBadly(), 4, seed=3)
    frames = np.stack([feed(None, t) for t in range(300)])
    assert frames["move"].min() == -1 and frames["move"].max() == 1 and (frames["move"] == 0).any()


def test_check_runs_bots_and_two_random_seeds_by_default():
    result = check("demos.pong", ticks=60)
    assert result.ok and result.runs == ["bots", "random inputs, seed 1", "random inputs, seed 2"]
    assert check.__kwdefaults__["ticks"] >= 1800


class BadSpec(Game):
    name, version = "badspec", "1"
    input_dtype = np.dtype([("a", "i1")])
    replication = Replication(alive="alive", fields={"pos": Int(0, 100), "hp": Int(0, 9)}, position="pos")

    def create(self, seed, players):
        return State({"pos": np.zeros((players, 2), np.int32), "hp": np.zeros(players + 1, np.int8), "alive": np.ones(players, bool)})

    def step(self, state, inputs, tick):
        pass


def test_check_refuses_a_replication_spec_that_does_not_fit_the_state():
    result = check(BadSpec(), ticks=10, other_process=False)
    assert not result.ok and result.first_bad_tick is None
    assert result.errors == ["replicated field 'hp' has 9 rows, alive has 8: every field is a column of the entity table"]
    assert "FAILED: replicated field 'hp'" in result.describe()
    missing = Replication(alive="present", fields={"pos": Int(0, 100)}, extras=("score",))
    problems = missing.problems(BadSpec().create(1, 2))
    assert "replication alive 'present' is not an array of the state" in problems[0]
    assert "replication extra 'score'" in problems[1]


class WritesInputs(Game):
    name, version = "writesinputs", "1"
    input_dtype = np.dtype([("a", "i1")])
    input_limits = {"a": (0, 3)}

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        state.x += inputs["a"]
        inputs["a"] += 1  # the stored input is now another one


class Hashing(Game):
    name, version = "hashing", "1"
    input_dtype = np.dtype([("a", "i1")])

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        state.x[0] += hash(f"tick{tick}") & 0xFF


class UsesGlobal(Game):
    name, version = "usesglobal", "1"
    input_dtype = np.dtype([("a", "i1")])

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        global COUNTER
        COUNTER += 1
        state.x[0] = COUNTER


def test_check_names_the_likely_causes():
    def hints(game, **kw):
        result = check(game, ticks=40, other_process=False, **kw)
        assert not result.ok
        return " | ".join(result.hints)

    assert "step changed self.calls" in hints(Stateful())
    assert "step wrote to its inputs array (fields: a)" in hints(WritesInputs())
    text = hints(UsesGlobal())
    assert "step changed the global COUNTER" in text and "declares a global" in text
    assert "calls hash()" in hints_of_source(Hashing())


def hints_of_source(game):
    from engine.suspects import read_source

    return " | ".join(read_source(game))


def test_check_in_another_process_catches_hash_of_str():
    # hash() of a str is salted per process: only the other-process run sees it.
    result = check("tests.test_check:Hashing", ticks=20, input_seeds=0)
    assert not result.ok and "another process" in result.reason
    assert any("calls hash()" in h for h in result.hints)
