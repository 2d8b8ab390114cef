"""The ``ticksync`` command line (the console script's entry point).

    ticksync run GAME --ticks N [--players P] [--record FILE [--force]]   headless run with bots
    ticksync replay FILE [--verify] [--seek T [--dump | --json]]         re-simulate a recording
    ticksync check GAME                                        determinism check
    ticksync serve [GAME] [--config FILE] --mode lockstep|statesync [--port P] [--ws-port P2] [--record FILE] [--open-join]
                   [--redis redis://HOST:PORT [--adopt]] [--workers N] [--resume FILE] [--advertise HOST]
                   (a cluster node / N nodes on this machine / a killed node's recorded match, restarted)
    ticksync token --room R [--slot N] [--user U] [--ttl S] [--spectator]
    ticksync bots URL --game GAME --count N [--duration S] [--mode auto] [--cluster URL]
                   (URL http://: seats by matchmaking; bots follow their room if its node dies)
    ticksync bench [GAME] [--quick] [--out DIR] [--compare OLD.json] [--readme [PATH]]
    ticksync play GAME URL [--token T] [--slot N] [--spectate]   a desktop window (pygame-ce)
    ticksync replay FILE --watch [--speed X] [--start T]        a recording in that window

The first three are the engine's (:mod:`engine.cli`, no network); this module adds the
networked ones. GAME is an import path such as ``demos.arena`` (its ``GAME``) or
``demos.arena:Arena``. Exit codes: 0 fine, 1 the check or verification found a divergence
(or, for ``bots``, a bot desynced, could not play, had its inputs mostly unused, ran
out of step with the clock, or measured an RTT over ``--max-rtt``), 2 bad arguments or unreadable input
(one line on stderr, never a traceback: every TicksyncError and OSError is caught in
:func:`main`; ``--traceback`` anywhere on the line, or ``TICKSYNC_TRACEBACK=1``, prints the
whole story instead). ``ticksync --version`` reads the installed package's metadata.

The server secret (token signing key) comes from an environment variable (``--secret-env``,
default ``TICKSYNC_SECRET``) or a file (``--secret-file``): its UTF-8 text, stripped, at
least 16 bytes. ``serve`` without one generates a random secret for the run and prints a
token per slot. Its admin key (for ``POST /api/rooms`` and ``/api/tokens``) comes from
``$TICKSYNC_ADMIN_KEY`` or ``--admin-key-file``, else it makes one and prints ``admin key: KEY``.
``bots`` given the server's ``http://`` address takes its seats from matchmaking.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import signal
import sys
import time
import traceback
from typing import Sequence

from engine.errors import TicksyncError
from engine.model import Game, GameError
from engine.replay import ReplayError, ReplayReader

from engine.cli import (
    CliError,
    LiveTable,
    add_commands as add_engine_commands,
    check_record_path,
    game_and_players,
    load_game_or_fail,
)
from netcode.benchmark.command import add_parser as add_bench_command  # light: the bench loads on use
from netcode.desktop.cli import add_commands as add_desktop_commands
from netcode.session.token import MIN_SECRET

__all__ = ["main", "build_parser"]


def _read_secret(args, *, generate: bool = False) -> tuple[bytes, bool]:
    """The server secret from ``--secret-file`` or the ``--secret-env`` variable; with
    ``generate``, a random one when neither holds any (returns (secret, generated))."""
    if getattr(args, "secret_file", None):
        try:
            with open(args.secret_file, "rb") as f:
                raw = f.read().strip()
        except OSError as exc:
            raise CliError(f"cannot read the secret file {args.secret_file}: {exc.strerror or exc}") from None
        where = args.secret_file
    else:
        text = os.environ.get(args.secret_env, "").strip()
        if not text:
            if generate:
                return secrets.token_bytes(32), True
            raise CliError(f"no server secret: set ${args.secret_env} (at least {MIN_SECRET} bytes) or pass --secret-file")
        raw = text.encode("utf-8")
        where = f"${args.secret_env}"
    if len(raw) < MIN_SECRET:
        raise CliError(f"the secret in {where} is {len(raw)} bytes; it must be at least {MIN_SECRET}")
    return raw, False


def _setup_logging() -> None:
    """Library warnings (desyncs, a room that failed) go to stderr with a timestamp."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _record_paths(record: str | None, rooms: list[str]) -> dict[str, str]:
    if not record:
        return {}
    if len(rooms) == 1:
        return {rooms[0]: record}
    root, ext = os.path.splitext(record)
    return {room: f"{root}-{re.sub(r'[^A-Za-z0-9_.-]', '_', room)}{ext}" for room in rooms}


