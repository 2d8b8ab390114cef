"""Game-declared visuals and controls: checked against the game, plain data for browsers,
and the same answers a viewer draws and sends."""

import math

import numpy as np
import orjson
import pytest

import demos.arena
import demos.pong
import demos.swarm
from engine import Axis, Controls, Exact, Game, Int, Point, Press, Replication, Sprite, State, Visuals
from engine.controls import default_controls, game_controls
from engine.visuals import default_visuals, game_visuals, palette, viewer_spec

DEMOS = [demos.arena.GAME, demos.pong.GAME, demos.swarm.GAME]


@pytest.mark.parametrize("game", DEMOS, ids=lambda g: g.name)
def test_every_demo_declares_visuals_and_controls_that_fit_it(game):
    v = game_visuals(game)
    c = game_controls(game)
    assert v is game.visuals and c is game.controls
    spec = orjson.loads(orjson.dumps(viewer_spec(game)))  # what the schema endpoint serves
    assert spec["problems"] == []
    assert spec["visuals"]["sprites"] and spec["visuals"]["position"]
    assert spec["controls"]["bindings"] and spec["controls"]["help"]
    state = game.create(1, 2)
    fields = {n: state[n] for n in game.replication.fields}
    sprite = v.assign(fields, state[game.replication.alive])
    assert (sprite[state[game.replication.alive]] >= 0).all(), "every live entity is drawn"


def test_visuals_name_the_field_they_do_not_have():
    rep = Replication(alive="alive", fields={"pos": Int(0, 100)}, position="pos")
    Visuals(world=(0, 0, 100, 100), sprites=(Sprite(size=3),)).validate(rep)
    with pytest.raises(ValueError, match=r"\['team'\]"):
        Visuals(world=(0, 0, 100, 100), sprites=(Sprite(color_by="team"),)).validate(rep)
    with pytest.raises(ValueError, match="scores"):
        Visuals(world=(0, 0, 100, 100), scores="score").validate(rep)
    with pytest.raises(ValueError, match="colour"):
        Sprite(color="red")
    with pytest.raises(ValueError, match="shape"):
        Sprite(shape="hexagon")
    with pytest.raises(ValueError, match="world"):
        Visuals(world=(0, 0, 0, 10))
    with pytest.raises(ValueError, match="follow_span"):
        Visuals(world=(0, 0, 10, 10), camera="follow")


def test_the_first_matching_sprite_draws_an_entity_and_hidden_ones_none():
    v = Visuals(world=(0, 0, 10, 10), sprites=(Sprite(when={"kind": 1}, size=4), Sprite(when={"kind": 2}, size="r", size_scale=2)))
    fields = {"kind": np.array([1, 2, 3, 1]), "r": np.array([0.0, 1.5, 0, 0])}
    assert v.assign(fields, np.array([True, True, True, False])).tolist() == [0, 1, -1, -1]
    assert v.sizes(v.sprites[1], fields, np.array([1])).tolist() == [[3.0, 3.0]]
    assert v.sizes(v.sprites[0], fields, np.array([0, 3])).tolist() == [[4.0, 4.0]] * 2
    xy = Visuals(world=(0, 0, 10, 10), position=("x", "y"))
    rep = Replication(alive="a", fields={"x": Int(0, 10), "y": Int(0, 10)})
    assert xy.positions({"x": np.array([1, 2]), "y": np.array([3, 4])}, rep).tolist() == [[1, 3], [2, 4]]


class Dots(Game):
    name, version = "dots", "1.0"
    input_dtype = np.dtype([("move", "i1", (2,)), ("jump", "u1")])
    replication = Replication(alive="alive", fields={"pos": Int(0, 1000), "team": Exact()}, position="pos")

    def create(self, seed, players):
        return State({"pos": np.full((players, 2), 500, np.int32), "alive": np.ones(players, bool), "team": np.zeros(players, np.uint8)})

    def step(self, state, inputs, tick):
        state.pos += inputs["move"]


def test_a_game_without_visuals_or_controls_gets_defaults():
    v = game_visuals(Dots())
    assert v.world == (0, 0, 1000, 1000) and v.position_fields(Dots.replication) == ("pos",)
    held = Dots.input_dtype
    c = game_controls(Dots())
    assert c.record(held, {"d", "up"})["move"].tolist() == [127, -127]
    assert default_visuals(Replication(alive="a", fields={"hp": Int(0, 9)})) is None
    assert default_controls(np.dtype([("flag", "u1", (3,))])) is None


def test_a_broken_spec_is_reported_not_raised():
    class Broken(Dots):
        visuals = Visuals(world=(0, 0, 10, 10), sprites=(Sprite(label="name"),))
        controls = Controls(Press("fire", keys=("space",)))

    spec = viewer_spec(Broken())
    assert spec["visuals"] is None and spec["controls"] is None
    assert any("name" in p for p in spec["problems"]) and any("fire" in p for p in spec["problems"])


def test_controls_make_the_record_the_game_expects():
    arena, swarm = demos.arena.GAME, demos.swarm.GAME
    dt = arena.input_dtype
    rec = arena.controls.record(dt, {"d", "s", "space"}, aim=math.pi / 2)
    assert rec["move"].tolist() == [127, 127] and int(rec["aim"]) == 64 and int(rec["buttons"]) == 1
    rec = arena.controls.record(dt, {"a", "d", "w"}, aim=-math.pi / 2)  # left and right cancel
    assert rec["move"].tolist() == [0, -127] and int(rec["aim"]) == 192 and int(rec["buttons"]) == 0
    assert arena.controls.record(dt, set()).tobytes() == bytes(dt.itemsize), "nothing held: the neutral input"
    sw = swarm.input_dtype
    rally = swarm.controls.record(sw, {"mouse1"}, pointer=(1000.0, 300.0))
    assert (int(rally["cmd"]), int(rally["x"]), int(rally["y"])) == (demos.swarm.game.RALLY, 3, 1)
    assert int(swarm.controls.record(sw, {"r"}, pointer=(1000.0, 300.0))["cmd"]) == demos.swarm.game.RECALL
    assert swarm.controls.record(sw, set(), pointer=(1000.0, 300.0)).tobytes() == bytes(3), "no click: hold"
    with pytest.raises(ValueError, match="unknown key"):
        Axis("move", positive=("ctrl",))
    with pytest.raises(ValueError, match="not an input field"):
        Controls(Point("px", "py")).validate(sw)


def test_palette_is_stable_and_distinct():
    colours = [palette(v) for v in range(8)]
    assert len(set(colours)) == 8 and all(c.startswith("#") and len(c) == 7 for c in colours)
    # The browser's rule (web/render.js): hsl(value * 67 % 360, 80%, 60%); CSS gives
    # hsl(0 80% 60%) as rgb(235, 71, 71), and the hue wraps at 360 as there.
    assert palette(0) == "#eb4747" and palette(360) == palette(0) and palette(-1) == palette(359)
