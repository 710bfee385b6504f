"""The operator's kill switch: `risk <state>` sent as `mlthon cmd` sends it, through the control
service, to the env's risk layer (in-process bus, scripted gateway)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side
from mlthon.basics.mlt_enum import GtwRejectCode, TradingState
from mlthon.infra.bus import messages as m
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig
from tests.conftest import wait_until
from tests.harness import inproc_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]
SIM = Exchange.Sim


async def test_risk_command_halted_cancels_all_and_refuses_orders():
    risk = RiskConfig(every=InstrumentLimits(max_order_qty=Decimal("1")))
    async with inproc_system(env_kwargs={"risk": risk}) as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        shown = await s.cmd("risk")
        assert shown.ok and shown.detail.startswith("Active (start); 0 refusals")
        answer = await s.cmd("risk", "halted", "desk", "stop")
        assert answer.ok and answer.detail.startswith("Halted (operator: desk stop)")
        assert env.risk_state is TradingState.Halted
        await wait_until(
            lambda: any(isinstance(r, m.CancelAll) for r in s.gateway.requests), 30, "cancel-all"
        )
        cid = env.send_new_order(
            None,
            SIM,
            9001,
            Side.Buy,
            "100",
            "0.5",
            ExecInstructions.Unset,
            OrderType.Limit,
            TIF.GTC,
            False,
        )
        await s.until("on_new_order_reject")
        _, cl, code, reason = s.strat.of("on_new_order_reject")[0]
        assert (cl, code) == (str(cid), GtwRejectCode.RiskLimit)
        assert reason == "trading_state Halted (operator: desk stop)"
        assert not any(isinstance(r, m.NewOrder) for r in s.gateway.requests)
        bad = await s.cmd("risk", "paused")
        assert not bad.ok and "'paused' is not a trading state" in bad.detail
        back = await s.cmd("risk", "active")
        assert back.ok and env.risk_state is TradingState.Active
