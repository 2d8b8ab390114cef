"""Which compiled fast paths this install has, and whether to use them.

``setup.py`` compiles :mod:`netcode.statesync.fastpath` (the state-sync server's input and send
paths) and :mod:`netcode.statesync.bitpack` (snapshot bit packing) with Cython when it can. This
module hands each out only when the import really is the compiled one, not the source
file (which needs Cython itself and is the slower twin used by the tests), not a stale
build older than its source (an edited checkout not reinstalled), and not switched off
with ``TICKSYNC_PURE=1``. Otherwise callers get None and use the general path.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from pathlib import Path

__all__ = ["fastpath", "bitpack", "status", "statuses"]

log = logging.getLogger("ticksync.compiled")


def _load(module: str):
    name = module.rsplit(".", 1)[1]
    if os.environ.get("TICKSYNC_PURE"):
        return None, "off (TICKSYNC_PURE is set)"
    spec = importlib.util.find_spec(module)
    origin = Path(spec.origin) if spec and spec.origin else None
    if origin is None or origin.suffix == ".py":
        return None, "not built (no C compiler or Cython when installed): general path"
    source = origin.parent / f"{name}.py"
    if source.exists() and source.stat().st_mtime > origin.stat().st_mtime:
        log.warning("%s is older than %s.py: not using it (reinstall: pip install -e .)", origin.name, name)
        return None, "stale build ignored: general path"
    return importlib.import_module(module), f"compiled ({origin.name})"


fastpath, _fastpath_status = _load("netcode.statesync.fastpath")
bitpack, _bitpack_status = _load("netcode.statesync.bitpack")
statuses = {"fastpath": _fastpath_status, "bitpack": _bitpack_status}
status = _fastpath_status  # the one most figures depend on (benches print it)


if __name__ == "__main__":
    for name, what in statuses.items():
        print(f"netcode.{name}: {what}")
