"""The reactor: one loop per strategy process, and the guard around every strategy callback.

Every strategy callback goes through :meth:`Reactor.invoke` (or the batch form used by the
market-data path), which:

* never lets an exception escape: it is logged with its traceback, the callback's name and its
  arguments, counted, and reported to the ``on_error`` hook (the env publishes it to the status
  topic and Telegram); the reactor goes on. The same error raised again from the same place is
  logged in one line, at its 10th, 100th, 1000th... time, so that a callback failing on every
  event does not bury the log (the count and the hook still see every one);
* measures how long the callback ran and reports one that blocked the reactor for longer than
  ``slow_callback_ms`` (which callback, how long). Live, on the wall clock, with a WARNING; in a
  backtest (``cpu_time=True``) on the thread's CPU time, so that a busy machine does not make a
  trivial callback look slow, counted (``slow_by_name``) for the run's summary instead of logged.
  Every callback is timed on the wall clock (``perf_counter_ns``, a few tens of ns); the thread's
  CPU clock is a system call (about 600 ns here), so a backtest reads it only every
  :data:`CPU_MARK_EVERY` callbacks and for a callback slower than the threshold by the wall
  clock: that callback's CPU time is its wall time times the share of the wall time the thread
  ran on a CPU since the last reading (a callback that waited for a CPU on a busy machine is
  not counted as slow; wall time is never less than CPU time, so no slow one is missed by the
  first test).

Live, the reactor owns the process's ``asyncio.TaskGroup``; :meth:`spawn` is the only way to start
a background task (named ``<component>[<id>].<role>``, referenced, failures logged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from mlthon.infra.clock import Scheduler

log = logging.getLogger(__name__)

#: A backtest reads the thread's CPU clock every this many callbacks (see the module docstring).
CPU_MARK_EVERY = 256
_wall_ns = time.perf_counter_ns
_cpu_ns = time.thread_time_ns

ErrorHook = Callable[[str, BaseException], None]
SlowHook = Callable[[str, float], None]

_ARG_REPR_LIMIT = 300


def _short_args(args: tuple[Any, ...]) -> str:
    text = ", ".join(repr(a) for a in args)
    return text if len(text) <= _ARG_REPR_LIMIT else text[:_ARG_REPR_LIMIT] + "..."


_ERROR_SITES_MAX = 10_000


def _error_site(name: str, exc: BaseException) -> tuple[str, str, str, int]:
    """Where an error was raised: the callback, the exception type and the innermost frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return (name, type(exc).__name__, "", 0)
    return (name, type(exc).__name__, tb.tb_frame.f_code.co_filename, tb.tb_lineno)


def _is_power_of_ten(n: int) -> bool:
    while n % 10 == 0:
        n //= 10
    return n == 1


