"""TickServer: the room router (sans-IO, on the simulator), the HTTP dashboard and token
endpoint, and clean shutdown over real loopback sockets.

Router scenarios run on virtual time (seeded, instant); the network ones run on uvloop under
``asyncio.wait_for`` on 127.0.0.1 with port 0, and poll for outcomes instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time

import aiohttp
import pytest

from demos.arena import Arena
from engine import ReplayReader, run_async
from engine.replay import replay
from helpers import IDENTITY, SECRET, eventually as eventually_until, run_bounded, token
from netcode import (
    MODES,
    GameClient,
    LinkConfig,
    LockstepClient,
    LockstepConfig,
    LockstepRunner,
    LockstepServer,
    NetSim,
    RoomConfig,
    TickServer,
    UsageError,
    VirtualNetwork,
    token_from_text,
    verify_token,
)
from netcode.server.rooms import RoomRouter
from netcode.session.handshake import REQUEST_SIZE, ConnectRequest, pack_request, parse_denied
from netcode.session.token import peek_room
from netcode.session.wire import PacketType, pack_session_header
from netcode.events import ServerGone

GAME = Arena(npcs=0)  # the routing is under test: a light game


# -- the router on the simulator ------------------------------------------------------------


class PolledRouter:
    """The router behind a socket read once per tick, as TickServer's polled UDP: datagrams
    wait until the tick, then go to ``RoomRouter.receive_many`` together."""

    def __init__(self, router: RoomRouter):
        self.router = router
        self.waiting: list = []

    def receive_datagram(self, data, addr, now):
        self.waiting.append((data, addr, now))

    def poll(self):
        batch, self.waiting = self.waiting, []
        self.router.receive_many(batch)

    def datagrams_to_send(self):
        return self.router.datagrams_to_send()

    def next_deadline(self):
        return self.router.next_deadline()

    def handle_timer(self, now):
        self.router.handle_timer(now)


class Rooms:
    """A router with lockstep rooms and clients on a virtual network. ``polled``: the
    router gets each tick's datagrams as one batch."""

    def __init__(self, seed: int, names=("red", "blue"), players: int = 2, polled: bool = False):
        self.net = VirtualNetwork(NetSim(seed, LinkConfig(latency=0.01, jitter=0.002)), start=100.0)
        self.router = RoomRouter()
        self.rooms = {}
        for i, name in enumerate(names):
            room = LockstepServer(GAME, LockstepConfig(players=players, seed=7), secret=SECRET, room=name, rng=random.Random(seed + i))
            self.rooms[name] = room
            self.router.add(name, room)
        self.polled = PolledRouter(self.router) if polled else None
        self.net.add("server", self.polled or self.router)
        self.clients: dict[str, tuple[LockstepClient, LockstepRunner]] = {}
        self.events: dict[str, list] = {}
        dt = 1 / GAME.tick_rate
        self.net.every(dt, self._tick)
        self.net.every(dt, self._update, start=self.net.now + dt / 2)

    def _tick(self, now):
        if self.polled is not None:
            self.polled.poll()
        for name, room in self.rooms.items():
            room.on_tick(now)
            room.events()
            self.router.touch(name)

    def _update(self, now):
        for name, (client, runner) in self.clients.items():
            runner.step(now)
            self.events[name] += client.events()

    def add_client(self, addr: str, room: str, slot: int) -> LockstepClient:
        client = LockstepClient(GAME, server="server", token=token(slot, user=addr, room=room), rng=random.Random(hash(addr) & 0xFFFF))
        self.clients[addr] = (client, LockstepRunner(GAME, client))
        self.events[addr] = []
        self.net.add(addr, client)
        client.connect(self.net.now)
        self.net.flush(addr)
        return client

    def drop_client(self, addr: str) -> None:
        del self.clients[addr]
        self.net.remove(addr)


