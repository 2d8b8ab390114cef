"""The game contract both network modes run.

A game is written once as a subclass of :class:`Game`:

* ``input_dtype`` - numpy structured dtype, one fixed-size record per player per tick;
* ``create(seed, players) -> State`` - the initial state;
* ``step(state, inputs, tick)`` - advance one tick in place. Pure logic: no clock, no I/O,
  randomness only from :mod:`engine.rng` kept inside the state. Lockstep needs it
  deterministic (integer or fixed-point math), which the engine checks by hashing.
* ``name`` / ``version`` - checked in the network handshake together with
  :meth:`Game.fingerprint`, so a mismatched client is refused instead of desyncing.

Optional: ``input_limits`` (inclusive clamp range per input field, applied to every input
that arrives from a network), ``bot_inputs`` (scripted players for headless runs, bots and
benches), ``replication`` (what state sync sends and how it is quantized), ``visuals`` and
``controls`` (how a viewer draws it and which keys play it; presentation only, so they are
not part of the fingerprint).
"""

from __future__ import annotations

import hashlib
import importlib
import traceback
from typing import Any, ClassVar, Mapping

import numpy as np

from .errors import TicksyncError
from .state import State, describe_dtype

__all__ = ["Game", "GameError", "load_game"]


class GameError(TicksyncError):
    """A game module or object does not meet the contract: the game's fault (its author's
    mistake), not the network's or the caller's."""


