"""Swarm demo: determinism, the game rules, its 3-byte input, and a 64-player lockstep match."""

import io

import numpy as np
from demos.swarm import GAME, INPUT_DTYPE, Swarm
from demos.swarm.game import CELL, HOLD, MAX_HP, OFFSETS, RALLY, RECALL, RESPAWN, SPEED, UNITS
from engine.check import check
from engine.model import load_game
from engine.replay import ReplayReader, ReplayWriter
from helpers import SECRET, LockstepMatch
from netcode.events import DesyncDetected
from netcode.lockstep.frames import encode_frame
from netcode.lockstep.server import LockstepConfig, LockstepServer
from netcode.sim.network import LinkConfig
from netcode.session.wire import MAX_PACKET, SESSION_HEADER_SIZE


def orders(players: int, **by_slot: tuple[int, int, int]) -> np.ndarray:
    """Inputs for one tick: ``p3=(cmd, x, y)`` gives slot 3 that order, everyone else holds."""
    out = np.zeros(players, INPUT_DTYPE)
    for key, value in by_slot.items():
        out[int(key[1:])] = value
    return out


def squad(slot: int) -> slice:
    return slice(slot * UNITS, (slot + 1) * UNITS)


def test_the_game_is_deterministic():
    result = check("demos.swarm", ticks=300, other_process=False)
    assert result.ok, result.describe()


def test_deterministic_with_fights_and_respawns_in_another_process():
    # 64 players fight from the first ticks and the first dead respawn before tick 300, so
    # this covers every rule; the other process runs with another PYTHONHASHSEED.
    result = check("demos.swarm", ticks=300, players=64, other_process=True)
    assert result.ok, result.describe()


def test_module_exports_a_game_with_small_inputs():
    game = load_game("demos.swarm")
    assert isinstance(game, Swarm) and game is GAME
    assert game.input_dtype.itemsize == 3 and game.max_players == 256
    assert game.replication is not None
    state = game.create(3, 256)
    assert state.pos.shape == (256 * UNITS, 2) and state.score.shape == (256,)
    for name in (game.replication.alive, *game.replication.fields, *game.replication.extras):
        assert name in state
    # Out-of-range commands are clamped like any network input.
    bad = np.array([(200, 5, 6)], INPUT_DTYPE)
    assert game.sanitize_inputs(bad) == 1 and bad["cmd"][0] == RECALL


def test_a_frame_of_256_changed_inputs_fits_one_packet():
    rng = np.random.default_rng(0)
    prev = np.zeros((256, 3), np.uint8)
    cur = rng.integers(1, 256, (256, 3), dtype=np.uint8)  # every byte of every player changed
    # Room left beside the session header and the frames/run headers (16 bytes at most).
    assert len(encode_frame(prev, cur, np.ones(256, bool))) <= MAX_PACKET - SESSION_HEADER_SIZE - 16
    # The server agrees: it refuses a room whose worst-case frame would not fit a packet.
    LockstepServer(GAME, LockstepConfig(players=256), secret=SECRET)


