"""``python -m bench.soak_probe [--seconds 60] [--bots 64] [--procs 1]``: what a state-sync
server does second by second under many real bots (serve + ``ticksync bots`` over UDP on
loopback, separate processes), to find where output spikes come from.

One line per second from the room's HTTP report: snapshots, encodes per snapshot (1 when
every client shares one baseline), client-snapshots deferred by the encode budget, output
Mbit/s, bytes per client per snapshot, paced skips, deltas held from stalled clients, full
snapshots, RTT p50/max, loss p50/max, the age of the newest snapshot acked (p50/max, in
ticks) and the tick's wall p99 over the last 5 s. ``--procs`` splits the bots over that many
processes (a stall of one bots process delays all its clients' acks together).
The pass/fail version of this run is ``pytest -m soak tests/test_soak.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--bots", type=int, default=64)
    ap.add_argument("--procs", type=int, default=1, help="bot processes (the bots are split evenly)")
    args = ap.parse_args(argv)
    env = dict(os.environ, TICKSYNC_SECRET=os.environ.get("TICKSYNC_SECRET", "soak-probe-secret-0123456789abcdef"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cli = [sys.executable, "-m", "netcode.cli"]
    log = Path(tempfile.mkstemp(prefix="soak_probe_serve_", suffix=".out")[1])  # not in the checkout: it may be read-only
    with open(log, "w") as sink:
        server = subprocess.Popen(cli + ["serve", "demos.arena", "--mode", "statesync", "--port", "0", "--ws-port", "0",
                                         "--players", str(args.bots), "--status-every", "0", "--duration", str(args.seconds + 30)],
                                  stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    bots: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            text = log.read_text()
            udp, http = re.search(r"udp://127\.0\.0\.1:\d+", text), re.search(r"http://127\.0\.0\.1:\d+/", text)
            if udp and http:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"serve did not start:\n{text}", file=sys.stderr)
                return 1
            time.sleep(0.05)
        each = args.bots // args.procs
        bots = [subprocess.Popen(cli + ["bots", udp.group(0), "--game", "demos.arena", "--count", str(each), "--first-slot", str(i * each),
                                        "--duration", str(args.seconds), "--mode", "statesync"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT) for i in range(args.procs)]
        start, prev = time.monotonic(), None
        while any(b.poll() is None for b in bots):
            time.sleep(1)
            with urllib.request.urlopen(http.group(0) + "api/rooms/default", timeout=5) as r:
                room = json.load(r)
            m = room["mode_stats"]
            peers = [v for k, v in m["peers"].items() if not str(k).startswith("spect")]
            now = (m["snapshots"], m["encodes"], m["deferred"], room["bytes_out"],
                   sum(p.get("paced_skips", 0) for p in peers), sum(p.get("held", 0) for p in peers),
                   sum(p.get("full_snapshots", 0) for p in peers))
            if prev is not None and peers:
                snaps, enc, deferred, out, paced, held, fulls = (a - b for a, b in zip(now, prev))
                rtt = sorted(p.get("rtt_ms", 0) for p in peers)
                loss = sorted(p.get("loss_pct", 0) for p in peers)
                age = sorted(p.get("ack_age_ticks") or 0 for p in peers)
                print(f"{time.monotonic() - start:5.0f} s  snapshots {snaps:3d}  encodes/snapshot {enc / max(snaps, 1):5.2f}  deferred {deferred:4d}  "
                      f"out {out * 8 / 1e6:6.2f} Mbit/s  {out / max(snaps, 1) / len(peers):6.0f} B/client/snapshot  paced {paced:4d}  held {held:4d}  "
                      f"fulls {fulls:3d}  RTT p50/max {rtt[len(rtt) // 2]:.0f}/{rtt[-1]:.0f} ms  loss p50/max {loss[len(loss) // 2]}/{loss[-1]}%  "
                      f"ack age p50/max {age[len(age) // 2]}/{age[-1]} ticks  tick p99 {room['tick_ms_p99_last']:.1f} ms", flush=True)
            prev = now
    finally:
        for p in [*bots, server]:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        log.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
