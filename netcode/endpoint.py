"""The sans-IO endpoint interface: what transports and the simulator drive.

Every protocol object (session, lockstep and state-sync servers and clients, the room
router) offers these four methods and never reads a clock, sleeps or touches a socket.
Whoever drives it follows one rule: after a datagram, a user call or a timer, drain
``datagrams_to_send()``, send them, and re-arm a timer at ``next_deadline()``.
"""

from __future__ import annotations

from typing import Callable, Hashable, Protocol

__all__ = ["Address", "Endpoint", "receive_batch"]

Address = Hashable


class Endpoint(Protocol):
    """What every sans-IO protocol object offers a transport: datagrams in, datagrams
    out, a timer, all with time passed in."""

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain and return the outgoing queue as ``(data, destination)`` pairs."""
        ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


def receive_batch(endpoint, batch: list, on_error: Callable[[Exception], None]) -> None:
    """Hand ``endpoint`` some ``(data, addr, now)`` datagrams in arrival order: in one
    ``receive_many(batch, on_error)`` call where it has one (servers that take a polled
    socket's read at once), else one ``receive_datagram`` each. A datagram whose handling
    raises is reported to ``on_error`` and the rest still go."""
    many = getattr(endpoint, "receive_many", None)
    if many is not None:
        try:
            many(batch, on_error)
        except Exception as exc:  # a bug outside the endpoint's per-datagram guard
            on_error(exc)
        return
    deliver = endpoint.receive_datagram
    for data, addr, now in batch:
        try:
            deliver(data, addr, now)
        except Exception as exc:
            on_error(exc)
