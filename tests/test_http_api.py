"""Rooms and matchmaking over HTTP: a real TickServer on loopback (aiohttp, port 0), a real
aiohttp client, and real game clients connecting over UDP with the tokens the API returns."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from demos.arena import Arena
from helpers import SECRET, eventually, run_bounded
from netcode import GameClient, TickServer
from netcode.server.matchmaking import MatchmakingConfig, Seats, gate_admission
from netcode.session import Admission, Refused
from netcode.session.token import TokenClaims

GAME = Arena(npcs=0)
KEY = "admin-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _server(**mm) -> TickServer:
    config = MatchmakingConfig(**{"players": 2, **mm})
    server = TickServer(secret=SECRET, http_port=0, admin_key=KEY, matchmaking=config)
    server.matchmaker.register_game(GAME, "demos.arena")
    return server


async def _post(http, url, body=None, *, raw=None, headers=None):
    data = raw if raw is not None else None
    async with http.post(url, json=body if raw is None else None, data=data, headers=headers or {}) as r:
        return r.status, await r.json()


async def _play(server, ticket, name):
    """A bot connected with a ticket's token over UDP, playing in the background."""
    client = GameClient(GAME, ticket["udp"], ticket["token"], name=name, bot=True, mode="statesync")
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(duration=20, stop=stop))
    return client, stop, task


async def _quit(client, stop, task):
    stop.set()
    await task
    await client.close()


@pytest.mark.network
def test_create_list_admin_key_and_bad_input():
    async def scenario():
        server = _server()
        async with server, aiohttp.ClientSession() as http:
            api = server.http_url + "api/rooms"
            spec = {"name": "duel", "game": "arena", "mode": "statesync", "tick_rate": 20, "players": 3, "options": {}}
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": KEY}):
                status, body = await _post(http, api, spec, headers=headers)
                assert status == 403 and "admin key" in body["error"], headers
            assert "duel" not in server.rooms
            status, room = await _post(http, api, spec, headers=AUTH)
            assert status == 201 and room["name"] == "duel" and room["slots"] == 3 and room["tick_rate"] == 20
            assert server.rooms["duel"].config.mode == "statesync"

            async with http.get(api) as r:
                listing = await r.json()
            (duel,) = [x for x in listing["rooms"] if x["name"] == "duel"]
            assert duel["seats"] == {"pending": 0, "playing": 0, "reserved": 0, "free": 3, "load": 0.0}
            assert duel["game"] == "arena" and duel["temporary"] is True
            tokens = listing["server"]["tokens"]
            assert tokens["mint_api"] == "admin key" and tokens["matchmaking"] == "open" and "arena" in listing["server"]["games"]

            bad = [
                (None, b"{not json", 400, "not JSON"),
                (None, b"[1, 2]", 400, "JSON object"),
                ({"game": "chess"}, None, 404, "unknown game 'chess'"),
                ({"game": "arena", "players": 0}, None, 400, "'players'"),
                ({"game": "arena", "players": "two"}, None, 400, "'players'"),
                ({"game": "arena", "mode": "telepathy"}, None, 400, "unknown mode"),
                ({"game": "arena", "colour": "red"}, None, 400, "unknown field(s) colour"),
                ({"game": "arena", "options": {"warp": 9}}, None, 400, "options"),
                ({"name": "duel", "game": "arena"}, None, 409, "already exists"),
            ]
            for body, raw, want, reason in bad:
                status, answer = await _post(http, api, body, raw=raw, headers=AUTH)
                assert status == want and reason in answer["error"], (body, raw, answer)
            status, answer = await _post(http, server.http_url + "api/matchmake", raw=b"\xff\xfe")
            assert status == 400 and "error" in answer
            assert set(server.rooms) == {"duel"}  # nothing half-made

            async with http.delete(api + "/duel") as r:
                assert r.status == 403
            async with http.delete(api + "/duel", headers=AUTH) as r:
                assert r.status == 200
            assert not server.rooms

    run_bounded(scenario(), 30)


