"""UDP transport over real loopback sockets: a session end to end, and the guards.

Every scenario runs on uvloop (``engine.loop.run_async``) under ``asyncio.wait_for``, binds
port 0 on 127.0.0.1 and polls for outcomes instead of sleeping fixed times, so it takes
tens of milliseconds when things work and fails within seconds when they do not.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import socket
import sys
import time

import pytest

from demos.arena import GAME
from netcode import Connected, Disconnected, Limits, SessionConfig, UsageError, mint_token, open_udp_client, open_udp_server
from netcode.session import Admission, SessionClient, SessionServer
from netcode.session.handshake import GameIdentity
from netcode.session.wire import PacketType, pack_prefix
from netcode.transport.hub import RateLimiter
from helpers import PeerRecorder, eventually as eventually_until, run_bounded

SECRET = b"ticksync-transport-test-secret!!"
IDENTITY = GameIdentity.of(GAME)


def run(coro, timeout: float = 5.0):
    return run_bounded(coro, timeout)


async def eventually(pred, what: str, timeout: float = 2.0) -> None:
    await eventually_until(pred, what, timeout, poll=0.003)




def make_server(peer: PeerRecorder, config: SessionConfig | None = None) -> SessionServer:
    loop = asyncio.get_running_loop()
    slots = itertools.count()
    peer.endpoint = SessionServer(
        game=IDENTITY,
        secret=SECRET,
        admit=lambda claims, addr, now: Admission(slot=next(slots)),
        on_payload=peer.on_payload,
        config=config,
        wall_offset=time.time() - loop.time(),  # tokens expire on wall time
    )
    return peer.endpoint


def client_factory(peer: PeerRecorder, user: str, config: SessionConfig | None = None):
    token = mint_token(SECRET, "default", expires=time.time() + 60, user=user)

    def build(server_addr):
        peer.endpoint = SessionClient(server=server_addr, token=token, game=IDENTITY, on_payload=peer.on_payload, config=config)
        return peer.endpoint

    return build


def raw_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


async def connect_pair(server_limits: Limits = Limits(), config: SessionConfig | None = None, polled: bool = False):
    """A session over loopback. ``polled``: the server reads its socket only when polled,
    here by the transport's idle-poll timer (no tick loop runs)."""
    sp, cp = PeerRecorder(), PeerRecorder()
    server = make_server(sp, config)
    st = await open_udp_server(server, limits=server_limits, polled=polled)
    host, port = st.local_address
    ct = await open_udp_client(client_factory(cp, "alice", config), host, port)
    cp.endpoint.connect(ct.now())
    ct.flush()
    await eventually(lambda: sp.events(Connected) and cp.events(Connected), "Connected on both sides")
    return sp, cp, st, ct


@pytest.mark.network
@pytest.mark.parametrize("polled", [False, True], ids=["read-per-datagram", "read-per-poll"])
def test_session_connects_exchanges_payloads_and_disconnects_over_udp(polled):
    async def scenario():
        sp, cp, st, ct = await connect_pair(polled=polled)
        server, client = sp.endpoint, cp.endpoint
        (joined,) = sp.events(Connected)
        assert joined.addr == ct.local_address  # the server addresses the client by its real socket
        assert cp.events(Connected)[0].addr == st.local_address == ct.remote_address

        client.send(PacketType.LS_INPUT, b"input-1", ct.now())
        client.send(PacketType.LS_INPUT, b"input-2", ct.now())
        ct.flush()
        conn = server.connections[joined.conn]
        server.send(conn, PacketType.LS_FRAMES, b"frames-1", st.now())
        st.flush()
        await eventually(lambda: len(sp.payloads) == 2 and len(cp.payloads) == 1, "payloads both ways")
        assert sp.payloads == [(joined.conn, PacketType.LS_INPUT, b"input-1"), (joined.conn, PacketType.LS_INPUT, b"input-2")]
        assert cp.payloads == [(0, PacketType.LS_FRAMES, b"frames-1")]

        client.disconnect(ct.now())
        ct.flush()
        await eventually(lambda: sp.events(Disconnected), "Disconnected on the server")
        (gone,) = sp.events(Disconnected)
        assert gone.conn == joined.conn and gone.reason.startswith("peer")
        assert not server.connections

        for t in (st, ct):
            s = t.stats()
            assert s["dropped"] == {} and "internal_error" not in s["hub"], s
        assert st.stats()["received"] == ct.stats()["sent"] >= 6  # request, response, 2 inputs, goodbyes
        st.close()
        ct.close()
        await asyncio.gather(st.wait_closed(), ct.wait_closed())

    run(scenario())


