"""Pong for two players: the smallest lockstep game, integer physics, deterministic.

Positions are integers on a WIDTH x HEIGHT field; the ball speeds up a little on every
paddle hit and its outgoing angle depends on where it struck the paddle, so rallies vary
without any floating point.
"""

from __future__ import annotations

import numpy as np

from engine import Axis, Controls, Game, Int, Replication, Sprite, State, Visuals, randint, rng_state

WIDTH, HEIGHT = 64000, 36000
PADDLE_HALF = 3000
PADDLE_SPEED = 700
PADDLE_X = (2000, WIDTH - 2000)
BALL_SPEED = 400
MAX_SPEED = 1600

INPUT_DTYPE = np.dtype([("move", "i1")])  # -1 up, 0 stay, +1 down


class Pong(Game):
    name = "pong"
    version = "1.0"
    input_dtype = INPUT_DTYPE
    max_players = 2
    tick_rate = 60
    input_limits = {"move": (-1, 1)}
    replication = Replication(
        alive="present",
        fields={"y": Int(0, HEIGHT), "x": Int(0, WIDTH)},
        extras=("score",),
    )
    visuals = Visuals(
        world=(0, 0, WIDTH, HEIGHT),
        position=("x", "y"),
        sprites=(  # the paddles never leave their x; the ball is everything else
            Sprite(when={"x": PADDLE_X[0]}, shape="rect", size=(600, 2 * PADDLE_HALF), color="#e5e7eb"),
            Sprite(when={"x": PADDLE_X[1]}, shape="rect", size=(600, 2 * PADDLE_HALF), color="#e5e7eb"),
            Sprite(size=800, color="#ffd166"),
        ),
        scores="score",
    )
    controls = Controls(Axis("move", negative=("w", "up"), positive=("s", "down")), help="W/S or up/down: move")

    def create(self, seed: int, players: int) -> State:
        self.check_players(players)
        rng = rng_state(seed)
        s = State(
            {
                # entity 0, 1: paddles; entity 2: the ball
                "x": np.array([PADDLE_X[0], PADDLE_X[1], WIDTH // 2], np.int32),
                "y": np.full(3, HEIGHT // 2, np.int32),
                "present": np.array([True, players > 1, True]),
                "ball_v": np.zeros(2, np.int32),
                "score": np.zeros(2, np.int32),
                "rng": rng,
            }
        )
        self._serve(s, direction=1)
        return s

    def _serve(self, s: State, direction: int) -> None:
        s.x[2], s.y[2] = WIDTH // 2, HEIGHT // 2
        vy = int(randint(s.rng, 1, -BALL_SPEED, BALL_SPEED + 1)[0])
        s.ball_v = (direction * BALL_SPEED, vy)

    def step(self, s: State, inputs: np.ndarray, tick: int) -> None:
        y = s.y
        moves = inputs["move"].astype(np.int32)
        y[: len(moves)] = np.clip(y[: len(moves)] + moves * PADDLE_SPEED, PADDLE_HALF, HEIGHT - PADDLE_HALF)
        if len(moves) == 1:  # a lone player faces a wall that tracks the ball
            y[1] = min(max(int(y[2]), PADDLE_HALF), HEIGHT - PADDLE_HALF)
        vx, vy = (int(v) for v in s.ball_v)
        bx, by = int(s.x[2]) + vx, int(y[2]) + vy
        if by < 0 or by > HEIGHT:
            vy, by = -vy, (-by if by < 0 else 2 * HEIGHT - by)
        for side, px in enumerate(PADDLE_X):
            crossing = bx <= px if side == 0 else bx >= px
            if crossing and (vx < 0) == (side == 0) and abs(by - int(y[side])) <= PADDLE_HALF:
                speed = min(abs(vx) + 50, MAX_SPEED)
                vx = speed if side == 0 else -speed
                vy = (by - int(y[side])) * speed // PADDLE_HALF  # angle from where it struck
                bx = 2 * px - bx
        if bx < 0 or bx > WIDTH:
            s.score[1 if bx < 0 else 0] += 1
            self._serve(s, direction=1 if bx < 0 else -1)
            return
        s.x[2], y[2] = bx, by
        s.ball_v = (vx, vy)

    def bot_inputs(self, s: State, tick: int, slots: np.ndarray) -> np.ndarray:
        """Follow the ball, with a dead zone so the paddle does not jitter."""
        out = np.zeros(len(slots), dtype=INPUT_DTYPE)
        gap = int(s.y[2]) - s.y[np.asarray(slots)]
        out["move"] = np.where(gap > PADDLE_SPEED, 1, np.where(gap < -PADDLE_SPEED, -1, 0))
        return out


GAME = Pong()