_SERVE_FLAGS = (
    "game", "mode", "host", "port", "ws_port", "players", "seed", "tick_rate", "record", "open_join", "admin_key_file",
    "duration", "status_every", "redis", "advertise",
)


def _serve_settings(args) -> dict:
    """The flags over the ``--config`` file over the defaults (see netcode/server/config.py)."""
    from netcode.errors import UsageError
    from netcode.server.config import merge, read_config

    try:
        config = read_config(args.config) if args.config else {}
    except UsageError as exc:
        raise CliError(str(exc)) from None
    flags = {name: getattr(args, name) for name in _SERVE_FLAGS}
    flags["open_join"] = True if args.open_join else None
    if args.room:
        flags["rooms"] = [{"name": name} for name in args.room]
    settings = merge(flags, config)
    settings["resume"] = args.resume or []
    if args.matchmaking:
        settings["matchmaking"] = {**settings["matchmaking"], "access": args.matchmaking}
    return settings


def _room_plan(settings: dict) -> list[tuple[Game, str, object]]:
    """(game, import path, RoomConfig) for every room to make at start."""
    from netcode.server.tickserver import MODES, RoomConfig

    # A cluster node makes no room of its own at start (each node's "default" would clash):
    # its rooms come from matchmaking and the room API.
    rooms = settings["rooms"] or ([] if settings["redis"] or settings.get("resume") else [{"name": "default"}])
    names = [r["name"] for r in rooms]
    if len(set(names)) != len(names):
        raise CliError("each room name must be different")
    records = _record_paths(settings["record"], names)
    plan = []
    for spec in rooms:
        path = spec.get("game", settings["game"])
        if not path:
            raise CliError(f"room {spec['name']!r}: which game? (give GAME, or game = ... in the config file)")
        mode = spec.get("mode", settings["mode"])
        if mode not in MODES:
            raise CliError(f"unknown mode {mode!r} (available: {', '.join(sorted(MODES))})")
        game, players = game_and_players(path, spec.get("players", settings["players"]))
        tick_rate = spec.get("tick_rate", settings["tick_rate"]) or None
        config = RoomConfig(
            name=spec["name"],
            mode=mode,
            players=players,
            seed=spec.get("seed", settings["seed"]),
            tick_rate=tick_rate,
            record=spec.get("record", records.get(spec["name"])),
            game_path=path,
            options=spec.get("options", {}),
        )
        plan.append((game, path, config))
    return plan


def _recorded_game_path(path: str) -> str:
    try:
        return str(ReplayReader(path).meta.get("game_path") or "")
    except OSError as exc:
        raise CliError(f"--resume {path}: {exc.strerror or exc}") from None
    except ReplayError as exc:
        raise CliError(f"--resume {path}: {exc}") from None


def _resumable(paths: list[str]) -> list[tuple[str, Game]]:
    """(game path, game) of each recording ``--resume`` restarts (the game it names)."""
    out = []
    for path in paths:
        game_path = _recorded_game_path(path)
        if not game_path:
            raise CliError(f"--resume {path}: the recording names no game (not made by ticksync serve?)")
        out.append((game_path, load_game_or_fail(game_path)))
    return out


def _admin_key(args, settings: dict) -> tuple[str, bool]:
    """The admin key from ``--admin-key-file`` / the config's ``admin_key_file``, else the
    ``--admin-key-env`` variable, else a new one (returns (key, generated))."""
    path = settings["admin_key_file"]
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                key = f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the admin key file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not key:
            raise CliError(f"the admin key file {path} is empty")
        return key, False
    key = os.environ.get(args.admin_key_env, "").strip()
    if key:
        return key, False
    return secrets.token_urlsafe(24), True


