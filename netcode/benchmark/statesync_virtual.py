"""State-sync server cost and bandwidth: 1000 entities, 16 to 256 clients, on virtual time.

What it runs: the real sans-IO :class:`~netcode.statesync.server.StateSyncServer` and N clients over
the seeded simulator (:class:`~netcode.sim.driver.VirtualNetwork`) on a clean link (no loss,
0.5 ms one way, like loopback), 60 Hz simulation, 30 Hz snapshots, every client sending an
input packet at 60 Hz, everyone connected through the real handshake. The game is the
arena demo with 1000 NPCs *plus* one entity per player (so 1016 .. 1256 entities); the first
``moving`` fraction of the NPCs wander, every tick, and the bots' players walk about and
shoot. ``BenchArena`` only raises ``max_players`` to 256 (the demo stops at 64); name,
version and schema, hence the handshake fingerprint, are the demo's.

After a warm-up it measures, for ``--seconds`` of virtual play:

* server tick work: wall time of each ``server.on_tick(now)`` (close inputs, step the game,
  quantize, delta-encode, wrap and queue packets), split into snapshot ticks (every 2nd)
  and the others; p50 / p99 / max; the game step alone inside it;
* input processing: time in ``server.receive_datagram`` between two ticks (that tick's
  input packets), per tick;
* server CPU per simulated second: all of the above plus its timer, ms per second of play
  (1000 = one core busy);
* encodes per snapshot (encode-once sharing: 1 when every client acked the same baseline);
* bandwidth per client: (payload + 28 bytes UDP/IPv4) x datagrams, down and up, kbit/s;
  datagrams per second down;
* "JSON x": what sending the whole replicated state as JSON every snapshot would cost,
  divided by our downstream bytes (headers included on our side only, so the ratio is, if
  anything, unfair to us). The JSON is ``orjson.dumps`` of one dict per alive entity,
  ``{"id", "pos": [x, y], "aim", "hp", "kind"}``, plus ``{"score": [...]}``, at 30 Hz,
  sampled on every 15th snapshot of the measurement (outside the timed calls).

Rows (``--rows``; ``m10`` = 10% of the NPCs move, ``m100`` = all of them; the players'
entities move too, so ``m10_16`` has ~114 of 1016 entities moving, the issue's "10% of 1000"):

* ``m10_16 .. m10_256`` and ``m100_16 .. m100_256``: 16, 64, 200, 256 fake clients;
* ``m10_16r``: 16 real :class:`~netcode.statesync.client.StateSyncClient` s (each predicts,
  reconciles and interpolates, so it steps the arena every tick), to show the fake clients
  produce the same server figures as ``m10_16``;
* ``noshare_64``: encode-once sharing off. There is no switch for it in netcode, so the row
  sets ``bandwidth=1e9``: every client still sees every entity, but a byte budget makes
  the server encode per client (and run the per-client bookkeeping); compare with ``m10_64``;
* ``rel_200``: interest management, grid cells of 12000 (of a 65535-wide world);
* ``budget_64``: a 6000 B/s snapshot budget per client (priority accumulator), all moving;
* ``colyseus_sim``: the Colyseus comparison workload (see ``colyseus``) on
  the simulator: 100 clients, 1000 NPCs all moving; the real-UDP run is in that module.

Fake clients. A real ``StateSyncClient`` steps the whole arena every tick (and replays
ticks on every snapshot), too slow for 256 of them in one process beside the server, so
most rows drive lightweight clients with the real client's traffic: a real
:class:`~netcode.session.SessionClient` (handshake, sequence numbers, acks, RTT); on each
snapshot part the per-client prefix is read with :func:`~netcode.statesync.wire.parse_snapshot_prefix`
(the newest input tick the server applied) and only the part header (tick, baseline,
index, count) after it; a part whose baseline the client does not hold complete is dropped
as the real client drops it; a snapshot whose parts have all arrived is complete and the
newest complete one is acked (what ``StateSyncClient`` acks). During the warm-up the first
parts each client gets are also fully decoded with :func:`~netcode.statesync.snapshot.decode_part`
and the header fields checked against it. Inputs are stamped as the real client stamps
them (:class:`~netcode.mode.timesync.ServerClock`, :func:`~netcode.mode.timesync.input_lead`,
:meth:`~netcode.mode.timesync.ServerClock.one_way`, :class:`~netcode.mode.inputs.StampedInputs`) and sent with
:func:`~netcode.statesync.wire.pack_ss_input` on every update (60 Hz), repeating what the
server has not applied, with the view delay the real client reports (present minus its
render tick). Bot controls come from ``game.bot_inputs`` on the *server's* state (the real
clients use their prediction of it), for all fake clients in one call every 4 updates.

Fairness: as in ``lockstep_virtual``, everything built during the warm-up is ``gc.freeze()``-d
so full collections during the measurement do not walk the clients sharing the process.

Run: ``python -m bench.bench_statesync [--seconds 8] [--rows m10_16,...] [--profile]``
(under 2 minutes on a 2-core machine with the defaults). ``--profile`` replays the last
row for 3 s with cProfile around the server calls only and prints the top functions.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import orjson

from netcode.benchmark.virtual import (
    LINK,
    FakeSession,
    Figures,
    Match,
    Profilers,
    ServerProbe,
    add_clients,
    fake_updates,
    measure,
    network,
    parse_args,
    pct,
    player_token,
    print_command,
    profile_row,
    run_rows,
    schedule,
    warm_up,
)
from demos.arena import Arena
from netcode.statesync.snapshot import SnapshotSchema, decode_part, read_part_header
from netcode.statesync.server import StateSyncServer, StateSyncConfig
from netcode.statesync.client import StateSyncClient
from netcode.statesync.wire import StateSyncInfo, pack_ss_input, parse_snapshot_prefix
from netcode.mode.timesync import input_lead
from netcode.session.wire import UDP_IP_OVERHEAD, PacketType, Reader

SECRET = b"bench-statesync-secret-012345678"
RATE = 60
SNAPSHOT_RATE = 30
NPCS = 1000
TARGET_TICK_P99_MS = 16.7  # 200 clients, 1000 entities: one 60 Hz frame
TARGET_DOWN_KBPS = 64.0  # per client, 10% of the NPCs moving
JSON_SAMPLE_EVERY = 15  # snapshots between JSON size samples


class BenchArena(Arena):
    """The arena demo with room for 256 players (the demo allows 64). Name, version, input
    dtype, state layout and replication are the demo's, so is the handshake fingerprint."""

    max_players = 256


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    clients: int
    moving: float
    fake: bool = True
    npcs: int = NPCS
    relevance: float | None = None
    bandwidth: float | None = None
    seconds_scale: float = 1.0  # fraction of --seconds this row plays (keeps the run short)

    def config(self) -> StateSyncConfig:
        return StateSyncConfig(
            players=self.clients,
            seed=1,
            snapshot_rate=SNAPSHOT_RATE,
            interest_cell=self.relevance,
            bandwidth=self.bandwidth,
        )


