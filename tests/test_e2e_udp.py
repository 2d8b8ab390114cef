"""End to end over real UDP on loopback, with separate processes: ``ticksync serve`` records
a lockstep arena match, ``ticksync bots`` plays three bots against it, an in-process
WebSocket client joins the same room, then SIGINT stops the server and the recording
verifies with ``ticksync replay --verify``.

The server binds port 0 and prints its URLs; the test reads them from its output file (a
file, not a pipe, so the server can never block on a full pipe). Every wait is bounded and
every process is killed if the test fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demos.arena import GAME
from engine.loop import run_async
from engine.replay import ReplayReader
from netcode.client import GameClient
from netcode.token import mint_token

pytestmark = pytest.mark.network

SECRET = "e2e-secret-0123456789abcdef"
CLI = [sys.executable, "-m", "netcode.cli"]


def wait_for_line(path: Path, pattern: str, proc: subprocess.Popen, timeout: float = 20.0) -> re.Match:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = path.read_text() if path.exists() else ""
        m = re.search(pattern, text)
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before printing {pattern!r}:\n{text}")
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} from the server within {timeout} s:\n{path.read_text()}")


async def websocket_client(url: str) -> tuple:
    token = mint_token(SECRET.encode(), "default", expires=time.time() + 60, slot=3, user="browser")
    client = GameClient(GAME, url, token, bot=True, name="ws")
    try:
        report = await client.run(duration=3.0)
    finally:
        await client.close()
    return report


def test_serve_bots_websocket_and_verified_recording(tmp_path):
    record = tmp_path / "match.tsr"
    out = tmp_path / "serve.out"
    env = dict(os.environ, TICKSYNC_SECRET=SECRET)
    procs: list[subprocess.Popen] = []
    try:
        with open(out, "w") as sink:
            server = subprocess.Popen(
                CLI + ["serve", "demos.arena", "--mode", "lockstep", "--port", "0", "--ws-port", "0",
                       "--players", "4", "--record", str(record), "--status-every", "1"],
                stdout=sink, stderr=subprocess.STDOUT, env=env,
            )
        procs.append(server)
        udp = wait_for_line(out, r"udp://127\.0\.0\.1:(\d+)", server).group(0)
        ws = wait_for_line(out, r"ws://127\.0\.0\.1:\d+/ws", server).group(0)

        bots = subprocess.Popen(
            CLI + ["bots", udp, "--game", "demos.arena", "--count", "3", "--duration", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        procs.append(bots)
        # Meanwhile a WebSocket player takes the fourth slot of the same room.
        report = run_async(asyncio.wait_for(websocket_client(ws), 15.0))
        assert report.status == "ok" and report.slot == 3, report
        assert report.frames > 60 and report.ticks > 60 and report.desyncs == 0

        stdout, stderr = bots.communicate(timeout=30)
        assert bots.returncode == 0, stdout + stderr
        rows = [line.split() for line in stdout.splitlines() if re.match(r"bot\d ", line)]
        assert len(rows) == 3, stdout
        for row in rows:
            frames, ticks = int(row[2]), int(row[3])
            assert frames > 300 and ticks > 300, stdout  # 8 s at 60 Hz, less the handshake
            assert row[-1] == "ok", stdout
        assert "ok: 3 bot(s) played" in stdout

        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 0, out.read_text()
        log = out.read_text()
        assert "stopping (SIGINT)" in log and "clean" in log, log
        assert "Traceback" not in log, log

        reader = ReplayReader(record)
        assert reader.clean and reader.ticks > 8 * 60 and reader.mode == "lockstep" and reader.players == 4
        verify = subprocess.run(CLI + ["replay", str(record), "--verify"], capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "verified:" in verify.stdout and "warning" not in verify.stdout
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
