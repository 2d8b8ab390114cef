"""``pip install .`` keeps the compiled fast paths (issue 10).

A wheel of this checkout is built and installed into a fresh venv, and the installed
``netcode.compiled`` must say that every module setup.py compiles runs compiled, from a
directory outside the checkout. An install copies the sources after building, so they
look newer than the build: staleness is judged by the sources' hashes recorded at build
time, which these tests check by setting file times that would fool a judge by mtime.

Bounded in time: the C is compiled without optimisation (what is checked is the build and
install machinery, not the code's speed), and every step has a subprocess timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What a wheel of the checkout is built from: the working tree, without builds, caches, venvs.
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.so", "*.pyd",
    ".pytest_cache", ".hypothesis", ".benchmarks", "out", "*.tsr", "_build_manifest.json",
)


def _run(cmd: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


class Installed:
    """A fresh venv with the checkout's wheel installed."""

    def __init__(self, tmp: Path):
        self.tmp = tmp  # the checkout's copy it was built from is tmp / "src"
        self.python = tmp / "venv" / "bin" / "python"
        self.elsewhere = tmp / "elsewhere"  # a working directory outside the checkout
        self.elsewhere.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TICKSYNC_PURE", "PYTHONHOME")}
        site = _run([self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], 30, env=self.env)
        self.site = Path(site.stdout.strip())
        self.manifest = json.loads((self.site / "netcode" / "_build_manifest.json").read_text())
        self.build = self.manifest["builds"][sysconfig.get_config_var("EXT_SUFFIX")]["modules"]

    def compiled_statuses(self, **env) -> tuple[dict, str]:
        """``python -m netcode.compiled`` run by the install: module -> status, and its stderr."""
        done = _run([self.python, "-m", "netcode.compiled"], 30, cwd=self.elsewhere, env={**self.env, **env})
        lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
        return lines, done.stderr

    def file(self, module: str, name: str) -> Path:
        return self.site.joinpath(*module.split(".")[:-1], name)


