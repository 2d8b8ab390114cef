"""An attacker on the path of a live state-sync match, on the seeded simulator.

The attacker sees every datagram the players send (it stands between them and the server)
and can send from any address (UDP source addresses are not verified). Each attack must be
dropped and counted, nothing must be answered to it, and the real players must play on:
the same sessions (no reconnect), snapshots still arriving, inputs still applied.
"""

from __future__ import annotations

import random

import pytest

from demos.arena import Arena
from helpers import StateSyncMatch
from netcode.events import Disconnected
from netcode.session import ClientState
from netcode.session.base import pack_disconnect
from netcode.session.handshake import ConnectRequest, pack_request, parse_challenge, parse_request
from netcode.session.wire import PacketType, pack_session_header, parse_session_header
from netcode.statesync.server import StateSyncConfig


class Mallory:
    """An endpoint of its own (so replies to it are seen), plus the path's view of the
    players' datagrams to the server. ``tamper``: a function applied to the next datagram
    from a player on its way (the on-path attacker changes it in flight)."""

    def __init__(self):
        self.inbox: list[bytes] = []
        self.seen: dict[str, list[bytes]] = {}
        self.tamper = None

    # the endpoint interface of the simulator
    def receive_datagram(self, data, addr, now):
        self.inbox.append(data)

    def datagrams_to_send(self):
        return []

    def next_deadline(self):
        return None

    def handle_timer(self, now):
        pass


def _live_match(seed: int):
    match = StateSyncMatch(Arena(npcs=20), 2, seed=seed, config=StateSyncConfig(players=2, seed=3))
    mallory = Mallory()
    match.net.add("mallory", mallory)
    server = match.server
    deliver = server.receive_datagram

    def on_path(data, addr, now):
        if addr != "mallory":
            mallory.seen.setdefault(addr, []).append(data)
            if mallory.tamper is not None and data[3] & 0x7F >= 0x10:
                data, mallory.tamper = mallory.tamper(data), None
        deliver(data, addr, now)

    server.receive_datagram = on_path
    for name in ("a", "b"):
        match.add_client(name)
    match.run(2.0)
    return match, mallory


def _snapshot(match):
    """Each player's session, connection and progress, to compare after an attack."""
    out = {}
    for name, client in match.clients.items():
        conn = match.server.session.connection_at(name)
        assert client.session.state is ClientState.CONNECTED and conn is not None
        out[name] = (client.session.connection, conn, client.acked, client.applied)
    return out


def _inject(match, data: bytes, addr) -> list:
    """Hand the server a datagram from ``addr`` (spoofed) and return what it answers at once."""
    match.server.receive_datagram(data, addr, match.net.now)
    return match.server.datagrams_to_send()


def _session_packets(mallory, name, ptype=PacketType.SS_INPUT) -> list[bytes]:
    return [d for d in mallory.seen[name] if d[3] & 0x7F == ptype]


def _assert_plays_on(match, before) -> None:
    """The same sessions on both ends, snapshots still arriving, inputs still applied."""
    match.run(1.0)
    for name, (client_conn, server_conn, acked, applied) in before.items():
        client = match.clients[name]
        assert client.session.state is ClientState.CONNECTED
        assert client.session.connection is client_conn, f"{name} had to reconnect"
        assert match.server.session.connection_at(name) is server_conn, f"{name}'s server session was replaced"
        assert client.acked > acked + 10 and client.applied > applied + 10, f"{name} stopped playing"
    assert not [e for e in match.server.events() if isinstance(e, Disconnected)]


def _drops(match, name) -> dict:
    return dict(match.server.session.connection_at(name).counters.dropped)


def test_a_flipped_bit_is_dropped_as_bad_tag(seed):
    match, mallory = _live_match(seed)
    before = _snapshot(match)
    flips = iter([17, -1, 12])  # a payload bit, a tag bit, an ack bit of the header

    def flip(data):
        b = bytearray(data)
        b[next(flips)] ^= 0x10
        return bytes(b)

    for _ in range(3):
        mallory.tamper = flip
        match.run(0.1)
        assert mallory.tamper is None
    assert _drops(match, "a").get("bad_tag", 0) + _drops(match, "b").get("bad_tag", 0) == 3
    _assert_plays_on(match, before)