def cmd_serve(args) -> int:
    from engine.loop import run_async
    from netcode.errors import UsageError
    from netcode.server.matchmaking import MatchmakingConfig

    settings = _serve_settings(args)
    if settings["duration"] is not None and settings["duration"] <= 0:
        raise CliError("--duration must be positive")
    for name in ("port", "ws_port"):
        if not 0 <= settings[name] <= 65535:
            raise CliError(f"--{name.replace('_', '-')} must be a port number (0 picks a free one)")
    if args.workers is not None:
        return _serve_workers(args, settings)
    plan = _room_plan(settings)
    games = settings["games"] if plan else [p for p in (settings["game"], *settings["games"]) if p]
    if not plan and not games and not settings["resume"]:
        raise CliError("which game? (give GAME, or game = ... in the config file)")
    extra_games = [(load_game_or_fail(path), path) for path in games]
    try:
        matchmaking = MatchmakingConfig(**settings["matchmaking"])
    except UsageError as exc:
        raise CliError(str(exc)) from None
    for _, _, config in plan:
        if config.record:
            check_record_path(os.fspath(config.record), args.force)
    if args.insecure_plaintext:
        from netcode.session.crypto import is_loopback

        if not is_loopback(settings["host"]):
            raise CliError(f"--insecure-plaintext is for loopback only; --host {settings['host']} is not a loopback address")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError("--tls-cert and --tls-key go together")
    if args.tls_cert:
        from netcode.server.tickserver import tls_context

        try:
            settings["tls"] = tls_context(args.tls_cert, args.tls_key)
        except UsageError as exc:
            raise CliError(str(exc)) from None
    if args.workers is None:
        extra_games += [(game, path) for path, game in _resumable(settings["resume"])]
    secret, generated = _read_secret(args, generate=True)
    admin_key, key_generated = _admin_key(args, settings)
    cluster = None
    if settings["redis"]:
        from netcode.server.cluster import ClusterConfig

        if key_generated:  # nodes ask each other for seats with it
            raise CliError(f"--redis: every node needs the same admin key: set ${args.admin_key_env} or --admin-key-file on each")
        try:
            cluster = ClusterConfig(settings["redis"], adopt=args.adopt)
        except UsageError as exc:
            raise CliError(str(exc)) from None
    elif args.adopt:
        raise CliError("--adopt resumes the matches of a cluster's dead nodes: it needs --redis URL")
    settings["secret_env"] = args.secret_env
    settings["insecure_plaintext"] = args.insecure_plaintext
    _setup_logging()
    return run_async(_serve(settings, plan, extra_games, matchmaking, secret, generated, admin_key, key_generated, cluster))


def _serve_workers(args, settings: dict) -> int:
    """``--workers N``: N cluster nodes in child processes (netcode/server/workers.py), one
    secret and one admin key for all (made here when none is given)."""
    from netcode.server.workers import run_workers, worker_args

    if not 1 <= args.workers <= 256:
        raise CliError("--workers must be 1..256")
    if settings["resume"]:
        raise CliError("--workers: resume a recording on one node (serve --redis URL --resume FILE), not on every worker")
    if settings["rooms"]:
        raise CliError("--workers: rooms come from matchmaking and the room API (each worker would make the same room): drop --room / [[rooms]]")
    if not settings["game"] and not settings["games"]:
        raise CliError("which game? (give GAME, or game = ... in the config file)")
    for name in ("port", "ws_port"):
        if settings[name] and settings[name] + args.workers - 1 > 65535:
            raise CliError(f"--{name.replace('_', '-')}: worker ports run from {settings[name]} to {settings[name] + args.workers - 1}, past 65535")
    env = dict(os.environ)
    _, generated = _read_secret(args, generate=True)
    if generated:  # one secret for every worker, as text (the way a child reads it)
        env[args.secret_env] = secrets.token_urlsafe(32)
    admin_key, key_generated = _admin_key(args, settings)
    if key_generated:
        env[args.admin_key_env] = admin_key
        print(f"admin key: {admin_key}", flush=True)
    serve_args = worker_args(args.argv[args.argv.index("serve") + 1 :])
    return run_workers(serve_args, args.workers, redis_url=settings["redis"], port=settings["port"], ws_port=settings["ws_port"], env=env)


