"""The compiled core: which implementation of the hot classes runs, compiled or pure Python.

mlthon's hot classes (today :class:`~mlthon.basics.tickbook.TickBook`) exist twice with one
interface and identical results: a pure-Python class beside its module's users (e.g.
``mlthon.basics.tickbook.PyTickBook``) and a compiled one here (``mlthon/_core/NAME.pyx``, Cython,
built by ``pip install`` when a C compiler is present). The module that owns a class exports the
compiled one under the public name when it is built::

    TickBook = _core.pick("tickbook", "TickBook", PyTickBook)

The choice is made once per process, at the first import, and logged once::

    mlthon core: compiled (mlthon._core.tickbook)
    mlthon core: pure Python (MLTHON_PURE=1)
    mlthon core: pure Python (no compiled extension: No module named 'mlthon._core.tickbook')

The last is a WARNING (the install had no C compiler, or the compile failed); the others INFO.
``MLTHON_PURE=1`` (also ``true``, ``yes``, ``on``) forces the pure-Python core, to compare the two
or to rule the compiled one out; empty, ``0``, ``false``, ``no`` and ``off`` leave the choice
automatic. ``python -m mlthon._core`` prints the choice.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from mlthon._core.source_hash import source_hash
from mlthon.basics.errors import ConfigError

log = logging.getLogger(__name__)

#: The environment variable that forces the pure-Python core.
PURE_ENV = "MLTHON_PURE"
#: The compiled modules, by name (``mlthon._core.<name>``).
MODULES = ("tickbook", "levels")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

T = TypeVar("T")


def pure_forced(environ: dict[str, str] | None = None) -> bool:
    """Whether ``MLTHON_PURE`` (in ``environ``, default ``os.environ``) forces pure Python.

    Raises:
        ConfigError: the variable holds something else than a yes or a no.
    """
    value = (os.environ if environ is None else environ).get(PURE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(
        f"{PURE_ENV}={value!r}: expected 1/true/yes/on (pure Python) or 0/false/no/off/empty",
        source="environment",
    )


def _load() -> tuple[dict[str, ModuleType], str]:
    """The compiled modules, or none and why."""
    if pure_forced():
        return {}, f"{PURE_ENV}=1"
    modules: dict[str, ModuleType] = {}
    for name in MODULES:
        try:
            modules[name] = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            return {}, f"no compiled extension: {exc}"
    return modules, ""


_modules, REASON = _load()
#: True when the compiled core runs; False when the pure-Python one does (see :data:`REASON`).
COMPILED: bool = bool(_modules)


def describe() -> str:
    """The log line's text: which core runs, and why pure Python when it does."""
    if COMPILED:
        names = ", ".join(m.__name__ for m in _modules.values())
        return f"mlthon core: compiled ({names})"
    return f"mlthon core: pure Python ({REASON})"


def stale_sources() -> list[str]:
    """The ``.pyx`` files beside their compiled modules that changed since those were built (an
    editable checkout edited since its last build: ``make core`` rebuilds). Empty when the sources
    are not beside the modules or match them."""
    out = []
    for mod in _modules.values():
        built = getattr(mod, "SOURCE_HASH", "")
        source = Path(mod.__file__ or "").parent / f"{mod.__name__.rsplit('.', 1)[-1]}.pyx"
        if built and source.exists() and source_hash(source) != built:
            out.append(str(source))
    return out


def pick(module: str, name: str, pure: T) -> T:
    """``name`` from the compiled ``mlthon._core.<module>`` when the compiled core runs, else
    ``pure`` (the pure-Python twin, same interface and results)."""
    mod = _modules.get(module)
    if mod is None:
        return pure
    compiled: T = getattr(mod, name)
    return compiled


if COMPILED:
    log.info("%s", describe())
    for _src in stale_sources():
        log.warning("mlthon core: %s changed since it was compiled; run `make core`", _src)
elif REASON.startswith(PURE_ENV):
    log.info("%s", describe())
else:
    log.warning("%s", describe())
