"""How a replication spec's options shape snapshot coding: groups, prediction, entropy coding.

:class:`SnapshotCoding` is built by :class:`~netcode.statesync.snapshot.SnapshotSchema` from a
spec that uses ``coding="entropy"``, ``groups`` or a ``predictor`` (see
:mod:`engine.replication`); a spec that uses none has no coding object and snapshots take
the packed path unchanged. It holds what both ends derive from the spec: which group each
column is in, the quantizers that code a change as something other than a difference
(rotations), the game's predictor, and the range-coded update table's rows, deltas and
motion classes (the table itself is :mod:`netcode.statesync.rangecoder`'s).
"""

from __future__ import annotations

import base64

import numpy as np

from engine.bodies import Bodies
from engine.quantize import SmallestThree
from netcode.statesync import rangecoder

__all__ = ["SnapshotCoding"]


class SnapshotCoding:
    def __init__(self, replication, fields, columns: int, smooth: np.ndarray):
        self.entropy = replication.coding == "entropy"
        self.hook = replication.predictor
        # The engine's rigid-body predictor (browsers run it too), or None.
        self.bodies = replication.predictor if isinstance(replication.predictor, Bodies) else None
        # Whether the game predicts or refines with functions of its own (Python clients only).
        self.custom = (self.hook is not None and self.bodies is None) or (
            replication.refine is not None and not (self.bodies is not None and self.bodies.box is not None))
        self.smooth = smooth
        self.columns_of = {name: (c, c + w) for name, _, c, w, _, _ in fields}
        group_names = list(replication.groups)
        grouped = {name for group in group_names for name in group}
        group_names += [(name,) for name, *_ in fields if name not in grouped]
        self.group_of = np.zeros(columns, np.int32)
        for g, group in enumerate(group_names):
            for name in group:
                c0, c1 = self.columns_of[name]
                self.group_of[c0:c1] = g
        self.groups = len(group_names)
        # The table takes columns group after group; each field's columns share contexts.
        self.order = np.argsort(self.group_of, kind="stable")
        self.in_order = bool((self.order == np.arange(columns)).all())
        self.table_groups = self.group_of[self.order]
        field_of = np.zeros(columns, np.int32)  # columns with equal numbers share contexts
        used = 0
        for _name, q, c, w, _, _ in fields:
            ids = np.asarray(q.contexts(w), np.int32)
            field_of[c : c + w] = used + ids
            used += int(ids.max()) + 1 if w else 0
        self.table_fields = field_of[self.order]
        self.table_sets = used  # context sets of the table
        # A trained starting model (netcode.statesync.training), checked against the table.
        self.model = None
        self.start = None
        self.layout = 0  # the coder's context layout: a model's (see rangecoder._classes)
        if replication.model is not None:
            from netcode.statesync.training import CoderModel

            self.model = CoderModel.from_bytes(replication.model)
            if (self.model.fields, self.model.groups) != (self.table_sets, self.groups):
                raise ValueError(f"the coder model is for tables of {self.model.fields} context sets in {self.model.groups} groups; "
                                 f"this spec's have {self.table_sets} in {self.groups}")
            self.start = self.model.start
            self.layout = self.model.layout
        self.carries = replication.carry  # each snapshot's coder starts where its baseline's ended (see carried)
        self.tally = None  # a Trainer's, while it records
        self._first = None  # where a table's coder starts, as a carried model (see carried)
        self.transforms = [(c, c + w, q) for name, q, c, w, _, _ in fields if q.has_delta]
        self.refine = replication.refine
        self.refined = np.zeros(columns, bool)  # the columns refine() guesses again
        for name in replication.refined:
            c0, c1 = self.columns_of[name]
            self.refined[c0:c1] = True
        # ... as runs of columns: slices are views, a mask's indexing copies (per packet)
        edges = np.flatnonzero(np.diff(np.concatenate(([False], self.refined, [False]))))
        self.refined_runs = [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]

    def describe(self) -> dict:
        """What a browser needs to decode this spec's entropy-coded parts (web/entropy.js's
        EntropyCoding): per column its group and context set, the first column and bit depth
        of each smallest-three rotation, whether the game names a predictor or refine
        function of its own (which only Python runs; :meth:`bodies_json` is the engine's
        predictor, which browsers run), its trained coder model (:mod:`netcode.statesync.training`'s
        file, base64; the browser loads it) or None, and whether it carries models from
        snapshot to snapshot (:meth:`carried`)."""
        rotations = [[c0, q.bits] for c0, _c1, q in self.transforms if isinstance(q, SmallestThree)]
        other = [type(q).__name__ for _c0, _c1, q in self.transforms if not isinstance(q, SmallestThree)]
        if other:
            raise ValueError(f"quantizers {other} code their own deltas: the browser decodes only SmallestThree's")
        field_of = np.empty(len(self.order), np.int64)
        field_of[self.order] = self.table_fields
        return {
            "groups": self.group_of.tolist(),
            "sets": field_of.tolist(),
            "rotations": rotations,
            "predictor": self.custom,
            "model": None if self.model is None else base64.b64encode(self.model.to_bytes()).decode("ascii"),
            "carry": self.carries,
        }

    def bodies_json(self) -> dict | None:
        """The spec's :class:`~engine.bodies.Bodies` as a browser runs it (web/bodies.js),
        its fields as columns; None without one."""
        return None if self.bodies is None else self.bodies.describe(self.columns_of)

    # -- prediction --------------------------------------------------------------------
    def expect(self, base_codes, base_view, pred_codes, pred_view, tick, base_tick, pred_tick, default):
        """Where the receiver expects each entity: the game's predictor, or ``default``
        (the linear one) when the spec names none."""
        if self.hook is None:
            return default(base_codes, base_view, pred_codes, pred_view, tick, base_tick, pred_tick, self.smooth)
        rows = base_view & pred_view
        if base_tick <= pred_tick or not rows.any():
            return base_codes.copy()
        out = self.hook(base_codes, pred_codes, rows, tick - base_tick, base_tick - pred_tick, self.columns_of)
        out = np.asarray(out)
        if out.shape != base_codes.shape or out.dtype != np.int64:
            raise TypeError(f"the predictor returned {out.dtype} {out.shape}, not int64 {base_codes.shape}")
        return out

    # -- the update table --------------------------------------------------------------
    def deltas(self, expected: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """What an update sends for rows ``codes`` the receiver expects at ``expected``."""
        d = codes - expected
        for c0, c1, q in self.transforms:
            if isinstance(q, SmallestThree):  # written in place: no copies of the columns
                q.delta(expected[:, c0:c1], codes[:, c0:c1], d[:, c0:c1])
            else:
                d[:, c0:c1] = q.delta(expected[:, c0:c1], codes[:, c0:c1])
        if self.refine is not None and len(d):
            guess = self.second_guess(expected, codes)
            for r in self.refined_runs:
                np.subtract(codes[:, r], guess[:, r], out=d[:, r])
        return d

    def undo(self, expected: np.ndarray, deltas: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`deltas`."""
        out = expected + deltas
        for c0, c1, q in self.transforms:
            if isinstance(q, SmallestThree):
                q.undelta(expected[:, c0:c1], deltas[:, c0:c1], out[:, c0:c1])
            else:
                out[:, c0:c1] = q.undelta(expected[:, c0:c1], deltas[:, c0:c1])
        if self.refine is not None and len(out):
            guess = self.second_guess(expected, out)
            for r in self.refined_runs:
                np.add(guess[:, r], deltas[:, r], out=out[:, r])
        return out

    def second_guess(self, expected: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The spec's ``refine`` over the rows of an update: the expected codes with the
        refined columns guessed again from the other columns of ``codes`` (the sent or
        decoded ones). Both ends call it on the same rows with the same codes, so any
        guess decodes; one that moves a row whose other fields came as expected leaves
        that row nothing to send, which the encoder refuses (UsageError)."""
        known = codes.copy()
        for r in self.refined_runs:  # refine sees no refined value but the expected one
            known[:, r] = expected[:, r]
        out = np.asarray(self.refine(expected, known, self.columns_of))
        if out.shape != expected.shape or out.dtype != np.int64:
            raise TypeError(f"refine returned {out.dtype} {out.shape}, not int64 {expected.shape}")
        return out

    def motion(self, base: np.ndarray, older: np.ndarray | None, rows: np.ndarray | None) -> np.ndarray:
        """Motion codes (rows, columns) int32: how much (bit length, at most 7) and which
        way each value's code moved from the older snapshot to the baseline, for the rows
        in ``rows``; 0 elsewhere and without an older snapshot. Both ends hold both
        snapshots, so the coder may take its contexts from them: a value that moved moves
        again, by about as much."""
        if older is None:
            return np.zeros(base.shape, np.int32)
        return rangecoder.motion_codes(base, older, rows)

    def encode_table(self, deltas: np.ndarray, motion: np.ndarray, limit: int = -1, start=None, end=None):
        """The range-coded table of ``deltas`` (rows, columns in spec order) with their
        ``motion`` codes (the same shape); the table takes the columns in group order.
        With a ``limit`` (bytes), ``(table, rows)``: the leading rows that fit. ``start``:
        a carried model (see :meth:`carried`) instead of the spec's; ``end``: set to where
        the model ended (``rangecoder.encode_table``)."""
        start = self.start if start is None else start
        if self.in_order:
            return rangecoder.encode_table(deltas, self.table_groups, self.table_fields, motion, self.groups, limit, start, self.tally, self.layout, end)
        o = self.order
        return rangecoder.encode_table(deltas[:, o], self.table_groups, self.table_fields, motion[:, o], self.groups, limit, start, self.tally, self.layout, end)

    def decode_table(self, data, motion: np.ndarray, changed_rows: np.ndarray | None = None, start=None, end=None) -> np.ndarray:
        """Inverse of :meth:`encode_table`; ``changed_rows`` (uint8 per row, optional) is
        set to 1 for the rows the table changes."""
        start = self.start if start is None else start
        if self.in_order:
            return rangecoder.decode_table(data, self.table_groups, self.table_fields, motion, self.groups, changed_rows, start, self.layout, end)
        out = np.empty(motion.shape, np.int64)
        o = self.order
        out[:, o] = rangecoder.decode_table(data, self.table_groups, self.table_fields, motion[:, o], self.groups, changed_rows, start, self.layout, end)
        return out

    def carried(self, start=None, into=None):
        """A carried model: ``start`` (probabilities uint32, event counts uint8), or where
        the spec's coder starts (its trained model or the prior), copied into ``into`` (a
        pair of such arrays), or into new arrays returned.

        A carried model is the coder's model as one snapshot's table left it, for a later
        snapshot coded against that one to start from: a packet's table then need not
        learn again what its baseline's taught (the cube scene: 358.7 -> 344.1 B/packet).
        Both ends hold the baseline, so both can keep the model its table ended in; the
        sender must start from the one the receiver kept for that baseline."""
        if start is None:
            if self._first is None and self.start is not None:
                self._first = self.start  # the trained model's
            elif self._first is None:
                probs = rangecoder.prior(self.table_sets, self.groups, self.layout)
                self._first = (probs, np.zeros(len(probs), np.uint8))
            start = self._first
        if into is None:
            return np.array(start[0], np.uint32), np.array(start[1], np.uint8)
        rangecoder.checked_model(into, self.table_sets, self.groups, self.layout)
        into[0][:] = start[0]
        into[1][:] = start[1]
        return into
