"""WebSocket transport (aiohttp): the same binary packets as UDP, one per binary message.

Browsers cannot send UDP, so they speak ticksync over a WebSocket; the endpoint cannot tell
the difference. Each accepted WebSocket gets a pseudo-address ``WsAddress("ws", n)``
(equal to the tuple ``("ws", n)``, unique per connection in the process); a client sees its
server as ``WsAddress("ws-server", url)`` (:func:`ws_server_address`). Routing in the
:class:`~.hub.TransportHub` is by address type, so a server endpoint can be served over UDP
and WebSocket at once::

    server = SessionServer(...)
    udp = await open_udp_server(server, "0.0.0.0", 7777)
    ws = await open_ws_server(udp.hub, "0.0.0.0", 8080, app=dashboard_app)   # the same hub
    ...  # per tick: server.send(...); udp.flush()  (either transport's flush flushes both)

To mount the route on an application you run yourself, use :func:`add_ws_route` before
the app starts.

TCP already orders and retransmits, which a game does not want for stale packets: each
connection has a bounded outgoing queue drained by a writer task (aiohttp has no
non-awaiting send), which waits while the socket's write buffer is above
``Limits.ws_write_buffer``; when the queue is full new packets are dropped and counted, so
a slow reader costs bounded memory and never blocks the flush. Incoming text frames are a
protocol violation (the connection is closed); binary messages over the datagram budget are
dropped and counted, anything over 64 KiB closes the connection (aiohttp refuses to read it).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from typing import Any, Callable, NamedTuple

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from netcode.errors import UsageError
from netcode.logs import log_once
from netcode.transport.hub import Address, Endpoint, Limits, LinkBase, RateLimiter, TransportHub, ensure_hub, resolve_endpoint

__all__ = [
    "WsAddress",
    "WsServerTransport",
    "WsClientTransport",
    "add_ws_route",
    "open_ws_server",
    "open_ws_client",
    "ws_server_address",
]

log = logging.getLogger("ticksync.transport.ws")

_HARD_MAX_MESSAGE = 64 * 1024  # aiohttp closes the connection past this; between the budget and it we drop
_DRAIN_TIMEOUT = 1.0  # close(): how long queued packets (goodbyes) may take to leave
_BACKPRESSURE_POLL = 0.005


class WsAddress(NamedTuple):
    """A WebSocket peer as an endpoint sees it: ``("ws", n)`` for the n-th accepted
    connection, ``("ws-server", url)`` for the server a client connected to."""

    kind: str
    key: int | str


def ws_server_address(url: str) -> WsAddress:
    """The address a WebSocket client endpoint must use as its server for ``url``."""
    return WsAddress("ws-server", str(url))


_conn_numbers = itertools.count(1)  # process-wide, so pseudo-addresses never repeat


class _Outbox:
    """One connection's bounded outgoing queue and the task writing it to the socket."""

    __slots__ = ("ws", "queue", "limit", "wake", "idle", "task", "dead", "transport", "owner")

    def __init__(self, ws: Any, limit: int, transport: asyncio.Transport | None, owner: "_WsBase"):
        self.ws = ws
        self.queue: deque[bytes] = deque()
        self.limit = limit
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.dead = False
        self.transport = transport  # to read its write-buffer size; None when unavailable
        self.owner = owner
        self.task = asyncio.get_running_loop().create_task(self._run())

    def put(self, data: bytes) -> bool:
        if self.dead or len(self.queue) >= self.limit:
            return False
        self.queue.append(data)
        self.idle.clear()
        self.wake.set()
        return True

    async def _run(self) -> None:
        q, ws, owner = self.queue, self.ws, self.owner
        high_water = owner.limits.ws_write_buffer
        try:
            while True:
                while q:
                    t = self.transport
                    if t is not None and t.get_write_buffer_size() > high_water:
                        # A slow reader: let the kernel drain while the queue (bounded) fills.
                        await asyncio.sleep(_BACKPRESSURE_POLL)
                        continue
                    data = q.popleft()
                    await ws.send_bytes(data)
                    owner.sent += 1
                    owner.bytes_sent += len(data)
                self.idle.set()
                self.wake.clear()
                await self.wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket closed under us: what is queued is lost
            owner.dropped["send_error"] += 1 + len(q)
            log_once(owner._logged, "send_bytes", exc, type(owner).__name__, logger=log)
        finally:
            self.dead = True
            q.clear()
            self.idle.set()

    async def drain(self, timeout: float) -> None:
        if not self.dead:
            try:
                await asyncio.wait_for(self.idle.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self.dead = True
        self.task.cancel()


def _writer_transport(ws: Any) -> asyncio.Transport | None:
    # aiohttp keeps the connection's transport on its frame writer; no public accessor on
    # the client side. Without it the queue bound alone limits memory.
    return getattr(getattr(ws, "_writer", None), "transport", None)


class _WsBase(LinkBase):
    """What both WebSocket transports share beyond :class:`~.hub.LinkBase`."""

    kind = "ws"

    def _binary(self, data: bytes, addr: WsAddress, limiter: RateLimiter | None) -> None:
        self.received += 1
        self.bytes_received += len(data)
        if len(data) > self.limits.max_datagram:
            self.dropped["oversized"] += 1
            return
        now = self.hub.now()
        if limiter is not None and not limiter.allow(addr, now):
            self.dropped["rate_limited"] += 1
            return
        self.hub.receive(data, addr, now, self)

    def _address_closed(self, addr: WsAddress) -> None:
        """Tell the endpoint a pseudo-address is gone (``address_closed(addr, now)``, which
        server endpoints have), so its session ends now rather than after the timeout."""
        ep = self.endpoint
        now = self.hub.now()
        try:
            hook = getattr(ep, "address_closed", None)
            if hook is not None:
                hook(addr, now)
        except Exception as exc:
            self.hub.counters["internal_error"] += 1
            log_once(self._logged, "address_closed", exc, type(ep).__name__, logger=log)
        self.hub.flush()

class WsServerTransport(_WsBase):
    """Accepts WebSockets on an aiohttp route and drives the hub's endpoint with them.

    Built by :func:`add_ws_route` / :func:`open_ws_server`. When opened with
    :func:`open_ws_server`, ``port`` and ``url`` say where it listens.
    """

    kind = "ws-server"

    def __init__(self, hub: TransportHub, path: str, limits: Limits):
        super().__init__(hub, limits)
        self.path = path
        self._peers: dict[WsAddress, _Outbox] = {}
        self._limiter = RateLimiter(limits.rate, limits.burst, max(limits.max_tracked, limits.ws_max_connections))
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.url: str | None = None
        self.accepted = 0
        hub.attach(self, WsAddress)

    @property
    def connections(self) -> int:
        return len(self._peers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler of the WebSocket route."""
        if self.closed or len(self._peers) >= self.limits.ws_max_connections:
            self.dropped["refused_connection"] += 1
            return web.Response(status=503, text="ticksync: no room for another WebSocket\n")
        ws = web.WebSocketResponse(
            max_msg_size=_HARD_MAX_MESSAGE,
            compress=False,  # small binary packets: deflate costs CPU and saves nothing
            receive_timeout=self.limits.ws_idle_timeout,
        )
        await ws.prepare(request)
        addr = WsAddress("ws", next(_conn_numbers))
        outbox = _Outbox(ws, self.limits.send_queue, request.transport, self)  # type: ignore[arg-type]
        self._peers[addr] = outbox
        self.accepted += 1
        try:
            await self._read(ws, addr)
        finally:
            del self._peers[addr]
            self._limiter.forget(addr)
            outbox.stop()
            if not ws.closed:
                await ws.close()
            if not self.closed:
                self._address_closed(addr)
        return ws

    async def _read(self, ws: web.WebSocketResponse, addr: WsAddress) -> None:
        limiter = self._limiter
        while True:
            try:
                msg = await ws.receive()
            except asyncio.TimeoutError:
                self.dropped["idle_timeout"] += 1
                return
            t = msg.type
            if t is WSMsgType.BINARY:
                self._binary(msg.data, addr, limiter)
            elif t is WSMsgType.TEXT:
                # Not ticksync: a misconfigured client. Say so and hang up.
                self.dropped["text_frame"] += 1
                await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"ticksync speaks binary messages only")
                return
            elif t is WSMsgType.ERROR:
                self.dropped["ws_error"] += 1  # includes messages over 64 KiB
                return
            else:  # CLOSE / CLOSING / CLOSED
                return

    def send_batch(self, batch: list[tuple[bytes, Address]]) -> None:
        peers = self._peers
        for data, addr in batch:
            outbox = peers.get(addr)  # type: ignore[arg-type]
            if outbox is None:
                self.dropped["no_connection"] += 1  # it closed since the endpoint last heard from it
            elif not outbox.put(data):
                self.dropped["queue_full"] += 1

    async def close(self) -> None:
        """Close every WebSocket (after letting queued packets leave) and, if this transport
        started the site itself, stop it."""
        if self.closed:
            return
        self.closed = True
        await asyncio.gather(*(o.drain(_DRAIN_TIMEOUT) for o in self._peers.values()))
        await asyncio.gather(
            *(o.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for o in list(self._peers.values()))
        )
        self.hub.detach(self)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close()

    def stats(self) -> dict:
        return self._stats(connections=len(self._peers), accepted=self.accepted)


def add_ws_route(
    app: web.Application,
    endpoint: Endpoint | TransportHub,
    path: str = "/ws",
    *,
    limits: Limits = Limits(),
) -> WsServerTransport:
    """Mount a ticksync WebSocket route on ``app`` (before it starts) serving ``endpoint``
    (driven by a new hub) or a given hub's endpoint (another transport's ``transport.hub``:
    the route joins it). The app's shutdown closes the WebSockets, so ``runner.cleanup()``
    does not wait on them."""
    transport = WsServerTransport(ensure_hub(endpoint), path, limits)
    app.router.add_get(path, transport.handle)
    app.on_shutdown.append(transport._on_shutdown)
    return transport


async def open_ws_server(
    endpoint: Endpoint | TransportHub,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/ws",
    *,
    app: web.Application | None = None,
    limits: Limits = Limits(),
) -> WsServerTransport:
    """Serve ``endpoint`` (or a given hub's endpoint, as :func:`add_ws_route`) over
    WebSockets at ``ws://host:port/path`` (``port=0``: a free one, see ``transport.port`` /
    ``transport.url``). ``app``: an application to add the
    route to and serve (e.g. the one with the HTTP dashboard); a new one if None.
    ``await transport.close()`` stops the site."""
    app = app if app is not None else web.Application()
    transport = add_ws_route(app, endpoint, path, limits=limits)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    transport._runner = runner
    transport.port = bound[1]
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    transport.url = f"ws://{shown}:{bound[1]}{path}"
    transport.hub.flush()
    return transport


class WsClientTransport(_WsBase):
    """One WebSocket to a ticksync server, driving a client endpoint.

    The endpoint addresses the server as :attr:`server_address` (``("ws-server", url)``).
    Built by :func:`open_ws_client`.
    """

    kind = "ws-client"

    def __init__(
        self,
        hub: TransportHub,
        server_address: WsAddress,
        limits: Limits,
        ws: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession | None,
    ):
        super().__init__(hub, limits)
        self.server_address = server_address
        self._ws = ws
        self._own_session = session  # closed with the transport when we made it
        self._outbox = _Outbox(ws, limits.send_queue, _writer_transport(ws), self)
        self.close_code: int | None = None
        self._ended = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        hub.attach(self, WsAddress)

    async def _read(self) -> None:
        ws, addr = self._ws, self.server_address
        try:
            while True:
                msg = await ws.receive()
                t = msg.type
                if t is WSMsgType.BINARY:
                    self._binary(msg.data, addr, None)  # our chosen server: no rate limit
                elif t is WSMsgType.TEXT:
                    self.dropped["text_frame"] += 1
                elif t is WSMsgType.ERROR:
                    self.dropped["ws_error"] += 1
                    break
                else:
                    break
        finally:
            self.close_code = ws.close_code
            self._ended.set()
            if not self.closed:
                self.closed = True
                self._outbox.stop()
                self.hub.detach(self)
                self._address_closed(addr)

    def send_batch(self, batch: list[tuple[bytes, Address]]) -> None:
        server, outbox = self.server_address, self._outbox
        for data, addr in batch:
            if addr != server:
                self.dropped["unroutable"] += 1
            elif not outbox.put(data):
                self.dropped["queue_full" if not outbox.dead else "closed"] += 1

    async def wait_closed(self) -> None:
        """Returns when the connection has ended (either side closed it)."""
        await self._ended.wait()

    async def close(self) -> None:
        """Let queued packets (goodbyes) leave, then close the WebSocket."""
        if not self.closed:
            self.closed = True
            await self._outbox.drain(_DRAIN_TIMEOUT)
            self._outbox.stop()
            self.hub.detach(self)
            await self._ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass
        if self._own_session is not None:
            await self._own_session.close()

    def stats(self) -> dict:
        return self._stats(connected=not self.closed)


async def open_ws_client(
    endpoint: Endpoint | TransportHub | Callable[[WsAddress], Endpoint],
    url: str,
    *,
    session: aiohttp.ClientSession | None = None,
    limits: Limits = Limits(),
    timeout: float = 10.0,
) -> WsClientTransport:
    """Connect to a ticksync WebSocket server at ``url`` and drive the client ``endpoint``.

    The endpoint's server address must be ``ws_server_address(url)``; pass a factory taking
    that address to have it built right, or an endpoint already built with it. ``session``:
    an aiohttp session to use (one is made, and closed with the transport, if None).
    """
    _check_url(url)
    server = ws_server_address(url)
    hub = resolve_endpoint(endpoint, server)
    hub.require_free(WsAddress)
    own = aiohttp.ClientSession() if session is None else None
    try:
        connecting = (session or own).ws_connect(
            url, max_msg_size=_HARD_MAX_MESSAGE, compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=timeout)
        )
        ws = await asyncio.wait_for(connecting, timeout)
    except BaseException as exc:
        if own is not None:
            await own.close()
        if isinstance(exc, aiohttp.WSServerHandshakeError):  # an HTTP answer, not a WebSocket
            raise UsageError(
                f"{url}: the server answered HTTP {exc.status} instead of a WebSocket (is the path right? "
                "ticksync serve prints its websocket URL)"
            ) from None
        raise
    transport = WsClientTransport(hub, server, limits, ws, own)
    hub.flush()
    return transport


def _check_url(url: str) -> None:
    if not url.startswith(("ws://", "wss://", "http://", "https://")):
        raise UsageError(f"{url!r} is not a WebSocket URL (ws://host:port/path)")
