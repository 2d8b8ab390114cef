"""``python -m bench.bench_udp_transport``: a thin wrapper, the bench lives in :mod:`netcode.benchmark.udp_transport` (installed with the package, behind ``ticksync bench``)."""

from netcode.benchmark.udp_transport import *  # noqa: F403 (the names bench/ tests and scripts import)
from netcode.benchmark.udp_transport import main

if __name__ == "__main__":
    raise SystemExit(main())
