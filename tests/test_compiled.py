"""One source per rule: the compiled modules (setup.py's COMPILED) behave exactly as their
sources run as plain Python, and a built checkout or install really uses them.

For each mode, one recorded stream of traffic (real clients on a lossy, duplicating,
reordering simulated link, plus hostile variants of their input packets) is replayed into a
new server here
(the compiled modules where this checkout built them) and in a child process with
``TICKSYNC_PURE=1`` (every compiled module's source, interpreted). Everything the two send
and everything they hold afterwards must be equal; so must a replay that hands each tick's
datagrams over in one batch, as a polled socket does.
"""

import hashlib
import os
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from demos.arena import Arena
from helpers import SECRET, LockstepMatch, StateSyncMatch
from netcode import compiled
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.sim.network import LinkConfig
from netcode.statesync.server import StateSyncServer, StateSyncConfig
from netcode.session.crypto import InvalidTag, packet_nonce
from netcode.session.wire import PacketType

ROOT = Path(__file__).resolve().parent.parent
LINK = LinkConfig(latency=0.04, jitter=0.02, loss=0.1, duplicate=0.05, reorder=0.05)
CONFIG = {
    "statesync": StateSyncConfig(players=4, seed=7, input_packets_per_second=120),
    # A byte budget: each client's snapshot encoded alone, its entities chosen by priority.
    "statesync-budget": StateSyncConfig(players=4, seed=7, input_packets_per_second=120, bandwidth=3000.0),
    "lockstep": LockstepConfig(players=4, seed=7),
}
SERVER = {"statesync": StateSyncServer, "statesync-budget": StateSyncServer, "lockstep": LockstepServer}
MATCH = {"statesync": StateSyncMatch, "statesync-budget": StateSyncMatch, "lockstep": LockstepMatch}
INPUT = {"statesync": PacketType.SS_INPUT, "statesync-budget": PacketType.SS_INPUT, "lockstep": PacketType.LS_INPUT}


def _mutants(data: bytes, rng: random.Random) -> list[bytes]:
    """Hostile variants of one client packet (opened: the payload in clear): bit flips in
    the payload, truncation, trailing junk, other slots, absurd run lengths, a replay of
    the packet itself. (The header is left alone: it is authenticated.)"""
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


def record(mode: str, seed: int) -> tuple[list, int]:
    """(events, input packets with inputs): ("rx", data, addr, now) and ("tick", now) as a
    ``mode`` server saw them in a match, hostile variants spliced in before some inputs."""
    match = MATCH[mode](Arena(npcs=50), 4, seed=seed, link=LINK, config=CONFIG[mode])
    server = match.server
    rng = random.Random(seed)
    events: list = []
    inputs = 0
    plain_rx, plain_tick = server.receive_datagram, server.on_tick

    def rx(data, addr, now):
        nonlocal inputs
        conn = server.session.connection_at(addr)
        if len(data) > 18 and data[3] & 0x7F == INPUT[mode] and conn is not None:
            # Open the packet with the server's key, so its variants can be sealed again
            # (as the client would have sealed them) and reach the mode's rules.
            head = data[:17]
            nonce = packet_nonce(conn._counter_of(int.from_bytes(data[8:10], "little")))
            try:
                opened = head + conn._rx.aead.decrypt(nonce, data[17:], head)
            except InvalidTag:
                opened = None  # a packet of the session before (reconnect): the server drops it
            if opened is not None:
                inputs += opened[18] & 1  # carries input records (not only an ack)
            if opened is not None and rng.random() < 0.3:
                # One variant goes first: it takes the sequence number, so the real packet
                # that follows it is a duplicate. (Variants after it would all be duplicates.)
                variant = rng.choice(_mutants(opened, rng) + [data[:-1] + bytes([data[-1] ^ 1])])
                if variant[:17] == head and len(variant) > 17:
                    variant = head + conn._rx.aead.encrypt(nonce, variant[17:], head)
                events.append(("rx", variant, addr, now))
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


def replay(mode: str, events: list, seed: int, batched: bool) -> tuple:
    """Replay into a new server. ``batched``: the datagrams between two ticks go in one
    ``receive_many`` (a polled socket's read); else one by one."""
    server = SERVER[mode](Arena(npcs=50), CONFIG[mode], secret=SECRET, rng=random.Random(seed))
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
    return server, sent


def everything(server, sent: list) -> dict:
    """What the server sent and holds: counters, every connection's bookkeeping, every
    peer, the input buffer, the view delays (state sync), the game state."""
    ib = server.inputs
    return {
        "view": server.view_delays.tobytes() if isinstance(server, StateSyncServer) else None,
        "sent": hashlib.sha256(b"".join(d + repr(a).encode() for d, a in sent)).hexdigest(),
        "stats": server.stats(),
        "conns": {cid: c.bookkeeping() for cid, c in server.session.connections.items()},
        "peers": {cid: p.bookkeeping() for cid, p in server.peers.items()},
        "inputs": (ib._data.tobytes(), ib._tick.tobytes(), ib.newest.tobytes(), ib.last.tobytes()),
        "state": server.state.hash(),
    }


