"""``ticksync replay FILE --watch``: a recording played back in the window.

The game re-simulates the recorded inputs at the recording's tick rate times the speed;
seeking jumps through the nearest keyframe (:func:`engine.replay.seek`), so a jump costs
at most one keyframe interval of steps. Keys: space pause, up/down (or +/-) speed x2 / /2,
right/left seek 5 s, home back to the start, escape quits. At the end it holds the last
state (paused) until closed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from engine.model import Game
from engine.replay import ReplayReader, seek
from engine.visuals import game_visuals

from netcode.desktop import load_pygame
from netcode.desktop.render import Frame, Renderer
from netcode.errors import UsageError

__all__ = ["WatchResult", "watch"]

SEEK_SECONDS = 5.0
SPEEDS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class WatchResult:
    frames: int = 0
    tick: int = 0  # the state shown last (state_tick: before tick's inputs)
    ticks_stepped: int = 0
    speed: float = 1.0
    paused: bool = False
    why: str = ""


class _Player:
    """Where the playback is: the state at ``tick`` and how fast it moves."""

    def __init__(self, reader: ReplayReader, game: Game, start: int, speed: float):
        self.reader, self.game = reader, game
        self.tick = min(max(0, start), reader.ticks)
        self.state = seek(reader, game, self.tick)
        self.speed = speed
        self.paused = False
        self.owed = 0.0  # fractional ticks carried to the next frame
        self.stepped = 0

    def advance(self, dt: float) -> None:
        if self.paused:
            return
        self.owed += dt * self.reader.tick_rate * self.speed
        n = min(int(self.owed), self.reader.ticks - self.tick)
        self.owed -= int(self.owed)
        for _ in range(n):
            self.game.step(self.state, self.reader.inputs(self.tick), self.tick)
            self.tick += 1
        self.stepped += n
        if self.tick >= self.reader.ticks:
            self.paused = True  # the end: hold the last state

    def jump(self, tick: int) -> None:
        self.tick = min(max(0, tick), self.reader.ticks)
        self.state = seek(self.reader, self.game, self.tick)
        self.owed = 0.0

    def faster(self, up: bool) -> None:
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - self.speed))
        self.speed = SPEEDS[min(len(SPEEDS) - 1, i + 1) if up else max(0, i - 1)]


def watch(
    reader: ReplayReader,
    game: Game,
    *,
    start: int = 0,
    speed: float = 1.0,
    size: tuple[int, int] = (960, 640),
    fps: float = 60.0,
    seconds: float | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[int, Renderer, "_Player"], Any] | None = None,
) -> WatchResult:
    """Play ``reader`` in a window until it is closed, ``seconds`` pass or ``max_frames``
    are drawn. ``on_frame(n, renderer, player)`` runs after each frame (tests post events)."""
    visuals = game_visuals(game)
    if visuals is None:
        raise UsageError(f"{game.describe()} declares no visuals and has no position field with a range to draw")
    if speed <= 0:
        raise UsageError("--speed must be positive")
    rep = game.replication
    pg = load_pygame()
    surface = pg.display.set_mode(size)
    pg.display.set_caption(f"ticksync replay · {game.describe()}")
    renderer = Renderer(pg, surface, visuals, rep, game)
    player = _Player(reader, game, start, speed)
    jump = int(SEEK_SECONDS * reader.tick_rate)
    result = WatchResult()
    began = last = time.perf_counter()
    period = 1.0 / fps
    try:
        while True:
            for ev in pg.event.get():
                if ev.type == pg.QUIT:
                    result.why = "window closed"
                elif ev.type == pg.KEYDOWN:
                    key = ev.key
                    if key == pg.K_ESCAPE:
                        result.why = "window closed"
                    elif key == pg.K_SPACE:
                        player.paused = not player.paused or player.tick >= reader.ticks
                    elif key in (pg.K_UP, pg.K_PLUS, pg.K_EQUALS, pg.K_KP_PLUS):
                        player.faster(True)
                    elif key in (pg.K_DOWN, pg.K_MINUS, pg.K_KP_MINUS):
                        player.faster(False)
                    elif key == pg.K_RIGHT:
                        player.jump(player.tick + jump)
                    elif key == pg.K_LEFT:
                        player.jump(player.tick - jump)
                    elif key == pg.K_HOME:
                        player.jump(0)
            if result.why:
                break
            now = time.perf_counter()
            player.advance(now - last)
            last = now
            state = player.state
            fields = {n: state[n] for n in rep.fields}
            frame = Frame(fields, np.asarray(state[rep.alive], bool), extras={n: state[n] for n in rep.extras})
            seconds_in = player.tick / reader.tick_rate
            hud = [
                f"replay {reader.game} {reader.game_version} · {reader.players} players · {reader.mode}",
                f"tick {player.tick}/{reader.ticks}   {seconds_in:.1f}/{reader.ticks / reader.tick_rate:.1f} s",
                f"speed x{player.speed:g}{'   PAUSED' if player.paused else ''}",
                "space pause · up/down speed · left/right 5 s · home start · esc quit",
            ]
            renderer.draw(frame, hud)
            pg.display.flip()
            result.frames += 1
            if on_frame is not None:
                on_frame(result.frames, renderer, player)
            if max_frames is not None and result.frames >= max_frames:
                result.why = "--max-frames reached"
                break
            if seconds is not None and time.perf_counter() - began >= seconds:
                result.why = "--seconds reached"
                break
            time.sleep(max(0.0, period - (time.perf_counter() - now)))
    finally:
        pg.display.quit()
    result.tick, result.ticks_stepped = player.tick, player.stepped
    result.speed, result.paused = player.speed, player.paused
    return result