async def _serve(
    settings, plan, extra_games, matchmaking, secret: bytes, generated: bool, admin_key: str, key_generated: bool, cluster_config=None
) -> int:
    from netcode.errors import UsageError
    from netcode.server.cluster import Cluster, ClusterError
    from netcode.server.tickserver import TickServer
    from netcode.session.connection import SessionConfig
    from netcode.session.token import token_to_text

    server = TickServer(
        session_config=SessionConfig(insecure_plaintext_loopback=True) if settings["insecure_plaintext"] else None,
        tls=settings.get("tls"),
        secret=secret,
        host=settings["host"],
        udp_port=settings["port"],
        http_port=settings["ws_port"],
        admin_key=admin_key,
        open_join=settings["open_join"],
        matchmaking=matchmaking,
        advertise=settings["advertise"],
    )
    if generated:
        server.secret_origin = "generated for this run (tokens printed at start)"
    for game, path in extra_games:
        server.matchmaker.register_game(game, path)
    cluster = None if cluster_config is None else Cluster(server, cluster_config)
    resumed: dict[str, str] = {}
    try:
        for game, path, config in plan:
            server.add_room(game, config)
            server.matchmaker.register_game(game, path)
        for path in settings["resume"]:
            game = next(g for g, p in extra_games if p == _recorded_game_path(path))
            room = server.resume_room(game, path)
            resumed[room.name] = path
            print(f"resumed room {room.name} ({room.config.mode}) from {path} at tick {room.mode.tick}", flush=True)
        if cluster is not None:
            await cluster.connect()  # before the sockets open: no Redis, no node
        await server.start()
        if cluster is not None:
            await cluster.start()
    except (UsageError, GameError, ValueError, TypeError, OSError, ClusterError, ReplayError) as exc:
        if cluster is not None:
            await cluster.stop()
        await server.stop()
        if isinstance(exc, (ClusterError, ReplayError)):
            raise CliError(str(exc)) from None
        if isinstance(exc, OSError) and exc.filename is None:  # a socket: the port says which
            raise CliError(f"cannot serve on {settings['host']}: {exc.strerror or exc}") from None
        if isinstance(exc, OSError):  # a file (a recording)
            raise CliError(_one_line(exc)) from None
        raise CliError(str(exc)) from None
    rooms = [config.name for _, _, config in plan] + list(resumed)
    # The banner goes out in one write: the workers of `serve --workers N` share one
    # stdout, and their unbuffered (PYTHONUNBUFFERED) prints interleaved mid-line.
    banner: list[str] = []
    records = {config.name: os.fspath(config.record) for _, _, config in plan if config.record} | resumed
    if rooms:
        first = server.rooms[rooms[0]]
        game_name, game_path = first.game.name, (plan[0][1] if plan else first.config.game_path)
        banner.append(
            f"serving {first.game.describe()} ({first.config.mode}, {first.config.players} players, {first.mode.tick_rate} Hz) "
            f"in room(s): {', '.join(rooms)}"
        )
    else:
        game_name, game_path = extra_games[0][0].name, extra_games[0][1]
        banner.append(f"serving {', '.join(g.describe() for g, _ in extra_games)}: rooms made by matchmaking and the room API")
    banner.append(f"  game       {server.udp_url}")
    banner.append(f"  websocket  {server.ws_url}")
    banner.append(f"  dashboard  {server.http_url}")
    if cluster is not None:
        banner.append(f"  cluster    node {cluster.node_id} on {cluster.config.url}: listings and matchmaking span every node")
    if server.http_url and matchmaking.access != "off":
        banner.append(f"  join       POST {server.http_url}api/matchmake {{\"game\": \"{game_name}\"}}  (bots: ticksync bots {server.http_url.rstrip('/')} --game GAME)")
    banner.append(f"  desktop    ticksync play {game_path} {server.udp_url}" + ("  --token T (one is printed below)" if generated and rooms else ""))
    if settings["open_join"] and server.http_url:
        banner.append(f"  play       {server.http_url}play  (open join: anyone reaching it may take a slot)")
    for name, path in records.items():
        banner.append(f"  recording  {path} (room {name})")
    if generated:
        banner.append(f"note: ${settings['secret_env']} is not set, so this run signs tokens with a random secret; tokens (24 h):")
        for _, _, config in plan:
            for slot in range(config.players):
                token = server.mint_token(config.name, slot=slot, user=f"player{slot}", ttl=24 * 3600)
                banner.append(f"  room {config.name} slot {slot}: {token_to_text(token)}")
    elif rooms:
        banner.append(f"  tokens     ticksync token --room {rooms[0]} --slot N   (same secret)")
    if key_generated:
        banner.append(f"admin key: {admin_key}")
    banner.append(f"  admin      POST {server.http_url}api/rooms, api/tokens  (Authorization: Bearer <admin key>)")
    sys.stdout.write("\n".join(banner) + "\n")
    sys.stdout.flush()
    duration, status_every = settings["duration"], settings["status_every"]

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why: list[str] = []
    handled: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        why.append(sig.name)
        stop.set()
        # A second Ctrl-C while shutting down interrupts the hard way.
        loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or Windows: Ctrl-C ends the run as KeyboardInterrupt
    status = asyncio.create_task(_status(server, status_every)) if status_every > 0 else None
    try:
        try:
            await asyncio.wait_for(stop.wait(), duration)
        except asyncio.TimeoutError:
            why.append("--duration reached")
    finally:
        if status is not None:
            status.cancel()
        print(f"stopping ({why[0] if why else 'interrupted'}): closing sessions and recordings", flush=True)
        if cluster is not None:
            await cluster.stop()  # leave first: no joins routed here while rooms close
        await server.stop()
        for sig in handled:
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):
                pass
    for room in server.rooms.values():
        line = f"room {room.name}: {room.mode.tick} ticks, {room.desyncs} desyncs, status {room.status}"
        path = records.get(room.name)
        if path:
            try:
                line += f"; recording {path}: {ReplayReader(path).describe()}"
            except (OSError, ReplayError) as exc:
                line += f"; recording {path} unreadable: {exc}"
        print(line)
    return 0