@pytest.mark.network
def test_join_or_create_reconnect_full_room_and_empty_room_closing():
    async def scenario():
        server = _server(reserve_s=1.5, pending_s=1.0, empty_timeout=0.6)
        async with server, aiohttp.ClientSession() as http:
            mm = server.http_url + "api/matchmake"
            status, alice = await _post(http, mm, {"game": "arena", "mode": "statesync", "user": "alice"})
            assert status == 200 and alice["created"] and alice["slot"] == 0 and alice["udp"] == server.udp_url
            assert alice["ws"] == server.ws_url and alice["reconnect_token"] and alice["token"]
            room = alice["room"]
            status, bob = await _post(http, mm, {"game": "demos.arena", "mode": "statesync", "user": "bob"})
            assert status == 200 and (bob["room"], bob["slot"], bob["created"]) == (room, 1, False)
            # Asking again with the same user id gives the same seat, not a second one.
            status, again = await _post(http, mm, {"game": "arena", "user": "alice"})
            assert (again["room"], again["slot"]) == (room, 0)

            # The room is full (both seats handed out): a join naming it is refused...
            status, answer = await _post(http, mm, {"room": room, "user": "carol"})
            assert status == 409 and "full" in answer["error"]
            # ...and join-or-create makes another room instead.
            status, carol = await _post(http, mm, {"game": "arena", "user": "carol"})
            assert status == 200 and carol["created"] and carol["room"] != room and carol["slot"] == 0

            # Real clients connect over UDP with the returned tokens and get their seats.
            a = await _play(server, alice, "alice")
            b = await _play(server, bob, "bob")
            await eventually(lambda: a[0].report.slot == 0 and b[0].report.slot == 1 and a[0].tick > 5, "alice and bob playing")
            async with http.get(server.http_url + "api/rooms") as r:
                listed = {x["name"]: x for x in (await r.json())["rooms"]}
            assert listed[room]["players"] == 2 and listed[room]["seats"]["free"] == 0

            # A token for alice's seat with another user id is refused while she holds it.
            mallory = GameClient(GAME, server.udp_url, server.mint_token(room, slot=0, user="mallory"), mode="statesync")
            report = await asyncio.wait_for(mallory.run(duration=3), 10)
            await mallory.close()
            assert report.denied and "seat_taken" in report.denied

            # Alice leaves: her seat is held for her, so the room stays full to others.
            await _quit(*a)
            await eventually(lambda: not server.rooms[room].mode.present[0], "alice gone")
            status, answer = await _post(http, mm, {"room": room, "user": "dave"})
            assert status == 409
            # Her reconnect token gets a fresh connect token for her old seat.
            status, back = await _post(http, server.http_url + "api/reconnect", {"reconnect_token": alice["reconnect_token"]})
            assert status == 200 and (back["room"], back["slot"], back["user"]) == (room, 0, "alice")
            a = await _play(server, back, "alice-again")
            await eventually(lambda: a[0].report.slot == 0 and a[0].report.connects == 1, "alice back in seat 0")

            status, answer = await _post(http, server.http_url + "api/reconnect", {"reconnect_token": "made-up"})
            assert status == 410 and "join again" in answer["error"]
            status, answer = await _post(http, server.http_url + "api/reconnect", {})
            assert status == 400

            # Carol never connected: her pending seat lapses; bob leaves and his hold lapses:
            # then his reconnect token is refused and the seat is free again.
            await _quit(*b)
            await asyncio.sleep(1.5 + 0.5)
            status, answer = await _post(http, server.http_url + "api/reconnect", {"reconnect_token": bob["reconnect_token"]})
            assert status == 410
            status, dave = await _post(http, mm, {"room": room, "user": "dave"})
            assert status == 200 and dave["slot"] == 1
            await _quit(*a)

            # Carol's room (made at run time) had no one for longer than the empty timeout.
            await eventually(lambda: carol["room"] not in server.rooms, "the empty room closing", timeout=5)
            async with http.get(server.http_url + "api/rooms") as r:
                assert carol["room"] not in {x["name"] for x in (await r.json())["rooms"]}

    run_bounded(scenario(), 60)


