import numpy as np
import pytest

from demos.arena import Arena
from demos.pong import Pong
from engine import Game, GameError, load_game


def test_load_game_by_module_and_attribute():
    assert load_game("demos.arena").name == "arena"
    assert load_game("demos.pong:Pong").name == "pong"


@pytest.mark.parametrize(
    "path, message",
    [
        ("demos.nope", "no game module"),
        ("demos.arena:Nope", "has no 'Nope'"),
        ("engine.rng:randint", "not a ticksync Game"),
    ],
)
def test_load_game_errors_are_clear(path, message):
    with pytest.raises(GameError, match=message):
        load_game(path)


def test_fingerprint_tracks_schema_changes():
    base = Arena().fingerprint()
    assert Arena().fingerprint() == base
    assert Arena(npcs=10).fingerprint() != base  # state shapes differ

    class Renamed(Arena):
        version = "1.1"

    assert Renamed().fingerprint() != base

    class OtherInput(Arena):
        input_dtype = np.dtype([("move", "i2", (2,)), ("aim", "u1"), ("buttons", "u1"), ("view", "u1")])

    assert OtherInput().fingerprint() != base


def test_sanitize_clamps_and_counts():
    g = Arena()
    inputs = np.zeros(3, g.input_dtype)
    inputs["buttons"] = [0, 7, 1]
    inputs["view"][2] = 200
    assert g.sanitize_inputs(inputs) == 2
    assert list(inputs["buttons"]) == [0, 1, 1] and inputs["view"][2] == 63


def test_sanitize_replaces_nan():
    class Floaty(Game):
        name, version = "floaty", "1"
        input_dtype = np.dtype([("thrust", "f4")])
        input_limits = {"thrust": (-1.0, 1.0)}

    inputs = np.array([(np.nan,), (5.0,), (0.5,)], Floaty.input_dtype)
    assert Floaty().sanitize_inputs(inputs) == 2
    assert list(inputs["thrust"]) == [-1.0, 1.0, 0.5]


def test_player_count_is_checked():
    with pytest.raises(GameError, match="1..2 players"):
        Pong().create(1, 3)


def test_sanitize_handles_sub_array_fields():
    g = Arena()
    inputs = np.zeros(2, g.input_dtype)
    inputs["move"][1] = (-128, 5)
    assert g.sanitize_inputs(inputs) == 1
    assert list(inputs["move"][1]) == [-127, 5]


def test_sanitize_skips_only_limits_the_type_cannot_exceed():
    class Bytes(Game):
        name, version = "bytes", "1"
        input_dtype = np.dtype([("any", "u1"), ("most", "u1"), ("signed", "i1")])
        input_limits = {"any": (0, 255), "most": (0, 254), "signed": (-128, 127)}

    inputs = np.array([(255, 255, -128), (0, 3, 127)], Bytes.input_dtype)
    assert [f for f, _, _ in Bytes()._limits_to_test(Bytes.input_dtype)] == ["most"]
    assert Bytes().sanitize_inputs(inputs) == 1
    assert inputs.tolist() == [(255, 254, -128), (0, 3, 127)]
