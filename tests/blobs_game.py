"""Blobs: a small game that is not a shipped demo, as a new user would write one (8 players,
200 wandering NPCs, a replication spec, its own visuals and controls). The browser and
desktop tests play it, so the generic viewers are tested on fields no demo has."""

from __future__ import annotations

import numpy as np

from engine import Axis, Controls, Game, Int, Press, Replication, Sprite, State, Visuals, randint, rng_state

SIZE = 4000  # the field is 0..SIZE on both axes
SPEED = 40  # a player's units per tick
NPCS = 200
NPC_SPEED = 12
START = (1000, 2000)  # every player starts here, so the tests know where to look


class Blobs(Game):
    name = "blobs"
    version = "0.1"
    input_dtype = np.dtype([("dx", "i1"), ("dy", "i1"), ("grow", "u1")])
    input_limits = {"dx": (-1, 1), "dy": (-1, 1), "grow": (0, 1)}
    max_players = 8
    tick_rate = 30
    replication = Replication(
        alive="alive",
        fields={"pos": Int(0, SIZE), "team": Int(0, 15), "size": Int(0, 255), "dir": Int(0, 7)},
        position="pos",
        extras=("score",),
    )
    visuals = Visuals(
        world=(0, 0, SIZE, SIZE),
        sprites=(
            Sprite(when={"team": 0}, shape="triangle", size=70, color="#8fbc8f", heading="dir", heading_turn=8),
            Sprite(shape="rect", size="size", size_scale=2, color_by="team", label="team"),
        ),
        grid=500,
        scores="score",
    )
    controls = Controls(
        Axis("dx", negative=("a", "left"), positive=("d", "right")),
        Axis("dy", negative=("w", "up"), positive=("s", "down")),
        Press("grow", keys=("space", "mouse1")),
        help="arrows / WASD: move · space or click: grow",
    )

    def create(self, seed: int, players: int) -> State:
        self.check_players(players)
        rng = rng_state(seed)
        n = players + NPCS
        pos = randint(rng, 2 * n, 0, SIZE + 1).astype(np.int32).reshape(n, 2)
        pos[:players] = START
        team = np.zeros(n, np.int32)
        team[:players] = np.arange(1, players + 1)
        return State(
            {
                "pos": pos,
                "team": team,
                "size": np.full(n, 60, np.int32),
                "dir": randint(rng, n, 0, 8).astype(np.int32),
                "alive": np.ones(n, bool),
                "score": np.zeros(players, np.int32),
            }
        )

    def step(self, s: State, inputs: np.ndarray, tick: int) -> None:
        p = len(inputs)
        s.pos[:p, 0] += inputs["dx"].astype(np.int32) * SPEED
        s.pos[:p, 1] += inputs["dy"].astype(np.int32) * SPEED
        s.size[:p] = np.where(inputs["grow"] > 0, np.minimum(s.size[:p] + 2, 200), np.maximum(s.size[:p] - 1, 60))
        # NPCs walk in one of 8 directions and turn when they reach the edge.
        d = s.dir[p:]
        step = np.stack([np.array([1, 1, 0, -1, -1, -1, 0, 1])[d], np.array([0, 1, 1, 1, 0, -1, -1, -1])[d]], axis=1)
        s.pos[p:] += step * NPC_SPEED
        out = ((s.pos[p:] < 0) | (s.pos[p:] > SIZE)).any(axis=1)
        d[out] = (d[out] + 4) % 8
        np.clip(s.pos, 0, SIZE, out=s.pos)
        s.score[:p] = s.size[:p]


GAME = Blobs()
