"""Builders shared by the protocol tests: a game identity, tokens, a session pair on the simulator."""

from __future__ import annotations

import hashlib
import math
import importlib.util
import random
import sys
from contextlib import contextmanager
from pathlib import Path

from demos.arena import GAME as ARENA
from netcode import compiled
from netcode.statesync import bits
from netcode.session.handshake import GameIdentity
from netcode.sim.network import LinkConfig, NetSim
from netcode.session import Admission, Refused, SessionClient, SessionServer
from netcode.sim.driver import VirtualNetwork
from netcode.session.token import mint_token

SECRET = b"test-secret-0123456789abcdef"
ROOM = "default"
IDENTITY = GameIdentity.of(ARENA)


def token(slot: int = -1, *, user: str = "", expires: float = 10_000.0, secret: bytes = SECRET, room: str = ROOM, role: int = 0) -> bytes:
    """A client token, the same bytes for the same arguments (runs on the simulator repeat
    exactly); its nonce and keys come from the arguments, so no nonce seals two key sets."""
    seed = hashlib.sha512(repr((slot, user, expires, secret, room, role)).encode()).digest()
    return mint_token(secret, room, expires=expires, slot=slot, user=user, role=role, nonce=seed[:12], keys=seed)


class SlotTable:
    """A minimal admit policy: token slot if free, else the lowest free slot."""

    def __init__(self, slots: int = 8):
        self.slots = slots
        self.owner: dict[int, int] = {}

    def admit(self, claims, addr, now):
        slot = claims.slot
        if slot == -1:
            free = [s for s in range(self.slots) if s not in self.owner]
            if not free:
                raise Refused("room_full", "the room is full")
            slot = free[0]
        elif slot >= self.slots:
            raise Refused("refused", f"slot {slot} does not exist")
        elif slot in self.owner:
            raise Refused("slot_taken", f"slot {slot} is taken")
        self.owner[slot] = -1
        return Admission(slot=slot, info=b"info")


def session_pair(seed: int, link: LinkConfig | None = None, *, client_token: bytes | None = None, identity=IDENTITY):
    net = VirtualNetwork(NetSim(seed, link or LinkConfig()), start=100.0)
    received = {"server": [], "client": []}
    table = SlotTable()
    server = SessionServer(
        game=IDENTITY,
        secret=SECRET,
        admit=table.admit,
        on_payload=lambda c, p, pl, n: received["server"].append((c.id, p, bytes(pl))),
        rng=random.Random(seed),
    )
    client = SessionClient(
        server="server",
        token=client_token if client_token is not None else token(),
        game=identity,
        on_payload=lambda c, p, pl, n: received["client"].append((p, bytes(pl))),
        rng=random.Random(seed + 1),
    )
    net.add("server", server)
    net.add("client", client)
    return net, server, client, received


class LockstepMatch:
    """A lockstep server and bot clients on the simulator, with every reported hash logged.

    Bots pick inputs from their own (client-side) state every few ticks, as a player's
    controls change; clients that lose their session reconnect on their own.
    """

    def __init__(self, game, players, *, seed, link=None, recorder=None, config=None, prediction_window=0, start=100.0):
        import numpy as np

        from netcode.lockstep.server import LockstepConfig, LockstepServer
        from netcode.sim.network import LinkConfig, NetSim
        from netcode.sim.driver import VirtualNetwork

        self.np = np
        self.game = game
        self.players = players
        self.seed = seed
        self.prediction_window = prediction_window
        self.net = VirtualNetwork(NetSim(seed, link or LinkConfig()), start=start)
        cfg = config or LockstepConfig(players=players, seed=seed % 1000)
        self.server = LockstepServer(game, cfg, secret=SECRET, rng=random.Random(seed), recorder=recorder)
        self.net.add("server", self.server)
        self.clients = {}  # name -> (client, runner)
        self.hashes = {}  # name -> {tick: hash}
        self.server_events = []
        self.client_events = {}
        self.auto_reconnect = True
        self._updates = 0
        dt = 1 / self.server.tick_rate
        self.net.every(dt, self._server_tick)
        self.net.every(dt, self._client_updates, start=self.net.now + dt / 2)

    def add_client(self, name, *, slot=-1, user="", role=0, window=None):
        from netcode.lockstep.client import LockstepClient, LockstepRunner

        client = LockstepClient(
            self.game,
            server="server",
            token=token(slot, user=user or name, role=role),
            prediction_window=self.prediction_window if window is None else window,
            rng=random.Random(hash(name) & 0xFFFF),
        )
        runner = LockstepRunner(self.game, client)
        log = self.hashes.setdefault(name, {})
        original = client.report_hash

        def report(tick, value, _orig=original, _log=log):
            _log[tick] = value
            _orig(tick, value)

        client.report_hash = report
        self.clients[name] = (client, runner)
        self.client_events[name] = []
        self.net.add(name, client)
        client.connect(self.net.now)
        self.net.flush(name)
        return client, runner

    def _server_tick(self, now):
        self.server.on_tick(now)
        self.server_events += self.server.events()

    def _client_updates(self, now):
        np = self.np
        from netcode.events import Disconnected
        from netcode.session import ClientState

        self._updates += 1
        for name, (client, runner) in self.clients.items():
            if runner.state is not None and client.slot is not None and client.slot >= 0 and self._updates % 4 == 0:
                client.set_input(self.game.bot_inputs(runner.state, runner.tick, np.array([client.slot]))[0])
            runner.step(now)
            evs = client.events()
            self.client_events[name] += evs
            if self.auto_reconnect and any(isinstance(e, Disconnected) for e in evs):
                if client.session.state is not ClientState.CONNECTED:
                    client.reconnect(now)

    def run(self, seconds):
        self.net.run_for(seconds)

    def server_hash_mismatches(self, name, reference):
        """Ticks where the client's reported hash differs from ``reference`` (tick -> hash)."""
        return {t: h for t, h in self.hashes[name].items() if t in reference and reference[t] != h}


