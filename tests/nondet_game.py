"""A game that is not deterministic (it reads Python's global random from tick 20 on), for
the CLI's ``check`` exit code. Loaded by import path: ``nondet_game``."""

import random

import numpy as np

from engine import Game, State


class NonDeterministic(Game):
    name, version = "nondet", "1"
    input_dtype = np.dtype([("a", "i1")])
    max_players = 4

    def create(self, seed, players):
        return State({"x": np.zeros(players, np.int64)})

    def step(self, state, inputs, tick):
        state.x += inputs["a"]
        if tick >= 20:
            state.x[0] += random.randint(0, 1 << 30)


GAME = NonDeterministic()
