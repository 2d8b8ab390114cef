"""The TickServer's HTTP side: a live dashboard page, a JSON API, and token minting.

Routes (on the same aiohttp application as the WebSocket packet route)::

    GET  /                  the dashboard page (``web/dashboard.*``, no external assets)
    GET  /api/rooms         {"server": {...}, "rooms": [{...}, ...]} (a cluster node: every node's
                            rooms, each with its "node" and addresses, and a "cluster" section)
    GET  /api/dashboard     the same, plus per room its players, chart history, spectate link
    GET  /api/rooms/{name}  one room, with its mode's full stats and recent events
    POST /api/tokens        {"room", "slot"?, "user"?, "ttl"?, "role"?} -> {"token", ...}
    GET  /api/rooms/{name}/schema   what a client needs to decode the room's packets (below)
    POST /api/join          {"room"?, "spectator"?} -> {"token", ...}; only with open join
    GET  /play              the browser client page (state sync), from ``netcode/server/web/``
    GET  /web/{file}        its scripts (``ticksync.js`` + ``wire.js`` + ``entropy.js`` + ``bodies.js``: the protocol; ``arena.js``: the game)

Room creation and matchmaking (``POST /api/rooms``, ``POST /api/matchmake``, ...) are
:mod:`netcode.server.http_api`, on the same application.

JSON is orjson (this is what people and scripts read; packets never go through it).

The schema is how a client that is not Python (the browser module) learns a game's layout
without hard-coding it: the game identity checked in the handshake (name, version, the
fingerprint as 16 hex digits), the mode and its rates, the snapshot columns (field,
component, quantizer kind and parameters, field dtype, whether it is smooth: interpolated,
and coded against its motion) in wire order, the extras arrays
(dtype, shape, byte offset) and the input record (field offsets, sizes, kinds, limits).
It is derived from the game's replication spec and input dtype, never from one game.

Open join (``TickServer(open_join=True)``, ``ticksync serve --open-join``) is for demos on a
trusted network: anyone who can reach the dashboard gets a player token (or a spectator
token when every slot is taken or when asked). Spectator tokens alone (the dashboard's
spectate links) are also given where matchmaking is open: anyone may take a seat there anyway. The token names no slot and a fresh user
id, so the room assigns the lowest free slot when the client connects: two pages joining
at once never get the same slot. Without open join the route answers 403.

Token minting is how a matchmaker or a browser demo page gets connect tokens. It is off
unless the server has an admin key, and then only for requests that carry it as
``Authorization: Bearer <key>``; anything else is 403 (no hint which part was wrong). The
key is compared in constant time.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from aiohttp import web

from engine.visuals import viewer_spec

from netcode.server import http_api
from netcode.server.matchmaking import ApiError
from netcode.server.httputil import MAX_BODY, SERVER_KEY, authorized, json_error, json_response, read_json
from netcode.statesync.snapshot import SnapshotSchema
from netcode.session.token import PLAYER, SPECTATOR, token_to_text

if TYPE_CHECKING:
    from netcode.transport.server import TickServer

__all__ = ["build_app", "dashboard_report", "room_schema", "WEB_DIR"]

_MAX_TTL = 7 * 24 * 3600.0
_JOIN_TTL = 3600.0

#: The browser client's static files (no build step: what is here is what is served).
WEB_DIR = Path(__file__).resolve().parent / "web"
_WEB_TYPES = {".js": "text/javascript", ".html": "text/html", ".css": "text/css"}
_WEB_NAME = re.compile(r"^[A-Za-z0-9_-]+\.(?:js|html|css)$")  # one flat folder: no paths


def build_app(server: "TickServer") -> web.Application:
    """The dashboard and API for ``server`` (the caller adds the WebSocket route)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVER_KEY] = server
    app.router.add_get("/", _index)
    app.router.add_get("/api/rooms", _rooms)
    app.router.add_get("/api/dashboard", _dashboard)
    app.router.add_get("/api/rooms/{name}", _room)
    app.router.add_post("/api/tokens", _tokens)
    app.router.add_get("/api/rooms/{name}/schema", _schema)
    app.router.add_post("/api/join", _join)
    app.router.add_get("/play", _play)
    app.router.add_get("/web/{file}", _web_file)
    http_api.add_routes(app)
    return app