class StateSyncMatch:
    """A state-sync server and predicting clients on the simulator, with the server's
    per-tick positions and applied inputs logged for comparison."""

    def __init__(self, game, players, *, seed, link=None, config=None, recorder=None, input_fn=None, start=100.0):
        import numpy as np

        from netcode.sim.network import LinkConfig, NetSim
        from netcode.sim.driver import VirtualNetwork
        from netcode.statesync.server import StateSyncServer, StateSyncConfig

        self.np = np
        self.game = game
        self.net = VirtualNetwork(NetSim(seed, link or LinkConfig()), start=start)
        self.server = StateSyncServer(
            game, config or StateSyncConfig(players=players, seed=seed % 1000), secret=SECRET, rng=random.Random(seed), recorder=recorder
        )
        self.net.add("server", self.server)
        self.clients = {}
        self.positions = {}  # server tick -> copy of the position field
        self.applied_inputs = {}  # tick -> inputs the server stepped with
        self.input_fn = input_fn  # (client, tick) -> record, default: the game's bots
        self._updates = 0
        dt = 1 / self.server.tick_rate
        pos = game.replication.position
        original_step = game.step

        def logged_step(state, inputs, tick, _orig=original_step):
            if state is self.server.state:
                self.applied_inputs[tick] = inputs.copy()
            _orig(state, inputs, tick)
            if state is self.server.state:
                self.positions[tick + 1] = state[pos].copy()

        game.step = logged_step  # instance attribute: only this game object logs
        self.net.every(dt, lambda now: self.server.on_tick(now))
        self.net.every(dt, self._updates_all, start=self.net.now + dt / 2)

    def add_client(self, name, *, slot=-1, role=0, client_cls=None, **kw):
        from netcode.statesync.client import StateSyncClient

        cls = client_cls or StateSyncClient
        client = cls(self.game, server="server", token=token(slot, user=name, role=role), rng=random.Random(len(name)), **kw)
        self.clients[name] = client
        self.net.add(name, client)
        client.connect(self.net.now)
        self.net.flush(name)
        return client

    def _updates_all(self, now):
        self._updates += 1
        for client in self.clients.values():
            if client.predicted is not None and client.slot is not None and client.slot >= 0 and self._updates % 4 == 0:
                if self.input_fn is not None:
                    record = self.input_fn(client, client.predicted_tick)
                else:
                    record = self.game.bot_inputs(client.predicted, client.predicted_tick, self.np.array([client.slot]))[0]
                client.set_input(record)
            client.update(now)

    def run(self, seconds):
        self.net.run_for(seconds)


