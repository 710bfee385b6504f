"""The risk layer's limit logic (RiskGuard), on a simulated clock: every limit refuses a breach
with a reason naming it and its figures, and lets the order just inside through."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import CancelCode, Exchange, Side, TradingState
from mlthon.infra.bus import messages as m
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.instruments import load_instruments
from mlthon.infra.risk.guard import RiskGuard
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig

SIM = Exchange.Sim
S = 1_000_000_000
T0 = 1_700_000_000 * S
D = Decimal


def sim_inst() -> Instrument:
    return next(i for i in load_instruments() if i.instrument_id == 9001)


class Rig:
    """A guard with a settable mid, a clock, and the states it announced."""

    def __init__(self, config: RiskConfig, mid: str | None = "100") -> None:
        self.sched = SimScheduler(SimClock(T0))
        self.inst = sim_inst()
        self.mid = None if mid is None else D(mid)
        self.states: list[tuple[TradingState, str]] = []
        self.guard = RiskGuard(
            config,
            self.sched,
            instrument_of=lambda ex, iid: self.inst if iid == 9001 else None,
            mark_of=lambda ex, iid: self.mid,
            is_open=lambda ex, cl: (ex, cl) in self.guard.working,
            on_state=lambda st, why: self.states.append((st, why)),
            name="t",
        )
        self.n = 0

    def new(self, side: Side, price: str, qty: str) -> str | None:
        self.n += 1
        return self.guard.check_new(SIM, self.inst, str(self.n), side, D(price), D(qty))

    def fill(self, cl: str, side: Side, price: str, qty: str, leaves: str = "0") -> None:
        self.guard.on_report(
            SIM,
            m.OrderExecution(
                cl_id=cl,
                exec_id=f"x{cl}-{price}-{qty}",
                instrument_id=9001,
                side=side,
                price=price,
                fill_qty=qty,
                leaves_qty=leaves,
                exec_ts=self.sched.now_ns(),
                fee="0",
                fee_coin="USDT",
                maker=False,
            ),
        )


def per_inst(**kw: str) -> RiskConfig:
    return RiskConfig(every=InstrumentLimits(**{k: D(v) for k, v in kw.items()}))


def test_guard_max_order_qty_breach_refused_and_limit_passes():
    r = Rig(per_inst(max_order_qty="0.5"))
    assert r.new(Side.Buy, "100", "0.5") is None
    assert r.new(Side.Buy, "100", "0.8") == "max_order_qty 0.5 < 0.8 SIMUSDT"
    assert r.guard.refusals == 1 and r.guard.refused_by == {"max_order_qty": 1}


def test_guard_instrument_table_overrides_every_instrument_limit():
    cfg = RiskConfig(
        every=InstrumentLimits(max_order_qty=D("5"), max_position=D("9")),
        instruments={"SIMUSDT": InstrumentLimits(max_order_qty=D("0.1"))},
    )
    lim = cfg.for_instrument(sim_inst())
    assert lim.max_order_qty == D("0.1") and lim.max_position == D("9")
    r = Rig(cfg)
    assert r.new(Side.Buy, "100", "0.2") == "max_order_qty 0.1 < 0.2 SIMUSDT"


def test_guard_max_order_notional_breach_refused_and_limit_passes():
    r = Rig(per_inst(max_order_notional="50"))
    assert r.new(Side.Buy, "100", "0.5") is None  # 50 exactly
    why = r.new(Side.Buy, "100.1", "0.5")
    assert why is not None and why.startswith("max_order_notional 50 < 50.05")


def test_guard_market_order_notional_uses_mid():
    r = Rig(per_inst(max_order_notional="50"))
    assert r.new(Side.Buy, "0", "0.5") is None
    assert r.new(Side.Buy, "0", "0.6") == "max_order_notional 50 < 60.0 SIMUSDT"
    r.mid = None
    assert r.new(Side.Buy, "0", "0.1") == (
        "max_order_notional: no reference price for a market order on SIMUSDT"
    )


def test_guard_price_band_breach_refused_and_edge_passes():
    r = Rig(per_inst(price_band_pct="5"))
    assert r.new(Side.Buy, "105", "0.1") is None
    assert r.new(Side.Sell, "95", "0.1") is None
    why = r.new(Side.Buy, "105.1", "0.1")
    assert why == "price_band_pct 5 < 5.100 SIMUSDT (price 105.1, mid 100)"


def test_guard_price_band_without_reference_refused():
    r = Rig(per_inst(price_band_pct="5"), mid=None)
    why = r.new(Side.Buy, "100", "0.1")
    assert why is not None and why.startswith("price_band_pct 5: no reference price for SIMUSDT")


def test_guard_max_position_counts_open_orders_on_the_side():
    r = Rig(per_inst(max_position="1"))
    assert r.new(Side.Buy, "100", "0.6") is None  # working buy 0.6
    assert r.new(Side.Buy, "100", "0.4") is None  # working buy 1.0: at the limit
    why = r.new(Side.Buy, "100", "0.001")
    assert why is not None and why.startswith("max_position 1 < 1.001 SIMUSDT")
    # Sells are counted on their own side: selling 1 from flat reaches -1, inside.
    assert r.new(Side.Sell, "101", "1") is None


def test_guard_max_position_after_fill_allows_reducing_sell():
    r = Rig(per_inst(max_position="1"))
    assert r.new(Side.Buy, "100", "1") is None
    r.fill("1", Side.Buy, "100", "1")
    assert r.guard.holdings[(SIM, 9001)].qty == D("1")
    assert r.new(Side.Buy, "100", "0.001") is not None
    assert r.new(Side.Sell, "100", "2") is None  # reaches -1: inside
    why = r.new(Side.Sell, "100", "0.001")
    assert why is not None and why.startswith("max_position 1 < 1.001")


def test_guard_max_gross_exposure_counts_positions_and_orders():
    r = Rig(RiskConfig(max_gross_exposure=D("100")))
    assert r.new(Side.Buy, "100", "0.5") is None
    r.fill("1", Side.Buy, "100", "0.5")  # position 0.5 x mid 100 = 50
    assert r.new(Side.Sell, "100", "0.5") is None  # + 50 working = 100
    why = r.new(Side.Buy, "100", "0.001")
    assert why is not None and why.startswith("max_gross_exposure 100 < 100.1")


def test_guard_max_open_orders_breach_refused_and_end_frees_a_slot():
    r = Rig(RiskConfig(max_open_orders=2))
    assert r.new(Side.Buy, "100", "0.1") is None
    assert r.new(Side.Buy, "100", "0.1") is None
    assert r.new(Side.Buy, "100", "0.1") == "max_open_orders 2 < 3"
    r.guard.on_report(
        SIM,
        m.OrderCancelled(
            cl_id="1", unsolicited=False, engine_ts=0, cancel_code=CancelCode.CanceledByUser
        ),
    )
    assert r.new(Side.Buy, "100", "0.1") is None


def test_guard_max_order_rate_is_a_rolling_second():
    r = Rig(RiskConfig(max_order_rate=2))
    assert r.new(Side.Buy, "100", "0.1") is None
    r.sched.run_until(T0 + S // 2)
    assert r.new(Side.Buy, "100", "0.1") is None
    why = r.new(Side.Buy, "100", "0.1")
    assert why is not None and why.startswith("max_order_rate 2 < 3 orders and modifies")
    assert r.guard.check_modify(SIM, "1", D("99"), None) is not None
    r.sched.run_until(T0 + S)  # the first order's token is back
    assert r.new(Side.Buy, "100", "0.1") is None


def test_guard_max_cancel_rate_breach_refused_and_limit_passes():
    r = Rig(RiskConfig(max_cancel_rate=1))
    assert r.guard.check_cancel() is None
    why = r.guard.check_cancel()
    assert why is not None and why.startswith("max_cancel_rate 1 < 2 cancels")
    r.sched.run_until(T0 + S)
    assert r.guard.check_cancel() is None


def test_guard_modify_checked_with_new_figures():
    r = Rig(per_inst(max_order_qty="1", max_position="1"))
    assert r.new(Side.Buy, "100", "0.5") is None
    assert r.guard.check_modify(SIM, "1", None, D("1")) is None
    assert r.guard.check_modify(SIM, "1", None, D("1.2")) == "max_order_qty 1 < 1.2 SIMUSDT"


def test_guard_reduce_only_passes_only_shrinking_orders():
    r = Rig(RiskConfig())
    assert r.new(Side.Buy, "100", "1") is None
    r.fill("1", Side.Buy, "100", "1")
    assert r.guard.set_state(TradingState.ReduceOnly, "operator")
    why = r.new(Side.Buy, "100", "0.001")
    assert why is not None and why.startswith("trading_state ReduceOnly: Buy 0.001 SIMUSDT")
    assert r.new(Side.Sell, "100", "0.6") is None
    assert r.new(Side.Sell, "100", "0.4") is None  # 1.0 working: all of the position
    assert r.new(Side.Sell, "100", "0.001") is not None  # would flip it
    assert r.states == [(TradingState.ReduceOnly, "operator")]


def test_guard_halted_refuses_orders_not_cancels():
    r = Rig(RiskConfig(max_cancel_rate=10))
    r.guard.set_state(TradingState.Halted, "operator: test")
    assert r.new(Side.Sell, "100", "0.1") == "trading_state Halted (operator: test)"
    assert r.guard.check_cancel() is None


def test_guard_daily_loss_breach_halts():
    r = Rig(RiskConfig(max_daily_loss=D("10")))
    assert r.new(Side.Buy, "100", "1") is None
    r.fill("1", Side.Buy, "100", "1")
    r.mid = D("90")  # -10: at the limit, not past it
    r.sched.run_until(T0 + S)
    assert r.states == []
    r.mid = D("89.9")
    r.sched.run_until(T0 + 2 * S)  # the loss timer (loss_check_s 1)
    assert [s for s, _ in r.states] == [TradingState.Halted]
    assert r.states[0][1].startswith("max_daily_loss 10 < 10.1")
    assert r.guard.state is TradingState.Halted


def test_guard_drawdown_from_the_days_peak_halts():
    r = Rig(RiskConfig(max_drawdown=D("5")))
    assert r.new(Side.Buy, "100", "1") is None
    r.fill("1", Side.Buy, "100", "1")
    r.mid = D("120")
    r.sched.run_until(T0 + S)  # peak +20
    r.mid = D("115")
    r.sched.run_until(T0 + 2 * S)  # -5 from the peak: at the limit
    assert r.states == []
    r.mid = D("114.9")
    r.sched.run_until(T0 + 3 * S)
    assert r.states and r.states[0][1].startswith("max_drawdown 5 < 5.1 (equity 14.9")


def test_guard_resume_after_halt_starts_a_new_loss_budget():
    r = Rig(RiskConfig(max_daily_loss=D("10")))
    assert r.new(Side.Buy, "100", "1") is None
    r.fill("1", Side.Buy, "100", "1")
    r.mid = D("80")
    r.guard.check_loss()
    assert r.guard.state is TradingState.Halted
    r.guard.set_state(TradingState.Active, "operator")
    r.guard.check_loss()
    assert r.guard.state is TradingState.Active  # -20 is the new start


@pytest.mark.parametrize(
    ("side", "fills", "realised"),
    [
        (Side.Sell, [("100", "1"), ("110", "1")], "10"),
        (Side.Buy, [("100", "1"), ("110", "1")], "-10"),
    ],
)
def test_holding_round_trip_realises_pnl(side, fills, realised):
    r = Rig(RiskConfig())
    other = Side.Buy if side is Side.Sell else Side.Sell
    r.fill("a", other, *fills[0])
    r.fill("b", side, *fills[1])
    h = r.guard.holdings[(SIM, 9001)]
    assert h.qty == 0 and h.realised == D(realised)
