"""Swarm: a tiny real-time strategy game with many units, built for lockstep at 256 players.

Every player owns ``UNITS`` units and one base. A player's only order is a *rally point*
(a cell on a 256 x 256 grid) or a recall to base; their units walk toward it in a small
formation at a fixed speed. Units of different owners that come within ``RADIUS`` of each
other fight: each contact costs both ``DAMAGE`` hp per tick. A unit at 0 hp dies, scores a
kill for the owner of one unit that hit it, and respawns at its owner's base ``RESPAWN``
ticks later (then walks back to the rally point).

Why it looks like this:

* The input is 3 bytes per player (command + rally cell), and it changes only when the
  player gives a new order, so a lockstep frame of 256 players fits one 1200-byte packet
  even if everyone changes orders at once, and is a byte or two when nobody does.
* Integer math only (positions are 0..WORLD, 256 position units to a grid cell), so every
  peer computes bit-identical states.
* No Python loop over units or players: movement is a few whole-column operations, and
  the fight test is sort-based. Units are sorted by (grid cell, an interleaving of owners)
  and each is compared with its next ``NEIGHBOURS`` in that order; two units fight when
  they share a cell, have different owners and are within ``RADIUS``. Interleaving owners
  inside a cell means consecutive units mostly belong to different players, so a
  crowded cell still produces fights. The grid is shifted by half a cell on odd ticks so
  that pairs straddling a cell border are found every other tick. It is an approximation
  (a unit in a very crowded cell only fights its sorted neighbours), which is the point:
  the cost is one sort of the units' keys plus O(units) work, whatever the crowding.
"""

from __future__ import annotations

import numpy as np

from engine import Controls, Exact, Game, Int, Point, Press, Replication, Sprite, State, Visuals, hash_u64, randint, rng_state

GRID = 256  # rally cells per axis (one input byte each)
CELL = 256  # position units per rally cell
WORLD = GRID * CELL - 1  # positions are 0..WORLD on both axes
UNITS = 8  # units per player: 256 players = 2048 units
SPEED = 80  # position units per tick on each axis (a unit crosses the world in ~14 s)
MAX_HP = 100
DAMAGE = 3  # hp per contact per tick: a one-on-one fight lasts about half a second
RADIUS = 160  # units closer than this (Euclidean) fight
RESPAWN = 180  # ticks a dead unit waits before reappearing at its base
FIGHT_SHIFT = 9  # the fight grid has 2**9-unit cells (>= RADIUS, so few pairs are missed)
NEIGHBOURS = 3  # each unit is compared with this many next units in sorted order
POINTS = 8  # control points bots fight over
BASE_MARGIN = 4 * CELL  # bases stay this far from the edge
_RANK_BITS = 11  # 2**11 = 2048 = 256 players x 8 units: the interleaving fits below the cell
_RANK_MASK = (1 << _RANK_BITS) - 1

# Formation: where each of a player's units stands around the rally point (a 3 x 3 block
# without its centre, 96 units apart), so a squad does not collapse onto one point.
OFFSETS = np.array([(-96, -96), (0, -96), (96, -96), (-96, 0), (96, 0), (-96, 96), (0, 96), (96, 96)], np.int32)

HOLD, RALLY, RECALL = 0, 1, 2  # commands; HOLD (the neutral input) keeps the current order

INPUT_DTYPE = np.dtype([("cmd", "u1"), ("x", "u1"), ("y", "u1")])

_DEAD_KEY = 1 << 30  # sort-key bit: dead units sort after every live one


