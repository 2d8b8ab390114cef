# cython: annotation_typing=False
"""Per-source token buckets in a bounded table: the transports' first guard against floods.

Compiled (Cython's pure-Python mode, ``ratelimit.pxd``) so the polled UDP reader
(:mod:`netcode.transport._mmsg`) calls :meth:`RateLimiter.allow` as a C function for
every datagram; the same source runs as plain Python where there is no compiler.
"""

from __future__ import annotations

from typing import Hashable

__all__ = ["RateLimiter"]


class Bucket:
    """One key's tokens and when they were last counted (a C struct's worth when compiled:
    taking a token allocates nothing; a list of two floats boxed both every datagram)."""

    def __init__(self, tokens: float, last: float):
        self.tokens = tokens
        self.last = last

    def __repr__(self) -> str:
        return f"Bucket({self.tokens!r}, {self.last!r})"


class RateLimiter:
    """Per-key token buckets in a bounded table.

    A bucket that has been idle long enough to refill is indistinguishable from a new one,
    so evicting it loses nothing; when the table is full of active buckets (many spoofed
    source addresses), the oldest are evicted too. Eviction only ever *refills* a bucket,
    so it can hand a spoofer a fresh burst (which a new address gets anyway) but never
    throttles a legitimate client. Sweeps shrink the table to 3/4 of ``max_tracked``, so
    their cost is amortized O(1) per new key.
    """

    def __init__(self, rate: float, burst: float, max_tracked: int = 65536):
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_tracked = max_tracked
        self._buckets: dict = {}  # key -> Bucket
        self.evicted = 0

    def allow(self, key: Hashable, now: float) -> bool:
        """Take a token from ``key``'s bucket at time ``now``: whether there was one."""
        found = self._buckets.get(key)
        if found is None:
            if len(self._buckets) >= self.max_tracked:
                self._sweep(now)
            self._buckets[key] = Bucket(self.burst - 1.0, now)
            return True
        b = found
        tokens = b.tokens + (now - b.last) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        b.last = now
        if tokens < 1.0:
            b.tokens = tokens
            return False
        b.tokens = tokens - 1.0
        return True

    def forget(self, key: Hashable) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        buckets, rate, burst = self._buckets, self.rate, self.burst
        full = [k for k, b in buckets.items() if b.tokens + (now - b.last) * rate >= burst]
        for k in full:
            del buckets[k]
        target = (self.max_tracked * 3) // 4
        excess = len(buckets) - target
        if excess > 0:  # still full of active keys: drop the oldest-inserted
            for k in [k for k, _ in zip(buckets, range(excess))]:
                del buckets[k]
        self.evicted += len(full) + max(excess, 0)