def test_a_replayed_packet_is_dropped(seed):
    match, mallory = _live_match(seed)
    before = _snapshot(match)
    packets = _session_packets(mallory, "a")
    assert _inject(match, packets[-1], "a") == []
    assert _inject(match, packets[5], "a") == []  # from long before the replay window
    drops = _drops(match, "a")
    assert drops.get("duplicate", 0) + drops.get("stale", 0) == 2 and "bad_tag" not in drops
    _assert_plays_on(match, before)


def test_a_copied_session_id_with_forged_inputs_is_dropped(seed):
    match, mallory = _live_match(seed)
    before = _snapshot(match)
    real = _session_packets(mallory, "a")[-1]
    session_id, seq, ack, ack_bits, _ = parse_session_header(real)
    slot = match.clients["a"].slot
    forged_inputs = bytes([slot, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0]) + (match.server.tick + 2).to_bytes(4, "little") + b"\x01" + bytes(
        match.server.itemsize
    )
    rng = random.Random(seed)
    for k in range(1, 6):  # the next sequences, in clear and with made-up tags
        head = pack_session_header(PacketType.SS_INPUT, session_id, (seq + k) & 0xFFFF, ack, ack_bits)
        body = forged_inputs if k % 2 else forged_inputs + rng.randbytes(16)
        assert _inject(match, head + body, "a") == []
    assert _drops(match, "a").get("bad_tag") == 5
    _assert_plays_on(match, before)


def test_a_sniffed_connect_request_from_another_address_gets_nowhere(seed):
    match, mallory = _live_match(seed)
    before = _snapshot(match)
    request = next(d for d in mallory.seen["a"] if d[3] == PacketType.CONNECT_REQUEST)
    response = next(d for d in mallory.seen["a"] if d[3] == PacketType.CHALLENGE_RESPONSE)
    server = match.server.session
    # The sniffed request, from Mallory's own address: a challenge, no bigger than it.
    answer = _inject(match, request, "mallory")
    assert [(len(d) <= len(request), a) for d, a in answer] == [(True, "mallory")]
    nonce, cookie_time, cookie = parse_challenge(answer[0][0])
    sniffed = parse_request(response, response=True)
    # Mallory answers her challenge with the sniffed token and the sniffed (or a made-up)
    # proof of its keys; then replays the player's own response from her address.
    for proof in (sniffed.proof, bytes(16)):
        forged = ConnectRequest(nonce, sniffed.game, sniffed.token, cookie_time, cookie, proof)
        assert _inject(match, pack_request(forged, response=True), "mallory") == []
    assert _inject(match, response, "mallory") == []
    assert server.counters.dropped["bad_proof"] == 2 and server.counters.dropped["bad_cookie"] == 1
    assert server.connection_at("mallory") is None and len(server.connections) == 2
    _assert_plays_on(match, before)


def test_a_forged_disconnect_for_another_player_is_dropped(seed):
    match, mallory = _live_match(seed)
    before = _snapshot(match)
    # To the server, from player b's address, with b's session id and next sequences.
    session_id, seq, ack, ack_bits, _ = parse_session_header(mallory.seen["b"][-1])
    for k in range(1, 4):
        head = pack_session_header(PacketType.DISCONNECT, session_id, (seq + k) & 0xFFFF, ack, ack_bits)
        assert _inject(match, head + pack_disconnect("bye") + bytes(16), "b") == []
    assert _drops(match, "b").get("bad_tag") == 3
    # To player a, from the server's address, with a's session id.
    client = match.clients["a"].session
    conn = client.connection
    for k in range(1, 4):
        head = pack_session_header(PacketType.DISCONNECT, conn.session_id, (conn._recv_latest + k) & 0xFFFF, None, 0)
        client.receive_datagram(head + pack_disconnect("bye") + bytes(16), "server", match.net.now)
    assert conn.counters.dropped.get("bad_tag") == 3 and client.state is ClientState.CONNECTED
    _assert_plays_on(match, before)


@pytest.mark.parametrize("size", [0, 1, 300])
def test_a_sealed_packet_grows_by_the_tag_only(size, seed):
    match, _ = _live_match(seed)
    conn = match.server.session.connection_at("a")
    assert len(conn.wrap(PacketType.SS_SNAPSHOT, bytes(size), match.net.now)) == 17 + size + 16
