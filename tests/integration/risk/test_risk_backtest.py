"""The risk layer in real backtests (mlthon.app.backtest.Backtest, the simulated exchange): a
refusal is a reject with its code and reason, a loss limit halts the strategy and its orders are
cancelled at the sim gateway, and ReduceOnly lets only shrinking orders through."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from mlthon.api import IStratEnv, MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import TIF, Exchange, ExecInstructions, FeedHandlerStatus, OrderType, Side
from mlthon.basics.mlt_enum import GtwRejectCode, TradingState
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.bus import messages as m
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.instruments import load_instruments
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig
from tests import md

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
S = 1_000_000_000
T0 = 1_700_000_000 * S
SIM = Exchange.Sim
D = Decimal


class Scripted(Strategy):
    """Runs ``script[n](self)`` at the n-th best-ask update; records what the env answers.

    The risk config is installed before login, as the runner and ``Backtest`` do with the
    strategy's ``[risk]`` table (``StratEnv(risk=...)``); the strategy's own logic never
    touches it."""

    def __init__(self, risk: RiskConfig, script: list[Callable[[Scripted], Any]]) -> None:
        super().__init__("risky")
        self.risk = risk
        self.script = list(script)
        self.asks = 0
        self.rejects: list[tuple[str, GtwRejectCode, str]] = []
        self.acks: list[str] = []
        self.cancelled: list[str] = []
        self.cancel_all_acks: list[Exchange] = []
        self.states: list[tuple[TradingState, str]] = []
        self.fills: list[tuple[str, Side, str]] = []

    def on_framework_connected(self, env: IStratEnv) -> None:
        assert isinstance(env, StratEnv)
        env.set_risk_config(self.risk)
        super().on_framework_connected(env)

    def on_start(self, params: str) -> None:
        self.env.subscribe(SIM, 9001, MDSub.BBO)

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        if self.asks < len(self.script):
            self.script[self.asks](self)
        self.asks += 1

    def buy(self, price: str, qty: str, tif: TIF = TIF.GTC) -> int:
        return self.order(Side.Buy, price, qty, tif)

    def order(self, side: Side, price: str, qty: str, tif: TIF = TIF.GTC) -> int:
        return self.env.send_new_order(
            None, SIM, 9001, side, price, qty, ExecInstructions.Unset, OrderType.Limit, tif, False
        )

    def on_new_order_reject(self, exchange, client_id, code, reason) -> None:
        self.rejects.append((client_id, code, reason))

    def on_new_order_ack(self, exchange, client_id, *args: Any) -> None:
        self.acks.append(client_id)

    def on_order_cancelled(self, exchange, client_id, *args: Any) -> None:
        self.cancelled.append(client_id)

    def on_cancel_all_ack(self, exchange, instrument_id) -> None:
        self.cancel_all_acks.append(exchange)

    def on_order_execution(self, exchange, client_id, side, price, qty, *args: Any) -> None:
        self.fills.append((client_id, side, str(qty)))

    def on_risk_state(self, state: TradingState, reason: str) -> None:
        self.states.append((state, reason))
        if state is TradingState.Halted:
            self.buy("90.0", "0.1")  # refused: nothing passes once halted

    def on_stop(self, params: str) -> None:
        self.env.send_stop_ack()


def data(*later: tuple[int, str, str]) -> list[m.Msg]:
    """A SIMUSDT book at 100.0 / 100.2, then (second, bid, ask) moves."""

    def book(ts, ch):
        return md.book(ex=SIM.value, iid=9001, ts=ts, ch=ch)

    out: list[m.Msg] = [
        m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotStart, ts=T0),
        book(T0, [(0, 1, "100.0", "5"), (0, 2, "100.2", "5")]),
        m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotEnd, ts=T0),
    ]
    bid, ask = "100.0", "100.2"
    for sec, new_bid, new_ask in later:
        out.append(
            book(
                T0 + sec * S,
                [(0, 1, new_bid, "5"), (0, 2, new_ask, "5"), (2, 1, bid, "0"), (2, 2, ask, "0")],
            )
        )
        bid, ask = new_bid, new_ask
    return out


def run(strat: Scripted, msgs: list[m.Msg]) -> dict[str, Any]:
    insts = [i for i in load_instruments() if i.instrument_id == 9001]
    gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "10000"}}})
    return Backtest(strat, data=msgs, instruments=insts, name="risky", gateway=gw).run().summary


def test_backtest_max_order_qty_breach_rejected_with_code_and_inside_passes():
    risk = RiskConfig(every=InstrumentLimits(max_order_qty=D("0.5")))
    ids: list[int] = []
    strat = Scripted(risk, [lambda s: ids.extend([s.buy("99.0", "0.8"), s.buy("99.0", "0.5")])])
    summary = run(strat, data((2, "100.1", "100.3")))
    assert strat.rejects == [
        (str(ids[0]), GtwRejectCode.RiskLimit, "max_order_qty 0.5 < 0.8 SIMUSDT")
    ]
    assert strat.acks == [str(ids[1])]
    assert summary["orders"] == 1  # the refused order never reached the exchange
    assert strat.env.risk_refusals == 1  # type: ignore[attr-defined]


def test_backtest_price_band_breach_rejected_and_edge_passes():
    risk = RiskConfig(every=InstrumentLimits(price_band_pct=D("1")))
    strat = Scripted(risk, [lambda s: (s.buy("98.0", "0.1"), s.buy("99.1", "0.1"))])
    run(strat, data((2, "100.1", "100.3")))
    # mid 100.1: 98.0 is 2.098 % away, 99.1 is 0.999 %
    assert [(c, r) for _, c, r in strat.rejects] == [
        (GtwRejectCode.RiskLimit, "price_band_pct 1 < 2.098 SIMUSDT (price 98.0, mid 100.10)")
    ]
    assert len(strat.acks) == 1


def test_backtest_daily_loss_halts_cancels_at_sim_gateway_and_refuses():
    risk = RiskConfig(max_daily_loss=D("0.5"))
    resting: list[int] = []

    def enter(s: Scripted) -> None:
        s.buy("100.2", "1", TIF.IOC)  # takes the ask: long 1 at 100.2
        resting.append(s.buy("95.0", "0.1"))  # rests far below

    strat = Scripted(risk, [enter])
    summary = run(strat, data((3, "99.0", "99.2"), (6, "99.0", "99.3")))
    # At 3 s the mid is 99.1: -1.1 and the fee 0.0501 lost; the next loss check halts.
    assert [st for st, _ in strat.states] == [TradingState.Halted]
    assert strat.states[0][1].startswith("max_daily_loss 0.5 < 1.1501")
    assert strat.cancel_all_acks == [SIM]  # the sim gateway answered the cancel-all
    assert str(resting[0]) in strat.cancelled
    halted = [r for r in strat.rejects if r[1] is GtwRejectCode.RiskLimit]
    assert len(halted) == 1 and halted[0][2].startswith("trading_state Halted (max_daily_loss")
    assert strat.env.risk_state is TradingState.Halted
    assert summary["final_position"] == {"SIMUSDT": "1.000"}  # flatten_on_halt is off


def test_backtest_flatten_on_halt_closes_the_position():
    risk = RiskConfig(max_drawdown=D("0.5"), flatten_on_halt=True)
    strat = Scripted(risk, [lambda s: s.buy("100.2", "1", TIF.IOC)])
    summary = run(strat, data((3, "99.0", "99.2"), (6, "99.0", "99.3")))
    assert [st for st, _ in strat.states] == [TradingState.Halted]
    assert summary["final_position"] == {"SIMUSDT": "0.000"}
    assert [side for _, side, _ in strat.fills] == [Side.Buy, Side.Sell]


def test_backtest_reduce_only_refuses_growth_and_passes_shrinking():
    risk = RiskConfig()

    def operator_reduce_only(s: Scripted) -> None:
        # What `mlthon cmd risky risk reduceonly` runs in the env (the control service
        # forwards the command to this hook).
        env = s.env
        assert isinstance(env, StratEnv)
        hook = env.hooks.get("risk")
        assert hook is not None
        assert hook.callback(["reduceonly", "desk", "limit"]).startswith("ReduceOnly")
        s.buy("99.0", "0.1")  # grows the long: refused
        s.order(Side.Sell, "99.0", "0.4", TIF.IOC)  # shrinks it: passes (fills at the bid)

    strat = Scripted(risk, [lambda s: s.buy("100.2", "1", TIF.IOC), operator_reduce_only])
    summary = run(strat, data((3, "99.0", "99.2")))
    assert strat.states == [(TradingState.ReduceOnly, "operator: desk limit")]
    assert [(c, r.split(":")[0]) for _, c, r in strat.rejects] == [
        (GtwRejectCode.RiskLimit, "trading_state ReduceOnly")
    ]
    assert summary["final_position"] == {"SIMUSDT": "0.600"}
