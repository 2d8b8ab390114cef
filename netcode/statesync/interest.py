"""Who needs to hear about what: a grid of interest cells, vectorized over entities (a byte
budget's choice within what a client sees is :mod:`netcode.statesync.priority`'s).

Interest is by grid: a client sees the entities in its own cell and the eight around it,
so everything within one cell size of it, and some beyond. A grid, rather than a radius
per client, makes everyone in a cell see the same set: the server encodes one snapshot per
cell (and baseline) and shares the bytes, as it does without interest management. A
client changes cell only once it is a margin past the border, so one walking along a
border does not flip between two sets every snapshot (each flip costs creates and
destroys).
"""

from __future__ import annotations

import numpy as np

__all__ = ["InterestGrid"]

Cell = tuple[int, int]


class InterestGrid:
    def __init__(self, cell_size: float, margin: float = 0.1):
        if not cell_size > 0:
            raise ValueError("the interest cell size must be positive")
        self.size = float(cell_size)
        self.margin = margin * self.size

    def cells(self, positions: np.ndarray) -> np.ndarray:
        """(entities, 2) int64 cell coordinates of (entities, 2) positions."""
        return np.floor_divide(positions, self.size).astype(np.int64)

    def viewer_cell(self, position, previous: Cell | None) -> Cell:
        """The cell a viewer at ``position`` is in, staying in ``previous`` until it is
        ``margin`` past that cell's border."""
        x, y = float(position[0]), float(position[1])
        if previous is not None:
            lo_x, lo_y = previous[0] * self.size - self.margin, previous[1] * self.size - self.margin
            if lo_x <= x < lo_x + self.size + 2 * self.margin and lo_y <= y < lo_y + self.size + 2 * self.margin:
                return previous
        return int(x // self.size), int(y // self.size)

    @staticmethod
    def view(cells: np.ndarray, alive: np.ndarray, cell: Cell) -> np.ndarray:
        """Entities alive in the 3 x 3 cells around ``cell``."""
        return alive & (np.abs(cells[:, 0] - cell[0]) <= 1) & (np.abs(cells[:, 1] - cell[1]) <= 1)
