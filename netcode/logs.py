"""Logging the exceptions a long-running loop survives: once per kind, in bounded memory.

A transport or the room router catches what an endpoint raises (a bug: one bad packet must
not take a server down), counts it and carries on. Logging every occurrence would let one
hostile peer flood the log, so :func:`log_once` logs a kind (call site and exception
class) with its traceback the first time and at debug level after that. The kinds seen
are kept in a set the caller owns, holding at most :data:`LOG_KINDS_MAX` of them: past
that, new kinds are still logged at error level (each time) but no longer remembered, so
a stream of ever-new exception classes cannot grow memory.

No I/O beyond :mod:`logging`, no imports from the layers: both the transports and the
server's router use it.
"""

from __future__ import annotations

import logging

__all__ = ["LOG_KINDS_MAX", "LIBRARY_LOGGER", "log_once"]

#: The parent of every ticksync logger ("ticksync.server", "ticksync.compiled", ...). It has
#: a NullHandler, as a library's should: with logging not configured, a warning (a stale
#: compiled build found at import time, say) is not printed by Python's last-resort handler,
#: so it cannot turn a command's one-line error into two lines. A program that configures
#: logging (``ticksync serve``/``bots``, ``python -m netcode.compiled``) sees every record.
LIBRARY_LOGGER = logging.getLogger("ticksync")
LIBRARY_LOGGER.addHandler(logging.NullHandler())

#: Kinds a ``seen`` set remembers at most.
LOG_KINDS_MAX = 256


def log_once(
    seen: set,
    where: str,
    exc: BaseException,
    owner: str,
    *,
    logger: logging.Logger,
    outcome: str = "counted, the transport keeps running",
) -> None:
    """Log ``exc``, raised by ``owner`` in ``where``, on ``logger``: with its traceback at
    error level the first time its kind ``(where, type(exc))`` is seen in ``seen``, at
    debug level after that. ``outcome`` says what the caller did about it."""
    kind = (where, type(exc))
    if kind in seen:
        logger.debug("%s: %s raised %r again", owner, where, exc)
        return
    if len(seen) < LOG_KINDS_MAX:
        seen.add(kind)
    name = type(exc).__name__
    logger.error(
        "%s: %s raised %s: %s (further %s from there are logged at debug level)",
        owner,
        where,
        name,
        outcome,
        name,
        exc_info=exc,
    )
