"""Determinism check: does ``step`` give the same state from the same state and inputs?

Like GGRS's sync test: run the game, and after every tick roll back ``rollback`` ticks,
re-simulate them from the saved copy, and compare each re-simulated state's hash with the
hash the first pass recorded. Anything ``step`` keeps outside the state (a counter on the
game object, Python's global ``random``, aliasing between arrays) shows up as a mismatch,
at the first tick whose step depends on it. Then the whole input sequence runs again on a
fresh ``create`` with the clock moved on (``time.time()`` and friends return other values),
and in a separate Python process with another hash seed (set/dict order, ``hash()``).

Inputs come from several sources, each run through all of that: the game's bots, and
random inputs within ``input_limits`` from at least two seeds (bots are often idle, and a
step that misbehaves only when a player moves would pass on idle inputs alone).

Before any of it, the game's replication spec is checked against a state it creates (a
field of the wrong length fails here, not at ``serve``), and float arrays in the state
are a warning (lockstep needs every machine to compute the same bits). When a run
diverges, :mod:`engine.suspects` adds the likely causes it can see.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import orjson

from .model import Game, load_game
from .state import State
from .suspects import float_arrays, float_calls, read_source, watch_step

__all__ = ["CheckResult", "check", "input_source", "random_inputs", "scripted_run"]

#: What an input source is: None for the game's bots, an int for random inputs from that seed.
Source = int | None


@dataclass
class CheckResult:
    game: str
    ticks: int
    rollback: int
    first_bad_tick: int | None = None
    reason: str = ""
    differing: list[str] = field(default_factory=list)
    #: The input source of the failing run ("bots", "random inputs, seed 2").
    inputs: str = ""
    #: What was run ("bots", "random inputs, seed 1", ...).
    runs: list[str] = field(default_factory=list)
    #: The spec or contract is broken (the check fails without running).
    errors: list[str] = field(default_factory=list)
    #: Not a failure, but worth knowing (float state in a lockstep game).
    warnings: list[str] = field(default_factory=list)
    #: Likely causes of a divergence, from engine.suspects.
    hints: list[str] = field(default_factory=list)
    #: Whether the runs were repeated in another process (it needs an import path).
    other_process: bool = False

    @property
    def ok(self) -> bool:
        return self.first_bad_tick is None and not self.errors

    def describe(self) -> str:
        lines = []
        if self.errors:
            lines += [f"{self.game}: FAILED: {e}" for e in self.errors]
        elif self.ok:
            other = ", other process" if self.other_process else ""
            lines.append(
                f"{self.game}: deterministic over {self.ticks} ticks (rollback {self.rollback}, rerun with the clock "
                f"moved{other}) with inputs from: {'; '.join(self.runs)}"
            )
        else:
            arrays = f"; arrays differing: {', '.join(self.differing)}" if self.differing else ""
            lines.append(
                f"{self.game}: NOT deterministic: first bad tick {self.first_bad_tick}: {self.reason}{arrays} "
                f"(inputs: {self.inputs})"
            )
        lines += [f"  likely cause: {h}" for h in self.hints]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def random_inputs(game: Game, players: int, seed: int) -> Callable[[State, int], np.ndarray]:
    """Inputs a wild player might send: every field random within ``input_limits`` (the
    clamp the server applies; a field without limits spans its dtype, floats +-1000), each
    player's record held for a few ticks at a time and sometimes all zeros."""
    rng = np.random.default_rng(seed)
    dtype = game.input_dtype
    held = np.zeros(players, dtype)

    def draw(n: int) -> np.ndarray:
        out = np.zeros(n, dtype)
        for name in dtype.names:
            col = out[name]
            low, high = game.input_limits.get(name, (None, None))
            if col.dtype.kind == "b":
                col[...] = rng.random(col.shape) < 0.5
            elif col.dtype.kind in "iu":
                info = np.iinfo(col.dtype)
                lo = info.min if low is None else max(int(np.ceil(low)), info.min)
                hi = info.max if high is None else min(int(np.floor(high)), info.max)
                col[...] = rng.integers(lo, hi, col.shape, endpoint=True, dtype=np.int64).astype(col.dtype)
            elif col.dtype.kind == "f":
                lo = -1000.0 if low is None else float(low)
                hi = 1000.0 if high is None else float(high)
                col[...] = rng.uniform(lo, hi, col.shape)
        return out

    def inputs(state: State, tick: int) -> np.ndarray:
        change = rng.random(players) < 0.3
        if change.any():
            held[change] = draw(int(change.sum()))
        idle = rng.random(players) < 0.1
        frame = held.copy()
        frame[idle] = np.zeros(1, dtype)
        return frame

    return inputs


