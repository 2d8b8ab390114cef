"""Session-layer micro benches (pytest-benchmark): a packet's encode + decode, the server's
share of a handshake, a whole in-memory handshake, token verification.

Run: .venv/bin/python -m pytest bench/test_bench_session.py --benchmark-only
"""

import random

from demos.arena import GAME
from netcode.session.connection import Connection, SessionConfig
from netcode.session.handshake import ConnectRequest, GameIdentity, pack_request, parse_challenge
from netcode.session import Admission, SessionClient, SessionServer
from netcode.session.token import mint_token, verify_token
from netcode.session.wire import PacketType

SECRET = b"bench-secret-0123456789abcdef"
IDENTITY = GameIdentity.of(GAME)
TOKEN = mint_token(SECRET, "default", expires=2e9, slot=0)
PAYLOAD = bytes(64)


def test_packet_wrap_and_unwrap(benchmark):
    """One 64-byte payload through the session header both ways (with acks and RTT)."""
    cfg = SessionConfig()
    a = Connection(1, "b", 7, 0, 100.0, cfg)
    b = Connection(1, "a", 7, 0, 100.0, cfg)
    clock = [100.0]

    def one():
        clock[0] += 0.001
        b.unwrap(a.wrap(PacketType.LS_INPUT, PAYLOAD, clock[0]), clock[0])

    benchmark(one)


def test_packets_both_ways_acking_each_other(benchmark):
    """A packet each way, each acking the other's (the sender's ack processing: RTT, the
    ack window, the loss and reordering records), every fifth of one side's lost."""
    cfg = SessionConfig()
    a = Connection(1, "b", 7, 0, 100.0, cfg)
    b = Connection(1, "a", 7, 0, 100.0, cfg)
    clock = [100.0]
    count = [0]

    def one():
        clock[0] += 0.001
        count[0] += 1
        packet = a.wrap(PacketType.SS_SNAPSHOT, PAYLOAD, clock[0])
        if count[0] % 5:
            b.unwrap(packet, clock[0] + 0.0005)
        a.unwrap(b.wrap(PacketType.SS_INPUT, PAYLOAD, clock[0] + 0.0005), clock[0] + 0.001)

    benchmark(one)


def _server():
    return SessionServer(game=IDENTITY, secret=SECRET, admit=lambda c, a, n: Admission(slot=0), rng=random.Random(1))


def test_server_answers_a_connect_request(benchmark):
    """Stateless: verify version, game and token, make a cookie, reply."""
    server = _server()
    request = pack_request(ConnectRequest(1, IDENTITY, TOKEN))

    def one():
        server.receive_datagram(request, ("10.0.0.1", 5000), 100.0)
        server.datagrams_to_send()

    benchmark(one)


def test_server_admits_a_challenge_response(benchmark):
    """Verify the cookie and token, open the session, reply ACCEPTED (then close it again)."""
    server = _server()
    addr = ("10.0.0.2", 5000)
    server.receive_datagram(pack_request(ConnectRequest(2, IDENTITY, TOKEN)), addr, 100.0)
    [(challenge, _)] = server.datagrams_to_send()
    nonce, cookie_time, cookie = parse_challenge(challenge)
    response = pack_request(ConnectRequest(nonce, IDENTITY, TOKEN, cookie_time, cookie), response=True)

    def one():
        server.receive_datagram(response, addr, 100.0)
        server.datagrams_to_send()
        server.disconnect(server.connection_at(addr), 100.0)
        server.datagrams_to_send()
        server.events()

    benchmark(one)


def test_whole_handshake_in_memory(benchmark):
    """Client and server objects, four packets, no network."""

    def one():
        server = _server()
        client = SessionClient(server="s", token=TOKEN, game=IDENTITY, rng=random.Random(3))
        client.connect(100.0)
        while not client.connected:
            for data, _ in client.datagrams_to_send():
                server.receive_datagram(data, "c", 100.0)
            for data, _ in server.datagrams_to_send():
                client.receive_datagram(data, "s", 100.0)

    benchmark(one)


def test_token_verify(benchmark):
    benchmark(verify_token, SECRET, TOKEN, now_wall=1e9, room="default")