@pytest.mark.parametrize("polled", [False, True], ids=["per-datagram", "per-tick-batch"])
def test_router_sends_handshakes_to_the_named_room_and_session_packets_to_the_accepting_room(seed, polled):
    w = Rooms(seed, polled=polled)
    red = w.add_client("alice", "red", 0)
    blue0 = w.add_client("bob", "blue", 0)
    blue1 = w.add_client("carol", "blue", 1)
    w.net.run_for(3.0)
    router, rooms = w.router, w.rooms
    assert router.room_of("alice") == "red"
    assert router.room_of("bob") == router.room_of("carol") == "blue"
    assert rooms["red"].session.connection_at("alice") is not None
    assert rooms["blue"].session.connection_at("alice") is None
    assert rooms["red"].stats()["players"] == 1 and rooms["blue"].stats()["players"] == 2
    # Session packets reached the right room both ways: inputs in, frames out.
    for client in (red, blue0, blue1):
        assert client.connected and client.next_needed >= rooms["red"].tick - 10
    for name in rooms:
        t = router.traffic[name]
        assert t.packets_in > 60 and t.packets_out > 40  # a client sends every other tick
    assert not router.stats()["dropped"] and not router.stats()["internal_errors"]


def test_unknown_room_is_denied_with_a_reason_and_no_amplification():
    router = RoomRouter()
    router.add("red", LockstepServer(GAME, LockstepConfig(players=2), secret=SECRET, room="red"))
    for response in (False, True):
        req = pack_request(ConnectRequest(1234, IDENTITY, token(0, room="nope"), 100, b"\0" * 16), response=response)
        router.receive_datagram(req, ("10.0.0.1", 5000), 100.0)
        out = router.datagrams_to_send()
        assert len(out) == 1
        reply, addr = out[0]
        assert addr == ("10.0.0.1", 5000) and len(reply) <= len(req) == REQUEST_SIZE
        nonce, code, message = parse_denied(reply)
        assert (nonce, code) == (1234, "no_such_room") and "no such room 'nope'" in message
    # A token naming no room at all is refused too; short requests and strangers' session
    # packets get no answer whatsoever.
    router.receive_datagram(pack_request(ConnectRequest(5, IDENTITY, b"\x07junk")), ("10.0.0.2", 1), 100.0)
    (reply, _), = router.datagrams_to_send()
    assert parse_denied(reply)[1] == "bad_token"
    router.receive_datagram(pack_request(ConnectRequest(6, IDENTITY, token(0, room="red")))[:100], ("10.0.0.3", 1), 100.0)
    router.receive_datagram(pack_session_header(PacketType.LS_INPUT, 99, 0, None, 0) + b"x", ("10.0.0.4", 1), 100.0)
    router.receive_datagram(b"not ticksync at all", ("10.0.0.5", 1), 100.0)
    assert router.datagrams_to_send() == []
    stats = router.stats()
    assert stats["denied"] == {"no_such_room": 2, "bad_token": 1}
    assert stats["dropped"] == {"short_request": 1, "no_session": 1, "not_ticksync": 1}
    assert router.traffic["red"].packets_in == 0  # the room never saw any of it


class FailingRoom:
    """A room whose timer raises a new exception class every time (a bug, many kinds)."""

    session = None

    def __init__(self):
        self.raised = 0

    def receive_datagram(self, data, addr, now):
        pass

    def datagrams_to_send(self):
        return []

    def next_deadline(self):
        return 0.0

    def handle_timer(self, now):
        self.raised += 1
        raise type(f"Bug{self.raised}", (Exception,), {})("boom")

    def address_closed(self, addr, now, reason):
        pass


def test_router_logs_each_kind_of_room_error_once_in_bounded_memory(caplog):
    """The router counts every exception a room raises and logs it through the shared
    log_once: the kinds it remembers stay within LOG_KINDS_MAX however many there are."""
    from netcode.logs import LOG_KINDS_MAX

    router = RoomRouter()
    room = FailingRoom()
    router.add("r", room)
    router.datagrams_to_send()  # reads the room's deadline
    with caplog.at_level(logging.DEBUG, logger="ticksync.rooms"):
        for t in range(LOG_KINDS_MAX + 50):
            router.handle_timer(float(t))
    assert router.stats()["internal_errors"] == {"r": LOG_KINDS_MAX + 50}
    assert len(router._logged) == LOG_KINDS_MAX
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == LOG_KINDS_MAX + 50  # new kinds past the bound: logged, not remembered
    assert "room 'r': handle_timer raised Bug1" in errors[0].getMessage()


