"""A stop is acknowledged only after the cancels it caused were answered.

A strategy typically answers ``on_stop`` with a cancel-all and ``send_stop_ack()`` in the same
callback. The env used to publish the ``StopAck`` at once, so the operator heard "stopped" while
the cancel-all still sat in the gateway's queue. Now the ``StopAck`` waits until every cancel and
cancel-all sent since the ``Stop`` got its answer, or a bound passes (then it goes with a
warning); requests are refused ``StrategyStopped`` from the ``send_stop_ack`` on, as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mlthon.basics import Exchange, GtwRejectCode, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.fakes.scripted_gateway import ScriptedGateway
from tests.harness import System, strategy_config

SIM = Exchange.Sim


class SlowCancelAll(ScriptedGateway):
    """Answers a cancel-all only when told to (a gateway with a queue ahead of it)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.waiting: list[tuple[str, Any]] = []

    def _on_req(self, topic: str, req: Any) -> None:
        if isinstance(req, m.CancelAll):
            self.requests.append(req)
            self.waiting.append((topic, req))
            return
        super()._on_req(topic, req)

    def answer_cancel_alls(self) -> None:
        waiting, self.waiting = self.waiting, []
        for topic, req in waiting:
            self.requests.pop(self.requests.index(req))
            super()._on_req(topic, req)


def _system(hold_s: float) -> System:
    sched = LiveScheduler()
    bus = InProcBus(sched)
    strat = Recorder(auto_ack_stop=False)
    s = System(bus, bus, Topics("mlt"), strat, strategy_config(strat.name), sched)
    s.gateway = SlowCancelAll(bus, s.topics)
    s.env_kwargs = {"stop_ack_hold_s": hold_s}

    def on_stop(_params: str) -> None:
        assert s.env is not None
        s.env.send_cancel_all(SIM, None)
        s.env.send_stop_ack()

    strat.hooks["on_stop"] = on_stop
    s.start_system()
    s.start_strategy()
    return s


def _trace(s: System) -> list[str]:
    seen: list[str] = []
    s.sys_bus.subscribe("mlt/#", lambda _t, msg: seen.append(type(msg).__name__), qos=1)
    return seen


async def test_stop_ack_waits_for_the_cancel_all_answer():
    s = _system(hold_s=30)
    await s.until("on_strat_params_update")
    env = s.env
    assert env is not None
    env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
    await s.until("on_new_order_ack")
    seen = _trace(s)
    stop = asyncio.create_task(s.cmd("stop", timeout=20))
    await wait_until(lambda: s.gateway.waiting, what="the cancel-all at the gateway")
    # The strategy acknowledged, its cancel-all is unanswered: no StopAck yet, and requests are
    # refused already.
    env.fetch_account_info(SIM)  # a round trip: whatever was sent before it has arrived
    await s.until("on_account_info")
    assert "StopAck" not in seen and env.state == "stopping" and not stop.done()
    env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
    await s.until("on_new_order_reject")
    assert s.strat.of("on_new_order_reject")[0][2] is GtwRejectCode.StrategyStopped
    s.gateway.answer_cancel_alls()
    res = await stop
    assert res.ok and res.detail == "stopped (stop acknowledged)"
    assert seen.index("CancelAllAck") < seen.index("StopAck")
    assert env.state == "stopped"


async def test_stop_ack_goes_after_the_bound_if_the_cancel_all_is_never_answered(caplog):
    s = _system(hold_s=0.2)
    await s.until("on_strat_params_update")
    env = s.env
    assert env is not None
    seen = _trace(s)
    with caplog.at_level(logging.WARNING):
        res = await s.cmd("stop", timeout=10)
    assert res.ok and "StopAck" in seen and "CancelAllAck" not in seen
    assert "1 cancel request(s) still unanswered 0.2s after" in caplog.text
