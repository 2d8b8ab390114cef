"""The ``ticksync`` command line.

    ticksync run GAME --ticks N [--players P] [--record FILE]   headless run with bots
    ticksync replay FILE [--verify] [--seek T]                 re-simulate a recording
    ticksync check GAME                                        determinism check
    ticksync serve GAME [--port P] [--ws-port P2] [--record F] serve rooms over UDP + WebSocket
    ticksync token --room R [--slot N] [--spectator]           mint a connect token
    ticksync bots URL --game GAME --count N [--duration S]     headless bots against a server

GAME is an import path such as ``demos.arena`` (its ``GAME``) or ``demos.arena:Arena``.
Exit codes: 0 fine, 1 the check or verification found a divergence (or, for ``bots``, a bot
desynced or could not play), 2 bad arguments or unreadable input (one line on stderr,
never a traceback).

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
from typing import Callable, Sequence

import numpy as np

from engine.check import check
from engine.model import Game, GameError, load_game
from engine.replay import ReplayError, ReplayReader, ReplayWriter, replay, seek

__all__ = ["main"]


class CliError(Exception):
    """Something the user can fix: printed as one line, exit code 2."""


def _load(path: str) -> Game:
    try:
        return load_game(path)
    except GameError as exc:
        raise CliError(str(exc)) from None


class LiveTable:
    """Prints a row of progress about once a second (a growing table: fine on a terminal
    and in CI logs alike)."""

    def __init__(self, columns: Sequence[tuple[str, int]], out=sys.stdout, every: float = 1.0):
        self.columns = columns
        self.out = out
        self.every = every
        self._next = time.perf_counter() + every
        header = " ".join(f"{name:>{width}}" for name, width in columns)
        print(header, file=out)
        print("-" * len(header), file=out, flush=True)

    def due(self, now: float) -> bool:
        return now >= self._next

    def row(self, now: float, *values) -> None:
        self._next = now + self.every
        cells = []
        for (name, width), v in zip(self.columns, values):
            cells.append(f"{v:>{width}.2f}" if isinstance(v, float) else f"{v!s:>{width}}")
        print(" ".join(cells), file=self.out, flush=True)


def run_headless(
    game: Game,
    *,
    ticks: int,
    players: int,
    seed: int,
    record: str | None = None,
    game_path: str = "",
    table: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Play ``ticks`` ticks with scripted bots as fast as possible; optionally record."""
    game.check_players(players)
    state = game.create(seed, players)
    slots = np.arange(players)
    writer = None
    if record:
        writer = ReplayWriter(
            record,
            game,
            seed=seed,
            players=players,
            tick_rate=game.tick_rate,
            mode="offline",
            keyframe_every=30 * game.tick_rate,
            meta={"game_path": game_path},
        )
    live = LiveTable([("tick", 9), ("ticks/s", 10), ("p50 ms", 8), ("p99 ms", 8), ("state hash", 18)]) if table else None
    durations = np.zeros(ticks)
    start = last = clock()
    last_tick = 0
    try:
        for t in range(ticks):
            t0 = clock()
            inputs = game.bot_inputs(state, t, slots).astype(game.input_dtype, copy=False)
            game.sanitize_inputs(inputs)
            if writer:
                writer.record(t, inputs, state)
            game.step(state, inputs, t)
            now = clock()
            durations[t] = now - t0
            if live and (live.due(now) or t == ticks - 1):
                window = durations[last_tick : t + 1]
                rate = (t + 1 - last_tick) / max(now - last, 1e-9)
                p50, p99 = np.percentile(window, [50, 99]) * 1e3
                live.row(now, t + 1, rate, float(p50), float(p99), f"{state.hash():016x}")
                last, last_tick = now, t + 1
    finally:
        if writer:
            writer.close(final_state=state)
    elapsed = clock() - start
    return {
        "ticks": ticks,
        "elapsed": elapsed,
        "ticks_per_s": ticks / max(elapsed, 1e-9),
        "hash": state.hash(),
        "p50_ms": float(np.percentile(durations, 50) * 1e3) if ticks else 0.0,
        "p99_ms": float(np.percentile(durations, 99) * 1e3) if ticks else 0.0,
    }


def cmd_run(args) -> int:
    game = _load(args.game)
    players = args.players or min(game.max_players, 8)
    try:
        game.check_players(players)
    except GameError as exc:
        raise CliError(str(exc)) from None
    print(f"running {game.describe()}: {players} players, {args.ticks} ticks, seed {args.seed}")
    stats = run_headless(
        game, ticks=args.ticks, players=players, seed=args.seed, record=args.record, game_path=args.game
    )
    print(
        f"ran {stats['ticks']} ticks in {stats['elapsed']:.2f} s: {stats['ticks_per_s']:,.0f} ticks/s, "
        f"tick p50 {stats['p50_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms, final hash {stats['hash']:016x}"
    )
    if args.record:
        print(f"recorded to {args.record}")
    return 0


