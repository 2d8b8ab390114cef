"""Rooms made at run time, seats, and join-or-create matchmaking (no HTTP here: the routes
in :mod:`netcode.server.http_api` call these).

Seats. A room's player slot is *held* beyond the moment a player is connected:

* ``pending``: the matchmaker handed its token out; the player has ``pending_s`` to connect.
* ``playing``: a session holds it.
* ``reserved``: its player left (timed out, closed the window); it is kept for that user
  for ``reserve_s`` so they can come back (their reconnect token gets a fresh connect token
  for the same slot), then it is free.

:func:`gate_admission` wraps a room's admission so the session layer honours holds: a
player token for a slot held by another user is refused (``seat_taken``), and a token that
names no slot gets the lowest slot nobody holds. Time is the caller's ``now`` (the server's
loop clock), as everywhere below the transports.

Tokens. Join-or-create returns a client token (sealed, naming the slot and a user id so
the client's own reconnects after a timeout keep working, with its session keys beside it)
and a reconnect token: an opaque random string this server keeps, good for as long as the
seat is held. It is not a sealed token on purpose: once the hold lapses and the seat goes
to someone else, it must stop working, and only the server knows that.

Empty rooms that were made at run time (by the API or by matchmaking) close after
``empty_timeout`` seconds with no connection and no held seat; rooms the operator
configured at start stay.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping

from engine.model import Game, GameError

from netcode.errors import TicksyncError, UsageError
from netcode.session import Admission, Refused
from netcode.session.token import TokenClaims, token_to_text

if TYPE_CHECKING:
    from netcode.server.tickserver import Room, TickServer

__all__ = ["ApiError", "MatchmakingConfig", "Matchmaker", "Seat", "Seats", "gate_admission"]

_MAX_NAME = 64


class ApiError(TicksyncError):
    """A request the server refuses (the HTTP client's fault): an HTTP status and a reason for the caller."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after  # seconds, for a refusal that will pass (a 503)


@dataclass(frozen=True)
class MatchmakingConfig:
    """``access``: who may call join-or-create: ``open`` (anyone reaching the HTTP port),
    ``admin`` (the admin key) or ``off``."""

    access: str = "open"
    reserve_s: float = 30.0  # a seat stays held this long after its player left
    pending_s: float = 30.0  # a handed-out seat waits this long for its player
    token_ttl: float = 3600.0  # connect tokens from matchmaking
    empty_timeout: float = 60.0  # run-time rooms close after this long empty
    max_rooms: int = 64
    players: int = 0  # seats in a room matchmaking creates (0: min(8, the game's maximum))

    def __post_init__(self):
        if self.access not in ("open", "admin", "off"):
            raise UsageError(f"matchmaking access {self.access!r}: expected open, admin or off")
        for name in ("reserve_s", "pending_s", "token_ttl", "empty_timeout"):
            if not getattr(self, name) > 0:
                raise UsageError(f"matchmaking {name} must be positive")
        if self.max_rooms < 1 or self.players < 0:
            raise UsageError("matchmaking max_rooms must be >= 1 and players >= 0")


@dataclass
class Seat:
    user: str
    state: str  # pending, playing, reserved
    until: float  # pending / reserved: when the hold lapses (loop time)
    reconnect: str  # this seat's reconnect token


class Seats:
    """Who holds which player slot of one room (see the module docstring)."""

    def __init__(self, players: int, reserve_s: float, pending_s: float):
        self.players = players
        self.reserve_s = reserve_s
        self.pending_s = pending_s
        self.held: dict[int, Seat] = {}

    def sweep(self, now: float, present) -> list[str]:
        """Bring holds up to date with who is connected; returns the reconnect tokens of
        holds that lapsed."""
        lapsed = []
        for slot, seat in list(self.held.items()):
            if present[slot]:
                seat.state = "playing"
            elif seat.state == "playing":
                seat.state, seat.until = "reserved", now + self.reserve_s
            elif now >= seat.until:
                del self.held[slot]
                lapsed.append(seat.reconnect)
        return lapsed

    def free(self, present) -> list[int]:
        """Slots nobody holds or plays (call :meth:`sweep` first)."""
        return [s for s in range(self.players) if s not in self.held and not present[s]]

    def slot_of(self, user: str) -> int | None:
        for slot, seat in self.held.items():
            if user and seat.user == user:
                return slot
        return None

    def hand_out(self, slot: int, user: str, now: float) -> Seat:
        seat = self.held.get(slot)
        if seat is None or seat.user != user:
            seat = Seat(user, "pending", now + self.pending_s, secrets.token_urlsafe(18))
            self.held[slot] = seat
        elif seat.state != "playing":
            seat.state, seat.until = "pending", now + self.pending_s
        return seat

    def admitted(self, slot: int, user: str) -> None:
        seat = self.held.get(slot)
        if seat is None or seat.user != user:
            self.held[slot] = Seat(user, "playing", 0.0, secrets.token_urlsafe(18))
        else:
            seat.state = "playing"

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "playing": 0, "reserved": 0}
        for seat in self.held.values():
            out[seat.state] += 1
        return out


