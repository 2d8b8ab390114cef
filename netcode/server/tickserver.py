"""TickServer: rooms, each a game and a network mode on its own real-clock tick loop.

One server process hosts any number of rooms behind one UDP port and one WebSocket route
(:class:`~netcode.server.rooms.RoomRouter` picks the room from the connect token). A room is a game,
a mode server built by a :data:`MODES` factory (lockstep or state sync; another mode is one
more entry) and an :class:`engine.loop.TickLoop` at the room's tick rate. Each tick reads
the UDP socket (:class:`~netcode.transport.udp_polled.PolledUdpTransport`: every datagram
since the last tick, each with its arrival time; the server wakes once per tick, not once
per datagram), runs ``mode.on_tick(loop.time())`` and then flushes the transport hub: the
one flush rule, so what the tick queued leaves at once and the hub's timer is re-armed.

The HTTP side (dashboard page, JSON API, token minting; :mod:`netcode.server.dashboard`; room
creation and matchmaking, :mod:`netcode.server.http_api`; ``/metrics``,
:mod:`netcode.server.metrics`) lives on the same aiohttp application as the WebSocket route.
Rooms can be added while the server runs; every room's admission goes through its seat
holds (:mod:`netcode.server.matchmaking`), and a housekeeping task a few times a second
lets holds lapse and closes run-time rooms left empty.

Shutdown (:meth:`TickServer.stop`) is ordered so clients see a clean end and recordings are
complete: stop the tick loops, close every session with a reason (the goodbyes are
flushed), close each recording with its END record and final state hash, then close the
sockets. Every wait in it is bounded.

Decisions: rooms tick from the moment the server starts, players or not (a lockstep match's
timeline is the server's; an idle tick costs microseconds and records a few bytes). ``now``
given to protocol objects is always ``loop.time()`` (the transports use it too); the tick
*schedule* runs on ``perf_counter`` (:class:`~engine.loop.RealClock`), which is finer than uvloop's
millisecond loop clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import orjson

from engine.loop import RealClock, TickLoop
from engine.model import Game
from engine.replay import ReplayWriter, seek

from netcode.mode.server import ModeServer
from netcode.session.connection import SessionConfig
from netcode.session.crypto import is_loopback
from netcode.errors import UsageError
from netcode.events import DesyncDetected
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.statesync.server import StateSyncServer, StateSyncConfig
from netcode.server.metrics import TickTimes, registry_for
from netcode.server.matchmaking import Matchmaker, MatchmakingConfig, Seats, gate_admission
from netcode.server.rooms import RoomRouter
from netcode.session.token import PLAYER, mint_token, require_secret
from netcode.transport.hub import Limits, TransportHub

__all__ = ["MODES", "ModeContext", "Room", "RoomConfig", "TickServer", "tls_context"]

log = logging.getLogger("ticksync.server")

_STOP_TIMEOUT = 5.0  # bound on each shutdown step that waits on the network
_RATE_WINDOW = 1.0  # seconds between samples of the byte counters for kbps
_RECENT_EVENTS = 50
_HISTORY = 120  # one-second samples kept for the dashboard's charts
_HOUSEKEEPING_EVERY = 0.25  # seconds between seat sweeps and empty-room checks


@dataclass(frozen=True)
class RoomConfig:
    """One room: which mode, how many player slots, the match seed, and options.

    ``options`` go to the mode's own config (for lockstep: :class:`LockstepConfig` fields
    such as ``send_every`` or ``hash_every``). ``record``: a replay file to write.
    ``game_path``: the game's import path, stored in the recording so ``ticksync replay``
    can find the game.
    """

    name: str = "default"
    mode: str = "lockstep"
    players: int = 4
    seed: int = 1
    tick_rate: int | None = None  # default: the game's
    record: str | os.PathLike | None = None
    game_path: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModeContext:
    """Everything a mode factory gets to build a room's mode server."""

    game: Game
    config: RoomConfig
    secret: bytes
    wall_offset: float
    recorder: ReplayWriter | None
    session_config: SessionConfig | None


