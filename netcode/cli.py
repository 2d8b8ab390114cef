"""The ``ticksync`` command line (the console script's entry point).

    ticksync run GAME --ticks N [--players P] [--record FILE [--force]]   headless run with bots
    ticksync replay FILE [--verify] [--seek T [--dump | --json]]         re-simulate a recording
    ticksync check GAME                                        determinism check
    ticksync serve GAME --mode lockstep|statesync [--port P] [--ws-port P2] [--record FILE] [--open-join]
    ticksync token --room R [--slot N] [--user U] [--ttl S] [--spectator]
    ticksync bots URL --game GAME --count N [--duration S] [--mode auto]

The first three are the engine's (:mod:`engine.cli`, no network); this module adds the
networked ones. GAME is an import path such as ``demos.arena`` (its ``GAME``) or
``demos.arena:Arena``. Exit codes: 0 fine, 1 the check or verification found a divergence
(or, for ``bots``, a bot desynced or could not play), 2 bad arguments or unreadable input
(one line on stderr, never a traceback: every TicksyncError and OSError is caught in
:func:`main`; ``--traceback`` anywhere on the line, or ``TICKSYNC_TRACEBACK=1``, prints the
whole story instead). ``ticksync --version`` reads the installed package's metadata.

The server secret (token signing key) comes from an environment variable (``--secret-env``,
default ``TICKSYNC_SECRET``) or a file (``--secret-file``): its UTF-8 text, stripped, at
least 16 bytes. ``serve`` without one generates a random secret for the run and prints a
token per slot.
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


def cmd_serve(args) -> int:
    from engine.loop import run_async
    from netcode.server.tickserver import MODES

    if args.mode not in MODES:
        raise CliError(f"unknown mode {args.mode!r} (available: {', '.join(sorted(MODES))})")
    game, players = game_and_players(args.game, args.players)
    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be positive")
    for name in ("port", "ws_port"):
        if not 0 <= getattr(args, name) <= 65535:
            raise CliError(f"--{name.replace('_', '-')} must be a port number (0 picks a free one)")
    rooms = args.room or ["default"]
    if len(set(rooms)) != len(rooms):
        raise CliError("each --room name must be different")
    for path in _record_paths(args.record, rooms).values():
        check_record_path(path, args.force)
    secret, generated = _read_secret(args, generate=True)
    admin_key = None
    if args.admin_key_env:
        admin_key = os.environ.get(args.admin_key_env, "").strip()
        if not admin_key:
            raise CliError(f"--admin-key-env {args.admin_key_env}: that environment variable is empty or not set")
    _setup_logging()
    return run_async(_serve(args, game, players, rooms, secret, generated, admin_key))


async def _serve(args, game: Game, players: int, rooms: list[str], secret: bytes, generated: bool, admin_key: str | None) -> int:
    from netcode.errors import UsageError
    from netcode.server.tickserver import RoomConfig, TickServer
    from netcode.session.token import token_to_text

    server = TickServer(
        secret=secret, host=args.host, udp_port=args.port, http_port=args.ws_port, admin_key=admin_key, open_join=args.open_join
    )
    records = _record_paths(args.record, rooms)
    try:
        for name in rooms:
            config = RoomConfig(
                name=name,
                mode=args.mode,
                players=players,
                seed=args.seed,
                tick_rate=args.tick_rate or None,
                record=records.get(name),
                game_path=args.game,
            )
            server.add_room(game, config)
        await server.start()
    except (UsageError, GameError, ValueError, OSError) as exc:
        await server.stop()
        if isinstance(exc, OSError) and exc.filename is None:  # a socket: the port says which
            raise CliError(f"cannot serve on {args.host}: {exc.strerror or exc}") from None
        if isinstance(exc, OSError):  # a file (a recording)
            raise CliError(_one_line(exc)) from None
        raise CliError(str(exc)) from None
    rate = next(iter(server.rooms.values())).mode.tick_rate
    print(f"serving {game.describe()} ({args.mode}, {players} players, {rate} Hz) in room(s): {', '.join(rooms)}")
    print(f"  game       {server.udp_url}")
    print(f"  websocket  {server.ws_url}")
    print(f"  dashboard  {server.http_url}")
    if args.open_join and server.http_url:
        print(f"  play       {server.http_url}play  (open join: anyone reaching it may take a slot)")
    for name, path in records.items():
        print(f"  recording  {path} (room {name})")
    if generated:
        print(f"note: ${args.secret_env} is not set, so this run signs tokens with a random secret; tokens (24 h):")
        for name in rooms:
            for slot in range(players):
                token = server.mint_token(name, slot=slot, user=f"player{slot}", ttl=24 * 3600)
                print(f"  room {name} slot {slot}: {token_to_text(token)}")
    else:
        print(f"  tokens     ticksync token --room {rooms[0]} --slot N   (same secret)")
    if admin_key:
        print(f"  tokens     POST {server.http_url}api/tokens  (Authorization: Bearer <admin key>)")
    sys.stdout.flush()

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
    status = asyncio.create_task(_status(server, args.status_every)) if args.status_every > 0 else None
    try:
        try:
            await asyncio.wait_for(stop.wait(), args.duration)
        except asyncio.TimeoutError:
            why.append("--duration reached")
    finally:
        if status is not None:
            status.cancel()
        print(f"stopping ({why[0] if why else 'interrupted'}): closing sessions and recordings", flush=True)
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
    try:
        parse_url(args.url)
        tokens = [token_from_text(t) for t in args.token] if args.token else None
    except UsageError as exc:
        raise CliError(str(exc)) from None
    if args.count is not None and args.count < 1:
        raise CliError("--count must be at least 1")
    secret = None
    if tokens is not None:
        count = args.count or len(tokens)
        if count != len(tokens):
            raise CliError(f"--count {count} but {len(tokens)} --token given: one token per bot")
    else:
        if args.count is None:
            raise CliError("--count is required (or give one --token per bot)")
        count = args.count
        secret, _ = _read_secret(args)
    if not args.duration > 0:
        raise CliError("--duration must be positive")
    rate = game.tick_rate
    min_ticks = args.min_ticks if args.min_ticks is not None else int(min(rate, args.duration * rate / 4))
    _setup_logging()
    print(f"{count} bot(s) playing {game.describe()} at {args.url} for {args.duration:g} s", flush=True)
    reports = run_async(
        run_bots(
            args.url,
            game,
            count,
            args.duration,
            tokens=tokens,
            secret=secret,
            room=args.room,
            first_slot=args.first_slot,
            input_delay=args.input_delay,
            prediction_window=args.prediction_window,
            mode=args.mode,
        )
    )
    errors = {r.status for r in reports}
    if len(errors) == 1 and next(iter(errors)).startswith("error: "):
        # Every bot failed the same way before playing (a wrong URL path, say): the
        # command line's fault, one line, not a table of identical failures.
        raise CliError(next(iter(errors)).removeprefix("error: "))
    problems: dict[str, str] = {}
    for r in reports:
        if r.denied:
            problems[r.name] = f"denied: {r.denied}"
        elif not r.connects:
            problems[r.name] = r.status if r.status.startswith("never") else f"never connected ({r.status})"
        elif r.desyncs:
            problems[r.name] = f"desynced {r.desyncs} time(s)"
        elif r.ticks < min_ticks:
            problems[r.name] = f"only {r.ticks} ticks (wanted {min_ticks}): {r.status}"
    header = f"{'bot':<8} {'slot':>4} {'frames':>7} {'ticks':>7} {'rtt ms':>7} {'loss %':>6} {'desyncs':>7} {'reconn':>6}  status"
    print(header)
    print("-" * len(header))
    for r in reports:
        rtt = f"{r.rtt_ms:.2f}" if r.rtt_ms is not None else "-"
        slot = "-" if r.slot is None else r.slot
        status = problems.get(r.name, r.status)
        print(
            f"{r.name:<8} {slot!s:>4} {r.frames:>7} {r.ticks:>7} {rtt:>7} {r.loss_pct:>6.1f} {r.desyncs:>7} "
            f"{r.reconnects:>6}  {status}"
        )
    if problems:
        print(f"FAILED: {len(problems)} of {count} bot(s): " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        return 1
    print(f"ok: {count} bot(s) played, none desynced")
    return 0


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
    p = sub.add_parser("serve", help="serve a game over UDP and WebSocket, with an HTTP dashboard")
    p.add_argument("game", help="import path, e.g. demos.arena")
    p.add_argument("--mode", default="lockstep", help="network mode: lockstep or statesync (default lockstep)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7777, help="UDP port (0 picks a free one)")
    p.add_argument("--ws-port", type=int, default=8080, help="HTTP dashboard + WebSocket port (0 picks a free one)")
    p.add_argument("--players", type=int, default=0, help="player slots per room (default: min(8, the game's maximum))")
    p.add_argument("--room", action="append", metavar="NAME", help="room name (repeat for several rooms; default 'default')")
    p.add_argument("--record", metavar="FILE", help="record the match here (several rooms: FILE-ROOM); its directory must exist")
    p.add_argument("--force", action="store_true", help="overwrite the --record file(s) if they exist")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tick-rate", type=int, default=0, help="ticks per second (default: the game's)")
    _secret_options(p)
    p.add_argument("--admin-key-env", metavar="VAR", help="environment variable holding the key for POST /api/tokens")
    p.add_argument(
        "--open-join",
        action="store_true",
        help="POST /api/join mints tokens for free slots (the browser page /play uses it): anyone who can "
        "reach the dashboard may take a slot: for demos on a trusted network",
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--status-every", type=float, default=2.0, metavar="S", help="status table period (0: none)")
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
    p.add_argument("url", help="udp://host:port or ws://host:port/ws")
    p.add_argument("--game", required=True, help="import path of the game the server runs")
    p.add_argument("--count", type=int, help="number of bots (slots first-slot..)")
    p.add_argument("--duration", type=float, default=10.0, metavar="S")
    p.add_argument("--room", default="default")
    p.add_argument("--first-slot", type=int, default=0)
    p.add_argument("--min-ticks", type=int, help="fewer simulated ticks than this fails a bot (default: ~1 s of play)")
    p.add_argument(
        "--mode", choices=("auto", "lockstep", "statesync"), default="auto", help="what the room runs (auto: ask it)"
    )
    p.add_argument("--input-delay", type=int, default=2, help="lockstep: ticks between sampling and stamping")
    p.add_argument("--prediction-window", type=int, default=0, help="lockstep: ticks run ahead on predictions")
    _secret_options(p, tokens=True)
    p.set_defaults(func=cmd_bots)
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
