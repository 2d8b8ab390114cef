"""Engine micro benches (pytest-benchmark): the arena step at 1000 entities, state copy,
restore and hash. Run: .venv/bin/python -m pytest bench/test_bench_engine.py --benchmark-only"""

import numpy as np
import pytest

from demos.arena import Arena


@pytest.fixture(scope="module")
def arena():
    game = Arena(npcs=1000)
    state = game.create(1, 8)
    for t in range(120):
        game.step(state, game.bot_inputs(state, t, np.arange(8)), t)
    return game, state


def test_arena_step_1000_npcs_idle(benchmark, arena):
    game, state = arena
    inputs = game.neutral_inputs(8)
    tick = iter(range(10**9))
    benchmark(lambda: game.step(state, inputs, next(tick)))


def test_arena_step_1000_npcs_bots_firing(benchmark, arena):
    game, state = arena
    inputs = game.bot_inputs(state, 0, np.arange(8))
    inputs["buttons"] = 1
    tick = iter(range(10**9))
    benchmark(lambda: game.step(state, inputs, next(tick)))


def test_state_copy(benchmark, arena):
    _, state = arena
    benchmark(state.copy)


def test_state_restore(benchmark, arena):
    _, state = arena
    other = state.copy()
    benchmark(state.restore, other)


def test_state_hash(benchmark, arena):
    _, state = arena
    benchmark(state.hash)
