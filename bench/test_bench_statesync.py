"""pytest-benchmark micro benches for state sync (collected only by ``pytest bench``).

The load scripts (``python -m bench.bench_statesync``, ``python -m bench.bench_statesync_loopback``)
give percentiles and bandwidth; these track the numbers most likely to regress: one shared
delta encoding of a 1000-entity snapshot, one input packet through the server, and one
virtual second of a 200-client room (server plus the bench's light clients). One plain test
checks that the light clients' header-only parse agrees with ``decode_part``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench.bench_statesync import ROWS, SECRET, BenchArena, FakeClient, build, token
from netcode.statesync.snapshot import SnapshotHistory, SnapshotSchema, encode_snapshot
from netcode.statesync.server import _PART_BUDGET, StateSyncServer, StateSyncConfig
from netcode.statesync.wire import pack_ss_input
from netcode.session.wire import PacketType


def _two_snapshots(moving: float, players: int = 16):
    """(schema, history, tick, base tick) after a few seconds of bots playing."""
    game = BenchArena(npcs=1000, moving=moving)
    state = game.create(1, players)
    schema = SnapshotSchema(game.replication, state)
    history = SnapshotHistory(schema)
    slots = np.arange(players)
    for t in range(240):
        game.step(state, game.bot_inputs(state, t, slots), t)
        if (t + 1) % 2 == 0:
            history.add(t + 1, *schema.quantize(state))
    return schema, history, 240, 238


def _encode(schema, history, tick, base):
    i, b = history.index(tick), history.index(base)
    return encode_snapshot(
        tick, history.codes[i], history.alive[i], history.extras[i], budget=_PART_BUDGET,
        base_tick=base, base_codes=history.codes[b], base_view=history.alive[b], base_extras=history.extras[b],
    )


def test_delta_encode_1000_entities_10pct_moving(benchmark):
    args = _two_snapshots(0.1)
    parts = benchmark(_encode, *args)
    assert len(parts) == 1


def test_delta_encode_1000_entities_all_moving(benchmark):
    args = _two_snapshots(1.0)
    parts = benchmark(_encode, *args)
    assert len(parts) >= 3


def test_delta_encode_1000_entities_all_moving_with_a_predictor(benchmark):
    """As the server encodes for a client that acked two snapshots: steady movers cost a
    bit, only surprises are sent (the Colyseus scenario's snapshots, 100 players)."""
    schema, history, tick, base = _two_snapshots(1.0, players=100)
    i, b, p = history.index(tick), history.index(base), history.index(base - 2)

    def encode():
        return encode_snapshot(
            tick, history.codes[i], history.alive[i], history.extras[i], budget=_PART_BUDGET,
            base_tick=base, base_codes=history.codes[b], base_view=history.alive[b], base_extras=history.extras[b],
            predictor=(base - 2, history.codes[p], history.alive[p], schema.smooth),
        )

    parts = benchmark(encode)
    assert len(parts) == 1


def test_one_input_packet_through_the_server(benchmark):
    """An established client's SS_INPUT (ack + 4 stamped inputs), as the bench clients send,
    through the server's receive loop (compiled where this install built it: see
    ``python -m netcode.compiled``; TICKSYNC_PURE=1 for the interpreted sources)."""
    game = BenchArena(npcs=1000, moving=0.1)
    server = StateSyncServer(game, StateSyncConfig(players=4), secret=SECRET, rng=random.Random(1))
    client = FakeClient(game, 0, token(0), server="server")
    now = [100.0]
    client.session.connect(now[0])
    for _ in range(3):  # handshake: request, challenge, response, accepted
        for data, _ in client.datagrams_to_send():
            server.receive_datagram(data, "c0", now[0])
        for data, _ in server.datagrams_to_send():
            client.receive_datagram(data, "server", now[0])
    assert client.connected
    for _ in range(4):  # a few ticks, so the client has heard the server (its acks are valid)
        now[0] += 1 / 60
        server.on_tick(now[0])
        for data, _ in server.datagrams_to_send():
            client.receive_datagram(data, "server", now[0])
    records = np.zeros((4, game.input_dtype.itemsize), np.uint8)
    records[2:, 0] = 127  # the stick moved two ticks ago: records coded with byte masks

    def packet():  # not timed: the client's side
        now[0] += 1 / 60
        server.tick += 1  # so every packet carries a new tick
        client.session.send(PacketType.SS_INPUT, pack_ss_input(0, None, 4, server.tick, records), now[0])
        (data, _), = client.datagrams_to_send()
        return (data, "c0", now[0]), {}

    benchmark.pedantic(server.receive_datagram, setup=packet, rounds=3000, iterations=1)
    assert server.stats()["session"]["dropped"] == {}


def test_one_second_of_a_200_client_room(benchmark):
    row = next(r for r in ROWS if r.key == "m10_200")
    match = build(row, verify=0)
    match.net.run_for(2.0)  # handshakes and the first snapshots
    assert match.server.stats()["players"] == 200
    benchmark.pedantic(match.net.run_for, args=(1.0,), rounds=3, iterations=1)


def test_header_only_parse_agrees_with_decode_part():
    """The light clients read only the part header; check it against the full decoder on
    every part of a few seconds of both workloads (the bench does this during warm-ups)."""
    for key in ("m10_16", "budget_64"):
        row = next(r for r in ROWS if r.key == key)
        match = build(row, verify=10**9)
        match.net.run_for(3.0)
        assert all(c.verified > 50 for c in match.clients)
        assert all(c.acked > 0 for c in match.clients)
