"""Adaptive binary range coding of integer tables: the entropy coder of snapshot updates.

A snapshot update is a table: one row per entity the receiver holds, one column per field
component, the difference between each value and where the receiver expects it. Most
rows did not change; the rest change in a few field groups at once, by amounts whose size
follows how fast the entity was moving. Packed at one width per column that costs several
bits per value more than its entropy; here every decision is a binary event coded with an
adaptive probability (LZMA's range coder: 11-bit probabilities, adaptation shift 5), in a
context that knows what predicts it:

* per row and group, *changed*: context (group, the entity's motion class, whether the row
  before changed in that group);
* per changed value, its *magnitude class* (bit length of ``|delta|``, 0 for zero) in
  unary: context (column, motion class, step); then its *sign* (per column) and its bits
  below the top one, the highest of them adaptive (per column and class), the others even.

The *motion class* of a row and group is the bit length of its largest motion between the
two snapshots the receiver predicts from (0: it rested), which both ends know: the model
starts from even odds in every packet and adapts only to what that packet carried, so each
packet decodes on its own given its baseline, never needing one that may have been lost.

Written in Cython's pure-Python mode (typed by ``rangecoder.pxd``) like
:mod:`netcode.statesync.bitpack`: compiled where the install built it, the same source
runs as plain Python otherwise (slowly: for tests and ``TICKSYNC_PURE=1``).
"""

import cython
import numpy as np

from netcode.errors import ProtocolError

compiled = cython.compiled

_BITS = 11  # probability precision
_ONE = 1 << _BITS
_HALF = _ONE >> 1
_MOVE = 5  # adaptation speed
_TOP = 1 << 24
_SLACK = 4  # bytes a decoder may read past its input (the flush is trimmed of them)

_CLASSES = 64  # magnitude classes: bit lengths 0..63 (deltas of codes >= 0 are shorter)
_MOTIONS = 16  # motion classes (bit lengths of the motion, clipped)
_FLAG_CTX = _MOTIONS * 2  # per group
_VALUE_CTX = _MOTIONS * _CLASSES + 1 + _CLASSES  # per column: classes, sign, top mantissa bits
MOTIONS = _MOTIONS  # (the C constants above are not visible from Python)


def _plain(contexts):
    """The probabilities as Python ints, for the interpreted twin: numpy's small unsigned
    scalars would make the range arithmetic wrap."""
    return [_HALF] * contexts


@cython.cclass
class Encoder:
    """Encodes binary decisions against adaptive probabilities, one per context."""

    def __init__(self, contexts: cython.Py_ssize_t):
        self.low = 0
        self.range = 0xFFFFFFFF
        self.cache = 0
        self.pending = 1
        self.first = True
        self.out = bytearray()
        self.probs = np.full(contexts, _HALF, np.uint32)
        self.p = self.probs if cython.compiled else _plain(contexts)

    @cython.cfunc
    @cython.locals(carry=cython.uint, temp=cython.uint)
    def _shift(self) -> cython.void:
        if self.low < 0xFF000000 or self.low >= 0x100000000:
            carry = cython.cast(cython.uint, self.low >> 32)
            temp = self.cache
            while True:
                if self.first:  # the first byte is always 0: not sent
                    self.first = False
                else:
                    self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.pending -= 1
                if self.pending == 0:
                    break
            self.cache = cython.cast(cython.uint, (self.low >> 24) & 0xFF)
        self.pending += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    @cython.ccall
    @cython.locals(p=cython.uint, bound=cython.uint)
    def bit(self, ctx: cython.Py_ssize_t, b: cython.int) -> cython.void:
        p = self.p[ctx]
        bound = (self.range >> _BITS) * p
        if b:
            self.low += bound
            self.range -= bound
            self.p[ctx] = p - (p >> _MOVE)
        else:
            self.range = bound
            self.p[ctx] = p + ((_ONE - p) >> _MOVE)
        while self.range < _TOP:
            self.range <<= 8
            self._shift()

    @cython.ccall
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
        for i in range(5):
            self._shift()
        out = self.out
        # The decoder reads zeros past the end: trailing zeros of the flush need not go.
        trim = 0
        while trim < _SLACK and len(out) > trim and out[len(out) - 1 - trim] == 0:
            trim += 1
        return bytes(out[: len(out) - trim])