def gate_admission(seats: Seats, present, admit: Callable[[TokenClaims, Hashable, float], Admission]):
    """``admit`` (a mode server's admission) behind the seat holds of ``seats``."""

    def gated(claims: TokenClaims, addr: Hashable, now: float) -> Admission:
        if claims.spectator:
            return admit(claims, addr, now)
        seats.sweep(now, present)
        slot = claims.slot
        if slot == -1:
            slot = seats.slot_of(claims.user)
            if slot is None:
                free = seats.free(present)
                if not free:
                    raise Refused("room_full", f"all {seats.players} player seats are taken or held for players coming back")
                slot = free[0]
            claims = dataclasses.replace(claims, slot=slot)
        seat = seats.held.get(slot)
        if seat is not None and seat.user != claims.user:
            raise Refused("seat_taken", f"seat {slot} is held for another player")
        admission = admit(claims, addr, now)
        seats.admitted(admission.slot, claims.user)
        return admission

    return gated


@dataclass(frozen=True)
class GameEntry:
    """A game this server may make rooms of: its import path and the loaded game."""

    path: str
    game: Game


class Matchmaker:
    """Room creation, join-or-create and reconnects for one :class:`TickServer`."""

    def __init__(self, server: "TickServer", config: MatchmakingConfig = MatchmakingConfig()):
        self.server = server
        self.config = config
        self.games: dict[str, GameEntry] = {}  # by game name and by import path
        self._reconnects: dict[str, tuple[str, int]] = {}  # reconnect token -> (room, slot)
        self._made = 0
        self.name_tag = ""  # in fresh room names: a cluster node's id, so nodes never make the same name

    # -- games --------------------------------------------------------------------------------
    def register_game(self, game: Game, path: str = "") -> None:
        entry = GameEntry(path or type(game).__module__, game)
        self.games[game.name] = entry
        self.games[entry.path] = entry

    def game(self, key: Any) -> GameEntry:
        if not isinstance(key, str) or not key:
            raise ApiError(400, "'game' (a game name or import path) is required")
        entry = self.games.get(key)
        if entry is None:
            hosted = sorted({e.game.name for e in self.games.values()})
            raise ApiError(404, f"unknown game {key!r} (this server hosts: {', '.join(hosted) or 'none'})")
        return entry

    # -- rooms --------------------------------------------------------------------------------
    def create_room(self, spec: Mapping[str, Any], *, temporary: bool = True) -> "Room":
        """A room from a JSON object: name?, game, mode?, tick_rate?, players?, seed?, options?"""
        from netcode.server.tickserver import MODES, RoomConfig

        known = {"name", "game", "mode", "tick_rate", "players", "seed", "options"}
        extra = sorted(set(spec) - known)
        if extra:
            raise ApiError(400, f"unknown field(s) {', '.join(extra)} (a room takes: {', '.join(sorted(known))})")
        entry = self.game(spec.get("game"))
        mode = spec.get("mode", "statesync" if entry.game.replication is not None else "lockstep")
        if mode not in MODES:
            raise ApiError(400, f"unknown mode {mode!r} (available: {', '.join(sorted(MODES))})")
        if mode == "statesync" and entry.game.replication is None:
            raise ApiError(400, f"{entry.game.name} declares no replication spec: it runs in lockstep only")
        players = _int(spec, "players", self.config.players or min(8, entry.game.max_players), 1, entry.game.max_players)
        tick_rate = _int(spec, "tick_rate", entry.game.tick_rate, 1, 1000)
        seed = _int(spec, "seed", 1, -(2**63), 2**63 - 1)
        options = spec.get("options", {})
        if not isinstance(options, dict):
            raise ApiError(400, "'options' must be an object (the mode's config fields)")
        name = spec.get("name")
        if name is None:
            name = self._fresh_name(entry.game.name, mode)
        if not isinstance(name, str) or not name or len(name.encode()) > _MAX_NAME:
            raise ApiError(400, f"'name' must be a string of 1..{_MAX_NAME} bytes")
        if name in self.server.rooms:
            raise ApiError(409, f"room {name!r} already exists")
        if len(self.server.rooms) >= self.config.max_rooms:
            raise ApiError(503, f"this server holds its maximum of {self.config.max_rooms} rooms")
        config = RoomConfig(name=name, mode=mode, players=players, seed=seed, tick_rate=tick_rate, game_path=entry.path, options=options)
        try:
            room = self.server.add_room(entry.game, config)
        except TypeError as exc:  # an option the mode's config does not take
            raise ApiError(400, f"bad 'options' for {mode}: {exc}") from None
        except (UsageError, GameError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        room.temporary = temporary
        return room

    def _fresh_name(self, game: str, mode: str) -> str:
        while True:
            self._made += 1
            name = f"{game}-{mode}-{self.name_tag}{self._made}"
            if name not in self.server.rooms:
                return name

    # -- matchmaking ----------------------------------------------------------------------------
    def join_or_create(self, body: Mapping[str, Any], now: float) -> dict:
        """A seat for ``body["user"]`` (or a fresh user id) in a room running ``body["game"]``
        in ``body["mode"]``: the room named by ``body["room"]``, else the fullest open room
        with a free seat, else a new room."""
        user, mode = self.join_fields(body)
        if "room" in body:
            room = self.server.rooms.get(body["room"]) if isinstance(body["room"], str) else None
            if room is None:
                raise ApiError(404, f"no such room {body['room']!r}")
            if room.status not in ("created", "running"):
                raise ApiError(409, f"room {room.name!r} is not running ({room.status})")
            slot = self._seat_in(room, user, now)
            if slot is None:
                raise ApiError(409, f"room {room.name!r} is full: all {room.config.players} seats are taken or held")
            return self._ticket(room, slot, user, now, created=False)
        entry = self.game(body.get("game"))
        best: tuple[int, Room, int] | None = None
        for room in self.server.rooms.values():
            if room.game.name != entry.game.name or room.game.version != entry.game.version:
                continue
            if (mode is not None and room.config.mode != mode) or room.status not in ("created", "running"):
                continue
            room.seats.sweep(now, room.mode.present)
            mine = room.seats.slot_of(user)
            if mine is not None:
                return self._ticket(room, mine, user, now, created=False)
            free = room.seats.free(room.mode.present)
            if free:
                filled = room.config.players - len(free)
                if best is None or filled > best[0]:
                    best = (filled, room, free[0])
        if best is not None:
            return self._ticket(best[1], best[2], user, now, created=False)
        spec = {"game": entry.path} if mode is None else {"game": entry.path, "mode": mode}
        room = self.create_room(spec)
        return self._ticket(room, 0, user, now, created=True)

    def join_fields(self, body: Mapping[str, Any]) -> tuple[str, str | None]:
        """A join request's user (a fresh id when it names none) and mode, checked."""
        extra = sorted(set(body) - {"game", "mode", "user", "room"})
        if extra:
            raise ApiError(400, f"unknown field(s) {', '.join(extra)} (join takes game, mode, user, room)")
        user = body.get("user") or "mm-" + secrets.token_hex(6)
        if not isinstance(user, str) or len(user.encode()) > _MAX_NAME:
            raise ApiError(400, f"'user' must be a string of at most {_MAX_NAME} bytes")
        mode = body.get("mode")
        if mode is not None and not isinstance(mode, str):
            raise ApiError(400, "'mode' must be a string")
        return user, mode

    def _seat_in(self, room: "Room", user: str, now: float) -> int | None:
        room.seats.sweep(now, room.mode.present)
        mine = room.seats.slot_of(user)
        if mine is not None:
            return mine
        free = room.seats.free(room.mode.present)
        return free[0] if free else None

    def reconnect(self, body: Mapping[str, Any], now: float) -> dict:
        token = body.get("reconnect_token")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "'reconnect_token' (a string) is required")
        where = self._reconnects.get(token)
        room = self.server.rooms.get(where[0]) if where else None
        if room is not None:
            room.seats.sweep(now, room.mode.present)
            seat = room.seats.held.get(where[1])
            if seat is not None and seat.reconnect == token:
                return self._ticket(room, where[1], seat.user, now, created=False)
        self._reconnects.pop(token, None)
        raise ApiError(410, "that seat is no longer held (the hold lapsed or the room closed): join again")

    def restore_seat(self, room: "Room", slot: int, user: str, reconnect: str, now: float) -> None:
        """Hold ``slot`` of ``room`` for ``user`` coming back with ``reconnect`` (their
        reconnect token from the node that ran the room before it was resumed here)."""
        if not 0 <= slot < room.config.players or slot in room.seats.held:
            return
        room.seats.held[slot] = Seat(user, "reserved", now + self.config.reserve_s, reconnect)
        self._reconnects[reconnect] = (room.name, slot)

    def _ticket(self, room: "Room", slot: int, user: str, now: float, *, created: bool) -> dict:
        seat = room.seats.hand_out(slot, user, now)
        self._reconnects[seat.reconnect] = (room.name, slot)
        server = self.server
        token = server.mint_token(room.name, slot=slot, user=user, ttl=self.config.token_ttl)
        return {
            "room": room.name,
            "created": created,
            "game": room.game.name,
            "game_version": room.game.version,
            "mode": room.config.mode,
            "slot": slot,
            "user": user,
            "token": token_to_text(token),
            "token_ttl": self.config.token_ttl,
            "reconnect_token": seat.reconnect,
            "seat_held_s": self.config.reserve_s,
            "udp": server.udp_url,
            "ws": server.ws_url,
        }

    # -- housekeeping ---------------------------------------------------------------------------
    def sweep(self, now: float) -> list[str]:
        """Update every room's holds; returns the run-time rooms that have been empty for
        ``empty_timeout`` (the caller closes them)."""
        expired = []
        for room in self.server.rooms.values():
            for token in room.seats.sweep(now, room.mode.present):
                self._reconnects.pop(token, None)
            if not room.temporary:
                continue
            if room.mode.session.connections or room.seats.held:
                room.empty_since = None
            elif room.empty_since is None:
                room.empty_since = now
            elif now - room.empty_since >= self.config.empty_timeout:
                expired.append(room.name)
        return expired

    def forget_room(self, name: str) -> None:
        for token in [t for t, (r, _) in self._reconnects.items() if r == name]:
            del self._reconnects[token]


def _int(spec: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = spec.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ApiError(400, f"'{key}' must be an integer in {low}..{high}")
    return value
