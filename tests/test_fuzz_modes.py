"""Hostile bytes inside established sessions: every mode's receive path, both directions,
ends in a counted drop or a valid packet; nothing raises, nothing hangs."""

import random

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demos.arena import Arena
from helpers import SECRET, token
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.lockstep.client import LockstepClient, LockstepRunner
from netcode.sim.network import LinkConfig, NetSim
from netcode.sim.driver import VirtualNetwork
from netcode.statesync.server import StateSyncServer, StateSyncConfig
from netcode.statesync.client import StateSyncClient
from netcode.session.wire import PacketType

GAME = Arena(npcs=20)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def connected_pair(server, client):
    net = VirtualNetwork(NetSim(1, LinkConfig(latency=0.01)))
    net.add("server", server)
    net.add("client", client)
    client.connect(net.now)
    net.flush("client")
    net.every(1 / 60, lambda now: server.on_tick(now))
    net.run_for(1.0)
    assert client.connected
    return net


def lockstep_pair():
    server = LockstepServer(GAME, LockstepConfig(players=2), secret=SECRET, rng=random.Random(1))
    client = LockstepClient(GAME, server="server", token=token(0), rng=random.Random(2))
    net = connected_pair(server, client)
    runner = LockstepRunner(GAME, client)
    net.every(1 / 60, lambda now: runner.execute(client.update(now)))
    net.run_for(1.0)
    return net, server, client


def statesync_pair():
    server = StateSyncServer(GAME, StateSyncConfig(players=2), secret=SECRET, rng=random.Random(1))
    client = StateSyncClient(GAME, server="server", token=token(0), rng=random.Random(2))
    net = connected_pair(server, client)
    net.every(1 / 60, client.update)
    net.run_for(1.0)
    return net, server, client


LS = lockstep_pair()
SS = statesync_pair()
payloads = st.one_of(st.binary(max_size=64), st.binary(min_size=64, max_size=1150))


# Every type a session carries except DISCONNECT, whose any payload validly ends the session.
SESSION_TYPES = [t for t in PacketType if not t.is_handshake and t is not PacketType.DISCONNECT]


@pytest.mark.parametrize("pair", [LS, SS], ids=["lockstep", "statesync"])
@SETTINGS
@given(packets=st.lists(st.tuples(st.sampled_from(SESSION_TYPES), payloads), min_size=1, max_size=6))
def test_servers_and_clients_survive_hostile_payloads(pair, packets):
    net, server, client = pair
    conn = client.session.connection
    sconn = next(iter(server.session.connections.values()))
    for ptype, payload in packets:
        server.receive_datagram(conn.wrap(ptype, payload, net.now), "client", net.now)
        client.receive_datagram(sconn.wrap(ptype, payload, net.now), "server", net.now)
    server.on_tick(net.now)
    client.update(net.now)


def test_after_the_fuzzing_both_modes_still_play():
    for net, server, client in (LS, SS):
        sconn = next(iter(server.session.connections.values()))
        tick = server.tick
        net.run_for(2.0)
        assert client.connected and server.tick >= tick + 100
        assert sum(sconn.counters.dropped.values()) > 0  # the garbage was counted, not used
