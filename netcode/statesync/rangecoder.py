"""Adaptive binary range coding of integer tables: the entropy coder of snapshot updates.

A snapshot update is a table: one row per entity the receiver holds, one column per field
component, the difference between each value and where the receiver expects it. Most
rows did not change; the rest change in a few field groups at once, by amounts whose size
follows how much they moved last time. Packed at one width per column that costs several
bits per value more than its entropy; here every decision is a binary event coded with an
adaptive probability (LZMA's range coder, 12-bit probabilities), in a context that knows
what predicts it:

* per row and group, *changed*: context (group, the largest activity of its values,
  whether the row before changed that group);
* per changed value, its *magnitude class* (bit length of ``|delta|``, 0 for zero) in
  unary: context (its context set, its activity (at least one less than the most of its
  set's values in the row), whether a value before it in the row's
  group was *surprised*: its class more than one above its activity, as in a collision,
  step); then its *sign* (per direction it last moved) and its bits below the top one,
  the highest of them adaptive (per class), the others even.

A value's *motion code* (activity, the bit length of how far it moved between the two
snapshots the receiver predicts from, and the direction) is known to both ends. The model
starts every packet from the same :func:`prior` and adapts only to what that packet
carried, so each packet decodes on its own given its baseline, never needing one that may
have been lost. Short packets teach few contexts, so the prior carries what physics
says (a value's class is about its activity) and counts as a few events. A caller that
keeps, per snapshot, the model its table ended in (``ended``) may start a later table
there (``start``): both ends hold the baseline, so both hold its model.

Written in Cython's pure-Python mode (typed by ``rangecoder.pxd``) like
:mod:`netcode.statesync.bitpack`: compiled where the install built it, the same source
runs as plain Python otherwise (slowly: for tests and ``TICKSYNC_PURE=1``).
"""

import cython
import numpy as np

from netcode.errors import ProtocolError

compiled = cython.compiled

_BITS = 12  # probability precision
_ONE = 1 << _BITS
_HALF = _ONE >> 1
_LIMIT = 15  # events after which a context adapts at its slowest (see _adapt)
_TOP = 1 << 24
_SLACK = 4  # bytes a decoder may read past its input (the flush is trimmed of them)
# 32-bit constants as typed module values (rangecoder.pxd): written as literals in the
# compiled code, Cython made each a Python int and the per-byte arithmetic Python calls.
_WORD = 0xFFFFFFFF  # a code or range of 32 bits
_HELD = 0xFF000000  # the encoder's low at or above this may still carry into its cache byte
_CARRY = 1 << 32  # ... and this high has carried

_CLASSES = 64  # magnitude classes: bit lengths 0..63 (deltas of codes >= 0 are shorter)
_ACTIVITY = 8  # how much a value moved last time: bit length of the change, 0..7+
_MOTIONS = _ACTIVITY * 3  # a value's motion code: activity * 3 + direction (0 none, 1 up, 2 down)
_SPEEDS = _ACTIVITY  # a value's class contexts per activity (the prior makes them cheap to learn)
_BEFORE = 2  # whether a value before it in its row's group was surprised
_FLAG_CTX = _ACTIVITY * 2  # per group: its largest activity, whether the row before changed
_CLASS_CTX = _SPEEDS * _BEFORE * _CLASSES
_LEADS = 4  # context layout 1: per class cell, by the largest class before it in the row's group
_EXTRA_CTX = _CLASS_CTX * _LEADS  # layout 1's contexts per set, after all of layout 0's
_VALUE_CTX = _CLASS_CTX + 3 + _CLASSES  # per context set: classes, sign by direction, top mantissa bits
MOTIONS = _MOTIONS  # (the C constants above are not visible from Python)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.locals(k=cython.uint)
def _adapt(p: cython.uint, b: cython.int, n: cython.uint) -> cython.uint:
    """The probability of a 0 after seeing ``b``, the context's ``n``-th event: steps of
    1/8 for the first four events (the prior is worth a few: a quicker start measured
    worse), 1/16 up to the fifteenth, then a 1/32 decay. Shifts, not divisions: cheap,
    and the same in C and Python."""
    s: cython.uint = 5
    if n < 4:
        s = 3
    elif n < 15:
        s = 4
    if b:
        return p - (p >> s)
    return p + ((_ONE - p) >> s)


def _plain(table):
    """A model's table as Python ints, for the interpreted twin: numpy's small unsigned
    scalars would make the range arithmetic wrap."""
    return table.tolist()


_NO_TALLY = np.zeros(2, np.int64)  # an encoder that counts nothing (never written)


