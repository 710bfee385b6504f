"""Order entry on the matching core: order types, TIFs, rejects, modify, cancel, STP, stops."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    ExecInstructions,
    GtwRejectCode,
    OrderStatus,
    OrderType,
    Side,
    TriggerDirection,
)
from mlthon.basics.tickbook import ASK, BID
from mlthon.infra.bus.messages import (
    CancelAll,
    CancelAllAck,
    CancelAllReject,
    CancelOrder,
    CancelOrderReject,
    ModifyOrder,
    ModifyOrderAck,
    ModifyOrderReject,
    NewOrderAck,
    NewOrderReject,
    OrderCancelled,
    OrderExecution,
)
from tests.unit.gateways.helpers import SharedBookEngine, book, engine, get, new, trade

# Every test runs on an engine with its own books and on one reading shared books.
pytestmark = pytest.mark.usefixtures("shared_books")

# The standard book on instrument 1 (tick 0.1, lot 0.001, min notional 5, taker 5 bp, maker 2 bp):
#   asks 100.3 x 3.000 | 100.2 x 1.000 | 100.1 x 0.500
#   bids 100.0 x 1.000 |  99.9 x 2.000 |  99.8 x 4.000
BIDS = [("100.0", "1.000"), ("99.9", "2.000"), ("99.8", "4.000")]
ASKS = [("100.1", "0.500"), ("100.2", "1.000"), ("100.3", "3.000")]


@pytest.fixture
def eng():
    e, rec = engine()
    e.on_book_update(book(1, BIDS, ASKS), 1)
    return e, rec


def test_limit_buy_crossing_walks_levels_then_rests_the_rest(eng):
    e, rec = eng
    e.new_order(new("a", Side.Buy, "100.2", "2.000"), 10)
    assert rec.kinds() == ["NewOrderAck", "OrderExecution", "OrderExecution"]
    x1, x2 = rec.of(OrderExecution)
    # 0.5 at 100.1, then 1.0 at 100.2; 0.5 left resting at 100.2
    assert (x1.price, x1.fill_qty, x1.leaves_qty, x1.maker) == ("100.1", "0.500", "1.500", False)
    assert (x2.price, x2.fill_qty, x2.leaves_qty) == ("100.2", "1.000", "0.500")
    # taker fee 0.0005: 100.1 * 0.5 * 0.0005 = 0.025025 ; 100.2 * 1 * 0.0005 = 0.0501
    assert Decimal(x1.fee) == Decimal("0.025025")
    assert Decimal(x2.fee) == Decimal("0.0501")
    assert x1.fee_coin == "USDT"
    assert x1.exec_id != x2.exec_id
    o = get(e, "a")
    assert o.status is OrderStatus.PartiallyFilled
    assert o.tick == 1002 and o.leaves == 500
    # the sim consumed the liquidity it took: asks now start at 100.3
    assert e.market(1).best_ask() == 1003


def test_limit_buy_passive_rests_without_fill(eng):
    e, rec = eng
    e.new_order(new("a", Side.Buy, "99.9", "0.100"), 10)
    assert rec.kinds() == ["NewOrderAck"]
    ack = rec.of(NewOrderAck)[0]
    assert (ack.price, ack.qty, ack.leaves_qty, ack.ord_type) == (
        "99.9",
        "0.100",
        "0.100",
        OrderType.Limit,
    )
    assert get(e, "a").ahead == 2000  # 2.000 displayed ahead of us, in lots


def test_market_buy_walks_the_book_and_cancels_what_is_left(eng):
    e, rec = eng
    # asks total 4.5; a market buy of 5 takes everything, 0.5 is cancelled as IOC remainder
    e.new_order(new("m", Side.Buy, "0", "5.000", ord_type=OrderType.Market), 10)
    assert rec.kinds() == ["NewOrderAck"] + ["OrderExecution"] * 3 + ["OrderCancelled"]
    fills = rec.of(OrderExecution)
    assert [f.fill_qty for f in fills] == ["0.500", "1.000", "3.000"]
    assert fills[-1].leaves_qty == "0.500"
    c = rec.of(OrderCancelled)[0]
    assert c.cancel_code is CancelCode.ImmediateOrCancel and c.unsolicited


def test_market_sell_fills_at_bids(eng):
    e, rec = eng
    e.new_order(new("m", Side.Sell, "", "1.500", ord_type=OrderType.Market), 10)
    fills = rec.of(OrderExecution)
    assert [(f.price, f.fill_qty) for f in fills] == [("100.0", "1.000"), ("99.9", "0.500")]
    assert get(e, "m").status is OrderStatus.Filled


def test_ioc_takes_what_it_can_and_cancels_the_rest(eng):
    e, rec = eng
    e.new_order(new("i", Side.Buy, "100.1", "0.800", tif=TIF.IOC), 10)
    assert rec.kinds() == ["NewOrderAck", "OrderExecution", "OrderCancelled"]
    assert rec.of(OrderExecution)[0].fill_qty == "0.500"
    c = rec.of(OrderCancelled)[0]
    assert c.cancel_code is CancelCode.ImmediateOrCancel and c.unsolicited and "0.300" in c.reason


def test_ioc_without_liquidity_is_acked_then_cancelled(eng):
    e, rec = eng
    e.new_order(new("i", Side.Buy, "100.0", "0.100", tif=TIF.IOC), 10)
    assert rec.kinds() == ["NewOrderAck", "OrderCancelled"]


def test_fok_fills_entirely_when_liquidity_suffices(eng):
    e, rec = eng
    # within 100.2 there is 0.5 + 1.0 = 1.5
    e.new_order(new("f", Side.Buy, "100.2", "1.500", tif=TIF.FOK), 10)
    assert rec.kinds() == ["NewOrderAck", "OrderExecution", "OrderExecution"]
    assert get(e, "f").status is OrderStatus.Filled


def test_fok_rejected_when_not_fully_fillable(eng):
    e, rec = eng
    e.new_order(new("f", Side.Buy, "100.2", "1.501", tif=TIF.FOK), 10)
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.FokNotFilled
    assert "1.500 available" in rej.reason
    assert e.market(1).best_ask() == 1001  # nothing consumed


def test_post_only_rests_when_passive(eng):
    e, rec = eng
    e.new_order(new("p", Side.Sell, "100.1", "0.100", exec_instr=ExecInstructions.PostOnly), 10)
    assert rec.kinds() == ["NewOrderAck"]


def test_post_only_rejected_when_it_would_take(eng):
    e, rec = eng
    e.new_order(new("p", Side.Buy, "100.1", "0.100", exec_instr=ExecInstructions.PostOnly), 10)
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.PostOnlyWouldCross and "100.1" in rej.reason


@pytest.mark.parametrize(
    ("kw", "code", "text"),
    [
        ({"instrument_id": 99}, GtwRejectCode.UnknownInstrument, "unknown instrument"),
        ({"price": "100.05"}, GtwRejectCode.InvalidPrice, "tick"),
        ({"price": "-1"}, GtwRejectCode.InvalidPrice, "> 0"),
        ({"price": "abc"}, GtwRejectCode.InvalidPrice, "not a number"),
        ({"qty": "0.0005"}, GtwRejectCode.InvalidQty, "lot"),
        ({"qty": "0"}, GtwRejectCode.InvalidQty, "> 0"),
        # 0.049 * 99.0 = 4.851 < min notional 5
        ({"qty": "0.049", "price": "99.0"}, GtwRejectCode.InvalidQty, "notional 4.851"),
        ({"side": Side.Unset}, GtwRejectCode.InvalidRequest, "side"),
    ],
)
def test_new_order_rejects_with_code_and_reason(eng, kw, code, text):
    e, rec = eng
    args: dict[str, Any] = {
        "strat": "s1",
        "cl_id": "r",
        "instrument_id": 1,
        "side": Side.Buy,
        "price": "99.0",
        "qty": "1.000",
    }
    args.update(kw)
    from mlthon.infra.bus.messages import NewOrder

    e.new_order(NewOrder(**args), 10)
    (rej,) = rec.msgs()
    assert isinstance(rej, NewOrderReject)
    assert rej.code is code
    assert text in rej.reason
    assert rej.cl_id == "r"


def test_qty_below_minimum_rejected():
    import attrs

    from mlthon.gateways.sim.matching import MatchingEngine
    from tests.unit.gateways.helpers import LIN, Recorder

    rec = Recorder()
    inst = attrs.evolve(LIN, min_qty=Decimal("0.005"), min_notional=Decimal(0))
    e = MatchingEngine([inst], rec, balances={"USDT": Decimal("1000")})
    e.new_order(new("q", Side.Buy, "99.0", "0.004"), 1)  # on the lot grid, under the minimum
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.InvalidQty and "below the minimum 0.005" in rej.reason


def test_duplicate_client_id_rejected_even_after_close(eng):
    e, rec = eng
    e.new_order(new("d", Side.Buy, "99.0", "0.100"), 10)
    e.cancel_order(CancelOrder(strat="s1", cl_id="d", instrument_id=1), 11)
    e.new_order(new("d", Side.Buy, "99.0", "0.100"), 12)
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.DuplicateClientId
    # the same id from another strategy is fine
    e.new_order(new("d", Side.Buy, "99.0", "0.100", strat="s2"), 13)
    assert rec.of(NewOrderAck, "s2")


def test_insufficient_margin_rejected():
    from mlthon.gateways.sim.matching import MatchingEngine
    from tests.unit.gateways.helpers import LIN, Recorder

    rec = Recorder()
    e = MatchingEngine([LIN], rec, balances={"USDT": Decimal("100")}, leverage=Decimal("10"))
    # 10x leverage: 10.000 at 99.0 needs 990.0 / 10 = 99.0 USDT of margin: fits in 100
    e.new_order(new("ok", Side.Buy, "99.0", "1.000"), 1)
    assert rec.kinds() == ["NewOrderAck"]
    # the open order holds 99.0 * 1 / 10 = 9.9; a second of 1.000 at 99.0 needs another 9.9: ok;
    # then 10 more at 99.0 need 99.0 while only 100 - 9.9 - 9.9 = 80.2 is left
    e.new_order(new("ok2", Side.Buy, "99.0", "1.000"), 2)
    e.new_order(new("big", Side.Buy, "99.0", "10.000"), 3)
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.InsufficientBalance
    assert "needs 99" in rej.reason and "available 80.2" in rej.reason


def test_spot_sell_needs_base_coin():
    from mlthon.gateways.sim.matching import MatchingEngine
    from tests.unit.gateways.helpers import SPOT, Recorder

    rec = Recorder()
    e = MatchingEngine([SPOT], rec, balances={"ETH": Decimal("1"), "USDT": Decimal("10000")})
    e.new_order(new("s", Side.Sell, "3000.00", "1.00", iid=2), 1)
    e.new_order(new("s2", Side.Sell, "3000.00", "0.01", iid=2), 2)  # 1 ETH already locked
    assert rec.of(NewOrderReject)[0].code is GtwRejectCode.InsufficientBalance
    # buying 3.33 ETH at 3000 locks 3.33 * 3000 * 1.001 = 9999.99 USDT <= 10000: accepted
    e.new_order(new("b", Side.Buy, "3000.00", "3.33", iid=2), 3)
    assert rec.of(NewOrderAck)[-1].cl_id == "b"
    assert e.account("s1").locked("USDT") == Decimal("9999.99")


# ------------------------------------------------------------------------------------ reduce-only
def test_close_position_rejected_without_position(eng):
    e, rec = eng
    e.new_order(new("c", Side.Sell, "100.5", "0.100", close_position=True), 10)
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.ReduceOnlyWouldIncrease


def test_close_position_accepted_up_to_position_and_capped_at_fill(eng):
    e, rec = eng
    e.new_order(new("open", Side.Buy, "100.1", "0.500"), 10)  # long 0.5
    e.new_order(new("c1", Side.Sell, "100.5", "0.600", close_position=True), 11)
    assert rec.of(NewOrderReject)[-1].code is GtwRejectCode.ReduceOnlyWouldIncrease
    e.new_order(new("c2", Side.Sell, "100.5", "0.500", close_position=True), 12)
    assert rec.of(NewOrderAck)[-1].cl_id == "c2"
    # a trade through 100.5 fills the whole 0.5 and leaves us flat
    e.on_trade_update(trade(1, Side.Buy, "100.6", "2.000"), 13)
    assert e.account("s1").net_position(e.market(1).inst) == 0


def test_close_position_on_spot_is_invalid():
    e, rec = engine()
    e.new_order(new("c", Side.Sell, "3000.00", "1.00", iid=2, close_position=True), 1)
    assert rec.of(NewOrderReject)[0].code is GtwRejectCode.InvalidRequest


# ------------------------------------------------------------------------------------ cancel
def test_cancel_acks_then_reports_cancelled(eng):
    e, rec = eng
    e.new_order(new("a", Side.Buy, "99.0", "0.100"), 10)
    rec.clear()
    e.cancel_order(CancelOrder(strat="s1", cl_id="a", instrument_id=1), 11)
    assert rec.kinds() == ["CancelOrderAck", "OrderCancelled"]
    c = rec.of(OrderCancelled)[0]
    assert (c.cancel_code, c.unsolicited, c.engine_ts) == (CancelCode.CanceledByUser, False, 11)
    assert not e.market(1).resting_bids


def test_cancel_unknown_or_closed_order_rejected(eng):
    e, rec = eng
    e.cancel_order(CancelOrder(strat="s1", cl_id="nope", instrument_id=1), 11)
    e.new_order(new("f", Side.Buy, "100.1", "0.100"), 12)  # filled at once
    e.cancel_order(CancelOrder(strat="s1", cl_id="f", instrument_id=1), 13)
    e.new_order(new("o", Side.Buy, "99.0", "0.100"), 14)
    e.cancel_order(CancelOrder(strat="s2", cl_id="o", instrument_id=1), 15)  # not its order
    rejs = rec.of(CancelOrderReject, "s1")
    assert [r.cl_id for r in rejs] == ["nope", "f"]
    assert all(r.code is GtwRejectCode.UnknownOrder for r in rejs)
    assert rec.of(CancelOrderReject, "s2")[0].code is GtwRejectCode.UnknownOrder


def test_cancel_all_cancels_only_that_strategy_and_instrument(eng):
    e, rec = eng
    e.new_order(new("a", Side.Buy, "99.0", "0.100"), 10)
    e.new_order(new("b", Side.Sell, "101.0", "0.100"), 10)
    e.new_order(new("c", Side.Buy, "3000.00", "0.10", iid=2), 10)
    e.new_order(new("x", Side.Buy, "99.0", "0.100", strat="s2"), 10)
    rec.clear()
    e.cancel_all(CancelAll(strat="s1", instrument_id=1), 11)
    assert rec.kinds() == ["CancelAllAck", "OrderCancelled", "OrderCancelled"]
    assert {c.cl_id for c in rec.of(OrderCancelled)} == {"a", "b"}
    assert all(c.cancel_code is CancelCode.CancelAll for c in rec.of(OrderCancelled))
    assert get(e, "c").status.is_open and get(e, "x", "s2").status.is_open
    rec.clear()
    e.cancel_all(CancelAll(strat="s1", instrument_id=0, escalation=True), 12)
    (c,) = rec.of(OrderCancelled)
    assert (c.cl_id, c.cancel_code, c.unsolicited) == ("c", CancelCode.StopEscalation, True)


def test_cancel_all_unknown_instrument_rejected(eng):
    e, rec = eng
    e.cancel_all(CancelAll(strat="s1", instrument_id=77), 11)
    assert rec.of(CancelAllReject)[0].code is GtwRejectCode.UnknownInstrument
    assert not rec.of(CancelAllAck)


# ------------------------------------------------------------------------------------ modify
def _resting_buy(e, rec, ahead_trade: str | None = None):
    e.new_order(new("m", Side.Buy, "100.0", "0.500"), 10)  # 1.000 ahead at 100.0
    if ahead_trade:
        e.on_trade_update(trade(1, Side.Sell, "100.0", ahead_trade), 11)
    rec.clear()
    return get(e, "m")


def test_modify_qty_decrease_keeps_queue_position(eng):
    e, rec = eng
    o = _resting_buy(e, rec, ahead_trade="0.400")  # ahead 1.000 - 0.400 = 0.600
    assert o.ahead == 600
    e.modify_order(ModifyOrder(strat="s1", cl_id="m", new_qty="0.300"), 12)
    ack = rec.of(ModifyOrderAck)[0]
    assert (ack.new_price, ack.new_qty, ack.leaves_qty) == ("100.0", "0.300", "0.300")
    assert o.ahead == 600


def test_modify_qty_increase_loses_queue_position(eng):
    e, rec = eng
    o = _resting_buy(e, rec, ahead_trade="0.400")
    e.modify_order(ModifyOrder(strat="s1", cl_id="m", new_qty="0.800"), 12)
    assert rec.kinds() == ["ModifyOrderAck"]
    # back of the queue: the whole displayed level (1.000 in the sim's view) is ahead again
    assert o.ahead == 1000


def test_modify_price_change_loses_queue_position(eng):
    e, rec = eng
    o = _resting_buy(e, rec, ahead_trade="0.400")
    e.modify_order(ModifyOrder(strat="s1", cl_id="m", new_price="99.9"), 12)
    assert o.tick == 999 and o.ahead == 2000
    assert 1000 not in e.market(1).resting_bids


def test_modify_price_across_the_spread_takes_liquidity(eng):
    e, rec = eng
    _resting_buy(e, rec)
    e.modify_order(ModifyOrder(strat="s1", cl_id="m", new_price="100.1"), 12)
    assert rec.kinds() == ["ModifyOrderAck", "OrderExecution"]
    x = rec.of(OrderExecution)[0]
    assert (x.price, x.fill_qty, x.maker) == ("100.1", "0.500", False)


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"cl_id": "zz", "new_qty": "1"}, GtwRejectCode.UnknownOrder),
        ({"new_price": "100.05"}, GtwRejectCode.InvalidPrice),
        ({"new_qty": "0.0001"}, GtwRejectCode.InvalidQty),
        ({}, GtwRejectCode.InvalidRequest),
    ],
)
def test_modify_rejects(eng, kw, code):
    e, rec = eng
    _resting_buy(e, rec)
    args: dict[str, Any] = {"strat": "s1", "cl_id": "m"}
    args.update(kw)
    e.modify_order(ModifyOrder(**args), 12)
    assert rec.of(ModifyOrderReject)[0].code is code


def test_modify_qty_not_above_filled_rejected(eng):
    e, rec = eng
    o = _resting_buy(e, rec, ahead_trade="1.200")  # 1.000 ahead, then 0.200 of ours fills
    assert o.filled == 200
    e.modify_order(ModifyOrder(strat="s1", cl_id="m", new_qty="0.200"), 12)
    rej = rec.of(ModifyOrderReject)[0]
    assert rej.code is GtwRejectCode.InvalidQty and "filled 0.200" in rej.reason


def test_modify_post_only_into_the_spread_rejected(eng):
    e, rec = eng
    e.new_order(new("p", Side.Buy, "99.0", "0.100", exec_instr=ExecInstructions.PostOnly), 10)
    e.modify_order(ModifyOrder(strat="s1", cl_id="p", new_price="100.2"), 11)
    assert rec.of(ModifyOrderReject)[0].code is GtwRejectCode.PostOnlyWouldCross


# ------------------------------------------------------------------------------------ STP
def test_self_trade_prevention_cancels_the_resting_order(eng):
    e, rec = eng
    e.new_order(new("rest", Side.Sell, "100.1", "0.200"), 10)  # joins the ask at 100.1
    e.new_order(new("other", Side.Sell, "100.1", "0.200", strat="s2"), 10)
    rec.clear()
    e.new_order(new("take", Side.Buy, "100.1", "0.300"), 11)
    msgs = rec.msgs("s1")
    assert [type(m).__name__ for m in msgs] == ["NewOrderAck", "OrderCancelled", "OrderExecution"]
    c = msgs[1]
    assert (c.cl_id, c.cancel_code, c.unsolicited) == ("rest", CancelCode.SelfTradePrevention, True)
    # the taker matched the market only: 0.300 of the displayed 0.500 at 100.1
    assert msgs[2].fill_qty == "0.300"
    # another strategy's order is never matched by ours, nor cancelled
    assert get(e, "other", "s2").status is OrderStatus.New
    assert not rec.msgs("s2")


def test_post_only_crossing_own_order_rejected(eng):
    e, rec = eng
    e.new_order(new("ask", Side.Sell, "100.1", "0.200"), 10)
    e.new_order(new("bid", Side.Buy, "100.1", "0.200", exec_instr=ExecInstructions.PostOnly), 11)
    assert rec.of(NewOrderReject)[0].code is GtwRejectCode.PostOnlyWouldCross


# ------------------------------------------------------------------------------------ stops
def test_stop_market_up_triggers_on_trade_and_takes(eng):
    e, rec = eng
    e.on_trade_update(trade(1, Side.Buy, "100.1", "0.001"), 5)
    e.new_order(
        new(
            "st",
            Side.Buy,
            "0",
            "0.200",
            ord_type=OrderType.StopMarket,
            stop_price="100.5",
            trigger_dir=TriggerDirection.Up,
        ),
        10,
    )
    assert get(e, "st").status is OrderStatus.Untriggered
    e.on_trade_update(trade(1, Side.Buy, "100.4", "0.001"), 11)
    assert rec.kinds() == ["NewOrderAck"]
    # the asks moved: 100.5 x 1, 100.6 x 1; a trade at 100.5 triggers the stop
    e.on_book_update(
        book(
            1,
            asks=[("100.5", "0.100"), ("100.6", "1.000")],
            deletes=[(2, "100.1"), (2, "100.2"), (2, "100.3")],
        ),
        12,
    )
    e.on_trade_update(trade(1, Side.Buy, "100.5", "0.050"), 13)
    fills = rec.of(OrderExecution)
    assert [(f.price, f.fill_qty, f.maker) for f in fills] == [
        ("100.5", "0.100", False),
        ("100.6", "0.100", False),
    ]
    assert get(e, "st").status is OrderStatus.Filled


def test_stop_limit_down_triggers_on_mid_and_rests(eng):
    e, rec = eng
    e.new_order(
        new(
            "sl",
            Side.Sell,
            "99.0",
            "0.100",
            ord_type=OrderType.StopLimit,
            stop_price="99.5",
            trigger_dir=TriggerDirection.Down,
        ),
        10,
    )
    # mid 100.05 > 99.5: nothing. New book: bids 99.4, asks 99.6 -> mid 99.5 <= 99.5: triggers
    e.on_book_update(
        book(
            1,
            bids=[("99.4", "1.000")],
            asks=[("99.6", "1.000")],
            deletes=[
                (1, "100.0"),
                (1, "99.9"),
                (1, "99.8"),
                (2, "100.1"),
                (2, "100.2"),
                (2, "100.3"),
            ],
        ),
        11,
    )
    fills = rec.of(OrderExecution)
    # sell limit 99.0 sells into the 99.4 bid
    assert [(f.price, f.fill_qty) for f in fills] == [("99.4", "0.100")]


def test_stop_already_triggered_is_rejected(eng):
    e, rec = eng
    # mid is 100.05: an Up stop at 100.0 would trigger at once
    e.new_order(
        new(
            "st",
            Side.Buy,
            "0",
            "0.100",
            ord_type=OrderType.StopMarket,
            stop_price="100.0",
            trigger_dir=TriggerDirection.Up,
        ),
        10,
    )
    rej = rec.of(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.InvalidPrice and "trigger at once" in rej.reason


def test_stop_needs_price_and_direction(eng):
    e, rec = eng
    e.new_order(new("a", Side.Buy, "0", "0.100", ord_type=OrderType.StopMarket), 10)
    e.new_order(
        new("b", Side.Buy, "0", "0.100", ord_type=OrderType.StopMarket, stop_price="101.0"), 10
    )
    codes = [r.code for r in rec.of(NewOrderReject)]
    assert codes == [GtwRejectCode.InvalidPrice, GtwRejectCode.InvalidRequest]


def test_untriggered_stop_can_be_cancelled(eng):
    e, rec = eng
    e.new_order(
        new(
            "st",
            Side.Sell,
            "0",
            "0.100",
            ord_type=OrderType.StopMarket,
            stop_price="99.0",
            trigger_dir=TriggerDirection.Down,
        ),
        10,
    )
    e.cancel_order(CancelOrder(strat="s1", cl_id="st", instrument_id=1), 11)
    assert rec.kinds()[-2:] == ["CancelOrderAck", "OrderCancelled"]
    assert not e.market(1).stops


def test_reduce_only_capped_at_fill_when_position_shrank(eng):
    e, rec = eng
    e.new_order(new("open", Side.Buy, "100.1", "0.500"), 10)  # long 0.500
    e.new_order(new("ro", Side.Sell, "100.5", "0.500", close_position=True), 11)
    e.new_order(new("cut", Side.Sell, "100.0", "0.300"), 12)  # sells 0.300 now: long 0.200
    rec.clear()
    # a trade through 100.5 would fill all 0.500 of "ro", but only 0.200 is left to reduce
    e.on_trade_update(trade(1, Side.Buy, "100.6", "1.000"), 13)
    assert rec.kinds() == ["OrderExecution", "OrderCancelled"]
    x, c = rec.msgs()
    assert (x.fill_qty, x.leaves_qty) == ("0.200", "0.300")
    assert (c.cancel_code, c.unsolicited) == (CancelCode.ExchangeCancel, True)
    assert e.account("s1").net_position(e.market(1).inst) == 0


def test_reduce_only_cancelled_when_position_already_flat(eng):
    e, rec = eng
    e.new_order(new("open", Side.Buy, "100.1", "0.500"), 10)
    e.new_order(new("ro", Side.Sell, "100.5", "0.500", close_position=True), 11)
    e.new_order(new("flat", Side.Sell, "100.0", "0.500"), 12)
    rec.clear()
    e.on_trade_update(trade(1, Side.Buy, "100.6", "1.000"), 13)
    (c,) = rec.msgs()
    assert isinstance(c, OrderCancelled) and c.cancel_code is CancelCode.ExchangeCancel


@pytest.mark.parametrize(
    "kw",
    [
        {"exec_instr": ExecInstructions.PostOnly, "tif": TIF.IOC},
        {"exec_instr": ExecInstructions.PostOnly, "ord_type": OrderType.Market},
    ],
)
def test_post_only_combinations_that_make_no_sense_are_invalid(eng, kw):
    e, rec = eng
    e.new_order(new("p", Side.Buy, "99.0", "0.100", **kw), 10)
    assert rec.of(NewOrderReject)[0].code is GtwRejectCode.InvalidRequest


def test_snapshot_start_clears_the_book(eng):
    from mlthon.basics.mlt_enum import FeedHandlerStatus
    from mlthon.infra.bus.messages import FeedStatus

    e, _rec = eng
    e.on_feed_status(FeedStatus(ex=1, iid=1, status=FeedHandlerStatus.SnapshotStart), 10)
    assert e.market(1).best_bid() is None and e.market(1).best_ask() is None
    e.on_book_update(book(1, [("99.0", "1.000")], [("99.5", "1.000")]), 11)
    e.on_feed_status(FeedStatus(ex=1, iid=0, status=FeedHandlerStatus.SnapshotEnd), 12)
    assert e.market(1).best_bid() == 990  # SnapshotEnd clears nothing


def test_taken_liquidity_is_an_overlay_the_venue_resets(eng, shared_books):
    e, _rec = eng
    assert isinstance(e, SharedBookEngine) is shared_books
    mkt = e.market(1)
    venue = (mkt.book.depth(BID), mkt.book.depth(ASK))
    e.new_order(new("t", Side.Buy, "100.2", "0.800"), 2)  # 0.500 at 100.1, 0.300 at 100.2
    assert (mkt.book.depth(BID), mkt.book.depth(ASK)) == venue  # the venue's book: not written
    assert (mkt.best_ask(), mkt.visible(ASK, 1002)) == (1002, 700)  # the sim's view
    assert list(mkt.walk(ASK)) == [(1002, 700), (1003, 3000)]
    # the venue reports 100.1 again (its own size now): what was taken there is forgotten
    e.on_book_update(book(1, asks=[("100.1", "0.400")]), 3)
    assert (mkt.best_ask(), mkt.visible(ASK, 1001), mkt.visible(ASK, 1002)) == (1001, 400, 700)
    e.new_order(new("u", Side.Buy, "100.2", "1.100"), 4)  # takes 0.400 and the 0.700 left
    assert mkt.best_ask() == 1003 and mkt.book.depth(ASK)[:2] == [(1001, 400), (1002, 1000)]