def input_source(game: Game, players: int, source: Source) -> Callable[[State, int], np.ndarray]:
    """A fresh input function for ``source`` (each call starts the sequence again)."""
    if source is None:
        slots = np.arange(players)
        return lambda state, tick: game.bot_inputs(state, tick, slots)
    return random_inputs(game, players, source)


def _describe_source(source: Source) -> str:
    return "bots" if source is None else f"random inputs, seed {source}"


def _frame(game: Game, fn, state: State, tick: int) -> np.ndarray:
    frame = np.array(fn(state, tick), dtype=game.input_dtype, copy=True)
    game.sanitize_inputs(frame)
    return frame


def scripted_run(game: Game, seed: int, players: int, ticks: int, source: Source = None) -> tuple[list[np.ndarray], list[int]]:
    """Play ``ticks`` ticks with inputs from ``source`` (default the game's bots);
    returns (inputs per tick, hash of state_t for t = 0..ticks)."""
    state = game.create(seed, players)
    fn = input_source(game, players, source)
    inputs, hashes = [], [state.hash()]
    for t in range(ticks):
        frame = _frame(game, fn, state, t)
        inputs.append(frame.copy())  # what was sent, whatever step does to its argument
        game.step(state, frame, t)
        hashes.append(state.hash())
    return inputs, hashes


def _rollback_pass(game: Game, seed: int, players: int, ticks: int, rollback: int, source: Source, result: CheckResult) -> None:
    state = game.create(seed, players)
    fn = input_source(game, players, source)
    saved: dict[int, State] = {0: state.copy()}
    inputs: dict[int, np.ndarray] = {}
    hashes = {0: state.hash()}
    for t in range(ticks):
        frame = _frame(game, fn, state, t)
        inputs[t] = frame  # kept as a server keeps it: a step that writes to it spoils it
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


_CLOCKS = ("time", "monotonic", "perf_counter", "process_time")


@contextlib.contextmanager
def _clock_moved(game: Game, seconds: float = 123_457.25) -> Iterator[None]:
    """``time.time()`` and the other clocks (and the game module's own names for them)
    read ``seconds`` later, so a step that reads a clock sees another value."""
    patched: list[tuple[object, str, object]] = []
    originals = {}
    for name in _CLOCKS:
        for suffix, shift in (("", seconds), ("_ns", int(seconds * 1e9))):
            fn = getattr(time, name + suffix, None)
            if fn is None:
                continue
            originals[fn] = (lambda fn=fn, shift=shift: fn() + shift)
            patched.append((time, name + suffix, fn))
    module = sys.modules.get(type(game).__module__)
    if module is not None:  # `from time import time` in the game's module
        for attr, value in list(vars(module).items()):
            if callable(value) and value in originals:
                patched.append((module, attr, value))
    try:
        for owner, attr, fn in patched:
            setattr(owner, attr, originals[fn])
        yield
    finally:
        for owner, attr, fn in patched:
            setattr(owner, attr, fn)