def choose_read_path(st, batched: bool) -> None:
    """Make a polled transport read with ``recvmmsg`` (the compiled reader and guard) or
    with one ``recvmsg`` per datagram (the Python loop); skip where there is no compiled one."""
    if batched and not st.batched:
        assert sys.platform != "linux" or shutil.which("cc") is None, "recvmmsg was not compiled"
        pytest.skip("no compiled recvmmsg on this platform")
    st.batched = batched


@pytest.mark.network
@pytest.mark.parametrize("read", ["per-datagram", "per-poll-mmsg", "per-poll-one-by-one"])
def test_oversized_flood_and_garbage_are_dropped_and_counted_without_hurting_the_session(read):
    """Each read path has its own copy of the guard: the event-driven socket's, the polled
    socket's Python loop and its compiled reader. All count and drop the same way."""
    polled = read != "per-datagram"

    async def scenario():
        limits = Limits(rate=50.0, burst=20.0)
        sp, cp, st, ct = await connect_pair(server_limits=limits, polled=polled)
        if polled:
            choose_read_path(st, batched=read.endswith("mmsg"))
        server, client = sp.endpoint, cp.endpoint
        target = st.local_address
        before = server.counters.received

        # Oversized: dropped by the transport, the endpoint never sees it.
        big = raw_socket()
        big.sendto(b"\x00" * 1300, target)
        await eventually(lambda: st.stats()["dropped"].get("oversized") == 1, "oversized drop")
        assert server.counters.received == before

        # Garbage within the rate limit: passed on, and dropped by the endpoint's parser.
        junk = raw_socket()
        for data in (b"x", b"\x00" * 40, b"garbage that is not ticksync"):
            junk.sendto(data, target)
        await eventually(lambda: server.counters.received == before + 3, "garbage reaching the endpoint")
        assert server.counters.dropped["truncated"] == 1 and server.counters.dropped["not_ticksync"] == 2

        # A flood from one address: all but the burst (plus refill) never reach the endpoint.
        flood = raw_socket()
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(12):
            for _ in range(25):  # in chunks, so the kernel buffer does not drop them for us
                flood.sendto(pack_prefix(PacketType.LS_INPUT) + bytes(20), target)  # session packet, no session
            await asyncio.sleep(0.001)
            if polled:
                st.poll()  # as a server's tick would: the flood outruns the socket buffer otherwise

        def passed() -> int:  # flood packets the endpoint saw (and dropped: no session there)
            return server.counters.dropped["no_session"]

        def limited() -> int:
            return st.stats()["dropped"].get("rate_limited", 0)

        await eventually(lambda: passed() + limited() == 300, "the whole flood", timeout=3.0)
        elapsed = loop.time() - start
        passed, limited = passed(), limited()
        print(f"flood: {passed} passed, {limited} rate-limited in {elapsed * 1e3:.1f} ms")
        assert passed <= limits.burst + limits.rate * elapsed + 1
        assert limited >= 300 - limits.burst - limits.rate * elapsed - 1

        # The session never noticed: a burst of its own packets all arrive.
        for i in range(10):
            client.send(PacketType.LS_INPUT, b"after-%d" % i, ct.now())
        ct.flush()
        await eventually(lambda: len(sp.payloads) == 10, "payloads after the flood")
        conn = next(iter(server.connections.values()))
        assert conn.counters.dropped == {} and client.connected
        assert st.stats()["dropped"].keys() == {"oversized", "rate_limited"}
        for s in (big, junk, flood):
            s.close()
        st.close()
        ct.close()

    run(scenario())


class Echo:
    """A minimal endpoint: echoes datagrams, raises on ones starting with b"boom"."""

    def __init__(self):
        self.out: list = []
        self.received = 0

    def receive_datagram(self, data, addr, now):
        if data.startswith(b"boom"):
            raise RuntimeError("endpoint bug")
        self.received += 1
        self.out.append((data, addr))

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def next_deadline(self):
        return None

    def handle_timer(self, now):
        pass


@pytest.mark.network
def test_endpoint_exceptions_are_counted_logged_once_and_do_not_stop_the_transport(caplog):
    async def scenario():
        echo = Echo()
        t = await open_udp_server(echo)
        s = raw_socket()
        s.settimeout(2.0)
        for i in range(3):
            s.sendto(b"boom", t.local_address)
            s.sendto(b"ping-%d" % i, t.local_address)
            data = await asyncio.get_running_loop().run_in_executor(None, s.recv, 2000)
            assert data == b"ping-%d" % i
        assert t.stats()["dropped"] == {"internal_error": 3}
        assert t.stats()["hub"]["internal_error"] == 3
        s.close()
        t.close()

    with caplog.at_level(logging.DEBUG, logger="ticksync.transport"):
        run(scenario())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "RuntimeError" in errors[0].getMessage()