def test_peek_room_reads_the_claim_only():
    assert peek_room(token(3, room="lobby-7")) == "lobby-7"
    assert peek_room(b"") is None
    assert peek_room(b"\x01" + token(3, room="x")[1:]) is None  # another token version (1: before sealed keys)
    assert peek_room(token(3, room="abc")[:26]) is None  # cut inside the room name


@pytest.mark.parametrize("polled", [False, True], ids=["per-datagram", "per-tick-batch"])
def test_router_forgets_ended_sessions_and_follows_an_address_to_another_room(seed, polled):
    w = Rooms(seed, polled=polled)
    w.add_client("alice", "red", 0)
    bob = w.add_client("bob", "red", 1)
    w.net.run_for(1.0)
    assert w.router.room_of("bob") == "red"
    # A goodbye ends the session at once: the route goes with it.
    bob.disconnect(w.net.now)
    w.net.flush("bob")
    w.drop_client("bob")
    w.net.run_for(0.5)
    assert w.router.room_of("bob") is None
    # Alice's address turns up with a token for another room (a restarted client): blue
    # takes her, and red frees her slot now rather than after the session timeout.
    w.drop_client("alice")
    w.add_client("alice", "blue", 0)
    w.net.run_for(1.0)
    assert w.router.room_of("alice") == "blue"
    assert w.rooms["red"].stats()["players"] == 0 and w.rooms["blue"].stats()["players"] == 1
    # A client that vanishes times out in its room; the sweep drops the stale route.
    w.drop_client("alice")
    w.net.run_for(8.0)
    assert w.rooms["blue"].stats()["players"] == 0
    assert w.router.room_of("alice") is None and w.router.stats()["routes"] == 0


def test_modes_registry_and_room_validation():
    server = TickServer(secret=SECRET, udp_port=None)
    with pytest.raises(UsageError, match="unknown mode 'nope'.*lockstep"):
        server.add_room(GAME, RoomConfig("a", mode="nope"))
    server.add_room(GAME, RoomConfig("a"))
    with pytest.raises(UsageError, match="already exists"):
        server.add_room(GAME, RoomConfig("a"))
    assert "lockstep" in MODES
    run_async(server.stop())  # never started: nothing to wait for


# -- real sockets ---------------------------------------------------------------------------


def run(coro, timeout: float = 15.0):
    return run_bounded(coro, timeout)


async def eventually(pred, what: str, timeout: float = 5.0) -> None:
    await eventually_until(pred, what, timeout, poll=0.01)


