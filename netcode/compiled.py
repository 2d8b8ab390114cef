"""Which compiled fast paths this install has, and whether to use them.

``setup.py`` compiles :mod:`netcode.fastpath` with Cython when it can. This module hands
out its functions only when the import really is the compiled one, not the source file
(which needs Cython itself and is the slower twin used by the tests), not a stale build
older than its source (an edited checkout not reinstalled), and not switched off with
``TICKSYNC_PURE=1``. Otherwise callers get None and use the general path.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

__all__ = ["fastpath", "status"]

log = logging.getLogger("ticksync.compiled")


def _load():
    if os.environ.get("TICKSYNC_PURE"):
        return None, "off (TICKSYNC_PURE is set)"
    spec = importlib.util.find_spec("netcode.fastpath")
    origin = Path(spec.origin) if spec and spec.origin else None
    if origin is None or origin.suffix == ".py":
        return None, "not built (no C compiler or Cython when installed): general path"
    source = origin.parent / "fastpath.py"
    if source.exists() and source.stat().st_mtime > origin.stat().st_mtime:
        log.warning("%s is older than fastpath.py: not using it (reinstall: pip install -e .)", origin.name)
        return None, "stale build ignored: general path"
    from . import fastpath as module

    return module, f"compiled ({origin.name})"


fastpath, status = _load()


if __name__ == "__main__":
    print(f"netcode.fastpath: {status}")
