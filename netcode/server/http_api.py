"""Rooms and matchmaking over HTTP (the routes; the logic is :mod:`netcode.server.matchmaking`).

::

    POST   /api/rooms           admin: {"game", "name"?, "mode"?, "tick_rate"?, "players"?,
                                "seed"?, "options"?} -> 201 the room (as GET /api/rooms lists it)
    DELETE /api/rooms/{name}    admin: close a room (its players are told why)
    POST   /api/matchmake       {"game", "mode"?, "user"?, "room"?} -> a seat: {"room", "slot",
                                "token", "reconnect_token", "udp", "ws", "created", ...}
    POST   /api/reconnect       {"reconnect_token"} -> a fresh connect token for the same seat,
                                while it is held (410 once it is not); on a cluster node, for a
                                seat on any node (503 + Retry-After while its room is being
                                resumed on another node)
    GET    /metrics             Prometheus text (:mod:`netcode.server.metrics`)

Admin routes need ``Authorization: Bearer <admin key>`` (403 otherwise, and 403 on a server
with no admin key). ``/api/matchmake`` is open to anyone, needs the admin key, or answers
403, as the server's matchmaking access says (``open``, ``admin``, ``off``). Every refusal
is a 4xx (or 503 when the server holds its maximum of rooms) with ``{"error": reason}``.

On a cluster node (``ticksync serve --redis``), join-or-create sees every node's rooms and
may hand out a seat on another node, and a room name must be free cluster-wide
(:mod:`netcode.server.cluster`).
"""

from __future__ import annotations

from aiohttp import web

from netcode.server.cluster import FORWARDED
from netcode.server.httputil import authorized, json_error, json_response, read_json, server_of
from netcode.server.matchmaking import ApiError
from netcode.server.metrics import metrics_text

__all__ = ["add_routes"]

_ADMIN_ONLY = "this needs the server's admin key (Authorization: Bearer <key>)"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/rooms", _create_room)
    app.router.add_delete("/api/rooms/{name}", _close_room)
    app.router.add_post("/api/matchmake", _matchmake)
    app.router.add_post("/api/reconnect", _reconnect)
    app.router.add_get("/metrics", _metrics)


async def _create_room(request: web.Request) -> web.Response:
    server = server_of(request)
    if not authorized(server, request):
        return json_error(403, _ADMIN_ONLY)
    try:
        body = await read_json(request)
        if server.cluster is not None:
            await server.cluster.check_name_free(body.get("name"))
        room = server.matchmaker.create_room(body)
        if server.cluster is not None:
            await server.cluster.refresh()  # listed cluster-wide before we answer
    except ApiError as exc:
        return json_error(exc.status, exc.reason)
    return json_response(room.report(), 201)


async def _close_room(request: web.Request) -> web.Response:
    server = server_of(request)
    if not authorized(server, request):
        return json_error(403, _ADMIN_ONLY)
    name = request.match_info["name"]
    if name not in server.rooms:
        if server.cluster is None or _forwarded(server, request):
            return json_error(404, f"no such room {name!r}")
        try:  # a room on another node: its node closes it
            return json_response(await server.cluster.close_room(name))
        except ApiError as exc:
            return json_error(exc.status, exc.reason)
    room = await server.close_room(name, "room closed by the operator")
    if server.cluster is not None:
        await server.cluster.refresh()  # gone from the cluster's listings before we answer
    return json_response({"closed": name, "ticks": room.mode.tick})


async def _matchmake(request: web.Request) -> web.Response:
    server = server_of(request)
    access = server.matchmaker.config.access
    if access == "off":
        return json_error(403, "matchmaking is off on this server; ask its operator for a token")
    if access == "admin" and not authorized(server, request):
        return json_error(403, "matchmaking on this server " + _ADMIN_ONLY.removeprefix("this "))
    try:
        body = await read_json(request)
        if server.cluster is None:
            ticket = server.matchmaker.join_or_create(body, server.now())
        elif _forwarded(server, request):
            ticket = await server.cluster.answer_forwarded(body, server.now())
        else:
            ticket = await server.cluster.matchmake(body, server.now())  # any node's rooms
    except ApiError as exc:
        return json_error(exc.status, exc.reason)
    return json_response(ticket)


def _forwarded(server, request: web.Request) -> bool:
    """A join another cluster node routed here: answer from this node's rooms."""
    return FORWARDED in request.headers and authorized(server, request)


async def _reconnect(request: web.Request) -> web.Response:
    server = server_of(request)
    try:
        body = await read_json(request)
        if server.cluster is None or _forwarded(server, request):
            ticket = server.matchmaker.reconnect(body, server.now())
        else:
            ticket = await server.cluster.reconnect(body, server.now())  # a seat on any node
    except ApiError as exc:
        return json_error(exc.status, exc.reason, exc.retry_after)
    return json_response(ticket)


async def _metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    body = metrics_text(server_of(request).metrics)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
