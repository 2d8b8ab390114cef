"""The room schema the server serves carries the game's visuals and controls, so a browser
draws and plays any game (checked without a browser: tests/test_browser.py does the rest)."""

import orjson

import blobs_game
from engine.loop import run_async
from netcode.server.dashboard import room_schema
from netcode.server.tickserver import RoomConfig, TickServer

SECRET = b"viewer-schema-secret-0123456789"


def test_the_schema_carries_visuals_and_controls_as_json():
    server = TickServer(secret=SECRET, udp_port=None)
    server.add_room(blobs_game.GAME, RoomConfig("r", mode="statesync", players=4))
    try:
        out = orjson.loads(orjson.dumps(room_schema(server, "r")))
    finally:
        run_async(server.stop())  # never started
    assert out["problems"] == []
    v = out["visuals"]
    assert v["world"] == [0, 0, blobs_game.SIZE, blobs_game.SIZE] and v["position"] == ["pos"]
    assert [s["shape"] for s in v["sprites"]] == ["triangle", "rect"] and v["sprites"][1]["size"] == "size"
    kinds = [b["kind"] for b in out["controls"]["bindings"]]
    assert kinds == ["axis", "axis", "press"] and out["controls"]["bindings"][2]["keys"] == ["space", "mouse1"]
    names = {f["name"] for f in out["replication"]["fields"]}
    assert set(v["position"]) <= names and {"team", "size", "dir"} <= names, "every field the visuals use is sent"