def test_units_walk_to_the_rally_point_and_the_others_hold():
    game = Swarm()
    s = game.create(5, 2)
    s.base = [(10_000, 10_000), (50_000, 50_000)]  # far apart: no fights
    s.pos[squad(0)] = np.array([10_000, 10_000]) + OFFSETS
    s.rally[0] = s.base[0]
    start1 = s.pos[squad(1)].copy()
    target = np.array([20 * CELL + CELL // 2, 30 * CELL + CELL // 2]) + OFFSETS
    game.step(s, orders(2, p0=(RALLY, 20, 30)), 0)
    arrived = None
    for t in range(1, 400):
        before = s.pos[squad(0)].copy()
        game.step(s, orders(2), t)  # HOLD: the order stands
        moved = np.abs(s.pos[squad(0)] - before)
        assert moved.max() <= SPEED
        assert (np.abs(target - s.pos[squad(0)]) <= np.abs(target - before)).all()
        if arrived is None and (s.pos[squad(0)] == target).all():
            arrived = t
    # A walk of ~4750 units at SPEED per tick, then the squad stands in formation there.
    assert arrived is not None and 4750 // SPEED - 2 <= arrived <= 4750 // SPEED + 2, arrived
    assert (s.pos[squad(0)] == target).all()
    assert (s.pos[squad(1)] == start1).all()  # player 1 never gave an order
    # Recall: back to base.
    game.step(s, orders(2, p0=(RECALL, 0, 0)), 400)
    for t in range(401, 800):
        game.step(s, orders(2), t)
    assert (s.pos[squad(0)] == s.base[0] + OFFSETS).all()
    assert s.hp.min() == MAX_HP and s.score.sum() == 0


def test_squads_that_meet_fight_and_the_dead_respawn_at_base():
    game = Swarm()
    s = game.create(9, 3)
    s.base = [(10_000, 10_000), (12_000, 10_000), (40_000, 40_000)]
    for p in range(3):
        s.pos[squad(p)] = s.base[p] + OFFSETS
        s.rally[p] = s.base[p]
    # Players 0 and 1 send their squads to the same cell; player 2 stays home alone.
    game.step(s, orders(3, p0=(RALLY, 43, 40), p1=(RALLY, 43, 40)), 0)
    first_death = None
    for t in range(1, 300):
        game.step(s, orders(3), t)
        if first_death is None and s.lost.sum():
            first_death = t
    assert first_death is not None
    assert s.hp[squad(0)].min() < MAX_HP and s.hp[squad(1)].min() < MAX_HP
    assert s.score[0] + s.score[1] == s.lost[0] + s.lost[1] > 0  # a kill for every loss
    assert s.score[2] == s.lost[2] == 0 and (s.hp[squad(2)] == MAX_HP).all()
    # Units of one owner never fight each other: a lone squad bunched up loses nothing.
    solo = game.create(1, 1)
    solo.pos[:] = solo.pos[0]
    for t in range(100):
        game.step(solo, orders(1), t)
    assert (solo.hp == MAX_HP).all()
    # A dead unit comes back at its base RESPAWN ticks after it died, with full hp.
    t = 300
    while s.alive.all():
        game.step(s, orders(3), t)
        t += 1
    unit = int(np.flatnonzero(~s.alive)[0])
    due = int(s.respawn_at[unit])
    assert t <= due <= t + RESPAWN
    while t < due:
        game.step(s, orders(3), t)
        assert not s.alive[unit]
        t += 1
    game.step(s, orders(3), due)
    assert s.alive[unit] and s.hp[unit] == MAX_HP
    assert (s.pos[unit] == s.base[unit // UNITS] + OFFSETS[unit % UNITS]).all()


def test_bots_change_orders_rarely_and_reproducibly():
    game = Swarm()
    s = game.create(2, 256)
    slots = np.arange(256)
    frames = np.stack([game.bot_inputs(s, t, slots) for t in range(600)])
    again = np.stack([game.bot_inputs(s, t, slots) for t in range(600)])
    assert (frames == again).all()
    changes = (frames[1:] != frames[:-1]).sum(axis=0)
    assert changes.max() <= 4  # 10 s: every 3-5 s per bot
    per_tick = (frames[1:] != frames[:-1]).sum(axis=1)
    assert per_tick.max() <= 16  # staggered: never everyone at once
    assert set(np.unique(frames["cmd"])) <= {RALLY, RECALL} and HOLD == 0
    # One slot asked alone gets what it gets in the crowd.
    assert game.bot_inputs(s, 123, np.array([77]))[0] == frames[123][77]


def test_sixty_four_players_in_lockstep_agree_with_the_server(seed):
    players = 64
    buf = io.BytesIO()
    recorder = ReplayWriter(buf, GAME, seed % 1000, players, 60, "lockstep", hash_every=60, keyframe_every=3600)
    link = LinkConfig(latency=0.03, jitter=0.01, loss=0.05)
    match = LockstepMatch(GAME, players, seed=seed, link=link, recorder=recorder)
    for i in range(players):
        match.add_client(f"c{i}", slot=i)
    match.run(10.0)
    recorder.close(final_state=match.server.state)
    truth = ReplayReader(buf.getvalue()).hashes
    assert len(truth) >= 9
    for name in match.clients:
        reported = match.hashes[name]
        assert len(reported) >= 7, (name, len(reported))
        assert match.server_hash_mismatches(name, truth) == {}
    assert not [e for e in match.server_events if isinstance(e, DesyncDetected)]
    assert match.server.state.score.sum() > 0  # the squads fought


def _crowded_states_digest(players: int, seed: int, ticks: int) -> int:
    """XXH3 of the state hashes over ``ticks`` steps from a random crowded state (units
    packed in a few cells, random hp, some dead and due back), with random orders."""
    import xxhash

    rng = np.random.default_rng(seed)
    game = Swarm()
    s = game.create(seed, players)
    n = players * UNITS
    s.pos = rng.integers(30_000, 30_000 + 2_000, (n, 2)).astype(np.int32)
    s.hp = rng.integers(1, MAX_HP + 1, n).astype(np.int16)
    s.alive = rng.random(n) < 0.9
    s.respawn_at = np.where(s.alive, 0, rng.integers(0, ticks, n)).astype(np.int32)
    s.hp[~s.alive] = 0
    s.rally = rng.integers(30_000, 32_000, (players, 2)).astype(np.int32)  # squads stay in the crowd
    digest = xxhash.xxh3_64()
    for t in range(ticks):
        inputs = np.zeros(players, INPUT_DTYPE)
        inputs["cmd"] = rng.integers(0, 3, players) * (rng.random(players) < 0.1)
        inputs["x"] = rng.integers(115, 125, players)
        inputs["y"] = rng.integers(115, 125, players)
        game.step(s, inputs, t)
        digest.update(s.hash().to_bytes(8, "little"))
    return digest.intdigest()


def test_the_step_gives_the_results_it_always_has():
    """Replays and peers of other versions depend on every bit of the step: these digests
    were computed by the original argsort/unique step, before it was made cheaper."""
    assert _crowded_states_digest(2, 1, 300) == GOLDEN[0]
    assert _crowded_states_digest(17, 2, 300) == GOLDEN[1]
    assert _crowded_states_digest(256, 3, 200) == GOLDEN[2]


GOLDEN = (0xFD6AE748398ECB2D, 0x92E5A75349964DB0, 0xE21F80A50172FA4D)