class Game:
    """A game both network modes, replays, bots and ``ticksync check`` run: subclass it.

    Set ``name``, ``version`` and ``input_dtype`` (a numpy structured dtype: one record
    per player per tick), and write :meth:`create` and :meth:`step`. Optional:
    ``input_limits`` (inclusive clamp per input field, applied to network input),
    ``max_players``, ``tick_rate``, :meth:`bot_inputs` (scripted players),
    :meth:`player_entity` and ``replication`` (what state sync sends; None: lockstep
    only). A game object holds no match state: everything that changes lives in the
    :class:`State` that ``create`` returns. docs/writing-a-game.md walks through one.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    input_dtype: ClassVar[np.dtype]
    #: Largest player count ``create`` accepts.
    max_players: ClassVar[int] = 64
    #: Ticks per second the game is designed for (servers and the CLI default to it).
    tick_rate: ClassVar[int] = 60
    #: Inclusive (low, high) per numeric input field; inputs from the network are clamped.
    input_limits: ClassVar[Mapping[str, tuple[float, float]]] = {}
    #: State-sync replication spec (see :mod:`engine.replication`); None = lockstep only.
    replication: ClassVar[Any] = None
    #: How its entities look to a generic viewer (:mod:`engine.visuals`); None = dots.
    visuals: ClassVar[Any] = None
    #: Keys and mouse to input record (:mod:`engine.controls`); None = arrows on a move field.
    controls: ClassVar[Any] = None

    # -- the contract ---------------------------------------------------------------------
    def create(self, seed: int, players: int) -> State:
        """The state before tick 0 for ``players`` player slots (1..``max_players``), from
        ``seed`` alone: every array the match will ever need, at its final shape."""
        raise NotImplementedError

    def step(self, state: State, inputs: np.ndarray, tick: int) -> None:
        """Advance ``state`` (state_tick) by one tick in place, to state_tick+1.

        ``inputs``: one ``input_dtype`` record per player slot (zeros for an absent
        player), already clamped to ``input_limits``; read it, never write it. Use nothing
        but the arguments: no clock, no I/O, no attributes of ``self`` that change, no
        global random (``engine.rng`` keeps its generator in the state). Lockstep needs the
        same bits on every machine: integer or fixed-point math."""
        raise NotImplementedError

    def bot_inputs(self, state: State, tick: int, slots: np.ndarray) -> np.ndarray:
        """Inputs a scripted bot would send for each player slot in ``slots`` at ``tick``.

        Must depend only on its arguments, so bots are reproducible. Default: idle.
        """
        return np.zeros(len(slots), dtype=self.input_dtype)

    def player_entity(self, slot: int) -> int:
        """The entity slot player ``slot`` controls (state sync predicts and centres interest
        on it). Default: the same number."""
        return slot

    # -- derived --------------------------------------------------------------------------
    def neutral_inputs(self, players: int) -> np.ndarray:
        """The input of a player who is absent or has sent nothing yet: all zeros."""
        return np.zeros(players, dtype=self.input_dtype)

    def sanitize_inputs(self, inputs: np.ndarray) -> int:
        """Clamp ``inputs`` in place to ``input_limits`` (NaN becomes the low bound).

        Returns how many records had to be changed, so callers can count hostile input.
        """
        if not self.input_limits or len(inputs) == 0:
            return 0
        n = len(inputs)
        table = self._byte_limits(inputs.dtype)
        if table is not None and inputs.flags.c_contiguous:
            # Every tested field is one-byte integers: one lookup of every byte in a table
            # of the values out of range (3 numpy calls instead of 4 a field); the
            # clamping below runs only when one is.
            raw = inputs.view(np.uint8).reshape(n, -1)
            if not np.count_nonzero(table[0].take(raw + table[1])):
                return 0
        bad = np.zeros(n, dtype=bool)
        # A server runs this every tick on inputs that are almost always in range, so the
        # test is made cheap: on a contiguous copy of the field (comparisons through a
        # record array's strides cost twice as much) and with np.count_nonzero (a tenth of
        # what ndarray.any() costs on small arrays).
        for field, low, high in self._limits_to_test(inputs.dtype):
            col = inputs[field]  # (n,) or (n, k) for sub-array fields
            if col.dtype.kind == "f":
                nan = np.isnan(col)
                if np.count_nonzero(nan):
                    bad |= nan.reshape(n, -1).any(axis=1)
                    col[nan] = low
            values = np.ascontiguousarray(col)
            out = (values < low) | (values > high)
            if np.count_nonzero(out):
                bad |= out.reshape(n, -1).any(axis=1)
                np.clip(col, low, high, out=col)
        return int(np.count_nonzero(bad))

    def _limits_to_test(self, dtype: np.dtype) -> list[tuple[str, float, float]]:
        """``input_limits`` as (field, low, high), without the fields whose integer type
        cannot hold a value outside them (swarm's (0, 255) on a byte): nothing to test.
        Cached per dtype."""
        cache = self.__dict__.get("_limits_cache")
        if cache is None:
            cache = self.__dict__["_limits_cache"] = {}
        hit = cache.get(dtype)
        if hit is None:
            hit = cache[dtype] = []
            for field, (low, high) in self.input_limits.items():
                base = dtype[field].base
                if base.kind in "iu" and low <= np.iinfo(base).min and high >= np.iinfo(base).max:
                    continue
                hit.append((field, low, high))
        return hit

    def _byte_limits(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray] | None:
        """(table, offsets) when every field :meth:`_limits_to_test` lists is made of
        one-byte integers: ``table[offsets[j] + b]`` says byte value ``b`` at byte ``j`` of
        a record is out of its field's range. None otherwise. Cached per dtype."""
        cache = self.__dict__.get("_byte_limits_cache")
        if cache is None:
            cache = self.__dict__["_byte_limits_cache"] = {}
        if dtype in cache:
            return cache[dtype]
        table = np.zeros((dtype.itemsize, 256), bool)
        for field, low, high in self._limits_to_test(dtype):
            sub, offset = dtype.fields[field][:2]
            base = sub.base
            if base.kind not in "iu" or base.itemsize != 1:
                table = None
                break
            values = np.arange(256, dtype=np.uint8).view(base).astype(np.int64)
            out = (values < low) | (values > high)
            table[offset : offset + sub.itemsize] = out
        hit = None if table is None else (table.reshape(-1), np.arange(dtype.itemsize, dtype=np.intp) * 256)
        cache[dtype] = hit
        return hit

    def fingerprint(self) -> int:
        """64-bit schema fingerprint: changes when the name, version, input dtype, state
        layout (names, dtypes, shapes at one player) or replication spec change. Cached."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        state = self.create(0, 1)
        h = hashlib.blake2b(digest_size=8)
        h.update(f"{self.name}\0{self.version}\0".encode())
        h.update(describe_dtype(self.input_dtype).encode())
        for name, dtype, shape in state.layout:  # shapes as created for one player
            h.update(f"\0{name}:{describe_dtype(dtype)}{list(shape)}".encode())
        if self.replication is not None:
            h.update(repr(self.replication).encode())
        fp = int.from_bytes(h.digest(), "little")
        self.__dict__["_fingerprint"] = fp
        return fp

    def describe(self) -> str:
        """``"name version"``, as messages show the game."""
        return f"{self.name} {self.version}"

    def check_players(self, players: int) -> None:
        """GameError unless 1 <= ``players`` <= ``max_players``."""
        if not 1 <= players <= self.max_players:
            raise GameError(f"{self.describe()} takes 1..{self.max_players} players, not {players}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()} fp={self.fingerprint():016x}>"


def _validate(game: Any, where: str) -> Game:
    if not isinstance(game, Game):
        raise GameError(f"{where} is {type(game).__name__}, not a ticksync Game")
    if not game.name or not game.version:
        raise GameError(f"{where} must set name and version")
    dt = getattr(game, "input_dtype", None)
    if not isinstance(dt, np.dtype) or dt.names is None:
        raise GameError(f"{where}.input_dtype must be a numpy structured dtype")
    return game


def _where(exc: BaseException, module_name: str) -> str:
    """``"FILE, line N: "`` of the line in the game's own code that raised ``exc`` while
    importing (the deepest frame outside the import machinery), or ""."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    if not frames:
        return ""
    top = module_name.split(".")[0]
    own = [f for f in frames if f"/{top}/" in f.filename or f.filename.endswith(f"/{top}.py")]
    frame = (own or frames)[-1]
    return f"{frame.filename}, line {frame.lineno}: "


def load_game(path: str) -> Game:
    """Load a game from an import path: ``pkg.module`` (its ``GAME``) or ``pkg.module:attr``.

    ``attr`` may be a Game instance or a Game subclass (instantiated with no arguments).
    """
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise GameError(f"no game module {module_name!r} (is it importable?)") from None
        raise GameError(f"game module {module_name!r} failed to import: {_where(exc, module_name)}{exc}") from exc
    except SyntaxError as exc:
        raise GameError(
            f"game module {module_name!r} has a syntax error: {exc.filename}, line {exc.lineno}: {exc.msg}"
        ) from exc
    except Exception as exc:  # anything the module's own code raised while importing
        name = type(exc).__name__
        raise GameError(f"game module {module_name!r} failed to import: {_where(exc, module_name)}{name}: {exc}") from exc
    attr = attr or "GAME"
    if not hasattr(module, attr):
        raise GameError(f"module {module_name!r} has no {attr!r}; a game module exports GAME")
    obj = getattr(module, attr)
    if isinstance(obj, type) and issubclass(obj, Game):
        obj = obj()
    return _validate(obj, f"{module_name}:{attr}")
