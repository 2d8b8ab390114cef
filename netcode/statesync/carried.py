"""The coder models a state-sync server's encodings start from and end in, for specs that
carry them (``Replication(carry=True)``; :meth:`SnapshotCoding.carried`).

A client decoding a snapshot keeps the model its table ended in; a later snapshot coded
against that one starts there. The server must start from the very model that client
holds, which depends on the encoding the client was sent (clients with another
baseline, or other cells, hold another). So each peer keeps, per snapshot it was sent, the
model that encoding ended in, and an encoding's key gains the model it starts from:
clients share an encoding only when they share that model too.

The keys gain their model before the server plans a snapshot's encodings
(:func:`~netcode.statesync.baselines.plan_encodings`), which moves a client onto another
client's encoding only when it holds the very model that encoding starts from, so
``StateSyncConfig.encode_budget`` bounds the encodings here as it does without carried
models. Under loss clients' models part ways (a snapshot coded from another model ends in
another), so fewer clients could share; when the budget binds, the plan may therefore
also code a delta from the spec's model (a *reset*, :meth:`CarriedModels.resets`, flagged
RESET on the wire): every client that acked its baseline and predictor decodes it,
whichever model it holds, and all of them end in the same model, their chains one again.
"""

from __future__ import annotations

__all__ = ["CarriedModels"]

_FULL = -1  # a key's baseline for a full snapshot (netcode.statesync.send)


class CarriedModels:
    """One snapshot's carried models: which each encoding starts from and ends in."""

    def __init__(self, coding, tick: int, keep_from: int):
        self.coding = coding
        self.tick = tick
        self.keep_from = keep_from  # models of snapshots before this tick are dropped
        self.starts: dict = {}  # key -> the model the encoding starts from (None: the spec's)
        self.ends: dict = {}  # key -> the model it ends in, once encoded
        self._keys: dict = {}  # (key, id of the start) -> its key object, shared

    def keyed(self, jobs: list) -> list:
        """``jobs`` (``(peer, conn, cell, paced, key)``, :meth:`SnapshotSender.wants`') with
        each key extended by the model the peer holds for its baseline (``self.starts``
        says which). A peer that holds none for it (the server never recorded sending it
        that snapshot) gets a full snapshot."""
        out = []
        for job in jobs:
            peer, key = job[0], job[4]
            start = None
            if key[0] != _FULL:
                start = peer.models.get(key[0])
                if start is None:
                    key = (_FULL, _FULL, None, None, key[4])
            ext = self._extended(key, start)
            out.append(job if ext is job[4] else (peer, job[1], job[2], job[3], ext))
        return out

    def resets(self, keys: list) -> list:
        """Per distinct delta among ``keys`` (as :meth:`keyed` extended them), the same delta
        coded from the spec's model instead (its start None): a *reset*, which any client
        that acked its baseline and predictor can decode whatever model it holds."""
        # (a dict keeps them in order, once each: deltas that differ only by model share a reset)
        return list(dict.fromkeys(self._extended(key[:-1], None) for key in dict.fromkeys(keys)
                                  if key[0] != _FULL and self.starts[key] is not None))

    def _extended(self, key: tuple, start) -> tuple:
        """``key`` and the model it starts from, one shared key object per pair."""
        ext = self._keys.get((key, id(start)))
        if ext is None:
            ext = self._keys[(key, id(start))] = key + (id(start),)
            self.starts[ext] = start
        return ext

    def models(self, key: tuple) -> tuple:
        """``(start, end)`` for :func:`encode_snapshot`: the model the encoding of ``key``
        starts from, and a new one for it to end in (kept for the peers it goes to)."""
        end = self.ends[key] = self.coding.carried()
        return self.starts[key], end

    def delivered(self, jobs: list) -> None:
        """Record, per peer the snapshot went to, the model its encoding ended in."""
        tick, keep_from = self.tick, self.keep_from
        for job in jobs:
            models = job[0].models
            models[tick] = self.ends[job[4]]
            oldest = next(iter(models))  # (added in tick order: only the oldest may be due)
            while oldest < keep_from:
                del models[oldest]
                oldest = next(iter(models))
