"""Rooms across processes on Redis (netcode/server/cluster.py), against a real redis-server
the test starts itself (the ``redis_server`` fixture) and real ``ticksync serve --redis``
nodes in child processes on loopback: listing and join-or-create on any node see every
node's rooms, new rooms go to the least-loaded node, real clients join over UDP with the
tokens another node handed out, a node killed with SIGKILL leaves the listings within the
heartbeat's expiry, and a node that loses Redis keeps its rooms playing and re-registers."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from demos.arena import Arena
from helpers import eventually, run_bounded
from netcode import GameClient
from serving import ROOT, child_env, start_serve, stop

pytestmark = pytest.mark.network

GAME = Arena()
KEY = "cluster-admin-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}
TTL = 3.0  # ClusterConfig's default heartbeat expiry


def _nodes(redis_url: str, count: int, tmp_path, players: int = 2) -> list[tuple[subprocess.Popen, dict]]:
    """``count`` nodes on one Redis; matchmaking makes rooms of ``players`` seats."""
    config = tmp_path / "node.toml"
    config.write_text(f"[matchmaking]\nplayers = {players}\n")
    env = child_env(TICKSYNC_ADMIN_KEY=KEY)
    args = ["demos.arena", "--mode", "statesync", "--port", "0", "--ws-port", "0", "--status-every", "0",
            "--duration", "120", "--redis", redis_url, "--config", str(config)]
    nodes = []
    try:
        for i in range(count):
            nodes.append(start_serve(args, log=tmp_path / f"node{i}.log", env=env))
    except BaseException:
        for proc, _ in nodes:
            stop(proc)
        raise
    return nodes


async def _join(http, node: dict, user: str, **body) -> dict:
    async with http.post(node["dashboard"] + "api/matchmake", json={"game": "arena", "user": user, **body}) as r:
        answer = await r.json()
        assert r.status == 200, answer
        return answer


async def _listing(http, node: dict) -> dict:
    async with http.get(node["dashboard"] + "api/rooms") as r:
        assert r.status == 200
        return await r.json()


async def _play(ticket: dict, name: str):
    client = GameClient(GAME, ticket["udp"], ticket["token"], name=name, bot=True, mode="statesync")
    stop_event = asyncio.Event()
    task = asyncio.create_task(client.run(duration=30, stop=stop_event))
    return client, stop_event, task


async def _quit(client, stop_event, task) -> None:
    stop_event.set()
    await asyncio.wait_for(task, 10)
    await client.close()


def _recorded_match_and_adopter(redis_url: str, tmp_path, mode: str = "statesync"):
    """Node a running the recorded 2-player room "duel" and node b started with --adopt:
    (the processes started, a's and b's URLs, the recording). The caller stops the processes."""
    record = tmp_path / "duel.tsr"
    env = child_env(TICKSYNC_ADMIN_KEY=KEY)
    common = ["--mode", mode, "--port", "0", "--ws-port", "0", "--status-every", "0", "--duration", "60", "--redis", redis_url]
    first, a = start_serve(["demos.arena", "--room", "duel", "--players", "2", "--record", str(record), *common],
                           log=tmp_path / "a.log", env=env)
    try:
        other, b = start_serve(["demos.arena", "--adopt", *common], log=tmp_path / "b.log", env=env)
    except BaseException:
        stop(first)
        raise
    return [first, other], a, b, record


def _stop_all(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            stop(proc)


def _check_adopted(tmp_path, record) -> None:
    """Node b said it resumed "duel", and the recording verifies whole across the kill."""
    from engine import ReplayReader
    from engine.replay import replay

    assert "resumed room 'duel' of node" in (tmp_path / "b.log").read_text()
    whole = ReplayReader(record)
    assert whole.clean and replay(whole, GAME, verify=True).ok


def test_redis_unreachable_at_start_is_one_line_and_a_nonzero_exit(tmp_path):
    pytest.importorskip("redis", reason="the redis package is missing (pip install -e '.[dev]')")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]
    cmd = [sys.executable, "-m", "netcode.cli", "serve", "demos.arena", "--port", "0", "--ws-port", "0",
           "--redis", f"redis://127.0.0.1:{nobody}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(TICKSYNC_ADMIN_KEY=KEY), cwd=ROOT, timeout=30)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Redis at redis://127.0.0.1:" in lines[0], done.stderr
    assert "serving" not in done.stdout  # it never opened its sockets

    # Nodes ask each other for seats with the admin key: a node without a shared one is refused.
    env = child_env()
    env.pop("TICKSYNC_ADMIN_KEY", None)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=30)
    assert done.returncode == 2 and "same admin key" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_three_nodes_share_one_lobby_and_a_killed_node_leaves_it(redis_server, tmp_path):
    nodes = _nodes(redis_server.url, 3, tmp_path)
    procs = [proc for proc, _ in nodes]
    urls = [u for _, u in nodes]
    a, b, c = urls

    async def scenario():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            # Every node sees the two others.
            for node in urls:
                listing = await _listing(http, node)
                assert len(listing["cluster"]["nodes"]) == 3 and listing["cluster"]["redis"] == "connected"
            by_udp = {node["game"]: i for i, node in enumerate(urls)}

            # Through node a: two seats per room, so the third and fifth players need new rooms,
            # and each goes to the least-loaded node: three rooms on three nodes.
            tickets = [await _join(http, a, f"u{i}") for i in range(5)]
            rooms = {t["room"]: by_udp[t["udp"]] for t in tickets}
            assert len(rooms) == 3 and sorted(rooms.values()) == [0, 1, 2], tickets
            assert [t["created"] for t in tickets] == [True, False, True, False, True]
            for t in tickets:  # the owner's own addresses
                assert t["ws"] == urls[by_udp[t["udp"]]]["websocket"] and t["http"] == urls[by_udp[t["udp"]]]["dashboard"]
            last_room = tickets[4]["room"]

            # Through node b: the one open seat left in the whole cluster, wherever it is.
            late = await _join(http, b, "u5")
            assert (late["room"], late["slot"], late["created"]) == (last_room, 1, False)
            # Asking again for a user who holds a seat on another node gives that seat.
            again = await _join(http, c, "u0")
            assert (again["room"], again["slot"]) == (tickets[0]["room"], 0)

            # Names are the cluster's: a room name taken on one node is refused on another.
            async with http.post(b["dashboard"] + "api/rooms", json={"game": "arena", "name": tickets[0]["room"]}, headers=AUTH) as r:
                assert r.status == 409 and "on node" in (await r.json())["error"]
            # Hostile joins get a 4xx with a reason from whichever node is asked.
            for bad in ({"game": "arena", "user": 5}, {"game": "arena", "colour": 1}, {"game": "arena", "room": ["x"]},
                        {"game": "chess"}, {"game": "arena", "mode": {}}):
                async with http.post(b["dashboard"] + "api/matchmake", json=bad) as r:
                    assert 400 <= r.status < 500 and (await r.json())["error"], bad

            # The room API spans the cluster too: a room made on one node is closed through another.
            async with http.post(a["dashboard"] + "api/rooms", json={"game": "arena", "name": "spare"}, headers=AUTH) as r:
                assert r.status == 201
            async with http.delete(c["dashboard"] + "api/rooms/spare", headers=AUTH) as r:
                closed = await r.json()
                assert r.status == 200 and closed["closed"] == "spare" and closed["node"] != (await _listing(http, c))["cluster"]["node"]
            assert "spare" not in {x["name"] for x in (await _listing(http, b))["rooms"]}
            async with http.delete(c["dashboard"] + "api/rooms/nowhere", headers=AUTH) as r:
                assert r.status == 404
            async with http.delete(c["dashboard"] + "api/rooms/" + tickets[0]["room"]) as r:
                assert r.status == 403  # no key, no routing
            # Records in Redis that are not a node's are left out, not trusted.
            import redis

            direct = redis.Redis(port=redis_server.port, socket_timeout=2)
            direct.sadd("ticksync:nodes", "bogus", "half")
            direct.set("ticksync:node:bogus", b"\xff not json", px=60_000)
            direct.set("ticksync:node:half", b'{"id": "half", "http": "http://127.0.0.1:1/", "rooms": [{"name": 5}]}', px=60_000)
            assert len((await _listing(http, b))["cluster"]["nodes"]) == 3
            assert (await _join(http, b, "u0"))["room"] == tickets[0]["room"]
            direct.close()

            # Real clients play over UDP with tokens the other nodes signed.
            players = [await _play(tickets[0], "u0"), await _play(tickets[2], "u2"), await _play(late, "u5")]
            await eventually(lambda: all(p[0].report.connects == 1 for p in players), "three clients in on three nodes", timeout=15)
            start = [p[0].tick for p in players]
            await eventually(lambda: all(p[0].tick > s + 10 for p, s in zip(players, start)), "three clients playing", timeout=15)
            assert players[2][0].report.slot == 1

            # Every node lists every room, with its node's addresses and live player counts.
            async def all_listed():
                for node in urls:
                    listed = {r["name"]: r for r in (await _listing(http, node))["rooms"]}
                    if set(rooms) - set(listed):
                        return False
                    for name, owner in rooms.items():
                        assert listed[name]["udp"] == urls[owner]["game"]
                    if listed[tickets[2]["room"]]["players"] != 1 or listed[last_room]["players"] != 1:
                        return False
                return True

            deadline = time.monotonic() + 5
            while not await all_listed():
                assert time.monotonic() < deadline, "the listings never showed every room with its players"
                await asyncio.sleep(0.1)
            events = (await _listing(http, c))["cluster"]["events"]
            assert any(e["event"] == "room_created" and e["room"] == tickets[0]["room"] for e in events), events

            # kill -9 the node holding u2's room: no goodbye, only the heartbeat stops.
            victim = rooms[tickets[2]["room"]]
            survivor = urls[next(i for i in range(3) if i != victim)]
            await _quit(*players[1])
            ticks_before = [players[0][0].tick, players[2][0].tick]
            killed_at = time.monotonic()
            os.kill(procs[victim].pid, signal.SIGKILL)
            procs[victim].wait(5)
            while True:
                listed = {r["name"] for r in (await _listing(http, survivor))["rooms"]}
                if tickets[2]["room"] not in listed:
                    break
                assert time.monotonic() - killed_at < TTL + 1.5, "the dead node's room stayed listed past the heartbeat's expiry"
                await asyncio.sleep(0.1)
            gone_after = time.monotonic() - killed_at
            print(f"\nthe dead node's rooms left the listings {gone_after:.2f} s after kill -9 (ttl {TTL} s)")
            assert set(rooms) - {tickets[2]["room"]} <= listed
            listing = await _listing(http, survivor)
            assert len(listing["cluster"]["nodes"]) == 2

            # Someone noticed and told the others.
            async def heard_gone():
                events = (await _listing(http, survivor))["cluster"]["events"]
                return any(e["event"] == "node_gone" for e in events)

            deadline = time.monotonic() + 3
            while not await heard_gone():
                assert time.monotonic() < deadline, "no node_gone event"
                await asyncio.sleep(0.1)

            # Joins go on among the living: u2 comes back and gets a seat on a live node.
            back = await _join(http, survivor, "u2")
            assert by_udp[back["udp"]] != victim
            # The rooms on the other nodes kept playing throughout.
            assert players[0][0].tick > ticks_before[0] + 30 and players[2][0].tick > ticks_before[1] + 30
            for p in (players[0], players[2]):
                await _quit(*p)

    try:
        run_bounded(scenario(), 60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)


def test_a_node_keeps_playing_without_redis_and_re_registers_when_it_returns(redis_server, tmp_path):
    import redis

    ((proc, node),) = _nodes(redis_server.url, 1, tmp_path)

    async def scenario():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            ticket = await _join(http, node, "alice")
            player = await _play(ticket, "alice")
            await eventually(lambda: player[0].tick > 10, "alice playing", timeout=10)
            node_id = (await _listing(http, node))["cluster"]["node"]
            key = f"ticksync:node:{node_id}"
            direct = redis.Redis(port=redis_server.port, socket_timeout=2)
            assert direct.exists(key)

            redis_server.stop()
            tick = player[0].tick
            await asyncio.sleep(TTL)
            # The room played on: the client's ticks kept coming, the listing still shows it.
            assert player[0].tick > tick + 20
            listing = await _listing(http, node)
            assert listing["cluster"]["redis"].startswith("unreachable")
            assert [r["name"] for r in listing["rooms"]] == [ticket["room"]]
            assert (await _join(http, node, "bob"))["room"] == ticket["room"]  # matchmaking on its own rooms

            redis_server.start()  # same port, empty (nothing was saved)
            deadline = time.monotonic() + 5
            while not direct.exists(key):
                assert time.monotonic() < deadline, "the node did not re-register after Redis came back"
                await asyncio.sleep(0.1)
            record = direct.get(key)
            assert ticket["room"].encode() in record
            assert (await _listing(http, node))["cluster"]["redis"] == "connected"
            # It hears the cluster's events again (its subscription came back with Redis).
            deadline = time.monotonic() + 5
            while True:
                direct.publish("ticksync:events", b'{"event": "room_created", "node": "elsewhere", "room": "r-after"}')
                events = (await _listing(http, node))["cluster"]["events"]
                if any(e.get("room") == "r-after" for e in events):
                    break
                assert time.monotonic() < deadline, f"no event heard after Redis came back: {events}"
                await asyncio.sleep(0.2)
            await _quit(*player)
            direct.close()

    try:
        run_bounded(scenario(), 45)
    finally:
        stop(proc)
    assert "lost Redis" in (tmp_path / "node0.log").read_text()


def test_serve_workers_share_one_lobby_on_a_redis_of_their_own_and_stop_together_on_ctrl_c(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine (make system-deps installs Debian's redis-server)")
    pytest.importorskip("redis", reason="the redis package is missing (pip install -e '.[dev]')")
    env = child_env()
    env.pop("TICKSYNC_ADMIN_KEY", None)  # made by the command, one for both workers
    log = tmp_path / "workers.log"
    cmd = [sys.executable, "-m", "netcode.cli", "serve", "demos.arena", "--mode", "statesync", "--workers", "2",
           "--port", "0", "--ws-port", "0", "--duration", "60"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        end = time.monotonic() + 30
        while len(dashboards := re.findall(r"^\s+dashboard\s+(\S+)", log.read_text(), re.M)) < 2:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        redis_port = int(re.search(r"workers on redis://127\.0\.0\.1:(\d+) \(a redis-server of our own\)", log.read_text()).group(1))
        assert re.search(r"^admin key: \S+", log.read_text(), re.M)

        async def scenario():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                one, two = ({"dashboard": d} for d in dashboards)
                alice = await _join(http, two, "alice")
                bob = await _join(http, one, "bob")  # through the other worker: alice's room
                assert alice["created"] and (bob["room"], bob["udp"], bob["created"]) == (alice["room"], alice["udp"], False)
                listed = {r["name"]: r for r in (await _listing(http, one))["rooms"]}
                assert listed[alice["room"]]["udp"] == alice["udp"]

        run_bounded(scenario(), 30)
        proc.send_signal(signal.SIGINT)  # Ctrl-C reaches the command only; it stops the rest
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            stop(proc)
    text = log.read_text()
    assert text.count("stopping (SIGTERM)") == 2, text
    for url in dashboards:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()


def test_a_recorded_match_killed_with_its_node_resumes_on_another_node_and_the_lobby_finds_it(redis_server, tmp_path):
    from engine import ReplayReader
    from engine.replay import replay

    record = tmp_path / "duel.tsr"
    env = child_env(TICKSYNC_ADMIN_KEY=KEY)
    common = ["--mode", "statesync", "--port", "0", "--ws-port", "0", "--status-every", "0", "--duration", "60",
              "--redis", redis_server.url]
    first, a = start_serve(["demos.arena", "--room", "duel", "--players", "2", "--record", str(record), *common],
                           log=tmp_path / "a.log", env=env)
    procs = [first]
    try:
        other, b = start_serve(["demos.arena", *common], log=tmp_path / "b.log", env=env)
        procs.append(other)

        async def scenario():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                seat = await _join(http, b, "p0", room="duel")  # through b, a seat on a
                assert seat["udp"] == a["game"]
                player = await _play(seat, "p0")
                await eventually(lambda: player[0].tick > 60, "p0 playing on a", timeout=10)
                os.kill(first.pid, signal.SIGKILL)
                first.wait(5)
                await _quit(*player)
                deadline = time.monotonic() + TTL + 2
                while "duel" in {r["name"] for r in (await _listing(http, b))["rooms"]}:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                at = ReplayReader(record).ticks

                # Another node restarts the match from the recording; the lobby routes to it.
                third, c = start_serve(["--resume", str(record), *common], log=tmp_path / "c.log", env=env)
                procs.append(third)
                assert f"resumed room duel (statesync) from {record} at tick {at}" in (tmp_path / "c.log").read_text()
                seat = await _join(http, b, "p0", room="duel")
                assert seat["udp"] == c["game"] and seat["slot"] == 0
                player = await _play(seat, "p0")
                await eventually(lambda: player[0].tick > at + 60, "p0 playing on where it stopped", timeout=10)
                assert player[0].report.desyncs == 0
                await _quit(*player)
                return at

        at = run_bounded(scenario(), 60)
        stop(procs[-1])  # the resumed node closes the recording
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
    whole = ReplayReader(record)
    assert whole.clean and whole.ticks > at + 30  # (a predicting client runs a few ticks ahead of its server)
    assert replay(whole, GAME, verify=True).ok


def test_a_node_started_with_adopt_resumes_a_dead_nodes_recorded_match_by_itself(redis_server, tmp_path):
    procs, a, b, record = _recorded_match_and_adopter(redis_server.url, tmp_path)
    first, other = procs
    try:

        async def scenario():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                seat = await _join(http, b, "p1", room="duel")
                assert seat["udp"] == a["game"]
                player = await _play(seat, "p1")
                await eventually(lambda: player[0].tick > 30, "p1 playing on a", timeout=10)
                os.kill(first.pid, signal.SIGKILL)
                first.wait(5)
                await _quit(*player)
                killed = time.monotonic()
                while True:  # the room comes back, on b, without anyone asking
                    listed = {r["name"]: r for r in (await _listing(http, b))["rooms"]}
                    if "duel" in listed and listed["duel"]["udp"] == b["game"]:
                        break
                    assert time.monotonic() - killed < TTL + 3, "b did not adopt the dead node's match"
                    await asyncio.sleep(0.1)
                print(f"\nthe match was playing on b {time.monotonic() - killed:.2f} s after a was killed")
                seat = await _join(http, b, "p1", room="duel")
                assert seat["udp"] == b["game"]
                player = await _play(seat, "p1")
                start = listed["duel"]["tick"]
                await eventually(lambda: player[0].tick > start + 60, "p1 playing on b", timeout=10)
                assert player[0].report.desyncs == 0
                await _quit(*player)

        run_bounded(scenario(), 60)
        stop(other)  # the adopting node closes the recording
    finally:
        _stop_all(procs)
    _check_adopted(tmp_path, record)


def test_advertise_names_the_host_in_the_addresses_handed_out():
    from helpers import SECRET
    from netcode import TickServer

    async def scenario():
        server = TickServer(secret=SECRET, host="127.0.0.1", http_port=0, advertise="game1.example.net")
        server.matchmaker.register_game(GAME, "demos.arena")
        async with server, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            port = server.udp.local_address[1]
            assert server.udp_url == f"udp://game1.example.net:{port}"
            local = f"http://127.0.0.1:{server.http_port}/"
            ticket = await _join(http, {"dashboard": local}, "ann")
            assert ticket["udp"] == server.udp_url and ticket["ws"].startswith("ws://game1.example.net:")

    run_bounded(scenario(), 20)


def test_reconnect_on_any_node_answers_503_while_a_room_is_being_resumed_and_410_when_it_is_gone(redis_server):
    """POST /api/reconnect's answers for a seat this node does not hold, read from Redis: the
    room on another node (asked of it), the room's node dead and an adopting node in the
    cluster (503 + Retry-After), nobody to resume it or no such token (410)."""
    import orjson
    import redis.asyncio as aioredis

    from helpers import SECRET
    from netcode import TickServer
    from netcode.server.cluster import Cluster, ClusterConfig

    async def node(adopt: bool):
        server = TickServer(secret=SECRET, http_port=0, admin_key=KEY)
        server.matchmaker.register_game(GAME, "demos.arena")
        cluster = Cluster(server, ClusterConfig(redis_server.url, adopt=adopt, prefix="t503"))
        await cluster.connect()
        await server.start()
        await cluster.start()
        return server, cluster

    async def reconnect(http, server, token):
        async with http.post(server.http_url + "api/reconnect", json={"reconnect_token": token}) as r:
            return r.status, r.headers.get("Retry-After"), await r.json()

    async def scenario():
        redis = aioredis.Redis.from_url(redis_server.url)
        a, ca = await node(adopt=False)
        b, cb = await node(adopt=False)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                seat = await _join(http, {"dashboard": a.http_url}, "ann")
                # Asked of b, a seat on a: b asks a, the answer is a's.
                status, _, answer = await reconnect(http, b, seat["reconnect_token"])
                assert status == 200 and answer["udp"] == a.udp_url and answer["slot"] == seat["slot"], answer
                assert answer["reconnect_token"] == seat["reconnect_token"] and answer["node"] == ca.node_id

                # A recorded room whose node died (its record expired; the recording entry stays).
                where = {"room": "ghost", "slot": 1, "user": "bob"}
                await redis.set("t503:reconnect:tok-ghost", orjson.dumps(where))
                await redis.hset("t503:recordings", "ghost", orjson.dumps({"node": "dead", "path": "/x.tsr", "game_path": "demos.arena"}))
                status, _, answer = await reconnect(http, b, "tok-ghost")
                assert status == 410 and "no node resumes it" in answer["error"]  # no node adopts
                await cb.stop()
                await b.stop()
                b, cb = await node(adopt=True)  # now one does: come back later
                status, retry, answer = await reconnect(http, a, "tok-ghost")
                assert status == 503 and retry == "1" and answer["retry_after"] == 1 and "being resumed" in answer["error"]
                # Never handed out, or not even a string: 410 and 400.
                status, _, answer = await reconnect(http, a, "no-such-token")
                assert status == 410 and "join again" in answer["error"]
                async with http.post(a.http_url + "api/reconnect", json={"reconnect_token": 7}) as r:
                    assert r.status == 400
                # The room closed for good: its seats are gone with it.
                await a.close_room(seat["room"])
                await asyncio.sleep(0.2)
                status, _, _ = await reconnect(http, b, seat["reconnect_token"])
                assert status == 410
        finally:
            for cluster, server in ((cb, b), (ca, a)):
                await cluster.stop()
                await server.stop()
            await redis.aclose()

    run_bounded(scenario(), 30)


@pytest.mark.parametrize("mode", ["statesync", "lockstep"])
def test_clients_with_the_cluster_list_follow_a_killed_nodes_match_to_the_node_that_adopts_it(mode, redis_server, tmp_path, caplog):
    """kill -9 the node running a recorded match: its players' sessions time out (ServerGone),
    they ask the cluster where the room went (by then adopted: the 503 is the test above), rejoin it on the
    adopting node in their old slots (RoomMoved) and play on in the same match, no desync."""
    from netcode.events import RoomMoved, ServerGone

    caplog.set_level(logging.INFO, logger="ticksync.client")
    procs, a, b, record = _recorded_match_and_adopter(redis_server.url, tmp_path, mode)
    first, other = procs
    try:

        async def scenario():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                seats = [await _join(http, b, f"p{i}", room="duel") for i in range(2)]  # through b, seats on a
            assert all(s["udp"] == a["game"] for s in seats)
            # p0 over UDP (its session times out), p1 over a WebSocket (closed at once: it asks
            # while the dead node is still listed, and hears 503 + Retry-After first).
            clients = [GameClient.from_ticket(GAME, s, cluster=[b["dashboard"]], transport=kind, name=f"p{i}", bot=True)
                       for i, (s, kind) in enumerate(zip(seats, ("udp", "ws")))]
            stop_event = asyncio.Event()
            runs = [asyncio.create_task(c.run(duration=40, stop=stop_event)) for c in clients]
            await eventually(lambda: all(c.tick > 60 for c in clients), "both playing on a", timeout=10)
            os.kill(first.pid, signal.SIGKILL)
            killed = time.monotonic()
            resyncs = [c.report.resyncs for c in clients]
            await eventually(lambda: all(c.report.relocations == 1 and c.connected for c in clients), "both rejoined on b", timeout=20)
            moved = time.monotonic() - killed
            at = max(c.tick for c in clients)
            await eventually(lambda: all(c.tick > at + 90 for c in clients), "both playing on b", timeout=10)
            stop_event.set()
            reports = await asyncio.wait_for(asyncio.gather(*runs), 10)
            seen = [c.events() for c in clients]
            for c in clients:
                await c.close()
            return seats, reports, seen, moved, resyncs

        seats, reports, seen, moved, resyncs = run_bounded(scenario(), 60)
        print(f"\n{mode}: both players playing on the adopting node {moved:.1f} s after the kill (session timeout 5 s)")
        for seat, report, events, kind, reason in zip(seats, reports, seen, ("game", "websocket"), ("timeout", "transport closed")):
            assert [type(e) for e in events] == [ServerGone, RoomMoved], events
            gone, move = events
            assert gone.relocating and gone.reason == reason and gone.url == a[kind]
            assert (move.room, move.url, move.old_url, move.slot) == ("duel", b[kind], a[kind], seat["slot"])
            assert report.status == "ok" and report.slot == seat["slot"] and report.url == b[kind], report
            assert report.relocations == 1 and report.servers_gone == 1 and report.desyncs == 0
            assert report.server_restarts == 0  # the same match: the recording kept the server epoch
        told = [r.getMessage() for r in caplog.records if r.name == "ticksync.client"]
        assert any(m.startswith("p1: relocating: ") and " answered 503: " in m for m in told), told
        if mode == "lockstep":  # the frames they missed came from the recording, not a keyframe
            assert [r.resyncs for r in reports] == resyncs, (resyncs, reports)
        stop(other)  # the adopting node closes the recording
    finally:
        _stop_all(procs)
    _check_adopted(tmp_path, record)


def test_ticksync_bots_follow_their_room_when_its_node_is_killed_and_count_the_move(redis_server, tmp_path):
    """``ticksync bots http://NODE``: bots seated by matchmaking on a node that is then
    kill -9'd play on where a node with --adopt resumed the match, and the table says so."""
    procs, a, b, record = _recorded_match_and_adopter(redis_server.url, tmp_path)
    first, other = procs
    try:
        bots = subprocess.Popen(
            [sys.executable, "-m", "netcode.cli", "bots", b["dashboard"].rstrip("/"), "--game", "demos.arena", "--count", "2",
             "--room", "duel", "--duration", "11"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env(TICKSYNC_ADMIN_KEY=KEY), cwd=ROOT)
        procs.append(bots)

        async def wait_playing():
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async def both():
                    rooms = {r["name"]: r for r in (await _listing(http, b))["rooms"]}
                    return "duel" in rooms and rooms["duel"]["players"] == 2
                deadline = time.monotonic() + 15
                while not await both():
                    assert time.monotonic() < deadline, "the bots never played on a"
                    await asyncio.sleep(0.2)

        run_bounded(wait_playing(), 20)
        time.sleep(1.0)
        os.kill(first.pid, signal.SIGKILL)
        out, _ = bots.communicate(timeout=40)
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
    print(out)
    assert bots.returncode == 0, out
    header = next(line for line in out.splitlines() if line.startswith("bot "))
    assert header.split()[-2:] == ["moved", "status"]
    rows = [line.split() for line in out.splitlines() if re.match(r"bot\d", line)]
    assert len(rows) == 2 and all(row[-2:] == ["1", "ok"] for row in rows), out  # moved once, and ok
    assert "ok: 2 bot(s) played" in out
