"""Recorded input logs: write, read, verify, seek.

A replay is everything needed to re-run a match bit for bit: the game's identity, the
seed and player count, then every tick's inputs. Periodic state hashes let a re-run
name the first tick where it diverges; periodic keyframes (whole packed states) let a
viewer jump to any tick without simulating from zero. Records are framed and
checksummed one by one and appended as the match runs, so a killed process leaves a
file whose intact prefix still replays; the reader stops at the damage and says where.

Tick convention: ``state_t`` is the state after ``t`` steps from
``game.create(seed, players)``; ``game.step(state, inputs_t, t)`` turns ``state_t`` into
``state_{t+1}``. A HASH or KEYFRAME record for tick ``t`` describes ``state_t``, the
state *before* stepping tick ``t``.

File format (version 1; all integers little-endian)
---------------------------------------------------

File header::

    magic      8 bytes   b"TSRPLAY\\0"
    version    u16       format version, 1
    hlen       u32       length of the JSON that follows (at most 1 MiB)
    json       hlen      UTF-8 JSON object, fields below
    hcrc       u32       CRC-32 (zlib / IEEE 802.3) of every header byte before it
                         (magic through json)

Header JSON fields (all required; readers ignore fields they do not know)::

    "game"            str   Game.name
    "game_version"    str   Game.version
    "fingerprint"     str   Game.fingerprint() as exactly 16 lowercase hex digits
    "seed"            int   seed given to game.create
    "tick_rate"       int   ticks per second the match ran at
    "players"         int   player slots (rows of every tick's inputs), >= 1
    "mode"            str   "lockstep" | "statesync" | "offline"
    "hash_every"      int   writer's HASH period in ticks (0 = none)
    "keyframe_every"  int   writer's KEYFRAME period in ticks (0 = none)
    "input_dtype"     str   engine.state.describe_dtype(game.input_dtype)
    "input_itemsize"  int   bytes per player input record
    "state_nbytes"    int   len(State.pack()) for this game, seed and player count
    "meta"            obj   free-form, for the application (room, player names, ...)

Then records, back to back until the end of the file::

    kind    u8
    tick    u32
    length  u32      payload length in bytes
    payload length bytes
    crc     u32      CRC-32 of kind, tick, length and payload (the 9 + length bytes before it)

Record kinds:

* ``1 INPUTS`` - the inputs of tick ``tick``: ``players * input_itemsize`` bytes, the input
  records of slots 0..players-1 in ``input_dtype`` layout (numpy ``tobytes()``). An empty
  payload means "the same bytes as the previous INPUTS record" (idle and held inputs
  repeat a lot); the first INPUTS record is never empty.
* ``2 HASH`` - u64 ``State.hash()`` (XXH3-64) of ``state_tick``. Its tick may be at most
  the tick of the next INPUTS record, and may be earlier (hashes that peers report late).
* ``3 KEYFRAME`` - ``state_tick`` whole: a flag byte, then ``State.pack()`` bytes either
  as they are (flag 0; payload is ``1 + state_nbytes`` bytes) or as one zlib stream
  (flag 1; the writer uses it only when it is smaller).
* ``4 END`` - empty payload, tick = number of INPUTS records; the writer closed the file
  cleanly. Nothing follows it.

Sequencing: INPUTS records carry ticks 0, 1, 2, ... with none missing; a KEYFRAME and the
END carry the tick of the next INPUTS record; a HASH carries at most that tick. A tick may
have several HASH records (e.g. the server's and one a peer reported); all are verified. The writer emits, per tick ``t``:
``[HASH t] [KEYFRAME t] INPUTS t``, and on close ``[HASH N] END N``.

Reading: a record that is cut short by the end of the file is a *torn tail* (a killed
writer); an unknown kind, a length the kind cannot have, a CRC mismatch or a tick out of
sequence make it *corrupt*. Either way the reader keeps every record before it and stops
there, reporting ``reader.tail`` ("torn tail after tick 4711: 13 of 21 bytes", "corrupt
record at tick 512 (CRC mismatch)"). ``reader.clean`` is true only when the file ends
with END. When intact records follow the bad one, the file was *damaged* (a flipped bit,
a bad copy), not cut short by a crash: ``reader.damage`` says at which byte and tick, and
how many ticks are lost, counting the records after it (they are never replayed: the
inputs are a chain); ``reader.expected_ticks`` is what the file's END says it held. A damaged file *header* is an error (:class:`ReplayError`): without it nothing
can be replayed.

Decisions: the writer flushes after every tick by default (a killed process loses at most
the record being written) but never fsyncs, which would cost milliseconds per tick; a
power cut may lose more, and the reader copes with that the same way. Leaving a ``with
ReplayWriter(...)`` block by an exception closes the file *without* END (as
:meth:`ReplayWriter.abort` does), so the replay reports that the recording did not finish
normally.
"""