ROWS = [
    Row("m10_16", "m10 16", 16, 0.1),
    Row("m10_16r", "m10 16 real", 16, 0.1, fake=False),
    Row("m10_64", "m10 64", 64, 0.1),
    Row("m10_200", "m10 200", 200, 0.1),
    Row("m10_256", "m10 256", 256, 0.1, seconds_scale=0.75),
    Row("m100_16", "m100 16", 16, 1.0),
    Row("m100_64", "m100 64", 64, 1.0),
    Row("m100_200", "m100 200", 200, 1.0),
    Row("m100_256", "m100 256", 256, 1.0, seconds_scale=0.75),
    Row("noshare_64", "noshare m10 64", 64, 0.1, bandwidth=1e9, seconds_scale=0.5),
    Row("rel_200", "grid12k m10 200", 200, 0.1, relevance=12000.0, seconds_scale=0.5),
    Row("budget_64", "budget6k m100 64", 64, 1.0, bandwidth=6000.0, seconds_scale=0.5),
    Row("colyseus_sim", "colyseus sim 100", 100, 1.0),
]
DEFAULT_ROWS = "m10_16,m10_16r,m10_64,m10_200,m10_256,m100_16,m100_64,m100_200,m100_256,noshare_64,rel_200,budget_64,colyseus_sim"


