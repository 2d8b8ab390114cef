"""The sans-IO endpoint interface: what transports and the simulator drive.

Every protocol object (session, lockstep and state-sync servers and clients, the room
router) offers these four methods and never reads a clock, sleeps or touches a socket.
Whoever drives it follows one rule: after a datagram, a user call or a timer, drain
``datagrams_to_send()``, send them, and re-arm a timer at ``next_deadline()``.
"""

from __future__ import annotations

from typing import Hashable, Protocol

__all__ = ["Address", "Endpoint"]

Address = Hashable


class Endpoint(Protocol):
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain and return the outgoing queue as ``(data, destination)`` pairs."""
        ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...
