"""Who needs to hear about what: relevance by distance, and a priority accumulator for a
bandwidth budget. Both are vectorized over (clients x entities).

Relevance uses two radii (enter, leave) so an entity hovering at the edge does not flicker
in and out, which would cost a create and a destroy every snapshot. The priority
accumulator adds each entity's priority every snapshot and sends the highest first within
the byte budget; what is sent drops to zero, what waits keeps growing, so every entity is
eventually sent however small the budget.
"""

from __future__ import annotations

import numpy as np

__all__ = ["relevance", "PriorityAccumulator"]


def relevance(
    viewers: np.ndarray, positions: np.ndarray, previous: np.ndarray | None, enter: float, leave: float
) -> np.ndarray:
    """(clients, entities) bool: entities within ``enter`` of each viewer, or within ``leave``
    if they were relevant before. ``viewers`` (clients, 2), ``positions`` (entities, 2)."""
    d = positions[None, :, :].astype(np.float64) - viewers[:, None, :]
    dist2 = np.einsum("cek,cek->ce", d, d)
    near = dist2 <= enter * enter
    if previous is not None:
        near |= previous & (dist2 <= leave * leave)
    return near


class PriorityAccumulator:
    """Per-entity accumulated priority for one client."""

    def __init__(self, capacity: int):
        self.acc = np.zeros(capacity, np.float64)

    def choose(self, candidates: np.ndarray, priority: np.ndarray, cost: np.ndarray, budget: int, must: np.ndarray) -> np.ndarray:
        """Boolean mask of candidates to send now: ``must`` ones always, then by accumulated
        priority while the summed ``cost`` (bytes) fits ``budget``."""
        acc = self.acc
        acc[candidates] += priority[candidates]
        chosen = must & candidates
        spent = int(cost[chosen].sum())
        rest = np.flatnonzero(candidates & ~chosen)
        if len(rest):
            order = rest[np.argsort(-acc[rest], kind="stable")]
            fits = np.cumsum(cost[order]) <= budget - spent
            chosen[order[fits]] = True
        acc[chosen] = 0.0
        return chosen