def _in_pure_python(mode: str, events_file: Path, seed: int) -> dict:
    """The replays in a child process that runs every compiled module's source."""
    code = (
        "import pickle, sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests']\n"
        "import test_compiled as t\n"
        "from netcode import compiled\n"
        "assert all(compiled.load(m) is None for m in compiled.statuses), compiled.statuses\n"
        "events = pickle.loads(open(sys.argv[2], 'rb').read())\n"
        "out = {b: t.everything(*t.replay(sys.argv[4], events, int(sys.argv[3]), b)) for b in (False, True)}\n"
        "sys.stdout.buffer.write(pickle.dumps(out))\n"
    )
    env = {**os.environ, "TICKSYNC_PURE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(events_file), str(seed), mode], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return pickle.loads(done.stdout)


@pytest.mark.parametrize("mode,seed", [("statesync", 1), ("statesync", 2), ("statesync-budget", 4), ("lockstep", 3)])
def test_compiled_and_interpreted_servers_hold_and_send_the_same(mode, seed, tmp_path):
    events, inputs = record(mode, seed)
    one_by_one = everything(*replay(mode, events, seed, batched=False))
    stats = one_by_one["stats"]
    assert stats["players"] == 4 and inputs > 300
    dropped = stats["session"]["dropped"]
    assert dropped.get("duplicate", 0) > 0 and len(dropped) >= 3  # the hostile variants did arrive
    assert stats["tick"] > 200
    batched = everything(*replay(mode, events, seed, batched=True))
    assert batched["state"] == one_by_one["state"]

    events_file = tmp_path / "events.pickle"
    events_file.write_bytes(pickle.dumps(events))
    pure = _in_pure_python(mode, events_file, seed)
    assert pure[False] == one_by_one, "the interpreted sources hold or sent something else"
    assert pure[True] == batched, "the interpreted sources, batched, hold or sent something else"


def test_a_built_checkout_uses_every_compiled_module():
    """With a C compiler here, a build (``pip install``, ``make``) must have compiled every
    module of setup.py's COMPILED list, and the imports must be those builds (a broken
    build would otherwise only show up as a slow server)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the general path is all an install here can have")
    if os.environ.get("TICKSYNC_PURE"):
        assert all(compiled.load(m) is None for m in compiled.statuses)
        return
    if compiled.manifest is None:  # neither pip-installed nor built in place: nothing to judge here
        pytest.skip(f"this checkout has no build ({compiled.status}); tests/test_install.py builds and installs one")
    planned = subprocess.run(
        [sys.executable, "setup.py", "--compiled"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert "netcode.mode.dispatch" in planned and "netcode.statesync.peer" in planned
    for module in planned:
        built = compiled.load(module)
        assert built is not None and built.__file__.endswith(".so"), f"{module}: {compiled.statuses[module]}"
        assert sys.modules[module] is built  # what the engine imported is the build


def test_an_input_run_from_past_tick_two_to_the_31_reads_the_same_compiled_and_interpreted():
    """A hostile client may stamp its inputs for any 32-bit tick. Compiled, the run's top
    byte shifted by 24 was a C int: from tick 2^31 on it read as a negative tick, so the
    inputs were taken as late instead of dropped as too far ahead (test_compiled's replay
    met it once the recorded match changed)."""
    import numpy as np

    from helpers import source_twin
    from netcode.mode import inputs

    twin = source_twin("netcode.mode.inputs")
    for first in (2**31 - 1, 2**31, 2**32 - 5):
        run = inputs.pack_run(first, np.zeros((3, 4), np.uint8))
        assert inputs.scan_run(run, 0, 4)[0] == twin.scan_run(run, 0, 4)[0] == first
        buffers = [inputs.InputBuffer(2, 4, max_ahead=30), twin.InputBuffer(2, 4, max_ahead=30)]
        assert [b.put_run(0, run, 0, 100) for b in buffers] == [inputs.TOO_FAR] * 2


def test_the_rate_limiter_decides_the_same_compiled_and_interpreted():
    """The polled UDP reader calls the compiled RateLimiter for every datagram: its
    decisions, evictions and buckets must be the source's."""
    from helpers import source_twin
    from netcode.transport.ratelimit import RateLimiter

    rng = random.Random(5)
    limiters = [RateLimiter(15.0, 4.0, max_tracked=64), source_twin("netcode.transport.ratelimit").RateLimiter(15.0, 4.0, 64)]
    now, decisions = 0.0, [[], []]
    for _ in range(20000):
        now += rng.expovariate(2000.0)
        key = ("10.0.0.1", rng.randrange(100)) if rng.random() < 0.9 else ("spoofed", rng.randrange(10**6))
        for limiter, out in zip(limiters, decisions):
            out.append(limiter.allow(key, now))
    assert decisions[0] == decisions[1]
    assert 0 < sum(decisions[0]) < len(decisions[0])  # some allowed, some refused
    buckets = [{k: (b.tokens, b.last) for k, b in limiter._buckets.items()} for limiter in limiters]
    assert limiters[0].evicted == limiters[1].evicted > 0 and buckets[0] == buckets[1]
