"""What every transport shares: the one flush rule, the hostile-traffic guards, the limits.

A :class:`TransportHub` drives one sans-IO endpoint (a ``SessionServer``, a lockstep or
state-sync server/client: anything with ``receive_datagram / datagrams_to_send /
next_deadline / handle_timer``) for one or more transports at once. It owns the flush
rule: after a datagram is delivered, a user call (:meth:`TransportHub.flush`) or a timer,
drain the endpoint's outgoing datagrams, hand each to the transport that owns its address,
and re-arm a single ``loop.call_at`` timer at ``next_deadline()``. ``now`` given to the
endpoint is always ``loop.time()``.

Routing is by the exact type of the address: a UDP transport owns plain ``(host, port)``
tuples, a WebSocket transport owns :class:`~netcode.transport.ws.WsAddress` values. So one
server endpoint can be served over UDP and WebSocket at the same time: both transports are
attached to the same hub. Hubs are passed explicitly, never looked up: an ``open_*``
function given an endpoint builds a new hub for it, one given a hub attaches to that hub.
To add a second transport to an endpoint, pass the first transport's hub::

    udp = await open_udp_server(server, "0.0.0.0", 7777)
    ws = await open_ws_server(udp.hub, "0.0.0.0", 8080)   # not ``server``: that would be a second hub

(or build ``hub = TransportHub(server)`` and pass it to both). An endpoint must be driven by
one hub at a time: two hubs would each drain its datagrams and drop the other's, so
opening a transport on a new hub for an endpoint another hub drives raises
:class:`~netcode.errors.UsageError` (once that hub's transports have closed, a new hub may
take over: a client reconnecting over a new socket).
Each transport keeps its hub (``transport.hub``); its ``endpoint`` is always the hub's.

Endpoint exceptions other than the endpoint's own counted drops (which never escape it) are
bugs, but one bad packet must not take a server down: every endpoint call is guarded,
counted as ``internal_error`` and logged once per kind.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable, Protocol

from netcode.endpoint import Address, Endpoint, receive_batch
from netcode.errors import UsageError
from netcode.logs import log_once
from netcode.session.wire import MAX_PACKET
from netcode.transport.ratelimit import RateLimiter

__all__ = [
    "Address",
    "Endpoint",
    "Link",
    "Limits",
    "LinkBase",
    "RateLimiter",
    "TransportHub",
    "ensure_hub",
    "resolve_endpoint",
]

log = logging.getLogger("ticksync.transport")



class Link(Protocol):
    """What a transport gives its hub: a way to put a batch of datagrams on its wire."""

    def send_batch(self, batch: list[tuple[bytes, Address]]) -> None: ...

    def count_drop(self, reason: str, n: int = 1) -> None: ...


class LinkBase:
    """Counters and hub plumbing every transport shares (UDP and both WebSocket ends)."""

    kind = "link"

    def __init__(self, hub: "TransportHub", limits: "Limits"):
        self.hub = hub
        self.limits = limits
        self.received = 0
        self.bytes_received = 0
        self.sent = 0
        self.bytes_sent = 0
        self.dropped: Counter = Counter()
        self.closed = False
        self._logged: set = set()

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint this transport's hub drives (it follows :meth:`TransportHub.replace_endpoint`)."""
        return self.hub.endpoint

    def count_drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    def flush(self) -> None:
        """Send what the endpoint queued and re-arm its timer; call after using the endpoint."""
        self.hub.flush()

    def now(self) -> float:
        """``loop.time()``: the ``now`` to pass the endpoint (``client.connect(t.now())``)."""
        return self.hub.now()

    def _stats(self, **extra) -> dict:
        return {
            "transport": self.kind,
            "received": self.received,
            "bytes_received": self.bytes_received,
            "sent": self.sent,
            "bytes_sent": self.bytes_sent,
            "dropped": dict(self.dropped),
            "hub": self.hub.stats(),
            **extra,
        }


@dataclass(frozen=True)
class Limits:
    """Guards applied before an endpoint sees a datagram, and bounds on what we buffer.

    ``rate``/``burst`` is a token bucket per source address (per connection for
    WebSockets): generous for any real client (a 60 Hz client sends ~60-120 packets/s),
    tight enough that one flooding address costs a server almost nothing. Rate limits
    apply to servers only; a client talks to one server it chose.
    """

    max_datagram: int = MAX_PACKET  # bigger datagrams are dropped unread: we never send any
    rate: float = 240.0  # packets per second per address, sustained
    burst: float = 480.0  # packets an idle address may send at once
    max_tracked: int = 65536  # rate-limit buckets kept; idle ones are evicted past this
    send_queue: int = 256  # WebSocket: packets queued per connection before dropping
    ws_write_buffer: int = 256 * 1024  # WebSocket: socket buffer bytes before the queue waits
    ws_max_connections: int = 4096
    ws_idle_timeout: float = 30.0  # a WebSocket that sends nothing this long is closed

    def __post_init__(self):
        if self.rate <= 0 or self.burst < 1 or self.max_tracked < 1 or self.max_datagram < 1:
            raise UsageError(f"nonsensical transport limits: {self}")