def _factory(server_cls: type, config_cls: type) -> Callable[[ModeContext], ModeServer]:
    def build(ctx: ModeContext) -> ModeServer:
        c = ctx.config
        return server_cls(
            ctx.game,
            config_cls(players=c.players, seed=c.seed, tick_rate=c.tick_rate, **c.options),
            secret=ctx.secret,
            room=c.name,
            session_config=ctx.session_config,
            wall_offset=ctx.wall_offset,
            recorder=ctx.recorder,
        )

    return build


#: Mode name -> factory building the mode server for a room. Adding a mode is one entry.
MODES: dict[str, Callable[[ModeContext], ModeServer]] = {
    "lockstep": _factory(LockstepServer, LockstepConfig),
    "statesync": _factory(StateSyncServer, StateSyncConfig),
}


def _describe_event(ev: Any) -> dict:
    """An event as JSON-friendly fields (no bytes, no player addresses)."""
    out: dict[str, Any] = {"event": type(ev).__name__}
    if dataclasses.is_dataclass(ev):
        for f in dataclasses.fields(ev):
            v = getattr(ev, f.name)
            if isinstance(v, (bytes, bytearray)) or f.name == "addr":
                continue  # mode info is binary; player addresses are not for a public page
            out[f.name] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


class Room:
    """A game, its mode server and its tick loop, plus what the dashboard shows of it."""

    def __init__(self, name: str, game: Game, config: RoomConfig, mode: ModeServer, recorder: ReplayWriter | None):
        self.name = name
        self.game = game
        self.config = config
        self.mode = mode
        self.recorder = recorder
        self.loop = TickLoop(mode.tick_rate, self._tick)
        self.status = "created"  # created, running, stopped, error: ...
        self.desyncs = 0
        self.events: deque[dict] = deque(maxlen=_RECENT_EVENTS)
        self.created = time.time()
        self.task: asyncio.Task | None = None
        self._server: TickServer | None = None
        self._rate_mark: tuple[float, int, int] | None = None
        self.kbps_in = 0.0
        self.kbps_out = 0.0
        self.tick_times = TickTimes()  # for /metrics
        # (unix time, mean tick ms, worst tick ms, kbps in, kbps out) each second, for the charts
        self.history: deque[tuple[float, float, float, float, float]] = deque(maxlen=_HISTORY)
        self._second = (0, 0.0, 0.0)  # ticks, total and worst work time since the last sample
        self.seats: Seats | None = None  # set by TickServer.add_room
        self.temporary = False  # made at run time: closes when empty for a while
        self.empty_since: float | None = None
        self.resumed = False  # restarted from a recording (resume_room)

    # -- the tick ---------------------------------------------------------------------------
    def _tick(self, tick: int) -> None:
        t0 = time.perf_counter()
        self._run_tick(t0)
        took = time.perf_counter() - t0
        self.tick_times.add(took)
        n, total, worst = self._second
        self._second = (n + 1, total + took, took if took > worst else worst)

    def _run_tick(self, t0: float) -> None:
        server = self._server
        if server.udp is not None:
            server.udp.poll()  # the datagrams that arrived since the last tick (any room's)
        now = server._aloop.time()
        try:
            self.mode.on_tick(now)
        except Exception as exc:  # a bug in the game or mode: this room ends, others go on
            self._fail(exc, now)
            return
        server.router.touch(self.name)
        # What the tick queued leaves now, after the tick's own work (the loop clock stands
        # still during a callback): RTT samples measure the network, not this queue.
        self.mode.session.departing(now + (time.perf_counter() - t0))
        server.hub.flush()
        self._after_tick(now)

    def _after_tick(self, now: float) -> None:
        for ev in self.mode.events():
            if isinstance(ev, DesyncDetected):
                self.desyncs += 1
                log.warning("room %r: desync at tick %d, slot %d", self.name, ev.tick, ev.slot)
            self.events.append({"time": round(time.time(), 3), **_describe_event(ev)})
        traffic = self._server.router.traffic[self.name]
        mark = self._rate_mark
        if mark is None:
            self._rate_mark = (now, traffic.bytes_in, traffic.bytes_out)
        elif now - mark[0] >= _RATE_WINDOW:
            dt = now - mark[0]
            self.kbps_in = (traffic.bytes_in - mark[1]) * 8 / 1000 / dt
            self.kbps_out = (traffic.bytes_out - mark[2]) * 8 / 1000 / dt
            self._rate_mark = (now, traffic.bytes_in, traffic.bytes_out)
            n, total, worst = self._second
            mean_ms = total / n * 1e3 if n else 0.0
            self.history.append((round(time.time(), 2), mean_ms, worst * 1e3, self.kbps_in, self.kbps_out))
            self._second = (0, 0.0, 0.0)

    def _fail(self, exc: Exception, now: float) -> None:
        log.error("room %r stopped: its tick raised %s", self.name, type(exc).__name__, exc_info=exc)
        self.status = f"error: {type(exc).__name__}: {exc}"
        self.loop.stop()
        try:
            self.mode.session.close_all(now, "room error")
            self._server.router.touch(self.name)
            self._server.hub.flush()
        except Exception:
            log.exception("room %r: closing sessions after the error failed", self.name)
        if self.recorder is not None and not self.recorder.closed:
            # No END: the recording says the match did not finish normally.
            self.recorder.abort()

    # -- inspection -------------------------------------------------------------------------
    def seat_report(self) -> dict:
        """The room's load: seats playing, held for a player coming back or about to join, free."""
        if self.seats is None:
            return {}
        counts = self.seats.counts()
        present = int(self.mode.present.sum())
        counts["playing"] = present
        counts["free"] = max(0, self.config.players - present - counts["pending"] - counts["reserved"])
        counts["load"] = round((self.config.players - counts["free"]) / self.config.players, 3)
        return counts

    def players_report(self) -> list[dict]:
        """One row per connected player and spectator: link quality, traffic, input timing.

        ``loss_pct``: our packets the peer never acknowledged, of those it could have.
        ``late_inputs``: input records that arrived after their tick had run (the tick used
        the player's previous input). ``input_lead_ticks``: how far ahead of the server's
        tick the player's newest input is (negative: its inputs arrive late)."""
        mode, now = self.mode, self._server.now() if self._server else 0.0
        rows = []
        for peer in list(mode.peers.values()):
            conn = mode.session.connections.get(peer.conn_id)
            if conn is None:
                continue
            c = conn.counters
            player = peer.slot >= 0
            newest = int(mode.inputs.newest[peer.slot]) if player else -1
            rows.append(
                {
                    "slot": peer.slot if player else None,
                    "role": "player" if player else "spectator",
                    "user": conn.user,
                    "connected_s": round(now - conn.created, 1),
                    "rtt_ms": round(conn.rtt.rtt * 1e3, 2) if conn.rtt.samples else None,
                    "jitter_ms": round(conn.rtt.jitter * 1e3, 2) if conn.rtt.samples else None,
                    "loss_pct": round(100.0 * c.lost / max(1, c.acked + c.lost), 2),
                    "bytes_in": c.bytes_received,
                    "bytes_out": c.bytes_sent,
                    "packets_in": c.received,
                    "packets_out": c.sent,
                    "late_inputs": int(peer.counters.get("late_inputs", 0)),
                    "input_lead_ticks": newest - mode.tick + 1 if player and newest >= 0 else None,
                    "dropped": sum(c.dropped.values()),
                }
            )
        rows.sort(key=lambda r: (r["slot"] is None, r["slot"] if r["slot"] is not None else 0))
        return rows

    def report(self, detail: bool = False) -> dict:
        """What the dashboard shows: JSON-ready."""
        stats = self.mode.stats()
        session = stats.get("session") or self.mode.session.stats()
        loop = self.loop.stats.summary()
        traffic = self._server.router.traffic.get(self.name) if self._server else None
        out = {
            "name": self.name,
            "game": self.game.name,
            "game_version": self.game.version,
            "mode": self.config.mode,
            "status": self.status,
            "tick_rate": self.mode.tick_rate,
            "tick": self.mode.tick,
            "players": stats.get("players", session.get("connections", 0)),
            "slots": self.config.players,
            "spectators": stats.get("spectators", 0),
            "connections": session.get("connections", 0),
            "tick_ms_p50": loop["tick_ms_p50"],
            "tick_ms_p99": loop["tick_ms_p99"],
            "cpu_ms_p99": loop["cpu_ms_p99"],  # beside the wall p99: far below it means contention
            "tick_ms_p99_last": loop["tick_ms_p99_last"],  # the last 300 ticks only
            "cpu_ms_p99_last": loop["cpu_ms_p99_last"],
            "late_ms_p99": loop["late_ms_p99"],
            "late_ticks": loop["late"],
            "dropped_ticks": loop["dropped"],
            "bytes_in": traffic.bytes_in if traffic else 0,
            "bytes_out": traffic.bytes_out if traffic else 0,
            "packets_in": traffic.packets_in if traffic else 0,
            "packets_out": traffic.packets_out if traffic else 0,
            "kbps_in": self.kbps_in,
            "kbps_out": self.kbps_out,
            "drops": session.get("dropped", {}),
            "denied": session.get("denied", {}),
            "desyncs": self.desyncs,
            "seats": self.seat_report(),
            "temporary": self.temporary,
            "recording": None if self.config.record is None else os.fspath(self.config.record),
            "uptime_s": time.time() - self.created,
        }
        if detail:
            out["players_detail"] = self.players_report()
            out["mode_stats"] = stats
            out["events"] = list(self.events)
        return out


