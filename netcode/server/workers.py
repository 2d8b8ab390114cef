"""``ticksync serve --workers N``: a cluster on one machine, one process per core.

The command starts N ``ticksync serve --redis URL`` processes (worker i listens on the
given UDP and HTTP ports plus i; port 0 stays "any free port") and, when no ``--redis`` is
given, a ``redis-server`` of its own on a free loopback port that keeps nothing on disk.
Every child runs in its own session, so a Ctrl-C reaches this process only and the
shutdown is ordered: the workers leave the cluster and close their rooms and recordings
(SIGTERM, as a clean ``serve`` stop), then Redis stops. A worker that exits on its own
with an error stops the others; its exit code is the command's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from netcode.errors import UsageError

__all__ = ["LocalRedis", "run_workers", "worker_args"]

_STOP_WAIT = 10.0  # a worker's clean stop is bounded by its own waits (5 s each step)


class LocalRedis:
    """A ``redis-server`` child on loopback: no persistence (``--save '' --appendonly no``),
    its log and working files in ``workdir``. :meth:`start` waits (bounded) until it
    answers PING; it can be stopped and started again on the same port."""

    def __init__(self, workdir: str | os.PathLike, port: int = 0):
        exe = shutil.which("redis-server")
        if exe is None:
            raise UsageError("no redis-server on this machine (apt-get install redis-server), or give --redis URL")
        self.exe = exe
        self.workdir = Path(workdir)
        self.port = port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "LocalRedis":
        cmd = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.workdir), "--daemonize", "no"]
        log_path = self.workdir / "redis.log"
        with open(log_path, "a") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
        end = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                self.proc = None
                raise UsageError(f"redis-server exited at start: {tail[0] if tail else 'no output'}")
            if time.monotonic() > end:
                self.stop()
                raise UsageError(f"redis-server did not answer on port {self.port} within {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_args(serve_args: Sequence[str]) -> list[str]:
    """``serve``'s own arguments without ``--workers N`` (what each worker is given, before
    its ports and ``--redis``)."""
    out, skip = [], False
    for arg in serve_args:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def run_workers(serve_args: Sequence[str], count: int, *, redis_url: str | None, port: int, ws_port: int, env: dict) -> int:
    """Run ``count`` workers until Ctrl-C / SIGTERM, or until they end (``--duration``, an
    error); returns the exit code. ``serve_args``: what each worker gets besides its ports,
    ``--redis`` and ``--status-every 0`` (N status tables on one terminal would be noise)."""
    stop_signal: list[int] = []

    def on_signal(sig, _frame) -> None:
        stop_signal.append(sig)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    with tempfile.TemporaryDirectory(prefix="ticksync-redis-") as workdir:
        redis = None
        try:
            if redis_url is None:
                redis = LocalRedis(workdir).start()
                redis_url = redis.url
            print(f"ticksync: {count} workers on {redis_url}" + (" (a redis-server of our own)" if redis else "")
                  + "; Ctrl-C stops them all", flush=True)
            procs: list[subprocess.Popen] = []
            for i in range(count):
                ports = ["--port", str(port + i if port else 0), "--ws-port", str(ws_port + i if ws_port else 0)]
                cmd = [sys.executable, "-m", "netcode.cli", "serve", *serve_args, *ports, "--redis", redis_url, "--status-every", "0"]
                procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
            code = _supervise(procs, stop_signal)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if redis is not None:
                redis.stop()
    return code


def _supervise(procs: list[subprocess.Popen], stop_signal: list[int]) -> int:
    code = 0
    while not stop_signal:
        ended = [(i, p.returncode) for i, p in enumerate(procs) if p.poll() is not None]
        if ended:
            failed = [(i, rc) for i, rc in ended if rc != 0]
            if failed:
                i, code = failed[0]
                print(f"ticksync: worker {i} exited with code {code}: stopping the others", file=sys.stderr, flush=True)
            if failed or len(ended) == len(procs):
                break
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    end = time.monotonic() + _STOP_WAIT
    for p in procs:
        try:
            p.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        if p.returncode not in (0, -signal.SIGTERM) and not code:
            code = p.returncode if p.returncode > 0 else 1
    return code
