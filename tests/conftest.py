"""Shared test helpers: seeds that are printed and can be overridden to rerun a failure."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis fails an example that takes over 200 ms: a timing assert, which a loaded 2-core
# CI machine can trip on fast code. Speed is measured in bench/; here no example has one.
settings.register_profile("ticksync", deadline=None)
settings.load_profile("ticksync")

# The checkout these tests belong to comes first: the venv's editable install maps
# engine/ and netcode/ to the main checkout, so a git worktree's tests run by its pytest
# would otherwise import main's code (and its builds), not the worktree's.
_ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)


@pytest.fixture
def seed(request) -> int:
    """A seed for a randomized test: TICKSYNC_SEED=N reruns with N; printed either way."""
    env = os.environ.get("TICKSYNC_SEED")
    value = int(env) if env else random.SystemRandom().randrange(1 << 31)
    print(f"\n{request.node.nodeid}: seed={value} (rerun with TICKSYNC_SEED={value})")
    return value


@pytest.fixture
def redis_server(tmp_path_factory):
    """A real redis-server of the test's own on a free loopback port, nothing kept on disk
    (netcode.server.workers.LocalRedis: ``.url``, ``.port``, ``.stop()``, ``.start()`` again on
    the same port); skips, saying why, where Debian's redis-server or the redis package is missing."""
    import shutil

    from netcode.server.workers import LocalRedis

    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine (make system-deps installs Debian's redis-server)")
    pytest.importorskip("redis", reason="the redis package is missing (pip install -e '.[dev]' or '.[cluster]')")
    server = LocalRedis(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()
