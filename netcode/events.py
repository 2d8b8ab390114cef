"""Events protocol objects report, all frozen dataclasses in this one module.

Protocol objects queue them; the application drains them with ``events()``. Queues are
bounded: when nobody drains them, the oldest are dropped and counted, so a forgotten
queue cannot grow without limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Hashable

__all__ = [
    "Event",
    "EventQueue",
    "Connected",
    "Disconnected",
    "Denied",
    "DesyncDetected",
    "Resynced",
    "PlayerJoined",
    "PlayerLeft",
    "ServerGone",
    "RoomMoved",
]


class Event:
    """Base of the frozen events protocol objects queue (``endpoint.events()``)."""

    __slots__ = ()


@dataclass(frozen=True)
class Connected(Event):
    """A session finished its handshake. Server side: ``conn`` is the new connection's
    handle; client side: ``conn`` is 0. ``info`` is what the server's mode sent along."""

    conn: int
    slot: int  # -1 for spectators
    user: str
    addr: Hashable
    info: bytes = b""
    reconnect: bool = False
    epoch: int = 0  # client side: the server instance's id (a new one: the server restarted)


@dataclass(frozen=True)
class Disconnected(Event):
    conn: int
    slot: int
    reason: str  # "timeout", "peer", "local", "replaced", "kicked: ..."


@dataclass(frozen=True)
class Denied(Event):
    """The server refused the handshake; ``message`` is meant for the player."""

    code: str
    message: str


@dataclass(frozen=True)
class PlayerJoined(Event):
    slot: int
    tick: int


@dataclass(frozen=True)
class PlayerLeft(Event):
    slot: int
    tick: int
    reason: str


@dataclass(frozen=True)
class DesyncDetected(Event):
    """A peer's state hash differs from the server's at ``tick``."""

    tick: int
    slot: int
    expected: int
    got: int


@dataclass(frozen=True)
class Resynced(Event):
    """A client loaded the server's keyframe at ``tick`` and plays on from it."""

    tick: int
    reason: str


@dataclass(frozen=True)
class ServerGone(Event):
    """Client side (:class:`netcode.client.GameClient`): the server stopped answering
    (``reason`` "timeout") or said goodbye (``reason`` "peer: ..."). ``url``: the address it
    had. ``relocating``: the client asks its cluster where the room went (a
    :class:`RoomMoved` follows when it is found); False: the run ends or retries the same
    address."""

    url: str
    reason: str
    relocating: bool = False


@dataclass(frozen=True)
class RoomMoved(Event):
    """Client side: the room now runs at ``url`` (a cluster node resumed it there, or it was
    there all along) and the client reconnects into its old ``slot`` with a fresh token."""

    room: str
    url: str
    old_url: str
    slot: int
    node: str = ""


class EventQueue:
    """Bounded FIFO of events; overflow drops the oldest and counts it."""

    def __init__(self, limit: int = 1024):
        self._q: deque[Any] = deque()
        self.limit = limit
        self.dropped = 0

    def put(self, event: Event) -> None:
        if len(self._q) >= self.limit:
            self._q.popleft()
            self.dropped += 1
        self._q.append(event)

    def drain(self) -> list[Any]:
        out = list(self._q)
        self._q.clear()
        return out

    def __len__(self) -> int:
        return len(self._q)

    def __bool__(self) -> bool:
        return bool(self._q)
