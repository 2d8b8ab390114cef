"""How many packets per second the UDP transport sustains on loopback.

One server process runs a ``SessionServer`` behind :func:`netcode.transport.udp.open_udp_server`
on uvloop; a second process opens N client sockets, completes real handshakes with
``SessionClient`` objects, then blasts established-session ``LS_INPUT`` packets (fresh
sequence numbers, so none is a replay) as fast as it can for a fixed duration. The server's
payload callback counts (and in "echo" mode answers every packet with ``server.send``), so a
processed packet has passed the transport's guards, the session header check, the replay
window and the payload hand-off. The offered load is above what the server can take, so
the "processed/s" column is the transport's capacity on this machine and the kernel drops
the rest (its socket buffer overflows): that is what a flood looks like, too.

Rows with the default limits show the cost of the rate limiter dropping a flood: most
packets then stop at the guard and never reach the endpoint.

Run: ``python -m bench.bench_udp_transport [--duration 3] [--clients 1,4,16]``.
Loopback only, bounded in time (about ``rows * (duration + 0.5)`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import os
import selectors
import socket
import sys
import time
from dataclasses import dataclass

from engine.loop import run_async
from netcode.benchmark.processes import cpu_pair, pin
from netcode.session.handshake import GameIdentity
from netcode.session import Admission, SessionClient, SessionServer
from netcode.session.token import mint_token
from netcode.transport.hub import Limits
from netcode.transport.udp import open_udp_server
from netcode.session.wire import SESSION_OVERHEAD, PacketType

SECRET = b"bench-udp-transport-secret-00000"
IDENTITY = GameIdentity("bench", "1", 0)
PAYLOAD = bytes(16)  # a small input record, like a lockstep input packet carries
UNLIMITED = Limits(rate=1e12, burst=1e12)


# -- the client process ------------------------------------------------------------------
def _handshake(server: tuple[str, int], n: int, timeout: float = 5.0) -> list[tuple[socket.socket, int]]:
    """N real sessions, driven by a minimal blocking loop; returns (socket, session id)."""
    sel = selectors.DefaultSelector()
    clients: list[tuple[socket.socket, SessionClient]] = []
    for i in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(server)
        sock.setblocking(False)
        token = mint_token(SECRET, "default", expires=time.time() + 120, user=f"bot{i}")
        client = SessionClient(server=server, token=token, game=IDENTITY)
        client.connect(time.monotonic())
        clients.append((sock, client))
        sel.register(sock, selectors.EVENT_READ, (sock, client))

    def flush(sock: socket.socket, client: SessionClient) -> None:
        for data, _ in client.datagrams_to_send():
            sock.send(data)

    for sock, client in clients:
        flush(sock, client)
    end = time.monotonic() + timeout
    while not all(c.connected for _, c in clients):
        if time.monotonic() > end:
            raise RuntimeError("handshakes did not finish; is the server running?")
        for key, _ in sel.select(0.01):
            sock, client = key.data
            try:
                data = sock.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            client.receive_datagram(data, server, time.monotonic())
            flush(sock, client)
        now = time.monotonic()
        for sock, client in clients:
            deadline = client.next_deadline()
            if deadline is not None and deadline <= now:
                client.handle_timer(now)
                flush(sock, client)
    sel.close()
    for sock, _ in clients:
        sock.setblocking(True)  # loopback UDP never blocks for long; a full receiver drops instead
    return [(sock, client.connection) for sock, client in clients]


def _blaster(server: tuple[str, int], n: int, duration: float, pipe, cpu: int | None) -> None:
    pin(cpu)
    sessions = _handshake(server, n)
    pipe.send("ready")
    pipe.recv()  # "go"
    ptype = int(PacketType.LS_INPUT)
    sends = [sock.send for sock, _ in sessions]
    wraps = [conn.wrap for _, conn in sessions]  # sealed as a real client seals them
    sent = failed = 0
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(max(1, 256 // n)):  # check the clock every ~256 packets
            for i in range(n):
                packet = wraps[i](ptype, PAYLOAD, 0.0)
                try:
                    sends[i](packet)
                except OSError:  # ENOBUFS and friends: the kernel is saturated
                    failed += 1
                    continue
                sent += 1
    pipe.send((sent, failed))
    for sock, _ in sessions:
        sock.close()


# -- the server process ------------------------------------------------------------------
@dataclass
class Row:
    mode: str
    limits: str
    clients: int
    duration: float
    offered: int
    received: int
    processed: int
    cpu: float
    transport_drops: int
    endpoint_drops: int

    @property
    def kernel_drops(self) -> int:
        return max(0, self.offered - self.received)


async def _wait_pipe(pipe, proc, timeout: float):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pipe.poll():
        if not proc.is_alive():
            raise RuntimeError(f"the client process died (exit code {proc.exitcode})")
        if loop.time() > end:
            raise TimeoutError("the client process did not answer")
        await asyncio.sleep(0.005)
    return pipe.recv()


async def _run_row(mode: str, limits_name: str, n: int, duration: float, client_cpu: int | None) -> Row:
    loop = asyncio.get_running_loop()
    processed = 0
    slots = itertools.count()

    def on_payload(conn, ptype, payload, now) -> None:
        nonlocal processed
        processed += 1
        if echo:
            server.send(conn, PacketType.LS_FRAMES, payload, now)

    echo = mode == "echo"
    server = SessionServer(
        game=IDENTITY,
        secret=SECRET,
        admit=lambda claims, addr, now: Admission(slot=next(slots)),
        on_payload=on_payload,
        wall_offset=time.time() - loop.time(),
    )
    limits = UNLIMITED if limits_name == "off" else Limits()
    transport = await open_udp_server(server, "127.0.0.1", 0, limits=limits, socket_buffer=4 << 20)
    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(
        target=_blaster, args=(transport.local_address, n, duration, child, client_cpu), daemon=True
    )
    proc.start()
    try:
        await _wait_pipe(parent, proc, 15.0)  # spawn + handshakes
        await asyncio.sleep(0.05)  # let the handshake tail (ACCEPTED resends) settle
        base_recv, base_drop = transport.received, sum(transport.dropped.values())
        base_ep = sum(server.stats()["dropped"].values())
        base_processed = processed
        cpu0 = time.process_time()
        parent.send("go")
        sent, _failed = await _wait_pipe(parent, proc, duration + 10.0)
        await asyncio.sleep(0.05)  # what is in the socket buffer still counts
        cpu = time.process_time() - cpu0
        return Row(
            mode=mode,
            limits=limits_name,
            clients=n,
            duration=duration,
            offered=sent,
            received=transport.received - base_recv,
            processed=processed - base_processed,
            cpu=cpu,
            transport_drops=sum(transport.dropped.values()) - base_drop,
            endpoint_drops=sum(server.stats()["dropped"].values()) - base_ep,
        )
    finally:
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()
        transport.close()


def _table(rows: list[Row]) -> str:
    head = (
        f"{'mode':<5} {'limits':<7} {'clients':>7} {'offered/s':>10} {'received/s':>11} {'processed/s':>12} "
        f"{'CPU s':>6} {'us/pkt':>7} {'pkts/CPU-s':>10} {'kernel drops':>12} {'guard drops':>11} {'session drops':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        per_pkt = r.cpu / r.received * 1e6 if r.received else float("nan")
        per_cpu = r.received / r.cpu if r.cpu else float("nan")
        lines.append(
            f"{r.mode:<5} {r.limits:<7} {r.clients:>7} {r.offered / r.duration:>10,.0f} {r.received / r.duration:>11,.0f} "
            f"{r.processed / r.duration:>12,.0f} {r.cpu:>6.2f} {per_pkt:>7.2f} {per_cpu:>10,.0f} {r.kernel_drops:>12,} "
            f"{r.transport_drops:>11,} {r.endpoint_drops:>13,}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=3.0, help="seconds of blasting per row (default 3)")
    ap.add_argument("--clients", default="1,4,16", help="client socket counts for the receive rows")
    args = ap.parse_args(argv)
    if not 0 < args.duration <= 30:
        ap.error("--duration must be in (0, 30] seconds")
    counts = [int(c) for c in args.clients.split(",") if c]
    if not counts or min(counts) < 1 or max(counts) > 256:
        ap.error("--clients must be 1..256 sockets each")
    biggest = max(counts)
    plan = [("recv", "off", n) for n in counts] + [("echo", "off", biggest), ("recv", "default", biggest)]

    server_cpu, client_cpu = cpu_pair()
    original = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pin(server_cpu)

    async def run_all() -> list[Row]:
        return [await _run_row(mode, lim, n, args.duration, client_cpu) for mode, lim, n in plan]

    try:
        rows = run_async(run_all())
    finally:
        if original is not None:
            os.sched_setaffinity(0, original)
    pinned = f"server pinned to CPU {server_cpu}, clients to CPU {client_cpu}" if server_cpu is not None else "not pinned"
    print(
        f"UDP transport on loopback: SessionServer on {'uvloop' if sys.platform != 'win32' else 'asyncio'}, "
        f"{args.duration:g} s per row, {SESSION_OVERHEAD + len(PAYLOAD)}-byte sealed session packets, "
        f"{os.cpu_count()} CPUs ({pinned}), Python {sys.version.split()[0]}"
    )
    print("offered: what the client process sent; received: datagrams the transport read;")
    print("processed: handed to the endpoint's payload callback; CPU: server process only, during the row.")
    print("us/pkt and pkts/CPU-s: server CPU per datagram read; they hold when other load shares the machine,")
    print("while the per-second columns then drop (CPU s well under the row's duration means the server was starved).")
    print("limits off: no rate limit (capacity); default: 240/s burst 480 per address (flood guard).\n")
    print(_table(rows))


if __name__ == "__main__":
    main()
