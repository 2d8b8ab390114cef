"""Real Chromium (Debian's ``chromium``, driven by Playwright for Python) against a real
server on loopback, playing a game that is not a shipped demo (tests/blobs_game.py) in the
generic browser view: the dashboard lists the room, /play draws entities that move, keys
move our player, and no script error happens on the way. Screenshots go to the test's
tmp dir. Then the arena's page against an in-process server whose spec is range-coded
(coding="entropy") with carried coder models and with a trained one: what the page decoded
is the server's own snapshot, code for code. Skips, saying why, where chromium or playwright
is missing (``make system-deps`` installs chromium; ``pip install -e '.[dev]'`` installs
playwright)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import shutil
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from demos.arena import Arena
from engine.bodies import Bodies
from helpers import SECRET
from netcode.server.tickserver import RoomConfig, TickServer
from serving import serving
from test_web_client import _arena_model, _same_snapshot

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

# A coarse fingerprint of the canvas: every 7th pixel's RGB, packed into one string in the
# page (a long array of numbers takes the page's only thread for seconds, and a client that
# cannot read its socket for 5 s times out).
CANVAS_SAMPLE = """() => {
  const c = document.getElementById("view"), g = c.getContext("2d");
  const d = g.getImageData(0, 0, c.width, c.height).data, n = Math.floor(d.length / 28);
  const out = new Uint8Array(3 * n);
  for (let i = 0, j = 0; j < out.length; i += 28, j += 3) { out[j] = d[i]; out[j + 1] = d[i + 1]; out[j + 2] = d[i + 2]; }
  let text = "";
  for (let j = 0; j < out.length; j += 8192) text += String.fromCharCode.apply(null, out.subarray(j, j + 8192));
  return btoa(text);
}"""
PIXEL = """([x, y]) => {
  const c = document.getElementById("view"), r = devicePixelRatio || 1;
  return Array.from(c.getContext("2d").getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data.slice(0, 3));
}"""


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("no chromium on this machine (make system-deps installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


def pixels(sample: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(sample), np.uint8).reshape(-1, 3)


def differing(a: str, b: str) -> int:
    """How many sampled pixels differ between two canvas samples."""
    return int((pixels(a) != pixels(b)).any(axis=1).sum())


def test_dashboard_lists_the_room_and_play_draws_and_moves_a_game_that_is_no_demo(browser, tmp_path):
    with serving("blobs_game", "statesync", "--open-join", "--players", "8", log=tmp_path / "serve.log") as urls:
        base = urls["dashboard"]
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location.get('url', '')}") if msg.type == "error" and not msg.location.get("url", "").endswith("favicon.ico") else None)

        page.goto(base, timeout=15_000)
        page.wait_for_function("() => document.body.innerText.includes('blobs')", timeout=15_000)
        assert "default" in page.inner_text("body"), "the dashboard lists the room"
        page.screenshot(path=str(tmp_path / "dashboard.png"))

        page.goto(base + "play", timeout=15_000)
        page.wait_for_function("() => window.ticksync && window.ticksync.client.connected && window.ticksync.ownPosition()", timeout=20_000)
        page.wait_for_timeout(500)  # a few snapshots: interpolation has two sides
        hud = page.inner_text("#hud")
        assert "blobs 0.1" in hud and "slot 0" in hud, hud
        assert "click: grow" in page.inner_text("#help"), "the help line comes from the game's controls"

        # Entities move on the canvas: the NPCs wander, so the picture changes over time.
        first = page.evaluate(CANVAS_SAMPLE)
        page.screenshot(path=str(tmp_path / "play-0.png"))
        page.wait_for_timeout(700)
        second = page.evaluate(CANVAS_SAMPLE)
        assert differing(first, second) > 50, "nothing moved on the canvas"
        assert len(np.unique(pixels(second), axis=0)) > 4, "the canvas holds more than a background"

        # Our player: hold the right arrow and it moves right, on the server and on the canvas.
        start = page.evaluate("() => window.ticksync.ownPosition()")
        screen_before = page.evaluate("(p) => window.ticksync.toScreen(p)", start)
        colour_before = page.evaluate(PIXEL, screen_before)
        page.keyboard.down("ArrowRight")
        deadline = time.monotonic() + 10
        moved = start
        while time.monotonic() < deadline and moved[0] - start[0] < 400:
            page.wait_for_timeout(100)
            moved = page.evaluate("() => window.ticksync.ownPosition()")
        page.keyboard.up("ArrowRight")
        page.wait_for_timeout(300)
        end = page.evaluate("() => window.ticksync.ownPosition()")
        page.screenshot(path=str(tmp_path / "play-moved.png"))
        assert end[0] - start[0] >= 400, f"our player did not move right: {start} -> {end}"
        assert abs(end[1] - start[1]) < 1, "only right was held"
        screen_after = page.evaluate("(p) => window.ticksync.toScreen(p)", end)
        assert screen_after[0] > screen_before[0] + 20, (screen_before, screen_after)
        assert page.evaluate(PIXEL, screen_after) == colour_before, "our square is drawn where it now is"
        assert page.evaluate(PIXEL, screen_before) != colour_before, "and no longer where it was"

        # The dashboard, while we play: our row in the room's players, with a measured RTT.
        board = browser.new_page(viewport={"width": 1280, "height": 800})
        board.on("pageerror", lambda exc: errors.append(str(exc)))
        board.goto(base, timeout=15_000)
        board.wait_for_function(
            "() => [...document.querySelectorAll('tbody tr')].some(r => r.cells.length > 3 && r.cells[0].innerText === '0'"
            " && /^[0-9.]+$/.test(r.cells[2].innerText))",
            timeout=15_000,
        )
        board.screenshot(path=str(tmp_path / "dashboard-playing.png"))
        width = board.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 1280, f"the dashboard is {width} px wide at 1280"
        board.close()
        assert not errors, errors
        page.close()
    assert (tmp_path / "play-moved.png").stat().st_size > 1000


def test_the_arena_keeps_its_own_renderer(browser, tmp_path):
    """A game can name its own browser module: the arena's page runs arena.js, not render.js."""
    with serving("demos.arena", "statesync", "--open-join", "--players", "2", log=tmp_path / "serve.log") as urls:
        page = browser.new_page(viewport={"width": 800, "height": 600})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        loaded: list[str] = []
        page.on("request", lambda req: loaded.append(req.url.rsplit("/", 1)[-1]))
        page.goto(urls["dashboard"] + "play", timeout=15_000)
        page.wait_for_function("() => window.ticksync && window.ticksync.client.connected", timeout=20_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "arena.png"))
        assert "arena.js" in loaded and "render.js" not in loaded, loaded
        assert "mouse: aim" in page.inner_text("#help")
        assert not errors, errors
        page.close()


