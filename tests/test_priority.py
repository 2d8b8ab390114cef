"""The byte budget's priority accumulator (netcode/statesync/priority.py), compiled and
interpreted: the entities it sends are those a stable sort by accumulated priority takes
while their summed cost fits the budget, what it sends drops to zero and what waits grows."""

import numpy as np
import pytest
from helpers import source_twin

from netcode.statesync import priority as compiled_priority


def sorted_choice(acc, candidates, priority, cost, budget, must):
    """The rule by numpy, as a sort: every candidate ranked, the ranked prefix that fits."""
    acc[candidates] += priority[candidates]
    chosen = must & candidates
    rest = np.flatnonzero(candidates & ~chosen)
    order = rest[np.argsort(-acc[rest], kind="stable")]
    fits = np.cumsum(cost[order]) <= budget - int(cost[chosen].sum())
    chosen[order[fits]] = True
    acc[chosen] = 0.0
    return chosen


@pytest.fixture(scope="module")
def builds():
    return [compiled_priority, source_twin("netcode.statesync.priority")]


@pytest.mark.parametrize("budget", [0, 40, 200, 10**9])
def test_choices_over_many_snapshots_are_the_sorted_prefix_that_fits_in_both_builds(builds, budget):
    """Thirty snapshots of one client: priorities 1 or 2 (so accumulated ties are common and
    the lower id must win them), costs 0-22 bytes, a forced entity or none, a budget that
    takes nothing, a few, many, or everything."""
    rng = np.random.default_rng(budget)
    n = 300
    for module in builds:
        ours = module.PriorityAccumulator(n)
        reference = np.zeros(n)
        for snapshot in range(30):
            candidates = rng.random(n) < 0.6
            priority = 1.0 + (rng.random(n) < 0.5)
            cost = rng.integers(0, 23, n)
            must = np.zeros(n, bool)
            if snapshot % 3:
                must[rng.integers(n)] = True
            chosen = ours.choose(candidates, priority, cost, budget, must)
            expected = sorted_choice(reference, candidates, priority, cost, budget, must)
            assert chosen.dtype == np.bool_ and np.array_equal(chosen, expected), (module.__name__, snapshot)
            assert np.array_equal(ours.acc, reference)


def test_what_waits_is_sent_in_turn_however_small_the_budget(builds):
    """A budget of one entity a snapshot, ten equal entities: each is sent once in ten
    snapshots, lowest id first among equals, and a forced entity goes over the budget."""
    for module in builds:
        ours = module.PriorityAccumulator(10)
        every = np.ones(10, bool)
        sent = [int(np.flatnonzero(ours.choose(every, np.ones(10), np.full(10, 5), 5, np.zeros(10, bool)))[0]) for _ in range(10)]
        assert sent == list(range(10))
        must = np.zeros(10, bool)
        must[7] = True
        chosen = ours.choose(every, np.ones(10), np.full(10, 5), 5, must)
        assert list(np.flatnonzero(chosen)) == [7]


def test_bad_priorities_costs_and_shapes_are_refused_in_both_builds(builds):
    n = 8
    ok = dict(candidates=np.ones(n, bool), priority=np.ones(n), cost=np.ones(n, np.int64), budget=4, must=np.zeros(n, bool))
    for module in builds:
        for change, message in (
            ({"priority": np.full(n, np.nan)}, "priorities are numbers"),
            ({"cost": np.full(n, -1)}, "costs >= 0"),
            ({"cost": np.ones(n - 1, np.int64)}, "cost: 8 entities"),
            ({"candidates": np.ones((2, n), bool)}, "candidates: 8 entities"),
        ):
            ours = module.PriorityAccumulator(n)
            with pytest.raises(ValueError, match=message):
                ours.choose(**{**ok, **change})
