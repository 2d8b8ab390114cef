"""Rooms across processes and machines: a :class:`TickServer` joined to a cluster over Redis.

Every node (``ticksync serve --redis redis://HOST:PORT``) keeps one record in Redis, rewritten
each ``heartbeat_s`` with a time to live of ``ttl_s``::

    ticksync:node:<id>   JSON {"id", "http", "udp", "ws", "games", "max_rooms", "players",
                         "rooms": [{"name", "game", "mode", "status", "players", "slots",
                         "seats", "users", ...}], "beat"}          (SET ... PX ttl)
    ticksync:nodes       the set of node ids (a member whose record expired is a node gone)
    ticksync:events      pub/sub channel: {"event": node_joined | node_gone | room_created |
                         room_closed, "node", "room"?, "reason"?}
    ticksync:recordings  hash: room -> {"node", "path", "game_path"} of every recorded match
                         running (gone when it ends: a room closed, a node stopped cleanly)
    ticksync:seats:<room>        hash: slot -> {"user", "reconnect"}, the seat holds of a
                         recorded room (rewritten each beat), which move with it when resumed
    ticksync:reconnect:<token>   JSON {"room", "slot", "user"} of a seat handed out here
                         (PX the token's lifetime): which room a reconnect token is for

A node's rooms live inside its record, so when a node dies (kill -9, a lost machine) its
rooms leave every listing the moment its record expires: nothing else to clean up. The
first node to notice an expired member removes it from the set and announces
``node_gone``.

Listing (``GET /api/rooms``) and join-or-create (``POST /api/matchmake``) on any node read
every live record. A join goes to the fullest open room of the game anywhere; with none,
the new room is made on the least-loaded node hosting the game (fewest rooms for its
capacity, then fewest players; this node on a tie). A seat on another node is asked of
that node over its HTTP API (the same ``POST /api/matchmake``, carrying the admin key and
``X-Ticksync-Forwarded`` so the owner answers from its own rooms): the answer is the
owner's own, with its UDP/WebSocket addresses and a token it signed. Every node must
therefore share the admin key; tokens are always signed by the node that owns the room.

Room names made at run time carry the node id, so two nodes never make the same name;
rooms named by the operator are checked against the cluster at start and on
``POST /api/rooms``.

Crash resume (``--adopt``): when a node is gone, each node that adopts and hosts the game
tries to take that node's recorded matches, one ``SET NX`` lock per match, and the winner
restarts the match from its recording (:meth:`TickServer.resume_room`; the file must be
readable at the same path: shared storage). The room then lists on its new node and
matchmaking finds it there.

Reconnects (``POST /api/reconnect``) work on any node: the node asked answers for its own
seats, asks the room's node for a seat on another node, answers 503 with ``Retry-After``
while the room's node is gone and a node that adopts is resuming it, and 410 when the room
is gone for good. A resumed room takes its seat holds back from ``ticksync:seats:<room>``,
so its players' reconnect tokens keep working on its new node.

Redis unreachable at start: :class:`ClusterError` (the CLI prints one line). Redis lost
while running: rooms keep playing (nothing in a tick touches Redis), listings and
matchmaking fall back to this node's own rooms, and the heartbeat re-registers the node
as soon as Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote

import orjson

from netcode.errors import TicksyncError, UsageError
from netcode.server.matchmaking import ApiError

if TYPE_CHECKING:
    from netcode.server.tickserver import Room, TickServer

__all__ = ["Cluster", "ClusterConfig", "ClusterError", "FORWARDED"]

log = logging.getLogger("ticksync.cluster")

#: Header on a join one node asks of another (honoured only with the admin key): answer
#: from your own rooms, do not route again.
FORWARDED = "X-Ticksync-Forwarded"
_EVENTS_KEPT = 50
_FORWARD_TIMEOUT = 5.0
_RESUMING_RETRY_S = 1.0  # Retry-After while a room is being resumed on another node


class ClusterError(TicksyncError):
    """The cluster cannot be joined (Redis unreachable, a room name taken on another node)."""


@dataclass(frozen=True)
class ClusterConfig:
    url: str  # redis://HOST:PORT[/DB]
    node_id: str = ""  # default: random
    heartbeat_s: float = 1.0
    ttl_s: float = 3.0  # a node silent this long is gone, with its rooms
    timeout_s: float = 2.0  # bound on every Redis call
    prefix: str = "ticksync"
    adopt: bool = False  # resume the recorded matches of nodes that die (recordings on shared storage)

    def __post_init__(self):
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise UsageError(f"--redis {self.url!r}: expected redis://HOST:PORT")
        if not 0 < self.heartbeat_s < self.ttl_s:
            raise UsageError("the cluster heartbeat must be positive and shorter than its ttl")


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)


class Cluster:
    """One node's membership: its record's heartbeat, the event listener, and the
    cluster-wide listing and matchmaking the HTTP routes call."""

    def __init__(self, server: "TickServer", config: ClusterConfig):
        self.server = server
        self.config = config
        self.node_id = config.node_id or secrets.token_hex(3)
        p = config.prefix
        self._nodes_key = f"{p}:nodes"
        self._channel = f"{p}:events"
        self._recordings_key = f"{p}:recordings"  # room -> {"node", "path", "game_path"}: matches to resume
        self._seats_prefix = f"{p}:seats:"  # + room: slot -> {"user", "reconnect"}
        self._reconnect_prefix = f"{p}:reconnect:"  # + reconnect token: {"room", "slot", "user"}
        self.events: deque[dict] = deque(maxlen=_EVENTS_KEPT)  # heard from the channel
        self.connected = False
        self._redis = None
        self._http = None  # aiohttp session for joins asked of other nodes
        self._tasks: list[asyncio.Task] = []
        self._pending: set[asyncio.Task] = set()
        server.cluster = self
        server.matchmaker.name_tag = f"{self.node_id}-"
        server.room_listeners.append(self._room_changed)

    def _node_key(self, node_id: str | bytes) -> bytes:
        # Bytes throughout (no decode_responses): whatever else sits in Redis never fails a decode.
        raw = node_id.encode() if isinstance(node_id, str) else node_id
        return f"{self.config.prefix}:node:".encode() + raw

    async def _members(self) -> list[tuple[bytes, bytes | None]]:
        """(node id, its record or None once expired) for every member of the node set."""
        members = sorted(await self._redis.smembers(self._nodes_key))
        values = await self._redis.mget([self._node_key(m) for m in members]) if members else []
        return list(zip(members, values))

    # -- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        """Reach Redis (before the server opens its sockets): ClusterError in one line if not."""
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise ClusterError("--redis needs the redis package: pip install 'ticksync[cluster]'") from None
        t = self.config.timeout_s
        try:
            self._redis = aioredis.Redis.from_url(self.config.url, socket_timeout=t, socket_connect_timeout=t)
        except ValueError as exc:
            raise ClusterError(f"--redis {self.config.url}: {exc}") from None
        try:
            await asyncio.wait_for(self._redis.ping(), t * 2)
        except _redis_errors() as exc:
            await self._close_redis()
            raise ClusterError(f"cannot reach Redis at {self.config.url}: {exc or type(exc).__name__}") from None
        self.connected = True
        nodes = await self._live_nodes()
        for node in nodes or []:
            taken = {r["name"] for r in node["rooms"]} & set(self.server.rooms)
            if node["id"] != self.node_id and taken:
                await self._close_redis()
                raise ClusterError(
                    f"room {sorted(taken)[0]!r} already runs on node {node['id']} of this cluster: give each node's rooms their own names"
                )

    async def start(self) -> None:
        """Register (after the server started: the record names its addresses), announce,
        and keep the heartbeat and the event listener running."""
        import aiohttp

        if self.server.http_url is None:
            raise ClusterError("a cluster node needs its HTTP port: the other nodes ask it for seats there")
        if self._redis is None:
            await self.connect()
        try:
            for room in list(self.server.rooms.values()):
                if room.resumed:  # serve --resume: its players' seats come with it
                    await self._restore_seats(room)
            await self._beat()
            await self._publish({"event": "node_joined", "node": self.node_id})
        except _redis_errors() as exc:
            raise ClusterError(f"lost Redis at {self.config.url} while joining: {exc or type(exc).__name__}") from None
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_FORWARD_TIMEOUT))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._heartbeat(), name="ticksync-cluster-heartbeat"),
            loop.create_task(self._listen(), name="ticksync-cluster-events"),
        ]
        log.info("node %s joined the cluster at %s", self.node_id, self.config.url)

    async def stop(self) -> None:
        """Leave: the record goes at once (not at its expiry), others hear node_gone."""
        for task in [*self._tasks, *self._pending]:
            task.cancel()
        if self._tasks or self._pending:
            await asyncio.wait([*self._tasks, *self._pending], timeout=self.config.timeout_s)
        self._tasks = []
        if self._redis is not None and self.connected:
            try:
                await asyncio.wait_for(self._leave(), self.config.timeout_s)
            except _redis_errors():
                pass  # Redis is gone: the record expires by itself
        await self._close_redis()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _leave(self) -> None:
        recorded = list(self._recorded())
        if recorded:  # a clean stop ends its matches (their recordings get END): nothing to resume
            await self._redis.hdel(self._recordings_key, *recorded)
            await self._redis.delete(*(self._seats_prefix + name for name in recorded))
        await self._redis.delete(self._node_key(self.node_id))
        await self._redis.srem(self._nodes_key, self.node_id)
        await self._publish({"event": "node_gone", "node": self.node_id, "reason": "stopped"})

    async def _close_redis(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            try:
                await redis.aclose()
            except _redis_errors():
                pass

    # -- the record ---------------------------------------------------------------------------
    def record(self) -> dict:
        server = self.server
        rooms = [_room_record(room) for room in server.rooms.values()]
        return {
            "id": self.node_id,
            "http": server.http_url,
            "udp": server.udp_url,
            "ws": server.ws_url,
            "games": sorted({e.game.name for e in server.matchmaker.games.values()}),
            "max_rooms": server.matchmaker.config.max_rooms,
            "players": sum(r["players"] for r in rooms),
            "adopt": self.config.adopt,
            "rooms": rooms,
            "beat": time.time(),
        }

    async def _beat(self) -> None:
        """Write this node's record with its expiry; drop members whose record expired."""
        redis = self._redis
        ttl_ms = int(self.config.ttl_s * 1000)
        await redis.set(self._node_key(self.node_id), orjson.dumps(self.record()), px=ttl_ms)
        await redis.sadd(self._nodes_key, self.node_id)
        recorded = {name: orjson.dumps(entry) for name, entry in self._recorded().items()}
        if recorded:
            await redis.hset(self._recordings_key, mapping=recorded)
            await self._write_seats(recorded)
        me = self.node_id.encode()
        for member, value in await self._members():
            if value is None and member != me and await redis.srem(self._nodes_key, member):
                gone = member.decode(errors="replace")
                log.warning("node %s is gone (no heartbeat for %.1f s): its rooms left the listings", gone, self.config.ttl_s)
                await self._publish({"event": "node_gone", "node": gone, "reason": "heartbeat expired"})

    async def _write_seats(self, names) -> None:
        """The seat holds of these rooms, as another node resuming them needs them."""
        pipe = self._redis.pipeline(transaction=True)
        ttl_ms = int(self.server.matchmaker.config.token_ttl * 1000)
        for name in names:
            room = self.server.rooms.get(name)
            if room is None or room.seats is None:
                continue
            key = self._seats_prefix + name
            pipe.delete(key)
            held = {str(slot): orjson.dumps({"user": seat.user, "reconnect": seat.reconnect}) for slot, seat in room.seats.held.items()}
            if held:
                pipe.hset(key, mapping=held)
                pipe.pexpire(key, ttl_ms)
        await pipe.execute()

    async def _remember_seat(self, ticket: Mapping[str, Any]) -> None:
        """Which room and slot a reconnect token handed out here is for, where every node reads it."""
        ttl_ms = int(self.server.matchmaker.config.token_ttl * 1000)
        where = {"room": ticket["room"], "slot": ticket["slot"], "user": ticket["user"]}
        await self._redis.set(self._reconnect_prefix + ticket["reconnect_token"], orjson.dumps(where), px=ttl_ms)
        room = self.server.rooms.get(ticket["room"])
        if room is not None and room.recorder is not None:
            await self._write_seats([room.name])

    async def _restore_seats(self, room: "Room") -> int:
        """A resumed room's seat holds, as the node that ran it wrote them: held for their
        players coming back. Returns how many."""
        restored = 0
        now = self.server.now()
        for slot, raw in (await self._redis.hgetall(self._seats_prefix + room.name)).items():
            try:
                seat = orjson.loads(raw)
                self.server.matchmaker.restore_seat(room, int(slot), str(seat["user"]), str(seat["reconnect"]), now)
                restored += 1
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # not an entry this version wrote
        return restored

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self._beat()
            except _redis_errors() as exc:
                if self.connected:
                    log.warning("lost Redis at %s (%s): rooms keep playing; re-registering when it answers", self.config.url, exc)
                self.connected = False
                continue
            if not self.connected:
                self.connected = True
                log.warning("Redis at %s answers again: node %s re-registered", self.config.url, self.node_id)
                await self._safe_publish({"event": "node_joined", "node": self.node_id, "reason": "re-registered"})

    # -- events -------------------------------------------------------------------------------
    async def _publish(self, event: dict) -> None:
        await self._redis.publish(self._channel, orjson.dumps({**event, "time": round(time.time(), 3)}))

    async def _safe_publish(self, event: dict) -> None:
        try:
            await self._publish(event)
        except _redis_errors():
            pass  # the heartbeat reports the loss

    def _recorded(self) -> dict[str, dict]:
        """This node's recorded rooms still running: what another node could resume."""
        return {
            room.name: {"node": self.node_id, "path": os.path.abspath(room.config.record), "game_path": room.config.game_path}
            for room in self.server.rooms.values()
            if room.recorder is not None and not room.recorder.closed and room.config.game_path
        }

    def _room_changed(self, event: str, room: "Room") -> None:
        """A room was made or closed here: tell the others now, not at the next beat."""
        if not self._tasks:
            return  # not started yet: the first record carries it
        self._spawn(self._announce({"event": event, "node": self.node_id, "room": room.name}, ended=event == "room_closed"))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _announce(self, event: dict, ended: bool = False) -> None:
        try:
            if ended:  # the match ended here: nobody resumes it
                await self._redis.hdel(self._recordings_key, event["room"])
                await self._redis.delete(self._seats_prefix + event["room"])
            await self._beat()
            await self._publish(event)
        except _redis_errors():
            pass

    async def _listen(self) -> None:
        """Keep the events the others publish (for the listing); resubscribe after a loss."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        event = orjson.loads(message["data"])
                    except orjson.JSONDecodeError:
                        continue  # not ours
                    if isinstance(event, dict) and event.get("node") != self.node_id:
                        self.events.append(event)
                        if self.config.adopt and event.get("event") == "node_gone" and event.get("reason") != "stopped":
                            self._spawn(self._adopt(str(event.get("node"))))
            except _redis_errors():
                await asyncio.sleep(self.config.heartbeat_s)
            finally:
                try:
                    await pubsub.aclose()
                except _redis_errors():
                    pass

    async def _adopt(self, gone: str) -> None:
        """Resume here the recorded matches of node ``gone`` whose game this node hosts; a
        lock per room in Redis makes one node take each."""
        try:
            entries = await self._redis.hgetall(self._recordings_key)
        except _redis_errors():
            return
        for name, raw in entries.items():
            try:
                entry = orjson.loads(raw)
                room, path, game_path = name.decode(), entry["path"], entry["game_path"]
                if entry["node"] != gone or not isinstance(path, str) or not isinstance(game_path, str):
                    continue
            except (orjson.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                continue  # not an entry this version wrote
            hosted = self.server.matchmaker.games.get(game_path)
            if hosted is None or room in self.server.rooms or not os.path.exists(path):
                continue
            try:
                lock = f"{self.config.prefix}:adopt:{room}:{gone}"
                if not await self._redis.set(lock, self.node_id, nx=True, px=60_000):
                    continue  # another node took it
                resumed = self.server.resume_room(hosted.game, path)
                seats = await self._restore_seats(resumed)
                await self.refresh()  # listed here now: reconnects find it
            except _redis_errors():
                return
            except (TicksyncError, OSError, ValueError) as exc:
                log.warning("could not resume room %r of node %s from %s: %s", room, gone, path, exc)
                continue
            log.warning("resumed room %r of node %s from %s at tick %d (%d seats held for their players)",
                        resumed.name, gone, path, resumed.mode.tick, seats)

    # -- the view -----------------------------------------------------------------------------
    async def _live_nodes(self) -> list[dict] | None:
        """Every live node's record (this one's as it is now), or None when Redis does not
        answer (known lost: no wait on it until the heartbeat finds it again)."""
        if not self.connected:
            return None
        try:
            members = await self._members()
        except _redis_errors():
            return None
        nodes, me = [self.record()], self.node_id.encode()
        for member, value in members:
            if value is None or member == me:
                continue
            try:
                node = _checked_node(orjson.loads(value))
            except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
                log.debug("node %s: a record this version cannot read; left out", member)
                continue
            nodes.append(node)
        return nodes

    async def annotate(self, report: dict) -> dict:
        """``GET /api/rooms`` across the cluster: every node's rooms, each naming its node and
        that node's addresses, and a ``cluster`` section (nodes, Redis state, recent events)."""
        nodes = await self._live_nodes()
        mine = self.record()
        for room in report["rooms"]:
            room.update(node=self.node_id, udp=mine["udp"], ws=mine["ws"], http=mine["http"])
        for node in nodes or []:
            if node["id"] == self.node_id:
                continue
            for room in node["rooms"]:
                public = {k: v for k, v in room.items() if k != "users"}
                report["rooms"].append({**public, "node": node["id"], "udp": node["udp"], "ws": node["ws"], "http": node["http"]})
        report["cluster"] = {
            "node": self.node_id,
            "redis": "connected" if nodes is not None else "unreachable (this node's rooms only)",
            "nodes": [
                {k: node[k] for k in ("id", "http", "udp", "ws", "games", "max_rooms", "players")} | {"rooms": len(node["rooms"])}
                for node in (nodes or [mine])
            ],
            "events": list(self.events),
        }
        return report

    async def check_name_free(self, name: Any) -> None:
        """409 when another node already runs a room called ``name``."""
        if not isinstance(name, str):
            return  # the local checks say what is wrong with it
        for node in await self._live_nodes() or []:
            if node["id"] != self.node_id and any(r["name"] == name for r in node["rooms"]):
                raise ApiError(409, f"room {name!r} already exists (on node {node['id']})")

    # -- matchmaking --------------------------------------------------------------------------
    async def matchmake(self, body: Mapping[str, Any], now: float) -> dict:
        """Join-or-create across the cluster (see the module docstring)."""
        mm = self.server.matchmaker
        local = self.server.rooms
        user, mode = mm.join_fields(body)
        nodes = await self._live_nodes()
        if nodes is None:
            return await self._here(body, now)  # Redis down: this node alone
        others = [n for n in nodes if n["id"] != self.node_id]
        if "room" in body:
            name = body["room"]
            owner = next((n for n in others if any(r["name"] == name for r in n["rooms"])), None)
            if owner is None or not isinstance(name, str) or name in local:
                return await self._here(body, now)
            return await self._ask(owner, body)
        body = {**body, "user": user}  # the same fresh id wherever the seat is asked
        game = body.get("game")
        entry = mm.games.get(game) if isinstance(game, str) else None
        name = entry.game.name if entry else game
        # A seat this user already holds, on any node; else the fullest open room anywhere.
        candidates = []
        for node in nodes:
            for room in node["rooms"]:
                if room["game"] != name or (entry and room["game_version"] != entry.game.version):
                    continue
                if (mode is not None and room["mode"] != mode) or room["status"] not in ("created", "running"):
                    continue
                if user in room.get("users", ()):
                    candidates.insert(0, (1 << 30, node, room))
                elif room["seats"].get("free", 0) > 0:
                    candidates.append((room["slots"] - room["seats"]["free"], node, room))
        candidates.sort(key=lambda c: (-c[0], c[1]["id"] != self.node_id))
        for _, node, room in candidates:
            if node["id"] == self.node_id:
                return await self._here(body, now)
            try:
                return await self._ask(node, {**body, "room": room["name"]})
            except ApiError as exc:
                if exc.status not in (404, 409, 503):
                    raise
                # Full or closed since its node's last beat, or the node is gone: the next one.
        # No open seat anywhere: a new room on the least-loaded node hosting the game.
        hosts = [n for n in nodes if name in n["games"] and len(n["rooms"]) < n["max_rooms"]]
        hosts.sort(key=lambda n: (len(n["rooms"]) / max(1, n["max_rooms"]), n["players"], n["id"] != self.node_id))
        for node in hosts:
            if node["id"] == self.node_id:
                break
            try:
                return await self._ask(node, body)
            except ApiError as exc:
                if exc.status != 503:
                    raise
        return await self._here(body, now)

    async def reconnect(self, body: Mapping[str, Any], now: float) -> dict:
        """``POST /api/reconnect`` on any node (see the module docstring)."""
        try:
            ticket = self.server.matchmaker.reconnect(body, now)
            return {**ticket, "node": self.node_id, "http": self.server.http_url}
        except ApiError as exc:
            if exc.status != 410:
                raise
            gone = exc
        token = body["reconnect_token"]
        nodes = await self._live_nodes()
        if nodes is None:
            raise ApiError(503, "the cluster's Redis does not answer: try again", _RESUMING_RETRY_S)
        try:
            raw = await self._redis.get(self._reconnect_prefix + token)
            where = orjson.loads(raw) if raw is not None else None
            name = where["room"] if isinstance(where, dict) else None
            recording = await self._redis.hget(self._recordings_key, name) if isinstance(name, str) else None
        except _redis_errors():
            raise ApiError(503, "the cluster's Redis does not answer: try again", _RESUMING_RETRY_S) from None
        except (orjson.JSONDecodeError, KeyError):
            name = None
        if not isinstance(name, str) or name in self.server.rooms:
            raise gone  # no seat anywhere, or this node's room and its hold lapsed
        owner = next((n for n in nodes if n["id"] != self.node_id and any(r["name"] == name for r in n["rooms"])), None)
        if owner is not None:
            try:
                answer = await self._call(owner, "POST", "/api/reconnect", {"reconnect_token": token})
            except ApiError as exc:
                if exc.status == 503 and exc.retry_after is None:  # its node does not answer: dead, not yet expired
                    raise ApiError(503, f"room {name!r} is on node {owner['id']}, which does not answer: try again",
                                   _RESUMING_RETRY_S) from None
                raise
            return {**answer, "node": owner["id"], "http": owner["http"]}
        game = None
        try:
            entry = orjson.loads(recording) if recording is not None else None
            game = entry["game_path"] if isinstance(entry, dict) else None
        except (orjson.JSONDecodeError, KeyError):
            pass
        if game is not None and any(n.get("adopt") for n in nodes):
            raise ApiError(503, f"room {name!r} lost its node and is being resumed on another: try again", _RESUMING_RETRY_S)
        raise ApiError(410, f"room {name!r} is gone (closed, or its node died and no node resumes it): join again")

    async def answer_forwarded(self, body: Mapping[str, Any], now: float) -> dict:
        """A join another node routed here: answered from this node's rooms."""
        return await self._here(body, now)

    async def _here(self, body: Mapping[str, Any], now: float) -> dict:
        """A seat in this node's rooms, with the record rewritten before the answer, so the
        next placement anywhere already counts it (and sees a room it made)."""
        ticket = self.server.matchmaker.join_or_create(body, now)
        if self.connected:
            try:
                await self._remember_seat(ticket)
            except _redis_errors():
                pass  # the heartbeat reports the loss; a reconnect then works on this node only
        await self.refresh()
        return {**ticket, "node": self.node_id, "http": self.server.http_url}

    async def refresh(self) -> None:
        """Rewrite this node's record now (a room made or a seat handed out), not at the next beat."""
        if not self.connected:
            return
        try:
            await self._beat()
        except _redis_errors():
            pass  # the heartbeat reports the loss

    async def _ask(self, node: dict, body: Mapping[str, Any]) -> dict:
        """A seat from another node's own matchmaking (its answer, its addresses, its token)."""
        answer = await self._call(node, "POST", "/api/matchmake", body)
        return {**answer, "node": node["id"], "http": node["http"]}

    async def close_room(self, name: str) -> dict:
        """``DELETE /api/rooms/NAME`` for a room on another node: asked of its node."""
        for node in await self._live_nodes() or []:
            if node["id"] != self.node_id and any(r["name"] == name for r in node["rooms"]):
                answer = await self._call(node, "DELETE", "/api/rooms/" + quote(name, safe=""))
                return {**answer, "node": node["id"]}
        raise ApiError(404, f"no such room {name!r} (on any node of this cluster)")

    async def _call(self, node: dict, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict:
        """Another node's HTTP API, with the admin key and the forwarded mark; its refusal
        as an ApiError with its status and reason (503 when it does not answer)."""
        import aiohttp

        url = node["http"].rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.server.admin_key}", FORWARDED: "1"}
        data = None if body is None else orjson.dumps(dict(body))
        try:
            async with self._http.request(method, url, data=data, headers=headers) as r:
                answer = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            log.warning("node %s did not answer %s %s (%s)", node["id"], method, path, exc or type(exc).__name__)
            raise ApiError(503, f"node {node['id']} did not answer") from None
        if status != 200 or not isinstance(answer, dict):
            reason = answer.get("error") if isinstance(answer, dict) else None
            retry = answer.get("retry_after") if isinstance(answer, dict) else None
            raise ApiError(status if 400 <= status < 600 else 502, reason or f"node {node['id']} answered {status}",
                           retry if isinstance(retry, (int, float)) and not isinstance(retry, bool) else None)
        return answer


