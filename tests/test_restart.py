"""A server restarted under its clients, on the seeded simulator: a new server object on the
same address, as after kill -9 and a new ``serve`` on the same port. Clients reconnect, see
a new server epoch in ACCEPTED, start the new match over and play on: no desync, their
inputs accepted within a second of reconnecting, no ticks run ahead of the new clock."""

import random

import numpy as np

from demos.arena import Arena
from helpers import SECRET, LockstepMatch, StateSyncMatch
from netcode.events import Connected, DesyncDetected
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.sim.network import LinkConfig
from netcode.statesync.server import StateSyncConfig, StateSyncServer

LINK = LinkConfig(latency=0.03, jitter=0.005, loss=0.02)


def _restart(match, make_server):
    """Replace the server at "server" by a fresh instance (the match's tickers call
    ``match.server``, so they drive the new one)."""
    match.net.remove("server")
    match.server = make_server()
    match.net.add("server", match.server)
    return match.net.now


def _reconnected_at(events, after):
    return [t for t, ev in events if isinstance(ev, Connected) and t > after]


def test_lockstep_clients_play_on_in_the_new_match_after_a_restart(seed):
    game = Arena(npcs=50)
    cfg = LockstepConfig(players=2, seed=7)
    match = LockstepMatch(game, 2, seed=seed, link=LINK, config=cfg)
    clients = [match.add_client(f"c{i}", slot=i)[0] for i in range(2)]
    match.run(12.0)  # well past tick 720, where the old match's positions would be compared
    old_epoch = match.server.session.epoch
    restarted = _restart(match, lambda: LockstepServer(game, cfg, secret=SECRET, rng=random.Random(seed + 1)))
    assert match.server.session.epoch != old_epoch
    match.run(20.0)
    server = match.server
    assert not [e for e in match.server_events if isinstance(e, DesyncDetected)], server.stats()
    assert server.stats()["desyncs"] == 0
    for name, (client, runner) in match.clients.items():
        assert client.connected and client.server_restarts == 1, name
        assert client.next_needed >= server.tick - 20  # caught up with the new timeline
        # The client's inputs reach the new match: its slot's inputs are not all missing.
        assert runner.tick <= server.tick + 30  # not running ahead on the old clock
    peers = server.stats()["peers"]
    for slot in (0, 1):
        dropped = peers[slot].get("dropped", {})
        assert dropped.get("future_input", 0) < 10 and dropped.get("bad_ack", 0) < 10, peers[slot]
    assert restarted


def test_state_sync_clients_are_accepted_within_a_second_of_reconnecting_to_a_restarted_server(seed):
    game = Arena(npcs=100)
    cfg = StateSyncConfig(players=2, seed=3)
    match = StateSyncMatch(game, 2, seed=seed, link=LINK, config=cfg)
    a = match.add_client("a", slot=0)
    b = match.add_client("b", slot=1)
    connects = []
    for name, client in (("a", a), ("b", b)):
        original = client._events.put

        def put(ev, _orig=original, _name=name):
            if isinstance(ev, Connected):
                connects.append((_name, match.net.now))
            _orig(ev)

        client._events.put = put
    match.run(20.0)  # the old server is at tick 1200
    restarted = _restart(match, lambda: StateSyncServer(game, cfg, secret=SECRET, rng=random.Random(seed + 1)))
    reconnected, accepted = {}, {}
    # Reconnect as soon as the session is lost (what the bots do after their timeout), and
    # note when each client's new session began and when the new server first applied its input.
    while match.net.now < restarted + 12.0:
        match.run(0.05)
        for name, client in (("a", a), ("b", b)):
            if not client.connected and name not in reconnected:
                client.events()
                client.reconnect(match.net.now)
                reconnected[name] = match.net.now
            if name in reconnected and name not in accepted and client.connected and match.server.applied[client.slot] >= 0:
                accepted[name] = match.net.now
    server = match.server
    for name, client in (("a", a), ("b", b)):
        assert client.server_restarts == 1, name
        [back] = [t for n, t in connects if n == name and t > restarted]
        assert accepted[name] - back <= 1.0, (name, back, accepted[name])  # inputs accepted within 1 s
        assert server.applied[client.slot] >= server.tick - 30  # and still being applied
        # The client predicts at the new server's present, not at the old match's ticks.
        assert abs(client.predicted_tick - server.tick) < 30, (client.predicted_tick, server.tick)
        assert client.acked >= server.tick - 12  # and takes in its snapshots
    peers = server.stats()["peers"]
    for slot in (0, 1):
        assert peers[slot].get("dropped", {}).get("future_input", 0) < 10, peers[slot]
