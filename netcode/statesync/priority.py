"""A byte budget's choice of what to send each client: a priority accumulator per client.

Each snapshot every candidate entity adds its priority to what it has accumulated; the
client is sent the highest first while their costs fit its budget, and what is sent drops
to zero while what waits keeps growing, so every entity is eventually sent however small
the budget.

Asked once per client per snapshot over every entity (64 budgeted clients of a 1000-entity
room: 64 choices a snapshot), so it is compiled (Cython's pure-Python mode, typed by
``priority.pxd``) and picks the few that fit with a heap instead of sorting every
candidate; the same source runs as plain Python where there is no compiler.
"""

import cython
import numpy as np

__all__ = ["PriorityAccumulator"]

compiled = cython.compiled


def _column(name: str, values, dtype, n: int) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype)
    if values.shape != (n,):
        raise ValueError(f"{name}: {n} entities, not {values.shape}")
    return values


class PriorityAccumulator:
    """Per-entity accumulated priority for one client."""

    def __init__(self, capacity: int):
        self.acc = np.zeros(capacity, np.float64)  # (read-only: its typed view below must stay on it)
        self._acc = self.acc
        self._heap = np.empty(capacity, np.intp)  # scratch: the candidates not yet chosen, as a heap

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def _ahead(self, i: cython.Py_ssize_t, j: cython.Py_ssize_t) -> cython.bint:
        """Whether entity ``i`` goes before ``j``: more accumulated, or as much and a lower
        id (the order a stable sort by descending priority gives)."""
        return self._acc[i] > self._acc[j] or (self._acc[i] == self._acc[j] and i < j)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.locals(child=cython.Py_ssize_t, item=cython.Py_ssize_t)
    def _sift(self, at: cython.Py_ssize_t, size: cython.Py_ssize_t) -> cython.void:
        """Move the heap's entry ``at`` down to where neither child goes before it."""
        item = self._heap[at]
        while True:
            child = 2 * at + 1
            if child >= size:
                break
            if child + 1 < size and self._ahead(self._heap[child + 1], self._heap[child]):
                child += 1
            if not self._ahead(self._heap[child], item):
                break
            self._heap[at] = self._heap[child]
            at = child
        self._heap[at] = item

    @cython.boundscheck(False)
    @cython.wraparound(False)
    @cython.locals(
        n=cython.Py_ssize_t, i=cython.Py_ssize_t, k=cython.Py_ssize_t, size=cython.Py_ssize_t, top=cython.Py_ssize_t,
        spent=cython.longlong, rest=cython.longlong, left=cython.longlong, used=cython.longlong, x=cython.longlong, p=cython.double,
        a=cython.double[::1], pr=cython.double[::1], co=cython.longlong[::1], cand=cython.uchar[::1], mu=cython.uchar[::1],
        out=cython.uchar[::1], h=cython.Py_ssize_t[::1],
    )
    def choose(self, candidates, priority, cost, budget, must):
        """Boolean mask of ``candidates`` to send now: ``must`` ones always, then by
        accumulated priority (ties: the lower id) while the summed ``cost`` (bytes, >= 0)
        fits ``budget``; the first that does not fit ends the choice. Per entity:
        ``candidates`` and ``must`` bool, ``priority`` float (not NaN), ``cost`` int."""
        n = len(self.acc)
        cand = _column("candidates", candidates, np.bool_, n).view(np.uint8)
        mu = _column("must", must, np.bool_, n).view(np.uint8)
        pr = _column("priority", priority, np.float64, n)
        co = _column("cost", cost, np.int64, n)
        a = self._acc
        chosen = np.zeros(n, np.uint8)
        out = chosen
        spent = rest = 0
        k = 0  # candidates not forced
        for i in range(n):
            if not cand[i]:
                continue
            p = pr[i]
            x = co[i]
            if p != p or x < 0:  # (a NaN would leave the order undefined; a negative cost the choice a non-prefix)
                raise ValueError(f"entity {i}: priority {p}, cost {x}: priorities are numbers and costs >= 0")
            a[i] += p
            if mu[i]:
                out[i] = 1
                spent += x
            else:
                k += 1
                rest += x
        left = budget - spent
        if rest <= left:  # every candidate fits: no order needed
            for i in range(n):
                if cand[i]:
                    out[i] = 1
        elif k:
            h = self._heap
            k = 0
            for i in range(n):
                if cand[i] and not mu[i]:
                    h[k] = i
                    k += 1
            size = k
            for i in range(size // 2 - 1, -1, -1):
                self._sift(i, size)
            used = 0
            while size:
                top = h[0]
                used += co[top]
                if used > left:
                    break
                out[top] = 1
                size -= 1
                h[0] = h[size]
                self._sift(0, size)
        for i in range(n):
            if out[i]:
                a[i] = 0.0
        return chosen.view(np.bool_)
