"""Several rooms behind one socket: a sans-IO router in front of the rooms' mode servers.

A UDP port (or a WebSocket route) is one address space, but every room has its own session
server: its own slots, connections and token check. The :class:`RoomRouter` is the one
endpoint the transports drive, and forwards

* handshake requests (CONNECT_REQUEST / CHALLENGE_RESPONSE) to the room named in the
  connect token. The claim is read *without* checking the signature and is used for routing
  only: the room's session verifies the whole token again (its room claim included), so a
  forged claim can at most reach a room that then refuses it. A request naming a room we do
  not host gets a DENIED no bigger than the request, as the session itself would answer,
  so the router cannot be used to amplify traffic toward a spoofed address.
* session packets to the room that accepted their source address. The address -> room map
  is filled when a room accepts a handshake, and pruned lazily: an entry whose room no
  longer has a session at that address goes on its next packet or at the next sweep.
* timers: the router's deadline is the earliest of its rooms'; when it fires, only the
  rooms that are due run theirs.

Outgoing datagrams are collected only from rooms touched since the last flush (a datagram
delivered, a timer, or :meth:`RoomRouter.touch` after the owner called the room itself, e.g.
its tick), so a flush costs O(rooms touched), not O(rooms). One room raising (a bug) is
counted and logged and does not stop the others.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable, Protocol

from netcode.endpoint import receive_batch
from netcode.errors import ProtocolError
from netcode.logs import log_once
from netcode.session.handshake import pack_denied, parse_request, request_nonce, request_size
from netcode.session.token import peek_room
from netcode.session.wire import MAX_PACKET, PROTOCOL_ID, PROTOCOL_VERSION, PacketType, parse_prefix

__all__ = ["RoomEndpoint", "RoomRouter", "Traffic"]

log = logging.getLogger("ticksync.rooms")

Address = Hashable

_SWEEP_EVERY = 1.0  # seconds between prunes of the address map
_SESSION_TYPES = frozenset(int(t) for t in PacketType if t >= 0x10)


def _is_session_packet(data: bytes) -> bool:
    """What ``parse_prefix`` accepts as a session (not handshake) packet, read in place."""
    return 4 <= len(data) <= MAX_PACKET and data[0] | data[1] << 8 == PROTOCOL_ID and data[3] & 0x7F in _SESSION_TYPES


class RoomEndpoint(Protocol):
    """What the router needs of a room's mode server (LockstepServer, StateSyncServer)."""

    session: object  # its SessionServer: connection_at(addr), disconnect(conn, now, reason)

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def address_closed(self, addr: Address, now: float, reason: str) -> None: ...