@contextlib.contextmanager
def _naming_port(kind: str, port: int):
    """An OSError opening a socket says which port it was about ("Address already in use"
    alone does not say which of the server's two ports is taken)."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"{kind} port {port}: {exc.strerror or exc}") from exc


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (chain) and its private key; UsageError
    naming the files when they cannot be loaded."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate {cert} and key {key}: {exc}") from None
    return ctx


class TickServer:
    """Hosts rooms on one UDP port and one HTTP/WebSocket port (either may be off).

    ::

        server = TickServer(secret=secret, udp_port=7777, http_port=8080)
        server.add_room(GAME, RoomConfig("default", players=4, record="match.tsr"))
        await server.start()
        ...
        await server.stop()

    ``udp_port`` / ``http_port``: 0 picks a free port, None serves none. ``advertise``: the
    host in the addresses handed out, when clients reach the server by another name. ``admin_key``
    enables ``POST /api/tokens`` for requests carrying ``Authorization: Bearer <key>``.
    ``open_join``: ``POST /api/join`` hands a connect token for a free slot (or a spectator
    token) to anyone who asks, so the browser page ``/play`` works without a matchmaker:
    for demos on a trusted network only.
    """

    def __init__(
        self,
        *,
        secret: bytes,
        host: str = "127.0.0.1",
        udp_port: int | None = 0,
        http_port: int | None = None,
        ws_path: str = "/ws",
        admin_key: str | None = None,
        limits: Limits = Limits(),
        session_config: SessionConfig | None = None,
        open_join: bool = False,
        matchmaking: MatchmakingConfig = MatchmakingConfig(),
        tls: ssl.SSLContext | None = None,
        advertise: str | None = None,
    ):
        """``tls``: serve the dashboard, the HTTP API and the WebSocket as HTTPS and WSS
        (:func:`tls_context` loads a certificate and key): the client tokens the API hands
        out carry their session keys."""
        require_secret(secret)
        if session_config is not None and session_config.insecure_plaintext_loopback and not is_loopback(host):
            raise UsageError(f"insecure_plaintext_loopback is for loopback only; host {host} is not a loopback address")
        self.secret = secret
        self.host = host
        self.tls = tls
        #: The host name in the addresses this server hands out (matchmaking, the cluster's
        #: listings): where clients reach it, when that is not where it listens (0.0.0.0, NAT).
        self.advertise = advertise or None
        self.udp_port = udp_port
        self.http_port = http_port
        self.ws_path = ws_path
        self.admin_key = admin_key or None
        self.limits = limits
        self.session_config = session_config
        self.open_join = bool(open_join)
        #: Where the secret came from, for the dashboard: "given", or the CLI's "generated
        #: for this run (tokens printed at start)".
        self.secret_origin = "given"
        self.rooms: dict[str, Room] = {}
        self.matchmaker = Matchmaker(self, matchmaking)
        self.router = RoomRouter()
        self.hub = TransportHub(self.router)  # both sockets join it: one flush serves both
        self.udp = None  # PolledUdpTransport once started
        self.ws = None  # WsServerTransport once started
        self.udp_url: str | None = None
        self.ws_url: str | None = None
        self.http_url: str | None = None
        self.started_at: float | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._runner = None  # aiohttp AppRunner
        self._housekeeping: asyncio.Task | None = None
        self._wall_offset = 0.0
        self._state = "new"  # new, running, stopping, stopped
        self._stopped = asyncio.Event()  # binds to a loop on first wait, not here
        self.metrics = registry_for(self)  # this server's own Prometheus registry (GET /metrics)
        #: Called as ``listener("room_created" | "room_closed", room)`` (the cluster announces them).
        self.room_listeners: list[Callable[[str, Room], None]] = []
        self.cluster = None  # netcode.server.cluster.Cluster when this server is a cluster node

    # -- rooms ------------------------------------------------------------------------------
    def add_room(
        self, game: Game, config: RoomConfig = RoomConfig(), *, recorder: ReplayWriter | None = None, epoch: int | None = None
    ) -> Room:
        """Create a room (before or after :meth:`start`); it ticks while the server runs.
        ``recorder``: an open recording to go on with (:meth:`resume_room`) instead of a
        new file at ``config.record``. ``epoch``: the room's server epoch (the id ACCEPTED
        carries; default: a new random one), which a recording keeps so a resumed match is
        the same server to its clients."""
        if self._state in ("stopping", "stopped"):
            raise UsageError("add_room() on a stopped server")
        name = config.name
        if not name or len(name.encode()) > 64:
            raise UsageError("a room name is 1..64 bytes of UTF-8")
        if name in self.rooms:
            raise UsageError(f"room {name!r} already exists")
        factory = MODES.get(config.mode)
        if factory is None:
            raise UsageError(f"unknown mode {config.mode!r} (available: {', '.join(sorted(MODES))})")
        game.check_players(config.players)
        if epoch is None:
            epoch = secrets.randbits(64)
        if recorder is None and config.record is not None:
            meta = {"room": name, "game_path": config.game_path or type(game).__module__, "epoch": epoch}
            if _json_ok(config.options):  # what a resumed room needs to be built the same
                meta["options"] = dict(config.options)
            tick_rate = config.tick_rate or game.tick_rate
            recorder = ReplayWriter(
                config.record,
                game,
                config.seed,
                config.players,
                tick_rate=tick_rate,
                mode=config.mode,
                hash_every=int(config.options.get("hash_every", 60)),
                keyframe_every=30 * tick_rate,
                meta=meta,
            )
        ctx = ModeContext(game, config, self.secret, self._wall_offset, recorder, self.session_config)
        try:
            mode = factory(ctx)
        except BaseException:
            if recorder is not None:
                recorder.abort()  # no END: it never ran
            raise
        mode.session.epoch = epoch
        room = Room(name, game, config, mode, recorder)
        room._server = self
        mm = self.matchmaker
        room.seats = Seats(config.players, mm.config.reserve_s, mm.config.pending_s)
        mode.session.admit = gate_admission(room.seats, mode.present, mode.session.admit)
        if game.name not in mm.games:
            mm.register_game(game, config.game_path)
        self.rooms[name] = room
        self.router.add(name, mode)
        if self._state == "running":
            self._start_room(room)
        self._tell("room_created", room)
        return room

    def resume_room(self, game: Game, path: str | os.PathLike) -> Room:
        """Restart a recorded match from its recording (the file a crashed or stopped server
        left, on storage this node reaches): the room is built as it was (name, mode,
        players, seed, tick rate, options from the file), its state is the recorded last
        tick's, re-simulated from the nearest keyframe, and the recording goes on in the
        same file (:meth:`ReplayWriter.resume`), so ``replay --verify`` checks the whole
        match across the restart. The room keeps the server epoch the recording holds, so
        its players reconnect into the match they knew (with tokens for the room, as
        before): a lockstep room rebuilds its recent frames from the recorded inputs."""
        writer, reader = ReplayWriter.resume(path, game)
        try:
            state = seek(reader, game, reader.ticks)
            meta = reader.meta
            config = RoomConfig(
                name=str(meta.get("room") or "default"),
                mode=reader.mode,
                players=reader.players,
                seed=reader.seed,
                tick_rate=reader.tick_rate,
                record=path,
                game_path=str(meta.get("game_path") or ""),
                options=meta.get("options") if isinstance(meta.get("options"), dict) else {},
            )
            epoch = meta.get("epoch")
            room = self.add_room(game, config, recorder=writer, epoch=epoch if isinstance(epoch, int) and 0 <= epoch < 2**64 else None)
        except BaseException:
            writer.abort()
            raise
        room.mode.resume_at(reader.ticks, state, recent=reader.inputs)
        room.resumed = True
        log.info("room %r resumed from %s at tick %d", room.name, os.fspath(path), reader.ticks)
        return room

    def _tell(self, event: str, room: Room) -> None:
        for listener in self.room_listeners:
            try:
                listener(event, room)
            except Exception:
                log.exception("a room listener failed on %s %r", event, room.name)

    def _start_room(self, room: Room) -> None:
        room.mode.session.wall_offset = self._wall_offset  # tokens expire on wall time
        room.status = "running"
        room.task = self._aloop.create_task(self._run_room(room), name=f"ticksync-room-{room.name}")

    async def _run_room(self, room: Room) -> None:
        try:
            await room.loop.run(RealClock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the loop itself failed (not a tick: those are caught)
            room._fail(exc, self._aloop.time())

    async def close_room(self, name: str, reason: str = "room closed") -> Room:
        """End one room while the server runs on: stop its loop, say goodbye to its
        clients, close its recording, forget it. Returns the closed room."""
        room = self.rooms.pop(name)
        room.loop.stop()
        if room.task is not None:
            room.task.cancel()
            await asyncio.wait([room.task], timeout=_STOP_TIMEOUT)
        if not room.status.startswith("error"):
            room.status = "stopped"
        if self._aloop is not None:
            now = self._aloop.time()
            room.mode.close_all(now, reason)
            self.router.touch(name)
            self.hub.flush()
        self.router.remove(name)
        self.matchmaker.forget_room(name)
        if room.recorder is not None and not room.recorder.closed:
            room.recorder.close(final_state=getattr(room.mode, "state", None))
        self._tell("room_closed", room)
        return room

    def mint_token(self, room: str, *, slot: int = -1, user: str = "", ttl: float = 3600.0, role: int = PLAYER) -> bytes:
        """A client token for ``room`` sealed with this server's secret: the connect token
        and, beside it, the session keys the client keeps (see netcode/session/token.py)."""
        return mint_token(self.secret, room, expires=time.time() + ttl, slot=slot, user=user, role=role)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the sockets and start every room's tick loop."""
        if self._state != "new":
            raise UsageError(f"start() on a server that is {self._state}")
        from netcode.transport.udp import open_udp_server

        self._aloop = asyncio.get_running_loop()
        self._wall_offset = time.time() - self._aloop.time()
        try:
            if self.udp_port is not None:
                # Read once per tick, not per datagram: rooms only use inputs when a tick closes.
                with _naming_port("UDP", self.udp_port):
                    self.udp = await open_udp_server(self.hub, self.host, self.udp_port, limits=self.limits, polled=True)
                host, port = self.udp.local_address
                self.udp_url = f"udp://{_show_host(self.advertise or host)}:{port}"
            if self.http_port is not None:
                with _naming_port("HTTP/WebSocket", self.http_port):
                    await self._start_http()
        except BaseException:
            await self._close_sockets()
            raise
        self.started_at = time.time()
        self._state = "running"
        for room in self.rooms.values():
            self._start_room(room)
        self._housekeeping = self._aloop.create_task(self._keep_house(), name="ticksync-housekeeping")
        log.info("serving %d room(s): %s %s", len(self.rooms), self.udp_url or "", self.ws_url or "")

    async def _keep_house(self) -> None:
        """Seat holds lapse and run-time rooms left empty close, a few times a second."""
        while True:
            await asyncio.sleep(_HOUSEKEEPING_EVERY)
            try:
                for name in self.matchmaker.sweep(self._aloop.time()):
                    log.info("room %r closes: empty for %.0f s", name, self.matchmaker.config.empty_timeout)
                    await self.close_room(name, "room closed: empty")
            except Exception:
                log.exception("housekeeping failed; trying again")

    async def _start_http(self) -> None:
        from aiohttp import web

        from netcode.server.dashboard import build_app
        from netcode.transport.ws import add_ws_route

        app = build_app(self)
        self.ws = add_ws_route(app, self.hub, self.ws_path, limits=self.limits)
        runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self.http_port, ssl_context=self.tls)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = _show_host(self.advertise or host)
        self.http_port = port
        secure = "s" if self.tls is not None else ""
        self.http_url = f"http{secure}://{shown}:{port}/"
        self.ws_url = f"ws{secure}://{shown}:{port}{self.ws_path}"

    async def stop(self, reason: str = "shutdown") -> None:
        """Clean shutdown (see the module docstring). Safe to call twice; never hangs."""
        if self._state == "new":
            self._state = "stopped"
            self._close_recorders()
            return
        if self._state in ("stopping", "stopped"):
            await self._stopped.wait()
            return
        self._state = "stopping"
        try:
            if self._housekeeping is not None:
                self._housekeeping.cancel()
                await asyncio.wait([self._housekeeping], timeout=_STOP_TIMEOUT)
            for room in self.rooms.values():
                room.loop.stop()
            tasks = [r.task for r in self.rooms.values() if r.task is not None]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
            now = self._aloop.time()
            for room in self.rooms.values():
                if not room.status.startswith("error"):
                    room.status = "stopped"
                try:
                    room.mode.close_all(now, reason)
                except Exception:
                    log.exception("room %r: closing its sessions failed", room.name)
                self.router.touch(room.name)
                try:
                    room._after_tick(now)
                except Exception:
                    log.exception("room %r: draining its events failed", room.name)
            self.hub.flush()  # the goodbyes: UDP sends now, WebSockets queue them
            self._close_recorders()
            await self._close_sockets()
        finally:
            self._close_recorders()
            self._state = "stopped"
            self._stopped.set()
        log.info("stopped")

    def _close_recorders(self) -> None:
        for room in self.rooms.values():
            rec = room.recorder
            if rec is not None and not rec.closed:
                try:
                    rec.close(final_state=getattr(room.mode, "state", None))
                except Exception:
                    log.exception("room %r: closing the recording failed", room.name)

    async def _close_sockets(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                # Its shutdown hook drains the WebSockets' queues (the goodbyes), then closes them.
                await asyncio.wait_for(runner.cleanup(), _STOP_TIMEOUT)
            except (asyncio.TimeoutError, Exception):
                log.warning("the HTTP/WebSocket side did not close cleanly in time", exc_info=True)
        if self.udp is not None:
            self.udp.close()
            try:
                await asyncio.wait_for(self.udp.wait_closed(), _STOP_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("the UDP socket did not close in time")
        self.hub.close()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def now(self) -> float:
        """The server's ``now`` (its loop clock), as its rooms and protocol objects see it."""
        return self._aloop.time() if self._aloop is not None else 0.0

    @property
    def running(self) -> bool:
        return self._state == "running"

    async def __aenter__(self) -> "TickServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- inspection -------------------------------------------------------------------------
    def room_report(self, name: str, detail: bool = True) -> dict | None:
        room = self.rooms.get(name)
        return None if room is None else room.report(detail=detail)

    def report(self) -> dict:
        """The whole server for the dashboard: transports, router, every room."""
        transports = {}
        if self.udp is not None:
            transports["udp"] = self.udp.stats()
        if self.ws is not None:
            transports["ws"] = self.ws.stats()
        return {
            "server": {
                "status": self._state,
                "udp": self.udp_url,
                "ws": self.ws_url,
                "http": self.http_url,
                "uptime_s": 0.0 if self.started_at is None else time.time() - self.started_at,
                "router": self.router.stats(),
                "transports": transports,
                # Every way this server hands out tokens (it accepts any token signed with
                # its secret, however minted).
                "tokens": {
                    "mint_api": "admin key" if self.admin_key else "off",
                    "matchmaking": self.matchmaker.config.access,
                    "open_join": self.open_join,
                    "secret": self.secret_origin,
                },
                "games": sorted({e.game.name for e in self.matchmaker.games.values()}),
                "max_rooms": self.matchmaker.config.max_rooms,
            },
            "rooms": [room.report() for room in self.rooms.values()],
        }


def _json_ok(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return False
    return True


def _show_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