_NODE_FIELDS = {"id": str, "http": str, "udp": (str, type(None)), "ws": (str, type(None)), "games": list, "max_rooms": int,
                "players": int, "rooms": list}
_ROOM_FIELDS = {"name": str, "game": str, "game_version": (int, str), "mode": str, "status": str, "players": int,
                "slots": int, "seats": dict, "users": list}


def _checked_node(node: Any) -> dict:
    """A node record read from Redis, with the fields routing relies on (TypeError /
    KeyError otherwise: another version's record, or not ours)."""
    for fields, record in [(_NODE_FIELDS, node), *((_ROOM_FIELDS, room) for room in node["rooms"])]:
        if not isinstance(record, dict):
            raise TypeError("not an object")
        for key, kind in fields.items():
            if not isinstance(record[key], kind):
                raise TypeError(f"{key}: {type(record[key]).__name__}")
        if record is not node and not isinstance(record["seats"].get("free", 0), int):
            raise TypeError("seats.free")
    return node


def _room_record(room: "Room") -> dict:
    seats = room.seat_report()
    return {
        "name": room.name,
        "game": room.game.name,
        "game_version": room.game.version,
        "mode": room.config.mode,
        "status": room.status,
        "tick_rate": room.mode.tick_rate,
        "tick": room.mode.tick,
        "players": int(room.mode.present.sum()),
        "slots": room.config.players,
        "seats": seats,
        "temporary": room.temporary,
        "users": sorted({seat.user for seat in room.seats.held.values()}) if room.seats else [],
    }
