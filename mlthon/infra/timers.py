"""Timers and daily callbacks on the reactor's clock (simulated time in backtests).

* ``setup_timer(duration_ms, fn)``: ``fn()`` runs every ``duration_ms`` for as long as it returns
  True; anything else (None included) ends the timer. The next run is scheduled from the planned
  time, not from when the callback finished, so a timer does not drift.
* ``setup_daily_callback('HH:mm:ss', fn)``: ``fn()`` runs each day at that local wall time, for as
  long as it returns True. Local time is the ``tz`` given (the strategy's ``timezone``), UTC when
  none is: never the host's zone, so a backtest fires the same callbacks on every machine. Each
  next run is computed from the calendar, not by adding 24 h, so it stays at HH:mm:ss across
  daylight-saving changes (a day is then 23 or 25 hours long). A time that does not exist on a
  spring-forward day runs at the first valid instant after it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from mlthon.basics.errors import InvalidArgument, InvalidArgumentType
from mlthon.infra.clock import NS_PER_MS, NS_PER_S, Handle
from mlthon.infra.reactor import Reactor

_HMS_RE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})$")


def parse_hh_mm_ss(hh_mm_ss: object) -> tuple[int, int, int]:
    """Parse 'HH:mm:ss' (24 h); raise InvalidArgument naming the parameter otherwise."""
    if not isinstance(hh_mm_ss, str):
        raise InvalidArgumentType("hh_mm_ss", hh_mm_ss, "must be a str 'HH:mm:ss'")
    m = _HMS_RE.match(hh_mm_ss.strip())
    if not m:
        raise InvalidArgument("hh_mm_ss", hh_mm_ss, "must look like 'HH:mm:ss', e.g. '16:30:00'")
    h, mi, s = (int(x) for x in m.groups())
    if h > 23 or mi > 59 or s > 59:
        raise InvalidArgument("hh_mm_ss", hh_mm_ss, "hour 00-23, minute and second 00-59")
    return h, mi, s


def next_daily_ns(now_ns: int, hms: tuple[int, int, int], tz: dt.tzinfo | None = None) -> int:
    """The first instant strictly after ``now_ns`` whose local wall time is ``hms``."""
    h, mi, s = hms
    now_s = now_ns // NS_PER_S
    if tz is None:
        lt = time.localtime(now_s)
        for day_offset in range(3):
            # mktime normalises day overflow and applies the DST rule of that day (isdst=-1).
            cand = int(
                time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday + day_offset, h, mi, s, 0, 0, -1))
            )
            if cand * NS_PER_S > now_ns:
                return cand * NS_PER_S
        raise AssertionError("unreachable: a day always has the time")
    local = dt.datetime.fromtimestamp(now_s, tz)
    for day_offset in range(3):
        day = local.date() + dt.timedelta(days=day_offset)
        wall = dt.datetime(day.year, day.month, day.day, h, mi, s, tzinfo=tz)
        # Round-trip through UTC: a non-existent wall time maps to the instant after the gap.
        utc = wall.astimezone(dt.UTC)
        cand_ns = int(utc.timestamp()) * NS_PER_S
        if cand_ns > now_ns:
            return cand_ns
    raise AssertionError("unreachable: a day always has the time")


class TimerService:
    """Owns a strategy's timers. Callbacks run through the reactor's guard."""

    def __init__(self, reactor: Reactor, tz: str | None = None) -> None:
        self._reactor = reactor
        self._ids = itertools.count(1)
        self._handles: dict[int, Handle] = {}
        self._tz: dt.tzinfo = ZoneInfo(tz) if tz else dt.UTC

    @property
    def active(self) -> int:
        """Number of pending timers and daily callbacks."""
        return len(self._handles)

    def setup_timer(self, duration_ms: object, callback_func: object) -> int:
        """Start a repeating-while-True timer; returns its id."""
        if isinstance(duration_ms, bool) or not isinstance(duration_ms, int):
            raise InvalidArgumentType("duration_ms", duration_ms, "must be an int of milliseconds")
        if duration_ms <= 0:
            raise InvalidArgument("duration_ms", duration_ms, "must be > 0")
        if not callable(callback_func):
            raise InvalidArgumentType("callback_func", callback_func, "must be callable")
        tid = next(self._ids)
        period = duration_ms * NS_PER_MS
        due = self._reactor.scheduler.now_ns() + period
        self._handles[tid] = self._reactor.scheduler.call_at(
            due, self._fire_timer, tid, due, period, callback_func
        )
        return tid

    def _fire_timer(self, tid: int, due: int, period: int, fn: Callable[[], Any]) -> None:
        if tid not in self._handles:
            return
        again = self._reactor.invoke(fn)
        if again is True and tid in self._handles:
            nxt = due + period
            now = self._reactor.scheduler.now_ns()
            if nxt <= now:  # the callback (or the process) fell behind: skip missed periods
                nxt = now + period - ((now - due) % period)
            self._handles[tid] = self._reactor.scheduler.call_at(
                nxt, self._fire_timer, tid, nxt, period, fn
            )
        else:
            self._handles.pop(tid, None)

    def setup_daily_callback(self, hh_mm_ss: object, callback_func: object) -> int:
        """Start a daily-while-True callback at local ``hh_mm_ss``; returns its id."""
        hms = parse_hh_mm_ss(hh_mm_ss)
        if not callable(callback_func):
            raise InvalidArgumentType("callback_func", callback_func, "must be callable")
        tid = next(self._ids)
        self._schedule_daily(tid, hms, callback_func)
        return tid

    def _schedule_daily(self, tid: int, hms: tuple[int, int, int], fn: Callable[[], Any]) -> None:
        due = next_daily_ns(self._reactor.scheduler.now_ns(), hms, self._tz)
        self._handles[tid] = self._reactor.scheduler.call_at(due, self._fire_daily, tid, hms, fn)

    def _fire_daily(self, tid: int, hms: tuple[int, int, int], fn: Callable[[], Any]) -> None:
        if tid not in self._handles:
            return
        again = self._reactor.invoke(fn)
        if again is True and tid in self._handles:
            self._schedule_daily(tid, hms, fn)
        else:
            self._handles.pop(tid, None)

    def cancel(self, timer_id: int) -> bool:
        """Cancel a timer; True if it was pending."""
        h = self._handles.pop(timer_id, None)
        if h is None:
            return False
        h.cancel()
        return True

    def cancel_all(self) -> None:
        """Cancel every timer."""
        for h in self._handles.values():
            h.cancel()
        self._handles.clear()
