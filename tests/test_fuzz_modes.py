"""Hostile bytes inside established sessions: every mode's receive path, both directions,
ends in a counted drop or a valid packet; nothing raises, nothing hangs.

Every test builds its own connected pair (nothing is simulated at import time), so each
runs alone, in any order."""

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

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MODES = ["lockstep", "statesync"]


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
    game = Arena(npcs=20)
    server = LockstepServer(game, LockstepConfig(players=2), secret=SECRET, rng=random.Random(1))
    client = LockstepClient(game, server="server", token=token(0), rng=random.Random(2))
    net = connected_pair(server, client)
    runner = LockstepRunner(game, client)
    net.every(1 / 60, lambda now: runner.execute(client.update(now)))
    net.run_for(1.0)
    return net, server, client


def statesync_pair():
    game = Arena(npcs=20)
    server = StateSyncServer(game, StateSyncConfig(players=2), secret=SECRET, rng=random.Random(1))
    client = StateSyncClient(game, server="server", token=token(0), rng=random.Random(2))
    net = connected_pair(server, client)
    net.every(1 / 60, client.update)
    net.run_for(1.0)
    return net, server, client


PAIRS = {"lockstep": lockstep_pair, "statesync": statesync_pair}


@pytest.fixture(params=MODES)
def pair(request):
    """A freshly connected server/client pair of one mode, for this test only.

    Hypothesis runs all of a test's examples against the same pair (hence the suppressed
    function_scoped_fixture health check): one session absorbs every hostile payload."""
    return PAIRS[request.param]()


payloads = st.one_of(st.binary(max_size=64), st.binary(min_size=64, max_size=1150))


# Every type a session carries except DISCONNECT, whose any payload validly ends the session.
SESSION_TYPES = [t for t in PacketType if not t.is_handshake and t is not PacketType.DISCONNECT]


def inject(pair, packets):
    """Wrap each hostile payload in a valid session header and hand it to both ends."""
    net, server, client = pair
    conn = client.session.connection
    sconn = next(iter(server.session.connections.values()))
    for ptype, payload in packets:
        server.receive_datagram(conn.wrap(ptype, payload, net.now), "client", net.now)
        client.receive_datagram(sconn.wrap(ptype, payload, net.now), "server", net.now)
    server.on_tick(net.now)
    client.update(net.now)


@SETTINGS
@given(packets=st.lists(st.tuples(st.sampled_from(SESSION_TYPES), payloads), min_size=1, max_size=6))
def test_servers_and_clients_survive_hostile_payloads(pair, packets):
    inject(pair, packets)


def hostile_packets(rng: random.Random, n: int = 300) -> list[tuple[PacketType, bytes]]:
    """``n`` packets of the kinds the fuzz test draws: every session type, short and long
    random payloads."""
    out = []
    for i in range(n):
        size = rng.randrange(65) if i % 2 else rng.randrange(64, 1151)
        out.append((SESSION_TYPES[i % len(SESSION_TYPES)], rng.randbytes(size)))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_after_the_fuzzing_both_modes_still_play(mode):
    net, server, client = pair = PAIRS[mode]()
    sconn = next(iter(server.session.connections.values()))
    assert sum(sconn.counters.dropped.values()) == 0  # a fresh pair: nothing dropped yet
    rng = random.Random(10)
    for _ in range(10):
        inject(pair, hostile_packets(rng, 30))
    tick = server.tick
    net.run_for(2.0)
    assert client.connected and server.tick >= tick + 100
    assert sum(sconn.counters.dropped.values()) > 0  # the garbage was counted, not used
