"""Builds the optional compiled fast paths: the modules in ``COMPILED`` below, Cython's
pure-Python mode ``.py`` files (typed by a ``.pxd`` beside them) or ``.pyx`` files.

Everything else is in pyproject.toml. If Cython or a C compiler is missing, or a compile
fails, the install goes on without that module and the engine uses its general path
(``python -m netcode.compiled`` says which one an install has).

Every build (``pip install .``, ``pip wheel .``, ``pip install -e .``, ``python setup.py
build_ext --inplace``) writes ``netcode/_build_manifest.json`` beside the modules it
built: for each module in ``COMPILED``, the file it built and the sha256 of every source
it was built from (the module, its ``.pxd`` and the ``.pxd`` files it cimports), or why
it was not built. :mod:`netcode.compiled` hands a compiled module out only when the
sources beside it still hash the same, so an edit after the build is noticed whatever
the file times say (an install copies sources after building, which makes them look
newer than the build).

``python setup.py --compiled`` prints the modules this platform compiles, and
``python setup.py --compiled-sources`` the files they are built from (the Makefile
rebuilds when one changes).
"""

import hashlib
import json
import os
import sys
from pathlib import Path

# The modules Cython compiles, by dotted name; the source is the .pyx or .py file of that
# name (a .py beside a .pxd is Cython's pure-Python mode: it also runs uncompiled).
# Adding one is a line here and ``compiled.load("netcode.x.y")`` where it is used.
COMPILED = [
    "netcode.session.wire",  # the packet prefix and session header, packed and parsed
    "netcode.session.aead",  # a session key's AES-256-GCM, one OpenSSL context kept (links libcrypto)
    "netcode.session.connection",  # a session's header, replay window, acks, RTT
    "netcode.session.outbox",  # what a session end queues to send (cimports connection)
    "netcode.session.demux",  # which session a datagram is for (cimports connection)
    "netcode.mode.inputs",  # input buffers
    "netcode.mode.dispatch",  # a mode server's receive loop (cimports demux, connection)
    "netcode.statesync.history",  # the snapshots kept as baselines (has() per client and per ack)
    "netcode.statesync.peer",  # SS_INPUT's rules and the peer record (cimports dispatch, inputs, history)
    "netcode.statesync.send",  # each client's baseline, pacing, and snapshot parts sealed and queued (cimports peer, pacing, history, outbox)
    "netcode.statesync.pacing",  # each client's send budget, asked every snapshot (cimports connection)
    "netcode.statesync.priority",  # a byte budget's choice of entities, per client per snapshot
    "netcode.lockstep.peer",  # LS_INPUT's rules and the peer record (cimports dispatch, inputs)
    "netcode.lockstep.broadcast",  # each due client's frames packet, sealed and queued (cimports peer, outbox)
    "netcode.statesync.bitpack",  # snapshot bit packing
    "netcode.statesync.rangecoder",  # range coding of snapshot updates
    "engine.smallest_three",  # rotation codes' float steps (rebasing, per snapshot)
    "engine.motion",  # a game predictor's moving rows carried on (per snapshot, each end)
    "netcode.transport.ratelimit",  # per-source token buckets (_mmsg cimports them)
    "netcode.transport._mmsg",  # many datagrams per system call (Linux only, below)
]
LINUX_ONLY = {"netcode.transport._mmsg"}  # recvmmsg / sendmmsg are Linux's
# Modules that link a system C library: a probe (header, a function, the library) compiled
# first, so a machine without it builds the rest and records a reason that says what to install.
SYSTEM_LIBRARIES = {
    "netcode.session.aead": ("openssl/evp.h", "EVP_aes_256_gcm", "crypto", "OpenSSL's libcrypto headers (Debian: libssl-dev)"),
}

MANIFEST = "_build_manifest.json"  # written into the top package ("netcode") of every build
HERE = Path(__file__).resolve().parent


def compiled_modules() -> list:
    """The modules this platform compiles."""
    return [m for m in COMPILED if sys.platform == "linux" or m not in LINUX_ONLY]