async def _index(request: web.Request) -> web.Response:
    return _static("dashboard.html")


def spectating_open(server: "TickServer") -> bool:
    """Anyone may watch (a spectator token from /api/join) on a server whose players may
    join freely anyway: open join or open matchmaking."""
    return server.open_join or server.matchmaker.config.access == "open"


def dashboard_report(server: "TickServer") -> dict:
    """What the dashboard page draws: the server report, and per room its players (link
    quality, traffic, input timing), its last two minutes of tick time and bandwidth, and a
    spectate link where the browser view can watch it."""
    out = server.report()
    watch = spectating_open(server)
    rooms = []
    for entry in out["rooms"]:
        room = server.rooms.get(entry["name"])
        if room is None:
            continue  # closed meanwhile
        entry["players_detail"] = room.players_report()
        entry["history"] = list(room.history)
        can = watch and room.config.mode == "statesync"
        entry["spectate"] = f"play?room={quote(room.name, safe='')}&spectate=1" if can else None
        rooms.append(entry)
    out["rooms"] = rooms
    return out


async def _dashboard(request: web.Request) -> web.Response:
    return json_response(dashboard_report(request.app[SERVER_KEY]))


async def _rooms(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    report = server.report()
    if server.cluster is not None:  # every node's rooms, each naming its node
        report = await server.cluster.annotate(report)
    return json_response(report)


async def _room(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    snap = request.app[SERVER_KEY].room_report(name)
    if snap is None:
        return json_error(404, f"no such room {name!r}")
    return json_response(snap)


async def _tokens(request: web.Request) -> web.Response:
    server: TickServer = request.app[SERVER_KEY]
    if not authorized(server, request):
        return json_error(403, "token minting needs the server's admin key (Authorization: Bearer <key>)")
    try:
        body = await read_json(request)
    except ApiError as exc:
        return json_error(exc.status, exc.reason)
    name = body.get("room")
    if not isinstance(name, str):
        return json_error(400, "'room' (a string) is required")
    room = server.rooms.get(name)
    if room is None:
        return json_error(404, f"no such room {name!r}")
    slot = body.get("slot", -1)
    if not isinstance(slot, int) or isinstance(slot, bool) or not -1 <= slot < room.config.players:
        return json_error(400, f"'slot' must be -1 (server-assigned) or 0..{room.config.players - 1}")
    user = body.get("user", "")
    if not isinstance(user, str) or len(user.encode()) > 64:
        return json_error(400, "'user' must be a string of at most 64 bytes")
    ttl = body.get("ttl", 3600)
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not 0 < ttl <= _MAX_TTL:
        return json_error(400, f"'ttl' must be seconds in (0, {_MAX_TTL:.0f}]")
    role_name = body.get("role", "player")
    role = {"player": PLAYER, "spectator": SPECTATOR, PLAYER: PLAYER, SPECTATOR: SPECTATOR}.get(role_name)
    if role is None or isinstance(role_name, bool):
        return json_error(400, "'role' must be 'player' or 'spectator'")
    token = server.mint_token(name, slot=slot, user=user, ttl=float(ttl), role=role)
    return json_response(
        {
            "token": token_to_text(token),
            "room": name,
            "slot": slot,
            "user": user,
            "role": "spectator" if role == SPECTATOR else "player",
            "ttl": ttl,
            "game": room.game.name,
            "game_version": room.game.version,
            "udp": server.udp_url,
            "ws": server.ws_url,
        }
    )


# -- the schema a non-Python client decodes packets with -----------------------------------
def _dtype(dt: np.dtype) -> dict:
    dt = np.dtype(dt)
    return {"dtype": dt.str, "kind": dt.kind, "itemsize": dt.itemsize}


def _quantizer(q: Any) -> dict:
    """``{"kind": "Int", "low": 0, "high": 65535, "bits": 16}``: the class name, its
    dataclass parameters, and its code width where it declares one."""
    out: dict[str, Any] = {"kind": type(q).__name__}
    if dataclasses.is_dataclass(q):
        out.update((f.name, getattr(q, f.name)) for f in dataclasses.fields(q))
    bits = getattr(q, "bits", None)
    if isinstance(bits, int):
        out["bits"] = bits
    return out


def _input_layout(dtype: np.dtype, limits: dict) -> dict:
    fields = []
    for name in dtype.names or ():
        sub, offset = dtype.fields[name][:2]
        base, shape = sub.subdtype if sub.subdtype is not None else (sub, ())
        fields.append(
            {
                "name": name,
                "offset": offset,
                "size": sub.itemsize,
                **_dtype(base),
                "shape": list(shape),
                "count": int(np.prod(shape, dtype=np.int64)),
                "limits": list(limits[name]) if name in limits else None,
            }
        )
    return {"itemsize": dtype.itemsize, "fields": fields}


def room_schema(server: "TickServer", name: str) -> dict | None:
    """What a client needs to speak to room ``name`` (None if there is no such room)."""
    room = server.rooms.get(name)
    if room is None:
        return None
    game, mode = room.game, room.mode
    rep = game.replication
    schema: SnapshotSchema | None = getattr(mode, "schema", None)
    if schema is None and rep is not None:
        schema = SnapshotSchema(rep, mode.state)
    players = room.config.players
    out: dict[str, Any] = {
        "room": name,
        "game": {"name": game.name, "version": game.version, "fingerprint": f"{game.fingerprint():016x}"},
        "mode": room.config.mode,
        "tick_rate": mode.tick_rate,
        "snapshot_every": getattr(mode, "snapshot_every", None),
        "players": players,
        "player_entities": [int(game.player_entity(s)) for s in range(players)],
        "input": _input_layout(game.input_dtype, dict(game.input_limits)),
        "view_field": getattr(game, "view_field", None),
        "ws_path": server.ws_path,
        "ws": server.ws_url,
        **viewer_spec(game),  # how a generic viewer draws it and which keys play it
    }
    if schema is None:
        out["replication"] = None
        return out
    # Smooth columns (the position and the spec's continuous fields) are interpolated by
    # clients, and snapshot deltas may be predicted from their motion (PROTOCOL.md).
    smooth = getattr(schema, "smooth", None)
    if smooth is None:
        smooth = np.zeros(schema.columns, bool)
        for fname, _, first, width, _, _ in schema.fields:
            smooth[first : first + width] = fname == schema.position
    fields, columns = [], []
    for fname, q, first, width, shape, dtype in schema.fields:
        qd = _quantizer(q)
        fields.append({"name": fname, "column": first, "columns": width, "shape": list(shape[1:]), **_dtype(dtype), "quantizer": qd})
        columns += [{"field": fname, "component": k, "quantizer": qd, "smooth": bool(smooth[first + k])} for k in range(width)]
    extras, offset = [], 0
    for ename in schema.extras:
        arr = mode.state[ename]
        extras.append({"name": ename, **_dtype(arr.dtype), "shape": list(arr.shape), "offset": offset, "size": arr.nbytes})
        offset += arr.nbytes
    out["replication"] = {
        "capacity": schema.capacity,
        "alive": schema.alive,
        "position": schema.position,
        "smooth": [f["name"] for f in fields if smooth[f["column"]]],
        "fields": fields,
        "columns": columns,
        "extras": extras,
        "extras_size": schema.extras_size,
        "coding": _coding(schema),
        "predictor": _predictor(schema),
    }
    return out


def _coding(schema: SnapshotSchema) -> dict | None:
    """How the browser decodes this room's entropy-coded snapshots (web/entropy.js), or
    None for the packed format; ``{"unsupported": why}`` where it cannot."""
    coding = getattr(schema, "coding", None)
    if coding is None or not coding.entropy:
        return None
    try:
        out = coding.describe()
    except ValueError as exc:
        return {"unsupported": str(exc)}
    if out["predictor"]:
        return {"unsupported": _OWN_PREDICTOR}
    return out


_OWN_PREDICTOR = "the game predicts its snapshots with its own function, which only Python clients run"


def _predictor(schema: SnapshotSchema) -> dict | None:
    """What a browser runs to expect each snapshot, packed or entropy-coded: None (the
    linear default), ``{"bodies": ...}`` (the engine's rigid-body predictor, web/bodies.js)
    or ``{"unsupported": why}`` (a function of the game's own)."""
    coding = getattr(schema, "coding", None)
    if coding is None:
        return None
    if coding.custom:
        return {"unsupported": _OWN_PREDICTOR}
    bodies = coding.bodies_json()
    return None if bodies is None else {"bodies": bodies}


async def _schema(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    out = room_schema(request.app[SERVER_KEY], name)
    if out is None:
        return json_error(404, f"no such room {name!r}")
    return json_response(out)


# -- open join ------------------------------------------------------------------------------
async def _join(request: web.Request) -> web.Response:
    server: TickServer = request.app[SERVER_KEY]
    try:
        body = await read_json(request, empty_ok=True)
    except ApiError as exc:
        return json_error(exc.status, exc.reason)
    watching = body.get("spectator", request.query.get("spectator") in ("1", "true")) is True
    if not server.open_join and not (watching and spectating_open(server)):
        return json_error(403, "open join is off on this server (ticksync serve --open-join); ask its operator for a token")
    name = body.get("room", request.query.get("room"))
    if name is None:  # the usual demo: one room, or one called "default"
        name = "default" if "default" in server.rooms or not server.rooms else next(iter(server.rooms))
    if not isinstance(name, str):
        return json_error(400, "'room' must be a string")
    room = server.rooms.get(name)
    if room is None:
        return json_error(404, f"no such room {name!r}")
    spectate = body.get("spectator", request.query.get("spectator") in ("1", "true"))
    if not isinstance(spectate, bool):
        return json_error(400, "'spectator' must be true or false")
    room.seats.sweep(server.now(), room.mode.present)
    free = room.seats.free(room.mode.present)  # seats held for players coming back are not free
    full = not len(free)
    role = SPECTATOR if spectate or full else PLAYER
    # A fresh user id and no slot: the room gives the lowest free slot at connect time
    # (and the same one again if this token reconnects), so concurrent joins never collide.
    user = "web-" + secrets.token_hex(4)
    token = server.mint_token(name, slot=-1, user=user, ttl=_JOIN_TTL, role=role)
    return json_response(
        {
            "token": token_to_text(token),
            "room": name,
            "role": "spectator" if role == SPECTATOR else "player",
            "slot": -1 if role == SPECTATOR else int(free[0]),  # expected: assigned on connect
            "full": full,
            "user": user,
            "ttl": _JOIN_TTL,
            "game": room.game.name,
            "game_version": room.game.version,
            "mode": room.config.mode,
            "ws": server.ws_url,
            "ws_path": server.ws_path,
            "schema": f"api/rooms/{quote(name, safe='')}/schema",
        }
    )


# -- the browser client's files -------------------------------------------------------------
def _static(name: str) -> web.Response:
    if not _WEB_NAME.match(name):
        raise web.HTTPNotFound()
    path = WEB_DIR / name
    try:
        data = path.read_bytes()
    except OSError:
        raise web.HTTPNotFound() from None
    # no-cache (revalidate), not no-store: the module is small but should update on reload.
    return web.Response(body=data, content_type=_WEB_TYPES[path.suffix], charset="utf-8", headers={"Cache-Control": "no-cache"})


async def _play(request: web.Request) -> web.Response:
    return _static("play.html")


async def _web_file(request: web.Request) -> web.Response:
    return _static(request.match_info["file"])
