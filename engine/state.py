"""State container: named fixed-shape numpy arrays, cheap copy/restore, a deterministic hash.

A game's whole state lives here: entity tables as struct-of-arrays columns (one array per
field, axis 0 = entity slot) plus 0-d arrays for scalars (tick counters, scores, the RNG).
Shapes and dtypes are fixed when the game creates the state, which is what makes
prediction, rollback and snapshot baselines a handful of ``np.copyto`` calls, and lets a
keyframe be the raw bytes of every array in name order.
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import xxhash

from .errors import TicksyncError

__all__ = ["State", "StateLayoutError"]


class StateLayoutError(TicksyncError, ValueError):
    """Two states (or a state and some bytes) do not share one layout, or a game's
    ``create`` built an unusable state: the game's fault (or that of whoever produced the
    other state or bytes). Still a ``ValueError``, as it always was."""


def _little_endian(arr: np.ndarray) -> np.ndarray:
    """Arrays are stored little-endian and C-contiguous so bytes and hashes are portable."""
    dt = arr.dtype
    if dt.byteorder == ">" or (dt.byteorder == "=" and np.little_endian is False):
        arr = arr.astype(dt.newbyteorder("<"))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def describe_dtype(dt: np.dtype) -> str:
    """A stable text form of a dtype (structured ones included) for fingerprints and headers."""
    return repr(np.lib.format.dtype_to_descr(np.dtype(dt)))


class State:
    """Named numpy arrays with fixed shapes and dtypes.

    Read and write fields as attributes or items: ``s.x += s.vx`` updates in place;
    ``s.score = 3`` copies into the existing 0-d array (shape and dtype never change).
    """

    __slots__ = ("_arrays", "_names", "_layout", "_layout_key")

    def __init__(self, arrays: Mapping[str, np.ndarray | int | float | bool]):
        if not arrays:
            raise StateLayoutError("a state needs at least one array")
        store: dict[str, np.ndarray] = {}
        for name in sorted(arrays):
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise StateLayoutError(f"state array name {name!r} must be a public identifier")
            value = arrays[name]
            arr = np.array(value) if not isinstance(value, np.ndarray) else value.copy()
            if arr.dtype == object:
                raise StateLayoutError(f"state array {name!r} has dtype object; use numeric dtypes")
            store[name] = _little_endian(arr)
        object.__setattr__(self, "_arrays", store)
        object.__setattr__(self, "_names", tuple(store))
        layout = tuple((n, a.dtype, a.shape) for n, a in store.items())
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_layout_key", repr([(n, d.str, s) for n, d, s in layout]).encode())

    # -- access -----------------------------------------------------------------------
    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise AttributeError(f"state has no array {name!r}") from None

    def __setattr__(self, name: str, value) -> None:
        self[name] = value

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, value) -> None:
        try:
            target = self._arrays[name]
        except KeyError:
            raise AttributeError(
                f"state has no array {name!r}; arrays are fixed when the game creates the state"
            ) from None
        if value is not target:
            np.copyto(target, value, casting="unsafe")

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def items(self):
        """(name, array) pairs in name order; the arrays themselves, not copies."""
        return self._arrays.items()

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def layout(self) -> tuple[tuple[str, np.dtype, tuple[int, ...]], ...]:
        """(name, dtype, shape) for every array, in name order."""
        return self._layout

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    # -- copy / restore ---------------------------------------------------------------
    def copy(self) -> "State":
        """An independent copy (every array copied); :meth:`restore` copies one back."""
        clone = object.__new__(State)
        object.__setattr__(clone, "_arrays", {n: a.copy() for n, a in self._arrays.items()})
        object.__setattr__(clone, "_names", self._names)
        object.__setattr__(clone, "_layout", self._layout)
        object.__setattr__(clone, "_layout_key", self._layout_key)
        return clone

    def restore(self, other: "State") -> None:
        """Overwrite this state's arrays in place with ``other``'s (same layout)."""
        if other._layout != self._layout:
            raise StateLayoutError(_layout_mismatch(self._layout, other._layout))
        mine = self._arrays
        for name, arr in other._arrays.items():
            np.copyto(mine[name], arr)

    # -- identity ---------------------------------------------------------------------
    def hash(self) -> int:
        """Deterministic 64-bit hash of layout and contents: same state, same hash, any process.

        XXH3-64, whose output is fixed by its spec: lockstep peers compare these across
        machines, and replays store them. It runs at memory speed, so hashing every tick in
        the determinism check costs less than a step."""
        h = xxhash.xxh3_64(self._layout_key)
        for arr in self._arrays.values():
            h.update(arr.data if arr.ndim else arr.tobytes())
        return h.intdigest()

    def differing(self, other: "State") -> list[str]:
        """Names of arrays whose contents differ (for desync reports)."""
        if other._layout != self._layout:
            raise StateLayoutError(_layout_mismatch(self._layout, other._layout))
        return [n for n, a in self._arrays.items() if not np.array_equal(a, other._arrays[n])]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return other._layout == self._layout and not self.differing(other)

    __hash__ = None  # mutable

    # -- bytes ------------------------------------------------------------------------
    def pack(self) -> bytes:
        """Raw bytes of every array in name order (a keyframe); the layout is implied."""
        return b"".join(a.tobytes() for a in self._arrays.values())

    def unpack_into(self, data: bytes | memoryview) -> None:
        """Load bytes made by :meth:`pack` of a state with this layout."""
        view = memoryview(data).cast("B")
        if len(view) != self.nbytes:
            raise StateLayoutError(
                f"keyframe holds {len(view)} bytes but this state's layout needs {self.nbytes}"
            )
        offset = 0
        for arr in self._arrays.values():
            n = arr.nbytes
            np.copyto(arr, np.frombuffer(view[offset : offset + n], dtype=arr.dtype).reshape(arr.shape))
            offset += n

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}:{a.dtype}{list(a.shape)}" for n, a in self._arrays.items())
        return f"State({parts})"


def _layout_mismatch(a, b) -> str:
    names_a = {n for n, _, _ in a}
    names_b = {n for n, _, _ in b}
    if names_a != names_b:
        return f"state layouts differ: only in one: {sorted(names_a ^ names_b)}"
    for (n, da, sa), (_, db, sb) in zip(a, b):
        if da != db or sa != sb:
            return f"state layouts differ at {n!r}: {da}{list(sa)} vs {db}{list(sb)}"
    return "state layouts differ"
