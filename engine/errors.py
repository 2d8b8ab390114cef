"""The root of every error ticksync raises on purpose, and whose fault each one is.

One base, :class:`TicksyncError`, so ``except TicksyncError`` catches everything ticksync
raises deliberately (and nothing else: a bug in ticksync or in a game's ``step`` is an
ordinary ``Exception``). The subclass says who has to act:

* :class:`UsageError` - the caller's fault: the program using ticksync called it wrongly
  (wrong state, bad argument, oversized payload). Fix the calling code.
  ``engine.cli.CliError`` is one too: the command line was given something unusable.
* ``engine.model.GameError``, ``engine.state.StateLayoutError`` - the game's fault: a game
  module or object breaks the contract, or states do not share one layout.
* ``engine.replay.ReplayError`` - the file's fault: a replay is garbage, truncated or of
  another game.
* ``netcode.errors.ProtocolError`` - the peer's fault: bytes from the network are malformed,
  stale, forged or hostile. Receive paths catch it and count a drop; it never reaches you.

The base lives here, on the game side, because ``engine`` must not import ``netcode``;
``netcode.errors`` re-exports it. Only the standard library may be imported here: every
``import netcode`` loads this module.
"""

from __future__ import annotations

__all__ = ["TicksyncError", "UsageError"]


class TicksyncError(Exception):
    """Base of every error ticksync raises on purpose; the subclass says whose fault it is."""


class UsageError(TicksyncError):
    """The caller misused the API (wrong state, oversized payload, bad argument): a bug to
    fix in the calling code."""