@pytest.mark.network
def test_dashboard_json_html_and_token_endpoint():
    async def scenario():
        server = TickServer(secret=SECRET, http_port=0, admin_key="let-me-in")
        server.add_room(GAME, RoomConfig("red", players=2))
        server.add_room(GAME, RoomConfig("blue", players=3))
        plain = TickServer(secret=SECRET, udp_port=None, http_port=0)  # no admin key
        plain.add_room(GAME, RoomConfig("red", players=2))
        async with server, plain, aiohttp.ClientSession() as http:
            await eventually(lambda: server.rooms["red"].mode.tick > 5, "ticks")
            base = server.http_url
            async with http.get(base) as r:
                assert r.status == 200 and r.content_type == "text/html"
                page = await r.text()
                assert "ticksync" in page and "api/dashboard" in page and "<script" in page
                # Its assets are the server's own (no CDN): relative links that it serves.
                assets = re.findall(r'(?:src|href)="([^"]+)"', page)
                assert "web/dashboard.js" in assets and not any("//" in a for a in assets), assets
                for asset in ("web/dashboard.js", "web/dashboard.css"):
                    async with http.get(base + asset) as r:
                        assert r.status == 200 and len(await r.read()) > 500
            async with http.get(base + "api/rooms") as r:
                data = await r.json()
            assert data["server"]["udp"] == server.udp_url and data["server"]["ws"] == server.ws_url
            rooms = {room["name"]: room for room in data["rooms"]}
            assert set(rooms) == {"red", "blue"}
            red = rooms["red"]
            assert red["tick"] > 5 and red["slots"] == 2 and red["players"] == 0 and red["mode"] == "lockstep"
            for key in ("tick_ms_p50", "tick_ms_p99", "bytes_in", "bytes_out", "kbps_out", "drops", "desyncs", "dropped_ticks"):
                assert key in red
            async with http.get(base + "api/rooms/blue") as r:
                blue = await r.json()
                assert r.status == 200 and blue["slots"] == 3 and "mode_stats" in blue and "events" in blue
            async with http.get(base + "api/rooms/green") as r:
                assert r.status == 404

            body = {"room": "blue", "slot": 2, "user": "dana", "ttl": 60}
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "let-me-in"}):
                async with http.post(base + "api/tokens", json=body, headers=headers) as r:
                    assert r.status == 403, headers
            async with http.post(plain.http_url + "api/tokens", json=body, headers={"Authorization": "Bearer let-me-in"}) as r:
                assert r.status == 403  # that server has no admin key: minting is off
            auth = {"Authorization": "Bearer let-me-in"}
            async with http.post(base + "api/tokens", json=body, headers=auth) as r:
                assert r.status == 200
                minted = await r.json()
            claims = verify_token(SECRET, token_from_text(minted["token"]), now_wall=time.time(), room="blue")
            assert (claims.slot, claims.user) == (2, "dana") and claims.expires <= time.time() + 61
            assert minted["udp"] == server.udp_url
            for bad, status in (({"room": "green"}, 404), ({"room": "blue", "slot": 3}, 400), ({"slot": 1}, 400), ([1], 400)):
                async with http.post(base + "api/tokens", json=bad, headers=auth) as r:
                    assert r.status == status, bad
            # The minted token plays: over the WebSocket route of the same app.
            client = GameClient(GAME, server.ws_url, minted["token"], bot=True)
            stop = asyncio.Event()
            task = asyncio.create_task(client.run(duration=5.0, stop=stop))
            await eventually(lambda: client.report.connects == 1 and client.tick > 10, "the WebSocket client playing")
            assert server.router.room_of(next(iter(server.rooms["blue"].mode.session.connections.values())).addr) == "blue"
            async with http.get(base + "api/rooms/blue") as r:
                assert (await r.json())["players"] == 1
            async with http.get(base + "api/dashboard") as r:
                blue = {x["name"]: x for x in (await r.json())["rooms"]}["blue"]
            (player,) = blue["players_detail"]  # a lockstep room's player, over the WebSocket
            assert (player["slot"], player["user"], player["role"]) == (2, "dana", "player")
            assert player["bytes_out"] > 0 and player["late_inputs"] >= 0 and blue["spectate"] is None
            stop.set()
            report = await task
            await client.close()
            assert report.status == "ok" and report.slot == 2 and report.frames > 0

    run(scenario())


