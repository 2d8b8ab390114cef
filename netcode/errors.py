"""Errors that say whose fault they are.

Every error ticksync raises on purpose derives from :class:`TicksyncError` (defined on the
game side, in :mod:`engine.errors`, so the game side needs no network code; re-exported
here). On the network side:

``ProtocolError``: the peer's fault. Bytes from the peer are malformed, stale, forged or
hostile. Receive paths catch it and count a drop under ``reason``; it never escapes into a
room.
``UsageError``: the caller's fault. The program using ticksync called it wrongly (a bug to
fix in the caller).

The game side adds ``GameError`` and ``StateLayoutError`` (the game's fault),
``ReplayError`` (the file's fault) and ``CliError`` (a ``UsageError`` of the command line).
"""

from __future__ import annotations

from engine.errors import TicksyncError, UsageError

__all__ = ["TicksyncError", "ProtocolError", "UsageError"]


class ProtocolError(TicksyncError):
    """The peer sent bytes we refuse (the peer's fault). ``reason`` is a short counter key
    ("truncated", ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
