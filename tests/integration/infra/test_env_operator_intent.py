"""What the operator wants, on the env's side.

The control service answers the login of a strategy the operator stopped with ``Idle`` instead of
``Start``. The env then stops logging in, stays stopped (orders and modifies refused
``StrategyStopped``; cancels and fetches pass), publishes its status, and does not call
``on_start``; a strategy that was running (a re-login after a broker blip) runs its normal stop.
And whatever the control service says, a strategy that acknowledged its stop is not started
again by the answer to a login (a broker blip used to restart it): only a start command does.
"""

from __future__ import annotations

import time
from typing import Any

from mlthon.basics import Exchange, GtwRejectCode, Side
from mlthon.infra.bus import messages as m
from tests.conftest import wait_until
from tests.harness import System, inproc_system

SIM = Exchange.Sim


def _record(s: System, topic: str) -> list[Any]:
    got: list[Any] = []
    s.sys_bus.subscribe(topic, lambda _t, msg: got.append(msg), qos=1)
    return got


async def _blip(s: System, *, control_answers: bool = False) -> None:
    """The strategy's broker connection drops and comes back; it logs in again (answered by
    the control service, or by the test)."""
    env = s.env
    assert env is not None
    if not control_answers:
        s.control.stop()
    connects = len(s.strat.of("on_framework_connected"))
    env._on_bus_connection(False)
    env._on_bus_connection(True)
    await s.until("on_framework_connected", connects + 1)


async def test_idle_at_login_keeps_the_strategy_stopped_without_on_start():
    async with inproc_system(env_kwargs={"login_retry_s": 0.02}, auto_start=False) as s:
        env = s.env
        assert env is not None
        logins = _record(s, s.topics.login(s.cfg.name))
        statuses = _record(s, s.topics.strat_status(s.cfg.name))
        await wait_until(lambda: logins, what="the login")
        s.sys_bus.publish(
            s.topics.strat_ctl(s.cfg.name), m.Idle(detail="stopped by the operator"), qos=1
        )
        await wait_until(lambda: env.state == "stopped", what="stopped")
        await wait_until(
            lambda: statuses and statuses[-1].state == "stopped", what="status published"
        )
        # No more logins (none in ten retry periods).
        sent = len(logins)
        t0 = time.monotonic()
        await wait_until(lambda: time.monotonic() - t0 > 0.2, what="ten retry periods")
        assert len(logins) == sent
        assert "on_start" not in s.strat.names()
        # Orders refused, cancels and fetches pass.
        cl = env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_reject")
        assert s.strat.of("on_new_order_reject")[0][1:3] == (str(cl), GtwRejectCode.StrategyStopped)
        env.send_cancel_order(SIM, 9001, "123")
        await s.until("on_cancel_order_reject")
        assert s.strat.of("on_cancel_order_reject")[0][2] is GtwRejectCode.UnknownOrder
        # A start command starts it: on_start, then on_instruments.
        s.sys_bus.publish(s.topics.strat_ctl(s.cfg.name), m.Start(params="go", cmd_id="c1"))
        await s.until("on_instruments")
        names = s.strat.names()
        assert names.index("on_start") < names.index("on_instruments")
        assert s.strat.of("on_start") == [("go",)] and env.state == "running"


async def test_idle_answering_the_relogin_of_a_running_strategy_runs_the_normal_stop():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        acks = _record(s, s.topics.strat_up(s.cfg.name))
        await _blip(s)
        s.sys_bus.publish(
            s.topics.strat_ctl(s.cfg.name), m.Idle(detail="stopped while away"), qos=1
        )
        await s.until("on_stop")
        await wait_until(lambda: acks, what="the stop acknowledgement")
        assert env.state == "stopped" and len(s.strat.of("on_start")) == 1
        env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_reject")
        assert s.strat.of("on_new_order_reject")[0][2] is GtwRejectCode.StrategyStopped


async def test_start_answering_a_relogin_after_the_stop_ack_does_not_start_it_again():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        res = await s.cmd("stop")
        assert res.ok and env.state == "stopped"
        await _blip(s)
        ctl = s.topics.strat_ctl(s.cfg.name)
        # A control service that forgot the stop (or a late answer) says Start.
        s.sys_bus.publish(ctl, m.Start(), qos=1)
        await wait_until(lambda: env.state == "stopped", what="logged in, still stopped")
        env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_reject")
        assert s.strat.of("on_new_order_reject")[0][2] is GtwRejectCode.StrategyStopped
        assert len(s.strat.of("on_start")) == 1
        # The operator's start command does start it.
        s.sys_bus.publish(ctl, m.Start(params="again", cmd_id="c2"), qos=1)
        await s.until("on_start", 2)
        assert s.strat.of("on_start")[-1] == ("again",) and env.state == "running"


async def test_relogin_of_a_running_strategy_does_not_run_on_start_again():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        cl = env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack")
        await _blip(s, control_answers=True)
        await wait_until(lambda: env.state == "running", what="running again")
        await wait_until(lambda: "checked 1 known" in env.last_reconciliation, what="reconciled")
        assert len(s.strat.of("on_start")) == 1 and len(s.strat.of("on_instruments")) == 1
        env.send_cancel_order(SIM, 9001, cl)
        await s.until("on_order_cancelled")


async def test_start_asked_while_a_stopped_strategy_was_away_starts_it_at_its_next_login():
    """Stopped (acknowledged), then away; the operator starts it meanwhile: the control service
    records the wish, and the Start answering the next login carries the operator's command,
    which is what an env that acknowledged a stop waits for."""
    async with inproc_system(env_kwargs={"login_retry_s": 0.05}) as s:
        await s.until("on_start")
        env = s.env
        assert env is not None
        res = await s.cmd("stop")
        assert res.ok, res.detail
        await wait_until(lambda: env.state == "stopped", what="stop acknowledged")
        env._on_bus_connection(False)  # away: control hears its status say so
        s.control.strats[s.cfg.name].logged_in = False
        res = await s.cmd("start")
        assert res.ok and "starts when it logs in" in res.detail, res.detail
        env._on_bus_connection(True)
        await s.until("on_start", 2, timeout=10)
        assert env.state == "running"