# -- the measured server ------------------------------------------------------------------
class SnapshotProbe(ServerProbe):
    """The common probe (see ``netcode.benchmark.virtual``), plus which ticks were snapshot ticks, how
    often the extras (scores) changed, and JSON size samples."""

    def __init__(self, server: StateSyncServer, profilers: Profilers | None = None):
        super().__init__(server, profilers)
        self.snap: list[bool] = []  # per tick: was it a snapshot tick
        self.json_bytes: list[int] = []
        self.extras_changed = [0, 0]  # snapshots whose extras differ from the previous one, of
        self._prev_extras: bytes | None = None

    def ticked(self) -> None:
        server = self.server
        snap = server.tick % server.snapshot_every == 0
        if self.measuring:
            self.snap.append(snap)
            if snap:
                extras = server.history.extras[server.history.index(server.tick)]
                self.extras_changed[0] += extras != self._prev_extras
                self.extras_changed[1] += 1
                if self.extras_changed[1] % JSON_SAMPLE_EVERY == 1:
                    self.json_bytes.append(json_state_size(server))
        if snap:
            self._prev_extras = server.history.extras[server.history.index(server.tick)]


def json_state_size(server: StateSyncServer) -> int:
    """Bytes of the whole replicated state as JSON (what a naive server would send)."""
    s = server.state
    ids = np.flatnonzero(s.alive)
    pos, aim, hp, kind = s.pos[ids].tolist(), s.aim[ids].tolist(), s.hp[ids].tolist(), s.kind[ids].tolist()
    entities = [{"id": i, "pos": p, "aim": a, "hp": h, "kind": k} for i, p, a, h, k in zip(ids.tolist(), pos, aim, hp, kind)]
    return len(orjson.dumps({"entities": entities, "score": s.score.tolist()}))


# -- lightweight clients --------------------------------------------------------------------
class FakeClient(FakeSession):
    """A player's state-sync traffic without the game: see the module docstring."""

    Info = StateSyncInfo

    def __init__(self, game, slot: int, token: bytes, server: Hashable = "server", verify: int = 0, rng=None):
        super().__init__(game, slot, token, server, rng)
        self.acked = -1  # newest complete snapshot
        self.applied = -1  # newest of our input ticks the server applied
        self._complete: set[int] = set()
        self._partial: dict[int, tuple[int, set]] = {}  # tick -> (part count, indexes received)
        self.verify = verify  # parts left to check against decode_part
        self.verified = 0
        self.counters = {"parts": 0, "complete": 0, "no_baseline": 0, "inputs_sent": 0}
        self._capacity = self._columns = self._extras_size = 0
        self._game = game

    def _connected(self) -> None:
        if self.verify:
            schema = SnapshotSchema(self._game.replication, self._game.create(self.info.seed, self.info.players))
            self._capacity, self._columns, self._extras_size = schema.capacity, schema.columns, schema.extras_size

    def _on_payload(self, conn, ptype: PacketType, payload: memoryview, now: float) -> None:
        if ptype is not PacketType.SS_SNAPSHOT:
            return
        r = Reader(payload)
        applied, _ = parse_snapshot_prefix(r)
        start = r.pos
        tick, base, predictor, index, count = read_part_header(r)
        if self.verify:
            part = decode_part(payload[start:], self._capacity, self._columns, self._extras_size)
            got = (part.tick, part.base, part.predictor, part.index, part.count)
            if got != (tick, base, predictor, index, count):
                raise AssertionError(f"header-only parse {(tick, base, predictor, index, count)} != decode_part {got}")
            self.verify -= 1
            self.verified += 1
        if applied is not None:
            self.applied = max(self.applied, tick + applied)
        self.clock.sample(tick - 1, now)
        self.counters["parts"] += 1
        if tick in self._complete:
            return
        entry = self._partial.get(tick)
        if entry is None:
            if (base is not None and base not in self._complete) or (predictor is not None and predictor not in self._complete):
                self.counters["no_baseline"] += 1
                return  # as StateSyncClient: the server will use a baseline we hold next time
            entry = self._partial[tick] = (count, set())
        entry[1].add(index)
        if len(entry[1]) == entry[0]:
            del self._partial[tick]
            self._complete.add(tick)
            self.counters["complete"] += 1
            if tick > self.acked:
                self.acked = tick
                horizon = tick - 64 * self.info.snapshot_every
                if len(self._complete) > 80:
                    self._complete = {t for t in self._complete if t >= horizon}
                for t in [t for t in self._partial if t < horizon]:
                    del self._partial[t]

    def update(self, now: float) -> None:
        """What StateSyncClient.update does for traffic (prediction aside): stamp inputs
        ahead of the server, send them with the ack and the view delay."""
        if self.info is None or not self.session.connected:
            return
        rate = self.info.tick_rate
        rtt = self.session.connection.rtt
        ahead = self.clock.one_way(rtt, now)
        server_tick = self.clock.tick_at(now, ahead)
        present = math.ceil(server_tick + input_lead(ahead, rtt.jitter, rate, 1))
        self._own.stamp(int(server_tick) + 1, present, self.input)
        # The real client's render tick: two snapshot intervals plus jitter behind the
        # newest snapshots' arrival.
        render = self.clock.tick_at(now, 0.0) - (2 * self.info.snapshot_every + 2 * rtt.jitter * rate)
        first, records = self._own.unacked(self.applied)
        payload = pack_ss_input(self.slot, None if self.acked < 0 else self.acked, round(present - render), first, records)
        self.session.send(PacketType.SS_INPUT, payload, now)
        self.counters["inputs_sent"] += 1


