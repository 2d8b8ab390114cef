"""Deterministic, vectorized random numbers whose whole state is one uint64 in the game state.

``step`` may use randomness only through a generator kept in the state, so that rollback,
replay and every lockstep peer draw the same numbers. A counter-based generator
(SplitMix64 over a Weyl sequence) fits that: the state is a single 0-d uint64 array, a draw
of n values is a few numpy operations, and copying the state copies the generator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rng_state", "random_u64", "randint", "chance", "hash_u64"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def rng_state(seed: int) -> np.ndarray:
    """A fresh generator state (0-d uint64) for a state array, derived from ``seed``."""
    s = np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    return _mix(s + _GAMMA).reshape(())


_weyl_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _weyl(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of draws 1..n, advance by n) on the Weyl sequence; cached: steps call this
    every tick with the same few sizes."""
    hit = _weyl_cache.get(n)
    if hit is None:
        hit = (np.arange(1, n + 1, dtype=np.uint64) * _GAMMA, np.array([n], dtype=np.uint64) * _GAMMA)
        if len(_weyl_cache) < 256:
            _weyl_cache[n] = hit
    return hit


def random_u64(rng: np.ndarray, n: int) -> np.ndarray:
    """Draw ``n`` uint64 values and advance ``rng`` (a 0-d uint64 array, updated in place)."""
    counter = rng.reshape(1)  # 1-d view: array arithmetic wraps silently, scalars would warn
    offsets, advance = _weyl(n)
    out = _mix(counter + offsets)
    counter += advance
    return out


def randint(rng: np.ndarray, n: int, low: int, high: int) -> np.ndarray:
    """``n`` integers uniform in [low, high) as int64 (bias below 2**-32 for ranges < 2**32)."""
    if high <= low:
        raise ValueError(f"randint needs low < high, got [{low}, {high})")
    span = np.uint64(high - low)
    return (random_u64(rng, n) % span).astype(np.int64) + low


def chance(rng: np.ndarray, n: int, numerator: int, denominator: int) -> np.ndarray:
    """``n`` booleans, each true with probability numerator/denominator."""
    return randint(rng, n, 0, denominator) < numerator


def hash_u64(*keys: np.ndarray | int) -> np.ndarray:
    """Stateless hash of integer keys (broadcast together) to uint64: for choices that must
    be reproducible from their inputs alone, such as what a scripted bot does at a tick."""
    z = np.zeros(np.broadcast_shapes(*(np.shape(k) for k in keys)) or (1,), dtype=np.uint64)
    for k in keys:
        z = _mix(z ^ (np.asarray(k).astype(np.uint64) + _GAMMA))
    return z
