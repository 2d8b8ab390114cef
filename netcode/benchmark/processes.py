"""Processes of a load run: which CPUs they get, what they cost, how they report.

The server and the load generator run in separate processes so the server's CPU figure is
its own; with two CPUs or more each is pinned to its own (``os.sched_setaffinity``), so the
scheduler does not move them around and a row measures the server rather than contention.
The orchestrating parent only waits on pipes.
"""

from __future__ import annotations

import os
import resource
import time

__all__ = ["cpu_pair", "cpu_seconds", "cpu_split", "expect", "pin", "rss_bytes"]


def cpu_pair() -> tuple[int | None, int | None]:
    """(server CPU, load-generator CPU) when there are two to spare, else no pinning."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


def pin(cpu: int | None) -> None:
    """This process on ``cpu`` only (nothing when ``cpu`` is None or pinning is refused)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def cpu_split() -> tuple[float, float]:
    """This process's (user, system) CPU seconds so far: the kernel's work for its sockets
    counts in the system part."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def cpu_seconds() -> float:
    return sum(cpu_split())


def rss_bytes() -> int:
    """This process's resident set now (``/proc/self/statm``), or its peak where there is no
    /proc (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def expect(pipe, proc, what: str, timeout: float):
    """The next message from ``proc`` on ``pipe``, which must be ``(what, value)``; returns
    value. A dead process, a timeout or an ``("error", text)`` message raise RuntimeError /
    TimeoutError naming the process, so a run never hangs on a child that died."""
    end = time.monotonic() + timeout
    while not pipe.poll(0.05):
        if not proc.is_alive():
            raise RuntimeError(f"{proc.name} died (exit code {proc.exitcode}) while waiting for {what!r}")
        if time.monotonic() > end:
            raise TimeoutError(f"{proc.name} did not send {what!r} within {timeout:g} s")
    kind, value = pipe.recv()
    if kind == "error":
        raise RuntimeError(f"{proc.name}: {value}")
    if kind != what:
        raise RuntimeError(f"{proc.name} sent {kind!r}, expected {what!r}")
    return value
