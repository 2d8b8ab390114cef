"""UDP transport: one asyncio datagram socket driving one sans-IO endpoint.

Everything a socket receives passes two guards before the endpoint sees it: datagrams over
the 1200-byte budget are dropped unread (we never send any, so they are hostile or broken),
and a server's per-source-address token bucket drops floods (see :class:`~.hub.Limits`).
Both are counted in :meth:`UdpTransport.stats`. Then the hub's flush rule runs: deliver,
drain and send the endpoint's datagrams in one ``sendto`` loop, re-arm the timer.

Addresses: the endpoint always sees ``(host, port)`` tuples with a numeric host, exactly
what ``datagram_received`` reports (IPv6 4-tuples are cut to 2; flow info and scope id are
dropped, so link-local IPv6 with a scope is not supported). A client must therefore name
the server by the *resolved* address. :func:`open_udp_client` resolves ``remote_host`` and
either calls a factory with that address or checks the endpoint already uses it::

    t = await open_udp_client(lambda server: SessionClient(server=server, token=tok, game=g), "localhost", port)
    client = t.endpoint
    client.connect(t.now()); t.flush()

Server::

    t = await open_udp_server(server_endpoint, "0.0.0.0", 7777)
    ...  # in a game tick: server_endpoint.send(...); t.flush()

Client sockets are *connected* (the kernel filters other sources and reports ICMP port
unreachable, which arrives as :meth:`UdpTransport.error_received` and is counted).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from typing import TYPE_CHECKING, Callable

from netcode.errors import UsageError
from netcode.logs import log_once
from netcode.transport.hub import Address, Endpoint, Limits, LinkBase, RateLimiter, TransportHub, ensure_hub, resolve_endpoint

if TYPE_CHECKING:
    from netcode.transport.udp_polled import PolledUdpTransport

__all__ = ["UdpLink", "UdpTransport", "open_udp_server", "open_udp_client", "resolve_udp_address"]

log = logging.getLogger("ticksync.transport.udp")

# A polled socket holds a whole tick of traffic in the kernel (the default buffer of about
# 200 KB is some 250 datagrams); the kernel caps the request at net.core.rmem_max.
_POLLED_BUFFER = 2 << 20


class UdpLink(LinkBase):
    """What both UDP transports share: the guards in front of the endpoint and the stats."""

    kind = "udp"

    def __init__(self, hub: TransportHub, limits: Limits, remote: tuple[str, int] | None = None):
        super().__init__(hub, limits)
        self.remote_address = remote  # client: the server, as the endpoint must address it
        # Servers rate-limit sources; a connected client socket only hears from its server.
        self._limiter = RateLimiter(limits.rate, limits.burst, limits.max_tracked) if remote is None else None
        self._max = limits.max_datagram
        self.errors: Counter = Counter()  # socket errors, by exception class (ICMP unreachable, ...)

    def _guard(self, data: bytes, addr, now: float):
        """Count a received datagram; the address the endpoint should see, or None when a
        guard dropped it (oversized, rate-limited)."""
        self.received += 1
        self.bytes_received += len(data)
        if addr is None:
            addr = self.remote_address
        elif len(addr) != 2:
            addr = (addr[0], addr[1])  # IPv6 (host, port, flowinfo, scope_id)
        if len(data) > self._max:
            self.dropped["oversized"] += 1
            return None
        limiter = self._limiter
        if limiter is not None and not limiter.allow(addr, now):
            self.dropped["rate_limited"] += 1
            return None
        return addr

    def _send_each(self, batch: list[tuple[bytes, Address]], sendto, remote=None) -> None:
        """``sendto`` each datagram (on a socket connected to ``remote``: without the
        address), counting what could not go."""
        sent = nbytes = 0
        for data, addr in batch:
            try:
                if remote is None:
                    sendto(data, addr)
                elif addr == remote:
                    sendto(data)  # connected socket: the address is implied
                else:
                    self.dropped["unroutable"] += 1
                    continue
            except (BlockingIOError, InterruptedError):
                # The kernel buffer is full: a late game packet is worth nothing, so drop it
                # (the protocol repeats what matters).
                self.dropped["backpressure"] += 1
                continue
            except Exception as exc:  # a malformed address from the endpoint, a closing socket
                self.dropped["send_error"] += 1
                log_once(self._logged, "sendto", exc, type(self).__name__, logger=log)
                continue
            sent += 1
            nbytes += len(data)
        self.sent += sent
        self.bytes_sent += nbytes

    def stats(self) -> dict:
        out = self._stats(errors=dict(self.errors))
        if self._limiter is not None:
            out["rate_limit_buckets"] = len(self._limiter)
        return out


class UdpTransport(UdpLink, asyncio.DatagramProtocol):
    """A datagram socket bound to a :class:`~.hub.TransportHub` (and so to its endpoint),
    read as datagrams arrive. Built by :func:`open_udp_server` / :func:`open_udp_client`,
    not directly.
    """

    def __init__(self, hub: TransportHub, limits: Limits, remote: tuple[str, int] | None = None):
        super().__init__(hub, limits, remote)
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused = False
        self._closed = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr) -> None:
        if self.closed:
            return
        now = self._loop.time()
        addr = self._guard(data, addr, now)
        if addr is not None:
            self.hub.receive(data, addr, now, self)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable after a peer left, ...) say nothing we can act on
        # here; sessions time out on their own. Count, never crash.
        self.errors[type(exc).__name__] += 1
        log.debug("UDP error_received: %r", exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.hub.detach(self)
        if not self._closed.done():
            self._closed.set_result(None)

    # -- what the hub calls -----------------------------------------------------------------
    def send_batch(self, batch: list[tuple[bytes, Address]]) -> None:
        transport = self._transport
        if self.closed or transport is None:
            self.dropped["closed"] += len(batch)
            return
        if self._paused:
            # The kernel buffer is full and asyncio would queue without bound; a late game
            # packet is worth nothing, so drop it (the protocol repeats what matters).
            self.dropped["backpressure"] += len(batch)
            return
        self._send_each(batch, transport.sendto, self.remote_address)

    # -- public -----------------------------------------------------------------------------
    @property
    def local_address(self) -> tuple[str, int]:
        if self._transport is None:
            raise UsageError("transport is not open")
        name = self._transport.get_extra_info("sockname")
        return (name[0], name[1])

    def close(self) -> None:
        """Close the socket. Send goodbyes first (``server.close_all(now)``; ``flush()``)."""
        if self.closed:
            return
        self.closed = True
        self.hub.detach(self)
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await self._closed


async def resolve_udp_address(host: str, port: int) -> tuple[str, int]:
    """``(numeric host, port)`` of ``host``: the address a UDP transport reports for it."""
    return (await _resolve(host, port, 0))[1]


async def _resolve(host: str, port: int, flags: int) -> tuple[int, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=flags)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, sockaddr = infos[0]
    return family, (sockaddr[0], sockaddr[1])


def _make_socket(family: int, buffer_size: int | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    if buffer_size:
        # Best effort: the kernel caps these at net.core.{r,w}mem_max.
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, buffer_size)
            except OSError:
                pass
    return sock


async def open_udp_server(
    endpoint: Endpoint | TransportHub,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: Limits = Limits(),
    socket_buffer: int | None = None,
    polled: bool = False,
) -> UdpTransport | PolledUdpTransport:
    """Serve ``endpoint`` on a UDP socket: a new hub drives it, or, given a hub (another
    transport's ``transport.hub``), this socket joins that hub and its endpoint.

    ``port=0`` picks a free port; read it from ``transport.local_address``.
    ``socket_buffer`` asks the kernel for bigger socket buffers (bytes), for busy servers.
    ``polled``: read the socket only when the owner calls ``transport.poll()`` (once per
    tick), not per datagram: a :class:`~.udp_polled.PolledUdpTransport`.
    """
    loop = asyncio.get_running_loop()
    hub = ensure_hub(endpoint)
    hub.require_free(tuple)
    family, addr = await _resolve(host, port, socket.AI_PASSIVE)
    if polled and socket_buffer is None:
        socket_buffer = _POLLED_BUFFER
    sock = _make_socket(family, socket_buffer)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    if polled:
        from netcode.transport.udp_polled import PolledUdpTransport

        proto = PolledUdpTransport(hub, limits, sock)
    else:
        proto = UdpTransport(hub, limits)
        await loop.create_datagram_endpoint(lambda: proto, sock=sock)
    hub.attach(proto, tuple)
    hub.flush()  # the endpoint may already have a deadline or queued datagrams
    return proto


async def open_udp_client(
    endpoint: Endpoint | TransportHub | Callable[[tuple[str, int]], Endpoint],
    remote_host: str,
    remote_port: int,
    *,
    limits: Limits = Limits(),
    socket_buffer: int | None = None,
) -> UdpTransport:
    """Connect a UDP socket to a server and drive the client ``endpoint`` with it.

    ``endpoint`` may be a factory called with the resolved server address ``(ip, port)``
    (the easy way: that address is what the endpoint must use as its server); an endpoint
    built beforehand with a ``server`` attribute is checked against it. The endpoint is
    ``transport.endpoint``; call ``connect(transport.now())`` then ``transport.flush()``.
    """
    loop = asyncio.get_running_loop()
    family, remote = await _resolve(remote_host, remote_port, 0)
    hub = resolve_endpoint(endpoint, remote)
    hub.require_free(tuple)
    sock = _make_socket(family, socket_buffer)
    try:
        sock.connect(remote)
    except OSError:
        sock.close()
        raise
    proto = UdpTransport(hub, limits, remote=remote)
    await loop.create_datagram_endpoint(lambda: proto, sock=sock)
    hub.attach(proto, tuple)
    hub.flush()
    return proto
