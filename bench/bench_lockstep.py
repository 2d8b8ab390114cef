"""``python -m bench.bench_lockstep``: a thin wrapper, the bench lives in :mod:`netcode.benchmark.lockstep_virtual` (installed with the package, behind ``ticksync bench``)."""

from netcode.benchmark.lockstep_virtual import *  # noqa: F403 (the names bench/ tests and scripts import)
from netcode.benchmark.lockstep_virtual import main

if __name__ == "__main__":
    raise SystemExit(main())
