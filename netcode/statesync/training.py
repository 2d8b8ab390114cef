"""A trained starting model for entropy-coded snapshots: what the coder has learned of a game.

Every entropy-coded table starts its adaptive model from the same place and learns only
from that table, so each packet decodes on its own. By default that place is
:func:`netcode.statesync.rangecoder.prior`, written by hand for physics in general, and
every context starts as if it had seen nothing: a short packet pays to learn what the
last thousand packets of the same game already showed. A :class:`CoderModel` is that
starting place learned from recordings, as network codecs train theirs on packet
captures: per context, how often it coded a 0, and how settled it is (a context seen
often starts adapting at its slowest).

Train with the coder's own contexts (no second copy of them): a :class:`Trainer` counts
every decision the schema's encoder makes while it records, then :meth:`Trainer.model`
makes the model::

    trainer = Trainer(schema)            # a SnapshotSchema of the spec, entropy coding
    with trainer:
        for frame in recording: encode_snapshot(..., coding=schema.coding)
    data = trainer.model().to_bytes()    # save it; ship it with the game

and give both ends the same bytes: ``Replication(..., coding="entropy", model=data)``.
The model's bytes are part of the spec's identity (its repr, hence the game's handshake
fingerprint), so a client with another model is refused at the handshake instead of
decoding garbage. The browser client loads it too (the room's schema carries it).

The file format, version 2 (little-endian), stores only what differs from where the coder
would start without a model (:func:`~netcode.statesync.rangecoder.prior`'s probability,
no events seen): most of a trained model's contexts were never met in training and stay
there (the cube scene's layout-1 model: 5.1 KB, where version 1 stored every context in
78 KB). ``b"TSCM"``, u8 format version (2), u8 context layout (0: the coder's contexts;
1: also each value's class by the largest class before it in its row's group,
``rangecoder._classes``), u16 context sets, u16 groups, u32 entries; then per entry, in
increasing context order, the gap to its context from the one after the entry before
(from context 0 for the first) as an unsigned LEB128 varint of at most 5 bytes, and a u16:
the probability of a 0 (in 1/4096, 1..4095) in its low 12 bits, the starting event count
(0..15) in its high 4; then the CRC-32 (``zlib.crc32``) of all before, u32. Gaps make
duplicate or unsorted contexts impossible to write and the u16 an out-of-range count; a
context past the last, a probability of 0, an entry equal to the default, an overlong
varint, a wrong size, version, layout or check is a clear ValueError on load (one model,
one file: its bytes are its identity). The check is for corruption only (the browser
client computes it in a few lines): the spec names its model by
:func:`engine.replication.model_digest` of these bytes, which the handshake fingerprint
covers. Version 1 (every context, BLAKE2b check) is no longer read: loading one says so
(retrain; training takes seconds).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from engine.replication import model_digest
from netcode.errors import ProtocolError
from netcode.session.wire import Reader, varint
from netcode.statesync import rangecoder

__all__ = ["CoderModel", "Trainer"]

MAGIC = b"TSCM"
VERSION = 2
LAYOUTS = (0, 1)  # the context layouts this coder knows (rangecoder.contexts)
_HEAD = struct.Struct("<4sBBHHI")
_CHECK = 4  # CRC-32
_VARINT = 5  # the most bytes of a gap (a u32)
_ONE = 1 << 12
_SETTLED = 15  # the coder's event count after which a context adapts at its slowest


class CoderModel:
    """A trained starting point for the range coder of one table shape: ``probs`` (uint32,
    the probability of a 0 in 1/4096 per context, 1..4095) and ``seen`` (uint8, the
    events each context counts as having seen, 0..15), for tables of ``fields`` context
    sets in ``groups`` groups. Immutable; :meth:`to_bytes` / :meth:`from_bytes` save and
    load it."""

    __slots__ = ("fields", "groups", "layout", "probs", "seen", "start")

    def __init__(self, fields: int, groups: int, probs, seen, layout: int = 0):
        if layout not in LAYOUTS:
            raise ValueError(f"model context layout {layout}: this coder knows {LAYOUTS}")
        if not (0 < fields < 1 << 16 and 0 < groups < 1 << 16):
            raise ValueError(f"a model of {fields} context sets in {groups} groups")
        n = rangecoder.contexts(fields, groups, layout)
        probs = np.asarray(probs)
        seen = np.asarray(seen)
        if probs.shape != (n,) or seen.shape != (n,):
            raise ValueError(f"a model of {fields} context sets in {groups} groups has {n} contexts, not {probs.shape} / {seen.shape}")
        if n and (probs.min() < 1 or probs.max() >= _ONE or seen.min() < 0 or seen.max() > _SETTLED):
            raise ValueError(f"model probabilities must be 1..{_ONE - 1} and event counts 0..{_SETTLED}")
        self.fields, self.groups, self.layout = fields, groups, layout
        self.probs = probs.astype(np.uint32)
        self.seen = seen.astype(np.uint8)
        self.probs.flags.writeable = False
        self.seen.flags.writeable = False
        self.start = (self.probs, self.seen)  # what rangecoder.encode_table / decode_table take

    def to_bytes(self) -> bytes:
        """The model in file format 2: what differs from the hand-written start."""
        at = np.flatnonzero((self.probs != rangecoder.prior(self.fields, self.groups, self.layout)) | (self.seen != 0))
        out = bytearray(_HEAD.pack(MAGIC, VERSION, self.layout, self.fields, self.groups, len(at)))
        words = (self.probs[at] | (self.seen[at].astype(np.uint32) << 12)).tolist()
        after = 0  # the context after the entry before
        for ctx, word in zip(at.tolist(), words):
            out += varint(ctx - after) + word.to_bytes(2, "little")
            after = ctx + 1
        return bytes(out + struct.pack("<I", zlib.crc32(out)))

    @classmethod
    def from_bytes(cls, data) -> "CoderModel":
        """The model saved as ``data``; ValueError, saying what is wrong, unless it is a
        whole, uncorrupted model of a version and layout this coder reads, in the one
        form :meth:`to_bytes` writes it."""
        data = bytes(data)
        if len(data) < _HEAD.size + _CHECK:
            raise ValueError(f"a coder model is at least {_HEAD.size + _CHECK} bytes, not {len(data)}")
        magic, version, layout, fields, groups, entries = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(f"not a coder model (starts {magic!r}, not {MAGIC!r})")
        if version != VERSION:
            raise ValueError(f"coder model format version {version}: this build reads version {VERSION} only (retrain the model)")
        if layout not in LAYOUTS:
            raise ValueError(f"coder model context layout {layout}: this build knows {LAYOUTS}")
        if fields == 0 or groups == 0:
            raise ValueError(f"a coder model of {fields} context sets in {groups} groups")
        if zlib.crc32(data[:-_CHECK]) != struct.unpack_from("<I", data, len(data) - _CHECK)[0]:
            raise ValueError("coder model check (CRC-32) mismatch: the file is corrupt")
        n = rangecoder.contexts(fields, groups, layout)
        if entries > n:
            raise ValueError(f"coder model of {n} contexts cannot change {entries} of them")
        probs = rangecoder.prior(fields, groups, layout).copy()
        seen = np.zeros(n, np.uint8)
        r = Reader(data, _HEAD.size, len(data) - _CHECK)
        after = 0  # the context after the entry before
        try:
            for _ in range(entries):
                at = r.pos
                gap = r.varint()
                if r.pos - at > _VARINT:
                    raise ValueError(f"coder model gap varint longer than {_VARINT} bytes")
                if r.pos - at != len(varint(gap)):
                    raise ValueError("coder model gap varint is overlong (ends in a zero byte)")
                ctx = after + gap
                if ctx >= n:
                    raise ValueError(f"coder model entry for context {ctx}, past its {n} contexts")
                word = r.u16()
                p, k = word & 0xFFF, word >> 12
                if p == 0:
                    raise ValueError(f"coder model probabilities must be 1..{_ONE - 1}: context {ctx} has 0")
                if p == probs[ctx] and k == 0:
                    raise ValueError(f"coder model entry for context {ctx} repeats the default (models store only what differs)")
                probs[ctx], seen[ctx] = p, k
                after = ctx + 1
            r.done()
        except ProtocolError as exc:  # (the Reader's: past the end, or bytes left after)
            raise ValueError(f"coder model of {entries} entries in {len(data)} bytes is truncated or has bytes after them: {exc}") from None
        return cls(fields, groups, probs, seen, layout)

    def digest(self) -> str:
        return model_digest(self.to_bytes())

    def __eq__(self, other) -> bool:
        return isinstance(other, CoderModel) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"CoderModel({self.fields} context sets, {self.groups} groups, {len(self.probs)} contexts, {self.digest()})"


class Trainer:
    """Counts the decisions a schema's entropy coder makes, per context, while it records
    (``with trainer:`` around the encodes), and makes a :class:`CoderModel` of them.
    Training depends only on what was encoded, in any order: the same recordings give
    the same model."""

    def __init__(self, schema, layout: int = 0):
        coding = getattr(schema, "coding", schema)
        if coding is None or not getattr(coding, "entropy", False):
            raise ValueError("training needs a spec with coding='entropy'")
        if layout not in LAYOUTS:
            raise ValueError(f"context layout {layout}: this coder knows {LAYOUTS}")
        self.coding, self.layout = coding, layout
        self.fields, self.groups = coding.table_sets, coding.groups
        self.tally = np.zeros(2 * rangecoder.contexts(self.fields, self.groups, layout), np.int64)
        self._saved = None

    def __enter__(self) -> "Trainer":
        """Count while the schema encodes, in this trainer's layout (from the hand-written
        prior when the spec's own model has another: what is counted is the same)."""
        c = self.coding
        if c.tally is not None:
            raise RuntimeError("the schema's coder is already counting for a trainer")
        self._saved = c.start, c.layout
        if c.layout != self.layout:
            c.start, c.layout = None, self.layout
        c.tally = self.tally
        return self

    def __exit__(self, *exc) -> None:
        c = self.coding
        c.tally = None
        c.start, c.layout = self._saved

    @property
    def events(self) -> int:
        return int(self.tally.sum())

    def model(self, weight: float = 16.0, settled: int = 1000) -> CoderModel:
        """The model of what was counted: each context's probability of a 0 is its count
        of 0s plus ``weight`` events' worth of the hand-written prior, over its events plus
        ``weight`` (kept within 1/128 of certainty, so a surprise stays affordable); a
        context counted at least ``settled`` times starts settled (adapting at its
        slowest), the others as fresh as the hand-written prior's. (Cube scene: weights 2
        to 64 and thresholds 50 to 1000 code alike after training on 700 frames; after
        300 quiet frames, weight 2 and threshold 50 code busier frames 3% worse than no
        model, these defaults 0.2%.)"""
        hand = rangecoder.prior(self.fields, self.groups, self.layout).astype(np.float64) / _ONE
        zeros, ones = self.tally[0::2].astype(np.float64), self.tally[1::2].astype(np.float64)
        events = zeros + ones
        p0 = (zeros + weight * hand) / (events + weight)
        probs = np.clip(np.rint(p0 * _ONE), _ONE // 128, _ONE - _ONE // 128).astype(np.uint32)
        seen = np.where(events >= settled, _SETTLED, 0).astype(np.uint8)
        return CoderModel(self.fields, self.groups, probs, seen, self.layout)