@pytest.mark.network
def test_timers_alone_keep_an_idle_session_alive():
    async def scenario():
        config = SessionConfig(keepalive_interval=0.02, housekeeping_interval=0.01, timeout=1.0)
        sp, cp, st, ct = await connect_pair(config=config)
        conn = next(iter(sp.endpoint.connections.values()))
        got_server, got_client = conn.counters.received, cp.endpoint.connection.counters.received
        # No user call from here on: only the transports' timers send keepalives.
        await eventually(
            lambda: conn.counters.received >= got_server + 5 and cp.endpoint.connection.counters.received >= got_client + 5,
            "keepalives both ways",
        )
        assert st.stats()["hub"]["timers"] >= 5 and ct.stats()["hub"]["timers"] >= 5
        st.close()
        ct.close()

    run(scenario())


@pytest.mark.network
def test_icmp_port_unreachable_is_counted_and_the_client_keeps_retrying():
    async def scenario():
        probe = raw_socket()
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now: the kernel answers with port unreachable
        cp = PeerRecorder()
        config = SessionConfig(handshake_resend=0.01)
        ct = await open_udp_client(client_factory(cp, "bob", config), "127.0.0.1", port)
        cp.endpoint.connect(ct.now())
        ct.flush()
        await eventually(lambda: ct.stats()["errors"].get("ConnectionRefusedError", 0) >= 2, "two ICMP errors")
        assert not ct.closed and ct.stats()["sent"] >= 2  # the resend timer kept going
        ct.close()

    run(scenario())


@pytest.mark.network
def test_misuse_is_refused_before_any_socket_opens():
    async def scenario():
        sp = PeerRecorder()
        st = await open_udp_server(make_server(sp))
        port = st.local_address[1]
        token = mint_token(SECRET, "default", expires=time.time() + 60)
        wrong = SessionClient(server=("localhost", port), token=token, game=IDENTITY)
        with pytest.raises(UsageError, match="127.0.0.1"):
            await open_udp_client(wrong, "127.0.0.1", port)
        right = SessionClient(server=("127.0.0.1", port), token=token, game=IDENTITY)
        ct = await open_udp_client(right, "127.0.0.1", port)
        assert ct.endpoint is right
        with pytest.raises(UsageError, match="already has a transport"):
            await open_udp_server(sp.endpoint)  # two UDP sockets would fight over its addresses
        st.close()
        ct.close()

    run(scenario())


def test_rate_limiter_refills_and_keeps_its_table_bounded():
    rl = RateLimiter(rate=8.0, burst=5.0, max_tracked=100)
    assert [rl.allow("a", 100.0) for _ in range(6)] == [True] * 5 + [False]
    assert rl.allow("a", 100.125) and not rl.allow("a", 100.125)  # 1/8 s at 8/s: one token
    for i in range(10_000):  # spoofed sources, each sending once
        rl.allow(("10.0.0.1", i), 100.25)
        assert len(rl) <= 100
    assert rl.evicted >= 10_000 - 100
    # Eviction refills, never throttles: a fresh key always gets its burst.
    assert all(rl.allow("new", 100.25) for _ in range(5))


