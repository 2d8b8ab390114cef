"""The load matrix of ``ticksync bench``: mode x clients x entities x tick rate, each cell a
loopback run (:mod:`.loopback`), plus the capacity search per mode.

A cell's figures are plain JSON-friendly numbers, per second of wall time measured:

* ``achieved_hz`` (ticks / wall), ``tick_ms_p50/p99/max`` (one tick's work: poll, sans-IO
  tick, flush), ``late_ms_p50/p99/max`` (how late a tick started after its deadline);
* ``cpu_pct``: the server process's CPU (user + system, ``getrusage``) in % of one core;
  ``rss_mb`` its resident set;
* ``down/up_bytes_per_client_s`` and ``down/up_packets_per_client_s``: what each client
  received and sent, counted at the clients' sockets, UDP/IPv4 headers (28 bytes a datagram)
  included; the server's own count of bytes is kept beside them (``server_*``);
* ``loss_pct``: the clients' packets the server never acked, as the clients count them
  (what ``ticksync bots`` shows); ``desyncs``: hash mismatches the server found plus the
  desyncs the full clients (``real_clients``, lockstep cells) saw.

A cell the mode cannot hold (a lockstep frame of that many players' inputs over one
packet) is ``"kind": "skipped"`` with the reason; one whose processes died or hung is
``"failed"``; both count as over the budget in the capacity search.

Capacity: per mode, at the plan's largest entity count and highest tick rate, the largest
client count whose p99 tick time fits the tick budget (1000 / rate ms). The matrix's cells
bracket it; ``capacity_probes`` more runs bisect the bracket. Clients never exceed the
game's ``max_players`` (a capacity equal to it says "at least").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from demos.arena import Arena
from engine.model import Game, GameError, load_game
from netcode.benchmark.loopback import MODES, LoopbackSpec, build_server, run
from netcode.errors import UsageError
from netcode.benchmark.statesync_virtual import BenchArena
from netcode.session.wire import UDP_IP_OVERHEAD

__all__ = ["Cell", "Plan", "PLANS", "capacity_search", "game_with_entities", "measure_cell", "resolve_game"]

DEFAULT_GAME = "demos.arena"


@dataclass(frozen=True)
class Cell:
    """One point of the matrix. ``entities``: None plays the game as it is."""

    mode: str
    clients: int
    entities: int | None
    tick_rate: int

    @property
    def key(self) -> str:
        ents = "game" if self.entities is None else self.entities
        return f"{self.mode}/clients={self.clients}/entities={ents}/hz={self.tick_rate}"

    @property
    def budget_ms(self) -> float:
        return 1000.0 / self.tick_rate


@dataclass(frozen=True)
class Plan:
    """What a run measures and for how long."""

    modes: tuple[str, ...] = MODES
    clients: tuple[int, ...] = (8, 32, 100, 200)
    entities: tuple[int | None, ...] = (250, 1000)
    tick_rates: tuple[int, ...] = (30, 60)
    seconds: float = 6.0
    warmup: float = 1.0
    real_clients: int = 1  # full clients per lockstep cell (they run the game: desyncs are seen)
    capacity_probes: int = 2  # extra runs per mode bisecting the capacity bracket
    replay_ticks: int = 7200
    codec_rounds: int = 200
    extras: dict = field(default_factory=dict)  # room for a caller's notes (kept in the JSON)

    def cells(self, game: Game) -> list[Cell]:
        """The matrix for ``game``; a client count over its maximum plays the maximum (pong
        is benched with 2 players, not refused)."""
        counts = sorted({min(c, game.max_players) for c in self.clients})
        return [
            Cell(mode, clients, entities, rate)
            for mode in self.modes
            for entities in self.entities
            for rate in self.tick_rates
            for clients in counts
        ]


#: ``--quick`` (under a minute on 2 cores) and the default (about five minutes).
PLANS = {
    "quick": Plan(clients=(8, 32, 128), entities=(200,), tick_rates=(60,), seconds=2.0, warmup=0.5,
                  capacity_probes=0, replay_ticks=1200, codec_rounds=50),
    "full": Plan(),
}


def resolve_game(path: str | None) -> Game:
    """The game to play: ``path`` (an import path) or the arena. The arena is played as
    :class:`~netcode.benchmark.statesync_virtual.BenchArena` (the same game, up to 256
    players instead of 64). GameError for a path that names no game."""
    game = load_game(path or DEFAULT_GAME)
    if type(game) is Arena:
        game = BenchArena(npcs=game.npcs, moving=game.moving)
    return game


def game_with_entities(game: Game, entities: int | None) -> Game:
    """``game`` with ``entities`` non-player entities, for a game whose constructor takes
    ``npcs`` (the arena); the game itself for None. GameError for a game without that knob."""
    if entities is None:
        return game
    params = inspect.signature(type(game)).parameters
    if "npcs" not in params:
        raise GameError(f"{game.describe()} has no entity count to vary (its constructor takes no 'npcs'): "
                        "leave --entities out")
    kwargs = {"npcs": entities}
    if "moving" in params and hasattr(game, "moving"):
        kwargs["moving"] = game.moving
    return type(game)(**kwargs)


def measure_cell(game: Game, cell: Cell, plan: Plan, runner: Callable[[LoopbackSpec], dict] = run) -> dict:
    """Run ``cell`` over loopback and return its figures (see the module docstring)."""
    spec = LoopbackSpec(
        game=game_with_entities(game, cell.entities),
        mode=cell.mode,
        clients=cell.clients,
        tick_rate=cell.tick_rate,
        seconds=plan.seconds,
        warmup=plan.warmup,
        # Lockstep only: a state-sync client has no desync to see, and its replays after
        # each snapshot would starve the fake clients sharing its process.
        real_clients=min(plan.real_clients, cell.clients) if cell.mode == "lockstep" else 0,
    )
    base = {"key": cell.key, "mode": cell.mode, "clients": cell.clients, "npcs": cell.entities, "tick_rate": cell.tick_rate}
    try:
        build_server(spec, 0.0)  # a configuration the mode refuses is skipped, not run
    except (UsageError, GameError, ValueError) as exc:
        return {"kind": "skipped", **base, "reason": str(exc)}
    try:
        return figures(cell, runner(spec))
    except (RuntimeError, TimeoutError, OSError) as exc:  # a process died or hung: say so, go on
        return {"kind": "failed", **base, "reason": f"{type(exc).__name__}: {exc}"}


def figures(cell: Cell, res: dict) -> dict:
    """A loopback run's reports as the cell's figures."""
    s, gens = res["server"], res["loadgens"]
    n = cell.clients
    wall = s["wall"]
    gwall = sum(g["wall"] for g in gens) / len(gens)
    down_d = sum(sum(g["down_datagrams"]) for g in gens)
    down_b = sum(sum(g["down_bytes"]) for g in gens) + down_d * UDP_IP_OVERHEAD
    up_d = sum(sum(g["up_datagrams"]) for g in gens)
    up_b = sum(sum(g["up_bytes"]) for g in gens) + up_d * UDP_IP_OVERHEAD
    acked, lost = sum(g["acked"] for g in gens), sum(g["lost"] for g in gens)
    return {
        "kind": "load",
        "key": cell.key,
        "mode": cell.mode,
        "clients": n,
        "entities": s["entities"],  # in the room: the game's own plus one per player (arena)
        "npcs": cell.entities,  # the cell's knob (None: the game as it is)
        "tick_rate": cell.tick_rate,
        "budget_ms": cell.budget_ms,
        "seconds": wall,
        "ticks": s["ticks"],
        "achieved_hz": s["ticks"] / wall,
        "tick_ms_p50": s["tick_p50_ms"],
        "tick_ms_p99": s["tick_p99_ms"],
        "tick_ms_max": s["tick_max_ms"],
        "late_ms_p50": s["late_p50_ms"],
        "late_ms_p99": s["late_p99_ms"],
        "late_ms_max": s["late_max_ms"],
        "late_ticks": s["late_ticks"],
        "dropped_ticks": s["dropped_ticks"],
        "cpu_pct": 100 * s["cpu"] / wall,
        "cpu_user_pct": 100 * s["cpu_user"] / wall,
        "cpu_sys_pct": 100 * s["cpu_sys"] / wall,
        "rss_mb": s["rss_bytes"] / 2**20,
        "down_bytes_per_client_s": down_b / n / gwall,
        "down_packets_per_client_s": down_d / n / gwall,
        "up_bytes_per_client_s": up_b / n / gwall,
        "up_packets_per_client_s": up_d / n / gwall,
        "server_sent_packets": s["sent"],
        "server_sent_bytes": s["bytes_sent"] + s["sent"] * UDP_IP_OVERHEAD,
        "server_received_packets": s["received"],
        "clients_received_packets": down_d,
        "clients_sent_packets": up_d,
        "loss_pct": 100 * lost / max(1, acked + lost),
        "desyncs": s["desyncs"] + sum(g["desyncs"] for g in gens),
        "players": s["players"],
        "missing_inputs": s["missing_inputs"],
        "encodes_per_snapshot": s["encodes_per_snapshot"],
        "load_cpu_pct": 100 * sum(g["cpu"] for g in gens) / gwall,
        "load_missed_updates": sum(g["missed_updates"] for g in gens),
        "pinned": list(res["pinned"]),
    }


def fits(cell_figures: dict) -> bool:
    """The cell's p99 tick time is inside its tick budget (a cell the mode refused or
    that failed does not fit)."""
    return cell_figures["kind"] == "load" and cell_figures["tick_ms_p99"] <= cell_figures["budget_ms"]


def capacity_search(game: Game, plan: Plan, measured: list[dict], measure: Callable[[Cell], dict]) -> dict:
    """Per mode: the largest client count whose p99 tick time fits the budget, at the plan's
    largest entity count and highest tick rate. ``measured``: the matrix's figures (they
    bracket the answer); ``measure(cell)`` runs one more cell (``plan.capacity_probes`` per
    mode at most, bisecting). Returns ``{mode: {...}}`` with the probes made."""
    entities = max(plan.entities, key=lambda e: -1 if e is None else e)
    rate = max(plan.tick_rates)
    top = game.max_players
    out = {}
    for mode in plan.modes:
        seen = {f["clients"]: f for f in measured
                if f.get("kind") in ("load", "skipped", "failed") and f["mode"] == mode and f["tick_rate"] == rate
                and Cell(mode, f["clients"], entities, rate).key == f["key"]}
        probes = []
        for _ in range(plan.capacity_probes):
            lo, hi = _bracket(seen, top)
            if hi is None:  # everything measured fits: try the game's maximum
                if lo >= top or top in seen:
                    break
                clients = top
            elif hi - lo <= max(1, lo // 8):  # bracketed within an eighth: close enough
                break
            else:
                clients = (lo + hi) // 2
            if clients in seen or clients < 1:
                break
            seen[clients] = f = measure(Cell(mode, clients, entities, rate))
            probes.append(f)
        lo, hi = _bracket(seen, top)
        if lo == 0:
            limit = "none fits"
        elif lo == top:
            limit = "game maximum"  # capacity is at least this: the game takes no more players
        elif hi is None:
            limit = "untested above"
        elif seen[hi]["kind"] == "skipped":
            limit = f"the mode refuses {hi}: {seen[hi]['reason']}"
        else:
            limit = "tick budget"
        out[mode] = {
            "clients": lo,
            "first_over": hi,
            "limit": limit,
            "entities": entities,
            "tick_rate": rate,
            "budget_ms": 1000.0 / rate,
            "p99_by_clients": {str(c): f.get("tick_ms_p99") for c, f in sorted(seen.items())},
            "probes": probes,
        }
    return out


def _bracket(seen: dict[int, dict], top: int) -> tuple[int, int | None]:
    """(largest count that fits below the smallest that does not, that smallest or None)."""
    over = [c for c, f in seen.items() if not fits(f)]
    hi = min(over) if over else None
    fit = [c for c, f in seen.items() if fits(f) and (hi is None or c < hi)]
    return (max(fit) if fit else 0), hi