def module_source(module: str) -> Path:
    """The .pyx or .py file ``module`` is compiled from, relative to this directory."""
    path = Path(*module.split("."))
    pyx = path.with_suffix(".pyx")
    return pyx if (HERE / pyx).exists() else path.with_suffix(".py")


if __name__ == "__main__" and sys.argv[1:] in (["--compiled"], ["--compiled-sources"]):
    # Queries (no build), answered before anything a build needs is imported.
    for module in compiled_modules():
        if sys.argv[1] == "--compiled":
            print(module)
            continue
        source = module_source(module)
        print(source.as_posix())
        if (HERE / source.with_suffix(".pxd")).exists():
            print(source.with_suffix(".pxd").as_posix())
    sys.exit(0)


from setuptools import Distribution, setup  # noqa: E402 (after the queries above)
from setuptools.command.build_ext import build_ext  # noqa: E402

# Modules that did not even reach the C compiler (no Cython, Cython failed): name -> why.
_NOT_TRANSLATED: dict = {}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sources(source: Path, tree) -> dict:
    """Every file of this project ``source`` is compiled from (itself, its .pxd, the .pxd
    files it cimports), relative path -> sha256."""
    files = {source.as_posix()}
    for dep in tree.all_dependencies(source.as_posix()):
        dep = Path(dep)
        if dep.is_absolute():  # Cython's own includes (libc, cpython): not ours
            try:
                dep = dep.resolve().relative_to(HERE)
            except ValueError:
                continue
        files.add(dep.as_posix())
    return {f: _sha256(HERE / f) for f in sorted(files)}


def _stamp(sources: dict) -> str:
    return "/* ticksync sources: " + json.dumps(sources, sort_keys=True) + " */\n"


def _stamped(c_file: Path, stamp: str) -> bool:
    """Whether ``c_file`` was generated from exactly these sources (see _extensions)."""
    try:
        with open(c_file, "rb") as f:
            f.seek(max(0, c_file.stat().st_size - len(stamp.encode()) - 16))
            return f.read().decode(errors="replace").endswith(stamp)
    except OSError:
        return False