_MIN_TIMER_STEP = 0.001  # a timer whose endpoint is still due right after handling it waits this long
_RETRY_AFTER_ERROR = 0.1  # next_deadline() raised: ask again this much later instead of never


class TransportHub:
    """Drives one endpoint for any number of transports (see the module docstring).

    Call :meth:`flush` after calling the endpoint yourself (``client.send(...)``,
    ``server.disconnect(...)``, a game tick): it is cheap when nothing is queued and the
    deadline did not move.
    """

    def __init__(self, endpoint: Endpoint):
        for name in ("receive_datagram", "datagrams_to_send", "next_deadline", "handle_timer"):
            if not callable(getattr(endpoint, name, None)):
                raise UsageError(f"{type(endpoint).__name__} is not an endpoint: it has no {name}()")
        self.endpoint = endpoint
        self.counters: Counter = Counter()  # internal_error, unroutable, timers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[type, Link] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None  # the endpoint deadline the timer is set for
        self._flush_soon = False  # a flush is scheduled for the end of this loop iteration
        self._logged: set[tuple[str, type]] = set()

    # -- wiring -----------------------------------------------------------------------------
    def attach(self, link: Link, address_type: type) -> None:
        """Route datagrams whose address is exactly of ``address_type`` to ``link``."""
        self.require_free(address_type, link)
        self._adopt_loop()
        self._routes[address_type] = link
        _driving.add(self)

    def require_free(self, address_type: type, link: Link | None = None) -> None:
        """Raise unless ``address_type`` is unclaimed and no other hub drives this endpoint
        (transports check before opening sockets)."""
        for hub in list(_driving):
            if hub is not self and hub._routes and hub.endpoint is self.endpoint:
                raise UsageError(
                    f"this {type(self.endpoint).__name__} already has a transport, on another hub; two hubs "
                    "would each drain its datagrams and drop the other's. To add a transport to it, pass "
                    "the first transport's hub instead of the endpoint (open_ws_server(udp.hub, ...))"
                )
        other = self._routes.get(address_type)
        if other is not None and other is not link:
            raise UsageError(
                f"this endpoint already has a transport for {address_type.__name__} addresses; "
                "one transport per kind of address"
            )

    def detach(self, link: Link) -> None:
        for t in [t for t, owner in self._routes.items() if owner is link]:
            del self._routes[t]
        if not self._routes:
            self._cancel_timer()

    @property
    def links(self) -> list[Link]:
        return list(dict.fromkeys(self._routes.values()))

    def _adopt_loop(self) -> asyncio.AbstractEventLoop | None:
        """Bind to the running loop (None outside one: e.g. a route added to an app at
        import time; the first call from inside the loop binds it). A hub whose transports
        are all gone may move to a new loop; one in use may not."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return self._loop
        if self._loop is not running:
            if self._loop is not None and self._routes and not self._loop.is_closed():
                raise UsageError("this endpoint is already driven by transports on another event loop")
            self._loop = running
            self._timer = None
            self._armed_for = None
        return running

    def now(self) -> float:
        """The time to pass to the endpoint for a call made now (``loop.time()``)."""
        loop = self._loop or self._adopt_loop()
        if loop is None:
            raise UsageError("no event loop: transports run inside asyncio")
        return loop.time()

    # -- the flush rule ---------------------------------------------------------------------
    def receive(self, data: bytes, addr: Address, now: float, link: Link) -> None:
        """A datagram that passed ``link``'s guards: deliver it, then flush.

        The flush runs once at the end of the event loop's current iteration rather than
        after each datagram: the loop hands over every datagram that arrived together
        first, so a busy server drains its queue once per batch, not once per packet."""
        try:
            self.endpoint.receive_datagram(data, addr, now)
        except Exception as exc:  # a bug in the endpoint; the datagram is lost, the server lives
            link.count_drop("internal_error")
            self._internal("receive_datagram", exc)
        if not self._flush_soon:
            self._flush_soon = True
            (self._loop or self._adopt_loop()).call_soon(self._flush_batch)

    def receive_many(self, batch: list[tuple[bytes, Address, float]], link: Link) -> None:
        """Datagrams a polled transport read in one go, each with its arrival time: deliver
        them all, then flush once (as :meth:`receive` does for a batch the loop handed over).
        Endpoints with a ``receive_many(batch, on_error)`` get the batch in one call."""

        def failed(exc: Exception) -> None:
            link.count_drop("internal_error")
            self._internal("receive_datagram", exc)

        receive_batch(self.endpoint, batch, failed)
        if not self._flush_soon:
            self._flush_soon = True
            (self._loop or self._adopt_loop()).call_soon(self._flush_batch)

    def _flush_batch(self) -> None:
        if self._flush_soon:  # (not when a flush came first: a polled server's tick flushes)
            self.flush()

    def flush(self) -> None:
        """Send what the endpoint queued, then re-arm its timer."""
        self._flush_soon = False  # the flush a receive scheduled has nothing left to do
        self._send_queued()
        self._rearm(False)

    def _send_queued(self) -> None:
        try:
            out = self.endpoint.datagrams_to_send()
        except Exception as exc:
            self._internal("datagrams_to_send", exc)
            out = None
        if out:
            self._route(out)

    def _route(self, out: list[tuple[bytes, Address]]) -> None:
        routes = self._routes
        if len(routes) == 1:
            # One transport (every client, most servers): check types, skip the grouping.
            (kind, link), = routes.items()
            if all(type(item[1]) is kind for item in out):
                link.send_batch(out)
                return
        groups: dict[int, tuple[Link, list]] = {}
        for item in out:
            link = routes.get(type(item[1]))
            if link is None:
                self.counters["unroutable"] += 1
                continue
            group = groups.get(id(link))
            if group is None:
                groups[id(link)] = (link, [item])
            else:
                group[1].append(item)
        for link, batch in groups.values():
            link.send_batch(batch)

    # -- the single timer -------------------------------------------------------------------
    def _rearm(self, in_timer: bool) -> None:
        loop = self._loop or self._adopt_loop()
        if loop is None:
            return  # outside the loop: the first flush inside it arms the timer
        try:
            deadline = self.endpoint.next_deadline()
        except Exception as exc:
            self._internal("next_deadline", exc)
            deadline = loop.time() + _RETRY_AFTER_ERROR
        if deadline == self._armed_for and self._timer is not None:
            return  # the common case on a busy server: nothing moved, nothing to do
        self._cancel_timer()
        self._armed_for = deadline
        if deadline is None or not self._routes:
            return
        when = deadline
        if in_timer:
            now = loop.time()
            if when <= now:
                # The endpoint handled its timer and still says it is due: do not spin on it.
                when = now + _MIN_TIMER_STEP
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        due = self._armed_for
        self._timer = None
        self._armed_for = None
        self.counters["timers"] += 1
        # uvloop fires timers up to a millisecond early; the deadline we armed for is the
        # time that has come (otherwise the endpoint is not due yet and we would spin).
        now = self._loop.time()
        if due is not None and now < due:
            now = due
        try:
            self.endpoint.handle_timer(now)
        except Exception as exc:
            self._internal("handle_timer", exc)
        self._send_queued()
        self._rearm(True)

    def replace_endpoint(self, endpoint: Endpoint) -> None:
        """Drive another endpoint over the same transports (a client switching protocol)."""
        self._cancel_timer()
        self.endpoint = endpoint
        self.flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = None

    def close(self) -> None:
        """Stop the timer (transports detach themselves when they close)."""
        self._routes.clear()
        self._cancel_timer()

    # -- errors -----------------------------------------------------------------------------
    def _internal(self, where: str, exc: Exception) -> None:
        self.counters["internal_error"] += 1
        log_once(self._logged, where, exc, type(self.endpoint).__name__, logger=log)

    def stats(self) -> dict:
        return dict(self.counters)


# Hubs that have had a transport attached, only so that a second hub driving the same
# endpoint is refused (require_free); hubs are never looked up here: they are passed.
_driving: weakref.WeakSet[TransportHub] = weakref.WeakSet()


def ensure_hub(target: Endpoint | TransportHub) -> TransportHub:
    """``target`` if it is a hub, else a new hub driving the endpoint ``target``. No lookup:
    every call with an endpoint builds another hub (see the module docstring for sharing
    one endpoint between transports)."""
    if isinstance(target, TransportHub):
        return target
    return TransportHub(target)


def resolve_endpoint(
    target: Endpoint | TransportHub | Callable[[Address], Endpoint],
    server: Address,
) -> TransportHub:
    """Client side: the hub for ``target``: a hub (used as is), an endpoint (a new hub) or a
    factory called with the server address the transport will report for the server's
    datagrams (a new hub for the endpoint it returns).

    An endpoint (or a hub's endpoint) with a ``server`` attribute must already use exactly
    that address, otherwise every datagram from the server would be dropped as coming from
    the wrong source; that mistake is refused here with the address to use.
    """
    if not isinstance(target, TransportHub) and not hasattr(target, "receive_datagram") and callable(target):
        target = target(server)
    hub = ensure_hub(target)
    own = getattr(hub.endpoint, "server", None)
    if own is not None and own != server:
        raise UsageError(
            f"the endpoint's server address is {own!r} but the transport reaches the server as {server!r}; "
            f"construct the endpoint with server={server!r} (or pass a factory taking the address)"
        )
    return hub
