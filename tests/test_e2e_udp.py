"""End to end over real UDP on loopback, with separate processes: ``ticksync serve`` records
an arena match (lockstep, then state sync), ``ticksync bots`` plays three bots against it,
in-process clients join the same room (over WebSocket; for state sync one over UDP and one
over WebSocket, which must receive the same snapshots), then SIGINT stops the server and
the recording verifies with ``ticksync replay --verify``.

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

import numpy as np
import pytest

from demos.arena import GAME
from engine import ReplayReader, run_async
from netcode import GameClient, mint_token

pytestmark = pytest.mark.network

SECRET = "e2e-secret-0123456789abcdef"
CLI = [sys.executable, "-m", "netcode.cli"]


def wait_for_line(path: Path, pattern: str, proc: subprocess.Popen, timeout: float = 20.0) -> re.Match:
    for _ in range(int(timeout / 0.05)):  # bounded: polls every 50 ms for ``timeout`` s
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


def start_server(tmp_path: Path, mode: str, procs: list) -> tuple[subprocess.Popen, Path, Path, str, str]:
    record = tmp_path / "match.tsr"
    out = tmp_path / "serve.out"
    with open(out, "w") as sink:
        server = subprocess.Popen(
            CLI + ["serve", "demos.arena", "--mode", mode, "--port", "0", "--ws-port", "0",
                   "--players", "5", "--record", str(record), "--status-every", "1"],
            stdout=sink, stderr=subprocess.STDOUT, env=dict(os.environ, TICKSYNC_SECRET=SECRET),
        )
    procs.append(server)
    udp = wait_for_line(out, r"udp://127\.0\.0\.1:(\d+)", server).group(0)
    ws = wait_for_line(out, r"ws://127\.0\.0\.1:\d+/ws", server).group(0)
    return server, record, out, udp, ws


def stop_and_verify(server: subprocess.Popen, out: Path, record: Path, mode: str, players: int) -> None:
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=15) == 0, out.read_text()
    log = out.read_text()
    assert "stopping (SIGINT)" in log and "clean" in log, log
    assert "Traceback" not in log, log
    reader = ReplayReader(record)
    assert reader.clean and reader.ticks > 5 * 60 and reader.mode == mode and reader.players == players
    verify = subprocess.run(CLI + ["replay", str(record), "--verify"], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verified:" in verify.stdout and "warning" not in verify.stdout


def check_bots(bots: subprocess.Popen, min_frames: int) -> None:
    stdout, stderr = bots.communicate(timeout=30)
    assert bots.returncode == 0, stdout + stderr
    rows = [line.split() for line in stdout.splitlines() if re.match(r"bot\d ", line)]
    assert len(rows) == 3, stdout
    for row in rows:
        frames, ticks = int(row[2]), int(row[3])
        assert frames > min_frames and ticks > 300, stdout  # 8 s at 60 Hz, less the handshake
        assert row[-1] == "ok", stdout
    assert "ok: 3 bot(s) played" in stdout


async def two_statesync_clients(udp: str, ws: str) -> tuple:
    """A UDP and a WebSocket player side by side; returns both GameClients after 3 s, and
    each one's (inputs used, inputs missed) as the server had counted them after 1 s, once
    its clock had settled (a loaded machine makes the first inputs late)."""
    clients = []
    for slot, url in ((3, udp), (4, ws)):
        token = mint_token(SECRET.encode(), "default", expires=time.time() + 60, slot=slot, user=f"p{slot}")
        clients.append(GameClient(GAME, url, token, bot=True, name=f"p{slot}", mode="statesync"))
    settled = []

    async def after_a_second():
        await asyncio.sleep(1.0)
        for c in clients:
            c.fill_counters()
            settled.append((c.report.inputs_used or 0, c.report.inputs_missed))

    try:
        await asyncio.gather(after_a_second(), *(c.run(duration=3.0) for c in clients))
    finally:
        for c in clients:
            await c.close()
    return clients, settled


def test_statesync_serve_bots_and_a_websocket_client_with_the_same_snapshots(tmp_path):
    procs: list[subprocess.Popen] = []
    try:
        server, record, out, udp, ws = start_server(tmp_path, "statesync", procs)
        bots = subprocess.Popen(  # no --mode: the bots find out the room runs state sync
            CLI + ["bots", udp, "--game", "demos.arena", "--count", "3", "--duration", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TICKSYNC_SECRET=SECRET),
        )
        procs.append(bots)
        (over_udp, over_ws), settled = run_async(asyncio.wait_for(two_statesync_clients(udp, ws), 20.0))
        for c, (used_then, missed_then) in zip((over_udp, over_ws), settled):
            assert c.report.status == "ok" and c.report.frames > 45, c.report
            # The server's word on our inputs: once our clock settled, it ran nearly every
            # tick with them.
            r = c.report
            used, missed = r.inputs_used - used_then, r.inputs_missed - missed_then
            assert used > 60 and missed < used / 4, (r, used_then, missed_then)
            assert 0.5 * r.ticks_expected - 60 <= r.ticks <= 1.5 * r.ticks_expected + 60, r
        a, b = over_udp.client, over_ws.client
        common = [t for t in a._recons if t in b._recons and a._recons[t].complete and b._recons[t].complete]
        assert len(common) > 30
        for t in common:  # both transports carried the same snapshots, bit for bit
            ra, rb = a._recons[t], b._recons[t]
            assert np.array_equal(ra.view, rb.view) and np.array_equal(ra.codes[ra.view], rb.codes[rb.view])
        check_bots(bots, min_frames=150)  # snapshots at 30 Hz
        stop_and_verify(server, out, record, "statesync", 5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def test_serve_bots_websocket_and_verified_recording(tmp_path):
    procs: list[subprocess.Popen] = []
    try:
        server, record, out, udp, ws = start_server(tmp_path, "lockstep", procs)
        bots = subprocess.Popen(
            CLI + ["bots", udp, "--game", "demos.arena", "--count", "3", "--duration", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TICKSYNC_SECRET=SECRET),
        )
        procs.append(bots)
        # Meanwhile a WebSocket player takes the fourth slot of the same room.
        report = run_async(asyncio.wait_for(websocket_client(ws), 15.0))
        assert report.status == "ok" and report.slot == 3, report
        assert report.frames > 60 and report.ticks > 60 and report.desyncs == 0
        assert report.inputs_used > 60 and report.inputs_missed < report.inputs_used / 4, report
        check_bots(bots, min_frames=300)
        stop_and_verify(server, out, record, "lockstep", 5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
