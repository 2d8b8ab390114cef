"""``ticksync serve`` as a user starts it (a subprocess, no secret and no admin key set, a
TOML config), then ``ticksync bots`` against it through the HTTP API, and the admin key it
printed opening the admin routes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from netcode.cli import main
from serving import ROOT, child_env

CLI = [sys.executable, "-m", "netcode.cli"]


class Served:
    """A ``ticksync serve`` subprocess whose stdout is read line by line in a thread."""

    def __init__(self, *args: str, env: dict):
        self.proc = subprocess.Popen(CLI + ["serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"serve ended before printing {prefix!r}: {self.seen} {self.proc.stderr.read()}")
            self.seen.append(line)
            if line.strip().startswith(prefix):
                return line.strip()
        raise AssertionError(f"serve did not print {prefix!r} in {timeout} s: {self.seen}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def _request(url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.network
def test_plain_serve_from_a_config_file_with_bots_through_the_http_api(tmp_path, capsys):
    config = tmp_path / "server.toml"
    config.write_text(
        'game = "demos.arena"\nmode = "statesync"\nport = 0\nws_port = 0\nstatus_every = 0\n'
        'games = ["demos.pong"]\n\n[matchmaking]\nreserve_s = 5\n\n'
        '[[rooms]]\nname = "lobby"\nplayers = 3\ntick_rate = 30\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TICKSYNC_SECRET", "TICKSYNC_ADMIN_KEY")}
    served = Served("--config", str(config), "--duration", "60", env=env)
    try:
        served.wait_for("serving arena")
        dashboard = served.wait_for("dashboard").split()[-1]
        key = served.wait_for("admin key:").split()[-1]
        assert dashboard.startswith("http://127.0.0.1:") and len(key) >= 24

        # Bots find the room through matchmaking: no secret, no tokens typed.
        assert main(["bots", dashboard, "--game", "demos.arena", "--count", "2", "--duration", "2.5"]) == 0
        out = capsys.readouterr().out
        assert "matchmaking placed 2 bot(s) in lobby (statesync)" in out
        progress = [line for line in out.splitlines() if " s  playing " in line]
        assert progress and "snapshots" in progress[-1] and "playing 2/2" in progress[-1], out
        assert "snapshots" in out.splitlines()[out.splitlines().index(progress[-1]) + 1]  # the table's column
        assert "ok: 2 bot(s) played" in out

        status, listing = _request(dashboard + "api/rooms")
        (lobby,) = listing["rooms"]
        assert lobby["name"] == "lobby" and lobby["slots"] == 3 and lobby["tick_rate"] == 30
        assert listing["server"]["tokens"]["secret"].startswith("generated") and sorted(listing["server"]["games"]) == ["arena", "pong"]

        # The printed admin key opens the admin routes; the config's extra game is allowed.
        spec = {"name": "table", "game": "demos.pong", "mode": "lockstep", "players": 2}
        assert _request(dashboard + "api/rooms", spec)[0] == 403
        status, room = _request(dashboard + "api/rooms", spec, key=key)
        assert status == 201 and room["game"] == "pong" and room["mode"] == "lockstep"
        assert main(["bots", dashboard, "--game", "demos.pong", "--count", "1", "--duration", "1.5", "--room", "table"]) == 0
        out = capsys.readouterr().out
        assert "placed 1 bot(s) in table (lockstep)" in out and " frames " in out
    finally:
        assert served.stop() == 0


def test_serve_config_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    for text, words in (
        ("prot = 7777\n", "unknown setting 'prot'"),
        ("port = 'x'\n", "port must be int"),
        ("[[rooms]]\nplayers = 2\n", "needs a name"),
        ("[matchmaking]\naccess = 'maybe'\n", "open, admin or off"),
        ("game = \n", "not valid TOML"),
    ):
        bad.write_text(text)
        assert main(["serve", "demos.pong", "--config", str(bad), "--port", "0", "--ws-port", "0"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (text, err)
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the config file" in capsys.readouterr().err
    assert main(["serve", "--port", "0"]) == 2
    assert "which game?" in capsys.readouterr().err
    bad.write_text("[matchmaking]\naccess = 'maybe'\n")  # the flag wins over the file
    assert main(["serve", "demos.pong", "--config", str(bad), "--matchmaking", "off", "--duration", "0.2", "--port", "0", "--ws-port", "0"]) == 0
    assert "api/matchmake" not in capsys.readouterr().out  # matchmaking off: no join line
    assert main(["bots", "http://127.0.0.1:9", "--game", "demos.pong", "--token", "AAAA"]) == 2
    assert "--token goes with" in capsys.readouterr().err


def test_the_admin_key_comes_from_a_file_or_the_environment_or_is_made(tmp_path, monkeypatch):
    import argparse

    from engine.cli import CliError
    from netcode.cli import _admin_key

    args = argparse.Namespace(admin_key_env="MY_KEY")
    monkeypatch.delenv("MY_KEY", raising=False)
    made, generated = _admin_key(args, {"admin_key_file": None})
    again, _ = _admin_key(args, {"admin_key_file": None})
    assert generated and len(made) >= 24 and made != again
    monkeypatch.setenv("MY_KEY", "  from-the-environment \n")
    assert _admin_key(args, {"admin_key_file": None}) == ("from-the-environment", False)
    path = tmp_path / "key"
    path.write_text("from-a-file\n")
    assert _admin_key(args, {"admin_key_file": str(path)}) == ("from-a-file", False)  # the file wins
    path.write_text("  \n")
    with pytest.raises(CliError, match="empty"):
        _admin_key(args, {"admin_key_file": str(path)})
    with pytest.raises(CliError, match="cannot read"):
        _admin_key(args, {"admin_key_file": str(tmp_path / "nope")})


_COUNT_WRITES = """
import json, os, runpy, sys
class Writes:  # sys.stdout, recording each write call
    def __init__(self, out):
        self.out, self.calls = out, []
    def write(self, text):
        self.calls.append(text)
        return self.out.write(text)
    def __getattr__(self, name):
        return getattr(self.out, name)
sys.stdout = Writes(sys.stdout)
sys.argv = ["ticksync"] + sys.argv[2:]
try:
    runpy.run_module("netcode.cli", run_name="__main__", alter_sys=True)
finally:
    with open(os.environ["WRITES_FILE"], "w") as f:
        json.dump(sys.stdout.calls, f)
"""


@pytest.mark.network
def test_the_serve_banner_goes_out_in_one_write(tmp_path):
    """The workers of ``serve --workers N`` share one stdout: each one's banner is one
    write, so with unbuffered output (PYTHONUNBUFFERED) one worker's lines do not land in
    the middle of another's (they did, and a test that read the dashboards timed out)."""
    writes = tmp_path / "writes.json"
    env = child_env(PYTHONUNBUFFERED="1", WRITES_FILE=str(writes))
    out = subprocess.run([sys.executable, "-c", _COUNT_WRITES, "-", "serve", "demos.arena", "--port", "0", "--ws-port", "0",
                          "--duration", "0.5", "--status-every", "0"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    calls = json.loads(writes.read_text())
    banner = [c for c in calls if "  dashboard  http://" in c]
    assert len(banner) == 1, calls
    assert banner[0].startswith("serving ") and "  game       udp://" in banner[0] and "  admin      POST" in banner[0], banner
