"""Shared test helpers: seeds that are printed and can be overridden to rerun a failure."""

from __future__ import annotations

import os
import random

import pytest


@pytest.fixture
def seed(request) -> int:
    """A seed for a randomized test: TICKSYNC_SEED=N reruns with N; printed either way."""
    env = os.environ.get("TICKSYNC_SEED")
    value = int(env) if env else random.SystemRandom().randrange(1 << 31)
    print(f"\n{request.node.nodeid}: seed={value} (rerun with TICKSYNC_SEED={value})")
    return value