@pytest.mark.network
def test_clean_shutdown_says_goodbye_and_closes_the_recording(tmp_path):
    path = tmp_path / "match.tsr"

    async def scenario():
        server = TickServer(secret=SECRET, http_port=0)
        server.add_room(GAME, RoomConfig("default", players=2, record=path, game_path="demos.arena:Arena"))
        await server.start()
        udp = GameClient(GAME, server.udp_url, server.mint_token("default", slot=0), bot=True, name="udp")
        ws = GameClient(GAME, server.ws_url, server.mint_token("default", slot=1), bot=True, name="ws")
        runs = [asyncio.create_task(c.run(duration=30.0)) for c in (udp, ws)]
        await eventually(lambda: udp.tick > 60 and ws.tick > 60, "both clients playing")
        # Both play sealed sessions, over UDP (loopback: no lab switch given) and WebSocket.
        conns = list(server.rooms["default"].mode.session.connections.values())
        assert len(conns) == 2 and all(c.encrypted for c in conns)
        assert not any(c.counters.dropped.get("bad_tag") for c in conns)
        await asyncio.wait_for(server.stop(), 4.0)  # shutdown never hangs
        reports = await asyncio.wait_for(asyncio.gather(*runs), 5.0)
        for r in reports:
            assert r.status == "closed by the server (shutdown)", r
            assert r.desyncs == 0 and r.ticks > 60 and r.servers_gone == 1 and r.relocations == 0
        for c in (udp, ws):  # no cluster to ask: the client says the server is gone, and stops
            assert c.events() == [ServerGone(c.url, "peer: shutdown", relocating=False)]
            await c.close()
        await server.stop()  # a second stop is harmless
        room = server.rooms["default"]
        return room.mode.tick, room.mode.session.epoch

    ticks, epoch = run(scenario())
    reader = ReplayReader(path)
    assert reader.clean and reader.ticks == ticks and reader.mode == "lockstep"
    assert reader.meta["room"] == "default"
    assert reader.meta["epoch"] == epoch  # what a room resumed from it keeps
    result = replay(reader, Arena(npcs=0))
    assert result.ok and result.hashes_checked >= 2


class Exploding(Arena):
    """Arena whose step fails at tick 30 (a bug in a game must not take the server down)."""

    name = "exploding"

    def step(self, state, inputs, tick):
        if tick == 30:
            raise ZeroDivisionError("boom")
        super().step(state, inputs, tick)


@pytest.mark.network
def test_a_failing_room_stops_alone(tmp_path):
    async def scenario():
        server = TickServer(secret=SECRET)
        server.add_room(Exploding(npcs=0), RoomConfig("bad", players=2, record=tmp_path / "bad.tsr"))
        server.add_room(GAME, RoomConfig("good", players=2))
        async with server:
            await eventually(lambda: server.rooms["good"].mode.tick > 60, "the good room ticking")
            bad = server.rooms["bad"]
            assert bad.status.startswith("error: ZeroDivisionError") and bad.mode.tick == 30
            assert server.rooms["good"].status == "running"
            # The broken room can be closed and a new one opened while the server runs on.
            await server.close_room("bad")
            assert [r["name"] for r in server.report()["rooms"]] == ["good"]
            again = server.add_room(GAME, RoomConfig("bad", players=2))
            await eventually(lambda: again.mode.tick > 5, "the new room ticking")

    run(scenario())
    reader = ReplayReader(tmp_path / "bad.tsr")
    assert not reader.clean and reader.ticks == 31  # inputs 0..30 (30 failed to step); no END


def test_a_room_that_fails_to_build_aborts_its_recording(tmp_path):
    """The mode server cannot be built (an unknown option): the recording opened for the
    room is aborted (closed, no END) and the server stays without the room."""
    path = tmp_path / "never.tsr"
    server = TickServer(secret=SECRET)
    with pytest.raises(TypeError, match="no_such_option"):
        server.add_room(GAME, RoomConfig("broken", players=2, record=path, options={"no_such_option": 1}))
    assert "broken" not in server.rooms
    reader = ReplayReader(path)
    assert reader.ticks == 0 and not reader.clean
    assert reader.tail == "no END record before tick 0 (the recording was not closed)"