def cmd_replay(args) -> int:
    try:
        reader = ReplayReader(args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    path = args.game or reader.meta.get("game_path") or f"demos.{reader.game}"
    game = _load(path)
    reader.check_game(game)
    print(
        f"replay of {reader.game} {reader.game_version}: {reader.players} players, seed {reader.seed}, "
        f"{reader.tick_rate} Hz, mode {reader.mode}, {reader.ticks} ticks recorded"
    )
    if args.seek is not None:
        t0 = time.perf_counter()
        state = seek(reader, game, args.seek)
        print(f"state at tick {args.seek}: hash {state.hash():016x} ({time.perf_counter() - t0:.3f} s)")
        return 0
    t0 = time.perf_counter()
    result = replay(reader, game, verify=args.verify)
    elapsed = time.perf_counter() - t0
    rate = result.ticks / max(elapsed, 1e-9)
    seconds = result.ticks / reader.tick_rate if reader.tick_rate else 0
    print(f"re-simulated {result.ticks} ticks ({seconds:.0f} s of play) in {elapsed:.2f} s: {rate:,.0f} ticks/s")
    if reader.tail:
        print(f"warning: {reader.tail}; replayed up to there")
    if args.verify:
        if result.divergent_tick is not None:
            arrays = f" (arrays differing: {', '.join(result.differing)})" if result.differing else ""
            print(f"DIVERGED: the recorded state at tick {result.divergent_tick} differs from the re-simulation{arrays}")
            return 1
        print(
            f"verified: {result.hashes_checked} recorded hashes and {result.keyframes_checked} keyframes match"
        )
    return 0


def cmd_check(args) -> int:
    _load(args.game)  # a clear error before any work
    result = check(args.game, ticks=args.ticks, players=args.players, seed=args.seed, rollback=args.rollback)
    print(result.describe())
    return 0 if result.ok else 1


# ---------------------------------------------------------------------------------------
# serve / token / bots


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
            raise CliError(f"no server secret: set ${args.secret_env} (at least 16 bytes) or pass --secret-file")
        raw = text.encode("utf-8")
        where = f"${args.secret_env}"
    if len(raw) < 16:
        raise CliError(f"the secret in {where} is {len(raw)} bytes; it must be at least 16")
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
    from netcode.server import MODES

    if args.mode not in MODES:
        raise CliError(f"unknown mode {args.mode!r} (available: {', '.join(sorted(MODES))})")
    game = _load(args.game)
    players = args.players or min(game.max_players, 8)
    try:
        game.check_players(players)
    except GameError as exc:
        raise CliError(str(exc)) from None
    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be positive")
    for name in ("port", "ws_port"):
        if not 0 <= getattr(args, name) <= 65535:
            raise CliError(f"--{name.replace('_', '-')} must be a port number (0 picks a free one)")
    rooms = args.room or ["default"]
    if len(set(rooms)) != len(rooms):
        raise CliError("each --room name must be different")
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
    from netcode.server import RoomConfig, TickServer
    from netcode.token import token_to_text

    server = TickServer(secret=secret, host=args.host, udp_port=args.port, http_port=args.ws_port, admin_key=admin_key)
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
        if isinstance(exc, OSError):
            raise CliError(f"cannot serve on {args.host}: {exc.strerror or exc}") from None
        raise CliError(str(exc)) from None
    rate = next(iter(server.rooms.values())).mode.tick_rate
    print(f"serving {game.describe()} ({args.mode}, {players} players, {rate} Hz) in room(s): {', '.join(rooms)}")
    print(f"  game       {server.udp_url}")
    print(f"  websocket  {server.ws_url}")
    print(f"  dashboard  {server.http_url}")
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
            snap = room.snapshot()
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
    from netcode.token import PLAYER, SPECTATOR, mint_token, token_to_text

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
    from netcode.token import token_from_text

    game = _load(args.game)
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
        )
    )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticksync", description="Server-authoritative multiplayer engine")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a game headless with scripted bots")
    p.add_argument("game", help="import path, e.g. demos.arena")
    p.add_argument("--ticks", type=int, default=3600)
    p.add_argument("--players", type=int, default=0, help="default: min(8, the game's maximum)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--record", metavar="FILE", help="write the replay log here")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", help="re-simulate a recorded input log")
    p.add_argument("file")
    p.add_argument("--verify", action="store_true", help="compare recorded state hashes")
    p.add_argument("--seek", type=int, metavar="T", help="print the state hash at tick T")
    p.add_argument("--game", help="import path of the game (default: from the recording)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("check", help="determinism check (rollback and re-simulate every tick)")
    p.add_argument("game")
    p.add_argument("--ticks", type=int, default=600)
    p.add_argument("--players", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rollback", type=int, default=2)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("serve", help="serve a game over UDP and WebSocket, with an HTTP dashboard")
    p.add_argument("game", help="import path, e.g. demos.arena")
    p.add_argument("--mode", default="lockstep", help="network mode (default lockstep)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7777, help="UDP port (0 picks a free one)")
    p.add_argument("--ws-port", type=int, default=8080, help="HTTP dashboard + WebSocket port (0 picks a free one)")
    p.add_argument("--players", type=int, default=0, help="player slots per room (default: min(8, the game's maximum))")
    p.add_argument("--room", action="append", metavar="NAME", help="room name (repeat for several rooms; default 'default')")
    p.add_argument("--record", metavar="FILE", help="record the match here (several rooms: FILE-ROOM)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tick-rate", type=int, default=0, help="ticks per second (default: the game's)")
    _secret_options(p)
    p.add_argument("--admin-key-env", metavar="VAR", help="environment variable holding the key for POST /api/tokens")
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
    p.add_argument("--input-delay", type=int, default=2)
    p.add_argument("--prediction-window", type=int, default=0)
    _secret_options(p, tokens=True)
    p.set_defaults(func=cmd_bots)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("ticks", "players"):
        if getattr(args, name, 0) is not None and getattr(args, name, 0) < 0:
            parser.error(f"--{name} must not be negative")
    try:
        return args.func(args)
    except (CliError, ReplayError, GameError) as exc:
        print(f"ticksync: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
