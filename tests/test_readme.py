"""The README's command section works as printed, in order, in a fresh clone.

The clone is the checkout's tracked files copied into a scratch directory (what ``git
clone`` gives, with this checkout's edits, and without its build products), and the set-up
commands' result is the virtualenv running this test, linked in as ``.venv`` (building a
new one would take minutes). Each line of the section's ``sh`` block runs in bash in that
directory; ``.``/``source``/``export`` lines carry over to the lines after them. A
``serve`` line is started in the background (it runs until Ctrl-C) and sent SIGINT before
the next ``serve`` or at the end; it must exit 0. Ports: the README's 7777 (UDP) and 8080
(HTTP) become free ports, each ``serve`` gets ``--ws-port`` that HTTP port (and a status
table, whose header says it is ready for Ctrl-C), so the test never collides with anything
else on the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def command_lines(text: str) -> list[str]:
    """The lines of the first ``sh`` block after the "## Command line" heading."""
    section = text.split("\n## Command line\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the command section has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def fresh_clone(dest: Path) -> Path:
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell which files a clone has")
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
    (dest / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return dest


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_lines_are_found():
    lines = command_lines(README.read_text())
    assert any(line.startswith("ticksync serve") for line in lines)
    assert any(line.startswith("ticksync bots") for line in lines)


@pytest.mark.network
@pytest.mark.timeout(150)
def test_readme_commands_work_in_a_fresh_clone(tmp_path):
    if not (Path(sys.prefix) / "bin" / "ticksync").exists():
        pytest.skip(f"{sys.prefix} has no ticksync script: not the project's virtualenv")
    clone = fresh_clone(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSYNC_") and k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = str(clone)  # the clone's code, not whatever the venv was installed from
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    port = str(free_port())
    http_port = str(free_port(socket.SOCK_STREAM))
    prelude: list[str] = []
    server: subprocess.Popen | None = None

    def stop_server() -> None:
        nonlocal server
        if server is None:
            return
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
        assert server.returncode == 0, (server.args, out[-2000:], err[-2000:])
        assert "stopping (SIGINT)" in out, out[-2000:]
        server = None

    try:
        for line in command_lines(README.read_text()):
            command = line.replace("7777", port).replace("8080", http_port)
            script = "\n".join(prelude + [command])
            if re.match(r"\s*(\.|source|export)\s", line):
                prelude.append(line)
                continue
            if line.startswith("ticksync serve"):
                stop_server()
                server = subprocess.Popen(
                    ["bash", "-ec", "\n".join(prelude + ["exec " + command + f" --ws-port {http_port} --status-every 0.5"])],
                    cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
                deadline = time.monotonic() + 30
                started = ""
                # The status table's header: printed once the server handles Ctrl-C.
                while time.monotonic() < deadline and "time s" not in started:
                    row = server.stdout.readline()
                    if not row:
                        break
                    started += row
                assert "serving" in started and "time s" in started, (line, started, server.poll())
                continue
            t0 = time.monotonic()
            done = subprocess.run(["bash", "-ec", script], cwd=clone, env=env, capture_output=True, text=True, timeout=90)
            assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
            assert "Traceback" not in done.stderr, (line, done.stderr)
            print(f"{time.monotonic() - t0:6.1f} s  {line}")
        stop_server()
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.communicate()
    assert (clone / "out" / "a.tsr").exists() and (clone / "out" / "match.tsr").exists()
