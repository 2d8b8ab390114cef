"""Hoppers: bodies that slide and hop under gravity, the smallest game whose snapshots the
engine's Bodies predicts differently from the linear default (a rising body is held, a
falling one stops at the floor), so a client that ignored the room's predictor would
rebuild wrong codes. The browser tests play it."""

from __future__ import annotations

import numpy as np

from engine import Bodies, Game, Int, Replication, State, randint, rng_state

SIZE = 20000  # the field is 0..SIZE on both axes
NPCS = 100
GRAVITY = 2  # height codes a tick, a tick
SPEED = 20  # a player's units per tick


class Hoppers(Game):
    name = "hoppers"
    version = "0.1"
    input_dtype = np.dtype([("move", "i1", (2,))])
    input_limits = {"move": (-1, 1)}
    max_players = 4
    tick_rate = 60
    replication = Replication(
        alive="alive",
        fields={"pos": Int(0, SIZE), "z": Int(0, 4095)},
        position="pos",
        continuous=("z",),  # (the linear default would carry the height on too)
        extras=("score",),
        coding="entropy",
        groups=(("pos", "z"),),
        predictor=Bodies(moves=("pos", "z"), height="z", floor=0),
    )

    def create(self, seed: int, players: int) -> State:
        self.check_players(players)
        rng = rng_state(seed)
        n = players + NPCS
        return State(
            {
                "pos": randint(rng, 2 * n, 0, SIZE + 1).astype(np.int32).reshape(n, 2),
                "vel": randint(rng, 2 * n, -8, 9).astype(np.int32).reshape(n, 2),
                "z": randint(rng, n, 0, 400).astype(np.int32),
                "vz": randint(rng, n, -10, 30).astype(np.int32),
                "alive": np.ones(n, bool),
                "score": np.zeros(players, np.int32),
            }
        )

    def step(self, s: State, inputs: np.ndarray, tick: int) -> None:
        p = len(inputs)
        s.pos[:p] += inputs["move"].astype(np.int32) * SPEED
        s.pos[p:] += s.vel[p:]
        out = (s.pos < 0) | (s.pos > SIZE)
        s.vel[out] = -s.vel[out]  # NPCs turn back at the edges
        np.clip(s.pos, 0, SIZE, out=s.pos)
        s.vz -= GRAVITY
        s.z += s.vz
        landed = s.z <= 0
        s.z[landed] = 0
        s.vz[landed] = 16 + (np.flatnonzero(landed) + tick) % 24  # and hop again
        s.score[:p] = s.z[:p]