@pytest.mark.network
def test_client_reconnects_after_a_timeout_and_plays_on():
    from netcode.session.connection import SessionConfig

    quick = SessionConfig(timeout=0.6, keepalive_interval=0.1)

    async def scenario():
        server = TickServer(secret=SECRET, session_config=quick)
        server.add_room(GAME, RoomConfig("default", players=2))
        async with server:
            client = GameClient(GAME, server.udp_url, server.mint_token("default", slot=0, user="zed"), bot=True,
                                session_config=quick, reconnect_delay=0.1)
            stop = asyncio.Event()
            task = asyncio.create_task(client.run(duration=10.0, stop=stop))
            await eventually(lambda: client.tick > 30, "the client playing")
            # An outage: the server hears nothing for a while, both ends time out.
            router = server.router
            deliver, deliver_many = router.receive_datagram, router.receive_many
            router.receive_datagram = lambda data, addr, now: None
            router.receive_many = lambda batch, on_error=None: None  # the polled socket's way in
            await eventually(lambda: client.report.status.startswith("reconnecting"), "the client noticing", 3.0)
            router.receive_datagram, router.receive_many = deliver, deliver_many
            await eventually(lambda: client.report.reconnects >= 1 and client.connected, "a reconnect", 5.0)
            before = client.tick
            await eventually(lambda: client.tick > before + 30, "play resuming")
            stop.set()
            report = await task
            await client.close()
            assert report.status == "ok" and report.slot == 0 and report.desyncs == 0
            room = server.rooms["default"]
            await eventually(lambda: room.report()["players"] == 0, "the goodbye freeing the slot", 1.0)

    run(scenario())


def test_a_server_refuses_the_lab_switch_off_loopback():
    from netcode.session.connection import SessionConfig

    with pytest.raises(UsageError, match="loopback only"):
        TickServer(secret=SECRET, host="0.0.0.0", session_config=SessionConfig(insecure_plaintext_loopback=True))
    TickServer(secret=SECRET, host="127.0.0.1", session_config=SessionConfig(insecure_plaintext_loopback=True))


@pytest.mark.network
def test_the_lab_switch_plays_udp_in_plaintext_on_loopback_and_websocket_sealed():
    from netcode.session.connection import SessionConfig

    async def scenario():
        server = TickServer(secret=SECRET, http_port=0, session_config=SessionConfig(insecure_plaintext_loopback=True))
        server.add_room(GAME, RoomConfig("default", players=2))
        await server.start()
        udp = GameClient(GAME, server.udp_url, server.mint_token("default", slot=0), bot=True, name="udp")
        ws = GameClient(GAME, server.ws_url, server.mint_token("default", slot=1), bot=True, name="ws")
        runs = [asyncio.create_task(c.run(duration=30.0)) for c in (udp, ws)]
        await eventually(lambda: udp.tick > 30 and ws.tick > 30, "both clients playing")
        conns = {c.slot: c.encrypted for c in server.rooms["default"].mode.session.connections.values()}
        await asyncio.wait_for(server.stop(), 4.0)
        await asyncio.wait_for(asyncio.gather(*runs), 5.0)
        for c in (udp, ws):
            await c.close()
        return conns

    assert run(scenario()) == {0: False, 1: True}  # WebSocket peers are never "on loopback"


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 signed by its own key (PEM files): what a lab's TLS has."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.mark.network
def test_serve_speaks_https_and_wss_given_a_certificate(tmp_path):
    import ssl

    from netcode.server.tickserver import tls_context
    from netcode.session import SessionClient
    from netcode.session.handshake import GameIdentity
    from netcode.transport.ws import open_ws_client

    cert, key = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=cert)
    with pytest.raises(UsageError, match="cannot load the TLS certificate"):
        tls_context(key, cert)  # the two the wrong way round

    async def scenario():
        server = TickServer(secret=SECRET, udp_port=None, http_port=0, tls=tls_context(cert, key))
        server.add_room(GAME, RoomConfig("default", players=2))
        async with server:
            assert server.http_url.startswith("https://127.0.0.1:") and server.ws_url.startswith("wss://127.0.0.1:")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:
                async with http.get(server.http_url + "api/rooms") as res:
                    assert res.status == 200
                token = server.mint_token("default", slot=0)
                clients = []

                def build(addr):
                    clients.append(SessionClient(server=addr, token=token, game=GameIdentity.of(GAME)))
                    return clients[0]

                transport = await open_ws_client(build, server.ws_url, session=http)
                clients[0].connect(transport.now())
                transport.flush()
                await eventually(lambda: clients[0].connected, "a session over WSS")
                assert clients[0].connection.encrypted
                await transport.close()

    run(scenario())