@pytest.mark.network
def test_matchmaking_access_admin_and_off():
    async def scenario():
        admin_only, off = _server(access="admin"), _server(access="off")
        async with admin_only, off, aiohttp.ClientSession() as http:
            body = {"game": "arena"}
            status, answer = await _post(http, admin_only.http_url + "api/matchmake", body)
            assert status == 403 and "admin key" in answer["error"]
            status, ticket = await _post(http, admin_only.http_url + "api/matchmake", body, headers=AUTH)
            assert status == 200 and ticket["token"]
            status, answer = await _post(http, off.http_url + "api/matchmake", body, headers=AUTH)
            assert status == 403 and "off" in answer["error"]

    run_bounded(scenario(), 30)


def test_the_seat_gate_without_a_network():
    """The admission gate on its own: holds, reservations, lapses (time is an argument)."""
    import numpy as np

    present = np.zeros(2, bool)
    seats = Seats(2, reserve_s=10.0, pending_s=5.0)

    def admit(claims, addr, now):
        present[claims.slot] = True
        return Admission(slot=claims.slot, info=b"")

    gate = gate_admission(seats, present, admit)
    seats.hand_out(0, "ann", now=0.0)
    with pytest.raises(Refused) as refused:
        gate(TokenClaims("r", 0, "bob", 0), "addr-b", 1.0)
    assert refused.value.code == "seat_taken"
    assert gate(TokenClaims("r", -1, "bob", 0), "addr-b", 1.0).slot == 1  # no slot named: the free one
    assert gate(TokenClaims("r", 0, "ann", 0), "addr-a", 2.0).slot == 0
    with pytest.raises(Refused) as refused:
        gate(TokenClaims("r", -1, "cat", 0), "addr-c", 2.0)
    assert refused.value.code == "room_full"
    present[0] = False  # ann left at t=3: her seat is reserved until t=13
    seats.sweep(3.0, present)
    assert seats.held[0].state == "reserved" and seats.free(present) == []
    seats.sweep(12.9, present)
    assert 0 in seats.held
    lapsed = seats.sweep(13.0, present)
    assert lapsed and seats.free(present) == [0]
    assert gate(TokenClaims("r", -1, "cat", 0), "addr-c", 14.0).slot == 0


