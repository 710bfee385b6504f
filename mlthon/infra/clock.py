"""Time and scheduling. Nothing else in mlthon reads the wall clock.

A :class:`Scheduler` pairs a clock with a way to run functions soon or at a given time:

* :class:`LiveScheduler` reads the wall clock and schedules on the running asyncio loop;
* :class:`SimScheduler` keeps simulated time, advanced by a backtest driver, and runs the functions
  that fall due in timestamp order (ties in the order they were scheduled), so a backtest is
  deterministic.

All times are integer nanoseconds since the Unix epoch.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class Clock(ABC):
    """A source of the current time."""

    @abstractmethod
    def now_ns(self) -> int:
        """The current time, ns since the epoch."""

    def now_s(self) -> float:
        """The current time in seconds (for display only)."""
        return self.now_ns() / NS_PER_S


class LiveClock(Clock):
    """The wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


class SimClock(Clock):
    """Simulated time, moved forward only by :meth:`advance_to`."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        """Move time forward to ``ts_ns``; time never goes backwards."""
        if ts_ns > self._now:
            self._now = ts_ns


class Handle(ABC):
    """A scheduled call that can be cancelled."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the call from happening (no effect if it already ran)."""

    @property
    @abstractmethod
    def cancelled(self) -> bool:
        """True once cancelled."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """True once the call ran or was cancelled (the handle can be forgotten)."""


class Scheduler(ABC):
    """Runs functions soon or at a given time, on one thread, one at a time."""

    clock: Clock

    def now_ns(self) -> int:
        """The scheduler's current time."""
        return self.clock.now_ns()

    @abstractmethod
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` after the current callback returns, before any later timer."""

    @abstractmethod
    def call_at(self, ts_ns: int, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` at ``ts_ns`` (at once-ish if that is in the past)."""

    def call_later(self, delay_ns: int, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` ``delay_ns`` from now."""
        return self.call_at(self.now_ns() + max(0, delay_ns), fn, *args)


class _AsyncioHandle(Handle):
    __slots__ = ("_h", "_loop")

    def __init__(self, h: asyncio.TimerHandle, loop: asyncio.AbstractEventLoop) -> None:
        self._h = h
        self._loop = loop

    def cancel(self) -> None:
        self._h.cancel()

    @property
    def cancelled(self) -> bool:
        return self._h.cancelled()

    @property
    def done(self) -> bool:
        return self._h.cancelled() or self._h.when() < self._loop.time()


class LiveScheduler(Scheduler):
    """Wall-clock scheduling on the running asyncio loop."""

    def __init__(self, clock: Clock | None = None, loop: asyncio.AbstractEventLoop | None = None):
        self.clock = clock or LiveClock()
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon(fn, *args)

    def call_at(self, ts_ns: int, fn: Callable[..., Any], *args: Any) -> Handle:
        delay_s = max(0, ts_ns - self.clock.now_ns()) / NS_PER_S
        return _AsyncioHandle(self.loop.call_later(delay_s, fn, *args), self.loop)


class _SimHandle(Handle):
    __slots__ = ("_cancelled", "ran")

    def __init__(self) -> None:
        self._cancelled = False
        self.ran = False

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def done(self) -> bool:
        return self._cancelled or self.ran


class SimScheduler(Scheduler):
    """Deterministic scheduling in simulated time.

    The driver calls :meth:`run_until` with the timestamp of the next input event: every call that
    falls due up to then runs, in (time, order of scheduling) order, with the clock set to its time.
    Calls made soon (``call_soon``) run before any later timer, at the current time.
    """

    def __init__(self, clock: SimClock | None = None) -> None:
        self.clock: SimClock = clock or SimClock()
        # The clock's own method, one call instead of two on every read of the time.
        self.now_ns = self.clock.now_ns  # type: ignore[method-assign]
        self._soon: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        #: The calls made soon and not run yet (read-only: a driver that owns the loop checks it
        #: is empty before delivering something itself, as :meth:`InProcBus.publish_now`).
        self.soon_queue = self._soon
        self._heap: list[tuple[int, int, _SimHandle, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._soon.append((fn, args))

    def call_at(self, ts_ns: int, fn: Callable[..., Any], *args: Any) -> Handle:
        h = _SimHandle()
        heapq.heappush(self._heap, (max(ts_ns, self.clock.now_ns()), next(self._seq), h, fn, args))
        return h

    def run_soon(self) -> None:
        """Run every call made soon, including those they schedule soon in turn."""
        soon = self._soon
        while soon:
            fn, args = soon.popleft()
            fn(*args)

    def next_due_ns(self) -> int | None:
        """The time of the earliest pending timer, if any."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, ts_ns: int) -> None:
        """Run everything due up to and including ``ts_ns``, then set the clock to ``ts_ns``."""
        heap = self._heap
        clock = self.clock
        if not self._soon and (not heap or heap[0][0] > ts_ns):
            # Nothing to run (most market-data messages of a backtest): only the time moves.
            if ts_ns > clock._now:
                clock._now = ts_ns
            return
        self.run_soon()
        while heap and heap[0][0] <= ts_ns:
            due, _, h, fn, args = heapq.heappop(heap)
            if h._cancelled:
                continue
            h.ran = True
            clock.advance_to(due)
            fn(*args)
            self.run_soon()
        clock.advance_to(ts_ns)

    def run_all(self, limit_ns: int | None = None) -> None:
        """Run every pending call (timers up to ``limit_ns`` if given)."""
        self.run_soon()
        while True:
            due = self.next_due_ns()
            if due is None or (limit_ns is not None and due > limit_ns):
                break
            self.run_until(due)

    @property
    def pending(self) -> int:
        """Number of calls waiting (soon plus timers, cancelled ones included)."""
        return len(self._soon) + len(self._heap)
