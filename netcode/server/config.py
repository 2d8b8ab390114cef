"""``ticksync serve --config FILE``: the server's settings in TOML, beside the flags.

::

    game = "demos.arena"          # the default game of the rooms below
    mode = "statesync"
    host = "127.0.0.1"
    port = 7777                   # UDP
    ws_port = 8080                # HTTP dashboard, API and WebSocket
    players = 8
    games = ["demos.pong"]        # more games rooms may be made of at run time
    admin_key_file = "admin.key"  # else $TICKSYNC_ADMIN_KEY, else one is made and printed
    redis = "redis://127.0.0.1:6379"  # join a cluster (netcode/server/cluster.py)
    advertise = "game1.example.net"  # the host in the addresses handed out (default: host)

    [matchmaking]
    access = "open"               # open, admin (needs the admin key) or off
    reserve_s = 30                # a seat stays held this long after its player left
    empty_timeout = 60            # rooms made at run time close after this long empty
    max_rooms = 64

    [[rooms]]                     # rooms made at start (default: one called "default")
    name = "duel"
    players = 2
    tick_rate = 30
    options = { snapshot_every = 2 }

A flag given on the command line wins over the file. Unknown keys and wrong types are
errors naming the key, so a typo does not silently fall back to a default.
"""

from __future__ import annotations

import tomllib
from typing import Any

from netcode.errors import UsageError

__all__ = ["SERVE_DEFAULTS", "read_config", "merge"]

#: Every top-level setting, with its default when neither the file nor a flag gives it.
SERVE_DEFAULTS: dict[str, Any] = {
    "game": None,
    "mode": "lockstep",
    "host": "127.0.0.1",
    "port": 7777,
    "ws_port": 8080,
    "players": 0,
    "seed": 1,
    "tick_rate": 0,
    "record": None,
    "open_join": False,
    "admin_key_file": None,
    "duration": None,
    "status_every": 2.0,
    "games": [],
    "rooms": [],
    "matchmaking": {},
    "redis": None,
    "advertise": None,
}
_TYPES: dict[str, tuple[type, ...]] = {
    "game": (str,),
    "mode": (str,),
    "host": (str,),
    "port": (int,),
    "ws_port": (int,),
    "players": (int,),
    "seed": (int,),
    "tick_rate": (int,),
    "record": (str,),
    "open_join": (bool,),
    "admin_key_file": (str,),
    "duration": (int, float),
    "status_every": (int, float),
    "games": (list,),
    "rooms": (list,),
    "matchmaking": (dict,),
    "redis": (str,),
    "advertise": (str,),
}
_ROOM_KEYS = {"name": (str,), "game": (str,), "mode": (str,), "players": (int,), "tick_rate": (int,), "seed": (int,), "record": (str,), "options": (dict,)}
_MATCHMAKING_KEYS = {
    "access": (str,),
    "reserve_s": (int, float),
    "pending_s": (int, float),
    "token_ttl": (int, float),
    "empty_timeout": (int, float),
    "max_rooms": (int,),
    "players": (int,),
}


def _check(where: str, table: dict, types: dict[str, tuple[type, ...]]) -> None:
    for key, value in table.items():
        if key not in types:
            raise UsageError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(types))})")
        want = types[key]
        if not isinstance(value, want) or (isinstance(value, bool) and bool not in want):
            names = " or ".join(t.__name__ for t in want)
            raise UsageError(f"{where}: {key} must be {names}, not {type(value).__name__}")


def read_config(path: str) -> dict[str, Any]:
    """The settings in the TOML file at ``path``, checked (UsageError names the problem)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    _check(path, data, _TYPES)
    for i, room in enumerate(data.get("rooms", [])):
        if not isinstance(room, dict):
            raise UsageError(f"{path}: rooms[{i}] must be a table ([[rooms]])")
        _check(f"{path}: rooms[{i}]", room, _ROOM_KEYS)
        if "name" not in room:
            raise UsageError(f"{path}: rooms[{i}] needs a name")
    if not all(isinstance(g, str) for g in data.get("games", [])):
        raise UsageError(f"{path}: games must be a list of import paths")
    _check(f"{path}: [matchmaking]", data.get("matchmaking", {}), _MATCHMAKING_KEYS)
    return data


def merge(flags: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Flags (None: not given) over the file over :data:`SERVE_DEFAULTS`."""
    out = dict(SERVE_DEFAULTS)
    out.update(config)
    out.update((k, v) for k, v in flags.items() if v is not None)
    return out
