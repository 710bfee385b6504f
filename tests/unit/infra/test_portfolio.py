"""The portfolio: positions, PnL, fees, open orders and balances from the strategy's own fills and
the gateways' answers; a position answer that differs is an accounting mismatch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlthon.basics import Exchange, Side
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind
from mlthon.basics.order_state import OrderLifecycle
from mlthon.infra.bus import messages as m
from mlthon.infra.env.orders import TrackedOrder
from mlthon.infra.portfolio import Portfolio, PositionMismatch

SIM = Exchange.Sim
D = Decimal
LINEAR = Instrument(9001, "SIMUSDT", SIM, "SIM", "USDT", InstrumentKind.Linear, "0.01", "0.001")
INVERSE = Instrument(
    9002,
    "SIMUSD",
    SIM,
    "SIM",
    "USD",
    InstrumentKind.Inverse,
    "0.5",
    "1",
    contract_multiplier="100",
)
SPOT = Instrument(9003, "SIMUSDT-S", SIM, "SIM", "USDT", InstrumentKind.Spot, "0.01", "0.001")
INSTRUMENTS = {i.instrument_id: i for i in (LINEAR, INVERSE, SPOT)}
_n = iter(range(1, 10**6))


def fill(iid: int, side: Side, price: str, qty: str, fee: str = "0", coin: str = "") -> Any:
    n = next(_n)
    return m.OrderExecution(
        cl_id=str(n),
        exec_id=f"e{n}",
        instrument_id=iid,
        side=side,
        price=price,
        fill_qty=qty,
        leaves_qty="0",
        exec_ts=n,
        fee=fee,
        fee_coin=coin,
    )


class World:
    def __init__(self) -> None:
        self.marks: dict[int, Decimal] = {}
        self.open: dict[tuple[Exchange, str], TrackedOrder] = {}
        self.mismatches: list[PositionMismatch] = []
        self.p = Portfolio(
            lambda _ex, iid: INSTRUMENTS.get(iid),
            lambda _ex, iid: self.marks.get(iid),
            self.open,
            lambda: 42,
            self.mismatches.append,
        )

    def feed(self, *msgs: Any) -> None:
        for msg in msgs:
            self.p.on_report(SIM, msg)


def test_linear_position_average_price_realised_unrealised_and_fees() -> None:
    w = World()
    w.feed(
        fill(9001, Side.Buy, "100", "2", fee="0.1"),
        fill(9001, Side.Buy, "110", "2", fee="0.1"),
        fill(9001, Side.Sell, "120", "1", fee="-0.05"),  # a maker rebate
    )
    v = w.p.position(SIM, 9001)
    assert v is not None
    assert (v.qty, v.avg_price, v.realised_pnl, v.fees, v.fills) == (
        D(3),
        D(105),
        D(15),
        D("0.15"),
        3,
    )
    # Marked at the last fill without a book, at the book's mid with one.
    assert (v.mark, v.unrealised_pnl) == (D(120), D(45))
    w.marks[9001] = D(100)
    v = w.p.position(SIM, 9001)
    assert v is not None and (v.mark, v.unrealised_pnl) == (D(100), D(-15))
    assert v.total_pnl == D(15) - D(15) - D("0.15")
    assert w.p.equity() == v.total_pnl
    # A flip opens the remainder at the fill's price.
    w.feed(fill(9001, Side.Sell, "90", "5"))
    v = w.p.position(SIM, 9001)
    assert v is not None and (v.qty, v.avg_price) == (D(-2), D(90))
    assert v.realised_pnl == D(15) + 3 * (D(90) - D(105))


def test_inverse_position_in_the_base_coin_with_its_multiplier() -> None:
    w = World()
    w.feed(fill(9002, Side.Buy, "100", "1"), fill(9002, Side.Buy, "200", "1"))
    v = w.p.position(SIM, 9002)
    assert v is not None
    # The harmonic mean of the prices; PnL in the base coin (qty x 100 x (1/entry - 1/exit)).
    assert v.avg_price == D(2) / (D(1) / 100 + D(1) / 200)
    w.feed(fill(9002, Side.Sell, "200", "2"))
    v = w.p.position(SIM, 9002)
    assert v is not None and v.qty == 0
    assert abs(v.realised_pnl - D(2) * 100 * (1 / (D(400) / 3) - D(1) / 200)) < D("1e-20")
    assert v.settle_coin == "SIM"


def test_open_orders_with_side_and_price_after_a_modify() -> None:
    w = World()
    for cl, side, price in (("1", Side.Buy, "99"), ("2", Side.Sell, "101"), ("3", Side.Buy, "0")):
        w.open[(SIM, cl)] = TrackedOrder(
            SIM, 9001, cl, OrderLifecycle.new(D(2)), side=side, price=D(price)
        )
    w.open[(SIM, "2")].price = D("101.5")  # what a ModifyOrderAck does in the tracker
    orders = w.p.open_orders(SIM, 9001)
    assert [(o.cl_id, o.side, o.price, o.leaves) for o in orders] == [
        ("1", Side.Buy, D(99), D(2)),
        ("2", Side.Sell, D("101.5"), D(2)),
        ("3", Side.Buy, D(0), D(2)),
    ]
    v = w.p.position(SIM, 9001)
    assert v is not None and len(v.open_orders) == 3 and v.qty == 0
    assert [p.instrument_id for p in w.p.positions()] == [9001]


def test_first_position_answer_opens_a_later_different_one_is_a_mismatch() -> None:
    w = World()
    w.marks[9001] = D(100)
    # A restart with a position: the gateway's first answer is the opening position.
    w.feed(m.PositionInfo(instrument_id=9001, position="2"))
    v = w.p.position(SIM, 9001)
    assert v is not None and (v.qty, v.avg_price, v.gateway_qty) == (D(2), D(100), D(2))
    assert not w.mismatches
    w.feed(fill(9001, Side.Sell, "110", "1"), m.PositionInfo(instrument_id=9001, position="1"))
    assert not w.mismatches  # agrees
    w.feed(m.PositionInfo(instrument_id=9001, position="0.5"))
    assert w.mismatches == [PositionMismatch(SIM, 9001, D(1), D("0.5"), 42)]
    v = w.p.position(SIM, 9001)
    assert v is not None and v.qty == D("0.5")  # the gateway's figure is taken
    w.feed(m.PositionInfo(instrument_id=9001, position="0.5"))
    assert len(w.mismatches) == 1  # said once


def test_balances_from_the_wallet_answer_moved_by_fills_and_the_drift_counted() -> None:
    w = World()
    assert w.p.balance(SIM, "USDT") is None
    w.feed(
        m.WalletInfo(coin="USDT", total="1000", available="1000"),
        m.WalletInfo(coin="SIM", total="0", available="0"),
    )
    # A linear instrument's realised PnL less its fee moves the settlement coin.
    w.feed(
        fill(9001, Side.Buy, "100", "1", fee="0.1", coin="USDT"),
        fill(9001, Side.Sell, "110", "1", fee="0.1", coin="USDT"),
    )
    assert w.p.balance(SIM, "USDT") == D("1009.8")
    # A spot pair moves both coins.
    w.feed(fill(9003, Side.Buy, "50", "2", fee="0.002", coin="SIM"))
    assert w.p.balance(SIM, "USDT") == D("909.8")
    assert w.p.balance(SIM, "SIM") == D("1.998")
    # The next answer wins; its difference (funding, interest) is counted, not alerted.
    w.feed(m.WalletInfo(coin="USDT", total="909.7", available="900"))
    assert w.p.balance(SIM, "USDT") == D("909.7")
    assert w.p.wallet_adjustments == 1 and w.p.wallet_drift[(SIM, "USDT")] == D("-0.1")
    assert not w.mismatches


def test_unknown_instrument_fill_is_not_counted() -> None:
    w = World()
    w.feed(fill(4242, Side.Buy, "1", "1"))
    assert w.p.holdings == {} and w.p.position(SIM, 4242) is None
