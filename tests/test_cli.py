"""The ``ticksync`` command line: exit codes, one-line errors, and what each command prints.

Most cases call ``netcode.cli.main([...])`` in-process (fast); a few run
``python -m netcode.cli`` to check what a user sees: one line on stderr, no traceback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from demos.pong import GAME as PONG
from engine import ReplayReader, seek
from netcode import SPECTATOR, token_from_text, verify_token
from netcode.cli import main

CLI = [sys.executable, "-m", "netcode.cli"]
SECRET = "cli-test-secret-0123456789"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=60, env=env)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("ticksync: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "pong.tsr")
    assert main(["run", "demos.pong", "--ticks", "300", "--players", "2", "--record", path]) == 0
    return path


# -- run / replay / check -------------------------------------------------------------------


def test_run_prints_progress_and_records(recording, capsys):
    reader = ReplayReader(recording)
    assert reader.clean and reader.ticks == 300 and reader.meta["game_path"] == "demos.pong"
    assert main(["run", "demos.pong", "--ticks", "50"]) == 0
    out = capsys.readouterr().out
    assert "ran 50 ticks" in out and "final hash" in out


def test_replay_verifies_and_seeks(recording, capsys):
    assert main(["replay", recording, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "re-simulated 300 ticks" in out and "verified:" in out and "warning" not in out
    assert main(["replay", recording, "--seek", "123"]) == 0
    expected = seek(ReplayReader(recording), PONG, 123).hash()
    assert f"state at tick 123: hash {expected:016x}" in capsys.readouterr().out


def test_replay_of_a_torn_file_warns_and_replays_the_intact_part(recording, tmp_path, capsys):
    torn = tmp_path / "torn.tsr"
    shutil.copy(recording, torn)
    with open(torn, "r+b") as f:
        f.truncate(os.path.getsize(torn) - 40)
    assert main(["replay", str(torn), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "warning: torn tail" in out and "verified:" in out


def test_replay_errors_are_one_line_with_exit_2(recording, tmp_path, capsys):
    garbage = tmp_path / "garbage.tsr"
    garbage.write_bytes(os.urandom(300))
    assert "not a ticksync replay" in one_line_error(cli("replay", str(garbage)))
    # The wrong game for the recording (in-process: the same rule, faster).
    assert main(["replay", recording, "--game", "demos.arena"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "replay is pong" in err
    assert main(["replay", str(tmp_path / "missing.tsr")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_check_exit_codes(capsys):
    assert main(["check", "demos.pong", "--ticks", "60"]) == 0
    assert "deterministic over 60 ticks" in capsys.readouterr().out
    assert main(["check", "nondet_game", "--ticks", "60", "--players", "2"]) == 1
    assert "NOT deterministic: first bad tick 20" in capsys.readouterr().out
    assert main(["check", "no_such_game_module"]) == 2
    assert "no game module" in capsys.readouterr().err


# -- token ----------------------------------------------------------------------------------


def test_token_prints_a_verifiable_token(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TICKSYNC_SECRET", SECRET)
    assert main(["token", "--room", "lobby", "--slot", "2", "--user", "ann", "--ttl", "120"]) == 0
    text = capsys.readouterr().out.strip()
    claims = verify_token(SECRET.encode(), token_from_text(text), now_wall=time.time(), room="lobby")
    assert (claims.slot, claims.user, claims.role) == (2, "ann", 0)
    minted = time.time()
    assert minted + 110 < claims.expires <= minted + 121
    # A secret from a file or another variable, and a spectator token.
    path = tmp_path / "secret"
    path.write_text("file-secret-0123456789\n")
    assert main(["token", "--room", "lobby", "--spectator", "--secret-file", str(path)]) == 0
    claims = verify_token(b"file-secret-0123456789", token_from_text(capsys.readouterr().out), now_wall=time.time())
    assert claims.role == SPECTATOR and claims.slot == -1
    monkeypatch.setenv("OTHER_SECRET", "other-secret-0123456789")
    assert main(["token", "--secret-env", "OTHER_SECRET"]) == 0
    verify_token(b"other-secret-0123456789", token_from_text(capsys.readouterr().out), now_wall=time.time(), room="default")


def test_token_refuses_without_a_usable_secret(monkeypatch, capsys):
    monkeypatch.delenv("TICKSYNC_SECRET", raising=False)
    assert main(["token", "--room", "r"]) == 2
    assert "no server secret" in capsys.readouterr().err
    monkeypatch.setenv("TICKSYNC_SECRET", "short")
    assert main(["token", "--room", "r"]) == 2
    assert "at least 16" in capsys.readouterr().err
    monkeypatch.setenv("TICKSYNC_SECRET", SECRET)
    assert main(["token", "--room", "r", "--slot", "1", "--spectator"]) == 2
    assert main(["token", "--room", "r" * 65]) == 2
    assert main(["token", "--ttl", "0"]) == 2


# -- serve / bots ---------------------------------------------------------------------------


def test_serve_refuses_a_bad_mode_or_game_in_one_line(capsys):
    env = dict(os.environ, TICKSYNC_SECRET=SECRET)
    line = one_line_error(cli("serve", "demos.arena", "--mode", "telepathy", "--port", "0", "--ws-port", "0", env=env))
    assert "unknown mode 'telepathy'" in line and "lockstep" in line
    assert main(["serve", "no_such_game_module", "--port", "0"]) == 2
    assert "no game module" in capsys.readouterr().err
    assert main(["serve", "demos.pong", "--players", "99", "--port", "0"]) == 2
    assert "players" in capsys.readouterr().err


@pytest.mark.network
def test_serve_runs_for_a_duration_and_prints_tokens_without_a_secret(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TICKSYNC_SECRET", raising=False)
    record = tmp_path / "short.tsr"
    args = ["serve", "demos.pong", "--port", "0", "--ws-port", "0", "--duration", "0.5", "--status-every", "0.2"]
    assert main(args + ["--record", str(record), "--room", "a", "--room", "b"]) == 0
    out = capsys.readouterr().out
    assert "udp://127.0.0.1:" in out and "/ws" in out and "dashboard  http://" in out
    assert "random secret" in out and "room a slot 1: " in out and "room b slot 0: " in out
    assert "stopping (--duration reached)" in out and "default" not in out
    for room in ("a", "b"):  # several rooms: one recording each
        reader = ReplayReader(tmp_path / f"short-{room}.tsr")
        assert reader.clean and reader.ticks >= 10 and reader.meta["room"] == room


@pytest.mark.network
def test_bots_fail_when_nobody_answers(monkeypatch, capsys):
    monkeypatch.setenv("TICKSYNC_SECRET", SECRET)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free again once closed: nothing listens there
    assert main(["bots", f"udp://127.0.0.1:{port}", "--game", "demos.pong", "--count", "2", "--duration", "0.6"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 2 of 2" in out and "never connected" in out


def test_bots_argument_errors(monkeypatch, capsys):
    monkeypatch.setenv("TICKSYNC_SECRET", SECRET)
    assert main(["bots", "tcp://x:1", "--game", "demos.pong", "--count", "1"]) == 2
    assert "udp://host:port" in capsys.readouterr().err
    assert main(["bots", "udp://127.0.0.1:9", "--game", "demos.pong"]) == 2
    assert "--count is required" in capsys.readouterr().err
    assert main(["bots", "udp://127.0.0.1:9", "--game", "demos.pong", "--token", "AAAA", "--count", "2"]) == 2
    assert "one token per bot" in capsys.readouterr().err


def test_replay_verify_of_a_file_damaged_in_the_middle_exits_1(tmp_path, capsys):
    """One flipped bit in the middle is damage, not a torn tail: exit 1, where, how much."""
    path = tmp_path / "long.tsr"
    assert main(["run", "demos.pong", "--ticks", "1200", "--players", "2", "--record", str(path)]) == 0
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x08
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["replay", str(path), "--verify"]) == 1
    out = capsys.readouterr().out
    reader = ReplayReader(str(path))
    assert 0 < reader.ticks < 1200 and reader.expected_ticks == 1200
    assert f"{reader.ticks} ticks recorded (of the 1200 it was meant to hold)" in out
    assert f"ERROR: the file is damaged at byte " in out
    assert f"{1200 - reader.ticks} of the 1200 ticks it was meant to hold are lost" in out
    assert "verified:" in out and "in the intact" in out
    # Without --verify it is a warning (the intact part still replays).
    assert main(["replay", str(path)]) == 0
    assert "warning: the file is damaged" in capsys.readouterr().out


def test_seek_dump_prints_the_state_at_a_tick(recording, capsys):
    import orjson

    state = seek(ReplayReader(recording), PONG, 77)
    assert main(["replay", recording, "--seek", "77", "--json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert doc["tick"] == 77 and doc["hash"] == f"{state.hash():016x}"
    assert set(doc["arrays"]) == set(state.names)
    for name, arr in state.items():
        assert doc["arrays"][name]["values"] == arr.tolist() and doc["arrays"][name]["shape"] == list(arr.shape)
    assert main(["replay", recording, "--seek", "77", "--dump"]) == 0
    out = capsys.readouterr().out
    assert f"hash {state.hash():016x}" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["row"] and "x" in line.split())
    header = lines[at].split()
    for row in range(len(state.x)):  # one line per entity row, each array in its column
        cells = lines[at + 1 + row].split()
        assert cells[0] == str(row) and cells[header.index("x")] == str(state.x[row])
    assert f"rng = {state.rng[()]}" in out
    assert main(["replay", recording, "--dump"]) == 2
    assert "add --seek" in capsys.readouterr().err


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ticksync {version('ticksync')}"
