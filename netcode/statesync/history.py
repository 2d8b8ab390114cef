# cython: annotation_typing=False
"""The server's recent snapshots, kept as baselines.

Whether a client's ack names a snapshot still held is asked for every input packet with a
new ack and two or three times per client per snapshot (9000 times a second in a
100-client room), from the compiled input gate and snapshot sender, so this is compiled
(Cython's pure-Python mode, ``history.pxd``) and they call :meth:`SnapshotHistory.has` as
a C function; the same source runs as plain Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netcode.errors import UsageError

if TYPE_CHECKING:
    from netcode.statesync.snapshot import SnapshotSchema

__all__ = ["SnapshotHistory"]


class SnapshotHistory:
    """The server's recent snapshots (codes, alive, extras) by tick, for baselines.

    Holds the newest ``depth`` snapshots whatever the interval between them: snapshots are
    taken every ``every`` ticks (at multiples of it), so snapshot ``tick`` lives in slot
    ``(tick // every) % depth`` and ``depth`` snapshots span ``depth * every`` ticks."""

    def __init__(self, schema: SnapshotSchema, depth: int = 64, every: int = 1):
        self.depth = depth
        self.every = every
        self.codes = np.zeros((depth, schema.capacity, schema.columns), np.int64)
        self.alive = np.zeros((depth, schema.capacity), bool)
        self.extras: list[bytes] = [b""] * depth
        self.ticks = np.full(depth, -1, np.int64)
        self._ticks = memoryview(self.ticks)  # item reads without numpy scalars (has() is hot)

    @property
    def span(self) -> int:
        """Ticks between the oldest snapshot a full history holds and the newest."""
        return (self.depth - 1) * self.every

    def add(self, tick: int, codes: np.ndarray, alive: np.ndarray, extras: bytes) -> None:
        if tick % self.every:
            raise UsageError(f"snapshot tick {tick} is not a multiple of the interval {self.every}")
        i = self.index(tick)
        self.codes[i] = codes
        self.alive[i] = alive
        self.extras[i] = extras
        self.ticks[i] = tick

    def has(self, tick: int) -> bool:
        return tick >= 0 and tick % self.every == 0 and self._ticks[(tick // self.every) % self.depth] == tick

    def index(self, tick):
        """The slot of snapshot ``tick`` (an int, or a numpy array of ticks)."""
        return (tick // self.every) % self.depth
