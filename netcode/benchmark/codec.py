"""Snapshot codec throughput: encode and decode per packet, for any game with replication.

The game is played by its bots for a few seconds; its snapshots are quantized into a
history as the state-sync server keeps them, and the newest one is then encoded the ways
the server sends it (full, and delta against a baseline two snapshots older) into parts
of one packet's budget, and each part decoded as a client does. Timed with
``time.perf_counter`` over ``rounds`` repetitions; reported per packet (part), with the
bytes of a packet.
"""

from __future__ import annotations

import time

import numpy as np

from engine.model import Game
from netcode.statesync.server import _PART_BUDGET
from netcode.statesync.snapshot import SnapshotHistory, SnapshotSchema, decode_part, encode_snapshot

__all__ = ["codec_cells"]

WARM_TICKS = 240  # bots' play before the measured snapshot (4 s at 60 Hz)


def _history(game: Game, players: int) -> tuple[SnapshotSchema, SnapshotHistory, int]:
    state = game.create(1, players)
    schema = SnapshotSchema(game.replication, state)
    history = SnapshotHistory(schema)
    slots = np.arange(players)
    for t in range(WARM_TICKS):
        game.step(state, game.bot_inputs(state, t, slots), t)
        if (t + 1) % 2 == 0:
            history.add(t + 1, *schema.quantize(state))
    return schema, history, WARM_TICKS


def codec_cells(game: Game, rounds: int = 200, players: int = 8) -> list[dict]:
    """Encode/decode µs per packet and bytes per packet, full and delta; [] for a game
    without replication (lockstep-only: it sends no snapshots)."""
    if getattr(game, "replication", None) is None:
        return []
    players = min(players, game.max_players)
    schema, history, tick = _history(game, players)
    i, b = history.index(tick), history.index(tick - 4)
    out = []
    for kind in ("full", "delta"):
        base = {} if kind == "full" else dict(
            base_tick=tick - 4, base_codes=history.codes[b], base_view=history.alive[b], base_extras=history.extras[b]
        )

        def encode():
            return encode_snapshot(tick, history.codes[i], history.alive[i], history.extras[i], budget=_PART_BUDGET, **base)

        parts = encode()
        t0 = time.perf_counter()
        for _ in range(rounds):
            encode()
        enc = (time.perf_counter() - t0) / rounds
        t0 = time.perf_counter()
        for _ in range(rounds):
            for part in parts:
                decode_part(part, schema.capacity, schema.columns, schema.extras_size)
        dec = (time.perf_counter() - t0) / rounds
        n, size = len(parts), sum(len(p) for p in parts)
        common = {"kind": "throughput", "entities": schema.capacity, "packets": n, "bytes_per_packet": size / n}
        label = f"snapshot {kind}, {schema.capacity} entities, {n} packet(s) of {size / n:.0f} B"
        out.append({**common, "key": f"codec/{kind}/encode", "label": f"encode {label}", "value": enc / n * 1e6, "unit": "us/packet"})
        out.append({**common, "key": f"codec/{kind}/decode", "label": f"decode {label}", "value": dec / n * 1e6, "unit": "us/packet"})
    return out