from __future__ import annotations

import ast
import operator
import os
import struct
import zlib
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple

import numpy as np
import orjson

from .errors import TicksyncError
from .model import Game
from .state import State, StateLayoutError, describe_dtype

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MODES",
    "Kind",
    "Record",
    "ReplayError",
    "ReplayReader",
    "ReplayResult",
    "ReplayWriter",
    "record_run",
    "replay",
    "seek",
]

MAGIC = b"TSRPLAY\0"
FORMAT_VERSION = 1
MODES = ("lockstep", "statesync", "offline")
MAX_HEADER = 1 << 20
MAX_TICK = 0xFFFFFFFF

_PREFIX = struct.Struct("<8sHI")  # magic, version, header length
_REC = struct.Struct("<BII")  # kind, tick, length
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_KF_RAW, _KF_ZLIB = 0, 1


class Kind(IntEnum):
    INPUTS = 1
    HASH = 2
    KEYFRAME = 3
    END = 4


_INPUTS, _HASH, _KEYFRAME, _END = 1, 2, 3, 4  # plain ints for the scan loop


class ReplayError(TicksyncError):
    """The replay file is unusable (bad bytes) or belongs to another game: the file's fault."""


class Record(NamedTuple):
    """One record as stored (an INPUTS repeat keeps its empty payload)."""

    kind: int
    tick: int
    payload: memoryview
    offset: int  # file offset of the record's kind byte


def _frame(kind: int, tick: int, payload: bytes) -> bytes:
    head = _REC.pack(kind, tick, len(payload))
    return b"".join((head, payload, _U32.pack(zlib.crc32(payload, zlib.crc32(head)))))


def _pack_keyframe(state: State) -> bytes:
    raw = state.pack()
    # Compression costs milliseconds on a large state and often saves little (positions
    # are noise to zlib), so try a spread-out sample first and skip it when it won't pay.
    if len(raw) > 65536:
        step = len(raw) // 16
        sample = b"".join(raw[i : i + 2048] for i in range(0, 16 * step, step))
        if len(zlib.compress(sample, 1)) > 0.9 * len(sample):
            return bytes((_KF_RAW,)) + raw
    packed = zlib.compress(raw, 6)
    if len(packed) < len(raw):
        return bytes((_KF_ZLIB,)) + packed
    return bytes((_KF_RAW,)) + raw


# ---------------------------------------------------------------------------------------
# writing


