"""Builds the optional compiled fast paths: netcode/statesync/fastpath.py (Cython pure-Python mode)
and, on Linux, netcode/transport/_mmsg.pyx (many datagrams per system call).

Everything else is in pyproject.toml. If Cython or a C compiler is missing, or the
compile fails, the install goes on without it and the engine uses its general path
(``python -m netcode.compiled`` says which one an install has).
"""

import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, ...
            self._skip(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc)

    @staticmethod
    def _skip(exc):
        print(f"ticksync: not compiling the fast path ({exc}); the general path will run", file=sys.stderr)


def _extensions():
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("ticksync: Cython not found; the fast path stays uncompiled", file=sys.stderr)
        return []
    sources = ["netcode/statesync/fastpath.py", "netcode/statesync/bitpack.py"]
    if sys.platform == "linux":
        sources.append("netcode/transport/_mmsg.pyx")  # recvmmsg is Linux's
    extensions = []
    for source in sources:  # one failing to translate must not take the others (or the install) down
        try:
            extensions += cythonize(
                [source],
                compiler_directives={"language_level": 3, "boundscheck": True, "wraparound": True},
                quiet=True,
            )
        except Exception as exc:
            print(f"ticksync: not compiling {source} ({exc})", file=sys.stderr)
    for ext in extensions:
        # The fast path must compute exactly what the Python it mirrors does: no fused
        # multiply-adds (tests compare RTT estimates bit for bit).
        ext.extra_compile_args = ["-ffp-contract=off"] if sys.platform != "win32" else []
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
