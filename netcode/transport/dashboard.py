"""The TickServer's HTTP side: a live dashboard page, a JSON API, and token minting.

Routes (on the same aiohttp application as the WebSocket packet route)::

    GET  /                  a small self-refreshing HTML page (no external assets)
    GET  /api/rooms         {"server": {...}, "rooms": [{...}, ...]}
    GET  /api/rooms/{name}  one room, with its mode's full stats and recent events
    POST /api/tokens        {"room", "slot"?, "user"?, "ttl"?, "role"?} -> {"token", ...}

JSON is orjson (this is what people and scripts read; packets never go through it).

Token minting is how a matchmaker or a browser demo page gets connect tokens. It is off
unless the server has an admin key, and then only for requests that carry it as
``Authorization: Bearer <key>``; anything else is 403 (no hint which part was wrong). The
key is compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ..token import PLAYER, SPECTATOR, token_to_text

if TYPE_CHECKING:
    from .server import TickServer

__all__ = ["build_app", "PAGE"]

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_MAX_TTL = 7 * 24 * 3600.0
_MAX_BODY = 16 * 1024
_SERVER_KEY: web.AppKey = web.AppKey("ticksync_server", object)


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
    return app


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _rooms(request: web.Request) -> web.Response:
    return _json(request.app[_SERVER_KEY].snapshot())


async def _room(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    snap = request.app[_SERVER_KEY].room_snapshot(name)
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