class ReplayWriter:
    """Append a match to a replay file as it runs.

    Call :meth:`record` once per tick, in order from 0, with that tick's inputs and the
    state *before* stepping it. Pass ``state=None`` when the caller does not simulate
    (a lockstep relay): no HASH or KEYFRAME is written then, and :meth:`record_hash`
    can add the hashes peers agree on.
    """

    def __init__(
        self,
        path_or_file: str | os.PathLike | BinaryIO,
        game: Game,
        seed: int,
        players: int,
        tick_rate: int | None = None,
        mode: str = "offline",
        hash_every: int = 60,
        keyframe_every: int = 600,
        meta: dict[str, Any] | None = None,
        flush_every: int = 1,
    ):
        if mode not in MODES:
            raise ValueError(f"replay mode must be one of {', '.join(MODES)}, not {mode!r}")
        for name, value in (("hash_every", hash_every), ("keyframe_every", keyframe_every)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 (0 = never), not {value!r}")
        if not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be an int >= 1, not {flush_every!r}")
        if meta is not None and not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, not {type(meta).__name__}")
        seed, players = operator.index(seed), operator.index(players)  # numpy ints welcome
        initial = game.create(seed, players)  # validates players; sizes the keyframes
        self._players = players
        self._dtype = np.dtype(game.input_dtype)
        self._hash_every = hash_every
        self._keyframe_every = keyframe_every
        self._state_nbytes = initial.nbytes
        self._flush_every = flush_every
        self._unflushed = 0
        self._next = 0
        self._last_inputs: bytes | None = None
        self._closed = False
        header = {
            "game": game.name,
            "game_version": game.version,
            "fingerprint": f"{game.fingerprint():016x}",
            "seed": seed,
            "tick_rate": int(game.tick_rate if tick_rate is None else tick_rate),
            "players": players,
            "mode": mode,
            "hash_every": hash_every,
            "keyframe_every": keyframe_every,
            "input_dtype": describe_dtype(self._dtype),
            "input_itemsize": self._dtype.itemsize,
            "state_nbytes": self._state_nbytes,
            "meta": meta or {},
        }
        try:
            text = orjson.dumps(header)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise ValueError(f"replay header is not JSON-serializable: {exc}") from None
        if len(text) > MAX_HEADER:
            raise ValueError(f"replay header is {len(text)} bytes; keep meta under 1 MiB")
        if isinstance(path_or_file, (str, os.PathLike)):
            self._file: BinaryIO = open(path_or_file, "wb")
            self._owns_file = True
        else:
            self._file = path_or_file
            self._owns_file = False
        prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)) + text
        self._file.write(prefix + _U32.pack(zlib.crc32(prefix)))
        self._file.flush()

    @classmethod
    def resume(cls, path: str | os.PathLike, game: Game, *, flush_every: int = 1) -> tuple["ReplayWriter", "ReplayReader"]:
        """Go on recording a match in the file a stopped or crashed server left: the file is
        cut after its last complete INPUTS record (a torn tail, the final HASH and END go)
        and the writer appends from the next tick, so one file holds the whole match and
        ``replay --verify`` reads it straight through. Also returns the reader of the file
        as it was (``seek(reader, game, reader.ticks)`` is the state to go on from).
        ReplayError when the file is not resumable (another game, damage mid-file, no tick)."""
        reader = ReplayReader(path)
        reader.check_game(game)
        if reader.damage:
            raise ReplayError(f"{os.fspath(path)} is not resumable: {reader.damage}")
        if reader.ticks == 0:
            raise ReplayError(f"{os.fspath(path)} holds no tick to resume from")
        last = max(r.offset for r in reader if r.kind == _INPUTS and r.tick == reader.ticks - 1)
        _, _, length = _REC.unpack_from(reader._buf, last)
        cut = last + _REC.size + length + 4
        file = open(path, "r+b")
        file.truncate(cut)
        file.seek(cut)
        self = cls.__new__(cls)
        self._players = reader.players
        self._dtype = np.dtype(game.input_dtype)
        self._hash_every = reader.hash_every
        self._keyframe_every = reader.keyframe_every
        self._state_nbytes = reader.state_nbytes
        self._flush_every = flush_every
        self._unflushed = 0
        self._next = reader.ticks
        self._last_inputs = reader.inputs(reader.ticks - 1).tobytes()
        self._closed = False
        self._file = file
        self._owns_file = True
        return self, reader

    @property
    def next_tick(self) -> int:
        """The tick :meth:`record` expects next (= ticks recorded so far)."""
        return self._next

    @property
    def closed(self) -> bool:
        return self._closed

    def record(self, tick: int, inputs: np.ndarray, state: State | None = None) -> None:
        """Append tick ``tick``: its inputs, and a HASH / KEYFRAME of ``state`` (state_tick,
        before stepping) when the tick is a multiple of ``hash_every`` / ``keyframe_every``."""
        self._check_open("record")
        if tick != self._next:
            raise ValueError(
                f"record() expects tick {self._next} next (ticks are consecutive from 0), got {tick}"
            )
        if tick > MAX_TICK:
            raise ValueError(f"replays hold at most {MAX_TICK + 1} ticks")
        if (
            not isinstance(inputs, np.ndarray)
            or inputs.dtype != self._dtype
            or inputs.shape != (self._players,)
        ):
            got = f"{inputs.shape} {inputs.dtype}" if isinstance(inputs, np.ndarray) else type(inputs).__name__
            raise ValueError(
                f"record() needs inputs of shape ({self._players},) and the game's input dtype, got {got}"
            )
        data = inputs.tobytes()
        parts = []
        if state is not None:
            if self._hash_every and tick % self._hash_every == 0:
                parts.append(_frame(_HASH, tick, _U64.pack(state.hash())))
            if self._keyframe_every and tick % self._keyframe_every == 0:
                if state.nbytes != self._state_nbytes:
                    raise ValueError(
                        f"state holds {state.nbytes} bytes, but this game's states hold {self._state_nbytes}"
                    )
                parts.append(_frame(_KEYFRAME, tick, _pack_keyframe(state)))
        parts.append(_frame(_INPUTS, tick, b"" if data == self._last_inputs else data))
        self._last_inputs = data
        self._next += 1
        self._write(b"".join(parts))

    def record_hash(self, tick: int, state_hash: int) -> None:
        """Append a HASH of state_tick computed elsewhere (e.g. the hash lockstep peers
        agreed on). ``tick`` may be in the past but not beyond the next tick to record."""
        self._check_open("record_hash")
        if not 0 <= tick <= self._next:
            raise ValueError(f"record_hash() tick must be in 0..{self._next} (the next tick to record), got {tick}")
        if not 0 <= state_hash <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"state hash must be a u64, got {state_hash}")
        self._write(_frame(_HASH, tick, _U64.pack(state_hash)))

    def close(self, final_state: State | None = None) -> None:
        """Write END (after a HASH of ``final_state``, state_N, when given) and close."""
        if self._closed:
            return
        if final_state is not None:
            self._write(_frame(_HASH, self._next, _U64.pack(final_state.hash())))
        self._write(_frame(_END, self._next, b""))
        self._release()

    def abort(self) -> None:
        """Close the file *without* END: the recording did not finish normally (a crashed
        match, a room that failed to start). What was recorded stays replayable, and a
        reader reports it as not clean ("no END record ... (the recording was not
        closed)"). Does nothing on a closed writer; a file passed in is flushed, not
        closed, as :meth:`close` does."""
        if not self._closed:
            self._release()

    def _release(self) -> None:
        self._closed = True
        self._file.flush()
        if self._owns_file:
            self._file.close()

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._unflushed += 1
        if self._unflushed >= self._flush_every:
            self._file.flush()
            self._unflushed = 0

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ValueError(f"{what}() on a closed ReplayWriter")

    def __enter__(self) -> "ReplayWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ---------------------------------------------------------------------------------------