# -- entropy-coded specs in the page: carried models, a trained model ---------------------------


@contextmanager
def in_thread(server: TickServer):
    """Run ``server`` on an event loop of its own in a thread (Playwright's sync API has the
    test's); yields ``call(fn)``, which runs ``fn()`` on that loop between ticks and returns
    what it returned, so the test reads the room's history as the server holds it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tickserver", daemon=True)
    thread.start()

    def call(fn, timeout: float = 20.0):
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(20)
        yield call
    finally:
        try:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(20)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


# The page's newest complete snapshot (its codes, view, extras and our entity's position), the
# client's counters, and the coding the page built from the room's schema: whether it carries,
# its model's layout and event counts, whether the snapshot's table started from a carried
# model and whether the model it ended in is no longer the prior; whether it runs the engine's
# Bodies predictor, its friction and its height guess.
LATEST = """() => {
  const c = window.ticksync.client, s = window.ticksync.schema, l = c.latest, k = s.coding;
  const differs = (a, b) => a.some((v, i) => v !== b[i]);
  return {
    tick: l.tick, codes: Array.from(l.codes), view: Array.from(l.view), extras: s.decodeExtras(l.extras),
    own: s.values(l.codes, s.position, c.ownEntity), base: l.base, stats: c.stats(),
    carries: k.carries, layout: k.layout, seenMax: Math.max(...k.seen),
    started: l.start !== null, learned: l.model !== null && differs(l.model.probs, k.prior),
    bodies: s.bodies !== null, friction: s.bodies && s.bodies.friction, refines: k.refine !== null,
  };
}"""


@pytest.mark.parametrize("coding", ["carry", "model", "carry+model", "carry+bodies"])
def test_the_page_decodes_entropy_coded_snapshots_as_the_server_coded_them(browser, tmp_path, coding):
    """The arena (300 NPCs) range-coded, position and aim in one group: with carry=True each
    snapshot's table starts from the model its baseline's ended in (entropy.js carried(),
    wire.js applyPart); with a trained model (context layout 1) every table starts from the
    model the room's schema delivers in base64; with both, a keyframe's table starts from the
    trained model and each delta's from its baseline's carried one. The real page plays it
    for a few seconds: every sample of its newest complete snapshot, until three were delta
    snapshots, must be the one in the server's history for that tick, code for code, with no
    packet dropped and no script error."""
    game = Arena(npcs=300)
    game.replication = dataclasses.replace(Arena.replication, coding="entropy", groups=(("pos", "aim"),))
    if "model" in coding:
        game.replication = dataclasses.replace(game.replication, model=_arena_model(game))
    if "carry" in coding:
        game.replication = dataclasses.replace(game.replication, carry=True)
    if "bodies" in coding:  # the engine's predictor, which the page runs (web/bodies.js), friction too
        game.replication = dataclasses.replace(game.replication, predictor=Bodies(moves=("pos", "aim"), friction=2.0))
    server = TickServer(secret=SECRET, udp_port=None, http_port=0, open_join=True)
    room = server.add_room(game, RoomConfig("default", mode="statesync", players=4, seed=11))

    def held(tick: int):
        history = room.mode.history
        if not history.has(tick):
            return None
        i = history.index(tick)
        return history.codes[i].copy(), history.alive[i].copy(), history.extras[i]

    with in_thread(server) as call:
        page = browser.new_page(viewport={"width": 800, "height": 600})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        try:
            page.goto(server.http_url + "play", timeout=15_000)
            page.wait_for_function("() => window.ticksync && window.ticksync.client.connected && window.ticksync.client.latest",
                                   timeout=20_000)
            page.keyboard.down("d")  # our entity moves right, as the page decodes it
            # Every 0.4 s until three were delta snapshots (on a slow machine, interpreted, the
            # first sample can still be the first snapshot, a keyframe), for 10 s at most.
            samples = []
            deadline = time.monotonic() + 10
            while sum(got["base"] is not None for got, _ in samples) < 3 and time.monotonic() < deadline:
                page.wait_for_timeout(400)
                got = page.evaluate(LATEST)
                samples.append((got, call(lambda: held(got["tick"]))))
            page.keyboard.up("d")
            page.screenshot(path=str(tmp_path / f"arena-{coding}.png"))
        finally:
            page.close()
    assert not errors, errors
    for got, server_held in samples:
        stats = got["stats"]
        assert stats["drops"] == {} and stats["noBaseline"] == 0, f"tick {got['tick']}: {stats}"
        _same_snapshot({"latest": got}, server_held, 304)
    ticks = [got["tick"] for got, _ in samples]
    bases = [got["base"] for got, _ in samples]
    assert sum(b is not None for b in bases) >= 3, f"three delta snapshots in 10 s: baselines {bases} of ticks {ticks}"
    assert ticks == sorted(set(ticks)), f"the page's newest snapshot stalled: {ticks}"
    assert samples[0][0]["codes"] != samples[-1][0]["codes"], "the world moved between the first sample and the last"
    own = [got["own"] for got, _ in samples]
    assert own[-1][0] > own[0][0] and own[-1][1] == own[0][1], f"holding D moved our entity right: {own}"
    got = samples[-1][0]
    stats = got["stats"]
    assert stats["snapshots"] >= 10 and stats["deltaParts"] > stats["parts"] / 2, stats
    assert stats["predictedParts"] > stats["deltaParts"] / 2, stats  # (coded against the predictor's guess: linear, or Bodies)
    assert got["bodies"] == ("bodies" in coding) and not got["refines"], "the page runs the schema's Bodies (no box: no refine)"
    assert "bodies" not in coding or got["friction"] == 2.0, "with its friction (a code of travel lost a tick ahead, 4 two ticks ahead)"
    carries = "carry" in coding
    assert got["carries"] == carries and got["started"] == carries, "the table started from a carried model (only with carry)"
    assert got["learned"] == carries, "which is no longer where every table starts"
    if "model" in coding:
        assert got["layout"] == 1 and got["seenMax"] == 15, "the page loaded the schema's model"
    else:
        assert got["layout"] == 0 and got["seenMax"] == 0, "no model: the prior"
