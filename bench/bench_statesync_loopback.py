"""``python -m bench.bench_statesync_loopback``: a thin wrapper, the bench lives in :mod:`netcode.benchmark.colyseus` (installed with the package, behind ``ticksync bench``)."""

from netcode.benchmark.colyseus import *  # noqa: F403 (the names bench/ tests and scripts import)
from netcode.benchmark.colyseus import main

if __name__ == "__main__":
    raise SystemExit(main())
