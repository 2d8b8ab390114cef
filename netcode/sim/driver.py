"""Run sans-IO protocol endpoints over a :class:`~netcode.sim.network.NetSim` on virtual time.

This is the test/bench stand-in for a transport plus an event loop: it binds endpoints to
addresses, moves virtual time from event to event (packet arrivals, endpoint deadlines,
periodic ticks) and applies the one flush rule of every ticksync transport: after a
datagram is delivered, a timer fires or a tick runs, drain what the endpoint queued into
the network and re-arm its timer. It knows nothing of any particular protocol.

Order of events at one instant, so runs are reproducible: packet arrivals (arrival order,
ties in send order), then due endpoint timers (deadline order, ties in the order endpoints
were added), then due tickers (in the order they were registered). Anything those produce
for the same instant (e.g. zero-latency replies) runs in the next round at that instant.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable

from netcode.endpoint import Endpoint
from netcode.sim.network import Address, NetSim

__all__ = ["Endpoint", "Ticker", "VirtualNetwork"]

class Ticker:
    """A periodic callback: fires at ``start + k * interval`` for k = 0, 1, 2, ...
    (computed, never accumulated, so it does not drift)."""

    __slots__ = ("interval", "callback", "start", "order", "k", "cancelled")

    def __init__(self, interval: float, callback: Callable[[float], None], start: float, order: int):
        self.interval = interval
        self.callback = callback
        self.start = start
        self.order = order  # registration order: breaks ties between tickers due together
        self.k = 0
        self.cancelled = False

    @property
    def due(self) -> float:
        return self.start + self.k * self.interval

    def cancel(self) -> None:
        self.cancelled = True


class VirtualNetwork:
    """Endpoints bound to addresses, exchanging datagrams through ``sim`` on virtual time.

    ``now`` only moves forward, and only inside :meth:`run_until` / :meth:`run_for`.
    After calling a method on an endpoint yourself, call :meth:`flush` (or
    :meth:`flush_all`) so what it queued is sent and its deadline re-read.
    """

    # Events processed without virtual time advancing before we call it a livelock (an
    # endpoint whose next_deadline() stays <= now after handle_timer, or a zero-latency
    # ping-pong loop) and raise instead of hanging. Far above any legitimate burst.
    max_events_per_instant: int = 100_000

    def __init__(self, sim: NetSim, start: float = 100.0):
        self.sim = sim
        self.now = float(start)
        self.undeliverable = 0  # datagrams that arrived at an address with no endpoint
        self.events = 0  # deliveries + timer fires + ticks processed
        self._endpoints: dict[Address, Endpoint] = {}
        self._order: dict[Address, int] = {}  # tie-break and identity of each add()
        self._deadline: dict[Address, float | None] = {}  # armed deadline per endpoint
        self._timers: list[tuple[float, int, int, Address]] = []  # (deadline, order, seq, addr)
        self._tickers: list[tuple[float, int, Ticker]] = []
        self._seq = itertools.count()

    # -- endpoints -----------------------------------------------------------------------

    def add(self, addr: Address, endpoint: Endpoint) -> None:
        """Bind ``endpoint`` to ``addr``; sends whatever it already queued."""
        if addr in self._endpoints:
            raise ValueError(f"address {addr!r} already has an endpoint")
        self._endpoints[addr] = endpoint
        self._order[addr] = next(self._seq)
        self._deadline[addr] = None
        self._flush(addr, endpoint)

    def remove(self, addr: Address) -> Endpoint:
        """Unbind and return the endpoint at ``addr``; later datagrams to it are undeliverable."""
        endpoint = self._endpoints.pop(addr)
        del self._order[addr], self._deadline[addr]  # its heap entries go stale
        return endpoint

    def __getitem__(self, addr: Address) -> Endpoint:
        return self._endpoints[addr]

    def __contains__(self, addr: Address) -> bool:
        return addr in self._endpoints

    def flush(self, addr: Address) -> None:
        """Send what the endpoint at ``addr`` has queued and re-arm its timer."""
        self._flush(addr, self._endpoints[addr])

    def flush_all(self) -> None:
        for addr, endpoint in list(self._endpoints.items()):
            if self._endpoints.get(addr) is endpoint:  # an earlier flush may have removed it
                self._flush(addr, endpoint)

    def _flush(self, addr: Address, endpoint: Endpoint) -> None:
        now, send = self.now, self.sim.send
        for data, dst in endpoint.datagrams_to_send():
            send(addr, dst, data, now)
        deadline = endpoint.next_deadline()
        if deadline != self._deadline[addr]:
            self._deadline[addr] = deadline
            if deadline is not None:
                heapq.heappush(self._timers, (deadline, self._order[addr], next(self._seq), addr))

    # -- time ----------------------------------------------------------------------------

    def every(self, interval: float, callback: Callable[[float], None], *, start: float | None = None) -> Ticker:
        """Call ``callback(now)`` at ``start + k * interval`` (``start`` defaults to ``now``)
        until the returned :class:`Ticker` is cancelled; every endpoint is flushed after
        each call, since the callback may call any of them (e.g. a server tick and client
        updates)."""
        if not interval > 0:
            raise ValueError(f"ticker interval must be > 0, got {interval!r}")
        ticker = Ticker(interval, callback, self.now if start is None else float(start), next(self._seq))
        heapq.heappush(self._tickers, (ticker.due, ticker.order, ticker))
        return ticker

    def run_for(self, duration: float, **kwargs: object) -> None:
        self.run_until(self.now + duration, **kwargs)  # type: ignore[arg-type]

    def run_until(
        self,
        t: float,
        *,
        tick: Callable[[float], None] | None = None,
        tick_interval: float | None = None,
    ) -> None:
        """Process every event due at or before ``t``, in order, then set ``now = t``.

        ``tick``/``tick_interval``: a ticker for this call only, firing at
        ``now + k * tick_interval`` for k >= 1 (so back-to-back calls never tick twice at
        the boundary). For long runs prefer one :meth:`every` ticker, which keeps its phase.
        """
        ticker = None
        if tick is not None:
            if tick_interval is None:
                raise ValueError("run_until(tick=...) needs tick_interval")
            ticker = self.every(tick_interval, tick, start=self.now + tick_interval)
        try:
            self._run(t)
        finally:
            if ticker is not None:
                ticker.cancel()
        if t > self.now:
            self.now = t

    def _next_event_time(self) -> float | None:
        timers, tickers = self._timers, self._tickers
        while timers:  # discard stale timer entries (re-armed, fired or removed endpoints)
            deadline, order, _, addr = timers[0]
            if self._order.get(addr) == order and self._deadline.get(addr) == deadline:
                break
            heapq.heappop(timers)
        while tickers and tickers[0][2].cancelled:
            heapq.heappop(tickers)
        best = self.sim.next_delivery_time()
        if timers and (best is None or timers[0][0] < best):
            best = timers[0][0]
        if tickers and (best is None or tickers[0][0] < best):
            best = tickers[0][0]
        return best

    def _run(self, t: float) -> None:
        sim, endpoints, flush = self.sim, self._endpoints, self._flush
        timers, tickers = self._timers, self._tickers
        at_instant = 0
        while True:
            nxt = self._next_event_time()
            if nxt is None or nxt > t:
                return
            if nxt > self.now:  # an overdue deadline (< now) fires at now
                self.now = nxt
                at_instant = 0
            now = self.now
            n = 0

            for dst, src, data in sim.deliver(now):
                n += 1
                endpoint = endpoints.get(dst)
                if endpoint is None:
                    self.undeliverable += 1
                    continue
                endpoint.receive_datagram(data, src, now)
                flush(dst, endpoint)

            while timers and timers[0][0] <= now:
                deadline, order, _, addr = heapq.heappop(timers)
                if self._order.get(addr) != order or self._deadline.get(addr) != deadline:
                    continue  # stale
                self._deadline[addr] = None  # consumed: the flush re-arms it
                n += 1
                if at_instant + n > self.max_events_per_instant:
                    self._stuck(now, at_instant + n, addr)
                endpoint = endpoints[addr]
                endpoint.handle_timer(now)
                flush(addr, endpoint)

            while tickers and tickers[0][0] <= now:
                _, _, ticker = heapq.heappop(tickers)
                if ticker.cancelled:
                    continue
                n += 1
                ticker.callback(now)
                ticker.k += 1
                heapq.heappush(tickers, (ticker.due, ticker.order, ticker))
                self.flush_all()

            self.events += n
            at_instant += n
            if at_instant > self.max_events_per_instant:
                self._stuck(now, at_instant, None)

    @staticmethod
    def _stuck(now: float, events: int, addr: Address | None) -> None:
        who = f" (last timer: endpoint {addr!r})" if addr is not None else ""
        raise RuntimeError(
            f"virtual time stuck at {now!r}: {events} events without advancing{who}; an "
            "endpoint whose next_deadline() stays <= now after handle_timer, or a "
            "zero-latency message loop?"
        )
