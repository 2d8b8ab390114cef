"""Arena: a top-down shooter with up to 64 players and ~1000 wandering NPCs.

Integer math throughout (positions are 16-bit fixed point, directions come from an integer
sine table), so every peer computes bit-identical states and lockstep works. Every
per-entity rule is a numpy operation over whole columns; the only Python loop is over
arrays, never over entities.

Entity slots 0..players-1 are the players (player slot i drives entity i); the rest are NPCs.
The first ``moving`` fraction of NPCs wander, the others stand still (benches use this to
set how much of the world changes per tick).

Shots are hitscan and lag-compensated: the state keeps the last ``HISTORY`` ticks of every
entity's position, and a shot is tested against the positions as they were ``view`` ticks
ago, where ``view`` is how far in the past the shooter's screen was (state sync fills it in
on the server from what the client acked; lockstep peers see the present, so it is 0).
"""

from __future__ import annotations

import numpy as np

from engine import Aim, Axis, Controls, Exact, Game, Int, Press, Replication, Sprite, State, Visuals, hash_u64, randint, random_u64, rng_state

WORLD = 65535  # positions are 0..WORLD in 1/16 px: a 4096 x 4096 px arena
PLAYER_SPEED = 96  # units per tick at full stick
NPC_SPEED = 48
HISTORY = 64  # ticks of position history kept for lag compensation (> 1 s at 60 Hz)
MAX_HP = 100
DAMAGE = 34
COOLDOWN = 12  # ticks between shots
TURN_EVERY = 4  # NPCs change course in batches every few ticks (fewer, larger numpy ops)
RESPAWN = 90  # ticks a dead entity waits
RANGE = 16000  # shot length in position units
RADIUS = 320  # hit radius in position units
TRIG_ONE = 1024  # sine table scale
_ANGLES = np.arange(256) * (2 * np.pi / 256)
COS = np.round(np.cos(_ANGLES) * TRIG_ONE).astype(np.int32)  # computed once, same everywhere
SIN = np.round(np.sin(_ANGLES) * TRIG_ONE).astype(np.int32)

FIRE = 1

