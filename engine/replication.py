"""What state sync sends of a game's state: the game's replication spec.

Entities are the slots of the arrays named in ``fields`` (axis 0 = entity slot, all the
same length); ``alive`` says which slots exist, so an entity appears on a client when its
slot becomes alive (or relevant) and disappears when it dies (or leaves relevance).
``extras`` are small whole arrays (scores, a match clock) sent beside the entities.
``position`` names the (entities, 2) field interest management measures distance with.
``continuous`` names fields that change smoothly (the position always counts): clients
interpolate them between snapshots, and snapshots code them against their recent motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .quantize import Quantizer

__all__ = ["Replication"]


@dataclass(frozen=True)
class Replication:
    alive: str
    fields: Mapping[str, Quantizer]
    position: str | None = None
    extras: tuple[str, ...] = field(default=())
    continuous: tuple[str, ...] = field(default=())

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

    @property
    def smooth_fields(self) -> tuple[str, ...]:
        """The position (if any) and the continuous fields."""
        return tuple(dict.fromkeys(((self.position,) if self.position else ()) + tuple(self.continuous)))
