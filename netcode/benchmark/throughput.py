"""Throughput cells of ``ticksync bench``: figures that need no network, each from one
function ``(game, plan) -> list of cells``.

A cell is a dict ``{"kind": "throughput", "key": unique name, "label": what was measured,
"value": number, "unit": ..., ...details}``; the JSON, the Markdown table and ``--compare``
show every registered cell the same way, so a new figure needs no change elsewhere.

**Extension point**: :func:`register` adds a cell function to every run. The cube scene
of ``../shared/cubes`` (its codec, benched in ``bench/bench_cubes.py``) is meant to plug in
here, e.g. ``register("cubes", lambda game, plan: cube_cells(...))`` in a module imported
by the command, returning [] when the scene is not present.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.model import Game
from netcode.benchmark.codec import codec_cells
from netcode.benchmark.replay import replay_cells

__all__ = ["CELLS", "register"]

CellFunction = Callable[[Game, "Plan"], list[dict]]  # noqa: F821 (Plan: netcode.benchmark.matrix)

#: name -> cell function, in the order they run.
CELLS: dict[str, CellFunction] = {
    "replay": lambda game, plan: replay_cells(game, plan.replay_ticks),
    "codec": lambda game, plan: codec_cells(game, plan.codec_rounds),
}


def register(name: str, cells: CellFunction) -> None:
    """Add (or replace) a throughput cell function run by every ``ticksync bench``."""
    CELLS[name] = cells