INPUT_DTYPE = np.dtype([("move", "i1", (2,)), ("aim", "u1"), ("buttons", "u1"), ("view", "u1")])
# Stick deflection -127..127 to velocity, indexed by the stick's byte (int8 viewed as uint8).
_STICK = np.arange(256, dtype=np.int32)
_STICK = (np.where(_STICK < 128, _STICK, _STICK - 256) * PLAYER_SPEED // 127).astype(np.int32)


class Arena(Game):
    name = "arena"
    version = "1.0"
    input_dtype = INPUT_DTYPE
    max_players = 64
    tick_rate = 60
    input_limits = {"move": (-127, 127), "buttons": (0, FIRE), "view": (0, HISTORY - 1)}
    view_field = "view"  # the input field state sync sets to the shooter's view delay
    replication = Replication(
        alive="alive",
        fields={"pos": Int(0, WORLD), "aim": Int(0, 255), "hp": Int(0, MAX_HP), "kind": Exact()},
        position="pos",
        extras=("score",),
    )
    # The browser draws the arena with its own module (web/arena.js, the example of a custom
    # renderer); the desktop client and anything generic use the sprites.
    visuals = Visuals(
        world=(0, 0, WORLD, WORLD),
        sprites=(
            Sprite(when={"kind": 1}, size=2 * RADIUS * 1.4, heading="aim", bar="hp", bar_max=MAX_HP, color="#4cc9f0"),
            Sprite(size=2 * RADIUS, color="#6b7785", bar="hp", bar_max=MAX_HP),
        ),
        camera="follow",
        follow_span=16000,
        grid=4096,
        scores="score",
        web_renderer="arena.js",
    )
    controls = Controls(
        Axis("move", negative=("a", "left"), positive=("d", "right"), component=0, scale=127),
        Axis("move", negative=("w", "up"), positive=("s", "down"), component=1, scale=127),
        Aim("aim", turn=256),
        Press("buttons", keys=("space", "mouse1"), value=FIRE),
        help="WASD / arrows: move · mouse: aim · click / space: fire",
    )

    def __init__(self, npcs: int = 1000, moving: float = 1.0):
        if npcs < 0 or not 0.0 <= moving <= 1.0:
            raise ValueError("npcs must be >= 0 and moving a fraction in [0, 1]")
        self.npcs = npcs
        self.moving = moving
        self.movers = int(round(npcs * moving))

    def create(self, seed: int, players: int) -> State:
        self.check_players(players)
        n = players + self.npcs
        rng = rng_state(seed)
        pos = randint(rng, 2 * n, 0, WORLD + 1).astype(np.int32).reshape(n, 2)
        vel = np.zeros((n, 2), np.int32)
        movers = slice(players, players + self.movers)
        vel[movers] = randint(rng, 2 * self.movers, -NPC_SPEED, NPC_SPEED + 1).reshape(-1, 2)
        kind = np.full(n, 2, np.uint8)
        kind[:players] = 1
        return State(
            {
                "pos": pos,
                "vel": vel,
                "aim": np.zeros(n, np.uint8),
                "hp": np.full(n, MAX_HP, np.int16),
                "alive": np.ones(n, bool),
                "kind": kind,
                "respawn_at": np.zeros(n, np.int32),  # tick a dead entity comes back; 0 = alive
                "pending": np.int32(0),  # how many are waiting to respawn
                "ready_at": np.zeros(players, np.int32),  # tick a player may fire again
                "score": np.zeros(players, np.int32),
                "history": np.repeat(pos[None].astype(np.uint16), HISTORY, axis=0),  # (tick % H, n, 2)
                "rng": rng,
            }
        )

    def step(self, s: State, inputs: np.ndarray, tick: int) -> None:
        p = len(inputs)
        pos, vel = s.pos, s.vel
        vel[:p] = _STICK[inputs["move"].view(np.uint8)]
        s.aim[:p] = inputs["aim"]
        if self.movers and tick % TURN_EVERY == 0:
            self._turn_npcs(s, p)
        pos += vel
        out = pos.view(np.uint32) > WORLD  # negative coordinates wrap to huge: one compare
        if out.any():  # bounce off the walls
            np.negative(vel, out=vel, where=out)
            np.minimum(pos, WORLD, out=pos)
            np.maximum(pos, 0, out=pos)
        s.history[tick % HISTORY] = pos
        firing = np.flatnonzero(inputs["buttons"] & FIRE)
        if len(firing):
            self._shoot(s, firing, inputs["view"], tick)
        if s.pending:
            self._respawn(s, tick)

    def _turn_npcs(self, s: State, p: int) -> None:
        k = max(1, self.movers * TURN_EVERY // 32)  # each mover turns about every 32 ticks
        r = random_u64(s.rng, k)
        who = (r % np.uint64(self.movers)).astype(np.intp) + p
        span = np.uint64(2 * NPC_SPEED + 1)
        s.vel[who, 0] = ((r >> np.uint64(32)) % span).astype(np.int32) - NPC_SPEED
        s.vel[who, 1] = ((r >> np.uint64(48)) % span).astype(np.int32) - NPC_SPEED

    def _shoot(self, s: State, firing: np.ndarray, view: np.ndarray, tick: int) -> None:
        """``firing``: the players holding the trigger (slots, ascending)."""
        ready = s.ready_at
        shooters = firing[(ready[firing] <= tick) & s.alive[firing]]
        if not len(shooters):
            return
        ready[shooters] = tick + COOLDOWN
        # Targets where the shooter saw them: ``view`` ticks ago, from the history ring.
        # int32 is enough: |offset| < 2**16 and |trig| <= 2**10, so products stay < 2**27.
        rows = (tick - np.minimum(view[shooters], HISTORY - 1).astype(np.intp)) % HISTORY
        # x and y each as its own contiguous (shooters, entities) block: arithmetic on the
        # interleaved (.., 2) pairs reads with a stride and cost 3.5x as much (measured).
        seen = s.history[rows]
        origin = s.pos[shooters]
        dx = np.subtract(seen[..., 0], origin[:, :1], dtype=np.int32)
        dy = np.subtract(seen[..., 1], origin[:, 1:], dtype=np.int32)
        aim = s.aim[shooters]
        c, sn = COS[aim][:, None], SIN[aim][:, None]
        along = dx * c
        along += dy * sn
        across = dy * c
        across -= dx * sn
        # 0 < along < RANGE and |across| < RADIUS, each as one unsigned compare, in place
        # (along stays one less: the nearest target below is the same).
        along -= 1
        hit = along.view(np.uint32) < RANGE * TRIG_ONE - 1
        across += RADIUS * TRIG_ONE - 1
        hit &= across.view(np.uint32) < 2 * RADIUS * TRIG_ONE - 1
        hit &= s.alive
        hit[np.arange(len(shooters)), shooters] = False  # nobody shoots themselves
        landed = hit.any(axis=1)
        if not landed.any():
            return
        targets = np.where(hit, along, _FAR).argmin(axis=1)[landed]
        shooters = shooters[landed]
        # Several shots may hit one target: count them (bincount, not the slow ufunc.at).
        s.hp -= (np.bincount(targets, minlength=len(s.hp)) * DAMAGE).astype(s.hp.dtype)
        dead = np.flatnonzero(s.alive & (s.hp <= 0))
        if len(dead):
            killed = s.alive[targets] & (s.hp[targets] <= 0)  # this target is among the dead
            s.score += np.bincount(shooters[killed], minlength=len(s.score)).astype(s.score.dtype)
            s.alive[dead] = False
            s.respawn_at[dead] = tick + RESPAWN
            s.pending += len(dead)

    def _respawn(self, s: State, tick: int) -> None:
        due = np.flatnonzero(s.respawn_at == tick)
        if len(due):
            s.pos[due] = randint(s.rng, 2 * len(due), 0, WORLD + 1).reshape(-1, 2)
            s.hp[due] = MAX_HP
            s.alive[due] = True
            s.respawn_at[due] = 0
            s.pending -= len(due)

    def bot_inputs(self, s: State, tick: int, slots: np.ndarray) -> np.ndarray:
        """Bots hold a direction for a while, sweep their aim, and fire in bursts.

        Inputs change about every half second, as a person's do, so lockstep frames stay
        small; the choice depends only on (slot, tick) and the bot's own position.
        """
        slots = np.asarray(slots, dtype=np.int64)
        out = np.zeros(len(slots), dtype=INPUT_DTYPE)
        h = hash_u64(slots, (tick + slots * 7) // 30)
        move = np.stack([h % np.uint64(3), (h >> np.uint64(8)) % np.uint64(3)], axis=1).astype(np.int16)
        move = move * 127 - 127
        # Head back toward the middle when near a wall, so bots do not pile up in corners.
        where = s.pos[slots]
        move = np.where(where < 4096, 127, np.where(where > WORLD - 4096, -127, move))
        out["move"] = move
        out["aim"] = ((h >> np.uint64(16)) % np.uint64(256)).astype(np.uint8)
        out["buttons"] = ((((tick + slots * 5) // 15) % 4) == 0).astype(np.uint8) * FIRE
        return out


_FAR = np.iinfo(np.int32).max

GAME = Arena()
