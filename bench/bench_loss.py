"""Does loss make state-sync ticks slow? The server's own work at 0/10/20% loss, with no contention.

Through a relay at 150 ms RTT and 20% loss, 8 bots pushed the state-sync arena server's tick
p99 from about 2 ms to 12-14 ms, but the relay and the bots shared the machine's two cores.
This bench separates work from contention: the real sans-IO
:class:`~netcode.statesync.server.StateSyncServer` (the arena, 1000 NPCs by default) and N
clients on the seeded simulator (:mod:`netcode.sim`) on virtual time, one process, no relay,
every client's link at ``--rtt`` with ``--loss`` each way. The clients are
:mod:`netcode.benchmark.statesync_virtual`'s fake clients: a real session, acks of the newest
complete snapshot, inputs stamped by the real clock, parts without their baseline dropped,
as the real client does.

Per row, over ``--seconds`` of virtual play after ``--warmup``:

* server CPU per tick (``time.thread_time`` around ``on_tick``: this thread only, so other
  processes cannot inflate it): mean and p99 over all ticks, and p99 of snapshot ticks;
  the wall p99 beside it (equal to the CPU p99 when nothing else competes for the core);
* input handling CPU per tick (``receive_datagram`` between two ticks), mean;
* encodes per snapshot (``stats_counters["encodes"]``: one per distinct (baseline,
  predictor) the clients' acks ask for) and full snapshots sent while measuring;
* bytes per client per second, down and up (payload + 28 B UDP/IPv4).

Run: ``python -m bench.bench_loss [--clients 16,48] [--loss 0,0.1,0.2] [--rtt 0.15]
[--seconds 10] [--warmup 3] [--npcs 1000]``. About a minute per 48-client row on a shared
2-core machine (the fake clients share the process).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from netcode.benchmark.statesync_virtual import Row, build
from netcode.benchmark.virtual import measure, pct, warm_up
from netcode.sim.network import LinkConfig


def run(clients: int, loss: float, rtt: float, seconds: float, warmup: float, npcs: int) -> dict:
    m = build(Row(f"loss{loss:g}_{clients}", f"{clients} clients {loss:.0%} loss", clients, 0.1, npcs=npcs), verify=0)
    link = LinkConfig.from_rtt(rtt, loss=loss)
    for name in m.names:
        m.net.sim.configure("server", name, link)
    warm_up(m, warmup, clients)
    server, probe = m.server, m.probe

    def fulls() -> int:
        return sum(p.counters["full_snapshots"] for p in server.peers.values())

    sc0, full0 = dict(server.stats_counters), fulls()
    measure(m, seconds)
    snaps = max(server.stats_counters["snapshots"] - sc0["snapshots"], 1)
    fig = probe.figures(m.names, seconds)
    cpu, wall = np.array(probe.tick_cpu_ms), np.array(probe.tick_ms)
    snap = np.array(probe.snap, bool)
    return {
        "clients": clients,
        "loss": loss,
        "cpu_mean": float(cpu.mean()),
        "cpu_p99": pct(cpu, 99),
        "snap_cpu_p99": pct(cpu[snap], 99),
        "wall_p99": pct(wall, 99),
        "recv_cpu_mean": float(np.mean(probe.recv_cpu_ms)),
        "encodes_per_snapshot": (server.stats_counters["encodes"] - sc0["encodes"]) / snaps,
        "full_snapshots": fulls() - full0,
        "down_Bps": fig.down_bytes / seconds,
        "up_Bps": fig.up_bytes / seconds,
    }


HEADER = (
    f"{'clients':>7} {'loss':>5} {'cpu mean':>8} {'cpu p99':>7} {'snap p99':>8} {'wall p99':>8} {'recv mean':>9} "
    f"{'enc/snap':>8} {'fulls':>5} {'down B/s/client':>15} {'up B/s/client':>13}"
)


def line(r: dict) -> str:
    return (
        f"{r['clients']:>7} {r['loss']:>5.0%} {r['cpu_mean']:>8.2f} {r['cpu_p99']:>7.2f} {r['snap_cpu_p99']:>8.2f} "
        f"{r['wall_p99']:>8.2f} {r['recv_cpu_mean']:>9.2f} {r['encodes_per_snapshot']:>8.2f} {r['full_snapshots']:>5} "
        f"{r['down_Bps']:>15.0f} {r['up_Bps']:>13.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="16,48", help="comma list of client counts")
    ap.add_argument("--loss", default="0,0.1,0.2", help="comma list of loss rates, each way")
    ap.add_argument("--rtt", type=float, default=0.15, help="round trip of every client's link, seconds")
    ap.add_argument("--seconds", type=float, default=10.0, help="virtual seconds measured per row")
    ap.add_argument("--warmup", type=float, default=3.0, help="virtual seconds before measuring")
    ap.add_argument("--npcs", type=int, default=1000, help="arena NPCs (10%% of them move)")
    args = ap.parse_args(argv)
    print("$ python -m bench.bench_loss " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(
        f"state-sync arena ({args.npcs} NPCs, 10% moving), 60 Hz, 30 Hz snapshots, seeded simulator, "
        f"RTT {args.rtt * 1e3:.0f} ms; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("times: ms per tick of this process's server thread (cpu: thread_time; wall: perf_counter)")
    print(HEADER)
    for clients in (int(c) for c in args.clients.split(",")):
        for loss in (float(x) for x in args.loss.split(",")):
            print(line(run(clients, loss, args.rtt, args.seconds, args.warmup, args.npcs)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