def _ended(p, n, ended) -> None:
    """Copy a coder's model as it is now (its probabilities ``p`` and event counts ``n``)
    into ``ended``: a start for a later table (see :func:`encode_table`'s ``ended``)."""
    ended[0][:] = p
    ended[1][:] = n


def checked_model(model, fields: int, groups: int, layout: int = 0):
    """``model`` (or None), checked as a writable (probabilities uint32, counts uint8) pair
    the size of a table's model (:func:`contexts`), for a coder to end in: it comes from
    the caller, who keeps one per snapshot."""
    if model is None:
        return None
    size = contexts(fields, groups, layout)
    probs, seen = model
    for a, kind in ((probs, np.uint32), (seen, np.uint8)):
        if not isinstance(a, np.ndarray) or a.dtype != kind or a.shape != (size,) or not a.flags.writeable:
            raise ValueError(f"an end model is writable (uint32, uint8) arrays of {size} contexts")
    return model


def _seen(prior, seen):
    """A model's starting event counts (uint8, one per context): none yet, or a trained
    model's (:mod:`netcode.statesync.training`), which adapt its contexts more slowly."""
    if seen is None:
        return np.zeros(len(prior), np.uint8)
    if len(seen) != len(prior):
        raise ValueError(f"{len(seen)} event counts for {len(prior)} contexts")
    return np.array(seen, np.uint8)


# Every index below is in range by construction (contexts are laid out for the largest
# class, motion and field the checks let through), so the hot code skips the checks.
@cython.cclass
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
class Encoder:
    """Encodes binary decisions against adaptive probabilities, one per context."""

    def __init__(self, prior, seen=None, tally=None):
        self.low = 0
        self.range = _WORD
        self.cache = 0
        self.pending = 1
        self.first = True
        # The bytes go to a buffer written in place (a C array where compiled: no call
        # per byte), doubled when full; ``size`` of them are written.
        self.out = bytearray(4096)
        self.o = self.out
        self.room = len(self.out)
        self.size = 0
        self.probs = prior.copy()  # uint32, one probability per context
        self.p = self.probs if cython.compiled else _plain(prior)
        self.seen = _seen(prior, seen)
        self.n = self.seen if cython.compiled else _plain(self.seen)
        # A trainer's tally (int64, 2 per context: its 0 and 1 events), or none.
        self.counting = tally is not None
        self.tally = tally if tally is not None else _NO_TALLY
        self.t = self.tally

    @cython.cfunc
    @cython.exceptval(check=False)
    @cython.locals(carry=cython.uint, temp=cython.uint)
    def _shift(self) -> cython.void:
        if self.low < _HELD or self.low >= _CARRY:
            carry = cython.cast(cython.uint, self.low >> 32)
            temp = self.cache
            while True:
                if self.first:  # the first byte is always 0: not sent
                    self.first = False
                else:  # (room reserved: see _reserve)
                    self.o[self.size] = (temp + carry) & 0xFF
                    self.size += 1
                temp = 0xFF
                self.pending -= 1
                if self.pending == 0:
                    break
            self.cache = cython.cast(cython.uint, (self.low >> 24) & 0xFF)
        self.pending += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    @cython.cfunc
    @cython.inline
    @cython.exceptval(-1, check=False)
    def _reserve(self, decisions: cython.Py_ssize_t) -> cython.int:
        """Room in the buffer for what ``decisions`` more bits can write, before they
        are coded (the bits themselves do not check): a decision shifts at most two bytes
        (a probability is at least 1/4096, so a range of at least 2**24 is at least 2**12
        after it), and the bytes held back (``pending``) may come with them. Inline: asked
        once per table row, it rarely grows the buffer."""
        if self.size + self.pending + 2 * decisions + 1 > self.room:
            self._grow(self.size + self.pending + 2 * decisions + 1)
        return 0

    @cython.cfunc
    @cython.exceptval(-1, check=False)
    def _grow(self, need: cython.Py_ssize_t) -> cython.int:
        out = bytearray(max(need, 2 * self.room))
        out[: self.size] = self.out[: self.size]
        self.out = out
        self.o = out  # (the old buffer's view is released with it)
        self.room = len(out)
        return 0

    @cython.cfunc
    @cython.inline
    @cython.exceptval(check=False)
    @cython.locals(p=cython.uint, bound=cython.uint, n=cython.uint)
    def bit(self, ctx: cython.Py_ssize_t, b: cython.int) -> cython.void:
        if self.counting:
            self.t[2 * ctx + b] += 1
        p = self.p[ctx]
        n = self.n[ctx]
        bound = (self.range >> _BITS) * p
        if b:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        self.p[ctx] = _adapt(p, b, n)
        if n < _LIMIT:
            self.n[ctx] = n + 1
        while self.range < _TOP:
            self.range <<= 8
            self._shift()

    @cython.cfunc
    @cython.inline
    @cython.exceptval(check=False)
    def even(self, b: cython.int) -> cython.void:
        """A bit at even odds, no model."""
        self.range >>= 1
        if b:
            self.low += self.range
        while self.range < _TOP:
            self.range <<= 8
            self._shift()

    @cython.locals(i=cython.int)
    def finish(self) -> bytes:
        self._reserve(5)
        for i in range(5):
            self._shift()
        out = self.out
        size = self.size
        # The decoder reads zeros past the end: trailing zeros of the flush need not go.
        trim = 0
        while trim < _SLACK and size > trim and out[size - 1 - trim] == 0:
            trim += 1
        return bytes(out[: size - trim])