def _install(tmp: Path, cflags: str = "", rebuild_from: Path | None = None, rebuild: str = "") -> Installed:
    """The checkout's wheel, built with ``cflags`` added, installed into a fresh venv in
    ``tmp``. ``rebuild_from``: an earlier install's ``tmp``, whose build tree is reused with
    module ``rebuild``'s objects removed, so only that one compiles again (the others are
    up to date and go into the wheel as built)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: nothing to compile")
    src = tmp / "src"
    if rebuild_from is None:
        shutil.copytree(ROOT, src, ignore=_IGNORE, symlinks=True)
    else:
        shutil.copytree(rebuild_from / "src", src, ignore=shutil.ignore_patterns("dist", "*.egg-info"), symlinks=True)
        stem = rebuild.rpartition(".")[2]
        stale = [p for p in (src / "build").rglob(f"{stem}.*") if p.suffix in (".so", ".o", ".pyd", ".obj")]
        assert stale, f"no build of {rebuild} under {src / 'build'} to remove"
        for path in stale:
            path.unlink()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TICKSYNC_PURE")}
    env["CFLAGS"] = f"-O0 -g0 {cflags}"  # the last -O wins: compiles in seconds
    _run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-cache-dir",
         "-w", tmp / "dist"],
        100, cwd=src, env=env,
    )
    (wheel,) = (tmp / "dist").glob("ticksync-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", tmp / "venv"], 60)
    _run(
        [sys.executable, "-m", "pip", "--python", tmp / "venv" / "bin" / "python", "install",
         "--no-deps", "--no-index", "--no-cache-dir", wheel],
        60, env=env,
    )
    installed = Installed(tmp)
    # numpy, orjson, ... without the network: this venv's packages, after the fresh venv's
    # own (a plain path line: this venv's .pth files, its editable ticksync among them, stay off).
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (installed.site / "_ticksync_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return installed


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    return _install(tmp_path_factory.mktemp("install"))


def _planned() -> list:
    done = _run([sys.executable, "setup.py", "--compiled"], 30, cwd=ROOT)
    return done.stdout.split()


def test_a_wheel_install_runs_every_compiled_module(installed):
    planned = _planned()
    assert {"netcode.mode.dispatch", "netcode.statesync.peer", "netcode.statesync.bitpack"} <= set(planned)
    assert set(installed.build) == set(planned)
    # Every build older than its source, by an hour: a judge by file times would call them stale.
    old = time.time() - 3600
    for module, record in installed.build.items():
        assert "file" in record, f"{module} was not built: {record}"
        os.utime(installed.file(module, record["file"]), (old, old))
    statuses, stderr = installed.compiled_statuses()
    assert set(statuses) == set(planned), statuses
    for module, what in statuses.items():
        assert what.startswith("compiled ("), f"{module}: {what}\n{stderr}"
    # ... and that was the install, not this checkout; a server imports the builds.
    done = _run(
        [installed.python, "-c", "import netcode.compiled as c, netcode.statesync.server, netcode.statesync.peer as p; "
         "print(c.__file__); print(p.__file__)"],
        30, cwd=installed.elsewhere, env=installed.env,
    )
    where, peer = done.stdout.split()
    assert Path(where).is_relative_to(installed.site) and Path(peer).is_relative_to(installed.site), done.stdout
    assert peer.endswith(installed.build["netcode.statesync.peer"]["file"]), done.stdout


def test_a_source_changed_after_the_build_is_stale_whatever_its_time(installed):
    source = installed.file("netcode.statesync.peer", "peer.py")
    pxd = installed.file("netcode.session.connection", "connection.pxd")  # a wheel ships no .pxd: trusted till one appears
    assert not pxd.exists()
    text = source.read_text()
    binary = installed.file("netcode.statesync.peer", installed.build["netcode.statesync.peer"]["file"])
    try:
        source.write_text(text + "\n# edited after the build\n")
        pxd.write_text("# not the .pxd connection was compiled with\n")
        old = binary.stat().st_mtime - 3600  # older than the build: a judge by file times would use it
        for path in (source, pxd):
            os.utime(path, (old, old))
        statuses, stderr = installed.compiled_statuses()
        # Stale: peer, and every module built from connection.pxd (its own and those cimporting it).
        stale = {m for m, record in installed.build.items() if "netcode/session/connection.pxd" in record["sources"]}
        assert {"netcode.session.connection", "netcode.session.demux"} <= stale
        stale.add("netcode.statesync.peer")
        for module, what in statuses.items():
            if module in stale:
                assert what.startswith("stale build ignored"), f"{module}: {what}"
                assert f"{module}: stale build ignored" in stderr  # logged, not only printed
            else:
                assert what.startswith("compiled ("), f"{module}: {what}"
        assert "peer.py" in statuses["netcode.statesync.peer"]

        statuses, _ = installed.compiled_statuses(TICKSYNC_PURE="1")
        assert set(statuses.values()) == {"off (TICKSYNC_PURE is set)"}
    finally:
        source.write_text(text)
        pxd.unlink(missing_ok=True)


def test_the_install_runs_ticksync_bench_without_the_checkout(installed):
    """``ticksync bench`` ships with the package (issue 14): the installed console script
    runs a one-cell bench from a directory where no ``bench/`` is importable."""
    out = installed.elsewhere / "bench-out"
    done = _run(
        [installed.python.parent / "ticksync", "bench", "--quick", "--modes", "statesync", "--clients", "2",
         "--entities", "20", "--seconds", "0.5", "--warmup", "0.2", "--no-throughput", "--out", out],
        120, cwd=installed.elsewhere, env=installed.env,
    )
    (cell,) = [c for c in json.loads((out / "bench.json").read_text())["cells"] if c["kind"] == "load"]
    assert cell["ticks"] > 0 and cell["players"] == 2, done.stdout
    assert {p.name for p in out.iterdir()} >= {"bench.json", "bench.md", "tick_time.png", "cpu.png", "bytes_per_client.png"}
    where = _run(
        [installed.python, "-c", "import importlib.util, netcode.benchmark as b; "
         "print(importlib.util.find_spec('bench') is None); print(b.__file__)"],
        30, cwd=installed.elsewhere, env=installed.env,
    )
    no_bench, module = where.stdout.split()
    assert no_bench == "True" and Path(module).is_relative_to(installed.site), where.stdout


def test_a_machine_without_openssl_headers_installs_and_seals_from_source(tmp_path, installed):
    """session/aead.py links the system libcrypto; where its headers are missing (no
    libssl-dev) the install still succeeds, says what to install, runs that one module from
    its source (cryptography's AESGCM) and every other module compiled. (The other modules'
    objects come from the first install's build, so only aead.py compiles again.)"""
    missing = tmp_path / "no-openssl"
    (missing / "openssl").mkdir(parents=True)
    (missing / "openssl" / "evp.h").write_text('#error "this machine has no OpenSSL headers"\n')  # found first (-I)
    installed = _install(tmp_path, f"-I{missing}", rebuild_from=installed.tmp, rebuild="netcode.session.aead")
    assert "libssl-dev" in installed.build["netcode.session.aead"]["error"]
    statuses, _ = installed.compiled_statuses()
    assert statuses["netcode.session.aead"].startswith("not built (") and "libssl-dev" in statuses["netcode.session.aead"]
    assert all(what.startswith("compiled (") for module, what in statuses.items() if module != "netcode.session.aead")
    done = _run(
        [installed.python, "-c", "from netcode.session.aead import PacketAead; import netcode.session.connection as c; "
         "k = bytes(range(32)); p = PacketAead(k, True).seal(bytes(17), b'move', 5); "
         "print(PacketAead(k, False).open(p, 17, 5)[17:].decode(), c.__file__.endswith('.py'))"],
        30, cwd=installed.elsewhere, env=installed.env,
    )
    assert done.stdout.split() == ["move", "False"], done.stdout
