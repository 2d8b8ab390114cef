"""``python -m bench.wire_digest [SECONDS]``: a digest of every datagram a seeded state-sync
server sends, to show that a speed-up left the bytes on the wire as they were.

It runs the simulator's Colyseus-like room (100 fake clients, 900 moving NPCs plus the
players: 1000 entities, sessions sealed) for 2 s of warm-up and SECONDS (default 5) more,
hashes each datagram the server sends (address, length, bytes) in order, and prints the
count, the SHA-256 and the final state's SHA-256. Run it on two checkouts (from the checkout's
directory, so that its package is the one imported) and compare the lines; they differ
whenever the protocol's bytes legitimately change, so it is a script, not a pinned test.
"""

from __future__ import annotations

import hashlib
import sys

from netcode.benchmark import statesync_virtual as sv
from netcode.benchmark.virtual import warm_up


def digest(seconds: float = 5.0) -> tuple[int, str, str]:
    m = sv.build(sv.Row("digest", "digest", 100, 1.0, npcs=900), verify=0)
    h = hashlib.sha256()
    count = 0
    plain = m.probe.datagrams_to_send

    def hashed():
        nonlocal count
        out = plain()
        for data, addr in out:
            h.update(repr(addr).encode())
            h.update(len(data).to_bytes(4, "little"))
            h.update(data)
        count += len(out)
        return out

    m.probe.datagrams_to_send = hashed
    warm_up(m, 2.0, 100)
    m.net.run_for(seconds)
    return count, h.hexdigest(), hashlib.sha256(m.server.state.pack()).hexdigest()


if __name__ == "__main__":
    n, sent, state = digest(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
    print(f"datagrams {n} sha256 {sent} state {state}")
