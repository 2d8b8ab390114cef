"""pytest-benchmark micro benches for lockstep at scale (collected only by ``pytest bench``).

The load script ``python -m bench.bench_lockstep`` gives percentiles and bandwidth; these
track the two numbers most likely to regress: the swarm step at 256 players, and one
virtual second of a 256-client lockstep room (server plus the bench's light clients).
"""

from __future__ import annotations

import numpy as np

from bench.bench_lockstep import ROWS, build
from demos.swarm import Swarm


def test_swarm_step_256_players(benchmark):
    game = Swarm()
    state = game.create(1, 256)
    slots = np.arange(256)
    for t in range(120):  # into the fighting
        game.step(state, game.bot_inputs(state, t, slots), t)
    inputs = game.bot_inputs(state, 120, slots)
    tick = [120]

    def step() -> None:
        game.step(state, inputs, tick[0])
        tick[0] += 1

    benchmark(step)


def test_one_second_of_a_256_client_room(benchmark):
    row = next(r for r in ROWS if r.key == "swarm256f")
    match = build(row)
    match.net.run_for(2.0)  # handshakes and the first frames
    assert match.server.stats()["players"] == 256
    benchmark.pedantic(match.net.run_for, args=(1.0,), rounds=5, iterations=1)