def _samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} from Prometheus text (the official parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


@pytest.mark.network
def test_metrics_parse_as_prometheus_text_and_move_while_bots_play():
    from netcode.client import run_bots

    async def scenario():
        server, other = _server(), _server()  # two servers, one process: separate registries
        async with server, other, aiohttp.ClientSession() as http:
            spec = {"game": "arena", "mode": "statesync", "players": 2}
            status, made = await _post(http, server.http_url + "api/rooms", spec, headers=AUTH)
            room = made["name"]

            async def scrape(s):
                async with http.get(s.http_url + "metrics") as r:
                    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                    return _samples(await r.text())

            before = await scrape(server)
            assert ("ticksync_rooms", frozenset()) in before
            assert not any(dict(labels).get("room") == room for _, labels in (await scrape(other)))
            bots = asyncio.create_task(run_bots(server.udp_url, GAME, 2, 2.0, secret=SECRET, room=room, mode="statesync"))
            await eventually(lambda: server.rooms[room].mode.present.sum() == 2, "two bots in", timeout=5)
            await asyncio.sleep(0.5)
            during = await scrape(server)
            reports = await bots
            assert all(r.status == "ok" for r in reports), [r.status for r in reports]
            after = await scrape(server)

            r = frozenset({("room", room)})

            def val(samples, name, **labels):
                return samples.get((name, r | frozenset(labels.items())), 0.0)

            assert val(during, "ticksync_room_players") == 2
            for name, labels in (
                ("ticksync_room_ticks_total", {}),
                ("ticksync_room_tick_seconds_count", {}),
                ("ticksync_room_tick_seconds_sum", {}),
                ("ticksync_room_packets_total", {"direction": "in"}),
                ("ticksync_room_packets_total", {"direction": "out"}),
                ("ticksync_room_bytes_total", {"direction": "in"}),
                ("ticksync_room_bytes_total", {"direction": "out"}),
            ):
                assert val(before, name, **labels) < val(during, name, **labels) < val(after, name, **labels), name
            assert val(after, "ticksync_room_bytes_total", direction="out") > 1000
            wall, cpu = val(after, "ticksync_room_tick_p99_seconds"), val(after, "ticksync_room_tick_cpu_p99_seconds")
            assert ("ticksync_room_tick_cpu_p99_seconds", r) in after and 0 < cpu and 0 < wall
            count = val(after, "ticksync_room_tick_seconds_count")
            assert val(after, "ticksync_room_tick_seconds_bucket", le="+Inf") == count
            assert ("ticksync_room_late_ticks_total", r) in after and ("ticksync_room_dropped_ticks_total", r) in after
            assert ("ticksync_room_info", r | {("game", "arena"), ("mode", "statesync")}) in after
            assert after[("ticksync_packets_total", frozenset({("transport", "udp"), ("direction", "in")}))] > 0

    run_bounded(scenario(), 40)


@pytest.mark.network
def test_dashboard_json_carries_per_player_stats_charts_and_a_spectate_link():
    async def scenario():
        server = _server()
        async with server, aiohttp.ClientSession() as http:
            tickets = [(await _post(http, server.http_url + "api/matchmake", {"game": "arena", "user": u}))[1] for u in ("ann", "ben")]
            room = tickets[0]["room"]
            clients = [await _play(server, t, t["user"]) for t in tickets]
            await eventually(lambda: all(c[0].tick > 30 for c in clients), "both playing", timeout=8)
            await asyncio.sleep(1.2)  # a chart sample (one a second)
            async with http.get(server.http_url + "api/dashboard") as r:
                assert r.status == 200
                data = await r.json()
            (entry,) = [x for x in data["rooms"] if x["name"] == room]
            players = {p["user"]: p for p in entry["players_detail"]}
            assert set(players) == {"ann", "ben"} and {p["slot"] for p in players.values()} == {0, 1}
            for p in players.values():
                assert p["rtt_ms"] is not None and 0 <= p["rtt_ms"] < 200 and p["jitter_ms"] is not None
                assert p["bytes_in"] > 0 and p["bytes_out"] > 0 and p["packets_out"] > 10
                assert 0 <= p["loss_pct"] <= 100 and p["late_inputs"] >= 0 and p["input_lead_ticks"] is not None
            assert entry["history"] and len(entry["history"][-1]) == 5
            assert 0 < entry["cpu_ms_p99"] and 0 < entry["tick_ms_p99"]  # CPU beside wall: contention vs work
            t, mean_ms, worst_ms, kbps_in, kbps_out = entry["history"][-1]
            assert 0 < mean_ms <= worst_ms and kbps_out > 0
            assert entry["spectate"] == f"play?room={room}&spectate=1"
            # The link works on this server (matchmaking is open): a spectator token.
            async with http.post(server.http_url + "api/join", json={"room": room, "spectator": True}) as r:
                assert r.status == 200 and (await r.json())["role"] == "spectator"
            async with http.post(server.http_url + "api/join", json={"room": room}) as r:
                assert r.status == 403  # a player seat still needs open join or matchmaking
            for c in clients:
                await _quit(*c)

    run_bounded(scenario(), 40)