class StarvedProcess:
    """A state-sync client in a CPU-starved process, as GameClient runs it on a real loop.

    The process gets ``share`` of a core and each tick it predicts costs ``step_cost`` of
    CPU, so its updates take ``(base + steps * step_cost) / share`` seconds of wall time.
    Its tick loop works like engine.loop.TickLoop: when it wakes late it runs the overdue
    updates (at most ``catchup``, dropping the rest) back to back, each at its own ``now``,
    without reading its socket; datagrams wait (in the kernel) until the burst is over.
    What an update queues leaves when the update ends (GameClient says so with
    ``session.departing``)."""

    def __init__(self, client, rate, step_cost, share, *, base=0.0005, catchup=5, departing=True):
        self.c, self.dt, self.step_cost, self.share = client, 1.0 / rate, step_cost, share
        self.base, self.catchup, self.departing = base, catchup, departing
        self.inbox, self.outbox = [], []
        self.free_at = 0.0
        self.next_due = None
        self.burst = 0
        self.now = 0.0
        self.updates = 0
        self.trace = []  # (now, predicted tick, progress) after each update

    # the endpoint interface, for the simulator's driver
    def receive_datagram(self, data, addr, now):
        self.inbox.append((data, addr))

    def datagrams_to_send(self):
        out = [(d, a) for t, d, a in self.outbox if t <= self.now]
        self.outbox = [x for x in self.outbox if x[0] > self.now]
        return out

    def next_deadline(self):
        times = [t for t, _, _ in self.outbox]
        if self.burst:
            times.append(self.free_at)
        else:
            due = self.c.next_deadline()
            if self.next_due is not None:
                due = self.next_due if due is None else min(due, self.next_due)
            if due is not None:
                times.append(max(due, self.free_at))
        return min(times) if times else None

    def handle_timer(self, now):
        self.now = now
        if now < self.free_at:
            return
        if not self.burst:
            inbox, self.inbox = self.inbox, []
            for data, addr in inbox:  # the loop reads its socket between bursts only
                self.c.receive_datagram(data, addr, now)
            self.c.handle_timer(now)
            self._queue(now)
            if self.next_due is None:
                self.next_due = now
            due = math.floor((now - self.next_due) / self.dt + 1e-9) + 1
            if due <= 0:
                return
            if due > self.catchup:
                self.next_due += (due - self.catchup) * self.dt
                due = self.catchup
            self.burst = due
        self._update(now)

    def _update(self, now):
        c = self.c
        self.burst -= 1
        self.next_due += self.dt
        self.updates += 1
        if c.predicted is not None and c.slot is not None and self.updates % 4 == 0:
            c.set_input(c.game.bot_inputs(c.predicted, c.predicted_tick, [c.slot])[0])
        steps = c.counters["predicted_ticks"]
        c.update(now)
        self.free_at = now + (self.base + self.step_cost * (c.counters["predicted_ticks"] - steps)) / self.share
        if self.departing:
            c.session.departing(self.free_at)
        self._queue(self.free_at)
        self.trace.append((now, c.predicted_tick, c.progress))

    def _queue(self, leave):
        self.outbox += [(leave, d, a) for d, a in self.c.datagrams_to_send()]


# -- real-socket tests ------------------------------------------------------------------


def run_bounded(coro, timeout: float):
    """Run a coroutine on uvloop, failing instead of hanging after ``timeout`` seconds."""
    import asyncio

    from engine.loop import run_async

    return run_async(asyncio.wait_for(coro, timeout))


async def eventually(pred, what: str, timeout: float = 5.0, poll: float = 0.005) -> None:
    """Wait (on the loop's clock) until ``pred()`` holds; AssertionError after ``timeout``."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(poll)


class PeerRecorder:
    """Records what an endpoint reports: payloads through on_payload, drained events."""

    def __init__(self):
        self.payloads: list = []
        self.log: list = []
        self.endpoint = None

    def on_payload(self, conn, ptype, payload, now) -> None:
        self.payloads.append((conn.id, ptype, bytes(payload)))

    def events(self, kind: type | None = None) -> list:
        self.log.extend(self.endpoint.events())
        return [e for e in self.log if kind is None or isinstance(e, kind)]


def source_twin(module: str):
    """``module`` (say ``netcode.statesync.bitpack``), a module Cython compiles at install,
    imported as plain Python beside whatever the install built: the same logic, run by the
    interpreter."""
    path = Path(compiled.__file__).parent.parent.joinpath(*module.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(module + "_source", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.__file__.endswith(".py") and not getattr(module, "compiled", False)
    return module


@contextmanager
def numpy_path():
    """netcode.statesync.bits without its compiled packer (netcode/statesync/bitpack.py), meanwhile: the
    Python and numpy paths an install without a C compiler runs."""
    fast, bits._fast = bits._fast, None
    try:
        yield bits
    finally:
        bits._fast = fast
