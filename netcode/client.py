"""asyncio game client: a mode client over UDP or WebSocket, played on a real clock.

Bots, demos and tests share this driver. A :class:`GameClient` opens the transport for a
URL (``udp://host:port`` or ``ws://host:port/ws``), connects a sans-IO mode client with a
connect token (:class:`~netcode.lockstep.client.LockstepClient`, whose requests a
:class:`~netcode.lockstep.client.LockstepRunner` carries out, or a
:class:`~netcode.statesync.client.StateSyncClient`), and then, at the room's tick rate,
runs ``client.update(now)`` and flushes the transport (the one flush rule). With
``mode="auto"`` it speaks lockstep first and switches when the room says it runs state
sync. A bot feeds ``game.bot_inputs`` for its own slot every few ticks, as a person's
controls change. Sessions that time out reconnect on their own; a server that says goodbye
or denies the token ends the run.

What the client saw is kept in a :class:`ClientReport`: frames received and confirmed,
ticks simulated, RTT and loss, resyncs (a ``Resynced`` event with reason ``"desync"`` is
the client-side desync signal: the server found our hash wrong and sent its state), the
hashes reported, and why the run ended.

A server that stops answering or says goodbye is a :class:`~netcode.events.ServerGone`
(drain them with :meth:`GameClient.events`). A client given its cluster's HTTP addresses
and its reconnect token (:meth:`GameClient.from_ticket`) then asks those nodes
``POST /api/reconnect`` until one names where the room runs now (a 503 says "being resumed,
ask again after Retry-After"; a 410 says the room is gone), and reconnects there into its
old slot: a :class:`~netcode.events.RoomMoved`, counted in the report's ``relocations``.

:func:`run_bots` plays N bots concurrently in one
process and returns their reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import numpy as np

from engine.loop import RealClock, TickLoop
from engine.model import Game

from netcode.session.connection import Counters, SessionConfig
from netcode.errors import UsageError
from netcode.events import Connected, Denied, Disconnected, EventQueue, Resynced, RoomMoved, ServerGone
from netcode.lockstep.client import AdvanceTick, LockstepClient, LockstepRunner
from netcode.session import ClientState
from netcode.statesync.client import StateSyncClient
from netcode.session.token import PLAYER, mint_token, token_from_text

__all__ = ["ClientReport", "GameClient", "matchmake", "parse_url", "run_bots", "run_client"]

log = logging.getLogger("ticksync.client")

_MAX_HASHES = 4096  # reported hashes kept in a report (the newest)
_RECONNECT_DELAY = 0.5
BOT_RECONCILE_EVERY = 8  # ticks between a state-sync bot's reconciliations (see run_bots)
_RELOCATE_TIMEOUT = 60.0  # how long a client asks its cluster where its room went
_RELOCATE_RETRY = 1.0  # between rounds of asking, when no node said how long to wait
# Session ends that mean the server itself went away (not that it ended our seat: a kick, a
# closed room, another session of ours taking the slot).
_SERVER_GONE = ("timeout", "transport closed", "peer: shutdown", "peer: room error")


def parse_url(url: str) -> tuple[str, str, int | None]:
    """``("udp", host, port)`` or ``("ws", url, None)``; UsageError for anything else."""
    parts = urlsplit(url)
    if parts.scheme == "udp":
        try:
            port = parts.port
        except ValueError:
            port = None
            netloc_port = parts.netloc.rpartition(":")[2]
            if netloc_port.isdigit():
                raise UsageError(f"{url!r}: port {netloc_port} is out of range (1..65535)") from None
        if not parts.hostname or port is None:
            raise UsageError(f"{url!r}: a UDP server URL is udp://host:port")
        return "udp", parts.hostname, port
    if parts.scheme in ("ws", "wss"):
        if not parts.hostname:
            raise UsageError(f"{url!r}: a WebSocket URL is ws://host:port/ws")
        return "ws", url, None
    raise UsageError(f"{url!r}: expected udp://host:port or ws://host:port/ws")


@dataclass
class ClientReport:
    """What one client saw; ``status`` says how its run ended ("ok" when it played)."""

    name: str
    url: str
    slot: int | None = None
    status: str = "not started"
    connects: int = 0
    reconnects: int = 0
    mode: str = ""  # lockstep or statesync: what the room ran
    frames: int = 0  # lockstep: input frames received; state sync: complete snapshots
    confirmed: int = 0  # ticks whose frames it holds (the newest confirmed tick + 1)
    ticks: int = 0  # game ticks simulated (progress: ticks re-run after a rollback or a reconciliation count once)
    rtt_ms: float | None = None
    loss_pct: float = 0.0
    packets_sent: int = 0
    packets_received: int = 0
    desyncs: int = 0  # resyncs because the server found our state hash wrong
    resyncs: int = 0  # every keyframe loaded (joins included)
    rollbacks: int = 0  # lockstep: mispredictions rolled back
    full_snapshots: int = 0  # state sync: full (not delta) snapshots received
    server_restarts: int = 0  # reconnects that found a new server instance (a new match)
    servers_gone: int = 0  # times the server stopped answering or said goodbye
    relocations: int = 0  # times the room was found on another address and rejoined there
    # What the server said of our inputs, over all sessions: ticks it ran with them and
    # without them (lost, late or refused). None: it never said (a spectator, or no time).
    inputs_used: int | None = None
    inputs_missed: int = 0
    ticks_expected: int = 0  # what the time spent connected allows, at the room's tick rate
    denied: str | None = None  # the server's reason, when it refused the token
    elapsed: float = 0.0
    hashes: dict[int, int] = field(default_factory=dict, repr=False)
    events: list[str] = field(default_factory=list, repr=False)

    @property
    def played(self) -> bool:
        return self.connects > 0 and self.denied is None

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("hashes", "events")}
        out["hashes_reported"] = len(self.hashes)
        return out


class GameClient:
    """One player (or spectator) connected to a ticksync server (see the module docstring).

    ::

        async with GameClient(GAME, "udp://127.0.0.1:7777", token, bot=True) as c:
            report = await c.run(duration=10)

    ``token``: bytes, or the base64url text ``ticksync token`` prints. ``reconcile_every``:
    state sync's spacing of reconciliations, in ticks (see StateSyncClient). ``tick_rate``: the
    update rate before the server says its own (default: the game's). ``cluster``: HTTP
    addresses of cluster nodes to ask where the room went when its server is gone, with
    ``reconnect_token`` (matchmaking's ticket has both: :meth:`from_ticket`).
    """

    def __init__(
        self,
        game: Game,
        url: str,
        token: bytes | str,
        *,
        name: str = "client",
        bot: bool = False,
        bot_every: int = 4,
        input_delay: int = 2,
        prediction_window: int = 0,
        mode: str = "auto",
        auto_reconnect: bool = True,
        reconnect_delay: float = _RECONNECT_DELAY,
        session_config: SessionConfig | None = None,
        tick_rate: float | None = None,
        reconcile_every: int = 1,
        cluster: Sequence[str] = (),
        reconnect_token: str | None = None,
        relocate_timeout: float = _RELOCATE_TIMEOUT,
    ):
        self.kind, self._target, self._port = parse_url(url)
        self.cluster = [u.rstrip("/") + "/" for u in dict.fromkeys(cluster)]
        self.reconnect_token = reconnect_token
        self.relocate_timeout = relocate_timeout
        self._events = EventQueue(256)  # ServerGone / RoomMoved, for events()
        self._relocating: asyncio.Task | None = None
        self.room: str | None = None  # the room's name, when the client knows it (from a ticket)
        self.game = game
        self.url = url
        self.token = token_from_text(token) if isinstance(token, str) else bytes(token)
        self.bot = bot
        self.bot_every = max(1, bot_every)
        self.auto_reconnect = auto_reconnect
        self.reconnect_delay = reconnect_delay
        self.rate = float(tick_rate or game.tick_rate)
        if mode not in ("auto", "lockstep", "statesync"):
            raise UsageError(f"mode {mode!r}: expected auto, lockstep or statesync")
        self.mode = "lockstep" if mode == "auto" else mode
        self._auto = mode == "auto"
        self._lockstep_options = dict(input_delay=input_delay, prediction_window=prediction_window)
        self._statesync_options = dict(reconcile_every=reconcile_every)
        self._session_config = session_config
        self._server_addr = None
        self.client: LockstepClient | StateSyncClient | None = None
        self.runner: LockstepRunner | None = None
        self.report = ClientReport(name=name, url=url)
        self.transport = None  # UdpTransport / WsClientTransport
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._tick_loop: TickLoop | None = None
        self._updates = 0
        self._done: str | None = None  # why the run must end (denied, closed by the server)
        self._reconnect_at: float | None = None
        self._reconnecting: asyncio.Task | None = None
        self._ended_sessions = Counters()  # traffic of sessions that ended (reconnects)
        self._tally_ended = (0, 0)  # input tallies of sessions that ended
        self._connected_for = 0.0  # seconds spent connected in sessions that ended
        self._connected_at: float | None = None  # when the current session began
        self._slot_array: np.ndarray | None = None

    @classmethod
    def from_ticket(cls, game: Game, ticket: dict, *, cluster: Sequence[str] = (), transport: str = "udp", **options: Any) -> "GameClient":
        """A client for a seat matchmaking handed out (``POST /api/matchmake``'s answer):
        its address (``transport``: "udp" or "ws"), token and reconnect token. ``cluster``:
        the nodes to ask where the room went if its server dies (the ticket's own node is
        asked first)."""
        if transport not in ("udp", "ws"):
            raise UsageError(f"transport {transport!r}: expected udp or ws")
        url = ticket.get(transport)
        if not isinstance(url, str) or not isinstance(ticket.get("token"), str):
            raise UsageError(f"the ticket names no {transport} address or token: {sorted(ticket)}")
        nodes = [ticket["http"]] if isinstance(ticket.get("http"), str) else []
        options.setdefault("mode", ticket.get("mode", "auto"))
        client = cls(game, url, ticket["token"], cluster=[*nodes, *cluster], reconnect_token=ticket.get("reconnect_token"), **options)
        client.report.slot = ticket.get("slot")
        client.room = ticket.get("room")
        return client

    def events(self) -> list:
        """What happened to the client's server since the last call: ServerGone and
        RoomMoved events, oldest first."""
        return self._events.drain()

    # -- connection ---------------------------------------------------------------------------
    def _build(self, server_addr) -> LockstepClient | StateSyncClient:
        self._server_addr = server_addr
        if self.mode == "statesync":
            self.client = StateSyncClient(
                self.game, server=server_addr, token=self.token, session_config=self._session_config, **self._statesync_options
            )
            self.runner = None
            return self.client
        client = LockstepClient(
            self.game, server=server_addr, token=self.token, session_config=self._session_config, **self._lockstep_options
        )
        hashes = self.report.hashes
        original = client.report_hash

        def report_hash(tick: int, value: int) -> None:
            hashes[tick] = value
            if len(hashes) > _MAX_HASHES:
                del hashes[next(iter(hashes))]
            original(tick, value)

        client.report_hash = report_hash  # type: ignore[method-assign]
        self.client = client
        self.runner = LockstepRunner(self.game, client)
        return client

    async def _open_transport(self) -> None:
        if self.kind == "udp":
            from netcode.transport.udp import open_udp_client

            self.transport = await open_udp_client(self.client or self._build, self._target, self._port)
        else:
            from netcode.transport.ws import open_ws_client

            self.transport = await open_ws_client(self.client or self._build, self._target)

    async def open(self) -> None:
        """Open the transport and start the handshake (``run`` does this when needed)."""
        if self.transport is not None:
            return
        self._aloop = asyncio.get_running_loop()
        self.report.hashes = OrderedDict()
        await self._open_transport()
        self.client.connect(self._aloop.time())
        self.transport.flush()
        self.report.status = "connecting"

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once the handshake is done (False after ``timeout`` s or a denial)."""
        end = asyncio.get_running_loop().time() + timeout
        while not self.client.connected:
            self._drain_events(asyncio.get_running_loop().time())
            if self._done is not None or asyncio.get_running_loop().time() >= end:
                return False
            await asyncio.sleep(0.005)
        return True

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    @property
    def tick(self) -> int:
        """The tick of the client's game state (0 before it has one)."""
        if self.runner is not None:
            return self.runner.tick
        return getattr(self.client, "predicted_tick", 0)

    def _own_state(self):
        """(state, tick) the bot reads its inputs from: the simulated or predicted state."""
        if self.runner is not None:
            return self.runner.state, self.runner.tick
        return self.client.predicted, self.client.predicted_tick

    # -- the loop -------------------------------------------------------------------------
    async def run(self, duration: float | None = None, *, stop: asyncio.Event | None = None) -> ClientReport:
        """Play until ``duration`` seconds have passed, ``stop`` is set, or the server ends
        the session. Returns the report (also at :attr:`report`)."""
        await self.open()
        aloop = self._aloop
        start = aloop.time()
        end = None if duration is None else start + duration
        try:
            while self._done is None:
                loop = TickLoop(self.rate, lambda tick: self._update(end, stop))
                self._tick_loop = loop
                await loop.run(RealClock())
                info = self.client.info
                if info is not None and info.tick_rate != self.rate and self._done is None and not self._finished(end, stop):
                    self.rate = float(info.tick_rate)  # the room's rate: run the loop at it
                    continue
                break
        finally:
            self.report.elapsed += aloop.time() - start
            self._fill_report()
        return self.report

    def _finished(self, end: float | None, stop: asyncio.Event | None) -> bool:
        return (end is not None and self._aloop.time() >= end) or (stop is not None and stop.is_set())

    def _update(self, end: float | None, stop: asyncio.Event | None) -> None:
        now = self._aloop.time()
        client, runner = self.client, self.runner
        if self._finished(end, stop) or self._done is not None:
            self._tick_loop.stop()
            return
        if client.info is not None and client.info.tick_rate != self.rate:
            self._tick_loop.stop()  # restart at the room's rate
            return
        self._updates += 1
        state, tick = self._own_state()
        if self.bot and state is not None and client.slot is not None and client.slot >= 0:
            if self._updates % self.bot_every == 0:
                if self._slot_array is None or self._slot_array[0] != client.slot:
                    self._slot_array = np.array([client.slot])
                client.set_input(self.game.bot_inputs(state, tick, self._slot_array)[0])
        if runner is not None:
            rolled = client.counters["rolled_back_ticks"]
            requests = client.update(now)
            if requests:
                # Progress, not re-simulation: ticks rolled back and run again count once.
                self.report.ticks += sum(1 for r in requests if type(r) is AdvanceTick) - (client.counters["rolled_back_ticks"] - rolled)
                runner.execute(requests)
        else:
            before = client.progress
            client.update(now)
            self.report.ticks += client.progress - before  # progress, not re-simulation
        # What we queued leaves now, not at ``now``: a starved process may have taken a while
        # to predict, and RTT samples (so the input lead) must not count that as the network.
        client.session.departing(self._aloop.time())
        self.transport.flush()
        self._drain_events(now)
        if self._done is not None:
            return
        if self._relocating is not None:
            return  # asking the cluster where the room went
        if self._reconnect_at is not None and now >= self._reconnect_at and self._reconnecting is None:
            self._reconnect_at = None
            self._reconnecting = self._aloop.create_task(self._reconnect())
        elif self.transport.closed and self._reconnecting is None and self._reconnect_at is None:
            # A WebSocket closed under us: the server is gone, or will be back at this address.
            self.report.servers_gone += 1
            relocating = self._can_relocate()
            self._events.put(ServerGone(self.url, "transport closed", relocating))
            if relocating:
                self._relocate("transport closed")
            else:
                self._lost("transport closed", now)

    def _drain_events(self, now: float) -> None:
        report = self.report
        for ev in self.client.events():
            report.events.append(repr(ev) if not isinstance(ev, Connected) else f"Connected(slot={ev.slot})")
            if len(report.events) > 256:
                del report.events[:64]
            if isinstance(ev, Connected):
                self._session_ended(now)
                self._connected_at = now
                report.connects += 1
                if report.connects > 1:
                    report.reconnects += 1
                report.slot = ev.slot
                report.status = "playing"
            elif isinstance(ev, Denied) and ev.code == "mode_mismatch" and self._auto and self.mode == "lockstep":
                # The room runs state sync: speak it (once), on the same transport.
                self.mode = "statesync"
                self._auto = False
                self._build(self._server_addr)
                self.transport.hub.replace_endpoint(self.client)  # transport.endpoint follows
                self._reconnect_at = now
            elif isinstance(ev, Denied):
                report.denied = f"{ev.code}: {ev.message}"
                report.status = f"denied ({ev.code}: {ev.message})"
                self._done = report.status
            elif isinstance(ev, Disconnected):
                self._session_ended(now)
                if ev.reason == "local":
                    continue
                gone = ev.reason in _SERVER_GONE
                if gone:
                    report.servers_gone += 1
                    self._events.put(ServerGone(self.url, ev.reason, self._can_relocate()))
                if self._can_relocate() and (gone or not ev.reason.startswith("peer")):
                    self._relocate(ev.reason)
                elif ev.reason.startswith("peer"):
                    report.status = f"closed by the server ({ev.reason.removeprefix('peer: ')})"
                    self._done = report.status
                else:
                    self._lost(ev.reason, now)
            elif isinstance(ev, Resynced):
                report.resyncs += 1
                if ev.reason == "desync":
                    report.desyncs += 1
                    log.warning("%s: desynced; resynced from the server's state at tick %d", report.name, ev.tick)

    def _session_ended(self, now: float) -> None:
        """Fold the session that just ended (or was replaced) into the run's totals."""
        if self._connected_at is not None:
            self._connected_for += now - self._connected_at
            self._connected_at = None
        tally = self.client.input_tally if self.client is not None else None
        if tally is not None:
            self._tally_ended = (self._tally_ended[0] + tally[0], self._tally_ended[1] + tally[1])
            self.report.inputs_used = self._tally_ended[0]
            self.client.input_tally = None

    def _lost(self, reason: str, now: float) -> None:
        if self._done is not None:
            return  # the run is over already (the server said goodbye, or denied us)
        if not self.auto_reconnect:
            self.report.status = f"disconnected ({reason})"
            self._done = self.report.status
            return
        self.report.status = f"reconnecting ({reason})"
        self._reconnect_at = now + self.reconnect_delay

    # -- relocation (a cluster's room resumed elsewhere) -----------------------------------------
    def _can_relocate(self) -> bool:
        return bool(self.cluster and self.reconnect_token and self.auto_reconnect and self._done is None)

    def _relocate(self, reason: str) -> None:
        if self._relocating is None:
            self.report.status = f"relocating ({reason})"
            self._reconnect_at = None
            self._relocating = self._aloop.create_task(self._find_room(reason))

    async def _find_room(self, reason: str) -> None:
        """Ask the cluster's nodes where the room runs now, until one says (then rejoin
        there), one says it is gone (410: the run ends), or ``relocate_timeout`` passes."""
        import aiohttp

        aloop = self._aloop
        deadline = aloop.time() + self.relocate_timeout
        body = {"reconnect_token": self.reconnect_token}
        why = "no node answered"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                while aloop.time() < deadline and self._done is None:
                    wait = _RELOCATE_RETRY
                    for node in list(self.cluster):
                        try:
                            async with http.post(node + "api/reconnect", json=body) as r:
                                answer = await r.json(content_type=None)
                                status, retry = r.status, r.headers.get("Retry-After")
                        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                            why = f"{node} did not answer ({exc or type(exc).__name__})"
                            self.cluster.remove(node)  # asked last from now on (the dead node, likely)
                            self.cluster.append(node)
                            continue
                        error = answer.get("error") if isinstance(answer, dict) else None
                        if status == 200 and isinstance(answer, dict):
                            await self._move(answer)
                            return
                        if status == 410:
                            self._end_run(f"server gone ({reason}; {error or 'the room is gone'})")
                            return
                        why = f"{node} answered {status}: {error}"
                        log.info("%s: relocating: %s", self.report.name, why)
                        if status == 503:
                            try:
                                wait = min(max(float(retry or wait), 0.1), 10.0)
                            except ValueError:
                                pass
                            break  # the room is being resumed: ask again after the wait
                    await asyncio.sleep(wait)
            self._end_run(f"server gone ({reason}; {why})")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a ticket we cannot use: the run ends, saying why
            self._end_run(f"server gone ({reason}; relocating failed: {exc})")
        finally:
            self._relocating = None

    def _end_run(self, status: str) -> None:
        self.report.status = status
        self._done = status

    async def _move(self, ticket: dict) -> None:
        """Rejoin at the ticket's address with its fresh token, keeping what the client knows
        of the match (the same server epoch continues it)."""
        url = ticket.get("udp" if self.kind == "udp" else "ws")
        token = ticket.get("token")
        if not isinstance(url, str) or not isinstance(token, str):
            raise UsageError(f"the reconnect answer names no {self.kind} address or token")
        kind, target, port = parse_url(url)
        old_url, client = self.url, self.client
        self.token = token_from_text(token)
        self.reconnect_token = ticket.get("reconnect_token") or self.reconnect_token
        if isinstance(ticket.get("http"), str):
            node = ticket["http"].rstrip("/") + "/"
            self.cluster = [node] + [u for u in self.cluster if u != node]
        if client.session.connection is not None:
            self._ended_sessions.add(client.session.connection.counters)
        if url != old_url or self.transport.closed:

            def rebind(addr):
                client.server = self._server_addr = addr
                return client

            old, old_kind = self.transport, self.kind
            old.hub.detach(old)  # the client moves to the new transport's hub
            if kind == "udp":
                from netcode.transport.udp import open_udp_client

                self.transport = await open_udp_client(rebind, target, port)
            else:
                from netcode.transport.ws import open_ws_client

                self.transport = await open_ws_client(rebind, target)
            self.kind, self._target, self._port, self.url = kind, target, port, url
            if old_kind == "udp":
                old.close()
            else:
                await old.close()
        client.token = self.token
        if client.session.state is ClientState.CONNECTED:
            client.disconnect(self._aloop.time())
            client.events()
        client.reconnect(self._aloop.time())
        self.transport.flush()
        if url != old_url:
            self.report.relocations += 1
            self.report.url = url
        self.report.status = "reconnecting (relocated)" if url != old_url else "reconnecting"
        slot = ticket.get("slot")
        self._events.put(RoomMoved(str(ticket.get("room", self.room or "")), url, old_url, slot if isinstance(slot, int) else -1,
                                   str(ticket.get("node", ""))))
        log.info("%s: room %s now at %s (was %s)", self.report.name, ticket.get("room"), url, old_url)

    async def _reconnect(self) -> None:
        try:
            client = self.client
            session = client.session
            if session.connection is not None:
                self._ended_sessions.add(session.connection.counters)
            if client.session.state is ClientState.CONNECTED:
                client.disconnect(self._aloop.time())
                client.events()  # our own "local" Disconnected
            if self.transport.closed:
                await self._open_transport()  # a new WebSocket to the same URL
            client.reconnect(self._aloop.time())
            self.transport.flush()
        except Exception as exc:  # the server may be down or restarting: try again later
            log.info("%s: reconnect failed (%s); retrying", self.report.name, exc)
            self._reconnect_at = self._aloop.time() + max(self.reconnect_delay, 1.0)
        finally:
            self._reconnecting = None

    def _fill_report(self) -> None:
        r = self.report
        if not self.fill_counters():
            return
        if r.status in ("playing", "connecting"):
            r.status = "ok" if r.connects else "never connected" + self._refused_hint()
        elif r.status.startswith("reconnecting") and r.connects == 0:
            r.status = f"never connected ({r.status.removeprefix('reconnecting (').rstrip(')')})" + self._refused_hint()

    def fill_counters(self) -> bool:
        """Bring the report's counters (frames, packets, loss, RTT) up to date, as a live
        progress line reads them; False before there is a client."""
        r, client = self.report, self.client
        if client is None:
            return False
        r.mode = self.mode
        if self.runner is not None:
            r.frames = client.counters["frames"]
            r.confirmed = client.next_needed
            r.rollbacks = client.counters["rollbacks"]
        else:
            r.frames = client.counters["snapshots_complete"]
            r.confirmed = max(0, client.acked)
            r.full_snapshots = client.counters["full_snapshots"]
        r.server_restarts = client.server_restarts
        used, missed = self._tally_ended
        if client.input_tally is not None:
            used, missed = used + client.input_tally[0], missed + client.input_tally[1]
            r.inputs_used = used
        r.inputs_missed = missed
        connected = self._connected_for
        if self._connected_at is not None and self._aloop is not None:
            connected += self._aloop.time() - self._connected_at
        r.ticks_expected = int(connected * self.rate)
        conn = client.session.connection
        total = Counters()
        total.add(self._ended_sessions)
        if conn is not None:
            total.add(conn.counters)
        r.packets_sent, r.packets_received = total.sent, total.received
        r.loss_pct = 100.0 * total.lost / max(1, total.acked + total.lost)
        if conn is not None and conn.rtt.samples:
            r.rtt_ms = conn.rtt.rtt * 1e3
        return True

    def _refused_hint(self) -> str:
        errors = getattr(self.transport, "errors", None) or {}
        if errors.get("ConnectionRefusedError"):
            return " (the port refuses: is a server listening there?)"
        return ""

    async def close(self) -> None:
        """Say goodbye (the server frees the slot at once) and close the transport."""
        for task in (self._reconnecting, self._relocating):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self.transport is None:
            return
        client = self.client
        if client is not None and client.connected:
            client.disconnect(self._aloop.time())
            self.transport.flush()
        transport, self.transport = self.transport, None
        if self.kind == "udp":
            transport.close()
        else:
            await transport.close()
        self._fill_report()

    async def __aenter__(self) -> "GameClient":
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def run_client(game: Game, url: str, token: bytes | str, duration: float, **options: Any) -> ClientReport:
    """Open, play for ``duration`` seconds, close; never raises for network trouble (the
    report's status says what happened)."""
    return await _play(GameClient(game, url, token, **options), duration)


async def _play(client: GameClient, duration: float) -> ClientReport:
    try:
        await client.run(duration)
    except (OSError, asyncio.TimeoutError) as exc:
        client.report.status = f"error: {exc}"
    except UsageError as exc:
        client.report.status = f"error: {exc}"
    finally:
        try:
            await client.close()
        except Exception as exc:  # closing a broken transport must not lose the report
            log.debug("closing %s failed: %r", client.report.name, exc)
    return client.report


async def run_bots(
    url: str,
    game: Game,
    count: int,
    duration: float,
    *,
    tokens: Sequence[bytes | str] | None = None,
    secret: bytes | None = None,
    room: str = "default",
    first_slot: int = 0,
    ttl: float | None = None,
    urls: Sequence[str] | None = None,
    tickets: Sequence[dict] | None = None,
    cluster: Sequence[str] = (),
    progress: Callable[[list[ClientReport], float], None] | None = None,
    progress_every: float = 1.0,
    **options: Any,
) -> list[ClientReport]:
    """Play ``count`` bots concurrently for ``duration`` seconds; per-bot reports.

    Tokens: given one per bot, or minted from ``secret`` for slots ``first_slot..``.
    ``urls``: one server address per bot (matchmaking may place bots in different rooms'
    addresses), else ``url`` for all. ``tickets``: matchmaking's answers instead, one per
    bot (:meth:`GameClient.from_ticket`): with ``cluster`` (HTTP addresses of cluster
    nodes), bots whose server dies follow their room to the node that resumes it.
    ``progress(reports, elapsed)`` is called every
    ``progress_every`` seconds while they play, with their counters up to date. Extra
    ``options`` go to :class:`GameClient` (``input_delay``, ``prediction_window``, ...).
    """
    if tickets is not None:
        if len(tickets) != count:
            raise UsageError(f"{count} bots need {count} tickets, got {len(tickets)}")
    elif tokens is None:
        if secret is None:
            raise UsageError("run_bots needs tokens or the server secret to mint them")
        expires = time.time() + (ttl if ttl is not None else duration + 3600)
        tokens = [
            mint_token(secret, room, expires=expires, slot=first_slot + i, user=f"bot{first_slot + i}", role=PLAYER)
            for i in range(count)
        ]
    elif len(tokens) != count:
        raise UsageError(f"{count} bots need {count} tokens, got {len(tokens)}")
    options.setdefault("bot", True)
    # A bot draws nothing, so it need not reconcile on every snapshot (each re-runs the
    # ticks since it, most of a bot's CPU): every BOT_RECONCILE_EVERY ticks still tracks the
    # server, and nothing a bot reports or checks depends on it.
    options.setdefault("reconcile_every", BOT_RECONCILE_EVERY)
    if tickets is not None:
        clients = [
            GameClient.from_ticket(game, t, cluster=cluster, transport="udp" if t.get("udp") else "ws", name=f"bot{i}", **options)
            for i, t in enumerate(tickets)
        ]
    else:
        clients = [
            GameClient(game, urls[i] if urls else url, tok, name=f"bot{first_slot + i}", **options) for i, tok in enumerate(tokens)
        ]
    runs = asyncio.gather(*(_play(c, duration) for c in clients))
    if progress is None:
        return list(await runs)
    start = asyncio.get_running_loop().time()
    while True:
        done, _ = await asyncio.wait([runs], timeout=progress_every)
        if done:
            return list(runs.result())
        for c in clients:
            c.fill_counters()
        progress([c.report for c in clients], asyncio.get_running_loop().time() - start)


async def matchmake(http_url: str, game: Game, count: int, *, mode: str | None = None, room: str | None = None) -> list[dict]:
    """``count`` seats from a server's join-or-create matchmaking (``POST /api/matchmake``):
    one ticket each (token, room, slot, udp and ws addresses). UsageError when the server
    refuses, with its reason."""
    import secrets

    import aiohttp

    body: dict[str, Any] = {"game": game.name}
    if mode is not None:
        body["mode"] = mode
    if room is not None:
        body["room"] = room
    run = secrets.token_hex(3)
    tickets = []
    url = http_url.rstrip("/") + "/api/matchmake"
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for i in range(count):
                async with http.post(url, json={**body, "user": f"bot{i}-{run}"}) as r:
                    try:
                        answer = await r.json(content_type=None)
                    except ValueError:
                        answer = None
                    if r.status != 200 or not isinstance(answer, dict) or "token" not in answer:
                        reason = answer.get("error") if isinstance(answer, dict) else None
                        raise UsageError(f"{url}: matchmaking answered {r.status}: {reason or 'not a ticksync server?'}")
                    tickets.append(answer)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise UsageError(f"{url}: cannot reach the server's HTTP API ({exc or type(exc).__name__})") from None
    return tickets