async def _status(server, every: float) -> None:
    """A live table of every room, every ``every`` seconds."""
    table = LiveTable(
        [("time s", 7), ("room", 12), ("tick", 8), ("players", 7), ("p99 ms", 7), ("kbps out", 9), ("desyncs", 7)],
        every=every,
    )
    start = time.perf_counter()
    while True:
        await asyncio.sleep(every)
        now = time.perf_counter()
        for room in server.rooms.values():
            snap = room.report()
            table.row(
                now,
                f"{now - start:.0f}",
                room.name[:12],
                snap["tick"],
                f"{snap['players']}/{snap['slots']}",
                float(snap["tick_ms_p99"]),
                float(snap["kbps_out"]),
                snap["desyncs"],
            )


def cmd_token(args) -> int:
    from netcode.errors import UsageError
    from netcode.session.token import PLAYER, SPECTATOR, mint_token, token_to_text

    secret, _ = _read_secret(args)
    if not args.ttl > 0:
        raise CliError("--ttl must be positive (seconds)")
    if args.spectator and args.slot != -1:
        raise CliError("a spectator token takes no --slot")
    try:
        token = mint_token(
            secret,
            args.room,
            expires=time.time() + args.ttl,
            slot=args.slot,
            user=args.user,
            role=SPECTATOR if args.spectator else PLAYER,
        )
    except UsageError as exc:
        raise CliError(str(exc)) from None
    print(token_to_text(token))
    return 0


