"""The desktop window's commands of the ``ticksync`` CLI:

    ticksync play GAME http://HOST:PORT | URL [--token T] [--room R] [--slot N] [--spectate] [--mode auto]
    ticksync replay FILE --watch [--speed X] [--start T]

``play`` takes a seat from the server's matchmaking (``http://host:port``), or connects to
``udp://host:port`` or ``ws://host:port/ws`` with a token given, or one minted from the
server secret (as ``bots`` does). Both take ``--seconds`` / ``--max-frames``
to end on their own (scripts and tests) and ``--size WxH``. pygame-ce is only imported when
a window opens, so the rest of the CLI works without it.
"""

from __future__ import annotations

import argparse
import re
import time

from engine.cli import CliError, load_game_or_fail

__all__ = ["add_commands"]


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{2,5})x(\d{2,5})", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 960x640")
    return int(m.group(1)), int(m.group(2))


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, metavar="S", help="close the window after S seconds")
    p.add_argument("--max-frames", type=int, metavar="N", help="close the window after N frames")
    p.add_argument("--size", type=_size, default=(960, 640), metavar="WxH", help="window size (default 960x640)")


def _check_limits(args) -> None:
    if args.seconds is not None and not args.seconds > 0:
        raise CliError("--seconds must be positive")
    if args.max_frames is not None and args.max_frames < 1:
        raise CliError("--max-frames must be at least 1")


def cmd_play(args, read_secret) -> int:
    from engine.loop import run_async
    from netcode.client import matchmake, parse_url
    from netcode.desktop.play import play
    from netcode.errors import UsageError
    from netcode.session.token import PLAYER, SPECTATOR, mint_token, token_from_text

    _check_limits(args)
    game = load_game_or_fail(args.game)
    url = args.url
    ticket = None
    try:
        token = token_from_text(args.token) if args.token else None
        if url.startswith(("http://", "https://")):
            if args.spectate:
                raise UsageError("--spectate: give the room's udp:// or ws:// URL (matchmaking seats players)")
            # A seat from the server's join-or-create matchmaking: its token and address.
            mode = None if args.mode == "auto" else args.mode
            (ticket,) = run_async(matchmake(url, game, 1, mode=mode, room=args.room))
            url = ticket["udp"] or ticket["ws"]
            token = token_from_text(ticket["token"])
            print(f"matchmaking: room {ticket['room']} ({ticket['mode']}), slot {ticket['slot']}, {url}", flush=True)
        parse_url(url)
    except UsageError as exc:
        raise CliError(str(exc)) from None
    if token is None:
        try:
            secret, _ = read_secret(args)
        except CliError as exc:
            raise CliError(f"{exc}; or pass --token T (ticksync serve prints one per slot)") from None
        role = SPECTATOR if args.spectate else PLAYER
        token = mint_token(secret, args.room or "default", expires=time.time() + 24 * 3600, slot=-1 if args.spectate else args.slot,
                           user=args.user, role=role)
    try:
        # With a matchmaking seat, the window follows the room if its server dies (asking the node it came from).
        cluster = [args.url] if ticket is not None else []
        result = run_async(play(game, url, token, mode=args.mode, size=args.size, seconds=args.seconds, max_frames=args.max_frames,
                                ticket=ticket, cluster=cluster))
    except UsageError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:  # an unknown host, a network that is down
        raise CliError(f"cannot reach {args.url}: {exc.strerror or exc}") from None
    r = result.report
    rtt = f", rtt {r.rtt_ms:.1f} ms" if r.rtt_ms is not None else ""
    moved = f"; moved {r.relocations} time(s), now at {r.url}" if r.relocations else ""
    print(f"{result.frames} frames drawn; slot {r.slot}; {result.why}; {r.status}{rtt}, loss {r.loss_pct:.1f}%{moved}")
    return 0 if r.played else 1


def cmd_watch(args) -> int:
    from engine.replay import ReplayReader
    from netcode.desktop.watch import watch
    from netcode.errors import UsageError

    _check_limits(args)
    try:
        reader = ReplayReader(args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    game = load_game_or_fail(args.game or reader.meta.get("game_path") or f"demos.{reader.game}")
    reader.check_game(game)
    if not 0 <= args.start <= reader.ticks:
        raise CliError(f"--start {args.start}: this recording has ticks 0..{reader.ticks}")
    try:
        result = watch(reader, game, start=args.start, speed=args.speed, size=args.size, seconds=args.seconds, max_frames=args.max_frames)
    except UsageError as exc:
        raise CliError(str(exc)) from None
    print(f"{result.frames} frames drawn; tick {result.tick}/{reader.ticks}; {result.why}")
    return 0


def add_commands(sub, secret_options, read_secret) -> None:
    """Add ``play``, and ``--watch`` to the engine's ``replay`` (which runs as before without it)."""
    p = sub.add_parser("play", help="play a game in a desktop window (pygame-ce)")
    p.add_argument("game", help="import path of the game the server runs, e.g. demos.arena")
    p.add_argument("url", help="http://host:port (a seat from the server's matchmaking), or udp://host:port or "
                               "ws://host:port/ws with --token or the server secret")
    p.add_argument("--room", default=None, help="the room to join (default: matchmaking chooses; 'default' with a minted token)")
    p.add_argument("--slot", type=int, default=-1, help="player slot for a minted token (-1: the server assigns one)")
    p.add_argument("--user", default="desktop", help="user id for a minted token (reconnects keep the slot)")
    p.add_argument("--spectate", action="store_true", help="watch instead of playing")
    p.add_argument("--mode", default="auto", choices=("auto", "lockstep", "statesync"))
    _limits(p)
    secret_options(p)
    p.add_argument("--token", metavar="T", help="a connect token (default: minted from the server secret)")
    p.set_defaults(func=lambda args: cmd_play(args, read_secret))

    replay = sub.choices["replay"]
    replay.add_argument("--watch", action="store_true", help="play the recording in a window (pygame-ce)")
    replay.add_argument("--speed", type=float, default=1.0, help="--watch: playback speed (default 1)")
    replay.add_argument("--start", type=int, default=0, metavar="T", help="--watch: start at tick T")
    _limits(replay)
    plain = replay.get_default("func")
    replay.set_defaults(func=lambda args: cmd_watch(args) if args.watch else plain(args))