class _Layout:
    """Per-player-count constants: which player owns each unit, its rank in the squad, and
    its place in the owner-interleaved order. Pure functions of ``players`` (cached, never
    mutated), so keeping them outside the state does not break rollback or replay."""

    def __init__(self, players: int):
        n = players * UNITS
        unit = np.arange(n)
        self.owner = (unit // UNITS).astype(np.intp)
        self.rank = unit % UNITS
        self.interleave = (self.rank * players + self.owner).astype(np.int32)  # a bijection onto 0..n-1
        self.unit_of = np.argsort(self.interleave)  # its inverse: the unit at each interleave
        self.offsets = OFFSETS[self.rank]


_layouts: dict[int, _Layout] = {}


def _layout(players: int) -> _Layout:
    hit = _layouts.get(players)
    if hit is None:
        hit = _layouts[players] = _Layout(players)
    return hit


class Swarm(Game):
    name = "swarm"
    version = "1.0"
    input_dtype = INPUT_DTYPE
    max_players = 256
    tick_rate = 60
    input_limits = {"cmd": (HOLD, RECALL), "x": (0, GRID - 1), "y": (0, GRID - 1)}
    replication = Replication(
        alive="alive",
        fields={"pos": Int(0, WORLD), "hp": Int(0, MAX_HP), "owner": Exact()},
        position="pos",
        extras=("score",),
    )
    visuals = Visuals(
        world=(0, 0, WORLD, WORLD),
        sprites=(Sprite(size=2 * RADIUS, color_by="owner", bar="hp", bar_max=MAX_HP),),
        grid=16 * CELL,
        scores="score",
    )
    controls = Controls(
        Point("x", "y", per=CELL, keys=("mouse1",)),
        Press("cmd", keys=("mouse1",), value=RALLY),
        Press("cmd", keys=("r",), value=RECALL),
        help="click: rally your squad there · R: recall to base",
    )

    def create(self, seed: int, players: int) -> State:
        self.check_players(players)
        rng = rng_state(seed)  # only for the map: the rules themselves draw no random numbers
        lay = _layout(players)
        base = randint(rng, 2 * players, BASE_MARGIN, WORLD + 1 - BASE_MARGIN).astype(np.int32).reshape(players, 2)
        points = randint(rng, 2 * POINTS, 8, GRID - 8).astype(np.int32).reshape(POINTS, 2)  # in cells
        return State(
            {
                "pos": base[lay.owner] + lay.offsets,
                "hp": np.full(players * UNITS, MAX_HP, np.int16),
                "alive": np.ones(players * UNITS, bool),
                "owner": lay.owner.astype(np.uint8),  # replicated so clients can colour units
                "respawn_at": np.zeros(players * UNITS, np.int32),  # tick a dead unit returns
                "base": base,
                "rally": base.copy(),  # every squad starts holding at its base
                "points": points,  # control points (cells): where bots send their squads
                "score": np.zeros(players, np.int32),  # kills
                "lost": np.zeros(players, np.int32),  # units lost
            }
        )

    # -- the step ---------------------------------------------------------------------------
    def step(self, s: State, inputs: np.ndarray, tick: int) -> None:
        lay = _layout(len(inputs))
        self._orders(s, inputs)
        alive = s.alive
        pos = s.pos
        # Walk toward the rally point plus the unit's formation offset, SPEED per axis. No
        # clamp needed: rally points are cell centres, so the target is always in the world.
        delta = lay.offsets - pos
        delta.reshape(len(inputs), UNITS, 2)[...] += s.rally[:, None, :]  # each squad's rally point
        np.minimum(delta, SPEED, out=delta)
        np.maximum(delta, -SPEED, out=delta)
        np.multiply(delta, alive[:, None], out=delta)  # the dead stay where they fell (hidden)
        pos += delta
        self._fight(s, lay, tick)
        due = s.respawn_at == tick
        if due.any():
            self._respawn(s, lay, np.flatnonzero(due & ~alive))

    @staticmethod
    def _orders(s: State, inputs: np.ndarray) -> None:
        cmd = inputs["cmd"]
        if not cmd.any():  # everyone holds: nothing to do
            return
        cells = np.empty((len(inputs), 2), np.int32)
        cells[:, 0] = inputs["x"]
        cells[:, 1] = inputs["y"]
        cells *= CELL
        cells += CELL // 2  # the centre of the cell
        np.copyto(s.rally, cells, where=(cmd == RALLY)[:, None])
        recall = cmd == RECALL
        if recall.any():
            np.copyto(s.rally, s.base, where=recall[:, None])

    @staticmethod
    def _fight(s: State, lay: _Layout, tick: int) -> None:
        alive = s.alive
        live = int(np.count_nonzero(alive))
        if live < 2:
            return
        pos = s.pos
        # Sort key: fight-grid cell, then the owner interleave (< 2**11). Cells are < 2**8 per
        # axis, so the key fits int32; dead units get bit 30 and sort after every live one.
        cells = pos + ((tick & 1) << (FIGHT_SHIFT - 1))  # odd ticks: grid moved by half a cell
        cells >>= FIGHT_SHIFT
        key = cells[:, 0] << (8 + _RANK_BITS)
        key |= cells[:, 1] << _RANK_BITS
        key |= lay.interleave
        np.bitwise_or(key, _DEAD_KEY, out=key, where=~alive)
        # Keys are unique (the interleave is a bijection), so the order does not depend on
        # the sort algorithm: every peer gets the same one. Sorting the keys themselves is
        # cheaper than argsort, and a live key's low bits name its unit.
        sorted_keys = np.sort(key)[:live]
        order = lay.unit_of[sorted_keys & _RANK_MASK]
        # Gather the sorted columns once, padded with NEIGHBOURS sentinels (cell -1 matches
        # no one) so that comparing with the k-th next unit is a plain slice.
        pad = live + NEIGHBOURS
        cell = np.full(pad, -1, np.int32)
        np.right_shift(sorted_keys, _RANK_BITS, out=cell[:live])
        owner = np.take(lay.owner, order)
        x = np.zeros(pad, np.int32)
        y = np.zeros(pad, np.int32)
        np.take(pos[:, 0], order, out=x[:live])
        np.take(pos[:, 1], order, out=y[:live])
        close = np.empty((NEIGHBOURS, live), bool)
        here, d2, dy = cell[:live], np.empty(live, np.int32), np.empty(live, np.int32)
        for k in range(1, NEIGHBOURS + 1):  # a loop over neighbours, not units
            row = close[k - 1]
            np.subtract(x[k : k + live], x[:live], out=d2)
            np.subtract(y[k : k + live], y[:live], out=dy)
            d2 *= d2  # may wrap for units in different cells; the cell test drops those
            dy *= dy
            d2 += dy
            np.less(d2, RADIUS * RADIUS, out=row)
            row &= cell[k : k + live] == here
            row[: live - k] &= owner[k:] != owner[: live - k]
        k, i = np.nonzero(close)  # contacts in a fixed order (k, then sorted position)
        if not len(i):
            return
        a = order[i]
        b = order[i + k + 1]
        # Every contact hurts both sides; (targets[j], attackers[j]) is one hit.
        targets = np.concatenate([a, b])
        attackers = np.concatenate([b, a])
        hp = s.hp
        hp -= (np.bincount(targets, minlength=len(hp)) * DAMAGE).astype(hp.dtype)
        died = alive & (hp <= 0)
        if not died.any():
            return
        hp[died] = 0
        alive[died] = False
        s.respawn_at[died] = tick + RESPAWN
        # One kill per dead unit, credited to the first hit on it in contact order. (unique
        # sorts only the few fatal hits: cheaper than any pass over all the units.)
        fatal = died[targets]
        victims, first = np.unique(targets[fatal], return_index=True)
        killers = lay.owner[attackers[fatal][first]]
        players = len(s.score)
        s.score += np.bincount(killers, minlength=players).astype(np.int32)
        s.lost += np.bincount(lay.owner[victims], minlength=players).astype(np.int32)

    @staticmethod
    def _respawn(s: State, lay: _Layout, due: np.ndarray) -> None:
        if not len(due):
            return
        s.pos[due] = s.base[lay.owner[due]] + lay.offsets[due]
        s.hp[due] = MAX_HP
        s.alive[due] = True
        s.respawn_at[due] = 0

    # -- bots -------------------------------------------------------------------------------
    def bot_inputs(self, s: State, tick: int, slots: np.ndarray) -> np.ndarray:
        """Bots give a new order every 3-5 s, as a person would, staggered by slot so orders
        do not all change on one tick: usually a rally near one of the control points (so
        squads meet and fight), sometimes a random cell, sometimes a recall to base.

        Depends only on (slot, tick) and the control points in the state."""
        slots = np.asarray(slots, dtype=np.int64)
        period = 180 + (slots * 37) % 121  # ticks per order: 3..5 s, different per slot
        epoch = (tick + slots * 53) // period
        h = hash_u64(slots, epoch)
        kind = h % np.uint64(8)
        point = s.points[((h >> np.uint64(8)) % np.uint64(POINTS)).astype(np.intp)]
        jitter = ((h >> np.uint64(16)) % np.uint64(5)).astype(np.int32) - 2  # within 2 cells
        anywhere = np.stack([(h >> np.uint64(24)) % np.uint64(GRID), (h >> np.uint64(32)) % np.uint64(GRID)], axis=1)
        cell = np.where((kind == 7)[:, None], anywhere.astype(np.int32), point + jitter[:, None])
        out = np.zeros(len(slots), dtype=INPUT_DTYPE)
        out["cmd"] = np.where(kind == 6, RECALL, RALLY)
        out["x"] = np.clip(cell[:, 0], 0, GRID - 1)
        out["y"] = np.clip(cell[:, 1], 0, GRID - 1)
        return out


GAME = Swarm()
