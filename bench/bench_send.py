"""``python -m bench.bench_send [ROUNDS]``: the server's send of one snapshot to 100 clients,
alone: :meth:`SnapshotSender.deliver` (the prefix, the session's wrap of each datagram, the
outbox) and the drain, on plaintext sessions as in ``bench_statesync_loopback --plaintext``.

It builds the simulator's Colyseus-like room (100 fake clients, 1000 entities), runs it for
a second, keeps the largest encoding of one snapshot, and times delivering it to 100 fresh
plaintext connections (each has received a packet, so its headers carry acks) ROUNDS times,
five times over; prints the minimum and median microseconds per snapshot. Run it from each
checkout's directory, alternately (ABAB), and compare ratios.
"""

from __future__ import annotations

import sys
import time

from netcode.benchmark import statesync_virtual as sv
from netcode.benchmark.virtual import warm_up
from netcode.session.connection import Connection, SessionConfig
from netcode.session.wire import PacketType


def main(rounds: int) -> None:
    m = sv.build(sv.Row("send", "send", 100, 1.0, npcs=900), verify=0)
    warm_up(m, 1.0, 100)
    server = m.server
    sender = server.sender
    got = []

    class Spy:  # records one snapshot's encodings as the server delivers them
        def __getattr__(self, name):
            return getattr(sender, name)

        def deliver(self, tick, jobs, encode, encoded, payloads, now):
            sender.deliver(tick, jobs, encode, encoded, payloads, now)
            got.append((tick, encoded))

    server.sender = Spy()
    while not got:
        m.net.run_for(0.05)
    server.sender = sender
    tick, encoded = got[-1]
    key, parts = max(encoded.items(), key=lambda kv: sum(map(len, kv[1])))
    while (tick // sender.snapshot_every) % 8 == 0:  # not a snapshot that carries input tallies
        tick += sender.snapshot_every
    cfg = SessionConfig()
    jobs = []
    for i, peer in enumerate(list(server.peers.values())[:100]):
        conn = Connection(i, ("127.0.0.1", 40000 + i), 1000 + i, peer.slot, 0.0, cfg)
        other = Connection(i, "server", 1000 + i, peer.slot, 0.0, cfg)
        conn.accept(other.wrap(int(PacketType.KEEPALIVE), b"", 0.0), 0.0)
        jobs.append((peer, conn, None, False, key))
    outbox = sender.outbox
    outbox.drain()
    encoded = {key: parts}
    now = 1.0

    def one():
        nonlocal now
        sender.deliver(tick, jobs, None, encoded, {}, now)
        outbox.drain()
        now += 0.033

    for _ in range(20):
        one()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(rounds):
            one()
        times.append((time.perf_counter() - t) / rounds)
    times.sort()
    print(f"parts {len(parts)} bytes {sum(map(len, parts))}: us/snapshot to 100 clients min {times[0] * 1e6:.1f} med {times[2] * 1e6:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
