"""Timers and daily callbacks on the simulated clock and on the wall clock (freezegun)."""

import asyncio
import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from mlthon.basics import InvalidArgument, InvalidArgumentType
from mlthon.infra.clock import NS_PER_MS, NS_PER_S, LiveScheduler, SimScheduler
from mlthon.infra.reactor import Reactor
from mlthon.infra.timers import TimerService, next_daily_ns

T0 = int(dt.datetime(2026, 3, 7, 12, 0, tzinfo=dt.UTC).timestamp()) * NS_PER_S


def sim(start=T0, tz=None):
    sched = SimScheduler()
    sched.clock.advance_to(start)
    return sched, TimerService(Reactor(sched), tz)


def test_timer_renews_while_true_and_runs_in_simulated_time():
    sched, timers = sim()
    fired = []

    def cb():
        fired.append(sched.now_ns())
        return len(fired) < 3

    timers.setup_timer(250, cb)
    sched.run_until(T0 + 10 * NS_PER_S)
    assert fired == [T0 + 250 * NS_PER_MS, T0 + 500 * NS_PER_MS, T0 + 750 * NS_PER_MS]
    assert timers.active == 0


@pytest.mark.parametrize("ret", [None, False, 1, "yes"])
def test_timer_stops_unless_exactly_true(ret):
    sched, timers = sim()
    fired = []
    timers.setup_timer(10, lambda: fired.append(1) or ret)
    sched.run_until(T0 + NS_PER_S)
    assert fired == [1]


def test_timer_that_raises_is_logged_and_stops_without_breaking_others(caplog):
    sched, timers = sim()
    ok = []
    timers.setup_timer(10, lambda: 1 / 0)
    timers.setup_timer(15, lambda: ok.append(1) or len(ok) < 2)
    sched.run_until(T0 + NS_PER_S)
    assert ok == [1, 1]
    assert "ZeroDivisionError" in caplog.text


def test_cancel_timer():
    sched, timers = sim()
    fired = []
    tid = timers.setup_timer(10, lambda: fired.append(1) or True)
    sched.run_until(T0 + 25 * NS_PER_MS)
    assert timers.cancel(tid) and not timers.cancel(tid)
    sched.run_until(T0 + NS_PER_S)
    assert fired == [1, 1]


@pytest.mark.parametrize(
    "bad,exc",
    [
        (0, InvalidArgument),
        (-5, InvalidArgument),
        (1.5, InvalidArgumentType),
        ("10", InvalidArgumentType),
        (True, InvalidArgumentType),
    ],
)
def test_setup_timer_rejects_bad_duration(bad, exc):
    _, timers = sim()
    with pytest.raises(exc, match="duration_ms"):
        timers.setup_timer(bad, lambda: None)


@pytest.mark.parametrize("bad", ["4pm", "24:00:00", "12:60:00", "1:2:3", 1630, ""])
def test_daily_rejects_bad_time(bad):
    _, timers = sim()
    with pytest.raises(InvalidArgument, match="hh_mm_ss"):
        timers.setup_daily_callback(bad, lambda: None)


def test_daily_callback_recurs_at_local_wall_time_across_dst():
    # New York springs forward on 2026-03-08: that day is 23 hours long.
    tz = ZoneInfo("America/New_York")
    sched, timers = sim(tz="America/New_York")  # 2026-03-07 07:00 in New York
    fired = []
    timers.setup_daily_callback("16:30:00", lambda: fired.append(sched.now_ns()) or len(fired) < 3)
    sched.run_until(T0 + 5 * 86400 * NS_PER_S)
    local = [
        dt.datetime.fromtimestamp(t // NS_PER_S, tz).strftime("%Y-%m-%d %H:%M %Z") for t in fired
    ]
    assert local == ["2026-03-07 16:30 EST", "2026-03-08 16:30 EDT", "2026-03-09 16:30 EDT"]
    assert fired[1] - fired[0] == 23 * 3600 * NS_PER_S


def test_daily_callback_without_a_zone_is_utc_whatever_the_host(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        sched, timers = sim()
        fired = []
        timers.setup_daily_callback("23:57:00", lambda: fired.append(sched.now_ns()) or False)
        sched.run_until(T0 + 86400 * NS_PER_S)
        when = dt.datetime.fromtimestamp(fired[0] // NS_PER_S, dt.UTC)
        assert when.strftime("%Y-%m-%d %H:%M:%S") == "2026-03-07 23:57:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_daily_with_explicit_zone_across_fall_back():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/London")  # falls back on 2026-10-25: a 25-hour day
    start = int(dt.datetime(2026, 10, 24, 10, 0, tzinfo=dt.UTC).timestamp()) * NS_PER_S
    a = next_daily_ns(start, (9, 0, 0), tz)
    b = next_daily_ns(a, (9, 0, 0), tz)
    assert dt.datetime.fromtimestamp(a // NS_PER_S, tz).strftime("%d %H:%M") == "25 09:00"
    assert b - a == 24 * 3600 * NS_PER_S
    assert a - next_daily_ns(start - 86400 * NS_PER_S, (9, 0, 0), tz) == 25 * 3600 * NS_PER_S


async def test_timer_on_the_wall_clock_with_freezegun():
    with freeze_time("2026-01-05 15:59:59", tick=True, real_asyncio=True):
        sched = LiveScheduler()
        timers = TimerService(Reactor(sched), tz="UTC")
        fired = asyncio.Event()
        seen = []

        def daily():
            seen.append(sched.now_ns())
            fired.set()

        timers.setup_daily_callback("16:00:00", daily)
        await asyncio.wait_for(fired.wait(), 5)
        assert (
            dt.datetime.fromtimestamp(seen[0] / NS_PER_S, dt.UTC).strftime("%H:%M:%S") == "16:00:00"
        )
        ticks = []
        done = asyncio.Event()
        timers.setup_timer(20, lambda: ticks.append(1) or (len(ticks) < 3 or done.set()))
        await asyncio.wait_for(done.wait(), 5)
        assert len(ticks) == 3
