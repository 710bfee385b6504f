"""Fuzzing every env call's arguments: it raises ``InvalidArgument`` or works, never anything
else, and the env keeps working; a strategy flooding orders meets the gateway's rate budget.

The system (control service, sim gateway, env) runs on an in-process bus and a simulated clock,
built once per test and shared by its examples.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlthon.basics.errors import InvalidArgument
from mlthon.basics.mlt_enum import TIF, Exchange, ExecInstructions, GtwRejectCode, OrderType, Side
from mlthon.basics.values import Price, Qty
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.instruments import load_instruments
from mlthon.infra.reactor import Reactor
from tests.fakes.recorder import Recorder
from tests.harness import strategy_config
from tests.unit.reliability.fuzzing import FUZZ

SIM = Exchange.Sim
IID = 9001
S = 1_000_000_000


class Rig:
    """Control + sim gateway + env on a simulated clock; the strategy has started."""

    def __init__(self, **gw: Any) -> None:
        self.sched = SimScheduler(SimClock(1_700_000_000 * S))
        bus = InProcBus(self.sched)
        topics = Topics("mlt")
        self.strat = Recorder()
        ControlService(bus, self.sched, topics, [strategy_config(self.strat.name)]).start()
        cfg = SimGatewayConfig(exchange=SIM, balances={"USDT": Decimal("1000000")}, **gw)
        SimGateway(bus, self.sched, topics, cfg, load_instruments()).start()
        self.env = StratEnv(self.strat, bus, Reactor(self.sched, name="strategy[rec]"), topics)
        self.step()
        assert "on_strat_params_update" in self.strat.names()

    def step(self, s: float = 0.01) -> None:
        self.sched.run_until(self.sched.now_ns() + int(s * S))


_WEIRD = st.sampled_from(
    [
        None, -1, 0, 2**70, 1.5, float("nan"), float("inf"), "", "x", "1e999", "NaN", "-0",
        "100.0", b"100", Decimal("NaN"), Decimal("-1"), Decimal("1e-30"), [], {}, object(),
        True, Side.Buy, Side.Unset, SIM, Exchange.BinanceUsdm, TIF.Unset, OrderType.Unset,
        ExecInstructions.PostOnly, Price("100.0"), Qty("0.001"), IID, "c1", 10**20,
    ]
)  # fmt: skip
ARG = st.one_of(_WEIRD, st.integers(), st.text(max_size=6), st.floats())

CALLS: dict[str, list[Any]] = {
    "send_new_order": [None, SIM, IID, Side.Buy, "100.0", "0.001"],
    "send_modify_order": [SIM, 1, "100.0", "0.002"],
    "send_cancel_order": [SIM, IID, 1],
    "send_cancel_all": [SIM, IID],
    "fetch_account_info": [SIM],
    "fetch_wallet_info": [SIM, "USDT"],
    "fetch_position_info": [SIM, IID],
    "fetch_funding_info": [SIM, IID],
    "fetch_order_status": [SIM, IID, 1],
    "fetch_orders_info": [SIM, IID],
    "subscribe": [SIM, IID, 1],
    "unsubscribe": [SIM, IID, 1],
    "get_instrument": [SIM, IID],
    "get_book": [SIM, IID],
    "setup_timer": [10, lambda: False],
    "setup_daily_callback": ["12:00:00", lambda: False],
    "cancel_timer": [1],
    "publish_telegram": ["hello"],
    "add_cmd_hook": ["hook", lambda params: "ok"],
}


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, list[Any]]:
    """A call with some of its valid arguments replaced by wrong ones."""
    name = draw(st.sampled_from(sorted(CALLS)))
    args = list(CALLS[name])
    for i in range(len(args)):
        if draw(st.booleans()):
            args[i] = draw(ARG)
    return name, args


# Found by fuzzing and fixed: an unhashable argument used to reach a dict lookup and raise
# TypeError instead of InvalidArgument.
KNOWN: dict[str, tuple[type[BaseException], ...]] = {}

_RIG: list[Rig] = []


@FUZZ
@given(calls())
def test_fuzz_env_calls_raise_invalid_argument_or_work(call):
    if not _RIG:
        _RIG.append(Rig())
    rig = _RIG[0]
    name, args = call
    known = KNOWN.get(name, ())
    with contextlib.suppress(InvalidArgument, *known):
        getattr(rig.env, name)(*args)
    rig.step()
    # the env still works: time, a valid order and an answer to it
    before = len(rig.strat.calls)
    cid = rig.env.send_new_order(None, SIM, IID, Side.Buy, "90.0", "0.001")
    assert isinstance(cid, int)
    rig.step()
    assert len(rig.strat.calls) > before
    assert rig.env.get_time_ns() == rig.sched.now_ns()


def test_order_flood_meets_the_rate_budget_not_the_process():
    rig = Rig(rate_limit=50, rate_window_ns=1 * S)
    rig.step(1.0)  # past the window of the env's start-up request (its open orders)
    for _ in range(500):
        rig.env.send_new_order(None, SIM, IID, Side.Buy, "90.0", "0.001")
    rig.step()
    rejects = [a for n, a in rig.strat.calls if n == "on_new_order_reject"]
    acks = rig.strat.names().count("on_new_order_ack")
    assert acks == 50
    assert len(rejects) == 450
    assert all(GtwRejectCode.RateLimitExceeded in a for a in rejects)
    assert "on_rate_limit_info" in rig.strat.names()
    rig.step(1.0)  # the next window: orders go through again
    rig.env.send_new_order(None, SIM, IID, Side.Buy, "90.0", "0.001")
    rig.step()
    assert rig.strat.names().count("on_new_order_ack") == 51


@pytest.mark.parametrize(("name", "args"), [("get_book", [[], IID]), ("cancel_timer", [[]])])
def test_env_unhashable_argument_is_invalid_argument(name, args):
    env = Rig().env
    with pytest.raises(InvalidArgument):
        getattr(env, name)(*args)