@cython.cclass
class Decoder:
    """Decodes what :class:`Encoder` wrote with the same contexts in the same order."""

    def __init__(self, data, contexts: cython.Py_ssize_t):
        self.data = bytes(data)
        self.size = len(data)
        self.pos = 0
        self.range = 0xFFFFFFFF
        self.code = 0
        for _ in range(4):
            self.code = (self.code << 8) | self._byte()
        self.probs = np.full(contexts, _HALF, np.uint32)
        self.p = self.probs if cython.compiled else _plain(contexts)

    @cython.cfunc
    def _byte(self) -> cython.uint:
        self.pos += 1
        if self.pos <= self.size:
            return self.data[self.pos - 1]
        return 0

    @cython.ccall
    @cython.locals(p=cython.uint, bound=cython.uint, b=cython.int)
    def bit(self, ctx: cython.Py_ssize_t) -> cython.int:
        p = self.p[ctx]
        bound = (self.range >> _BITS) * p
        if self.code < bound:
            self.range = bound
            self.p[ctx] = p + ((_ONE - p) >> _MOVE)
            b = 0
        else:
            self.code -= bound
            self.range -= bound
            self.p[ctx] = p - (p >> _MOVE)
            b = 1
        while self.range < _TOP:
            self.range <<= 8
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF
        return b

    @cython.ccall
    @cython.locals(b=cython.int)
    def even(self) -> cython.int:
        self.range >>= 1
        b = 0
        if self.code >= self.range:
            self.code -= self.range
            b = 1
        while self.range < _TOP:
            self.range <<= 8
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF
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
    while x:
        x >>= 1
        b += 1
    return b


@cython.cfunc
@cython.locals(mag=cython.ulonglong, cls=cython.int, k=cython.int, base=cython.Py_ssize_t)
def _put_value(enc: Encoder, ctx: cython.Py_ssize_t, motion: cython.int, d: cython.longlong) -> cython.void:
    """A signed value in the contexts of one column starting at ``ctx``."""
    mag = cython.cast(cython.ulonglong, -d) if d < 0 else cython.cast(cython.ulonglong, d)
    cls = _bit_length(mag)
    base = ctx + motion * _CLASSES
    for k in range(cls):
        enc.bit(base + k, 1)
    if cls < _CLASSES - 1:
        enc.bit(base + cls, 0)
    if cls == 0:
        return
    enc.bit(ctx + _MOTIONS * _CLASSES, 1 if d < 0 else 0)
    if cls >= 2:
        enc.bit(ctx + _MOTIONS * _CLASSES + 1 + cls, cython.cast(cython.int, (mag >> (cls - 2)) & 1))
    for k in range(cls - 3, -1, -1):
        enc.even(cython.cast(cython.int, (mag >> k) & 1))


@cython.cfunc
@cython.locals(mag=cython.ulonglong, cls=cython.int, k=cython.int, base=cython.Py_ssize_t, negative=cython.int)
def _get_value(dec: Decoder, ctx: cython.Py_ssize_t, motion: cython.int) -> cython.longlong:
    base = ctx + motion * _CLASSES
    cls = 0
    while cls < _CLASSES - 1 and dec.bit(base + cls):
        cls += 1
    if cls == 0:
        return 0
    negative = dec.bit(ctx + _MOTIONS * _CLASSES)
    mag = 1
    if cls >= 2:
        mag = (mag << 1) | cython.cast(cython.ulonglong, dec.bit(ctx + _MOTIONS * _CLASSES + 1 + cls))
    for k in range(cls - 3, -1, -1):
        mag = (mag << 1) | cython.cast(cython.ulonglong, dec.even())
    return -cython.cast(cython.longlong, mag) if negative else cython.cast(cython.longlong, mag)


