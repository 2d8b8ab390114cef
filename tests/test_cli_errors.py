"""Every bad input the command line is promised to refuse, as a user sees it: one line on
stderr starting ``ticksync: error:``, exit code 2, no traceback; a divergence exits 1; and
``--traceback`` / ``TICKSYNC_TRACEBACK=1`` give the full story instead.

Each case runs ``python -m netcode.cli`` in a subprocess (what a user runs), with the
test's scratch directory on PYTHONPATH for the broken game modules.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "netcode.cli"]
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SECRET = "cli-errors-secret-0123456789"

BROKEN_GAMES = {
    # name: (source, the line the message must name)
    "syntax_error_game": ("import numpy as np\n\ndef step(state:\n    pass\n", 3),
    "bad_import_game": ("import numpy as np\nimport no_such_dependency_xyz\n", 2),
    "raising_game": ("import numpy as np\n\nGAME = np.zeros(3)[7]\n", 3),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_errors")
    for name, (source, _) in BROKEN_GAMES.items():
        (root / f"{name}.py").write_text(source)
    rec = root / "pong.tsr"
    done = run("run", "demos.pong", "--ticks", "120", "--players", "2", "--record", str(rec), cwd=root)
    assert done.returncode == 0, done.stderr
    (root / "garbage.tsr").write_bytes(os.urandom(300))
    return root


def env_for(root: Path | None = None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TICKSYNC_SECRET", "TICKSYNC_TRACEBACK")}
    paths = [str(ROOT), str(TESTS)] + ([str(root)] if root else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def run(*args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=60, cwd=cwd, env=env_for(cwd, **extra))


def assert_one_line(done: subprocess.CompletedProcess, *expected: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = lines[0]
    assert line.startswith("ticksync: error: "), line
    for text in expected:
        assert text in line, (text, line)
    return line


# (case id, argv with {dir} for the scratch directory, texts the one line must hold)
CASES = [
    ("seek past the end", ["replay", "{dir}/pong.tsr", "--seek", "99999"], ["--seek 99999", "0..120"]),
    ("seek negative", ["replay", "{dir}/pong.tsr", "--seek", "-5"], ["--seek -5", "0..120"]),
    ("replay of garbage", ["replay", "{dir}/garbage.tsr"], ["not a ticksync replay"]),
    ("replay of a missing file", ["replay", "{dir}/missing.tsr"], ["cannot read", "missing.tsr"]),
    ("replay of a directory", ["replay", "{dir}"], ["cannot read"]),
    ("game with a syntax error", ["run", "syntax_error_game", "--ticks", "3"], ["syntax error", "syntax_error_game.py, line 3"]),
    ("game with a bad import", ["run", "bad_import_game", "--ticks", "3"], ["bad_import_game.py, line 2", "no_such_dependency_xyz"]),
    ("game raising on import", ["check", "raising_game"], ["raising_game.py, line 3", "IndexError"]),
    ("no such game", ["check", "no_such_game_module"], ["no game module 'no_such_game_module'"]),
    ("record into a missing directory", ["run", "demos.pong", "--ticks", "3", "--record", "{dir}/nodir/a.tsr"], ["nodir", "does not exist", "mkdir -p"]),
    ("record over a recording", ["run", "demos.pong", "--ticks", "3", "--record", "{dir}/pong.tsr"], ["pong.tsr exists", "--force"]),
    (
        "serve recording into a missing directory",
        ["serve", "demos.pong", "--port", "0", "--ws-port", "0", "--duration", "1", "--record", "{dir}/nodir/m.tsr"],
        ["nodir", "does not exist"],
    ),
    ("a certificate without its key", ["serve", "demos.pong", "--tls-cert", "{dir}/cert.pem", "--port", "0"], ["--tls-cert and --tls-key go together"]),
    (
        "a certificate that cannot be read",
        ["serve", "demos.pong", "--tls-cert", "{dir}/missing.pem", "--tls-key", "{dir}/missing.key", "--port", "0"],
        ["cannot load the TLS certificate", "missing.pem"],
    ),
    (
        "plaintext sessions off loopback",
        ["serve", "demos.pong", "--insecure-plaintext", "--host", "0.0.0.0", "--port", "0"],
        ["--insecure-plaintext is for loopback only", "0.0.0.0"],
    ),
    ("serve an unknown mode", ["serve", "demos.pong", "--mode", "telepathy", "--port", "0"], ["unknown mode 'telepathy'"]),
    ("UDP port out of range", ["bots", "udp://127.0.0.1:99999", "--game", "demos.pong", "--count", "1"], ["port 99999", "65535"]),
    ("URL of no known scheme", ["bots", "http2://x", "--game", "demos.pong", "--count", "1"], ["http2://x", "udp://host:port"]),
    ("bots without a secret", ["bots", "udp://127.0.0.1:9", "--game", "demos.pong", "--count", "1"], ["no server secret"]),
    ("token without a secret", ["token", "--room", "r"], ["no server secret", "TICKSYNC_SECRET"]),
    ("unknown option", ["run", "demos.pong", "--tiks", "3"], ["unrecognized arguments: --tiks", "--help"]),
    ("not a number", ["replay", "{dir}/pong.tsr", "--seek", "ten"], ["--seek", "invalid int value"]),
    ("negative ticks", ["run", "demos.pong", "--ticks", "-3"], ["--ticks must not be negative"]),
    ("no command", [], ["required"]),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(scratch, argv, expected):
    assert_one_line(run(*[a.replace("{dir}", str(scratch)) for a in argv], cwd=scratch), *expected)


def test_the_recording_refused_is_left_alone_and_force_overwrites(scratch):
    rec = scratch / "pong.tsr"
    before = rec.read_bytes()
    assert_one_line(run("run", "demos.pong", "--ticks", "3", "--record", str(rec), cwd=scratch), "--force")
    assert rec.read_bytes() == before
    copy = scratch / "copy.tsr"
    copy.write_bytes(before)
    done = run("run", "demos.pong", "--ticks", "7", "--record", str(copy), "--force", cwd=scratch)
    assert done.returncode == 0, done.stderr
    assert copy.read_bytes() != before


def test_traceback_flag_and_variable_tell_the_full_story(scratch):
    for done in (
        run("--traceback", "run", "bad_import_game", cwd=scratch),
        run("run", "bad_import_game", "--traceback", cwd=scratch),
        run("run", "bad_import_game", cwd=scratch, TICKSYNC_TRACEBACK="1"),
    ):
        assert done.returncode == 2
        assert "Traceback (most recent call last)" in done.stderr
        assert "ModuleNotFoundError" in done.stderr and "bad_import_game.py" in done.stderr


def test_a_divergence_exits_1(scratch):
    done = run("check", "nondet_game", "--ticks", "60", "--players", "2", cwd=scratch)
    assert done.returncode == 1, done.stderr
    assert "NOT deterministic" in done.stdout and "Traceback" not in done.stderr


def _free_udp_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.network
def test_a_udp_port_in_use_is_named(scratch):
    with _free_udp_port() as taken:
        port = taken.getsockname()[1]
        done = run("serve", "demos.pong", "--port", str(port), "--ws-port", "0", "--duration", "1", cwd=scratch)
    assert_one_line(done, f"UDP port {port}", "in use")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "demos.pong", "--port", "0", "--ws-port", str(port), "--duration", "1", cwd=scratch)
    assert_one_line(done, f"HTTP/WebSocket port {port}", "in use")


@pytest.mark.network
def test_bots_at_a_wrong_websocket_path_is_one_line(scratch):
    server = subprocess.Popen(
        CLI + ["serve", "demos.pong", "--port", "0", "--ws-port", "0", "--duration", "30", "--status-every", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(scratch, TICKSYNC_SECRET=SECRET),
    )
    try:
        deadline = time.monotonic() + 20
        ws_url = None
        while ws_url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            match = re.search(r"websocket\s+(ws://\S+)", line)
            ws_url = match.group(1) if match else None
        assert ws_url, "the server never printed its websocket URL"
        wrong = ws_url.rsplit("/", 1)[0] + "/wrong-path"
        done = run("bots", wrong, "--game", "demos.pong", "--count", "2", "--duration", "2", cwd=scratch, TICKSYNC_SECRET=SECRET)
        assert_one_line(done, "wrong-path", "HTTP 404")
    finally:
        server.terminate()
        server.wait(timeout=10)