def cmd_bots(args) -> int:
    from engine.loop import run_async
    from netcode.client import parse_url, run_bots
    from netcode.errors import UsageError
    from netcode.session.token import token_from_text

    game = load_game_or_fail(args.game)
    http = args.url.startswith(("http://", "https://"))
    try:
        if not http:
            parse_url(args.url)
        tokens = [token_from_text(t) for t in args.token] if args.token else None
    except UsageError as exc:
        raise CliError(str(exc).replace("expected udp://", "expected http://host:port (the server's HTTP API), udp://")) from None
    if args.count is not None and args.count < 1:
        raise CliError("--count must be at least 1")
    if not args.duration > 0:
        raise CliError("--duration must be positive")
    if args.max_rtt is not None and not args.max_rtt > 0:
        raise CliError("--max-rtt must be positive (milliseconds)")
    secret = None
    if args.cluster and not http:
        raise CliError("--cluster goes with the server's http:// URL (bots need reconnect tokens from matchmaking to follow a room)")
    if http:
        if tokens is not None:
            raise CliError("--token goes with a udp:// or ws:// URL; with http:// the bots get theirs from matchmaking")
        count = args.count or 1
    elif tokens is not None:
        count = args.count or len(tokens)
        if count != len(tokens):
            raise CliError(f"--count {count} but {len(tokens)} --token given: one token per bot")
    else:
        if args.count is None:
            raise CliError("--count is required (or give one --token per bot, or the server's http:// URL)")
        count = args.count
        secret, _ = _read_secret(args)
    rate = game.tick_rate
    min_ticks = args.min_ticks if args.min_ticks is not None else int(min(rate, args.duration * rate / 4))
    _setup_logging()
    try:
        reports = run_async(_bots(args, game, count, tokens, secret, http))
    except UsageError as exc:
        raise CliError(str(exc)) from None
    errors = {r.status for r in reports}
    if len(errors) == 1 and next(iter(errors)).startswith("error: "):
        # Every bot failed the same way before playing (a wrong URL path, say): the
        # command line's fault, one line, not a table of identical failures.
        raise CliError(next(iter(errors)).removeprefix("error: "))
    problems = {r.name: p for r in reports if (p := _bot_problem(r, min_ticks, rate, args.max_rtt))}
    # What a bot counts as received: input frames in lockstep, complete snapshots in state sync.
    statesync = bool(reports) and all(r.mode == "statesync" for r in reports)
    received = "snapshots" if statesync else "frames"
    redone = "full" if statesync else "rollbk"  # full snapshots received / rollbacks
    header = (
        f"{'bot':<8} {'slot':>4} {received:>9} {'ticks':>7} {'of':>7} {'inputs':>7} {'missed':>6} {'rtt ms':>7} {'loss %':>6} "
        f"{'desync':>6} {'resync':>6} {redone:>6} {'reconn':>6} {'restrt':>6} {'moved':>5}  status"
    )
    print(header)
    print("-" * len(header))
    for r in reports:
        rtt = f"{r.rtt_ms:.2f}" if r.rtt_ms is not None else "-"
        slot = "-" if r.slot is None else r.slot
        used = "-" if r.inputs_used is None else r.inputs_used
        status = problems.get(r.name, r.status)
        print(
            f"{r.name:<8} {slot!s:>4} {r.frames:>9} {r.ticks:>7} {r.ticks_expected:>7} {used!s:>7} {r.inputs_missed:>6} {rtt:>7} "
            f"{r.loss_pct:>6.1f} {r.desyncs:>6} {r.resyncs:>6} {r.full_snapshots if statesync else r.rollbacks:>6} "
            f"{r.reconnects:>6} {r.server_restarts:>6} {r.relocations:>5}  {status}"
        )
    print("(ticks: simulated, of: what the time connected allows; inputs/missed: ticks the server ran with / without the bot's input;"
          " moved: times its room was found on another node after its server died)")
    if problems:
        print(f"FAILED: {len(problems)} of {count} bot(s): " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        return 1
    print(f"ok: {count} bot(s) played, none desynced, their inputs used, their clocks in step")
    return 0


def _bot_problem(r, min_ticks: int, rate: float, max_rtt: float | None) -> str | None:
    """Why a bot's run counts as failed (None: it played). Not just "it connected": the
    server must have used its inputs, and it must have simulated about as many ticks as the
    time it spent connected allows."""
    if r.denied:
        return f"denied: {r.denied}"
    if not r.connects:
        return r.status if r.status.startswith("never") else f"never connected ({r.status})"
    if r.desyncs:
        return f"desynced {r.desyncs} time(s)"
    if r.ticks < min_ticks:
        return f"only {r.ticks} ticks (wanted {min_ticks}): {r.status}"
    if r.slot is not None and r.slot >= 0:
        ran = (r.inputs_used or 0) + r.inputs_missed
        if r.inputs_used is None and r.ticks_expected >= 2 * rate:
            return "the server never reported using its inputs"
        if ran and r.inputs_missed > ran / 2:
            return f"the server ran {r.inputs_missed} of {ran} ticks without its inputs (dropped, late or lost)"
    slack = 2 * rate  # start-up, catching up after a reconnect
    if r.ticks > 1.5 * r.ticks_expected + slack:
        return f"simulated {r.ticks} ticks in time for {r.ticks_expected}: running ahead of the server's clock"
    if r.ticks_expected > 2 * slack and r.ticks < 0.5 * r.ticks_expected - slack:
        return f"simulated only {r.ticks} ticks in time for {r.ticks_expected}: falling behind"
    if max_rtt is not None and r.rtt_ms is not None and r.rtt_ms > max_rtt:
        return f"RTT {r.rtt_ms:.0f} ms over --max-rtt {max_rtt:g}"
    return None


async def _bots(args, game: Game, count: int, tokens, secret, http: bool):
    """Seats from matchmaking (an http:// URL) or the given / minted tokens, then play with a
    progress line every second."""
    from netcode.client import matchmake, run_bots

    url, urls, room = args.url, None, args.room or "default"
    mode = None if args.mode == "auto" else args.mode
    tickets = None
    if http:
        tickets = await matchmake(args.url, game, count, mode=mode, room=args.room)
        tokens = None
        placed = sorted({f"{t['room']} ({t['mode']})" for t in tickets})
        print(f"matchmaking placed {count} bot(s) in {', '.join(placed)}", flush=True)
        url = tickets[0]["udp"] or tickets[0]["ws"]
    print(f"{count} bot(s) playing {game.describe()} at {url} for {args.duration:g} s", flush=True)
    return await run_bots(
        url,
        game,
        count,
        args.duration,
        tokens=tokens,
        secret=secret,
        room=room,
        urls=urls,
        tickets=tickets,
        # Where to ask after a room whose server died: the node asked, and any others given.
        cluster=[args.url, *(args.cluster or [])] if http else (),
        first_slot=args.first_slot,
        input_delay=args.input_delay,
        prediction_window=args.prediction_window,
        mode=args.mode,
        progress=_bots_progress,
    )


def _bots_progress(reports, elapsed: float) -> None:
    """One line a second while bots play: connected, received, simulated, RTT, loss."""
    playing = sum(1 for r in reports if r.status == "playing")
    received = "snapshots" if all(r.mode == "statesync" for r in reports) else "frames"
    rtts = [r.rtt_ms for r in reports if r.rtt_ms is not None]
    rtt = f"{sum(rtts) / len(rtts):.1f} ms" if rtts else "-"
    loss = max((r.loss_pct for r in reports), default=0.0)
    print(
        f"  {elapsed:5.1f} s  playing {playing}/{len(reports)}  {received} {sum(r.frames for r in reports)}  "
        f"ticks {sum(r.ticks for r in reports)}  rtt {rtt}  loss {loss:.1f}%",
        flush=True,
    )


def _secret_options(p: argparse.ArgumentParser, *, tokens: bool = False) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--secret-env", metavar="VAR", default="TICKSYNC_SECRET", help="environment variable holding the server secret"
    )
    group.add_argument("--secret-file", metavar="F", help="file holding the server secret")
    if tokens:
        group.add_argument("--token", action="append", metavar="T", help="a connect token (repeat: one per bot)")




