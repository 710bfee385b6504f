"""Fees, wallets, positions, PnL (linear, inverse, hedge mode), margin, funding and fetch_*."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, OrderStatus, OrderType, Side
from mlthon.gateways.sim.accounting import Account, Leg
from mlthon.gateways.sim.fees import FeeModel, FeeRates
from mlthon.infra.bus.messages import (
    AccountInfo,
    FetchAccount,
    FetchFunding,
    FetchOrders,
    FetchOrderStatus,
    FetchPosition,
    FetchWallet,
    FundingInfo,
    FundingUpdate,
    OrderExecution,
    OrdersInfo,
    OrderStatusInfo,
    PositionInfo,
    RequestReject,
    WalletInfo,
)
from tests.unit.gateways.helpers import INV, LIN, SPOT, book, engine, new, trade

# Every test runs on an engine with its own books and on one reading shared books.
pytestmark = pytest.mark.usefixtures("shared_books")


def _acct(**kw) -> Account:
    return Account("s", {"USDT": D("10000"), "BTC": D("1")}, **kw)


# ------------------------------------------------------------------------------------ fees
def test_fee_linear_taker_and_maker():
    fm = FeeModel()
    # 100.0 * 2 * 0.0005 = 0.1 ; maker 100.0 * 2 * 0.0002 = 0.04
    assert fm.fee(LIN, D("100.0"), D("2"), maker=False) == D("0.1")
    assert fm.fee(LIN, D("100.0"), D("2"), maker=True) == D("0.04")
    assert fm.fee_coin(LIN) == "USDT"


def test_fee_inverse_negative_maker_is_a_rebate_in_base_coin():
    fm = FeeModel()
    # 10 contracts x 100 USD at 50000 = 0.02 BTC; maker -0.00025 -> -0.000005 BTC
    assert fm.fee(INV, D("50000"), D("10"), maker=True) == D("-0.000005")
    # taker 0.00075 -> 0.000015 BTC
    assert fm.fee(INV, D("50000"), D("10"), maker=False) == D("0.000015")
    assert fm.fee_coin(INV) == "BTC"


def test_fee_overrides_instrument_beats_exchange_beats_default():
    fm = FeeModel(
        by_exchange={Exchange.Sim: FeeRates(D("0.0001"), D("0.0003"))},
        by_instrument={1: FeeRates(D("-0.0001"), D("0.0004"))},
    )
    assert fm.rates(LIN) == FeeRates(D("-0.0001"), D("0.0004"))
    assert fm.rates(SPOT) == FeeRates(D("0.0001"), D("0.0003"))
    assert FeeModel().rates(SPOT) == FeeRates(D("0.001"), D("0.001"))


def test_spot_fill_moves_both_wallets_and_charges_fee_in_quote():
    e, rec = engine(balances={"USDT": D("10000"), "ETH": D("0")})
    e.on_book_update(book(2, [("2999.00", "5.00")], [("3000.00", "5.00")]), 1)
    e.new_order(new("b", Side.Buy, "3000.00", "1.00", iid=2), 2)
    (x,) = rec.of(OrderExecution)
    # fee 3000 * 1 * 0.001 = 3 USDT; USDT 10000 - 3000 - 3 = 6997; ETH 1
    assert D(x.fee) == D("3") and x.fee_coin == "USDT"
    a = e.account("s1")
    assert a.wallet("USDT").total == D("6997") and a.wallet("ETH").total == D("1")
    e.new_order(new("s", Side.Sell, "2999.00", "0.50", iid=2), 3)
    # 0.5 * 2999 = 1499.5, fee 1.4995 -> USDT 6997 + 1499.5 - 1.4995 = 8495.0005 ; ETH 0.5
    assert a.wallet("USDT").total == D("8495.0005") and a.wallet("ETH").total == D("0.5")


# ------------------------------------------------------------------------------------ PnL
def test_linear_average_entry_realised_and_unrealised():
    a = _acct(marks=lambda _iid: D("103"))
    a.on_fill(LIN, Side.Buy, D("100"), D("1"), D("0"))
    a.on_fill(LIN, Side.Buy, D("102"), D("1"), D("0"))
    p = a.position(LIN)
    assert (p.qty, p.entry) == (D("2"), D("101"))  # (1*100 + 1*102) / 2
    realised = a.on_fill(LIN, Side.Sell, D("104"), D("1.5"), D("0"))
    assert realised == D("4.5")  # 1.5 * (104 - 101)
    assert (p.qty, p.entry) == (D("0.5"), D("101"))
    assert a.unrealised(LIN) == D("1.0")  # 0.5 * (103 - 101)
    assert a.wallet("USDT").total == D("10004.5")


def test_linear_short_flip_realises_then_opens_at_fill_price():
    a = _acct()
    a.on_fill(LIN, Side.Sell, D("100"), D("1"), D("0"))
    realised = a.on_fill(LIN, Side.Buy, D("90"), D("3"), D("0.5"))
    assert realised == D("10")  # short 1 from 100 closed at 90
    p = a.position(LIN)
    assert (p.qty, p.entry) == (D("2"), D("90"))
    assert a.wallet("USDT").total == D("10009.5")  # + 10 realised - 0.5 fee


def test_inverse_pnl_in_base_coin():
    a = _acct()
    a.on_fill(INV, Side.Buy, D("50000"), D("10"), D("0"))
    # 10 * 100 * (1/50000 - 1/40000) = 1000 * (0.00002 - 0.000025) = -0.005 BTC
    assert a.on_fill(INV, Side.Sell, D("40000"), D("10"), D("0")) == D("-0.005")
    assert a.wallet("BTC").total == D("0.995")
    # short 10 at 40000, covered at 50000: 1000 * (1/50000 - 1/40000) * -1 ... = -0.005 as well
    a.on_fill(INV, Side.Sell, D("40000"), D("10"), D("0"))
    assert a.on_fill(INV, Side.Buy, D("50000"), D("10"), D("0")) == D("-0.005")


def test_inverse_average_entry_is_harmonic():
    a = _acct()
    a.on_fill(INV, Side.Buy, D("60000"), D("10"), D("0"))
    a.on_fill(INV, Side.Buy, D("40000"), D("20"), D("0"))
    # 30 / (10/60000 + 20/40000) = 30 / (1/6000 + 3/6000) = 30 * 6000 / 4 = 45000
    assert a.position(INV).entry == D("45000")


def test_inverse_unrealised_uses_mark():
    a = _acct(marks=lambda _iid: D("40000"))
    a.on_fill(INV, Side.Buy, D("50000"), D("10"), D("0"))
    assert a.unrealised(INV) == D("-0.005")


def test_hedge_mode_keeps_two_legs():
    a = _acct(hedge_mode=True)
    a.on_fill(LIN, Side.Buy, D("100"), D("1"), D("0"))  # opens long leg
    a.on_fill(LIN, Side.Sell, D("110"), D("1"), D("0"))  # opens short leg (no close_position)
    assert a.position(LIN, Leg.Long).qty == D("1")
    assert a.position(LIN, Leg.Short).qty == D("1")
    assert a.net_position(LIN) == 0
    # close the long at 105: +5 ; close the short at 100: (110 - 100) = +10
    assert a.on_fill(LIN, Side.Sell, D("105"), D("1"), D("0"), reduce_only=True) == D("5")
    assert a.on_fill(LIN, Side.Buy, D("100"), D("1"), D("0"), reduce_only=True) == D("10")
    assert a.wallet("USDT").total == D("10015")
    assert a.reduce_room(LIN, Side.Sell) == 0


def test_hedge_mode_close_position_in_the_engine():
    e, _rec = engine(hedge_mode=True)
    e.on_book_update(book(1, [("100.0", "5.000")], [("100.1", "5.000")]), 1)
    e.new_order(new("l", Side.Buy, "100.1", "1.000"), 2)
    e.new_order(new("s", Side.Sell, "100.0", "1.000"), 3)
    acct = e.account("s1")
    assert acct.position(LIN, Leg.Long).qty == 1 and acct.position(LIN, Leg.Short).qty == 1
    e.new_order(new("cl", Side.Sell, "100.0", "1.000", close_position=True), 4)
    assert acct.position(LIN, Leg.Long).qty == 0 and acct.position(LIN, Leg.Short).qty == 1


def test_available_margin_counts_unrealised_and_position_margin():
    a = _acct(leverage=D("10"), marks=lambda _iid: D("90"))
    a.on_fill(LIN, Side.Buy, D("100"), D("10"), D("0"))
    # 10000 + unrealised 10 * (90 - 100) = -100, minus position margin 10 * 100 / 10 = 100
    assert a.available("USDT") == D("9800")
    coin, need = a.requirement(LIN, Side.Sell, D("90"), D("15"), False, D("0"))
    # one-way: selling 15 while long 10 opens only 5 -> 5 * 90 / 10 = 45
    assert (coin, need) == ("USDT", D("45"))


# ------------------------------------------------------------------------------------ funding
def test_funding_linear_long_pays_positive_rate_short_receives():
    e, _rec = engine()
    e.on_book_update(book(1, [("99.9", "5.000")], [("100.0", "5.000")]), 1)
    e.new_order(new("l", Side.Buy, "100.0", "2.000"), 2)
    e.new_order(new("s", Side.Sell, "99.9", "1.000", strat="s2"), 2)
    long_before = e.account("s1").wallet("USDT").total
    short_before = e.account("s2").wallet("USDT").total
    e.on_funding_update(
        FundingUpdate(ex=1, iid=1, ts=3, rate="0.0001", next_ts=1000, mark="100.0"), 3
    )
    assert e.settle_funding(1, 999) == []
    paid = e.settle_funding(1, 1000)
    # long: 2 * 100.0 * 0.0001 = 0.02 paid ; short: 1 * 100.0 * 0.0001 = 0.01 received
    assert sorted((p.strat, p.amount) for p in paid) == [("s1", D("0.02")), ("s2", D("-0.01"))]
    assert e.account("s1").wallet("USDT").total == long_before - D("0.02")
    assert e.account("s2").wallet("USDT").total == short_before + D("0.01")
    assert e.settle_funding(1, 2000) == []  # paid once per funding time


def test_funding_inverse_in_base_coin_and_negative_rate():
    e, _rec = engine()
    e.on_book_update(book(3, [("49999.5", "500")], [("50000.0", "500")]), 1)
    e.new_order(new("l", Side.Buy, "50000.0", "10", iid=3), 2)
    btc = e.account("s1").wallet("BTC").total
    e.on_funding_update(
        FundingUpdate(ex=1, iid=3, ts=3, rate="-0.0001", next_ts=1000, mark="50000"), 3
    )
    # a later market event past the funding time settles it:
    # 10 * 100 / 50000 = 0.02 BTC notional * -0.0001 = -0.000002 -> the long receives 0.000002
    e.on_trade_update(trade(3, Side.Buy, "50000.0", "1", ts=1001), 1001)
    assert e.account("s1").wallet("BTC").total == btc + D("0.000002")
    assert e.funding_payments[0].amount == D("-0.000002")


# ------------------------------------------------------------------------------------ fetch_*
@pytest.fixture
def filled():
    e, rec = engine()
    e.on_book_update(book(1, [("99.9", "5.000")], [("100.0", "5.000")]), 1)
    e.new_order(new("l", Side.Buy, "100.0", "2.000"), 2)
    e.new_order(new("r", Side.Buy, "99.0", "1.000"), 3)
    e.on_funding_update(FundingUpdate(ex=1, iid=1, ts=3, rate="0.0001", next_ts=1000), 3)
    rec.clear()
    return e, rec


def test_fetch_account_wallet_position_funding(filled):
    e, rec = filled
    e.fetch(FetchAccount(strat="s1"), 4)
    e.fetch(FetchWallet(strat="s1", coin="USDT"), 4)
    e.fetch(FetchPosition(strat="s1", instrument_id=1), 4)
    e.fetch(FetchFunding(strat="s1", instrument_id=1), 4)
    acc, wal, pos, fun = rec.msgs()
    assert isinstance(acc, AccountInfo) and acc.user_id == "s1"
    assert isinstance(wal, WalletInfo)
    # 1,000,000 - fee 2 * 100 * 0.0005 = 0.1 -> 999999.9 total.
    # available: + unrealised 2 * (mid 99.95 - 100) = -0.1, - position margin 200 (leverage 1),
    # - order margin 99.0 * 1 = 99.0 -> 999999.9 - 0.1 - 200 - 99 = 999700.8
    assert D(wal.total) == D("999999.9") and D(wal.available) == D("999700.8")
    assert isinstance(pos, PositionInfo) and pos.position == "2.000"
    assert isinstance(fun, FundingInfo) and (fun.rate, fun.next_ts) == ("0.0001", 1000)


def test_fetch_order_status_and_orders(filled):
    e, rec = filled
    e.fetch(FetchOrderStatus(strat="s1", instrument_id=1, cl_id="l"), 4)
    e.fetch(FetchOrders(strat="s1", instrument_id=0), 4)
    st, orders = rec.msgs()
    assert isinstance(st, OrderStatusInfo)
    assert (st.order.status, st.order.filled_qty, st.order.leaves_qty) == (
        OrderStatus.Filled,
        "2.000",
        "0.000",
    )
    assert isinstance(orders, OrdersInfo)
    assert [(o.cl_id, o.price, o.leaves_qty, o.ord_type) for o in orders.orders] == [
        ("r", "99.0", "1.000", OrderType.Limit)
    ]


def test_fetch_rejects_unknown_order_instrument_and_spot_position(filled):
    e, rec = filled
    e.fetch(FetchOrderStatus(strat="s1", instrument_id=1, cl_id="zz"), 4)
    e.fetch(FetchFunding(strat="s1", instrument_id=42), 4)
    e.fetch(FetchPosition(strat="s1", instrument_id=2), 4)
    codes = [(r.code, r.rqst_type) for r in rec.of(RequestReject)]
    assert codes == [
        (GtwRejectCode.UnknownOrder, "FetchOrderStatus"),
        (GtwRejectCode.UnknownInstrument, "FetchFunding"),
        (GtwRejectCode.InvalidRequest, "FetchPosition"),
    ]