class Reactor:
    """Runs callbacks one at a time on one scheduler, guarding and timing each.

    Args:
        scheduler: where time and scheduling come from (live or simulated).
        name: the component's name, for logs and task names.
        slow_callback_ms: a callback running longer than this is reported.
        on_error: called with (callback name, exception) after a callback raised.
        on_slow: called with (callback name, milliseconds) after a slow callback.
        cpu_time: time callbacks on the thread's CPU time (backtests) instead of the wall
            clock, and count slow ones in ``slow_by_name`` (DEBUG log) instead of warning.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        name: str = "reactor",
        slow_callback_ms: float = 50.0,
        on_error: ErrorHook | None = None,
        on_slow: SlowHook | None = None,
        cpu_time: bool = False,
    ) -> None:
        self.scheduler = scheduler
        self.name = name
        self.slow_callback_ns = int(slow_callback_ms * 1_000_000)
        self.on_error = on_error
        self.on_slow = on_slow
        self.callbacks = 0
        self.callback_errors = 0
        self.slow_callbacks = 0
        self.cpu_time = cpu_time
        # What times a callback (ns): the wall clock; a backtest turns a slow one into CPU time
        # with the thread's CPU share since the last reading of its CPU clock (`blocked`).
        self.timer_ns: Callable[[], int] = _wall_ns
        self._mark_wall = _wall_ns()
        self._mark_cpu = _cpu_ns() if cpu_time else 0
        # callback name -> (times slow, the longest in ms)
        self.slow_by_name: dict[str, tuple[int, float]] = {}
        self.last_error = ""
        # (callback, exception type, file, line) -> times raised
        self._error_sites: dict[tuple[str, str, str, int], int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._task_group: asyncio.TaskGroup | None = None

    # --- guarded invocation --------------------------------------------------------------------

    def invoke(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` under the guard; return its result, or None if it raised."""
        self.callbacks += 1
        t0 = _wall_ns()
        try:
            return fn(*args)
        except Exception as exc:
            self.failed(getattr(fn, "__name__", repr(fn)), exc, args)
            return None
        finally:
            elapsed = _wall_ns() - t0
            if elapsed > self.slow_callback_ns:
                self.blocked(getattr(fn, "__name__", repr(fn)), elapsed)
            elif self.cpu_time and not self.callbacks % CPU_MARK_EVERY:
                self._mark()

    def _mark(self) -> tuple[int, int]:
        """Read both clocks; returns the wall and CPU time since the last reading."""
        wall, cpu = _wall_ns(), _cpu_ns()
        spans = (wall - self._mark_wall, cpu - self._mark_cpu)
        self._mark_wall, self._mark_cpu = wall, cpu
        return spans

    def blocked(self, name: str, elapsed_ns: int) -> None:
        """Callback ``name`` ran ``elapsed_ns`` by the wall clock, more than the threshold: live
        it is slow; in a backtest, only if its CPU time (estimated, see the module docstring)
        is more than the threshold too."""
        if self.cpu_time:
            wall, cpu = self._mark()
            share = min(1.0, cpu / wall) if wall > 0 else 1.0
            elapsed_ns = int(elapsed_ns * share)
            if elapsed_ns <= self.slow_callback_ns:
                return
        self.slow(name, elapsed_ns)

    def failed(self, name: str, exc: BaseException, args: tuple[Any, ...] = ()) -> None:
        """Record that callback ``name`` raised ``exc``."""
        self.callback_errors += 1
        self.last_error = f"{name}: {type(exc).__name__}: {exc}"
        site = _error_site(name, exc)
        times = self._error_sites.get(site, 0) + 1
        if len(self._error_sites) < _ERROR_SITES_MAX or times > 1:
            self._error_sites[site] = times
        if times == 1:
            log.error(
                "%s: callback %s(%s) raised %s: %s",
                self.name,
                name,
                _short_args(args),
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
        elif _is_power_of_ten(times):
            log.error(
                "%s: callback %s raised %s again at %s:%d (%d times so far; last: %s)",
                self.name,
                name,
                site[1],
                site[2],
                site[3],
                times,
                exc,
            )
        if self.on_error is not None:
            try:
                self.on_error(name, exc)
            except Exception:
                log.exception("%s: error hook failed", self.name)

    def slow(self, name: str, elapsed_ns: int) -> None:
        """Record that callback ``name`` blocked the reactor for ``elapsed_ns``."""
        self.slow_callbacks += 1
        ms = elapsed_ns / 1_000_000
        times, worst = self.slow_by_name.get(name, (0, 0.0))
        self.slow_by_name[name] = (times + 1, max(worst, ms))
        log.log(
            logging.DEBUG if self.cpu_time else logging.WARNING,
            "%s: callback %s blocked the reactor for %.1f ms (threshold %.1f ms)",
            self.name,
            name,
            ms,
            self.slow_callback_ns / 1_000_000,
        )
        if self.on_slow is not None:
            try:
                self.on_slow(name, ms)
            except Exception:
                log.exception("%s: slow hook failed", self.name)

    # --- tasks (live only) ---------------------------------------------------------------------

    def attach_task_group(self, tg: asyncio.TaskGroup | None) -> None:
        """Use ``tg`` for :meth:`spawn` (the process's supervisor TaskGroup)."""
        self._task_group = tg

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start a named background task, keep a reference, and log its failure."""
        full = f"{self.name}.{name}"
        if self._task_group is not None:
            task = self._task_group.create_task(coro, name=full)
        else:
            task = asyncio.get_running_loop().create_task(coro, name=full)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)

    async def cancel_tasks(self, timeout_s: float = 5.0) -> None:
        """Cancel every task spawned here, waiting at most ``timeout_s``; log stragglers."""
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for t in pending:
            log.warning("task %s did not stop within %.1fs", t.get_name(), timeout_s)
