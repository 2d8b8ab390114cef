"""``python -m bench.replay_throughput``: a thin wrapper, the bench lives in :mod:`netcode.benchmark.replay` (installed with the package, behind ``ticksync bench``)."""

from netcode.benchmark.replay import *  # noqa: F403 (the names bench/ tests and scripts import)
from netcode.benchmark.replay import main

if __name__ == "__main__":
    raise SystemExit(main())
