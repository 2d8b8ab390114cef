"""What state sync sends of a game's state: the game's replication spec.

Entities are the slots of the arrays named in ``fields`` (axis 0 = entity slot, all the
same length); ``alive`` says which slots exist, so an entity appears on a client when its
slot becomes alive (or relevant) and disappears when it dies (or leaves relevance).
``extras`` are small whole arrays (scores, a match clock) sent beside the entities.
``position`` names the (entities, 2) field interest management measures distance with.
``continuous`` names fields that change smoothly (the position always counts): clients
interpolate them between snapshots, and snapshots code them against their recent motion.

These options tune how snapshots code a game whose entities do not move in straight lines:

* ``coding="entropy"`` range-codes updates with context models (see
  :mod:`netcode.statesync.rangecoder`) instead of bit-packing each column at one width: fewer
  bytes for physics-like motion, more CPU per snapshot. ``"packed"`` (the default) is the
  older, cheaper format. Browser clients decode both, unless the spec names a ``predictor``
  function of its own (they run :class:`~engine.bodies.Bodies`).
* ``groups``: tuples of fields that change together (a position's axes and its height, a
  rotation's components); with entropy coding one changed flag covers each group. Fields in
  no group are a group each.
* ``predictor``: :class:`~engine.bodies.Bodies` (rigid bodies under gravity, declared as
  numbers: every client runs it, browsers too, and with ``box`` it is also the spec's
  ``refine``), or a function that says where each entity should be at the snapshot's tick,
  from the two snapshots the receiver holds before it; only entities elsewhere are sent
  (default: the smooth fields keep the velocity they had, :func:`netcode.statesync.snapshot.predict`).
  It is called as ``predictor(base, older, rows, ahead, gap, columns)`` with the baseline's
  and the older snapshot's codes (entities, columns) int64, ``rows`` the bool mask of the
  entities in both, ``ahead`` the ticks from the baseline to the snapshot, ``gap`` the ticks
  from the older one to the baseline, and ``columns`` the field name -> (first, end) column
  map; it returns the expected codes (entities, columns) int64 (the baseline's where it
  has no better guess). It runs on server and client alike, row by row (the same rows in,
  the same rows out), so it must be integer arithmetic that both compute identically (or
  steps that are, such as :meth:`engine.quantize.SmallestThree.extrapolate`'s, which turns
  a spinning body's rotation codes on in fixed IEEE steps, the same compiled or not).
* ``refine`` with ``refined`` (field names; entropy coding only): a second guess for the
  ``refined`` fields of the entities an update changes, made once the update's other fields
  are known, as a body's height follows from how it lies on the ground. Called as
  ``refine(expected, known, columns)`` with the expected codes (rows, columns) int64 of
  those entities and their codes as the update sends them, the refined fields' columns
  holding the expected values; it returns codes (rows, columns) int64 of which the refined
  fields' columns are taken. A row whose other fields came as expected must keep its
  expected refined values (as an entity the update leaves out does; the encoder refuses a
  guess that leaves a changed row nothing to send). It runs on what a peer sent: any
  integers must give integers, never an error. Python clients only.
* ``model`` (entropy coding only): a trained starting model for the range coder, as bytes
  (:class:`netcode.statesync.training.CoderModel`, learned from recordings of the game):
  fewer bytes from each packet's first decisions on. Both ends must hold the same; the
  spec's repr (hence the handshake fingerprint) names the model by its digest. The
  browser client loads it from the room's schema.
* ``carry=True`` (entropy coding only): each snapshot's range coder starts from the model
  the table of the snapshot it is coded against ended in, not afresh: a packet need not
  learn again what its baseline's taught (the cube scene: 4% fewer bytes, with no
  training). Both ends keep a model per snapshot (Python and browser clients).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from .bodies import Bodies
from .quantize import Quantizer

if TYPE_CHECKING:
    from .state import State

__all__ = ["Replication", "model_digest"]


def model_digest(data: bytes) -> str:
    """A coder model's identity (a spec's repr names it so): 16 hex digits of its bytes'
    BLAKE2b."""
    return hashlib.blake2b(bytes(data), digest_size=8).hexdigest()


@dataclass(frozen=True, repr=False)
class Replication:
    """A game's state-sync spec: which state arrays are entity fields (and how each is
    quantized), which bool array says which entity rows exist, and what else is sent.

    ``Replication(alive="alive", fields={"pos": Int(0, 1000)}, position="pos")``: every
    field is a column of the entity table, one row per entity slot, as many rows as
    ``alive`` has (a row of an ``(n, 2)`` field is its two values). :meth:`problems` checks
    a spec against a state (``ticksync check`` runs it; a state-sync server refuses a spec
    that has any).
    """

    alive: str
    fields: Mapping[str, Quantizer]
    position: str | None = None
    extras: tuple[str, ...] = field(default=())
    continuous: tuple[str, ...] = field(default=())
    coding: str = "packed"
    groups: tuple[tuple[str, ...], ...] = field(default=())
    predictor: Callable | None = None
    refine: Callable | None = None
    refined: tuple[str, ...] = field(default=())
    model: bytes | None = None
    carry: bool = False

    def __post_init__(self):
        if not self.fields:
            raise ValueError("a replication spec needs at least one field")
        for name, q in self.fields.items():
            if not isinstance(q, Quantizer):
                raise TypeError(f"replicated field {name!r} needs a Quantizer, got {q!r}")
        if self.position is not None and self.position not in self.fields:
            raise ValueError(f"position field {self.position!r} must be a replicated field")
        unknown = set(self.continuous) - set(self.fields)
        if unknown:
            raise ValueError(f"continuous fields {sorted(unknown)} are not replicated fields")
        if self.coding not in ("packed", "entropy"):
            raise ValueError(f"coding {self.coding!r}: 'packed' or 'entropy'")
        grouped = [name for group in self.groups for name in group]
        if set(grouped) - set(self.fields) or len(grouped) != len(set(grouped)) or not all(self.groups):
            raise ValueError(f"groups {self.groups} must be non-empty tuples of distinct replicated fields")
        if self.predictor is not None and not callable(self.predictor):
            raise TypeError(f"predictor {self.predictor!r} is not callable")
        if isinstance(self.predictor, Bodies):  # the built-in one: checked, and its height guess is the refine
            bodies = self.predictor.bound(self.fields)
            object.__setattr__(self, "predictor", bodies)
            if bodies.box is not None:
                if self.coding != "entropy":
                    raise ValueError("Bodies(box=...) guesses heights from a packet's rotation: it needs coding='entropy'")
                if self.refine is not None or self.refined:
                    raise ValueError("a Bodies predictor with box guesses the height again itself: the spec names no refine")
                object.__setattr__(self, "refine", bodies.refine)
                object.__setattr__(self, "refined", bodies.refined)
        if (self.refine is None) != (not self.refined):
            raise ValueError("refine and refined go together: the function and the fields it refines")
        if self.refine is not None:
            if not callable(self.refine):
                raise TypeError(f"refine {self.refine!r} is not callable")
            if self.coding != "entropy":
                raise ValueError("refine needs coding='entropy'")
            if set(self.refined) - set(self.fields) or len(set(self.refined)) != len(self.refined) or len(self.refined) == len(self.fields):
                raise ValueError(f"refined {self.refined} must be distinct replicated fields, not all of them")
            turned = [name for name in self.refined if self.fields[name].has_delta]
            if turned:
                raise ValueError(f"refined fields {turned} code their own deltas: only plain differences can be refined")
        if self.model is not None:
            model = self.model
            if hasattr(model, "to_bytes"):  # a trained model object: kept as its bytes
                model = model.to_bytes()
            if not isinstance(model, (bytes, bytearray, memoryview)):
                raise TypeError(f"model must be a trained coder model or its bytes, not {type(self.model).__name__}")
            if self.coding != "entropy":
                raise ValueError("a coder model needs coding='entropy'")
            object.__setattr__(self, "model", bytes(model))
        if self.carry not in (False, True):
            raise TypeError(f"carry is True or False, not {self.carry!r}")
        if self.carry and self.coding != "entropy":
            raise ValueError("carry (coder models carried between snapshots) needs coding='entropy'")

    def problems(self, state: "State") -> list[str]:
        """What is wrong with this spec for ``state`` (a state the game created): arrays
        it names that the state lacks, an ``alive`` that is not a 1-d bool array, fields
        whose row count is not ``alive``'s, a position that is not ``(rows, 2)``. Empty
        when the spec fits."""
        found: list[str] = []
        names = set(state.names)
        for role, name in [("alive", self.alive), *(("field", f) for f in self.fields), *(("extra", e) for e in self.extras)]:
            if name not in names:
                found.append(f"replication {role} {name!r} is not an array of the state (it has: {', '.join(state.names)})")
        if self.alive not in names:
            return found
        alive = state[self.alive]
        if alive.dtype != np.bool_ or alive.ndim != 1:
            found.append(f"replication alive array {self.alive!r} must be a 1-d bool array, not {alive.dtype} {alive.shape}")
            return found
        rows = len(alive)
        for name in self.fields:
            arr = state[name] if name in names else None
            if arr is None:
                continue
            if arr.ndim == 0 or arr.shape[0] != rows:
                have = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
                found.append(f"replicated field {name!r} has {have}, alive has {rows}: every field is a column of the entity table")
        if self.position is not None and self.position in names:
            pos = state[self.position]
            if pos.shape[1:] != (2,):
                found.append(f"position field {self.position!r} must be (entities, 2), not {pos.shape}")
        return found

    def __repr__(self) -> str:
        # What the handshake's game fingerprint hashes, so the same in every process: the
        # predictor by its qualified name (a function's repr holds its address), and the
        # coding options only when set (a spec without them reads as it always did).
        out = (
            f"Replication(alive={self.alive!r}, fields={self.fields!r}, position={self.position!r}, "
            f"extras={self.extras!r}, continuous={self.continuous!r}"
        )
        if self.coding != "packed":
            out += f", coding={self.coding!r}"
        if self.groups:
            out += f", groups={self.groups!r}"
        if isinstance(self.predictor, Bodies):  # by its numbers (its refine is its own)
            out += f", predictor={self.predictor!r}"
        elif self.predictor is not None:
            p = self.predictor
            out += f", predictor={getattr(p, '__module__', None)}.{getattr(p, '__qualname__', type(p).__qualname__)}"
        if self.refine is not None and not (isinstance(self.predictor, Bodies) and self.predictor.box is not None):
            p = self.refine
            out += f", refine={getattr(p, '__module__', None)}.{getattr(p, '__qualname__', type(p).__qualname__)}, refined={self.refined!r}"
        if self.model is not None:  # by its bytes' digest: another model, another spec
            out += f", model={model_digest(self.model)}"
        if self.carry:
            out += ", carry=True"
        return out + ")"

    @property
    def smooth_fields(self) -> tuple[str, ...]:
        """The position (if any) and the continuous fields."""
        return tuple(dict.fromkeys(((self.position,) if self.position else ()) + tuple(self.continuous)))
