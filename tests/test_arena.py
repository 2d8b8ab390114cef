"""Arena rules that the netcode relies on: lag-compensated shots, respawns, bots."""

import numpy as np

from demos.arena import Arena
from demos.arena.game import COOLDOWN, DAMAGE, FIRE, HISTORY, MAX_HP, RESPAWN


def shooting_range(view: int):
    """Player 0 at the origin aims along +x; player 1 crosses the line of fire from above
    and has already left it when the shot is taken at tick 20."""
    g = Arena(npcs=0)
    s = g.create(1, 2)
    s.pos[0] = (1000, 30000)
    s.pos[1] = (5000, 30000 + 96 * 6)  # 96 units a tick: in the line of fire after 6 ticks
    inputs = g.neutral_inputs(2)
    for t in range(20):
        inputs["move"][1] = (0, -127 if t < 10 else 0)  # walk down through y=30000, then stop below
        g.step(s, inputs, t)
    assert abs(int(s.pos[1, 1]) - 30000) > 320  # out of the line of fire (hit radius 320) now
    inputs["move"][1] = (0, 0)
    inputs["buttons"][0] = FIRE
    inputs["view"][0] = view
    g.step(s, inputs, 20)
    return s


def test_a_shot_is_judged_where_the_shooter_saw_the_target():
    # 12 ticks ago player 1 was crossing y=30000: the rewound shot hits.
    assert shooting_range(view=12).hp[1] == MAX_HP - DAMAGE
    # Judged at the present the same shot misses.
    assert shooting_range(view=0).hp[1] == MAX_HP


def test_view_is_clamped_to_the_history_kept():
    g = Arena(npcs=0)
    inputs = g.neutral_inputs(1)
    inputs["view"] = 250
    assert g.sanitize_inputs(inputs) == 1 and inputs["view"][0] == HISTORY - 1


def test_dead_entities_respawn_after_the_delay():
    g = Arena(npcs=0)
    s = g.create(1, 2)
    s.pos[0] = (1000, 30000)
    s.pos[1] = (3000, 30000)
    inputs = g.neutral_inputs(2)
    inputs["buttons"][0] = FIRE
    t = 0
    while s.alive[1]:
        g.step(s, inputs, t)
        t += 1
        assert t < 10 * COOLDOWN
    died = t
    assert s.score[0] == 1
    inputs["buttons"][0] = 0
    while not s.alive[1]:
        g.step(s, inputs, t)
        t += 1
    assert t - died == RESPAWN and s.hp[1] == MAX_HP


def test_bots_change_inputs_rarely():
    g = Arena(npcs=0)
    s = g.create(1, 8)
    changes = 0
    prev = g.bot_inputs(s, 0, np.arange(8))
    for t in range(1, 600):
        cur = g.bot_inputs(s, t, np.arange(8))
        changes += int((cur != prev).sum())
        prev = cur
    assert changes < 8 * 600 / 8  # a few times a second at most, like a person
