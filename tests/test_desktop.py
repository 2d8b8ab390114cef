"""The desktop window (pygame-ce under SDL_VIDEODRIVER=dummy): ``ticksync play`` against a
real server on loopback in both modes, over UDP and WebSocket, playing a game that is no
demo (tests/blobs_game.py): frames are drawn, and the player's entity moves when keys are
posted as pygame events. ``replay --watch`` plays a recording, pauses, changes speed and
seeks. Bounded by --max-frames."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

pygame = pytest.importorskip("pygame", reason="pygame-ce is not installed (pip install 'ticksync[desktop]')")

import blobs_game  # noqa: E402  (tests/ is on the path: the game no demo ships)
from engine.replay import ReplayReader, record_run  # noqa: E402
from netcode.cli import main  # noqa: E402
from netcode.desktop.play import play  # noqa: E402
from netcode.desktop.watch import watch  # noqa: E402
from netcode.session.token import mint_token  # noqa: E402
from serving import SECRET, child_env, serving  # noqa: E402

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def dummy_video(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def key(kind, code):
    pygame.event.post(pygame.event.Event(kind, key=code, mod=0, unicode="", scancode=0))


class Script:
    """Frame hook: snapshots of the picture, and the right arrow held for ``hold`` frames
    once our entity is on screen."""

    def __init__(self, hold: int = 30):
        self.hold = hold
        self.pressed_at = None
        self.released_at = None
        self.pictures = {}

    def __call__(self, n, renderer, client):
        if n in (5, 25) or (self.released_at is not None and n == self.released_at + 5):
            self.pictures[n] = pygame.surfarray.array3d(renderer.surface).copy()
        if self.pressed_at is None and n >= 25 and client.connected and client.client.slot is not None:
            self.pressed_at = n
            key(pygame.KEYDOWN, pygame.K_RIGHT)
        elif self.pressed_at is not None and self.released_at is None and n == self.pressed_at + self.hold:
            self.released_at = n
            key(pygame.KEYUP, pygame.K_RIGHT)


@pytest.mark.network
@pytest.mark.parametrize("mode,transport", [("statesync", "game"), ("lockstep", "game"), ("statesync", "websocket")])
def test_play_draws_frames_and_the_posted_keys_move_our_player(mode, transport, tmp_path):
    with serving("blobs_game", mode, log=tmp_path / "serve.log") as urls:
        token = mint_token(SECRET.encode(), "default", expires=2e9, slot=-1, user="desk")
        script = Script()
        result = asyncio.run(play(blobs_game.GAME, urls[transport], token, max_frames=110, on_frame=script, size=(480, 360)))
    report = result.report
    assert report.played and report.slot == 0, report
    assert result.frames == 110 and result.why == "--max-frames reached"
    assert script.pressed_at is not None and script.released_at is not None
    before, moving = script.pictures[5], script.pictures[25]
    assert (before != moving).any(axis=2).sum() > 50, "the picture did not change: NPCs wander"
    shown = [p for p in result.own_positions[script.pressed_at - 1 :] if p is not None]
    start = result.own_positions[script.pressed_at - 1]
    assert start is not None
    # Held for 30 frames at 60 fps (~15 ticks of 40 units at 30 Hz), prediction or not.
    assert max(p[0] for p in shown) - start[0] >= 300, (start, shown[-1])
    assert abs(shown[-1][1] - start[1]) < 1, "only right was held"
    after = script.pictures[script.released_at + 5]
    assert (after != moving).any(axis=2).sum() > 50


@pytest.mark.network
def test_play_command_runs_bounded_and_prints_what_it_saw(tmp_path):
    with serving("blobs_game", "statesync", log=tmp_path / "serve.log") as urls:
        proc = subprocess.run(
            [sys.executable, "-m", "netcode.cli", "play", "blobs_game", urls["game"], "--max-frames", "40", "--size", "320x240"],
            env=child_env(SDL_VIDEODRIVER="dummy"), capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "40 frames drawn; slot 0; --max-frames reached; ok" in proc.stdout


def test_play_and_watch_say_in_one_line_what_is_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pygame", None)  # as if pygame-ce were not installed
    record_run(blobs_game.GAME, 1, 2, 30, tmp_path / "b.tsr", mode="offline")
    assert main(["replay", str(tmp_path / "b.tsr"), "--watch", "--game", "blobs_game", "--max-frames", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'ticksync[desktop]'" in err[0], err
    monkeypatch.setenv("TICKSYNC_SECRET", SECRET)
    assert main(["play", "blobs_game", "tcp://nowhere:1"]) == 2
    assert "udp://host:port" in capsys.readouterr().err
    assert main(["play", "blobs_game", "udp://127.0.0.1:9", "--max-frames", "0"]) == 2


def test_replay_watch_plays_pauses_speeds_up_and_seeks(tmp_path):
    path = tmp_path / "blobs.tsr"
    game = blobs_game.GAME
    record_run(game, 7, 3, 900, path, mode="offline", keyframe_every=150)
    reader = ReplayReader(path)
    log = {}

    def on_frame(n, renderer, player):
        log[n] = (player.tick, player.paused, player.speed, pygame.surfarray.array3d(renderer.surface).copy(), player.state.hash())
        if n == 20:
            key(pygame.KEYDOWN, pygame.K_SPACE)  # pause
        elif n == 40:
            key(pygame.KEYDOWN, pygame.K_SPACE)  # play on
            key(pygame.KEYDOWN, pygame.K_UP)  # x2
        elif n == 60:
            key(pygame.KEYDOWN, pygame.K_RIGHT)  # +5 s = 150 ticks

    result = watch(reader, game, max_frames=70, on_frame=on_frame, size=(400, 300))
    assert result.frames == 70 and result.why == "--max-frames reached"
    assert log[19][0] > log[2][0], "it plays"
    assert (log[2][3] != log[19][3]).any(axis=2).sum() > 50, "and the picture moves"
    assert log[25][1] and log[25][0] == log[38][0], "paused: the tick holds"
    assert not log[45][1] and log[45][2] == 2.0
    assert log[61][0] - log[60][0] >= 150, "seek jumped 5 s ahead"
    # What it shows is the recording's state at that tick, through the seeks and steps.
    assert result.tick == log[70][0] <= reader.ticks
    assert log[70][4] == _state_after(reader, game, result.tick).hash()


def _state_after(reader, game, tick):
    state = game.create(reader.seed, reader.players)
    for t in range(tick):
        game.step(state, reader.inputs(t), t)
    return state


@pytest.mark.parametrize("argv", [["--watch", "--start", "99999"], ["--watch", "--speed", "0"]])
def test_replay_watch_rejects_bad_options(argv, tmp_path, capsys):
    record_run(blobs_game.GAME, 1, 2, 30, tmp_path / "b.tsr", mode="offline")
    assert main(["replay", str(tmp_path / "b.tsr"), "--game", "blobs_game", "--max-frames", "1", *argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_replay_without_watch_is_unchanged(tmp_path, capsys):
    record_run(blobs_game.GAME, 1, 2, 30, tmp_path / "b.tsr", mode="offline")
    assert main(["replay", str(tmp_path / "b.tsr"), "--game", "blobs_game", "--verify"]) == 0
    assert "verified" in capsys.readouterr().out


def test_a_game_can_draw_itself_in_the_window(tmp_path):
    """A ``draw_desktop(surface, frame)`` method replaces the default drawing."""

    class Painted(blobs_game.Blobs):
        def draw_desktop(self, surface, frame):
            surface.fill((200, 10, 30), pygame.Rect(0, 250, 40, 40))  # below the HUD panel
            return int(frame.visible.sum())

    game = Painted()
    record_run(game, 1, 2, 30, tmp_path / "p.tsr", mode="offline")
    seen = []
    watch(ReplayReader(tmp_path / "p.tsr"), game, max_frames=2, size=(300, 300),
          on_frame=lambda n, r, p: seen.append(tuple(r.surface.get_at((10, 260)))[:3]))
    assert seen == [(200, 10, 30)] * 2


@pytest.mark.network
def test_a_held_mouse_button_is_a_key_the_controls_read(tmp_path):
    """Blobs grow while space or the left button is held: a posted click makes ours grow."""
    sizes = []

    def on_frame(n, renderer, client):
        c = client.client
        if getattr(c, "predicted", None) is not None and c.slot is not None:  # (auto mode tries lockstep first)
            sizes.append(int(c.predicted["size"][c.slot]))
            if len(sizes) == 10:
                pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(200, 150)))
            elif len(sizes) == 40:
                pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, button=1, pos=(200, 150)))

    with serving("blobs_game", "statesync", log=tmp_path / "serve.log") as urls:
        token = mint_token(SECRET.encode(), "default", expires=2e9, slot=-1, user="mouse")
        result = asyncio.run(play(blobs_game.GAME, urls["game"], token, max_frames=90, on_frame=on_frame, size=(400, 300)))
    assert result.report.played and len(sizes) > 45, (result.why, len(sizes))
    assert sizes[9] == 60 and max(sizes[10:45]) >= 70, sizes