def contexts(columns: int, groups: int) -> int:
    """How many probabilities a table of ``columns`` in ``groups`` needs."""
    return groups * _FLAG_CTX + columns * _VALUE_CTX


@cython.locals(
    rows=cython.Py_ssize_t, cols=cython.Py_ssize_t, ngroups=cython.Py_ssize_t, r=cython.Py_ssize_t,
    c=cython.Py_ssize_t, g=cython.Py_ssize_t, m=cython.int, changed=cython.int, vbase=cython.Py_ssize_t,
)
def encode_table(deltas, group_of, motion, groups: cython.Py_ssize_t) -> bytes:
    """Range-code ``deltas`` (rows, columns) int64 whose columns belong to groups
    ``group_of`` (columns,) int32 0..groups-1; ``motion`` (rows, groups) int32 motion
    classes < MOTIONS. A row's group is sent as changed when any of its deltas is nonzero."""
    d: cython.longlong[:, :] = deltas
    gof: cython.int[:] = group_of
    mo: cython.int[:, :] = motion
    rows, cols = d.shape[0], d.shape[1]
    ngroups = groups
    enc = Encoder(contexts(cols, ngroups))
    vbase = ngroups * _FLAG_CTX
    before = np.zeros(ngroups, np.int32)  # whether the row before changed, per group
    prev: cython.int[:] = before
    for r in range(rows):
        for g in range(ngroups):
            changed = 0
            for c in range(cols):
                if gof[c] == g and d[r, c] != 0:
                    changed = 1
                    break
            m = mo[r, g]
            enc.bit(g * _FLAG_CTX + m * 2 + prev[g], changed)
            prev[g] = changed
            if changed:
                for c in range(cols):
                    if gof[c] == g:
                        _put_value(enc, vbase + c * _VALUE_CTX, m, d[r, c])
    return enc.finish()


@cython.locals(
    rows=cython.Py_ssize_t, cols=cython.Py_ssize_t, ngroups=cython.Py_ssize_t, r=cython.Py_ssize_t,
    c=cython.Py_ssize_t, g=cython.Py_ssize_t, m=cython.int, changed=cython.int, vbase=cython.Py_ssize_t,
)
def decode_table(data, group_of, motion, groups: cython.Py_ssize_t):
    """Inverse of :func:`encode_table`: the (rows, columns) int64 deltas, rows from
    ``motion``'s. Raises ProtocolError when ``data`` is too short for them; garbage
    decodes to some table (the callers validate what it means)."""
    gof: cython.int[:] = group_of
    mo: cython.int[:, :] = motion
    rows, cols = mo.shape[0], gof.shape[0]
    ngroups = groups
    for c in range(cols):
        if gof[c] < 0 or gof[c] >= ngroups:
            raise ValueError(f"column {c} in group {gof[c]} of {ngroups}")
    for r in range(rows):
        for g in range(ngroups):
            if mo[r, g] >= _MOTIONS:
                raise ValueError(f"motion class {mo[r, g]} of {MOTIONS}")
    out = np.zeros((rows, cols), np.int64)
    d: cython.longlong[:, :] = out
    dec = Decoder(data, contexts(cols, ngroups))
    vbase = ngroups * _FLAG_CTX
    before = np.zeros(ngroups, np.int32)
    prev: cython.int[:] = before
    for r in range(rows):
        for g in range(ngroups):
            m = mo[r, g]
            changed = dec.bit(g * _FLAG_CTX + m * 2 + prev[g])
            prev[g] = changed
            if changed:
                for c in range(cols):
                    if gof[c] == g:
                        d[r, c] = _get_value(dec, vbase + c * _VALUE_CTX, m)
    dec.check_end()
    return out
