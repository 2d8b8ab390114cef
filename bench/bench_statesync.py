"""``python -m bench.bench_statesync``: a thin wrapper, the bench lives in :mod:`netcode.benchmark.statesync_virtual` (installed with the package, behind ``ticksync bench``)."""

from netcode.benchmark.statesync_virtual import *  # noqa: F403 (the names bench/ tests and scripts import)
from netcode.benchmark.statesync_virtual import main

if __name__ == "__main__":
    raise SystemExit(main())
