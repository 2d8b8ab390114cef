"""Errors that say whose fault they are.

``ProtocolError``: bytes from the peer are malformed, stale, forged or hostile. Receive
paths catch it and count a drop under ``reason``; it never escapes into a room.
``UsageError``: the program using ticksync called it wrongly (a bug to fix in the caller).
"""

from __future__ import annotations

__all__ = ["TicksyncError", "ProtocolError", "UsageError"]


class TicksyncError(Exception):
    pass


class ProtocolError(TicksyncError):
    """The peer sent bytes we refuse. ``reason`` is a short counter key ("truncated", ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class UsageError(TicksyncError):
    """The caller misused the API (wrong state, oversized payload, bad argument)."""