class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (the usage itself
    is one ``--help`` away); subcommand parsers are made of this class too."""

    def error(self, message: str):
        self.exit(2, f"ticksync: error: {message} (see: {self.prog} --help)\n")


def _version() -> str:
    """The installed distribution's version (its metadata, so one number in pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ticksync")
    except PackageNotFoundError:
        return "(not installed: running from a source tree)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ticksync", description="Server-authoritative multiplayer engine")
    parser.add_argument("--version", action="version", version=f"ticksync {_version()}")
    parser.add_argument(
        "--traceback", action="store_true", help="on an error, the full traceback instead of one line (or TICKSYNC_TRACEBACK=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_engine_commands(sub)
    p = sub.add_parser(
        "serve",
        help="serve a game over UDP and WebSocket, with an HTTP dashboard, room API and matchmaking",
        description="Flags win over --config FILE (TOML; see netcode/server/config.py), which wins over the defaults shown.",
    )
    p.add_argument("game", nargs="?", help="import path, e.g. demos.arena (or game = ... in --config)")
    p.add_argument("--config", metavar="FILE", help="TOML settings: these flags, [[rooms]], [matchmaking], games")
    p.add_argument("--mode", help="network mode: lockstep or statesync (default lockstep)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0: every interface)")
    p.add_argument(
        "--advertise",
        metavar="HOST",
        help="the host name clients reach this server by, in the addresses it hands out (default: --host); "
        "for a cluster node listening on 0.0.0.0 or behind NAT",
    )
    p.add_argument("--port", type=int, help="UDP port (default 7777; 0 picks a free one)")
    p.add_argument("--ws-port", type=int, help="HTTP dashboard + API + WebSocket port (default 8080; 0 picks a free one)")
    p.add_argument("--players", type=int, help="player slots per room (default: min(8, the game's maximum))")
    p.add_argument("--room", action="append", metavar="NAME", help="room name (repeat for several rooms; default 'default')")
    p.add_argument("--record", metavar="FILE", help="record the match here (several rooms: FILE-ROOM); its directory must exist")
    p.add_argument("--force", action="store_true", help="overwrite the --record file(s) if they exist")
    p.add_argument(
        "--resume",
        action="append",
        metavar="FILE",
        help="restart the match recorded in FILE (a crashed or stopped serve's --record) from its last tick, "
        "recording on in the same file; players come back with tokens for its room (repeat for several)",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--tick-rate", type=int, help="ticks per second (default: the game's)")
    _secret_options(p)
    key = p.add_mutually_exclusive_group()
    key.add_argument(
        "--admin-key-env",
        metavar="VAR",
        default="TICKSYNC_ADMIN_KEY",
        help="environment variable holding the admin key for POST /api/rooms and /api/tokens (default TICKSYNC_ADMIN_KEY; "
        "neither it nor --admin-key-file: a key is made and printed)",
    )
    key.add_argument("--admin-key-file", metavar="F", help="file holding the admin key")
    p.add_argument(
        "--open-join",
        action="store_true",
        help="POST /api/join mints tokens for free slots (the browser page /play uses it): anyone who can "
        "reach the dashboard may take a slot: for demos on a trusted network",
    )
    p.add_argument(
        "--matchmaking",
        choices=("open", "admin", "off"),
        help="who may call POST /api/matchmake: anyone (default), holders of the admin key, nobody",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="join a cluster at redis://HOST:PORT: every node lists and matchmakes into every node's rooms "
        "(needs the same admin key on each node; no room is made at start unless --room / [[rooms]] names one)",
    )
    p.add_argument(
        "--adopt",
        action="store_true",
        help="with --redis: when a node dies, resume its recorded matches here (their --record files must be "
        "readable here, at the same path: shared storage)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N cluster nodes in N processes on this machine (ports PORT.. and WS_PORT..; a redis-server of their "
        "own unless --redis is given); Ctrl-C stops them all",
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--status-every", type=float, metavar="S", help="status table period (default 2; 0: none)")
    p.add_argument("--tls-cert", metavar="PEM", help="serve the dashboard, API and WebSocket as HTTPS/WSS with this certificate (and --tls-key)")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    p.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="LABS ONLY: UDP sessions with clients on this machine are not encrypted (anyone who can reach them can "
        "read, forge and end them); refused unless --host is a loopback address",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="mint a connect token with the server secret")
    p.add_argument("--room", default="default")
    p.add_argument("--slot", type=int, default=-1, help="player slot (-1: the server assigns one)")
    p.add_argument("--user", default="", help="user id (a reconnect with the same id gets the same slot)")
    p.add_argument("--ttl", type=float, default=3600.0, metavar="S", help="seconds until it expires")
    p.add_argument("--spectator", action="store_true")
    _secret_options(p)
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("bots", help="run headless bots against a server")
    p.add_argument("url", help="http://host:port (the server's HTTP API: seats from matchmaking), udp://host:port or ws://host:port/ws")
    p.add_argument("--game", required=True, help="import path of the game the server runs")
    p.add_argument("--count", type=int, help="number of bots (slots first-slot..; with http:// default 1)")
    p.add_argument("--duration", type=float, default=10.0, metavar="S")
    p.add_argument("--room", help="the room to join (default: with http://, any room matchmaking picks; else 'default')")
    p.add_argument("--first-slot", type=int, default=0)
    p.add_argument(
        "--cluster",
        action="append",
        metavar="URL",
        help="with http://: another cluster node's HTTP address to ask where a room went when its server dies "
        "(repeat; the node in URL is asked too)",
    )
    p.add_argument("--min-ticks", type=int, help="fewer simulated ticks than this fails a bot (default: ~1 s of play)")
    p.add_argument("--max-rtt", type=float, metavar="MS", help="a bot whose measured RTT ends above this many ms fails")
    p.add_argument(
        "--mode", choices=("auto", "lockstep", "statesync"), default="auto", help="what the room runs (auto: ask it)"
    )
    p.add_argument("--input-delay", type=int, default=2, help="lockstep: ticks between sampling and stamping")
    p.add_argument("--prediction-window", type=int, default=0, help="lockstep: ticks run ahead on predictions")
    _secret_options(p, tokens=True)
    p.set_defaults(func=cmd_bots)

    add_bench_command(sub)
    add_desktop_commands(sub, _secret_options, _read_secret)  # play, replay --watch
    return parser


def _one_line(exc: BaseException) -> str:
    """What an error says, on one line (an OSError names its file)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    # --traceback is taken anywhere on the line (before or after the command), as is
    # TICKSYNC_TRACEBACK=1: the full story of an error instead of its one line.
    argv = list(sys.argv[1:] if argv is None else argv)
    full = "--traceback" in argv or os.environ.get("TICKSYNC_TRACEBACK", "") not in ("", "0")
    argv = [a for a in argv if a != "--traceback"]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # serve --workers hands its own arguments on to each worker
    for name in ("ticks", "players"):
        if getattr(args, name, 0) is not None and getattr(args, name, 0) < 0:
            parser.error(f"--{name} must not be negative")
    try:
        return args.func(args)
    except (TicksyncError, OSError) as exc:  # the user's to fix: usage, files, ports, games
        if full:
            traceback.print_exc()
        else:
            print(f"ticksync: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
