"""Determinism check: does ``step`` give the same state from the same state and inputs?

Like GGRS's sync test: run the game with scripted inputs, and after every tick roll back
``rollback`` ticks, re-simulate them from the saved copy, and compare each re-simulated
state's hash with the hash the first pass recorded. Anything ``step`` keeps outside the
state (a counter on the game object, Python's global ``random``, aliasing between arrays)
shows up as a mismatch, at the first tick whose step depends on it.

``check`` also replays the whole input sequence on a fresh ``create`` and, optionally, in a
separate Python process with another hash seed, which catches set/dict-order dependence.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import orjson

from .model import Game, load_game
from .state import State

__all__ = ["CheckResult", "check", "scripted_run"]


@dataclass
class CheckResult:
    game: str
    ticks: int
    rollback: int
    first_bad_tick: int | None = None
    reason: str = ""
    differing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_bad_tick is None

    def describe(self) -> str:
        if self.ok:
            return f"{self.game}: deterministic over {self.ticks} ticks (rollback {self.rollback}, rerun, other process)"
        arrays = f"; arrays differing: {', '.join(self.differing)}" if self.differing else ""
        return f"{self.game}: NOT deterministic: first bad tick {self.first_bad_tick}: {self.reason}{arrays}"


def scripted_run(game: Game, seed: int, players: int, ticks: int) -> tuple[list[np.ndarray], list[int]]:
    """Play ``ticks`` ticks with the game's bots; returns (inputs per tick, hash of state_t
    for t = 0..ticks)."""
    state = game.create(seed, players)
    slots = np.arange(players)
    inputs, hashes = [], [state.hash()]
    for t in range(ticks):
        frame = game.bot_inputs(state, t, slots).astype(game.input_dtype, copy=False)
        game.sanitize_inputs(frame)
        inputs.append(frame)
        game.step(state, frame, t)
        hashes.append(state.hash())
    return inputs, hashes


def _rollback_pass(game: Game, seed: int, players: int, ticks: int, rollback: int, result: CheckResult) -> None:
    state = game.create(seed, players)
    slots = np.arange(players)
    saved: dict[int, State] = {0: state.copy()}
    inputs: dict[int, np.ndarray] = {}
    hashes = {0: state.hash()}
    for t in range(ticks):
        frame = game.bot_inputs(state, t, slots).astype(game.input_dtype, copy=False)
        game.sanitize_inputs(frame)
        inputs[t] = frame
        game.step(state, frame, t)
        hashes[t + 1] = state.hash()
        saved[t + 1] = state.copy()
        saved.pop(t + 1 - rollback - 1, None)
        inputs.pop(t - rollback, None)
        start = t + 1 - rollback
        if start < 0:
            continue
        again = saved[start].copy()
        for j in range(start, t + 1):
            game.step(again, inputs[j].copy(), j)
            if again.hash() != hashes[j + 1]:
                result.first_bad_tick = j
                result.reason = f"re-simulating tick {j} after a {rollback}-tick rollback gave another state"
                result.differing = again.differing(saved[j + 1]) if (j + 1) in saved else []
                return


def _worker_hashes(path: str, seed: int, players: int, ticks: int) -> list[int]:
    """Hashes of a scripted run computed in a fresh interpreter with another hash seed."""
    code = (
        "import sys, orjson; from engine.model import load_game; from engine.check import scripted_run;"
        f"g = load_game({path!r}); print(orjson.dumps([str(h) for h in scripted_run(g, {seed}, {players}, {ticks})[1]]).decode())"
    )
    env = dict(os.environ, PYTHONHASHSEED=str((seed * 7919 + 17) % 4294967295))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the other process failed: {out.stderr.strip().splitlines()[-1:]}")
    return [int(h) for h in orjson.loads(out.stdout)]


def _first_difference(a: list[int], b: list[int]) -> int | None:
    for t, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))


def check(
    game: Game | str,
    *,
    ticks: int = 600,
    players: int | None = None,
    seed: int = 1,
    rollback: int = 2,
    other_process: bool = True,
) -> CheckResult:
    """Run the determinism check; ``game`` may be a Game or an import path."""
    path = game if isinstance(game, str) else None
    if isinstance(game, str):
        game = load_game(game)
    players = players or min(game.max_players, 8)
    game.check_players(players)
    result = CheckResult(game=game.describe(), ticks=ticks, rollback=rollback)
    _rollback_pass(game, seed, players, ticks, rollback, result)
    if not result.ok:
        return result
    # A second, straight run must give the same hashes (state_t+1 is compared, so tick t).
    _, first = scripted_run(game, seed, players, ticks)
    _, second = scripted_run(game, seed, players, ticks)
    bad = _first_difference(first, second)
    if bad is not None:
        result.first_bad_tick = max(bad - 1, 0)
        result.reason = "a second run from the same seed and inputs diverged"
        return result
    if other_process and path is not None:
        bad = _first_difference(first, _worker_hashes(path, seed, players, ticks))
        if bad is not None:
            result.first_bad_tick = max(bad - 1, 0)
            result.reason = "a run in another process (other PYTHONHASHSEED) diverged"
    return result
