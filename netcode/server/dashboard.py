"""The TickServer's HTTP side: a live dashboard page, a JSON API, and token minting.

Routes (on the same aiohttp application as the WebSocket packet route)::

    GET  /                  a small self-refreshing HTML page (no external assets)
    GET  /api/rooms         {"server": {...}, "rooms": [{...}, ...]}
    GET  /api/rooms/{name}  one room, with its mode's full stats and recent events
    POST /api/tokens        {"room", "slot"?, "user"?, "ttl"?, "role"?} -> {"token", ...}
    GET  /api/rooms/{name}/schema   what a client needs to decode the room's packets (below)
    POST /api/join          {"room"?, "spectator"?} -> {"token", ...}; only with open join
    GET  /play              the browser client page (state sync), from ``netcode/server/web/``
    GET  /web/{file}        its scripts (``ticksync.js`` + ``wire.js``: the protocol; ``arena.js``: the game)

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
token when every slot is taken or when asked). The token names no slot and a fresh user
id, so the room assigns the lowest free slot when the client connects: two pages joining
at once never get the same slot. Without open join the route answers 403.

Token minting is how a matchmaker or a browser demo page gets connect tokens. It is off
unless the server has an admin key, and then only for requests that carry it as
``Authorization: Bearer <key>``; anything else is 403 (no hint which part was wrong). The
key is compared in constant time.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import orjson
from aiohttp import web

from engine.visuals import viewer_spec

from netcode.statesync.snapshot import SnapshotSchema
from netcode.session.token import PLAYER, SPECTATOR, token_to_text

if TYPE_CHECKING:
    from netcode.transport.server import TickServer

__all__ = ["build_app", "room_schema", "PAGE", "WEB_DIR"]

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_MAX_TTL = 7 * 24 * 3600.0
_MAX_BODY = 16 * 1024
_SERVER_KEY: web.AppKey = web.AppKey("ticksync_server", object)
_JOIN_TTL = 3600.0

#: The browser client's static files (no build step: what is here is what is served).
WEB_DIR = Path(__file__).resolve().parent / "web"
_WEB_TYPES = {".js": "text/javascript", ".html": "text/html", ".css": "text/css"}
_WEB_NAME = re.compile(r"^[A-Za-z0-9_-]+\.(?:js|html|css)$")  # one flat folder: no paths


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj, option=_JSON_OPTIONS),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def build_app(server: "TickServer") -> web.Application:
    """The dashboard and API for ``server`` (the caller adds the WebSocket route)."""
    app = web.Application(client_max_size=_MAX_BODY)
    app[_SERVER_KEY] = server
    app.router.add_get("/", _index)
    app.router.add_get("/api/rooms", _rooms)
    app.router.add_get("/api/rooms/{name}", _room)
    app.router.add_post("/api/tokens", _tokens)
    app.router.add_get("/api/rooms/{name}/schema", _schema)
    app.router.add_post("/api/join", _join)
    app.router.add_get("/play", _play)
    app.router.add_get("/web/{file}", _web_file)
    return app


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _rooms(request: web.Request) -> web.Response:
    return _json(request.app[_SERVER_KEY].report())


async def _room(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    snap = request.app[_SERVER_KEY].room_report(name)
    if snap is None:
        return _error(404, f"no such room {name!r}")
    return _json(snap)


def _authorized(server: "TickServer", request: web.Request) -> bool:
    key = server.admin_key
    if not key:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), key.encode())


async def _tokens(request: web.Request) -> web.Response:
    server: TickServer = request.app[_SERVER_KEY]
    if not _authorized(server, request):
        return _error(403, "token minting needs the server's admin key (Authorization: Bearer <key>)")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "the body must be a JSON object")
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "request body too large")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    name = body.get("room")
    if not isinstance(name, str):
        return _error(400, "'room' (a string) is required")
    room = server.rooms.get(name)
    if room is None:
        return _error(404, f"no such room {name!r}")
    slot = body.get("slot", -1)
    if not isinstance(slot, int) or isinstance(slot, bool) or not -1 <= slot < room.config.players:
        return _error(400, f"'slot' must be -1 (server-assigned) or 0..{room.config.players - 1}")
    user = body.get("user", "")
    if not isinstance(user, str) or len(user.encode()) > 64:
        return _error(400, "'user' must be a string of at most 64 bytes")
    ttl = body.get("ttl", 3600)
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not 0 < ttl <= _MAX_TTL:
        return _error(400, f"'ttl' must be seconds in (0, {_MAX_TTL:.0f}]")
    role_name = body.get("role", "player")
    role = {"player": PLAYER, "spectator": SPECTATOR, PLAYER: PLAYER, SPECTATOR: SPECTATOR}.get(role_name)
    if role is None or isinstance(role_name, bool):
        return _error(400, "'role' must be 'player' or 'spectator'")
    token = server.mint_token(name, slot=slot, user=user, ttl=float(ttl), role=role)
    return _json(
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
    }
    return out


async def _schema(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    out = room_schema(request.app[_SERVER_KEY], name)
    if out is None:
        return _error(404, f"no such room {name!r}")
    return _json(out)


# -- open join ------------------------------------------------------------------------------
async def _join(request: web.Request) -> web.Response:
    server: TickServer = request.app[_SERVER_KEY]
    if not server.open_join:
        return _error(403, "open join is off on this server (ticksync serve --open-join); ask its operator for a token")
    body: Any = {}
    try:
        raw = await request.read()
        if raw.strip():
            body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error(400, "the body must be a JSON object (or empty)")
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "request body too large")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object (or empty)")
    name = body.get("room", request.query.get("room"))
    if name is None:  # the usual demo: one room, or one called "default"
        name = "default" if "default" in server.rooms or not server.rooms else next(iter(server.rooms))
    if not isinstance(name, str):
        return _error(400, "'room' must be a string")
    room = server.rooms.get(name)
    if room is None:
        return _error(404, f"no such room {name!r}")
    spectate = body.get("spectator", request.query.get("spectator") in ("1", "true"))
    if not isinstance(spectate, bool):
        return _error(400, "'spectator' must be true or false")
    free = np.flatnonzero(~np.asarray(room.mode.present, bool))
    full = not len(free)
    role = SPECTATOR if spectate or full else PLAYER
    # A fresh user id and no slot: the room gives the lowest free slot at connect time
    # (and the same one again if this token reconnects), so concurrent joins never collide.
    user = "web-" + secrets.token_hex(4)
    token = server.mint_token(name, slot=-1, user=user, ttl=_JOIN_TTL, role=role)
    return _json(
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


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ticksync server</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  #meta { color: #666; margin-bottom: 1em; }
  table { border-collapse: collapse; background: #fff; }
  th, td { padding: .3em .7em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
  th { background: #eee; }
  td.l, th.l { text-align: left; }
  .bad { color: #b00; font-weight: bold; }
  #err { color: #b00; }
</style>
</head>
<body>
<h1>ticksync server</h1>
<div id="meta">loading&hellip;</div>
<p>Play or watch a state-sync room in the browser: <a href="/play">/play</a> (add
<code>?token=...</code>, or start the server with <code>--open-join</code>;
<code>?spectate=1</code> to watch, <code>?room=NAME</code> for another room).</p>
<table>
  <thead><tr>
    <th class="l">room</th><th class="l">game</th><th class="l">mode</th><th class="l">status</th>
    <th>tick</th><th>players</th><th>tick p50 ms</th><th>tick p99 ms</th><th>late ticks</th>
    <th>dropped ticks</th><th>kbps in</th><th>kbps out</th><th>bytes in</th><th>bytes out</th>
    <th>desyncs</th><th class="l">drops</th>
  </tr></thead>
  <tbody id="rooms"></tbody>
</table>
<p id="err"></p>
<script>
"use strict";
function fmt(v, d) { return typeof v === "number" ? v.toFixed(d) : String(v); }
function drops(o) {
  const parts = Object.entries(o || {}).map(([k, v]) => k + " " + v);
  return parts.length ? parts.join(", ") : "-";
}
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}
async function refresh() {
  try {
    const res = await fetch("api/rooms", {cache: "no-store"});
    const data = await res.json();
    const s = data.server;
    document.getElementById("meta").textContent =
      [s.udp, s.ws].filter(Boolean).join("  |  ") + "  |  up " + fmt(s.uptime_s, 0) + " s";
    const body = document.getElementById("rooms");
    body.replaceChildren();
    for (const r of data.rooms) {
      const tr = document.createElement("tr");
      cell(tr, r.name, "l"); cell(tr, r.game + " " + r.game_version, "l"); cell(tr, r.mode, "l");
      cell(tr, r.status, "l" + (r.status.startsWith("error") ? " bad" : ""));
      cell(tr, r.tick); cell(tr, r.players + "/" + r.slots);
      cell(tr, fmt(r.tick_ms_p50, 3)); cell(tr, fmt(r.tick_ms_p99, 3));
      cell(tr, r.late_ticks); cell(tr, r.dropped_ticks);
      cell(tr, fmt(r.kbps_in, 1)); cell(tr, fmt(r.kbps_out, 1));
      cell(tr, r.bytes_in); cell(tr, r.bytes_out);
      cell(tr, r.desyncs, r.desyncs ? "bad" : "");
      cell(tr, drops(Object.assign({}, r.drops, r.denied)), "l");
      body.appendChild(tr);
    }
    document.getElementById("err").textContent = "";
  } catch (e) {
    document.getElementById("err").textContent = "server unreachable (" + e + ")";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""
