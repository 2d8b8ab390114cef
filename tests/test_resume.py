"""A match that survives its server: the recording a crashed server left goes on in the same
file (ReplayWriter.resume) and a TickServer restarts the room from it (resume_room); the
players come back with tokens for the room and play on without a desync, and
``replay --verify`` checks the whole match across the crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from engine import ReplayReader, load_game
from engine.replay import ReplayError, ReplayWriter, record_run, replay, seek
from helpers import eventually, run_bounded
from netcode import GameClient, TickServer
from netcode.session.token import mint_token
from serving import ROOT, SECRET, child_env, start_serve, stop

GAME = load_game("demos.arena")


def test_a_torn_recording_goes_on_in_the_same_file_and_verifies_whole(tmp_path):
    game = load_game("demos.pong")
    whole = tmp_path / "whole.tsr"
    final = record_run(game, 5, 2, 300, whole, hash_every=10, keyframe_every=100)
    torn = tmp_path / "torn.tsr"
    data = whole.read_bytes()
    reader = ReplayReader(whole)
    cut = next(r.offset for r in reader if r.tick == 250) + 5  # a crash mid-record at tick 250
    torn.write_bytes(data[:cut])

    writer, before = ReplayWriter.resume(torn, game)
    assert before.ticks == 250 and writer.next_tick == 250
    state = seek(before, game, 250)
    slots = np.arange(2)
    for t in range(250, 300):
        inputs = game.bot_inputs(state, t, slots)
        writer.record(t, inputs, state)
        game.step(state, inputs, t)
    writer.close(final_state=state)

    after = ReplayReader(torn)
    assert after.clean and after.ticks == 300
    result = replay(after, game, verify=True)
    assert result.ok and result.hashes_checked >= 30 and result.state.hash() == final.hash()
    # A clean file resumes too (its END and final hash go); another game's does not.
    writer, again = ReplayWriter.resume(torn, game)
    assert again.ticks == 300 and again.clean
    writer.abort()
    with pytest.raises(ReplayError):
        ReplayWriter.resume(torn, GAME)


@pytest.mark.network
@pytest.mark.parametrize("mode", ["statesync", "lockstep"])
def test_a_match_killed_with_its_server_resumes_on_another_from_its_recording(mode, tmp_path):
    record = tmp_path / "duel.tsr"
    args = ["demos.arena", "--mode", mode, "--room", "duel", "--players", "2", "--record", str(record), "--port", "0",
            "--ws-port", "0", "--status-every", "0", "--duration", "60"]
    proc, urls = start_serve(args, log=tmp_path / "first.log", env=child_env())
    secret = SECRET.encode()
    tokens = [mint_token(secret, "duel", expires=10**10, slot=s, user=f"p{s}") for s in range(2)]

    async def play(url: str, seconds: float) -> list:
        clients = [GameClient(GAME, url, tok, name=f"p{i}", bot=True, mode=mode) for i, tok in enumerate(tokens)]
        reports = await asyncio.gather(*(c.run(duration=seconds) for c in clients))
        for c in clients:
            await c.close()
        return list(reports)

    try:
        first = run_bounded(play(urls["game"], 2.0), 30)
        assert all(r.connects == 1 and r.desyncs == 0 for r in first), first
        os.kill(proc.pid, signal.SIGKILL)  # no goodbye, no END: the recording is cut wherever it was
        proc.wait(5)
    finally:
        if proc.poll() is None:
            stop(proc)
    crashed = ReplayReader(record)
    assert not crashed.clean and crashed.ticks > 60
    at = crashed.ticks

    async def resume():
        server = TickServer(secret=secret)
        room = server.resume_room(GAME, record)
        assert (room.name, room.config.mode, room.mode.tick) == ("duel", mode, at)
        assert room.mode.session.epoch == crashed.meta["epoch"]  # the same server, to its clients
        async with server:
            reports = await play(server.udp_url, 2.0)
            await eventually(lambda: room.mode.tick > at + 60, "the resumed room ticking")
        return room, reports

    room, second = run_bounded(resume(), 40)
    assert all(r.connects == 1 and r.slot == i and r.desyncs == 0 and r.ticks > 30 for i, r in enumerate(second)), second
    assert room.desyncs == 0
    whole = ReplayReader(record)
    assert whole.clean and whole.ticks > at + 60
    result = replay(whole, GAME, verify=True)
    assert result.ok and result.hashes_checked > 2, result
    print(f"\n{mode}: crashed at tick {at}, resumed, {whole.ticks} ticks in one file, {result.hashes_checked} hashes and "
          f"{result.keyframes_checked} keyframes verified; the players' ticks after: {[r.ticks for r in second]}")
    # The command line verifies it too, across the crash.
    done = subprocess.run([sys.executable, "-m", "netcode.cli", "replay", str(record), "--verify"], capture_output=True,
                          text=True, env=child_env(), cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