# -- one row --------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Result(Figures):
    """The common figures (times, CPU, bandwidth: see ``netcode.benchmark.virtual``) of one row, plus the
    state-sync ones."""

    row: Row
    ticks: int
    entities: int
    snap: np.ndarray
    encodes_per_snapshot: float
    json_kbps: float
    wall: float
    extra: dict = field(default_factory=dict)

    @property
    def down_payload_kbps(self) -> float:
        return (self.down_bytes - self.down_dgrams * UDP_IP_OVERHEAD) * 8 / self.seconds / 1e3


def token(slot: int, expires: float = 1e9) -> bytes:
    """``expires`` is the server's wall time: virtual time in the simulator (starts at 100)."""
    return player_token(SECRET, slot, expires)


@dataclass
class StateSyncMatch(Match):
    clients: list  # FakeClient or StateSyncClient


def build(row: Row, profilers: Profilers | None = None, verify: int = 20) -> StateSyncMatch:
    """Server and clients, handshakes started, tickers registered; nothing run."""
    game = BenchArena(npcs=row.npcs, moving=row.moving)
    n = row.clients
    server = StateSyncServer(game, row.config(), secret=SECRET, rng=random.Random(1))
    probe = SnapshotProbe(server, profilers)
    net = network(probe)
    dt = 1.0 / server.tick_rate
    names = [f"c{i}" for i in range(n)]
    if row.fake:
        clients = [FakeClient(game, i, token(i), verify=verify) for i in range(n)]
        slots = np.arange(n)
        client_updates = fake_updates(clients, lambda: game.bot_inputs(server.state, server.tick, slots))

    else:
        clients = [StateSyncClient(game, server="server", token=token(i), rng=random.Random(i)) for i in range(n)]
        updates = [0]

        def client_updates(now: float) -> None:
            bots = updates[0] % 4 == 0
            updates[0] += 1
            for c in clients:
                if bots and c.predicted is not None and c.slot is not None:
                    c.set_input(game.bot_inputs(c.predicted, c.predicted_tick, np.array([c.slot]))[0])
                c.update(now)
                c.events()

    add_clients(net, names, clients)
    schedule(net, dt, probe, client_updates)
    return StateSyncMatch(row, net, server, probe, names, clients)


