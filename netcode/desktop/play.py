"""``ticksync play``: one player in a window, over UDP or WebSocket, in either mode.

A :class:`~netcode.client.GameClient` runs the session at the room's tick rate (the same
driver bots use); beside it, a frame loop reads pygame events, builds the input record
from the game's controls, hands it to the client, and draws: in state sync everyone at the
render tick (interpolated) and our entity predicted; in lockstep the simulated state. The
HUD shows RTT, loss, snapshot (or frame) rate and prediction error: in state sync the
display correction still being smoothed away, in lockstep the ticks rolled back.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from engine.controls import game_controls
from engine.model import Game
from engine.visuals import game_visuals

from netcode.client import ClientReport, GameClient
from netcode.desktop import load_pygame
from netcode.desktop.keys import Held
from netcode.desktop.render import Frame, Renderer
from netcode.errors import UsageError
from netcode.events import RoomMoved, ServerGone

__all__ = ["PlayResult", "play"]


@dataclass
class PlayResult:
    frames: int = 0
    report: ClientReport | None = None
    own_positions: list = field(default_factory=list)  # our entity's shown position, per frame
    why: str = ""


class _Rate:
    """Events per second over the last second or so (snapshots, frames)."""

    def __init__(self):
        self.mark: tuple[float, int] | None = None
        self.value = 0.0

    def update(self, now: float, count: int) -> float:
        if self.mark is None:
            self.mark = (now, count)
        elif now - self.mark[0] >= 1.0:
            self.value = (count - self.mark[1]) / (now - self.mark[0])
            self.mark = (now, count)
        return self.value


def _frame(gc: GameClient, game: Game, visuals, now: float) -> Frame | None:
    """What the client holds now, as a Frame (None before it has a state)."""
    rep = game.replication
    client = gc.client
    slot = client.slot if client is not None else None
    own = game.player_entity(slot) if slot is not None and slot >= 0 else None
    if gc.runner is not None:  # lockstep: the simulated state is the picture
        state = gc.runner.state
        if state is None:
            return None
        fields = {n: state[n] for n in rep.fields}
        visible = np.asarray(state[rep.alive], bool)
        own_pos = visuals.positions(fields, rep)[own] if own is not None and own < len(visible) else None
        extras = {n: state[n] for n in rep.extras}
        return Frame(fields, visible, own, own_pos, extras, slot)
    view = client.remote_view(now) if client is not None and client.info is not None else None
    if view is None or client.predicted is None:
        return None
    own_pos = None
    if own is not None:
        own_pos = client.own_position()
        if own_pos is None:  # positions in an (x, y) pair of fields: read the prediction
            predicted = {n: client.predicted[n] for n in visuals.position_fields(rep)}
            own_pos = visuals.positions(predicted, rep)[own]
    extras = {n: client.predicted[n] for n in rep.extras}
    return Frame(dict(view.fields), np.asarray(view.visible, bool), own, own_pos, extras, slot)


def _hud(gc: GameClient, game: Game, rates: dict[str, _Rate], now: float, shown: int) -> list[str]:
    client = gc.client
    lines = [f"{game.describe()} · {gc.mode} · {gc.url}", f"status   {gc.report.status}"]
    conn = client.session.connection if client is not None else None
    if conn is None:
        return lines
    c = conn.counters
    loss = 100.0 * c.lost / max(1, c.acked + c.lost)
    rtt = f"{conn.rtt.rtt * 1e3:.1f} ms" if conn.rtt.samples else "-"
    lines.append(f"slot     {client.slot}   entities {shown}")
    lines.append(f"rtt      {rtt}   jitter {conn.rtt.jitter * 1e3:.1f} ms   loss {loss:.1f}%")
    if gc.runner is not None:
        hz = rates["in"].update(now, client.counters["frames"])
        lines.append(f"frames   {hz:.1f}/s   tick {gc.runner.tick}")
        lines.append(f"rollback {client.counters['rolled_back_ticks']} ticks in {client.counters['rollbacks']}")
    else:
        hz = rates["in"].update(now, client.counters["snapshots_complete"])
        lines.append(f"snapshots {hz:.1f}/s   tick {max(0, client.acked)}")
        error = float(np.hypot(*client.offset[:2])) if client.offset is not None and client.offset.size >= 2 else 0.0
        lines.append(f"pred err {error:.1f} units   corrections {client.counters['corrections']}")
    return lines


def _notice(ev) -> str:
    """One line for the window (and the terminal) about where the server went."""
    if isinstance(ev, ServerGone):
        then = "asking the cluster where the room went" if ev.relocating else "the run ends or retries this address"
        return f"server gone ({ev.reason}): {then}"
    if isinstance(ev, RoomMoved):
        return f"room {ev.room} moved to {ev.url}{f' (node {ev.node})' if ev.node else ''}: rejoined slot {ev.slot}"
    return repr(ev)


async def play(
    game: Game,
    url: str,
    token: bytes | str,
    *,
    mode: str = "auto",
    size: tuple[int, int] = (960, 640),
    fps: float = 60.0,
    seconds: float | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[int, Renderer, GameClient], Any] | None = None,
    ticket: dict | None = None,
    cluster: Sequence[str] = (),
) -> PlayResult:
    """Play until the window closes (or Escape), ``seconds`` pass, ``max_frames`` are drawn,
    or the server ends the session. ``on_frame(n, renderer, client)`` runs after each frame
    (tests post pygame events from it). ``ticket``: matchmaking's seat (then ``url`` and
    ``token`` are its own): when the server dies, the window says so and follows the room
    to the cluster node that resumes it (``cluster``: more nodes to ask)."""
    visuals = game_visuals(game)
    if visuals is None:
        raise UsageError(f"{game.describe()} declares no visuals and has no position field with a range to draw")
    controls = game_controls(game)
    pg = load_pygame()
    surface = pg.display.set_mode(size)
    pg.display.set_caption(f"ticksync · {game.describe()}")
    renderer = Renderer(pg, surface, visuals, game.replication, game)
    held = Held(pg)
    if ticket is not None:
        gc = GameClient.from_ticket(game, ticket, cluster=cluster, transport="udp" if url == ticket.get("udp") else "ws",
                                    name="desktop", mode=mode)
    else:
        gc = GameClient(game, url, token, name="desktop", mode=mode)
    notice = ""  # the newest "server gone" / "room moved", shown until the next one
    stop = asyncio.Event()
    result = PlayResult(report=gc.report)
    run = asyncio.create_task(gc.run(stop=stop))
    rates = {"in": _Rate()}
    aloop = asyncio.get_running_loop()
    start = time.perf_counter()
    period = 1.0 / fps
    try:
        while True:
            next_at = time.perf_counter() + period
            for ev in pg.event.get():
                if ev.type == pg.QUIT or (ev.type == pg.KEYDOWN and ev.key == pg.K_ESCAPE):
                    result.why = "window closed"
                held.feed(ev)
            if result.why:
                break
            for ev in gc.events():
                notice = _notice(ev)
                print(notice, flush=True)
            now = aloop.time()
            frame = _frame(gc, game, visuals, now) if gc.connected else None
            client = gc.client
            if frame is not None and controls is not None and client.slot is not None and client.slot >= 0:
                pointer = renderer.to_world(held.pointer) if held.pointer is not None else None
                aim = None
                if held.pointer is not None and frame.own_position is not None:
                    sx, sy = renderer.to_screen(frame.own_position)
                    aim = math.atan2(held.pointer[1] - sy, held.pointer[0] - sx)
                client.set_input(controls.record(game.input_dtype, held.keys, pointer, aim))
            if frame is not None:
                hud = _hud(gc, game, rates, time.perf_counter(), int(frame.visible.sum()))
                renderer.draw(frame, hud + ([notice] if notice else []))
                result.own_positions.append(None if frame.own_position is None else tuple(frame.own_position))
            else:
                surface.fill((16, 19, 22))
                renderer.panel([f"{game.describe()} · {gc.url}", f"status   {gc.report.status}", *([notice] if notice else [])], (8, 8))
            pg.display.flip()
            result.frames += 1
            if on_frame is not None:
                on_frame(result.frames, renderer, gc)
            if run.done():
                result.why = gc.report.status
                break
            if max_frames is not None and result.frames >= max_frames:
                result.why = "--max-frames reached"
                break
            if seconds is not None and time.perf_counter() - start >= seconds:
                result.why = "--seconds reached"
                break
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        stop.set()
        try:
            await asyncio.wait_for(run, 5.0)  # the client's loop ends at its next tick
        except asyncio.TimeoutError:
            pass  # (wait_for cancelled it)
        await gc.close()
        pg.display.quit()
    return result
