"""The lockstep bench's shared client steps give each client exactly its own step's state."""

from __future__ import annotations

import numpy as np

from demos.swarm import Swarm
from netcode.benchmark.lockstep_virtual import SharedSteps


def test_shared_steps_match_plain_steps_through_mispredictions_and_rollbacks():
    game = Swarm()
    shared = SharedSteps(game).game
    players = 16
    slots = np.arange(players)
    plain = game.create(1, players)
    clients = [game.create(1, players) for _ in range(3)]
    for t in range(800):  # fights from about tick 200, deaths from 700
        inputs = game.bot_inputs(plain, t, slots)
        guess = inputs.copy()
        guess["cmd"][t % players] = 2  # a client that predicted one input wrong
        game.step(plain, inputs, t)
        for i, c in enumerate(clients):
            if i == 0 and t % 5 == 0:  # the first to step mispredicts, then roll back and step again
                saved = c.copy()
                shared.step(c, guess, t)
                c.restore(saved)
            shared.step(c, inputs, t)
            assert c.hash() == plain.hash(), (t, i)
    assert plain.lost.sum() > 0  # units fought and died: the steps did real work
