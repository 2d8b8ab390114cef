"""One frame of any game, drawn with pygame from its declared visuals: the same rules as the
browser's generic view (``netcode/server/web/render.js``): the first matching sprite draws
an entity, colours by value from :func:`engine.visuals.palette`, our own entity on top with
an outline, a camera on the whole world or following us, a HUD and a score table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from engine.visuals import OWN_COLOR, Visuals, palette

__all__ = ["Frame", "Renderer"]

_HUD_BG = (0, 0, 0, 160)
_TEXT = (216, 221, 227)
_GRID = (30, 37, 44)
_BORDER = (74, 85, 96)


@dataclass
class Frame:
    """What to draw: per replicated field, values for every entity slot; which are shown;
    our entity and where we show it (None: spectating, or not placed yet)."""

    fields: dict[str, np.ndarray]
    visible: np.ndarray
    own_entity: int | None = None
    own_position: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    own_slot: int | None = None


def _rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


class Renderer:
    """Draws :class:`Frame` s of one game onto a pygame surface; after a frame,
    :meth:`to_screen` / :meth:`to_world` convert with that frame's camera."""

    def __init__(self, pygame, surface, visuals: Visuals, replication: Any, game: Any = None):
        self.pg = pygame
        self.surface = surface
        self.visuals = visuals
        self.replication = replication
        self.custom = getattr(game, "draw_desktop", None)  # the game draws itself
        self.font = pygame.font.Font(None, 18)
        self.scale = 1.0
        self.center = np.zeros(2)
        self._palette: dict[int, tuple[int, int, int]] = {}
        self._colors = [_rgb(s.color) for s in visuals.sprites]

    # -- camera ------------------------------------------------------------------------------
    def _camera(self, own: np.ndarray | None) -> None:
        w, h = self.surface.get_size()
        x0, y0, x1, y1 = self.visuals.world
        if self.visuals.camera == "follow" and own is not None:
            self.scale = min(w, h) / self.visuals.follow_span
            self.center = np.asarray(own, np.float64)
        else:
            self.scale = min(w / (x1 - x0), h / (y1 - y0)) / 1.05
            self.center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])

    def to_screen(self, world) -> np.ndarray:
        w, h = self.surface.get_size()
        return (np.asarray(world, np.float64) - self.center) * self.scale + (w / 2, h / 2)

    def to_world(self, screen) -> np.ndarray:
        w, h = self.surface.get_size()
        return (np.asarray(screen, np.float64) - (w / 2, h / 2)) / self.scale + self.center

    # -- drawing -----------------------------------------------------------------------------
    def draw(self, frame: Frame, hud: Sequence[str] = ()) -> int:
        """Draw ``frame`` and the HUD lines; returns how many entities were drawn."""
        self._camera(frame.own_position)
        self.surface.fill(_rgb(self.visuals.background))
        self._field()
        if self.custom is not None:
            shown = int(self.custom(self.surface, frame) or 0)
        else:
            shown = self._entities(frame)
        self.panel(hud, (8, 8))
        self._scores(frame)
        return shown

    def _field(self) -> None:
        pg, v = self.pg, self.visuals
        x0, y0, x1, y1 = v.world
        (sx0, sy0), (sx1, sy1) = self.to_screen((x0, y0)), self.to_screen((x1, y1))
        if v.grid:
            for g in np.arange(x0, x1 + 1e-9, v.grid):
                x = self.to_screen((g, y0))[0]
                pg.draw.line(self.surface, _GRID, (x, sy0), (x, sy1))
            for g in np.arange(y0, y1 + 1e-9, v.grid):
                y = self.to_screen((x0, g))[1]
                pg.draw.line(self.surface, _GRID, (sx0, y), (sx1, y))
        pg.draw.rect(self.surface, _BORDER, pg.Rect(sx0, sy0, sx1 - sx0, sy1 - sy0), 1)

    def _entities(self, frame: Frame) -> int:
        v = self.visuals
        fields = frame.fields
        which = v.assign(fields, frame.visible)
        pos = v.positions(fields, self.replication)
        own = frame.own_entity if frame.own_position is not None else None
        if own is not None and 0 <= own < len(which) and which[own] >= 0:
            pos = pos.copy()
            pos[own] = frame.own_position
        else:
            own = None
        screen = (pos - self.center) * self.scale + np.array(self.surface.get_size()) / 2
        shown = 0
        for i, sprite in enumerate(v.sprites):
            ents = np.flatnonzero(which == i)
            if own is not None:
                ents = ents[ents != own]  # ours is drawn last, on top
            if len(ents):
                self._sprites(sprite, i, fields, ents, screen)
                shown += len(ents)
        if own is not None:
            self._sprites(v.sprites[which[own]], int(which[own]), fields, np.array([own]), screen, outline=True)
            shown += 1
        return shown

    def _color(self, sprite, i: int, fields, e: int) -> tuple[int, int, int]:
        if sprite.color_by is None:
            return self._colors[i]
        value = int(round(float(np.asarray(fields[sprite.color_by]).reshape(len(fields[sprite.color_by]), -1)[e, 0])))
        hit = self._palette.get(value)
        if hit is None:
            hit = self._palette[value] = _rgb(palette(value))
        return hit

    def _sprites(self, sprite, i: int, fields, ents: np.ndarray, screen: np.ndarray, outline: bool = False) -> None:
        pg, surf = self.pg, self.surface
        sizes = np.maximum(self.visuals.sizes(sprite, fields, ents) * self.scale, 3.0)
        heading = None
        if sprite.heading:
            heading = np.asarray(fields[sprite.heading], np.float64).reshape(-1)[ents] / sprite.heading_turn * 2 * math.pi
        bar = np.asarray(fields[sprite.bar], np.float64).reshape(-1)[ents] if sprite.bar else None
        label = np.asarray(fields[sprite.label]).reshape(-1)[ents] if sprite.label else None
        for k, e in enumerate(ents):
            x, y = screen[e]
            w, h = sizes[k]
            color = self._color(sprite, i, fields, int(e))
            a = heading[k] if heading is not None else 0.0
            if sprite.shape == "rect":
                shape = pg.Rect(0, 0, max(1, round(w)), max(1, round(h)))
                shape.center = (round(x), round(y))
                pg.draw.rect(surf, color, shape)
                if outline:
                    pg.draw.rect(surf, _rgb(OWN_COLOR), shape, 2)
            elif sprite.shape == "triangle":
                c, s, r = math.cos(a), math.sin(a), w / 2
                pts = [(x + c * r, y + s * r), (x - c * r - s * r * 0.6, y - s * r + c * r * 0.6), (x - c * r + s * r * 0.6, y - s * r - c * r * 0.6)]
                pg.draw.polygon(surf, color, pts)
                if outline:
                    pg.draw.polygon(surf, _rgb(OWN_COLOR), pts, 2)
            else:
                pg.draw.circle(surf, color, (x, y), w / 2)
                if outline:
                    pg.draw.circle(surf, _rgb(OWN_COLOR), (x, y), w / 2, 2)
            if heading is not None and sprite.shape != "triangle":
                pg.draw.line(surf, color, (x, y), (x + math.cos(a) * w, y + math.sin(a) * w), 2)
            if bar is not None and bar[k] < sprite.bar_max:
                left, top = x - w / 2, y - h / 2 - 6
                pg.draw.rect(surf, (58, 17, 17), pg.Rect(left, top, w, 3))
                pg.draw.rect(surf, (229, 72, 77), pg.Rect(left, top, w * max(0.0, bar[k]) / sprite.bar_max, 3))
            if label is not None:
                v = label[k]
                text = f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)
                surf.blit(self.font.render(text, True, _TEXT), (x + w / 2 + 3, y - h / 2))

    def panel(self, lines: Sequence[str], at: tuple[int, int], right: bool = False) -> None:
        if not lines:
            return
        pg = self.pg
        rendered = [self.font.render(line, True, _TEXT) for line in lines]
        width = max(r.get_width() for r in rendered) + 12
        height = sum(r.get_height() for r in rendered) + 8
        x = at[0] - width if right else at[0]
        panel = pg.Surface((width, height), pg.SRCALPHA)
        panel.fill(_HUD_BG)
        self.surface.blit(panel, (x, at[1]))
        y = at[1] + 4
        for r in rendered:
            self.surface.blit(r, (x + 6, y))
            y += r.get_height()

    def _scores(self, frame: Frame) -> None:
        name = self.visuals.scores
        score = frame.extras.get(name) if name else None
        if score is None:
            return
        lines = ["score"] + [
            f"{'>' if slot == frame.own_slot else ' '} slot {slot:<3} {int(v):>5}" for slot, v in enumerate(np.ravel(score)) if v or slot == frame.own_slot
        ]
        self.panel(lines, (self.surface.get_width() - 8, 8), right=True)
