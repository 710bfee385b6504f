"""The backtest's short cut through the in-process bus and the simulated scheduler: delivering a
message at once (``publish_now``) gives the same calls in the same order as publishing it and
letting the scheduler drain; ``run_until`` with nothing due only moves the clock."""

from __future__ import annotations

from typing import Any

from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.clock import SimClock, SimScheduler


class _Msg:
    def __init__(self, detail: str) -> None:
        self.detail = detail


def _rig() -> tuple[SimScheduler, InProcBus, list[str]]:
    sched = SimScheduler(SimClock(100))
    bus = InProcBus(sched)
    seen: list[str] = []

    def first(topic: str, msg: Any) -> None:
        seen.append(f"first {topic} {msg.detail}")
        if topic == "md/a":
            sched.call_soon(seen.append, "soon from first")
            bus.publish("md/b", _Msg("b1"))
            sched.call_soon(seen.append, "soon after b1")
            bus.publish("md/b", _Msg("b2"))

    def second(topic: str, msg: Any) -> None:
        seen.append(f"second {topic} {msg.detail}")
        if topic == "md/b" and msg.detail == "b1":
            bus.publish("md/c", _Msg("c"))

    bus.subscribe("md/#", first)
    bus.subscribe("md/+", second)
    sched.run_soon()
    return sched, bus, seen


def test_publish_now_delivers_as_publish_then_drain():
    sched, bus, by_drain = _rig()
    bus.publish("md/a", _Msg("a"))
    sched.run_soon()
    sched2, bus2, at_once = _rig()
    assert not sched2.soon_queue
    bus2.publish_now("md/a", _Msg("a"))
    sched2.run_soon()
    assert at_once == by_drain
    assert by_drain[:2] == ["first md/a a", "second md/a a"]
    # what handlers publish is delivered before what they schedule soon
    assert by_drain.index("second md/c c") < by_drain.index("soon from first")
    assert bus2.delivered == bus.delivered == 8


def test_run_until_with_nothing_due_moves_only_the_clock():
    sched = SimScheduler(SimClock(100))
    ran: list[int] = []
    sched.call_at(500, lambda: ran.append(sched.now_ns()))
    sched.run_until(200)
    assert sched.now_ns() == 200 and not ran
    sched.run_until(150)  # time never goes back
    assert sched.now_ns() == 200
    sched.call_soon(lambda: ran.append(-sched.now_ns()))
    sched.run_until(300)  # a call made soon runs first, at the time it was made
    assert ran == [-200] and sched.now_ns() == 300
    sched.run_until(600)
    assert ran == [-200, 500] and sched.now_ns() == 600
