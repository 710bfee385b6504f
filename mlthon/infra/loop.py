"""The event loop of every long-running process: uvloop when it is installed, else asyncio's.

Every process (strategy, control, feed, gateway, Telegram bridge, the embedded broker and the
``mlthon run`` launcher) enters its loop through :func:`run_process`, never ``asyncio.run``, so
that all of them choose the same way and say so once at start::

    event loop: uvloop 0.23.0
    event loop: asyncio (uvloop not installed; pip install 'mlthon[fast]')
    event loop: asyncio (MLTHON_LOOP=asyncio)

uvloop (libuv) runs the same asyncio code with a cheaper scheduler and socket layer; it comes with
the ``fast`` extra (``pip install 'mlthon[fast]'``). The environment variable ``MLTHON_LOOP``
chooses:

* ``auto`` (the default, also when unset or empty): uvloop if it can be imported, else asyncio;
* ``asyncio``: the standard loop even when uvloop is installed (to compare, or to rule uvloop out
  when chasing a problem);
* ``uvloop``: uvloop or nothing: a process refuses to start (:class:`ConfigError`) when it is not
  installed.

Children started by ``mlthon run`` inherit the variable. Asyncio's debug mode
(``PYTHONASYNCIODEBUG=1`` or ``python -X dev``) applies on both loops: uvloop reads the same
switches (slow callbacks, never-awaited coroutines). Backtests have no event loop in their hot path
and do not use this module.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import attrs

from mlthon.basics.errors import ConfigError

log = logging.getLogger(__name__)

#: The environment variable that chooses the loop: ``auto``, ``uvloop`` or ``asyncio``.
LOOP_ENV = "MLTHON_LOOP"
#: How to get uvloop.
INSTALL_HINT = "pip install 'mlthon[fast]'"
#: The values ``MLTHON_LOOP`` accepts (``auto`` also when unset or empty).
CHOICES = ("auto", "uvloop", "asyncio")

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@attrs.frozen
class LoopChoice:
    """The loop a process runs on, and why.

    Attributes:
        name: ``"uvloop"`` or ``"asyncio"``.
        version: uvloop's version (empty for asyncio).
        reason: why asyncio was chosen (empty for uvloop).
        factory: builds the loop (None: asyncio's default loop).
    """

    name: str
    version: str = ""
    reason: str = ""
    factory: LoopFactory | None = None

    def describe(self) -> str:
        """The start-up log line's text, e.g. ``event loop: uvloop 0.23.0``."""
        if self.name == "uvloop":
            return f"event loop: uvloop {self.version}"
        return f"event loop: asyncio ({self.reason})" if self.reason else "event loop: asyncio"


def _import_uvloop() -> Any:
    """The uvloop module, or None when it cannot be imported."""
    try:
        return importlib.import_module("uvloop")
    except ImportError:
        return None


def choose_loop(environ: Mapping[str, str] | None = None) -> LoopChoice:
    """The loop ``MLTHON_LOOP`` (in ``environ``, default ``os.environ``) asks for.

    Raises:
        ConfigError: ``MLTHON_LOOP`` holds an unknown value, or says ``uvloop`` and uvloop is
            not installed.
    """
    env = os.environ if environ is None else environ
    setting = env.get(LOOP_ENV, "").strip().lower() or "auto"
    if setting not in CHOICES:
        raise ConfigError(
            f"{LOOP_ENV}={env.get(LOOP_ENV)!r}: expected one of {', '.join(CHOICES)}",
            source="environment",
        )
    if setting == "asyncio":
        return LoopChoice("asyncio", reason=f"{LOOP_ENV}=asyncio")
    uvloop = _import_uvloop()
    if uvloop is None:
        if setting == "uvloop":
            raise ConfigError(
                f"{LOOP_ENV}=uvloop but uvloop is not installed; {INSTALL_HINT}",
                source="environment",
            )
        return LoopChoice("asyncio", reason=f"uvloop not installed; {INSTALL_HINT}")
    return LoopChoice(
        "uvloop", version=str(getattr(uvloop, "__version__", "?")), factory=uvloop.new_event_loop
    )


def run_process(
    main: Coroutine[Any, Any, T],
    *,
    logger: logging.Logger | None = None,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Run ``main`` to completion on the chosen loop (:func:`choose_loop`), as ``asyncio.run``
    does (the loop is closed, leftover tasks cancelled, async generators and the default
    executor shut down), after logging the choice once at INFO on ``logger`` (default this
    module's).

    Raises:
        ConfigError: ``MLTHON_LOOP`` is wrong (``main`` is closed, not run).
        Exception: whatever ``main`` raises.
    """
    try:
        choice = choose_loop(environ)
    except ConfigError:
        main.close()
        raise
    (logger or log).info("%s", choice.describe())
    # debug=None: the loop's own default, which reads PYTHONASYNCIODEBUG and -X dev (asyncio's
    # and uvloop's alike).
    with asyncio.Runner(loop_factory=choice.factory) as runner:
        return runner.run(main)
