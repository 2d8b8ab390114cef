"""The compiled fast paths (netcode/statesync/fastpath.py: SS_INPUT in, snapshots out) change nothing
but speed.

One recorded stream of traffic (real clients on a lossy, duplicating, reordering simulated
link, plus hostile variants of their packets) is replayed into identical servers: one on
the general path, one with the compiled fast path (when this install built it) and one
with the fast path's source run as plain Python. Everything they send and everything they
hold afterwards must be equal, and the fast path must have taken most of the inputs.
"""

import dataclasses
import random
import shutil

import numpy as np
import pytest

from demos.arena import Arena
from helpers import SECRET, StateSyncMatch, source_twin
from netcode import compiled
from netcode.sim.network import LinkConfig
from netcode.statesync.server import StateSyncServer, StateSyncConfig
from netcode.session.wire import PacketType

LINK = LinkConfig(latency=0.04, jitter=0.02, loss=0.1, duplicate=0.05, reorder=0.05)
CONFIG = StateSyncConfig(players=4, seed=7, input_packets_per_second=120)


def _mutants(data: bytes, rng: random.Random) -> list[bytes]:
    """Hostile variants of one client packet: bit flips in the payload, truncation,
    trailing junk, other slots, absurd run lengths, a replay of the packet itself. (A flip
    in the header's sequence number would be taken as a newer packet and leave the real
    client's next ones stale on both paths alike: packets are not authenticated.)"""
    out = [data]  # an exact duplicate
    for _ in range(3):
        b = bytearray(data)
        i = rng.randrange(17, len(b))
        b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    out.append(data[: rng.randrange(1, len(data))])
    out.append(data + bytes([rng.randrange(256)]))
    for offset, value in ((17, rng.randrange(256)), (29, 0), (29, 255), (18, 3)):
        if offset < len(data):
            b = bytearray(data)
            b[offset] = value
            out.append(bytes(b))
    return out


def _record(seed: int) -> tuple[list, int]:
    """(events, SS_INPUT packets with inputs): ("rx", data, addr, now) and ("tick", now) as a
    general-path server saw them in a match, hostile variants spliced in before some inputs."""
    match = StateSyncMatch(Arena(npcs=50), 4, seed=seed, link=LINK, config=CONFIG)
    server = match.server
    server.fast_receive = None
    rng = random.Random(seed)
    events: list = []
    inputs = 0
    plain_rx, plain_tick = server.receive_datagram, server.on_tick

    def rx(data, addr, now):
        nonlocal inputs
        if len(data) > 18 and data[3] & 0x7F == PacketType.SS_INPUT:
            inputs += data[18] & 1  # carries input records (not only an ack)
            if rng.random() < 0.3:
                # One variant goes first: it takes the sequence number, so the real packet
                # that follows it is a duplicate. (Variants after it would all be duplicates.)
                events.append(("rx", rng.choice(_mutants(data, rng)), addr, now))
        events.append(("rx", data, addr, now))
        plain_rx(data, addr, now)

    def tick(now):
        events.append(("tick", now))
        plain_tick(now)

    server.receive_datagram, server.on_tick = rx, tick
    for name in ("a", "b", "c", "d"):
        match.add_client(name)
    match.add_client("watcher", role=1)  # a spectator (role 1)
    match.run(4.0)
    return events, inputs


def _replay(events: list, seed: int, fast, batched: bool = False) -> tuple[StateSyncServer, list, int]:
    """Replay into a new server; ``fast``: a fastpath module, or None for the general path.
    ``batched``: the datagrams between two ticks go in one ``receive_many`` (a polled
    socket's read); else one by one."""
    server = StateSyncServer(Arena(npcs=50), CONFIG, secret=SECRET, rng=random.Random(seed))
    hits = 0

    def counted(srv, batch, start, errors):
        nonlocal hits
        stop = fast.ss_input_run(srv, batch, start, errors)
        hits += stop - start
        return stop

    server.fast_receive = None if fast is None else counted
    sent = []
    waiting: list = []
    for ev in events:
        if ev[0] == "rx":
            if batched:
                waiting.append(ev[1:])
                continue
            server.receive_datagram(ev[1], ev[2], ev[3])
        else:
            if waiting:
                server.receive_many(waiting)
                sent.extend(server.datagrams_to_send())
                waiting = []
            server.on_tick(ev[1])
        sent.extend(server.datagrams_to_send())
    return server, sent, hits


def _everything(server: StateSyncServer) -> dict:
    """What the server holds: counters, every connection's bookkeeping, every peer, the
    input buffer, the view delays, the game state."""
    conns = {cid: c.bookkeeping() for cid, c in server.session.connections.items()}
    peers = {cid: dataclasses.asdict(p) for cid, p in server.peers.items()}
    ib = server.inputs
    return {
        "stats": server.stats(),
        "conns": conns,
        "peers": peers,
        "inputs": (ib._data.tobytes(), ib._tick.tobytes(), ib.newest.tobytes(), ib.last.tobytes()),
        "view": server._view_delay.tobytes(),
        "state": server.state.hash(),
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_the_fast_path_changes_nothing_but_speed(seed):
    events, inputs = _record(seed)
    reference, ref_sent, _ = _replay(events, seed, None)
    assert reference.stats()["players"] == 4 and inputs > 300
    dropped = reference.stats()["session"]["dropped"]
    assert dropped.get("duplicate", 0) > 0 and len(dropped) >= 3  # the hostile variants did arrive

    modules = {"source": source_twin("netcode.statesync.fastpath")}
    if compiled.fastpath is not None:
        modules["compiled"] = compiled.fastpath
    for name, fast in modules.items():
        server, sent, hits = _replay(events, seed, fast)
        assert hits > inputs // 3, f"{name}: the fast path took only {hits} of {inputs} inputs"
        assert sent == ref_sent, f"{name}: sent different datagrams"
        assert _everything(server) == _everything(reference), f"{name}: holds a different state"

    # A tick's datagrams in one batch, as a polled socket delivers them: the general path
    # alone, and with each fast path's batch loop, must agree with each other.
    batched_ref, batched_sent, _ = _replay(events, seed, None, batched=True)
    for name, fast in modules.items():
        server, sent, hits = _replay(events, seed, fast, batched=True)
        assert hits > inputs // 3, f"{name}, batched: the fast path took only {hits} of {inputs} inputs"
        assert sent == batched_sent, f"{name}, batched: sent different datagrams"
        assert _everything(server) == _everything(batched_ref), f"{name}, batched: holds a different state"


def test_the_install_compiled_the_fast_path_where_it_can():
    """With a C compiler here, ``pip install`` must have built it (a broken build would
    otherwise only show up as a slow server)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        assert compiled.fastpath is None
        return
    if compiled.status.startswith("off"):
        return  # TICKSYNC_PURE=1 asked for the general path
    if compiled.manifest is None:  # neither pip-installed nor built in place: nothing to judge here
        pytest.skip(f"this checkout has no build ({compiled.status}); tests/test_install.py builds and installs one")
    assert compiled.fastpath is not None, compiled.status
    assert compiled.fastpath.compiled
    assert StateSyncServer.fast_receive is not None
