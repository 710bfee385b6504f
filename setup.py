"""Build of mlthon: the metadata lives in setup.cfg; this adds the compiled core.

The compiled core (``mlthon/_core/*.pyx``, Cython) is optional. ``pip install`` (editable or not)
and ``pip wheel`` compile it when Cython and a C compiler are there; when either is missing or the
compile fails, the install still succeeds without it, says so on stderr, and mlthon runs the
pure-Python implementation of the same interface (``mlthon._core`` logs which one runs).

``MLTHON_NO_EXT=1`` skips the compiled core on purpose. ``make core`` rebuilds it in place after an
edit of a ``.pyx`` in an editable checkout.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

#: The compiled modules of mlthon/_core (each NAME.pyx becomes mlthon._core.NAME).
CORE_MODULES = ("tickbook", "levels")

DIRECTIVES = {
    "language_level": "3",
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}


def _say(text: str) -> None:
    print(f"mlthon build: {text}", file=sys.stderr)  # noqa: T201 (a build script reports here)


def _extensions() -> list[Extension]:
    if os.environ.get("MLTHON_NO_EXT", "").strip() not in ("", "0"):
        _say("MLTHON_NO_EXT is set: no compiled core; mlthon will use its pure-Python core")
        return []
    try:
        from Cython.Build import cythonize
        from Cython.Compiler.Errors import CompileError as CythonError
    except ImportError:
        _say("Cython is not installed: no compiled core; mlthon will use its pure-Python core")
        return []
    here = Path(__file__).resolve().parent
    core = here / "mlthon" / "_core"
    # the sources' hash goes into each module, so an out-of-date build is told at import
    spec = importlib.util.spec_from_file_location("_mlthon_source_hash", core / "source_hash.py")
    assert spec is not None
    assert spec.loader is not None
    hasher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hasher)
    exts = [
        Extension(
            f"mlthon._core.{name}",
            [f"mlthon/_core/{name}.pyx"],
            define_macros=[("MLTHON_SRC_HASH", f'"{hasher.source_hash(core / f"{name}.pyx")}"')],
        )
        for name in CORE_MODULES
        if (core / f"{name}.pyx").exists()
    ]
    try:
        return list(
            cythonize(exts, build_dir="build/cython", compiler_directives=DIRECTIVES, quiet=True)
        )
    except (CythonError, OSError, ValueError) as exc:
        _say(f"Cython could not translate the core ({exc}); mlthon will use its pure-Python core")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that leaves out an extension it cannot compile instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except (PlatformError, CCompilerError, ExecError, OSError) as exc:
            _say(f"no C compiler usable ({exc}); mlthon will use its pure-Python core")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError, OSError, ValueError) as exc:
            _say(
                f"compiling {ext.name} failed ({exc}); mlthon will use its pure-Python core "
                "(install a C compiler, e.g. apt-get install gcc, and reinstall to get it)"
            )
            self._failed = [*getattr(self, "_failed", []), ext.name]
        else:
            _say(f"compiled {ext.name}")

    def copy_extensions_to_source(self) -> None:
        # editable installs copy the built modules into the source tree: only those that built
        failed = set(getattr(self, "_failed", []))
        if failed:
            self.extensions = [e for e in self.extensions if e.name not in failed]
        super().copy_extensions_to_source()

    def get_outputs(self) -> list[str]:
        return [p for p in super().get_outputs() if os.path.exists(p)]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
