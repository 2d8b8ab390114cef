"""The public facades: ``from netcode import ...`` and ``from engine import ...`` give every
name they promise, ``dir()`` lists them, and ``import netcode`` stays cheap (its names load
on first use)."""

import subprocess
import sys
from pathlib import Path

import pytest

import engine
import netcode

ROOT = Path(__file__).resolve().parent.parent
FACADES = [netcode, engine]


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_every_public_name_resolves_and_is_listed(facade):
    names = facade.__all__
    assert len(names) == len(set(names)), "a name is listed twice in __all__"
    listed = dir(facade)
    for name in names:
        value = getattr(facade, name)
        assert value is not None, name
        assert name in listed, f"dir({facade.__name__}) misses {name}"
        if hasattr(value, "__module__") and not isinstance(value, (int, str, tuple)):
            # re-exported, never redefined: the facade's object is the defining module's
            module = sys.modules[value.__module__]
            assert getattr(module, getattr(value, "__name__", name)) is value


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_star_import_and_unknown_names(facade):
    namespace: dict = {}
    exec(f"from {facade.__name__} import *", namespace)
    assert set(facade.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr(facade, "nope")


def test_submodules_still_import_through_the_facade():
    """``from netcode import compiled`` (a submodule, not a facade name) still works: the
    lazy ``__getattr__`` raises AttributeError for it, so Python imports the submodule."""
    from netcode import compiled

    assert compiled.__name__ == "netcode.compiled"


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_netcode_loads_no_aiohttp_asyncio_or_numpy():
    assert _fresh("import netcode, sys; print('aiohttp' in sys.modules)") == "False"
    heavy = _fresh("import netcode, engine, sys; print(sorted(m for m in ('aiohttp', 'asyncio', 'numpy') if m in sys.modules))")
    assert heavy == "[]"


def test_names_load_on_first_use_only():
    # a sans-IO name does not drag in the transports
    assert _fresh("from netcode import mint_token, LockstepServer; import sys; print('aiohttp' in sys.modules)") == "False"
    assert _fresh("from netcode import open_ws_server; import sys; print('aiohttp' in sys.modules)") == "True"


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_the_package_itself_never_imports_its_facade(facade):
    """Inside a package, modules import their siblings directly: a ``from netcode import
    TickServer`` in netcode/ would load half the package on any import and invite cycles.
    (``from netcode import compiled`` names a submodule, which is fine.)"""
    import ast

    package = facade.__name__
    public = set(facade.__all__)
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name == "__init__.py" and path.parent == ROOT / package:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module == package and node.level == 0 or node.level and node.module is None and path.parent == ROOT / package):
                bad = sorted({a.name for a in node.names} & public)
                assert not bad, f"{path.relative_to(ROOT)} imports {bad} from the {package} facade"
