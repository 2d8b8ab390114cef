"""The documentation's examples run: every ```python block of each page of docs/ (and of
the README), in order, in one namespace per page, in a scratch directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
NETWORK_PAGES = {"server.md"}  # examples that open loopback sockets


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[pytest.mark.network] if p.name in NETWORK_PAGES else []) for p in PAGES],
    ids=[p.name for p in PAGES],
)
def test_examples_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    if page.parent.name == "docs" and page.name != "README.md":  # the index has none
        assert blocks, f"{page.name} has no example"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for i, block in enumerate(blocks):
        code = compile(block, f"{page.name}, example {i + 1}", "exec")
        exec(code, namespace)


def test_every_concept_has_a_page():
    names = {p.name for p in PAGES}
    assert {"writing-a-game.md", "modes.md", "server.md", "replays.md", "testing.md"} <= names


def test_public_classes_and_functions_have_docstrings():
    import inspect

    import engine
    import netcode

    missing = []
    for package in (engine, netcode):
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj) and not obj.__dict__.get("__doc__"):
                missing.append(f"{package.__name__}.{name}")
            elif inspect.isfunction(obj) and not obj.__doc__:
                missing.append(f"{package.__name__}.{name}()")
    assert not missing, missing
    for method in ("create", "step", "bot_inputs", "player_entity", "sanitize_inputs", "fingerprint"):
        assert getattr(engine.Game, method).__doc__, method
