"""WebSocket transport over a real aiohttp server on loopback: sessions, guards, and one
server endpoint served over UDP and WebSocket at the same time.

Scenarios run on uvloop under ``asyncio.wait_for`` and poll for outcomes (see
test_transport_udp.py for the helpers' rationale).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType, web

from demos.arena import GAME
from netcode import (
    Connected,
    Disconnected,
    Limits,
    UsageError,
    WsAddress,
    mint_token,
    open_udp_client,
    open_udp_server,
    open_ws_client,
    open_ws_server,
    ws_server_address,
)
from netcode.session import Admission, SessionClient, SessionServer
from netcode.session.handshake import GameIdentity
from netcode.session.wire import PacketType
from helpers import PeerRecorder, eventually as eventually_until, run_bounded

pytestmark = pytest.mark.network

SECRET = b"ticksync-transport-test-secret!!"
IDENTITY = GameIdentity.of(GAME)


def run(coro, timeout: float = 6.0):
    return run_bounded(coro, timeout)


async def eventually(pred, what: str, timeout: float = 2.0) -> None:
    await eventually_until(pred, what, timeout, poll=0.003)




def make_server(peer: PeerRecorder) -> SessionServer:
    loop = asyncio.get_running_loop()
    slots = itertools.count()
    peer.endpoint = SessionServer(
        game=IDENTITY,
        secret=SECRET,
        admit=lambda claims, addr, now: Admission(slot=next(slots)),
        on_payload=peer.on_payload,
        wall_offset=time.time() - loop.time(),
    )
    return peer.endpoint


def client_factory(peer: PeerRecorder, user: str):
    token = mint_token(SECRET, "default", expires=time.time() + 60, user=user)

    def build(server_addr):
        peer.endpoint = SessionClient(server=server_addr, token=token, game=IDENTITY, on_payload=peer.on_payload)
        return peer.endpoint

    return build


async def connect(transport, peer: PeerRecorder) -> None:
    peer.endpoint.connect(transport.now())
    transport.flush()
    await eventually(lambda: peer.events(Connected), "client Connected")


def test_session_connects_exchanges_payloads_and_disconnects_over_websocket():
    async def scenario():
        sp, cp = PeerRecorder(), PeerRecorder()
        server = make_server(sp)
        wt = await open_ws_server(server)
        assert wt.url == f"ws://127.0.0.1:{wt.port}/ws"
        ct = await open_ws_client(client_factory(cp, "alice"), wt.url)
        assert cp.endpoint.server == ws_server_address(wt.url) == ("ws-server", wt.url)
        await connect(ct, cp)
        await eventually(lambda: sp.events(Connected), "server Connected")
        (joined,) = sp.events(Connected)
        assert isinstance(joined.addr, WsAddress) and joined.addr.kind == "ws"

        cp.endpoint.send(PacketType.LS_INPUT, b"input-1", ct.now())
        cp.endpoint.send(PacketType.LS_INPUT, b"input-2", ct.now())
        ct.flush()
        server.send(server.connections[joined.conn], PacketType.LS_FRAMES, b"frames-1", wt.now())
        wt.flush()
        await eventually(lambda: len(sp.payloads) == 2 and len(cp.payloads) == 1, "payloads both ways")
        assert [p[2] for p in sp.payloads] == [b"input-1", b"input-2"]  # TCP: in order, exactly once
        assert cp.payloads == [(0, PacketType.LS_FRAMES, b"frames-1")]

        cp.endpoint.disconnect(ct.now())
        ct.flush()
        await ct.close()  # lets the queued goodbyes leave before the socket closes
        await eventually(lambda: sp.events(Disconnected), "server Disconnected")
        (gone,) = sp.events(Disconnected)
        assert gone.conn == joined.conn and gone.reason.startswith("peer")
        await eventually(lambda: wt.connections == 0, "the server to drop the socket")
        s = wt.stats()
        assert s["dropped"] == {} and "internal_error" not in s["hub"], s
        assert s["received"] == ct.stats()["sent"] >= 6
        await wt.close()

    run(scenario())


def test_a_websocket_that_vanishes_ends_its_session_without_waiting_for_the_timeout():
    async def scenario():
        sp, cp = PeerRecorder(), PeerRecorder()
        wt = await open_ws_server(make_server(sp))
        ct = await open_ws_client(client_factory(cp, "alice"), wt.url)
        await connect(ct, cp)
        await eventually(lambda: sp.events(Connected), "server Connected")
        await ct.close()  # no DISCONNECT sent: the socket just goes away
        await eventually(lambda: sp.events(Disconnected), "server Disconnected", timeout=1.0)
        assert sp.events(Disconnected)[0].reason == "transport closed"
        assert not sp.endpoint.connections
        await wt.close()

    run(scenario())


def test_text_oversized_garbage_and_floods_are_dropped_and_counted():
    async def scenario():
        sp, cp = PeerRecorder(), PeerRecorder()
        server = make_server(sp)
        limits = Limits(rate=50.0, burst=20.0)
        wt = await open_ws_server(server, limits=limits)
        ct = await open_ws_client(client_factory(cp, "alice"), wt.url)
        await connect(ct, cp)
        before = server.counters.received

        async with aiohttp.ClientSession() as http:
            # Oversized and garbage binary messages: dropped, the connection stays up.
            async with http.ws_connect(wt.url) as raw:
                await raw.send_bytes(b"\x00" * 1300)
                await raw.send_bytes(b"not ticksync at all")
                await eventually(lambda: server.counters.dropped["not_ticksync"] == 1, "garbage at the endpoint")
                assert wt.stats()["dropped"] == {"oversized": 1}
                assert server.counters.received == before + 1
                assert not raw.closed

                # A flood on one connection: rate-limited per connection (TCP keeps every message).
                for _ in range(200):
                    await raw.send_bytes(b"flood")
                await eventually(
                    lambda: server.counters.dropped["not_ticksync"] - 1 + wt.stats()["dropped"].get("rate_limited", 0) == 200,
                    "the whole flood",
                )
                assert wt.stats()["dropped"]["rate_limited"] >= 200 - limits.burst - limits.rate * 2.0

            # A text frame is a protocol violation: counted, and the server hangs up.
            async with http.ws_connect(wt.url) as raw:
                await raw.send_str("hello")
                msg = await raw.receive()
                assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
                assert raw.close_code == WSCloseCode.UNSUPPORTED_DATA
            assert wt.stats()["dropped"]["text_frame"] == 1

        # The real session never noticed.
        for i in range(10):
            cp.endpoint.send(PacketType.LS_INPUT, b"after-%d" % i, ct.now())
        ct.flush()
        await eventually(lambda: len(sp.payloads) == 10, "payloads after the abuse")
        assert next(iter(server.connections.values())).counters.dropped == {}
        await ct.close()
        await wt.close()

    run(scenario())


def test_a_second_transport_joins_the_hub_it_is_given_and_never_a_second_hub():
    """Hubs are passed, not looked up: a transport opened with an endpoint gets a new hub,
    so opening another one with the same endpoint while the first runs is refused (two
    hubs would drop each other's datagrams); with the first one's hub it joins it; once
    the first has closed, the endpoint may get a new hub."""

    async def scenario():
        server = make_server(PeerRecorder())
        udp = await open_udp_server(server)
        with pytest.raises(UsageError, match=r"udp\.hub"):
            await open_ws_server(server)
        ws = await open_ws_server(udp.hub)
        assert ws.hub is udp.hub and ws.endpoint is server
        await ws.close()
        udp.close()
        again = await open_udp_server(server)
        assert again.hub is not udp.hub and again.endpoint is server
        again.close()

    run(scenario())


def test_one_server_endpoint_over_udp_and_websocket_at_once_with_a_dashboard_on_the_same_app():
    async def scenario():
        sp = PeerRecorder()
        server = make_server(sp)

        async def status(request: web.Request) -> web.Response:
            return web.json_response({"connections": len(server.connections)})

        app = web.Application()
        app.router.add_get("/status", status)
        udp = await open_udp_server(server)
        ws = await open_ws_server(udp.hub, app=app)
        assert udp.hub is ws.hub and ws.endpoint is server  # one hub: one flush serves both

        up, wp = PeerRecorder(), PeerRecorder()
        uc = await open_udp_client(client_factory(up, "udp-user"), *udp.local_address)
        wc = await open_ws_client(client_factory(wp, "ws-user"), ws.url)
        await asyncio.gather(connect(uc, up), connect(wc, wp))
        await eventually(lambda: len(sp.events(Connected)) == 2, "two server Connected")
        by_kind = {type(e.addr): e.conn for e in sp.events(Connected)}
        assert set(by_kind) == {tuple, WsAddress}

        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{ws.port}/status") as resp:
                assert await resp.json() == {"connections": 2}

        # Server to each: one flush routes each datagram to the transport owning its address.
        now = udp.now()
        for kind, conn_id in by_kind.items():
            server.send(server.connections[conn_id], PacketType.LS_FRAMES, b"to-" + kind.__name__.encode(), now)
        udp.flush()
        up.endpoint.send(PacketType.LS_INPUT, b"from-udp", uc.now())
        uc.flush()
        wp.endpoint.send(PacketType.LS_INPUT, b"from-ws", wc.now())
        wc.flush()
        await eventually(lambda: len(sp.payloads) == 2 and up.payloads and wp.payloads, "payloads everywhere")
        assert up.payloads == [(0, PacketType.LS_FRAMES, b"to-tuple")]
        assert wp.payloads == [(0, PacketType.LS_FRAMES, b"to-WsAddress")]
        assert sorted(sp.payloads) == sorted(
            [(by_kind[tuple], PacketType.LS_INPUT, b"from-udp"), (by_kind[WsAddress], PacketType.LS_INPUT, b"from-ws")]
        )

        # Shutdown: goodbyes reach both kinds of client.
        server.close_all(udp.now())
        ws.flush()
        await eventually(lambda: up.events(Disconnected) and wp.events(Disconnected), "clients told of the shutdown")
        assert up.events(Disconnected)[0].reason == wp.events(Disconnected)[0].reason == "peer: shutdown"
        assert "unroutable" not in udp.hub.stats()
        for t in (udp, ws, uc, wc):
            assert t.stats()["dropped"] == {}, t.stats()
        # Closing the server hangs up on WebSocket clients still connected.
        await ws.close()
        await asyncio.wait_for(wc.wait_closed(), 2.0)
        assert wc.closed and wc.close_code == WSCloseCode.GOING_AWAY
        uc.close()
        await wc.close()
        udp.close()

    run(scenario())


class Firehose:
    """A minimal endpoint: remembers who wrote to it, sends them as much as it is told."""

    def __init__(self):
        self.out: list = []
        self.peers: list = []

    def receive_datagram(self, data, addr, now):
        self.peers.append(addr)

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def next_deadline(self):
        return None

    def handle_timer(self, now):
        pass


def test_a_websocket_that_does_not_read_costs_bounded_memory_and_drops_are_counted():
    async def scenario():
        hose = Firehose()
        limits = Limits(send_queue=8, ws_write_buffer=16 * 1024)
        wt = await open_ws_server(hose, limits=limits)
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(wt.url) as sleepy:  # connects, then never reads
                await sleepy.send_bytes(b"hello")
                await eventually(lambda: hose.peers, "the endpoint to learn the address")
                addr = hose.peers[0]
                outbox = wt._peers[addr]
                packet = bytes(1200)
                peak = 0
                for _ in range(5000):  # at most ~48 MB offered, far past every socket buffer
                    # As much per round as the queue holds: a reader that keeps up loses nothing.
                    hose.out.extend((packet, addr) for _ in range(limits.send_queue))
                    wt.flush()
                    await asyncio.sleep(0)
                    buffered = outbox.transport.get_write_buffer_size()
                    peak = max(peak, buffered)
                    assert len(outbox.queue) <= limits.send_queue
                    assert buffered <= limits.ws_write_buffer + 2 * len(packet)
                    if wt.stats()["dropped"].get("queue_full", 0) > 100:
                        break
                s = wt.stats()
                assert s["dropped"]["queue_full"] > 100, s
                assert peak > limits.ws_write_buffer // 2  # the kernel was full: drops came from backpressure
                assert s["sent"] > 1000  # megabytes went out before the reader's buffers filled
                assert not sleepy.closed  # slow is not a protocol violation: it just loses packets
        await wt.close()

    run(scenario())
