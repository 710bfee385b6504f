"""The desk's limits (`mlthon control --desk desk.toml`): sent by the control service at login,
under each strategy's own [risk] table; a strategy without one gets the desk's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side
from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import GtwRejectCode
from mlthon.infra.bus import messages as m
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig, load_desk_file
from tests.harness import System, inproc_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
SIM = Exchange.Sim


def _buy(env: StratEnv, qty: str) -> int:
    return env.send_new_order(
        None,
        SIM,
        9001,
        Side.Buy,
        "100",
        qty,
        ExecInstructions.Unset,
        OrderType.Limit,
        TIF.GTC,
        False,
    )


def _desk(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "desk.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def _with_desk(s: System, desk: Path) -> StratEnv:
    s.control.stop()
    s.control = ControlService(
        s.sys_bus,
        s.scheduler,
        s.topics,
        [s.cfg],
        desk_risk=load_desk_file(desk),
        desk_source=str(desk),
    )
    s.control.start()
    s.start_strategy()
    await s.until("on_start")
    assert s.env is not None
    return s.env


async def test_desk_limits_apply_under_the_strategys_own(tmp_path: Path) -> None:
    desk = _desk(tmp_path, '[risk]\nmax_order_qty = "1"\nmax_open_orders = 1\n')
    own = RiskConfig(every=InstrumentLimits(max_order_qty=Decimal("2")))
    async with inproc_system(env_kwargs={"risk": own}) as s:
        env = await _with_desk(s, desk)
        assert env.risk is not None
        assert env.risk.config.every.max_order_qty == Decimal("2")  # its own wins
        assert env.risk.config.max_open_orders == 1  # the desk's, which it left off
        _buy(env, "1.5")  # inside its own 2 (over the desk's 1): passes
        second = _buy(env, "0.1")  # a second open order: the desk's max_open_orders
        await s.until("on_new_order_reject")
        _, cl, code, reason = s.strat.of("on_new_order_reject")[0]
        assert (cl, code, reason) == (str(second), GtwRejectCode.RiskLimit, "max_open_orders 1 < 2")
        assert sum(isinstance(r, m.NewOrder) for r in s.gateway.requests) == 1


async def test_a_strategy_without_risk_table_gets_the_desks(tmp_path: Path) -> None:
    desk = _desk(tmp_path, '[risk]\nmax_order_qty = "1"\n')
    async with inproc_system() as s:
        env = await _with_desk(s, desk)
        assert env.risk is not None
        cid = _buy(env, "1.5")
        await s.until("on_new_order_reject")
        _, cl, code, reason = s.strat.of("on_new_order_reject")[0]
        assert (cl, code, reason) == (
            str(cid),
            GtwRejectCode.RiskLimit,
            "max_order_qty 1 < 1.5 SIMUSDT",
        )


def test_a_bad_desk_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_order_quantity"):
        load_desk_file(_desk(tmp_path, '[risk]\nmax_order_quantity = "1"\n'))
    with pytest.raises(ConfigError, match="params"):
        load_desk_file(_desk(tmp_path, "[params]\nx = 1\n"))
    with pytest.raises(ConfigError, match="float"):
        load_desk_file(_desk(tmp_path, "[risk]\nmax_daily_loss = 0.5\n"))