@cython.cclass
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
class Decoder:
    """Decodes what :class:`Encoder` wrote with the same contexts in the same order."""

    def __init__(self, data, prior, seen=None):
        self.data = bytes(data)
        self.size = len(data)
        self.pos = 0
        self.range = _WORD
        self.code = 0
        for _ in range(4):
            self.code = (self.code << 8) | self._byte()
        self.probs = prior.copy()  # uint32, one probability per context
        self.p = self.probs if cython.compiled else _plain(prior)
        self.seen = _seen(prior, seen)
        self.n = self.seen if cython.compiled else _plain(self.seen)

    @cython.cfunc
    @cython.inline
    @cython.exceptval(check=False)
    def _byte(self) -> cython.uint:
        self.pos += 1
        if self.pos <= self.size:
            return self.data[self.pos - 1]
        return 0

    @cython.cfunc
    @cython.inline
    @cython.exceptval(check=False)
    @cython.locals(p=cython.uint, bound=cython.uint, b=cython.int, n=cython.uint)
    def bit(self, ctx: cython.Py_ssize_t) -> cython.int:
        p = self.p[ctx]
        n = self.n[ctx]
        bound = (self.range >> _BITS) * p
        if self.code < bound:
            self.range = bound
            b = 0
        else:
            self.code -= bound
            self.range -= bound
            b = 1
        self.p[ctx] = _adapt(p, b, n)
        if n < _LIMIT:
            self.n[ctx] = n + 1
        while self.range < _TOP:
            self.range <<= 8
            self.code = ((self.code << 8) | self._byte()) & _WORD
        return b

    @cython.cfunc
    @cython.inline
    @cython.exceptval(check=False)
    @cython.locals(b=cython.int)
    def even(self) -> cython.int:
        self.range >>= 1
        b = 0
        if self.code >= self.range:
            self.code -= self.range
            b = 1
        while self.range < _TOP:
            self.range <<= 8
            self.code = ((self.code << 8) | self._byte()) & _WORD
        return b

    def check_end(self) -> None:
        """Raise unless the decoding read the input to its end (and no further past it than
        an encoder's trimmed flush allows): the payload was cut short, or runs on, or was
        never ours."""
        if self.pos > self.size + _SLACK:
            raise ProtocolError("truncated", f"range-coded data ends {self.pos - self.size} bytes early")
        if self.pos < self.size:
            raise ProtocolError("bad_snapshot", f"{self.size - self.pos} bytes after the range-coded data")


# -- integers ------------------------------------------------------------------------------
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.locals(b=cython.int)
def _bit_length(x: cython.ulonglong) -> cython.int:
    b = 0
    if x >> 32:
        x >>= 32
        b += 32
    if x >> 16:
        x >>= 16
        b += 16
    if x >> 8:
        x >>= 8
        b += 8
    while x:
        x >>= 1
        b += 1
    return b


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(mag=cython.ulonglong, cls=cython.int, k=cython.int)
def _put_value(enc: Encoder, ctx: cython.Py_ssize_t, base: cython.Py_ssize_t, direction: cython.int, d: cython.longlong) -> cython.int:
    """A signed value in the contexts of its set (from ``ctx``), its class contexts (from
    ``base``: see :func:`_classes`) and its last ``direction`` (for the sign); its class."""
    mag = cython.cast(cython.ulonglong, -d) if d < 0 else cython.cast(cython.ulonglong, d)
    cls = _bit_length(mag)
    for k in range(cls):
        enc.bit(base + k, 1)
    if cls < _CLASSES - 1:
        enc.bit(base + cls, 0)
    if cls == 0:
        return 0
    enc.bit(ctx + _CLASS_CTX + direction, 1 if d < 0 else 0)
    if cls >= 2:
        enc.bit(ctx + _CLASS_CTX + 3 + cls, cython.cast(cython.int, (mag >> (cls - 2)) & 1))
    for k in range(cls - 3, -1, -1):
        enc.even(cython.cast(cython.int, (mag >> k) & 1))
    return cls


