"""The desktop window: ``ticksync play GAME URL`` and ``ticksync replay FILE --watch``.

pygame-ce draws the game from its declared visuals (:mod:`engine.visuals`, the same spec
the browser's generic view reads) and turns keys and the mouse into its input record by
its declared controls (:mod:`engine.controls`). A game may draw itself instead: a
``draw_desktop(surface, frame)`` method on the game replaces the default drawing.

* :mod:`.render`: one frame from a :class:`~.render.Frame` (what to draw) onto a surface.
* :mod:`.keys`: pygame events to the key names controls use, and the pointer.
* :mod:`.play`: a :class:`~netcode.client.GameClient` in a window, with a HUD.
* :mod:`.watch`: a recording played back in the window (pause, speed, seek).

pygame-ce is an optional dependency (``pip install 'ticksync[desktop]'``); without it these
commands say so in one line.
"""

from __future__ import annotations

import os

from netcode.errors import UsageError

__all__ = ["load_pygame"]


def load_pygame():
    """The pygame module (pygame-ce), initialised; UsageError naming the extra if missing."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        raise UsageError("the desktop window needs pygame-ce: pip install 'ticksync[desktop]' (or pip install pygame-ce)") from None
    if not getattr(pygame, "IS_CE", False):
        raise UsageError("the desktop window needs pygame-ce, not pygame: pip uninstall pygame && pip install pygame-ce")
    pygame.display.init()
    pygame.font.init()
    return pygame