@pytest.mark.network
@pytest.mark.parametrize("batched", [True, False], ids=["mmsg", "one-by-one"])
def test_a_polled_socket_reads_per_poll_with_arrival_times_and_a_bound(batched):
    """Datagrams wait in the kernel until a poll; each reaches the endpoint with the time it
    arrived (where the kernel stamps them), and one poll reads at most ``max_per_poll``.
    Both read paths: 64 datagrams per ``recvmmsg`` (where compiled) and one per ``recvmsg``."""

    async def scenario():
        echo = Echo()
        times, seen = [], []
        plain = echo.receive_datagram

        def stamped(data, addr, now):
            times.append(now)
            seen.append(data)
            plain(data, addr, now)

        echo.receive_datagram = stamped
        st = await open_udp_server(echo, polled=True)
        choose_read_path(st, batched)
        st.idle_poll = 3600.0  # only our polls read (the timer already armed fires once, late)
        # Linux switches arrival stamping on for the whole stack a moment after the first
        # socket asks (a deferred static key); until then a datagram is stamped when read.
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        sender = raw_socket()
        sent_at = loop.time()
        for i in range(100):  # more than one recvmmsg chunk (64)
            sender.sendto(b"hello %d" % i, st.local_address)
        sender.sendto(b"x" * 1300, st.local_address)  # oversized: read, counted, dropped
        await asyncio.sleep(0.05)
        assert echo.received == 0  # nothing is read between polls
        st.max_per_poll = 10
        first_poll = loop.time()
        assert st.poll() == 10 and echo.received == 10
        st.max_per_poll = 4096
        assert st.poll() == 90 and echo.received == 100
        assert st.poll() == 0
        assert st.stats()["dropped"] == {"oversized": 1}
        assert seen == [b"hello %d" % i for i in range(100)]  # each once, in order
        if st.stats()["kernel_timestamps"]:
            assert all(sent_at - 0.005 <= t <= sent_at + 0.03 for t in times[:10]), (sent_at, times[:10])
        # Left for the next poll, they arrived before the previous one: time never runs back.
        assert all(first_poll <= t <= loop.time() for t in times[10:])
        assert times == sorted(times)
        await eventually(lambda: st.stats()["sent"] == 100, "the echoes sent back")
        sender.settimeout(1.0)
        assert sender.recv(100) == b"hello 0"
        # What the endpoint queues for an address no socket can send to is counted, and the
        # datagrams beside it still go.
        echo.out += [(b"a", ("not an address", 1)), (b"b", ("127.0.0.1", 70000)), (b"c", sender.getsockname())]
        st.flush()
        assert st.stats()["dropped"] == {"oversized": 1, "send_error": 2} and st.stats()["sent"] == 101
        assert st.stats()["read"] == "per tick" and st.stats()["polls"] == 3
        sender.close()
        st.close()
        await st.wait_closed()

    run(scenario())


@pytest.mark.network
@pytest.mark.parametrize("batched", [True, False], ids=["mmsg", "one-by-one"])
def test_a_polled_socket_hands_over_ipv6_sources_as_host_and_port(batched):
    """The compiled reader builds source addresses itself (and caches them): an IPv6 source
    must reach the endpoint as the same (host, port) the Python path reports, and a reply
    to it must arrive."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")

    async def scenario():
        echo = Echo()
        st = await open_udp_server(echo, "::1", 0, polled=True)
        choose_read_path(st, batched)
        st.idle_poll = 3600.0
        seen = []
        plain = echo.receive_datagram
        echo.receive_datagram = lambda data, addr, now: (seen.append(addr), plain(data, addr, now))
        for i in range(3):
            probe.sendto(b"six %d" % i, st.local_address)
        await eventually(lambda: st.poll() >= 0 and len(seen) == 3, "the IPv6 datagrams, polled")
        assert seen == [probe.getsockname()[:2]] * 3
        st.flush()
        probe.settimeout(1.0)
        assert probe.recv(100) == b"six 0"
        st.close()

    try:
        run(scenario())
    finally:
        probe.close()


def test_the_compiled_reader_counts_datagrams_from_non_ip_sources():
    """A UDP socket only ever reports IP sources, so the reader's check for other address
    families is driven through a Unix datagram socket: a named (AF_UNIX) source and an
    unnamed one (no address at all) are dropped and counted as ``non_ip_source``, never
    handed on, and never mistaken for the source of an earlier datagram."""
    from collections import Counter

    try:
        from netcode.transport._mmsg import BatchReader
    except ImportError:
        assert sys.platform != "linux" or shutil.which("cc") is None, "recvmmsg was not compiled"
        pytest.skip("no compiled recvmmsg on this platform")
    name = f"\0ticksync-test-{time.monotonic_ns()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    named = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unnamed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.bind(name)
        named.bind(name + "-sender")
        dropped = Counter()
        reader = BatchReader(receiver.fileno(), 1200, RateLimiter(240.0, 480.0), dropped)
        for i in range(3):
            named.sendto(b"named %d" % i, name)
            unnamed.sendto(b"unnamed %d" % i, name)
        batch, read, nbytes = reader.read(4096, 1.0, 0.0, 0.0)
        assert batch == [] and read == 6 and nbytes == 3 * len(b"named 0") + 3 * len(b"unnamed 0")
        assert dropped == {"non_ip_source": 6}
        assert reader.read(4096, 1.0, 0.0, 0.0) == ([], 0, 0)
    finally:
        for s in (receiver, named, unnamed):
            s.close()
