"""The layers stay layers: the sans-IO protocol packages import no I/O and no code above
them, and the game side knows nothing of the network. Read from the source (every import
statement, at any depth), so a lazy import inside a function counts too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ["session", "mode", "lockstep", "statesync", "sim"]
IO_MODULES = {"asyncio", "socket", "selectors", "aiohttp", "uvloop", "time", "pygame"}
ABOVE_PROTOCOL = ("netcode.transport", "netcode.server", "netcode.client", "netcode.cli", "netcode.benchmark", "netcode.desktop")


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _files(*parts: str) -> list[Path]:
    return sorted(ROOT.joinpath(*parts).rglob("*.py"))


@pytest.mark.parametrize("layer", PROTOCOL)
def test_protocol_layers_do_no_io_and_import_nothing_above_them(layer):
    files = _files("netcode", layer)
    assert files, f"netcode/{layer} has no modules"
    for path in files:
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top not in IO_MODULES, f"{path.relative_to(ROOT)} imports {name}: protocol code is sans-IO"
            assert not name.startswith(ABOVE_PROTOCOL), f"{path.relative_to(ROOT)} imports {name}, a layer above it"


def test_session_layer_knows_no_mode():
    for path in _files("netcode", "session"):
        for name in imports_of(path):
            assert not name.startswith(("netcode.mode", "netcode.lockstep", "netcode.statesync")), (
                f"{path.relative_to(ROOT)} imports {name}: the session layer sits under both modes"
            )


def test_the_modes_do_not_import_each_other():
    for mode, other in (("lockstep", "statesync"), ("statesync", "lockstep")):
        for path in _files("netcode", mode):
            bad = [n for n in imports_of(path) if n.startswith(f"netcode.{other}")]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}: shared rules belong in netcode.mode"


def test_the_game_side_knows_nothing_of_the_network():
    """(engine.loop, the real-clock tick loop, may use asyncio and uvloop: no sockets.)"""
    for path in _files("engine"):
        bad = [n for n in imports_of(path) if n.split(".")[0] in {"netcode", "socket", "aiohttp"}]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_the_shell_imports_the_benchmark():
    """``netcode.benchmark`` (what ``ticksync bench`` runs) is shell-level, like the cli:
    nothing of the library below it (protocol, transport, server, client) imports it."""
    shell = {ROOT / "netcode" / "cli.py"}
    for path in _files("netcode"):
        if path in shell or "benchmark" in path.relative_to(ROOT).parts:
            continue
        bad = [n for n in imports_of(path) if n.startswith("netcode.benchmark")]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the benchmark sits on top, beside the cli"
    for path in _files("engine"):
        assert not [n for n in imports_of(path) if n.startswith("netcode")], path


def test_only_the_desktop_shell_imports_pygame_and_nothing_below_it_imports_the_shell():
    """The window is a shell like the CLI: the server, the client and the engine work
    without pygame-ce (an optional extra) and never reach into netcode.desktop."""
    for path in _files("engine") + _files("netcode") + _files("demos"):
        rel = path.relative_to(ROOT).parts
        names = imports_of(path)
        if rel[:2] != ("netcode", "desktop"):
            assert not any(n.split(".")[0] == "pygame" for n in names), f"{path.relative_to(ROOT)} imports pygame"
        if rel[:2] != ("netcode", "desktop") and rel != ("netcode", "cli.py"):
            bad = [n for n in names if n.startswith("netcode.desktop")]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}: only the command line opens the window"


def test_the_checker_sees_a_violation(tmp_path):
    """The rules above can fail: a planted relative import of the transport and a lazy
    import of asyncio are both found."""
    planted = tmp_path / "netcode" / "session" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("from ..transport import udp\n\ndef f():\n    import asyncio\n")
    names = imports_of(planted, root=tmp_path)
    assert {"netcode.transport", "netcode.transport.udp", "asyncio"} <= names
