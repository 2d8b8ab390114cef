"""A real ``ticksync serve`` in a child process on loopback, for the viewer tests (browser,
desktop): started with a known secret, its URLs read from what it prints, stopped after."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "viewer-test-secret-0123456789"
_URL = re.compile(r"^\s+(game|websocket|dashboard)\s+(\S+)", re.M)


def child_env(**extra: str) -> dict:
    """The environment for a child: this checkout and tests/ importable (tests' own games)."""
    env = dict(os.environ, TICKSYNC_SECRET=SECRET, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    return env


def start_serve(args: list[str], *, log: Path, timeout: float = 20.0, env: dict | None = None) -> tuple[subprocess.Popen, dict]:
    """``ticksync serve ARGS`` in a child process, once it printed its URLs: (process,
    {"game": udp://..., "websocket": ws://..., "dashboard": http://...}). Its output goes
    to ``log`` (a file, not a pipe nobody drains). The caller stops it (:func:`stop`)."""
    cmd = [sys.executable, "-m", "netcode.cli", "serve", *args]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env or child_env(), cwd=ROOT)
    end = time.monotonic() + timeout
    while True:
        text = Path(log).read_text()
        urls = {m.group(1): m.group(2) for m in _URL.finditer(text)}
        if len(urls) == 3:
            return proc, urls
        if proc.poll() is not None:
            raise RuntimeError(f"serve ended before listening (exit {proc.returncode}):\n{text}")
        if time.monotonic() > end:
            stop(proc)
            raise RuntimeError(f"serve printed no URLs in {timeout} s:\n{text}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextmanager
def serving(game: str, mode: str = "statesync", *extra: str, log: Path, timeout: float = 20.0):
    """Yields {"game": udp://..., "websocket": ws://..., "dashboard": http://...}."""
    args = [game, "--mode", mode, "--port", "0", "--ws-port", "0", "--status-every", "0", "--duration", "120", *extra]
    proc, urls = start_serve(args, log=log, timeout=timeout)
    try:
        yield urls
    finally:
        stop(proc)