# reading

_HEADER_FIELDS: dict[str, type] = {
    "game": str,
    "game_version": str,
    "fingerprint": str,
    "seed": int,
    "tick_rate": int,
    "players": int,
    "mode": str,
    "hash_every": int,
    "keyframe_every": int,
    "input_dtype": str,
    "input_itemsize": int,
    "state_nbytes": int,
    "meta": dict,
}


def _load(source: str | os.PathLike | bytes | bytearray | memoryview | BinaryIO) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        return bytes(source.read())
    raise TypeError(f"ReplayReader reads a path, bytes or a binary file, not {type(source).__name__}")


def _after(ticks: int) -> str:
    return f"after tick {ticks - 1}" if ticks else "before tick 0"


class ReplayReader:
    """A replay file read into memory, its header validated and its records indexed.

    Construction raises :class:`ReplayError` for a bad header. Damage after the header
    never raises: the records before it are kept and ``tail`` says what and where.
    """

    game: str
    game_version: str
    fingerprint: int
    seed: int
    tick_rate: int
    players: int
    mode: str
    hash_every: int
    keyframe_every: int
    input_dtype: np.dtype
    input_itemsize: int
    state_nbytes: int
    meta: dict
    #: Complete INPUTS records: states 0..ticks can be reproduced.
    ticks: int
    #: None when clean, else what is wrong with the end of the file.
    tail: str | None
    clean: bool
    #: None unless intact records follow the bad one (damage before the end, not a torn
    #: tail): then where it is and how many ticks it cost.
    damage: str | None
    #: Ticks the file was meant to hold, when it says (its END record), else None.
    expected_ticks: int | None
    #: HASH records: tick -> first recorded hash.
    hashes: dict[int, int]

    def __init__(self, source: str | os.PathLike | bytes | bytearray | memoryview | BinaryIO):
        self._buf = _load(source)
        self._view = memoryview(self._buf)
        self._parse_header()
        self._scan()

    # -- header -----------------------------------------------------------------------
    def _parse_header(self) -> None:
        buf = self._buf
        n = len(buf)
        if n == 0:
            raise ReplayError("empty file: not a ticksync replay")
        if buf[:8] != MAGIC:
            if n < 8 and MAGIC.startswith(buf):
                raise ReplayError(f"truncated header ({n} bytes)")
            raise ReplayError("not a ticksync replay (bad magic)")
        if n < 10:
            raise ReplayError(f"truncated header ({n} bytes)")
        (version,) = struct.unpack_from("<H", buf, 8)
        if version != FORMAT_VERSION:
            raise ReplayError(
                f"unsupported replay format version {version} (this ticksync reads version {FORMAT_VERSION})"
            )
        if n < _PREFIX.size:
            raise ReplayError(f"truncated header ({n} bytes)")
        _, _, hlen = _PREFIX.unpack_from(buf)
        if hlen > MAX_HEADER:
            raise ReplayError(f"header length {hlen} is implausible (damaged file)")
        end = _PREFIX.size + hlen
        if n < end + 4:
            raise ReplayError(f"truncated header ({n} of {end + 4} bytes)")
        if zlib.crc32(self._view[:end]) != _U32.unpack_from(buf, end)[0]:
            raise ReplayError("header CRC mismatch")
        try:
            header = orjson.loads(self._view[_PREFIX.size : end])
        except orjson.JSONDecodeError:
            raise ReplayError("header is not valid JSON") from None
        if not isinstance(header, dict):
            raise ReplayError("header JSON is not an object")
        for name, kind in _HEADER_FIELDS.items():
            value = header.get(name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ReplayError(f"header field {name!r} is missing or not {kind.__name__}")
        fp = header["fingerprint"]
        if len(fp) != 16 or any(c not in "0123456789abcdefABCDEF" for c in fp):
            raise ReplayError(f"header fingerprint {fp!r} is not 16 hex digits")
        if header["mode"] not in MODES:
            raise ReplayError(f"header mode {header['mode']!r} is not one of {', '.join(MODES)}")
        for name in ("players", "input_itemsize", "state_nbytes"):
            if header[name] < 1:
                raise ReplayError(f"header field {name!r} must be >= 1, got {header[name]}")
        try:
            dtype = np.lib.format.descr_to_dtype(ast.literal_eval(header["input_dtype"]))
        except Exception:  # literal_eval and numpy raise a zoo of types for bad text
            raise ReplayError(f"header input_dtype {header['input_dtype']!r} is not a dtype") from None
        if dtype.itemsize != header["input_itemsize"]:
            raise ReplayError("header input_dtype and input_itemsize disagree")
        self.header = header
        self.version = version
        self.game = header["game"]
        self.game_version = header["game_version"]
        self.fingerprint = int(fp, 16)
        for name in ("seed", "tick_rate", "players", "mode", "hash_every", "keyframe_every",
                     "input_itemsize", "state_nbytes", "meta"):
            setattr(self, name, header[name])
        self.input_dtype = dtype
        self._data_start = end + 4

    # -- records ----------------------------------------------------------------------
    def _scan(self) -> None:
        """Validate and index every record once, so replays touch only offsets."""
        buf, view = self._buf, self._view
        size = len(buf)
        pos = self._data_start
        input_len = self.players * self.input_itemsize
        keyframe_max = 1 + self.state_nbytes
        unpack, crc32, u32 = _REC.unpack_from, zlib.crc32, _U32.unpack_from
        offsets: list[int] = []  # per tick: where its input bytes start (repeats resolved)
        starts = array("q")
        hashes: dict[int, int] = {}
        extra: dict[int, list[int]] = {}
        keyframes: dict[int, tuple[int, int]] = {}
        clean = False
        tail: str | None = None
        while True:
            n = len(offsets)
            left = size - pos
            if left == 0:
                tail = f"no END record {_after(n)} (the recording was not closed)"
                break
            kind = buf[pos]
            if not _INPUTS <= kind <= _END:
                tail = f"corrupt record at tick {n} (unknown kind {kind})"
                break
            if left < _REC.size:
                tail = f"torn tail {_after(n)}: {left} bytes of a record header"
                break
            kind, tick, length = unpack(buf, pos)
            if kind == _INPUTS:
                fits = length == input_len or (length == 0 and n > 0)
            elif kind == _HASH:
                fits = length == 8
            elif kind == _KEYFRAME:
                fits = 2 <= length <= keyframe_max
            else:
                fits = length == 0
            if not fits:
                tail = f"corrupt record at tick {n} (impossible length {length} for {Kind(kind).name})"
                break
            end = pos + _REC.size + length
            if end + 4 > size:
                tail = f"torn tail {_after(n)}: {left} of {end + 4 - pos} bytes"
                break
            if crc32(view[pos:end]) != u32(buf, end)[0]:
                tail = f"corrupt record at tick {n} (CRC mismatch)"
                break
            if tick > n or (tick != n and kind != _HASH):
                tail = f"corrupt record at tick {n} ({Kind(kind).name} for tick {tick} out of sequence)"
                break
            body = pos + _REC.size
            if kind == _INPUTS:
                offsets.append(body if length else offsets[-1])
            elif kind == _HASH:
                (h,) = _U64.unpack_from(buf, body)
                if hashes.setdefault(tick, h) != h:
                    extra.setdefault(tick, []).append(h)
            elif kind == _KEYFRAME:
                flag = buf[body]
                if flag not in (_KF_RAW, _KF_ZLIB) or (flag == _KF_RAW and length != keyframe_max):
                    tail = f"corrupt record at tick {n} (bad keyframe encoding)"
                    break
                keyframes[tick] = (body, length)
            starts.append(pos)
            pos = end + 4
            if kind == _END:
                if pos == size:
                    clean = True
                else:
                    tail = f"{size - pos} unexpected bytes after END at tick {n}"
                break
        self._offsets = offsets
        self._starts = starts
        self._keyframes = keyframes
        self._extra_hashes = extra
        self.hashes = hashes
        self.keyframe_ticks = sorted(keyframes)
        self.ticks = len(offsets)
        self.clean = clean
        self.tail = tail
        self.valid_bytes = pos  # bytes of header and intact records
        self.damage = None
        self.expected_ticks = self.ticks if clean else None
        if tail is not None and not clean and pos < size:
            self._salvage(pos)

    def _salvage(self, pos: int) -> None:
        """The scan stopped at ``pos`` with bytes left. If an intact record follows the bad
        one, this is damage, not a torn tail: say where it is and how much it cost. The
        records after it are counted, never used (a replay needs every tick's inputs)."""
        buf, view, size = self._buf, self._view, len(self._buf)
        unpack, crc32, u32 = _REC.unpack_from, zlib.crc32, _U32.unpack_from
        input_len = self.players * self.input_itemsize
        longest = _REC.size + max(input_len, 1 + self.state_nbytes) + 4

        def frame_end(at: int) -> int | None:
            """The end of an intact record starting at ``at``, or None."""
            if at + _REC.size + 4 > size or not _INPUTS <= buf[at] <= _END:
                return None
            kind, _, length = unpack(buf, at)
            if kind == _INPUTS and length not in (0, input_len):
                return None
            if (kind == _HASH and length != 8) or (kind == _END and length) or length > longest:
                return None
            end = at + _REC.size + length
            if end + 4 > size or crc32(view[at:end]) != u32(buf, end)[0]:
                return None
            return end + 4

        # The next record starts within the longest record the bad one could have been.
        resume = next((at for at in range(pos + 1, min(size, pos + longest + 1)) if frame_end(at)), None)
        if resume is None:
            return  # nothing intact after it: a torn (or garbled) tail, what a crash leaves
        last_input, end_tick, at, records = None, None, resume, 0
        while at < size:
            nxt = frame_end(at)
            if nxt is None:
                break
            kind, tick, _ = unpack(buf, at)
            if kind == _INPUTS:
                last_input = tick
            elif kind == _END:
                end_tick = tick
            records += 1
            at = nxt
        if end_tick is not None:
            self.expected_ticks = end_tick
            lost = f"{end_tick - self.ticks} of the {end_tick} ticks it was meant to hold are lost"
        elif last_input is not None:
            lost = f"at least {last_input + 1 - self.ticks} ticks (up to tick {last_input}) are lost"
        else:
            lost = "they cannot be used"
        self.damage = (
            f"damaged at byte {pos}: {self.tail}; {records} intact records ({size - resume} bytes) follow it: {lost}"
        )

    def __iter__(self) -> Iterator[Record]:
        """Every intact record in file order (stops before any damage; never raises)."""
        buf, view = self._buf, self._view
        for pos in self._starts:
            kind, tick, length = _REC.unpack_from(buf, pos)
            body = pos + _REC.size
            yield Record(kind, tick, view[body : body + length], pos)

    def inputs(self, tick: int) -> np.ndarray:
        """The inputs of ``tick`` (one row per player slot), a read-only view."""
        if not 0 <= tick < self.ticks:
            raise IndexError(f"tick {tick} is not in this replay (it has ticks 0..{self.ticks - 1})")
        return np.frombuffer(self._buf, self.input_dtype, self.players, self._offsets[tick])

    def keyframe(self, tick: int) -> bytes:
        """The ``State.pack()`` bytes of the keyframe recorded for ``tick``."""
        try:
            body, length = self._keyframes[tick]
        except KeyError:
            raise KeyError(f"no keyframe at tick {tick}") from None
        data = self._view[body + 1 : body + length]
        if self._buf[body] == _KF_RAW:
            return bytes(data)
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(data, self.state_nbytes + 1)  # bounded: no zip bombs
        except zlib.error as exc:
            raise ReplayError(f"keyframe at tick {tick} does not decompress ({exc})") from None
        if len(raw) != self.state_nbytes or not inflater.eof or inflater.unused_data:
            raise ReplayError(f"keyframe at tick {tick} does not hold {self.state_nbytes} state bytes")
        return raw

    def nearest_keyframe(self, tick: int) -> int | None:
        """The latest keyframe tick <= ``tick``, or None."""
        i = bisect_right(self.keyframe_ticks, tick)
        return self.keyframe_ticks[i - 1] if i else None

    def check_game(self, game: Game) -> None:
        """Raise :class:`ReplayError` unless ``game`` is the game this replay recorded."""
        fp = game.fingerprint()
        if (game.name, game.version, fp) != (self.game, self.game_version, self.fingerprint):
            raise ReplayError(
                f"replay is {self.game} {self.game_version} (fp {self.fingerprint:016x}), "
                f"this game is {game.name} {game.version} (fp {fp:016x})"
            )

    def describe(self) -> str:
        """One line: the game, players, ticks, and clean, torn or DAMAGED (and where)."""
        status = "clean" if self.clean else (f"DAMAGED: {self.damage}" if self.damage else self.tail)
        return f"{self.game} {self.game_version}, {self.players} players, {self.ticks} ticks, {status}"

    def __repr__(self) -> str:
        return f"<ReplayReader {self.describe()}>"


# ---------------------------------------------------------------------------------------
# re-simulation


@dataclass(frozen=True)
class ReplayResult:
    start_tick: int  # the simulation started from state_start_tick (0 or a keyframe)
    tick: int  # the final state is state_tick
    ticks: int  # step() calls made
    divergent_tick: int | None  # first tick whose recorded hash or keyframe differs
    differing: tuple[str, ...]  # arrays that differ there, when a keyframe shows them
    hashes_checked: int
    keyframes_checked: int
    clean: bool  # copied from the reader
    tail: str | None
    state: State = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.divergent_tick is None


def _fresh_state(reader: ReplayReader, game: Game) -> State:
    state = game.create(reader.seed, reader.players)
    if state.nbytes != reader.state_nbytes:
        raise ReplayError(
            f"replay states hold {reader.state_nbytes} bytes, this game's hold {state.nbytes}"
        )
    return state


def _load_keyframe(reader: ReplayReader, state: State, tick: int) -> None:
    try:
        state.unpack_into(reader.keyframe(tick))
    except StateLayoutError as exc:
        raise ReplayError(f"keyframe at tick {tick}: {exc}") from None


def replay(
    reader: ReplayReader,
    game: Game,
    *,
    verify: bool = True,
    until: int | None = None,
    start_keyframe: int | None = None,
) -> ReplayResult:
    """Re-simulate the recorded ticks (from state_0, or from the keyframe recorded at tick
    ``start_keyframe``) up to state_``until`` (default: every recorded tick).

    With ``verify``, every recorded HASH and KEYFRAME in range is compared with the
    re-simulated state, and the run stops at the first that differs. Measures no time:
    the caller owns the clock.
    """
    reader.check_game(game)
    end = reader.ticks if until is None else until
    if not 0 <= end <= reader.ticks:
        raise ValueError(f"until={until} is outside this replay's states 0..{reader.ticks}")
    state = _fresh_state(reader, game)
    start = 0
    if start_keyframe is not None:
        if start_keyframe not in reader._keyframes:
            nearest = reader.nearest_keyframe(start_keyframe)
            raise ValueError(f"no keyframe at tick {start_keyframe} (nearest before it: {nearest})")
        if start_keyframe > end:
            raise ValueError(f"start_keyframe {start_keyframe} is after until={end}")
        _load_keyframe(reader, state, start_keyframe)
        start = start_keyframe

    checks: list[int] = []
    if verify:
        marks = set(reader.hashes)
        marks.update(t for t in reader._keyframes if t != start_keyframe)
        checks = sorted(t for t in marks if start <= t <= end)
    checks.append(end + 1)  # sentinel: run to the end

    offsets, view = reader._offsets, reader._view
    size = reader.players * reader.input_itemsize
    # One reused input array, refilled by memcpy: no per-tick allocation but the slice.
    inputs = np.zeros(reader.players, dtype=game.input_dtype)
    fill = memoryview(inputs.view(np.uint8))
    step = game.step
    hashes, extra = reader.hashes, reader._extra_hashes
    hashes_checked = keyframes_checked = 0
    divergent: int | None = None
    differing: tuple[str, ...] = ()
    t = start
    for check in checks:
        stop = min(check, end)
        while t < stop:
            o = offsets[t]
            fill[:] = view[o : o + size]
            step(state, inputs, t)
            t += 1
        if check > end:
            break
        # state is state_check: compare with what was recorded for it
        bad = False
        if check in hashes:
            h = state.hash()
            hashes_checked += 1 + len(extra.get(check, ()))
            bad = h != hashes[check] or any(x != h for x in extra.get(check, ()))
        if check in reader._keyframes and check != start_keyframe:
            keyframes_checked += 1
            recorded = state.copy()
            _load_keyframe(reader, recorded, check)
            differing = tuple(state.differing(recorded))
            bad = bad or bool(differing)
        if bad:
            divergent = check
            break
    return ReplayResult(
        start_tick=start,
        tick=t,
        ticks=t - start,
        divergent_tick=divergent,
        differing=differing if divergent is not None else (),
        hashes_checked=hashes_checked,
        keyframes_checked=keyframes_checked,
        clean=reader.clean,
        tail=reader.tail,
        state=state,
    )


def seek(reader: ReplayReader, game: Game, tick: int) -> State:
    """state_``tick``: the nearest keyframe at or before it, stepped forward."""
    if not 0 <= tick <= reader.ticks:
        raise ValueError(f"tick {tick} is outside this replay's states 0..{reader.ticks}")
    return replay(reader, game, verify=False, until=tick, start_keyframe=reader.nearest_keyframe(tick)).state


def record_run(
    game: Game,
    seed: int,
    players: int,
    ticks: int,
    path_or_file: str | os.PathLike | BinaryIO,
    input_fn: Callable[[State, int], np.ndarray] | None = None,
    **writer_options: Any,
) -> State:
    """Play ``ticks`` ticks offline (``input_fn(state, tick)``, default the game's bots),
    record them with a final HASH, and return the final state."""
    slots = np.arange(players)
    state = game.create(seed, players)
    writer_options.setdefault("mode", "offline")
    with ReplayWriter(path_or_file, game, seed, players, **writer_options) as writer:
        for t in range(ticks):
            inputs = input_fn(state, t) if input_fn is not None else game.bot_inputs(state, t, slots)
            writer.record(t, inputs, state)
            game.step(state, inputs, t)
        writer.close(final_state=state)
    return state
