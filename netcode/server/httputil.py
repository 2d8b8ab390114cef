"""What every HTTP route of the server shares: JSON answers (orjson), JSON errors with a
reason, the admin-key check, and reading a request's JSON body."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from netcode.server.matchmaking import ApiError

if TYPE_CHECKING:
    from netcode.server.tickserver import TickServer

__all__ = ["SERVER_KEY", "MAX_BODY", "authorized", "json_error", "json_response", "read_json", "server_of"]

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
MAX_BODY = 16 * 1024
SERVER_KEY: web.AppKey = web.AppKey("ticksync_server", object)



def server_of(request: web.Request) -> "TickServer":
    return request.app[SERVER_KEY]


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj, option=JSON_OPTIONS),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def json_error(status: int, message: str, retry_after: float | None = None) -> web.Response:
    """``{"error": message}``; ``retry_after`` (seconds): a ``Retry-After`` header, for a
    503 that will pass (a room being resumed elsewhere)."""
    if retry_after is None:
        return json_response({"error": message}, status)
    seconds = max(1, round(retry_after))
    return json_response({"error": message, "retry_after": seconds}, status, {"Retry-After": str(seconds)})


def authorized(server: "TickServer", request: web.Request) -> bool:
    """The request carries ``Authorization: Bearer <the admin key>`` (compared in constant
    time); False when the server has no admin key."""
    key = server.admin_key
    if not key:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), key.encode())


async def read_json(request: web.Request, *, empty_ok: bool = False) -> dict:
    """The request's body as a JSON object, or :class:`ApiError` saying what is wrong."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"request body too large (at most {MAX_BODY} bytes)") from None
    if empty_ok and not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body
