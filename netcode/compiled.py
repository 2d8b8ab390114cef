"""Which compiled fast paths this install has, and whether to use them.

``setup.py`` compiles the modules in its ``COMPILED`` list with Cython when it can (among
them the session's connection and demux, the mode servers' receive loop, the state-sync
input rules and :mod:`netcode.statesync.bitpack`, snapshot bit packing), and records each build in
``netcode/_build_manifest.json``: the file it built and the sha256 of every source it was
built from, or why it built nothing. :func:`load` hands a module out only when the import
really is that compiled build, not the source file (which needs Cython itself and is the
slower twin used by the tests), not a stale build (a source beside it that no longer
hashes as it did when built: an edited checkout not rebuilt), and not switched off with
``TICKSYNC_PURE=1``. Otherwise callers get None and use the general path.

Staleness is judged by content, never by file times: an install copies the sources after
building, so they look newer than a build that is not stale. A source the install did
not ship (a ``.pxd``, a ``.pyx``) is not checked: the build is trusted.

``python -m netcode.compiled`` prints, one line per module of the build, which path runs.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
from pathlib import Path
from typing import Any

from netcode._build import MANIFEST, SourceFirst, _check, install_source_first, manifest, source_hash

__all__ = ["load", "statuses", "manifest", "source_hash", "bitpack", "status", "SourceFirst", "install_source_first"]

log = logging.getLogger("ticksync.compiled")

# Names this module has always offered, for the modules they stand for.
_NAMED = {"bitpack": "netcode.statesync.bitpack"}
_HOT = "netcode.mode.dispatch"  # the receive loop every server runs: what "status" reports

_loaded: dict[str, Any] = {}  # module -> what load() returned

# One line per module: everything the build recorded, and whatever else load() was asked for.
statuses: dict[str, str] = {module: _check(module)[1] for module in (manifest or {})}


def load(module: str):
    """The compiled build of ``module`` (dotted name, e.g. ``"netcode.mode.dispatch"``),
    or None where the general path must run: switched off (``TICKSYNC_PURE=1``), not built,
    stale, or failing to import. The answer is kept, and ``statuses[module]`` says why."""
    if module in _loaded:
        return _loaded[module]
    binary, what = _check(module)
    compiled = None
    if binary is not None:
        try:
            compiled = importlib.import_module(module)
        except Exception as exc:  # built against other types (a stale cimported module), ...
            log.warning("%s does not import (%s): not using it (rebuild: pip install -e .)", binary.name, exc)
            what = f"failed to import ({exc}): general path"
        else:
            origin = Path(getattr(compiled, "__file__", None) or "")
            if origin.name != binary.name or not origin.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                what = f"not built (imports as {origin.name or 'no file'}, not {binary.name}): general path"
                compiled = None
    elif what.startswith("stale"):
        log.warning(
            "%s: %s (rebuild: pip install -e . or python setup.py build_ext --inplace)", module, what
        )
    _loaded[module] = compiled
    statuses[module] = what
    return compiled


def __getattr__(name: str) -> Any:
    # bitpack and status, loaded on first use: importing this module
    # imports no compiled one (no import cycles through the packages that use them).
    if name in _NAMED:
        return load(_NAMED[name])
    if name == "status":  # the one most figures depend on (benches print it)
        load(_HOT)
        return statuses[_HOT]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for _module in list(statuses) or list(_NAMED.values()):
        load(_module)
    for _module, _what in statuses.items():
        print(f"{_module}: {_what}")