@dataclass
class Traffic:
    """Datagrams and bytes through the router for one room (handshakes included)."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0


class RoomRouter:
    """One endpoint in front of many rooms (see the module docstring)."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomEndpoint] = {}
        self.traffic: dict[str, Traffic] = {}
        self.dropped: Counter = Counter()  # datagrams no room saw, by reason
        self.denied: Counter = Counter()  # handshakes the router itself refused, by code
        self.internal_errors: Counter = Counter()  # by room: exceptions a room raised
        self._by_addr: dict[Address, str] = {}
        self._dirty: dict[str, RoomEndpoint] = {}  # touched since the last drain (ordered)
        self._deadlines: dict[str, float] = {}  # rooms that have one
        self._out: list[tuple[bytes, Address]] = []
        self._next_sweep: float | None = None
        self._logged: set[tuple[str, type]] = set()

    # -- rooms ------------------------------------------------------------------------------
    def add(self, name: str, room: RoomEndpoint) -> None:
        if name in self.rooms:
            raise ValueError(f"room {name!r} already exists")
        self.rooms[name] = room
        self.traffic[name] = Traffic()
        self._dirty[name] = room  # it may already have queued datagrams or a deadline

    def remove(self, name: str) -> RoomEndpoint:
        """Forget a room (close its sessions and drain it first)."""
        room = self.rooms.pop(name)
        self._dirty.pop(name, None)
        self._deadlines.pop(name, None)
        for addr in [a for a, n in self._by_addr.items() if n == name]:
            del self._by_addr[addr]
        return room

    def touch(self, name: str) -> None:
        """The owner called room ``name`` directly (a tick, a disconnect): include it in the
        next flush and refresh its deadline."""
        room = self.rooms.get(name)
        if room is not None:
            self._dirty[name] = room

    def room_of(self, addr: Address) -> str | None:
        """The room holding a session for ``addr``, as far as the router knows."""
        return self._by_addr.get(addr)

    # -- endpoint interface -------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        try:
            version, ptype = parse_prefix(data)
        except ProtocolError as exc:
            self.dropped[exc.reason] += 1
            return
        if ptype is PacketType.CONNECT_REQUEST or ptype is PacketType.CHALLENGE_RESPONSE:
            self._handshake(data, addr, now, version, ptype)
            return
        if ptype.is_handshake:  # CHALLENGE / ACCEPTED / DENIED: only servers send those
            self.dropped["unexpected_type"] += 1
            return
        name = self._by_addr.get(addr)
        room = self.rooms.get(name) if name is not None else None
        if room is None:
            self.dropped["no_session"] += 1
            if name is not None:
                del self._by_addr[addr]
            return
        self._deliver(name, room, [(data, addr, now)])
        if self._session_at(name, room, addr) is None:
            self._by_addr.pop(addr, None)  # that packet ended the session (a DISCONNECT)

    def receive_many(self, batch, on_error: Callable[[Exception], None] | None = None) -> None:
        """A polled transport's ``(data, addr, now)`` batch. Session packets from addresses
        with a room go to that room in one ``receive_many`` call per room (in arrival
        order); anything else (handshakes, strangers, malformed prefixes) as
        :meth:`receive_datagram`, after the rooms got what arrived before it."""
        runs: dict[str, list] = {}
        by_addr, rooms = self._by_addr, self.rooms
        for item in batch:
            data = item[0]
            name = by_addr.get(item[1])
            if name is not None and name in rooms and _is_session_packet(data):
                run = runs.get(name)
                if run is None:
                    runs[name] = [item]
                else:
                    run.append(item)
                continue
            if runs:
                self._deliver_runs(runs)
                runs = {}
            try:
                self.receive_datagram(*item)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
        if runs:
            self._deliver_runs(runs)

    def _deliver_runs(self, runs: dict[str, list]) -> None:
        for name, run in runs.items():
            room = self.rooms[name]
            self._deliver(name, room, run)
            # Of session packets only a DISCONNECT ends a session on arrival; forget the
            # address as receive_datagram does. (Other endings are pruned by the sweep.)
            for data, addr, _now in run:
                if data[3] & 0x7F == PacketType.DISCONNECT and self._session_at(name, room, addr) is None:
                    self._by_addr.pop(addr, None)

    def _handshake(self, data: bytes, addr: Address, now: float, version: int, ptype: PacketType) -> None:
        if len(data) < request_size(version):
            # Unpadded: never answered, a reply could be bigger than what came in.
            self.dropped["short_request"] += 1
            return
        if version != PROTOCOL_VERSION:
            # The body of another version may not parse; answer as the session would.
            msg = f"server speaks ticksync protocol {PROTOCOL_VERSION}, you speak {version}: update one of them"
            self._deny(addr, request_nonce(data), "protocol_version", msg, len(data))
            return
        try:
            req = parse_request(data, response=ptype is PacketType.CHALLENGE_RESPONSE)
        except ProtocolError as exc:
            self.dropped[exc.reason] += 1
            return
        name = peek_room(req.token)
        if name is None:
            self._deny(addr, req.nonce, "bad_token", "connect token refused: it names no room", len(data))
            return
        room = self.rooms.get(name)
        if room is None:
            self._deny(addr, req.nonce, "no_such_room", f"no such room {name!r} on this server", len(data))
            return
        self._deliver(name, room, [(data, addr, now)])
        if self._session_at(name, room, addr) is None:
            return  # challenged, denied, or not yet accepted
        previous = self._by_addr.get(addr)
        if previous != name:
            self._by_addr[addr] = name
            if self._next_sweep is None:
                self._next_sweep = now + _SWEEP_EVERY
            if previous is not None and previous in self.rooms:
                # The same address moved to another room: end its session in the old one
                # now rather than after its timeout, freeing the slot.
                self._end_session(previous, addr, now, "moved to another room")

    def _deny(self, addr: Address, nonce: int, code: str, message: str, limit: int) -> None:
        self.denied[code] += 1
        self._out.append((pack_denied(nonce, code, message, limit=limit), addr))

    def _deliver(self, name: str, room: RoomEndpoint, run: list) -> None:
        """Hand a room ``(data, addr, now)`` datagrams, in order: in one ``receive_many`` call
        where the room has it. A room raising (a bug) is counted and logged; the datagram is
        lost, the others still go, the server lives."""
        t = self.traffic[name]
        t.packets_in += len(run)
        t.bytes_in += sum(len(item[0]) for item in run)
        self._dirty[name] = room
        receive_batch(room, run, lambda exc: self._internal(name, "receive_datagram", exc))

    def _session_at(self, name: str, room: RoomEndpoint, addr: Address):
        try:
            return room.session.connection_at(addr)  # type: ignore[attr-defined]
        except Exception as exc:
            self._internal(name, "connection_at", exc)
            return None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        if not self._dirty:
            return out
        dirty, self._dirty = self._dirty, {}
        for name, room in dirty.items():
            try:
                batch = room.datagrams_to_send()
            except Exception as exc:
                self._internal(name, "datagrams_to_send", exc)
                batch = None
            if batch:
                t = self.traffic[name]
                t.packets_out += len(batch)
                t.bytes_out += sum(len(d) for d, _ in batch)
                out.extend(batch)
            self._refresh_deadline(name, room)
        return out

    def _refresh_deadline(self, name: str, room: RoomEndpoint) -> None:
        try:
            deadline = room.next_deadline()
        except Exception as exc:
            self._internal(name, "next_deadline", exc)
            deadline = None
        if deadline is None:
            self._deadlines.pop(name, None)
        else:
            self._deadlines[name] = deadline

    def next_deadline(self) -> float | None:
        for name, room in self._dirty.items():  # normally empty: the hub drains first
            self._refresh_deadline(name, room)
        best = min(self._deadlines.values(), default=None)
        if self._by_addr and self._next_sweep is not None:
            best = self._next_sweep if best is None else min(best, self._next_sweep)
        return best

    def handle_timer(self, now: float) -> None:
        due = [name for name, d in self._deadlines.items() if d <= now]
        for name in due:
            room = self.rooms[name]
            self._dirty[name] = room
            try:
                room.handle_timer(now)
            except Exception as exc:
                self._internal(name, "handle_timer", exc)
        if self._next_sweep is not None and now >= self._next_sweep:
            self.sweep()
            self._next_sweep = now + _SWEEP_EVERY if self._by_addr else None

    def address_closed(self, addr: Address, now: float) -> None:
        """A transport says ``addr`` is gone (a WebSocket closed): end its session now."""
        name = self._by_addr.pop(addr, None)
        if name is not None and name in self.rooms:
            self._end_session(name, addr, now, "transport closed")

    def _end_session(self, name: str, addr: Address, now: float, reason: str) -> None:
        room = self.rooms[name]
        self._dirty[name] = room
        try:
            room.address_closed(addr, now, reason)
        except Exception as exc:
            self._internal(name, "address_closed", exc)

    def sweep(self) -> int:
        """Drop map entries whose room no longer has a session there; returns how many."""
        stale = [
            addr
            for addr, name in self._by_addr.items()
            if name not in self.rooms or self._session_at(name, self.rooms[name], addr) is None
        ]
        for addr in stale:
            del self._by_addr[addr]
        return len(stale)

    # -- inspection ---------------------------------------------------------------------------
    def _internal(self, name: str, where: str, exc: Exception) -> None:
        self.internal_errors[name] += 1
        log_once(self._logged, where, exc, f"room {name!r}", logger=log, outcome="counted, the other rooms carry on")

    def stats(self) -> dict:
        return {
            "rooms": len(self.rooms),
            "routes": len(self._by_addr),
            "dropped": dict(self.dropped),
            "denied": dict(self.denied),
            "internal_errors": dict(self.internal_errors),
        }