def _worker_hashes(path: str, seed: int, players: int, ticks: int, source: Source) -> list[int]:
    """Hashes of a run computed in a fresh interpreter with another hash seed."""
    code = (
        "import sys, orjson; from engine.model import load_game; from engine.check import scripted_run;"
        f"g = load_game({path!r}); print(orjson.dumps([str(h) for h in scripted_run(g, {seed}, {players}, {ticks}, {source!r})[1]]).decode())"
    )
    env = dict(os.environ, PYTHONHASHSEED=str((seed * 7919 + 17 + (source or 0) * 31) % 4294967295))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the other process failed: {out.stderr.strip().splitlines()[-1:]}")
    return [int(h) for h in orjson.loads(out.stdout)]


def _first_difference(a: list[int], b: list[int]) -> int | None:
    for t, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))


def _run_source(game: Game, path: str | None, seed: int, players: int, ticks: int, rollback: int, source: Source,
                other_process: bool, result: CheckResult) -> None:
    _rollback_pass(game, seed, players, ticks, rollback, source, result)
    if not result.ok:
        return
    # A second, straight run with the clocks moved must give the same hashes (state_t+1
    # is compared, so tick t).
    _, first = scripted_run(game, seed, players, ticks, source)
    with _clock_moved(game):
        _, second = scripted_run(game, seed, players, ticks, source)
    bad = _first_difference(first, second)
    if bad is not None:
        result.first_bad_tick = max(bad - 1, 0)
        result.reason = "a second run from the same seed and inputs, with the clock moved on, diverged"
        return
    if other_process and path is not None:
        bad = _first_difference(first, _worker_hashes(path, seed, players, ticks, source))
        if bad is not None:
            result.first_bad_tick = max(bad - 1, 0)
            result.reason = "a run in another process (other PYTHONHASHSEED) diverged"


def _hints(game: Game, seed: int, players: int, ticks: int, source: Source, result: CheckResult) -> list[str]:
    """Watch a step at the ticks around the failure, and read the source."""
    inputs, _ = scripted_run(game, seed, players, ticks, source)
    state = game.create(seed, players)
    seen: list[str] = []
    bad = result.first_bad_tick or 0
    for t in range(min(bad + 1, ticks)):
        if t >= bad - 1:  # the steps just before and at the failure
            for hint in watch_step(game, state, inputs[t], t):
                if hint not in seen:
                    seen.append(hint)
        game.step(state, inputs[t].copy(), t)
    for hint in read_source(game):
        if hint not in seen:
            seen.append(hint)
    return seen


def check(
    game: Game | str,
    *,
    ticks: int = 1800,
    players: int | None = None,
    seed: int = 1,
    rollback: int = 2,
    other_process: bool = True,
    input_seeds: int = 2,
) -> CheckResult:
    """Run the determinism check; ``game`` may be a Game or an import path (needed for
    the other-process run). Inputs: the game's bots, then ``input_seeds`` random sources."""
    path = game if isinstance(game, str) else None
    if isinstance(game, str):
        game = load_game(game)
    players = players or min(game.max_players, 8)
    game.check_players(players)
    result = CheckResult(game=game.describe(), ticks=ticks, rollback=rollback, other_process=other_process and path is not None)
    state = game.create(seed, players)
    if game.replication is not None:
        result.errors += game.replication.problems(state)
    floats = float_arrays(state)
    if floats:
        modes = "it has no replication spec, so it runs in lockstep only" if game.replication is None else "in lockstep"
        result.warnings.append(
            f"float arrays in the state ({', '.join(floats)}): {modes}, every machine must compute the same bits, "
            "and float results can differ between CPUs and libraries; use integers or fixed point"
        )
    if game.replication is None:
        result.warnings += float_calls(game)
    if result.errors:
        return result
    for source in [None, *range(seed, seed + max(input_seeds, 0))]:
        result.runs.append(_describe_source(source))
        _run_source(game, path, seed, players, ticks, rollback, source, other_process, result)
        if not result.ok:
            result.inputs = _describe_source(source)
            result.hints = _hints(game, seed, players, ticks, source, result)
            return result
    return result