@cython.cfunc
@cython.exceptval(check=False)
@cython.locals(mag=cython.ulonglong, cls=cython.int, k=cython.int, negative=cython.int)
def _get_value(dec: Decoder, ctx: cython.Py_ssize_t, base: cython.Py_ssize_t, direction: cython.int) -> cython.longlong:
    """Inverse of :func:`_put_value`."""
    cls = 0
    while cls < _CLASSES - 1 and dec.bit(base + cls):
        cls += 1
    if cls == 0:
        return 0
    negative = dec.bit(ctx + _CLASS_CTX + direction)
    mag = 1
    if cls >= 2:
        mag = (mag << 1) | cython.cast(cython.ulonglong, dec.bit(ctx + _CLASS_CTX + 3 + cls))
    for k in range(cls - 3, -1, -1):
        mag = (mag << 1) | cython.cast(cython.ulonglong, dec.even())
    return -cython.cast(cython.longlong, mag) if negative else cython.cast(cython.longlong, mag)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _cell(act: cython.int, surprised: cython.int) -> cython.Py_ssize_t:
    """The context cell of a value: how much it moved last time (its activity, see
    :func:`_activity`) and whether a value before it in its row's group was surprised."""
    return act * _BEFORE + surprised


@cython.cdivision(True)  # motion codes are checked 0..MOTIONS-1 first: C division is Python's
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _classes(ctx: cython.Py_ssize_t, cell: cython.Py_ssize_t, extra: cython.Py_ssize_t, lead: cython.int) -> cython.Py_ssize_t:
    """Where a value's class contexts start: in its set's (from ``ctx``) per ``cell``; with
    context layout 1 (a trained model's, ``extra`` >= 0: where its set's added contexts
    start) and a value before it in the row's group of class ``lead`` > 0, in one of
    four more per cell by how large that class was (1-2, 3-4, 5-6, 7 and up)."""
    if extra < 0 or lead == 0:
        return ctx + cell * _CLASSES
    return extra + (cell * _LEADS + (0 if lead <= 2 else 1 if lead <= 4 else 2 if lead <= 6 else 3)) * _CLASSES


@cython.cdivision(True)  # (motion codes are checked 0..MOTIONS-1 first)
@cython.boundscheck(False)  # (the tables' indexes are in range by construction)
@cython.wraparound(False)
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
@cython.locals(c=cython.Py_ssize_t, a=cython.int)
def _set_activity(mo: cython.int[:, ::1], fof: cython.int[::1], r: cython.Py_ssize_t, c0: cython.Py_ssize_t, c1: cython.Py_ssize_t, most: cython.int[::1]) -> cython.void:
    """``most[set]``: the largest activity among row ``r``'s columns c0..c1-1 of each set.
    (Unchecked, inline: it runs per changed row, and its index checks and Python-rounded
    divisions were 540 instructions a call.)"""
    for c in range(c0, c1):
        most[fof[c]] = 0
    for c in range(c0, c1):
        a = mo[r, c] // 3
        if a > most[fof[c]]:
            most[fof[c]] = a


@cython.cdivision(True)
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _activity(motion: cython.int, most: cython.int) -> cython.int:
    """A value's activity for its contexts: its own, or one less than the most of its
    set's values in the row, if more (a rotation turns all its components; measured 0.4%
    smaller)."""
    act: cython.int = motion // 3
    return most - 1 if most - 1 > act else act


@cython.cdivision(True)
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _surprised(motion: cython.int, cls: cython.int) -> cython.int:
    """Whether a value of class ``cls`` surprised: more than one class above its
    activity (a collision moves all of a row's values; measured 1% smaller than the
    group's first value or not)."""
    return 1 if cls > motion // 3 + 1 else 0


def contexts(fields: int, groups: int, layout: int = 0) -> int:
    """How many probabilities a table of ``fields`` in ``groups`` needs, in context
    ``layout`` 0 (the coder's) or 1 (a trained model's, see :func:`_classes`)."""
    return groups * _FLAG_CTX + fields * (_VALUE_CTX + (_EXTRA_CTX if layout else 0))


def context_kind(ctx: int, groups: int, fields: int = 0) -> tuple[str, int]:
    """What probability ``ctx`` of a table with ``groups`` groups models, for diagnostics
    (bench_cubes' breakdown of where the bits go): ("changed", group), or ("class" |
    "sign" | "mantissa", context set). Context layout 1's added contexts need the table's
    ``fields``."""
    if ctx < groups * _FLAG_CTX:
        return "changed", ctx // _FLAG_CTX
    if fields and ctx >= contexts(fields, groups):
        return "class", (ctx - contexts(fields, groups)) // _EXTRA_CTX
    field, at = divmod(ctx - groups * _FLAG_CTX, _VALUE_CTX)
    return ("class" if at < _CLASS_CTX else "sign" if at < _CLASS_CTX + 3 else "mantissa"), field


