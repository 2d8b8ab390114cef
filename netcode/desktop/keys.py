"""pygame events to what controls read: the held key names (engine.controls.KEY_NAMES) and
the pointer in window pixels. Held keys are tracked from KEYDOWN/KEYUP events (not polled),
so events a test posts count the same as a person's."""

from __future__ import annotations

from engine.controls import KEY_NAMES

__all__ = ["Held", "key_name"]

_RENAMED = {"left shift": "shift", "right shift": "shift", "return": "enter", "keypad enter": "enter"}


def key_name(pygame, key: int) -> str | None:
    """The controls' name for a pygame key code, or None for a key no game binds."""
    name = _RENAMED.get(pygame.key.name(key), pygame.key.name(key))
    return name if name in KEY_NAMES else None


class Held:
    """The keys and mouse buttons held now, and the pointer; fed every pygame event."""

    def __init__(self, pygame):
        self.pg = pygame
        self.keys: set[str] = set()
        self.pointer: tuple[int, int] | None = None

    def feed(self, ev) -> None:
        pg = self.pg
        if ev.type == pg.KEYDOWN:
            name = key_name(pg, ev.key)
            if name:
                self.keys.add(name)
        elif ev.type == pg.KEYUP:
            self.keys.discard(key_name(pg, ev.key))
        elif ev.type == pg.MOUSEMOTION:
            self.pointer = tuple(ev.pos)
        elif ev.type in (pg.MOUSEBUTTONDOWN, pg.MOUSEBUTTONUP) and 1 <= ev.button <= 3:
            self.pointer = tuple(ev.pos)
            name = f"mouse{ev.button}"
            (self.keys.add if ev.type == pg.MOUSEBUTTONDOWN else self.keys.discard)(name)
        elif ev.type == pg.WINDOWFOCUSLOST:
            self.keys.clear()  # no stuck keys after alt-tab