def _extensions():
    """One Extension per module in COMPILED, each carrying the hashes of its sources."""
    modules = compiled_modules()
    try:
        from Cython.Build import cythonize
        from Cython.Build.Dependencies import create_dependency_tree
    except ImportError:
        print("ticksync: Cython not found; the fast paths stay uncompiled", file=sys.stderr)
        _NOT_TRANSLATED.update(dict.fromkeys(modules, "Cython was not installed"))
        return []
    os.chdir(HERE)  # cythonize and the dependency tree take paths relative to the project
    tree = create_dependency_tree()
    extensions = []
    for module in modules:  # one failing to translate must not take the others (or the install) down
        source = module_source(module)
        try:
            sources = _sources(source, tree)
            # Cython regenerates the C file only when a source's mtime is newer than it,
            # which copies and checkouts can defeat: the C file carries the hashes of the
            # sources it came from, and is regenerated whenever they differ.
            c_file = HERE / source.with_suffix(".c")
            stamp = _stamp(sources)
            (ext,) = cythonize(
                [source.as_posix()],
                compiler_directives={"language_level": 3, "boundscheck": True, "wraparound": True},
                force=not _stamped(c_file, stamp),
                quiet=True,
            )
            if not _stamped(c_file, stamp):
                with open(c_file, "a") as f:
                    f.write("\n" + stamp)
        except Exception as exc:
            print(f"ticksync: not compiling {module} ({exc})", file=sys.stderr)
            _NOT_TRANSLATED[module] = f"Cython failed: {exc}"
            continue
        if ext.name != module:
            raise SystemExit(f"ticksync: {source} compiles as {ext.name}, not {module}")
        ext.ticksync_sources = sources
        # The fast path must compute exactly what the Python it mirrors does: no fused
        # multiply-adds (tests compare RTT estimates bit for bit).
        ext.extra_compile_args = ["-ffp-contract=off"] if sys.platform != "win32" else []
        ext.optional = True  # --inplace copies back only what was built
        extensions.append(ext)
    return extensions


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install; every build writes the manifest."""

    def finalize_options(self):
        if self.parallel is None:
            self.parallel = True  # one compiler per core
        super().finalize_options()

    def run(self):
        self._built: dict = {}  # module -> the file built
        self._failed: dict = {}  # module -> why not
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, ...
            self._skip("the fast paths", exc)
        self._remove_unbuilt()
        self._write_manifests()

    def _remove_unbuilt(self):
        """A module this build did not compile leaves no binary behind, not even an older
        build's: Python would import it in place of the source whatever the manifest says."""
        build_py = self.get_finalized_command("build_py")
        for module in compiled_modules():
            if module in self._built:
                continue
            filename = self.get_ext_filename(module)
            paths = [os.path.join(self.build_lib, filename)]
            if self.inplace:
                package_dir = build_py.get_package_dir(module.rpartition(".")[0])
                paths.append(os.path.join(package_dir, os.path.basename(filename)))
            for path in paths:
                if os.path.exists(path):
                    print(f"ticksync: removing {path} (an earlier build of {module})", file=sys.stderr)
                    os.remove(path)

    def _probe(self, module) -> str | None:
        """Why ``module``'s system library cannot be built against here, or None if it can."""
        if module not in SYSTEM_LIBRARIES:
            return None
        import tempfile

        header, function, library, what = SYSTEM_LIBRARIES[module]
        with tempfile.TemporaryDirectory() as tmp:
            probe = os.path.join(tmp, "probe.c")
            with open(probe, "w") as f:
                f.write(f"#include <{header}>\nint main(void) {{ return {function}() == 0; }}\n")
            try:
                objects = self.compiler.compile([probe], output_dir=tmp)
                self.compiler.link_executable(objects, "probe", output_dir=tmp, libraries=[library])
            except Exception:
                return f"{what} not found"
        return None

    def build_extension(self, ext):
        missing = self._probe(ext.name)
        if missing:
            print(f"ticksync: not compiling {ext.name} ({missing}); it runs from its source", file=sys.stderr)
            self._failed[ext.name] = missing
            return
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(ext.name, exc)
            self._failed[ext.name] = f"compile failed: {exc}"
        else:
            self._built[ext.name] = os.path.basename(self.get_ext_filename(self.get_ext_fullname(ext.name)))

    @staticmethod
    def _skip(what, exc):
        print(f"ticksync: not compiling {what} ({exc}); the general path will run", file=sys.stderr)

    def _manifest(self) -> dict:
        sources = {ext.name: ext.ticksync_sources for ext in self.extensions}
        modules = {}
        for module in compiled_modules():
            if module in self._built:
                modules[module] = {"file": self._built[module], "sources": sources[module]}
            else:
                why = _NOT_TRANSLATED.get(module) or self._failed.get(module) or "compile failed"
                modules[module] = {"error": why}
        return {"modules": modules}

    def _manifest_paths(self):
        """The manifest in the build output (what a wheel ships), and in place beside the
        sources for ``--inplace`` and editable installs."""
        yield os.path.join(self.build_lib, "netcode", MANIFEST)
        if self.inplace:
            package_dir = self.get_finalized_command("build_py").get_package_dir("netcode")
            yield os.path.join(package_dir, MANIFEST)

    def _write_manifests(self):
        import sysconfig

        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        build = self._manifest()
        for path in self._manifest_paths():
            # One entry per interpreter (its extension suffix): a checkout built in place
            # for two Pythons keeps both.
            try:
                with open(path) as f:
                    manifest = json.load(f)
                manifest["builds"][suffix] = build
            except (OSError, ValueError, KeyError, TypeError):
                manifest = {"format": 1, "builds": {suffix: build}}
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "w") as f:
                json.dump(manifest, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(path + ".tmp", path)

    def get_outputs(self):
        return super().get_outputs() + [os.path.join(self.build_lib, "netcode", MANIFEST)]

    def get_output_mapping(self):
        mapping = dict(super().get_output_mapping())
        paths = list(self._manifest_paths())
        if len(paths) == 2:
            mapping[paths[0]] = paths[1]
        return mapping


class BinaryDistribution(Distribution):
    """build_ext always runs, so even a build that compiles nothing (no Cython) records why."""

    def has_ext_modules(self):
        return True


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    distclass=BinaryDistribution,
)