def run_row(row: Row, seconds: float, warmup: float, profilers: Profilers | None = None) -> Result:
    started = time.perf_counter()
    m = build(row, profilers)
    server, probe = m.server, m.probe
    warm_up(m, warmup, row.clients)
    verified = sum(getattr(c, "verified", 0) for c in m.clients)
    for c in m.clients:
        if isinstance(c, FakeClient):
            c.verify = 0
    tick0 = server.tick
    sc0 = dict(server.stats_counters)
    measure(m, seconds)
    ticks = server.tick - tick0
    sc = {k: server.stats_counters[k] - sc0[k] for k in sc0}
    fig = probe.figures(m.names, seconds)
    json_bps = float(np.mean(probe.json_bytes)) * SNAPSHOT_RATE if probe.json_bytes else float("nan")
    snaps = max(sc["snapshots"], 1)
    ch, tot = probe.extras_changed
    extras_size = server.schema.extras_size
    extra = {
        "snapshot parts per client": f"{fig.down_dgrams / snaps:.2f}",
        "full snapshots": sum(p.counters["full_snapshots"] for p in server.peers.values()),
        f"extras (scores, {extras_size} B) resent": f"in {100 * ch / max(tot, 1):.0f}% of snapshots "
        f"(~{ch / max(tot, 1) * extras_size * SNAPSHOT_RATE * 8 / 1e3:.1f} kbps of the down)",
        "missing inputs per tick": f"{sc['missing_inputs'] / max(ticks, 1):.2f}",
        "input packets per tick": f"{probe.up_datagrams() / max(ticks, 1):.1f}",
    }
    if row.fake:
        extra["no-baseline parts"] = sum(c.counters["no_baseline"] for c in m.clients)
        if verified:
            extra["header parse checked vs decode_part"] = f"{verified} parts"
    else:
        extra["client acks behind server (ticks)"] = max(server.tick - c.acked for c in m.clients)
        extra["no-baseline parts"] = sum(c.counters["no_baseline"] for c in m.clients)
    return Result(
        **vars(fig),
        row=row,
        ticks=ticks,
        entities=int(server.schema.capacity),
        snap=np.array(probe.snap, bool),
        encodes_per_snapshot=sc["encodes"] / snaps,
        json_kbps=json_bps * 8 / 1e3,
        wall=time.perf_counter() - started,
        extra=extra,
    )


# -- report ---------------------------------------------------------------------------------
HEADER = (
    f"{'row':<17} {'ents':>4} {'snap p50':>8} {'p99':>6} {'max':>6} {'other p50':>9} {'p99':>5} {'step p50':>8} "
    f"{'recv p50':>8} {'p99':>5} {'t+r p99':>7} {'cpu ms/s':>8} {'enc/snap':>8} {'down kbps':>9} {'pkt/s':>5} "
    f"{'up kbps':>7} {'JSON kbps':>9} {'JSON x':>6} {'wall s':>6}"
)


def format_row(r: Result) -> str:
    both = r.tick_ms + r.recv_ms
    snap, other = r.tick_ms[r.snap], r.tick_ms[~r.snap]
    ratio = r.json_kbps / r.down_kbps if r.down_kbps else float("nan")
    return (
        f"{r.row.label:<17} {r.entities:>4} {pct(snap, 50):>8.2f} {pct(snap, 99):>6.2f} {r.tick_ms.max():>6.2f} "
        f"{pct(other, 50):>9.2f} {pct(other, 99):>5.2f} {pct(r.step_ms, 50):>8.2f} "
        f"{pct(r.recv_ms, 50):>8.2f} {pct(r.recv_ms, 99):>5.2f} {pct(both, 99):>7.2f} {r.cpu_ms_per_s:>8.1f} "
        f"{r.encodes_per_snapshot:>8.2f} {r.down_kbps:>9.1f} {r.down_pps:>5.1f} {r.up_kbps:>7.1f} "
        f"{r.json_kbps:>9.0f} {ratio:>6.1f} {r.wall:>6.1f}"
    )


EXPLAIN = """\
columns (times are wall ms on this machine; everything else per simulated second):
  ents       entities in the room (1000 NPCs + one per player)
  snap       server.on_tick on snapshot ticks (every 2nd): inputs, step, quantize, encode, queue (p50/p99)
  max        the largest on_tick of any tick
  other      server.on_tick on the other ticks (inputs and step only)
  step       the game step inside on_tick (p50 over all ticks)
  recv       server.receive_datagram per tick: that tick's input packets (p50/p99)
  t+r p99    p99 of on_tick + recv per tick: all server work of one tick
  cpu ms/s   server CPU per simulated second (ticks + input packets + timers); 1000 = one core
  enc/snap   snapshot encodings per snapshot (encode-once: one per distinct baseline)
  down kbps  per client, server -> client, (payload + 28 B UDP/IPv4) x datagrams
  pkt/s      datagrams per second to each client
  up kbps    per client, client -> server, same accounting (60 input packets/s)
  JSON kbps  the whole replicated state as JSON at 30 Hz (orjson, no transport overhead)
  JSON x     JSON kbps / down kbps
  wall s     wall time of the row (clients and warm-up included)"""


