"""The build record of this install, and the import rule that follows from it.

``setup.py`` records each build in ``netcode/_build_manifest.json``: per compiled module,
the file it built and the sha256 of every source it was built from, or why it built
nothing. :func:`_check` judges a module's build from that record alone (it imports
nothing); :class:`SourceFirst` makes Python import the source of a refused build.
:mod:`netcode.compiled` is the public face of both (``python -m netcode.compiled``).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import logging
import os
import sys
import sysconfig
from pathlib import Path

from netcode.logs import LIBRARY_LOGGER

log = LIBRARY_LOGGER.getChild("compiled")

MANIFEST = Path(__file__).with_name("_build_manifest.json")
_ROOT = Path(__file__).resolve().parent.parent  # the directory holding netcode/; manifest paths are relative to it
_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def source_hash(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file's bytes, as setup.py records each source it builds from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_manifest() -> dict | None:
    """This interpreter's build: module name -> its record; None where nothing was built."""
    try:
        data = json.loads(MANIFEST.read_text())
        return dict(data["builds"][_SUFFIX]["modules"])
    except FileNotFoundError:
        return None
    except KeyError:
        return None  # built for another Python only
    except (OSError, ValueError, TypeError) as exc:
        log.warning("unreadable %s (%s): the general path runs", MANIFEST.name, exc)
        return None


manifest: dict | None = _read_manifest()


def _changed(record: dict) -> list[str]:
    """The sources (paths relative to the install) that no longer hash as they did when built."""
    changed = []
    for rel, digest in record.get("sources", {}).items():
        path = _ROOT / rel
        try:
            if source_hash(path) != digest:
                changed.append(rel)
        except FileNotFoundError:
            pass  # not shipped (a wheel without the source): trust the build
    return changed


def _check(module: str) -> tuple[Path | None, str]:
    """The compiled file to import for ``module``, or None; and the status line either way.
    Reads files only: imports nothing."""
    if os.environ.get("TICKSYNC_PURE"):
        return None, "off (TICKSYNC_PURE is set)"
    if manifest is None:
        return None, "not built (no build record: pip install . or python setup.py build_ext --inplace): general path"
    record = manifest.get(module)
    if record is None:
        return None, "not built (not in setup.py's list when this was built): general path"
    if "file" not in record:
        return None, f"not built ({record.get('error', 'no reason recorded')}): general path"
    binary = _ROOT.joinpath(*module.split(".")[:-1], record["file"])
    if not binary.exists():
        return None, f"not built ({record['file']} is missing): general path"
    changed = _changed(record)
    if changed:
        names = ", ".join(Path(rel).name for rel in changed)
        return None, f"stale build ignored ({names} changed since {record['file']} was built): general path"
    return binary, f"compiled ({record['file']})"


class SourceFirst(importlib.abc.MetaPathFinder):
    """Imports the source of a built module whose build :func:`load` would refuse.

    Python imports a compiled ``connection.cpython-*.so`` before ``connection.py`` beside
    it, whatever the build record says; the protocol classes compiled from their own
    modules (:class:`~netcode.session.connection.Connection`, the input buffer) are
    imported plainly everywhere, not through :func:`load`. So where the build is switched
    off (``TICKSYNC_PURE=1``), stale or missing, this finder hands Python the module's
    ``.py`` source instead: one switch for every compiled module, and an edited source is
    what runs. A compiled module that cimports one run from source then fails to import,
    and :func:`load` reports it (its callers take the general path)."""

    def find_spec(self, fullname, path=None, target=None):
        if manifest is None or fullname not in manifest or "file" not in manifest[fullname]:
            return None  # nothing built for it: Python finds the source as usual
        if _check(fullname)[0] is not None:
            return None  # a good build: Python imports it as usual
        source = _ROOT.joinpath(*fullname.split(".")).with_suffix(".py")
        if not source.exists():
            raise ImportError(f"{fullname}: {_check(fullname)[1]}", name=fullname)
        return importlib.util.spec_from_file_location(fullname, source)


def install_source_first() -> None:
    """Put :class:`SourceFirst` in front of Python's finders (once)."""
    if not any(isinstance(f, SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceFirst())
