"""One error hierarchy: everything ticksync raises on purpose is a TicksyncError, and the
subclass says whose fault it is. (That a malformed packet is counted, never raised, is
tested where each receive path is: test_session.py, test_lockstep.py, test_statesync.py.)"""

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import engine
import netcode
from engine import Game, GameError, ReplayError, ReplayReader, State, StateLayoutError, TicksyncError, UsageError
from engine.cli import CliError
from netcode import LockstepClient, ProtocolError, mint_token

ROOT = Path(__file__).resolve().parent.parent

# Exceptions that are signals between ticksync's own parts, never errors a user sees.
SIGNALS = {"netcode.session.server.Refused"}  # an admit callback's "no", caught by SessionServer


def test_one_base_and_the_fault_each_subclass_names():
    assert netcode.TicksyncError is engine.TicksyncError is TicksyncError
    assert netcode.UsageError is UsageError  # one class, re-exported by netcode.errors
    for cls, fault in [
        (UsageError, "caller"),
        (CliError, "caller"),
        (ProtocolError, "peer"),
        (GameError, "game"),
        (StateLayoutError, "game"),
        (ReplayError, "file"),
    ]:
        assert issubclass(cls, TicksyncError), cls
        assert fault in (cls.__doc__ or ""), f"{cls.__name__}'s docstring should say it is the {fault}'s fault"
    assert issubclass(CliError, UsageError)
    assert issubclass(StateLayoutError, ValueError)  # as before: callers may catch ValueError


def _modules():
    for package in ("engine", "netcode"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if list(path.parent.glob(f"{path.stem}.*.so")):
                continue  # a compiled twin's source (netcode.compiled picks which one runs): no errors there
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_exception_class_ticksync_defines_derives_from_the_base():
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name:
                qualname = f"{name}.{obj.__qualname__}"
                found.append(qualname)
                if qualname not in SIGNALS:
                    assert issubclass(obj, TicksyncError), f"{qualname} does not derive from TicksyncError"
    assert {"engine.model.GameError", "netcode.errors.ProtocolError", "engine.replay.ReplayError"} <= set(found)


def test_except_ticksync_error_catches_api_misuse_a_bad_game_and_a_bad_file(tmp_path, bad_game_module):
    caught = []

    def attempt(call):
        try:
            call()
        except TicksyncError as exc:
            caught.append(type(exc))

    attempt(lambda: LockstepClient(engine.load_game("demos.pong"), server=("h", 1), token=b"t", input_delay=-1))
    attempt(lambda: mint_token(b"short", "room", expires=0.0, slot=0))
    attempt(lambda: engine.load_game(f"{bad_game_module}:Nameless"))
    bad = tmp_path / "bad.tsr"
    bad.write_bytes(b"not a replay")
    attempt(lambda: ReplayReader(str(bad)))
    assert caught == [UsageError, UsageError, GameError, ReplayError]


@pytest.fixture
def bad_game_module(monkeypatch):
    """A module holding a game that breaks the contract (no name, no version), importable
    by load_game."""
    import sys
    import types

    module = types.ModuleType("tests_errors_bad_game")

    class Nameless(Game):
        input_dtype = np.dtype([("move", "i1")])

        def create(self, seed, players):
            return State({"x": np.zeros(players, np.int32)})

    module.Nameless = Nameless
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__