def main(argv: list[str] | None = None) -> int:
    args, rows = parse_args(__doc__, argv, ROWS, DEFAULT_ROWS, seconds=8.0, warmup=2.0)
    print_command("bench.bench_statesync", argv)
    print(
        f"state sync on virtual time: {RATE} Hz simulation, {SNAPSHOT_RATE} Hz snapshots, inputs at 60 Hz, clean link "
        f"({LINK.latency * 1e3:.1f} ms one way, no loss), warm-up {args.warmup:g} s; "
        f"numpy {np.__version__}, python {sys.version.split()[0]}"
    )
    print(EXPLAIN)
    print()
    results = run_rows(rows, args, run_row, HEADER, format_row)
    print()
    for r in results:
        extra = "; ".join(f"{k} {v}" for k, v in r.extra.items())
        print(f"  {r.row.label}: {r.seconds:g} s, {r.ticks} ticks; {extra}")
    print()
    print_targets(results)
    if args.profile:
        profile_row(run_row, rows[-1], args.seconds, args.warmup, limit=3.0, top=22)
    return 0


def print_targets(results: list[Result]) -> None:
    by_key = {r.row.key: r for r in results}
    print("targets:")
    for r in results:
        if r.row.clients >= 200 and r.row.fake and r.row.relevance is None:
            p99 = pct(r.tick_ms, 99)
            both = pct(r.tick_ms + r.recv_ms, 99)
            verdict = ("OK" if p99 < TARGET_TICK_P99_MS else "MISSED") if r.row.clients == 200 else "(beyond the target's 200)"
            print(
                f"  {r.row.label}: p99 server tick {p99:.2f} ms (target < {TARGET_TICK_P99_MS} ms at 200 clients): {verdict}; "
                f"with that tick's input packets {both:.2f} ms"
            )
    for r in results:
        if r.row.moving == 0.1 and r.row.fake and r.row.relevance is None and r.row.bandwidth is None:
            verdict = "OK" if r.down_kbps <= TARGET_DOWN_KBPS else "MISSED"
            print(
                f"  {r.row.label}: down {r.down_kbps:.1f} kbps per client incl. UDP/IP ({r.down_payload_kbps:.1f} without) "
                f"(target <= {TARGET_DOWN_KBPS:.0f}): {verdict}; JSON of the full state {r.json_kbps:.0f} kbps = "
                f"{r.json_kbps / r.down_kbps:.1f}x ours"
            )
    a, b = by_key.get("m10_16"), by_key.get("m10_16r")
    if a and b:
        print(
            f"  fake vs real clients (16, m10): cpu {a.cpu_ms_per_s:.1f} vs {b.cpu_ms_per_s:.1f} ms/s, "
            f"down {a.down_kbps:.1f} vs {b.down_kbps:.1f} kbps, up {a.up_kbps:.1f} vs {b.up_kbps:.1f} kbps, "
            f"enc/snap {a.encodes_per_snapshot:.2f} vs {b.encodes_per_snapshot:.2f}"
        )
    a, b = by_key.get("m10_64"), by_key.get("noshare_64")
    if a and b:
        print(
            f"  encode-once sharing (64 clients, m10): snapshot tick p50 {pct(a.tick_ms[a.snap], 50):.2f} ms shared vs "
            f"{pct(b.tick_ms[b.snap], 50):.2f} ms per-client ({pct(b.tick_ms[b.snap], 50) / pct(a.tick_ms[a.snap], 50):.1f}x), "
            f"cpu {a.cpu_ms_per_s:.0f} vs {b.cpu_ms_per_s:.0f} ms/s, enc/snap {a.encodes_per_snapshot:.2f} vs {b.encodes_per_snapshot:.2f}"
        )
    c = by_key.get("colyseus_sim")
    if c:
        print(
            f"  colyseus workload on the simulator (100 clients, all moving): server cpu {c.cpu_ms_per_s / 10:.1f}% of a core "
            f"(Colyseus 0.16: 14%), down {c.down_kbps / 1e3:.3f} Mbit/s per client (Colyseus: 3.3, target <= 0.825); "
            f"the real-UDP run is python -m bench.bench_statesync_loopback"
        )


if __name__ == "__main__":
    raise SystemExit(main())
