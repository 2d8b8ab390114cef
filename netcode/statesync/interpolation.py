"""Showing remote entities in the recent past, smoothly: a buffer of snapshots to interpolate.

A client shows everyone but itself at a *render tick* a little behind the server (about two
snapshot intervals plus jitter), so there is usually a snapshot on each side of it to blend
between. Each snapshot records, per entity, whether its value is vouched for (the part
carrying its id range arrived), so a lost part leaves a gap for those entities only, bridged
by interpolating across it. When nothing newer has arrived the last motion is extrapolated
briefly, then the entity holds still until news comes.

Everything is vectorized over (snapshots x entities).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SnapshotBuffer", "Sample"]


class Sample:
    """Interpolated codes (float) for every entity at a render tick, and which are shown."""

    __slots__ = ("tick", "codes", "visible", "extrapolated")

    def __init__(self, tick: float, codes: np.ndarray, visible: np.ndarray, extrapolated: np.ndarray):
        self.tick = tick
        self.codes = codes
        self.visible = visible
        self.extrapolated = extrapolated


class SnapshotBuffer:
    def __init__(self, capacity: int, columns: int, blend: np.ndarray, wrap: np.ndarray | None = None, depth: int = 32):
        """``blend``: bool per column, interpolated (positions) or held (ids, flags).
        ``wrap``: per column, the code range for circular quantities (angles), 0 if none."""
        self.depth = depth
        self.ticks = np.full(depth, -1, np.int64)
        self.codes = np.zeros((depth, capacity, columns), np.int64)
        self.view = np.zeros((depth, capacity), bool)
        self.covered = np.zeros((depth, capacity), bool)
        self.blend = blend
        self.wrap = np.zeros(columns, np.int64) if wrap is None else wrap

    def put(self, tick: int, codes: np.ndarray, view: np.ndarray, covered: np.ndarray) -> None:
        """Add or refresh the snapshot of ``tick`` (parts may arrive one by one)."""
        i = tick % self.depth
        if self.ticks[i] > tick:
            return  # older than what the slot holds now
        self.ticks[i] = tick
        self.codes[i] = codes
        self.view[i] = view
        self.covered[i] = covered

    def newest(self) -> int:
        return int(self.ticks.max())

    def sample(self, render_tick: float, max_extrapolation: float) -> Sample:
        """State at ``render_tick``; ``max_extrapolation`` in ticks past the newest sample."""
        ticks = self.ticks
        valid = self.covered & (ticks >= 0)[:, None]
        at_or_before = valid & (ticks <= render_tick)[:, None]
        after = valid & (ticks > render_tick)[:, None]
        big = np.iinfo(np.int64).max
        t_old = np.where(at_or_before, ticks[:, None], -1).max(axis=0)
        i_old = np.where(at_or_before, ticks[:, None], -1).argmax(axis=0)
        t_new = np.where(after, ticks[:, None], big).min(axis=0)
        i_new = np.where(after, ticks[:, None], big).argmin(axis=0)
        n = np.arange(self.view.shape[1])
        has_old = t_old >= 0
        visible = has_old & self.view[i_old, n]
        old = self.codes[i_old, n].astype(np.float64)
        out = old.copy()
        blend = self.blend
        # Between two samples: blend positions linearly.
        has_new = (t_new != big) & visible & self.view[i_new, n]
        if has_new.any():
            new = self.codes[i_new, n].astype(np.float64)
            span = np.where(has_new, t_new - t_old, 1).astype(np.float64)
            alpha = np.where(has_new, (render_tick - t_old) / span, 0.0)[:, None]
            delta = self._circular(new - old)
            out = np.where(has_new[:, None] & blend[None, :], old + alpha * delta, out)
        # Past the newest sample: extrapolate from the two before, briefly.
        extrapolated = visible & ~has_new & (render_tick > t_old)
        if extrapolated.any():
            before = valid & (ticks[:, None] < t_old[None, :])
            t_prev = np.where(before, ticks[:, None], -1).max(axis=0)
            i_prev = np.where(before, ticks[:, None], -1).argmax(axis=0)
            ok = extrapolated & (t_prev >= 0) & self.view[i_prev, n]
            ahead = np.minimum(render_tick - t_old, max_extrapolation)
            rate = self._circular(old - self.codes[i_prev, n]) / np.where(ok, t_old - t_prev, 1)[:, None]
            out = np.where(ok[:, None] & blend[None, :], old + rate * ahead[:, None], out)
            extrapolated = ok
        return Sample(render_tick, out, visible, extrapolated)

    def _circular(self, delta: np.ndarray) -> np.ndarray:
        """Shortest way round for circular columns (angles), straight for the rest."""
        wrap = self.wrap
        if not wrap.any():
            return delta
        w = np.where(wrap > 0, wrap, 1).astype(np.float64)
        turned = (delta + w / 2) % w - w / 2
        return np.where(wrap > 0, turned, delta)