_PRIORS: dict = {}

# How likely a value's magnitude class passes class k, by how far k is above its activity
# (the bit length of its last move): a value passes the classes below what it moved
# (15/16), then the chance falls off over a few classes (physics residuals spread about
# two classes around the move's size). Values that did not move spread widely.
_PAST = (15 * _ONE // 16, 13 * _ONE // 16, 9 * _ONE // 16, 5 * _ONE // 16, 3 * _ONE // 16)
_REST = (_ONE // 2, 5 * _ONE // 8, 5 * _ONE // 8, 5 * _ONE // 8, _ONE // 2, 3 * _ONE // 8, _ONE // 4)


def _passes(act: int, k: int) -> int:
    """The prior chance (in 1/_ONE) that a value of activity ``act`` passes class ``k``."""
    if act == 0:
        return _REST[k] if k < len(_REST) else _ONE // 8
    step = k - act + 1  # 0 below the activity
    if step < 0:
        return _PAST[0]
    return _PAST[step] if step < len(_PAST) else _ONE // 16


def prior(fields: int, groups: int, layout: int = 0) -> np.ndarray:
    """The probabilities every packet's model starts from (uint32, of a 0 bit): a
    group whose values rested has likely not changed, one that moved likely has (an
    expectation that is rarely exact after several ticks); a value's magnitude class is
    about its activity, give or take two (:func:`_passes`). Layout 1's added class
    contexts start as their cell's."""
    key = (fields, groups, layout)
    table = _PRIORS.get(key)
    if table is None and layout:
        plain = prior(fields, groups)
        cells = np.stack([plain[groups * _FLAG_CTX + f * _VALUE_CTX :][:_CLASS_CTX].reshape(_SPEEDS * _BEFORE, 1, _CLASSES) for f in range(fields)])
        table = np.concatenate([plain, np.repeat(cells, _LEADS, axis=2).ravel()])
        _PRIORS[key] = table
    if table is None:
        table = np.full(contexts(fields, groups), _HALF, np.uint32)
        for g in range(groups):
            flags = table[g * _FLAG_CTX : (g + 1) * _FLAG_CTX].reshape(_ACTIVITY, 2)
            flags[0, 0] = _ONE - _ONE // 64  # resting, and so was the row before
            flags[0, 1] = _ONE - _ONE // 4
            flags[1:] = _ONE // 16
        for f in range(fields):
            base = groups * _FLAG_CTX + f * _VALUE_CTX
            classes = table[base : base + _CLASS_CTX].reshape(_SPEEDS, _BEFORE, _CLASSES)
            for act in range(_SPEEDS):
                for k in range(_CLASSES):
                    classes[act, 0, k] = _ONE - _passes(act, k)
                    classes[act, 1, k] = _ONE - _passes(act + 1 if act else 0, k)  # surprised: a class more
        _PRIORS[key] = table
    return table


def _start(start, fields: int, groups: int, layout: int):
    """The probabilities and event counts a table's coder starts from: :func:`prior`'s
    and none, or a trained model's ``(probabilities, counts)`` sized for the table."""
    if layout not in (0, 1):
        raise ValueError(f"context layout {layout}: 0 or 1")
    if start is None:
        return prior(fields, groups, layout), None
    probs, seen = start
    if len(probs) != contexts(fields, groups, layout) or probs.dtype != np.uint32:
        raise ValueError(f"a model of {len(probs)} {probs.dtype} probabilities for a table of {contexts(fields, groups, layout)} contexts")
    return probs, seen


_LAYOUTS: dict = {}  # checked layouts by their bytes: a schema's are checked once, not per packet


def _checked(group_of, field_of, motion, groups):
    """The table's layout arrays, checked (they come from the schema, not the peer)."""
    motion = np.ascontiguousarray(motion, np.int32)
    key = (np.asarray(group_of, np.int32).tobytes(), np.asarray(field_of, np.int32).tobytes(), groups)
    layout = _LAYOUTS.get(key)
    if layout is None:
        group_of = np.ascontiguousarray(group_of, np.int32)
        field_of = np.ascontiguousarray(field_of, np.int32)
        cols = len(group_of)
        if len(field_of) != cols:
            raise ValueError(f"{cols} columns, {len(field_of)} set ids")
        if cols and (group_of.min() < 0 or group_of.max() >= groups or field_of.min() < 0):
            raise ValueError(f"groups {group_of} of {groups}, fields {field_of}")
        if np.any(np.diff(group_of) < 0):
            raise ValueError(f"columns must come group after group: {group_of}")
        ends = np.searchsorted(group_of, np.arange(groups), side="right").astype(np.intp)  # past each group's columns
        layout = group_of, field_of, int(field_of.max()) + 1 if cols else 0, ends
        if len(_LAYOUTS) < 256:
            _LAYOUTS[key] = layout
    group_of, field_of, fields, ends = layout
    if motion.ndim != 2 or motion.shape[1] != len(group_of):
        raise ValueError(f"{len(group_of)} columns, motion {motion.shape}")
    return group_of, field_of, motion, fields, ends


@cython.cdivision(True)
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(
    rows=cython.Py_ssize_t, cols=cython.Py_ssize_t, ngroups=cython.Py_ssize_t, r=cython.Py_ssize_t,
    c=cython.Py_ssize_t, c0=cython.Py_ssize_t, c1=cython.Py_ssize_t, g=cython.Py_ssize_t, m=cython.int, changed=cython.int, sign=cython.int,
    vbase=cython.Py_ssize_t, surprised=cython.int, x=cython.longlong, top=cython.int, mc=cython.int,
    lead=cython.int, at=cython.Py_ssize_t, cls_at=cython.Py_ssize_t, xbase=cython.Py_ssize_t,
    low=cython.ulonglong, rng=cython.uint, cache=cython.uint, pending=cython.Py_ssize_t, first_byte=cython.bint,
    size=cython.Py_ssize_t, worst=cython.Py_ssize_t,
)
def encode_table(deltas, group_of, field_of, motion, groups: cython.Py_ssize_t, limit: cython.Py_ssize_t = -1, start=None, tally=None, layout: cython.int = 0,
                 ended=None):
    """Range-code ``deltas`` (rows, columns) int64. Column ``c`` belongs to group
    ``group_of[c]`` (0..groups-1, columns in group order) and shares its value contexts
    with the columns of set ``field_of[c]``; ``motion`` (rows, columns) holds each
    value's motion code 0..MOTIONS-1 (activity * 3 + direction: how much, and which way,
    it moved last time). A row's group is sent as changed when any of its deltas is.
    With a ``limit`` (>= 0): ``(table, rows)``, the table of as many leading rows as fit in
    ``limit`` bytes (every row when they all do): the row that would overflow is unwritten
    and the coder finishes before it, so a part is cut where its budget runs out, each
    row coded once. ``start``: a trained model's ``(probabilities, event counts)`` to
    start from instead of :func:`prior` (both ends must use the same; see
    :mod:`netcode.statesync.training`, which checks them). ``tally`` (int64, two per
    context): each decision coded adds one to its context's count of 0s (``2 * ctx``) or
    1s (``2 * ctx + 1``), what a trainer learns from (a row cut for the ``limit`` stays
    counted). ``layout`` 1: the richer contexts only trained models use (:func:`_classes`).
    ``ended``: a ``(probabilities, counts)`` pair of arrays, set to where the model ended
    once every row is coded (a later table may start there: the decoder of this one ends
    in the same place); a table cut for the ``limit`` leaves it as it was, since its
    decoder never sees the row that was cut."""
    group_of, field_of, motion, fields, ends = _checked(group_of, field_of, motion, groups)
    ended = checked_model(ended, fields, groups, layout)
    deltas = np.ascontiguousarray(deltas, np.int64)
    if deltas.shape != motion.shape:
        raise ValueError(f"deltas {deltas.shape} for motion {motion.shape} and {len(group_of)} columns")
    d: cython.longlong[:, ::1] = deltas
    fof: cython.int[::1] = field_of
    end: cython.Py_ssize_t[::1] = ends
    mo: cython.int[:, ::1] = motion
    rows, cols = d.shape[0], d.shape[1]
    ngroups = groups
    if tally is not None and (tally.dtype != np.int64 or tally.shape != (2 * contexts(fields, ngroups, layout),) or not tally.flags.c_contiguous):
        raise ValueError(f"a tally is int64 ({2 * contexts(fields, ngroups, layout)},), not {tally.dtype} {tally.shape}")
    enc = Encoder(*_start(start, fields, ngroups, layout), tally)
    xbase = contexts(fields, ngroups) if layout else -1  # where layout 1's added contexts start
    vbase = ngroups * _FLAG_CTX
    flags = np.zeros(ngroups, np.int32)  # whether the row before changed, per group
    prev: cython.int[::1] = flags
    sets = np.zeros(max(fields, 1), np.int32)
    most: cython.int[::1] = sets
    worst = ngroups + cols * (2 * _CLASSES + 1)  # the most decisions a row takes
    for r in range(rows):
        enc._reserve(worst)
        if limit >= 0:  # where to rewind to should this row not fit
            low, rng, cache, pending, first_byte, size = enc.low, enc.range, enc.cache, enc.pending, enc.first, enc.size
        c0 = 0
        for g in range(ngroups):  # group g's columns are c0 up to end[g]
            c1 = end[g]
            changed = 0
            top = 0
            sign = 0  # the motion codes or'd: negative if any is (checked once per group)
            for c in range(c0, c1):
                if d[r, c] != 0:
                    changed = 1
                mc = mo[r, c]
                sign |= mc
                if mc > top:
                    top = mc
            if sign < 0 or top >= _MOTIONS:
                raise ValueError(f"motion codes must be 0..{_MOTIONS - 1}")
            top //= 3  # the largest activity (motion // 3 grows with motion)
            enc.bit(g * _FLAG_CTX + top * 2 + prev[g], changed)
            prev[g] = changed
            if changed:
                surprised = 0  # whether a value before, in this row's group, surprised
                lead = 0  # the largest class before, in this row's group
                _set_activity(mo, fof, r, c0, c1, most)
                for c in range(c0, c1):
                    m = mo[r, c]
                    at = vbase + fof[c] * _VALUE_CTX
                    cls_at = _classes(at, _cell(_activity(m, most[fof[c]]), surprised), xbase + fof[c] * _EXTRA_CTX if layout else -1, lead)
                    mc = _put_value(enc, at, cls_at, m % 3, d[r, c])
                    surprised |= _surprised(m, mc)
                    if mc > lead:
                        lead = mc
            c0 = c1
        # The flush writes the held-back bytes (the cache and its run of 0xFF) and four more.
        if limit >= 0 and enc.size + enc.pending + 4 > limit:
            enc.low, enc.range, enc.cache, enc.pending, enc.first, enc.size = low, rng, cache, pending, first_byte, size
            return enc.finish(), r
    if ended is not None:
        _ended(enc.p, enc.n, ended)
    if limit >= 0:
        return enc.finish(), rows
    return enc.finish()


@cython.cdivision(True)
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(
    rows=cython.Py_ssize_t, cols=cython.Py_ssize_t, ngroups=cython.Py_ssize_t, r=cython.Py_ssize_t,
    c=cython.Py_ssize_t, c0=cython.Py_ssize_t, c1=cython.Py_ssize_t, g=cython.Py_ssize_t, m=cython.int, changed=cython.int, sign=cython.int,
    vbase=cython.Py_ssize_t, surprised=cython.int, x=cython.longlong, top=cython.int, mc=cython.int,
    lead=cython.int, at=cython.Py_ssize_t, cls_at=cython.Py_ssize_t, xbase=cython.Py_ssize_t,
)
def decode_table(data, group_of, field_of, motion, groups: cython.Py_ssize_t, changed_rows=None, start=None, layout: cython.int = 0, ended=None):
    """Inverse of :func:`encode_table`: the (rows, columns) int64 deltas, rows from
    ``motion``'s. Raises ProtocolError when ``data`` does not end where the table does;
    garbage decodes to some table (the callers validate what it means). ``changed_rows``
    (uint8, one per row), when given, is set to 1 for each row with a group sent as
    changed (so the caller need not search the table for them). ``start``: the model
    the encoder started from, if not :func:`prior`'s; ``ended``: as the encoder's."""
    group_of, field_of, motion, fields, ends = _checked(group_of, field_of, motion, groups)
    ended = checked_model(ended, fields, groups, layout)
    if changed_rows is None:
        changed_rows = np.zeros(motion.shape[0], np.uint8)
    elif changed_rows.shape != (motion.shape[0],) or changed_rows.dtype != np.uint8:
        raise ValueError(f"changed_rows must be uint8 ({motion.shape[0]},), not {changed_rows.dtype} {changed_rows.shape}")
    touched: cython.uchar[::1] = changed_rows
    fof: cython.int[::1] = field_of
    end: cython.Py_ssize_t[::1] = ends
    mo: cython.int[:, ::1] = motion
    rows, cols = mo.shape[0], len(group_of)
    ngroups = groups
    out = np.zeros((rows, cols), np.int64)
    d: cython.longlong[:, ::1] = out
    dec = Decoder(data, *_start(start, fields, ngroups, layout))
    xbase = contexts(fields, ngroups) if layout else -1  # where layout 1's added contexts start
    vbase = ngroups * _FLAG_CTX
    flags = np.zeros(ngroups, np.int32)
    prev: cython.int[::1] = flags
    sets = np.zeros(max(fields, 1), np.int32)
    most: cython.int[::1] = sets
    for r in range(rows):
        c0 = 0
        for g in range(ngroups):  # group g's columns are c0 up to end[g]
            c1 = end[g]
            top = 0
            for c in range(c0, c1):
                mc = mo[r, c]
                if mc < 0 or mc >= _MOTIONS:
                    raise ValueError(f"motion codes must be 0..{_MOTIONS - 1}")
                if mc > top:
                    top = mc
            top //= 3  # the largest activity (motion // 3 grows with motion)
            changed = dec.bit(g * _FLAG_CTX + top * 2 + prev[g])
            prev[g] = changed
            if changed:
                touched[r] = 1
                surprised = 0  # whether a value before, in this row's group, surprised
                lead = 0  # the largest class before, in this row's group
                _set_activity(mo, fof, r, c0, c1, most)
                for c in range(c0, c1):
                    m = mo[r, c]
                    at = vbase + fof[c] * _VALUE_CTX
                    cls_at = _classes(at, _cell(_activity(m, most[fof[c]]), surprised), xbase + fof[c] * _EXTRA_CTX if layout else -1, lead)
                    x = _get_value(dec, at, cls_at, m % 3)
                    d[r, c] = x
                    mc = _bit_length(cython.cast(cython.ulonglong, -x) if x < 0 else cython.cast(cython.ulonglong, x))
                    surprised |= _surprised(m, mc)
                    if mc > lead:
                        lead = mc
            c0 = c1
    dec.check_end()
    if ended is not None:
        _ended(dec.p, dec.n, ended)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(rows=cython.Py_ssize_t, cols=cython.Py_ssize_t, r=cython.Py_ssize_t, c=cython.Py_ssize_t, x=cython.longlong, act=cython.int, mag=cython.ulonglong)
def motion_codes(base, older, both):
    """Each value's motion code (rows, columns) int32 from the older snapshot's codes to
    the baseline's (int64, same shape) for the rows where ``both`` (bool) holds, 0
    elsewhere: ``activity * 3 + direction``, activity the bit length of the change (at
    most 7), direction 0 none, 1 up, 2 down."""
    base = np.ascontiguousarray(base, np.int64)
    older = np.ascontiguousarray(older, np.int64)
    mask = np.ascontiguousarray(both)
    mask = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)  # a bool mask as is
    if base.ndim != 2 or older.shape != base.shape or mask.shape != (base.shape[0],):
        raise ValueError(f"codes {base.shape} and {older.shape}, rows {mask.shape}")
    b: cython.longlong[:, ::1] = base
    o: cython.longlong[:, ::1] = older
    m: cython.uchar[::1] = mask
    rows, cols = b.shape[0], b.shape[1]
    out = np.zeros((rows, cols), np.int32)
    res: cython.int[:, ::1] = out
    for r in range(rows):
        if not m[r]:
            continue
        for c in range(cols):
            x = b[r, c] - o[r, c]
            if x == 0:
                continue
            mag = cython.cast(cython.ulonglong, -x) if x < 0 else cython.cast(cython.ulonglong, x)
            # the bit length, at most 7, by comparisons: no branch to mispredict per bit
            act = 1 + (mag >= 2) + (mag >= 4) + (mag >= 8) + (mag >= 16) + (mag >= 32) + (mag >= 64)
            res[r, c] = act * 3 + (2 if x < 0 else 1)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
@cython.locals(rows=cython.Py_ssize_t, cols=cython.Py_ssize_t, r=cython.Py_ssize_t, c=cython.Py_ssize_t)
def rows_differ(a, b=None):
    """Per row of ``a`` (rows, columns) int64, whether any of its values differs from
    ``b``'s (the same shape) or, without ``b``, from 0: bool (rows,). One pass in C that
    stops at a row's first difference, where ``(a - b != 0).any(axis=1)`` made three
    tables the size of ``a`` (the encoder asks it per snapshot of every row)."""
    a = np.ascontiguousarray(a, np.int64)
    zeros = b is None
    b = np.zeros((1, 1), np.int64) if zeros else np.ascontiguousarray(b, np.int64)
    if a.ndim != 2 or (not zeros and b.shape != a.shape):
        raise ValueError(f"tables {a.shape} and {b.shape}")
    x: cython.longlong[:, ::1] = a
    y: cython.longlong[:, ::1] = b
    rows, cols = x.shape[0], x.shape[1]
    out = np.zeros(rows, np.uint8)
    o: cython.uchar[::1] = out
    for r in range(rows):
        for c in range(cols):
            if x[r, c] != (0 if zeros else y[r, c]):
                o[r] = 1
                break
    return out.view(np.bool_)
