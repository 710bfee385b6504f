"""Queue position: joining behind the displayed size, trades, cancels per model, L3 FIFO."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, OrderStatus, Side
from mlthon.gateways.sim.queue import (
    ConservativeQueue,
    log_queue,
    power_queue,
    queue_model_from_name,
)
from mlthon.infra.bus.messages import (
    ADD,
    BID,
    DELETE,
    MODIFY,
    FeedStatus,
    LevelUpdate,
    OrderExecution,
)
from tests.unit.gateways.helpers import book, engine, get, lots, new, ticks, trade

# Every test runs on an engine with its own books and on one reading shared books.
pytestmark = pytest.mark.usefixtures("shared_books")

# Instrument 1: tick 0.1, lot 0.001 -> 1.000 is 1000 lots. Our order: buy 0.500 at 100.0.


def _setup(model=None, level="1.000"):
    e, rec = engine(queue_model=model or ConservativeQueue())
    e.on_book_update(book(1, [("100.0", level)], [("100.5", "5.000")]), 1)
    e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
    rec.clear()
    return e, rec, get(e, "q")


def _level(e, qty: str, ts: int = 3):
    e.on_book_update(book(1, [("100.0", qty)]), ts)


def test_order_joins_behind_displayed_quantity():
    _e, _rec, o = _setup()
    assert o.ahead == 1000


@pytest.mark.parametrize(
    ("model", "expected_ahead"),
    [
        # 1.000 ahead of us, 3.000 joins behind (level 4.000), then 0.800 is cancelled (-> 3.200).
        # conservative: all 800 came from the 3000 behind us -> ahead stays 1000
        (ConservativeQueue(), 1000),
        # power n=1: share ahead = 1000 / (1000 + 3000) = 0.25 -> 0.25 * 800 = 200 -> 800 ahead
        (power_queue(1.0), 800),
        # power n=2: 1000^2 / (1000^2 + 3000^2) = 1/10 -> 80 -> 920 ahead
        (power_queue(2.0), 920),
    ],
)
def test_cancels_move_the_queue_per_model(model, expected_ahead):
    e, _rec, o = _setup(model)
    _level(e, "4.000")
    assert o.ahead == 1000
    _level(e, "3.200", ts=4)
    assert o.ahead == expected_ahead


def test_log_model_stays_within_bounds():
    e, _rec, o = _setup(log_queue(seed=7))
    _level(e, "4.000")
    _level(e, "3.200", ts=4)
    # log1p(1000) / (log1p(1000) + log1p(3000)) = 6.909 / 14.916 = 0.4632 -> 370.6 expected
    assert o.ahead in (629, 630)


def test_conservative_cancel_bigger_than_queue_behind_eats_into_ahead():
    e, _rec, o = _setup()
    _level(e, "1.200")  # 0.200 joins behind us
    _level(e, "0.700", ts=4)  # 0.500 cancelled: 0.200 from behind, the other 0.300 from ahead
    assert o.ahead == 700


def test_trade_at_our_price_consumes_ahead_then_fills_us():
    e, rec, o = _setup()
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.300"), 3)
    assert o.ahead == 700 and o.filled == 0
    # the depth update that reflects the trade (1.000 -> 0.700) is not a cancel
    _level(e, "0.700", ts=4)
    assert o.ahead == 700
    # a 1.000 trade: 0.700 ahead, then 0.300 of ours
    e.on_trade_update(trade(1, Side.Sell, "100.0", "1.000"), 5)
    (x,) = rec.of(OrderExecution)
    assert (x.price, x.fill_qty, x.leaves_qty, x.maker) == ("100.0", "0.300", "0.200", True)
    # maker fee 2 bp: 100.0 * 0.3 * 0.0002 = 0.006
    assert Decimal(x.fee) == Decimal("0.006")
    assert o.ahead == 0


def test_trade_on_the_other_side_does_not_move_us():
    e, _rec, o = _setup()
    e.on_trade_update(trade(1, Side.Buy, "100.0", "0.300"), 3)  # a buyer lifting: hits asks
    assert o.ahead == 1000


def test_trade_through_our_price_fills_us_fully():
    e, rec, o = _setup()
    e.on_trade_update(trade(1, Side.Sell, "99.9", "0.001"), 3)
    (x,) = rec.of(OrderExecution)
    assert (x.price, x.fill_qty, x.leaves_qty, x.maker) == ("100.0", "0.500", "0.000", True)
    assert o.status is OrderStatus.Filled


def test_ask_moving_onto_our_bid_fills_against_it():
    e, rec, _o = _setup()
    # the bid level went away and an ask of 0.200 now sits at 100.0
    e.on_book_update(book(1, asks=[("100.0", "0.200")], deletes=[(BID, "100.0")]), 3)
    (x,) = rec.of(OrderExecution)
    assert (x.price, x.fill_qty, x.leaves_qty, x.maker) == ("100.0", "0.200", "0.300", True)
    assert e.market(1).best_ask() == 1005  # the crossing ask was consumed


def test_level_deleted_puts_us_first():
    e, rec, o = _setup()
    e.on_book_update(book(1, deletes=[(BID, "100.0")]), 3)
    assert o.ahead == 0
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.100"), 4)
    assert rec.of(OrderExecution)[0].fill_qty == "0.100"


def test_two_own_orders_share_a_trade_in_fifo_order():
    e, rec, _a = _setup()
    e.new_order(new("b", Side.Buy, "100.0", "0.300"), 3)
    b = get(e, "b")
    assert b.ahead == 1000  # our own orders are not in the displayed book
    rec.clear()
    # 1.300 trades: 1.000 ahead, then 0.300 to a (its whole... a has 0.5 -> 0.3), b gets nothing;
    # fill(a) = min(500, 1300 - 1000 - 0) = 300; fill(b) = min(300, 1300 - 1000 - 500) = 0
    e.on_trade_update(trade(1, Side.Sell, "100.0", "1.300"), 4)
    fills = rec.of(OrderExecution)
    assert [(f.cl_id, f.fill_qty) for f in fills] == [("q", "0.300")]
    # a 0.400 trade: a's remaining 0.200, then 0.200 of b
    # fill(a) = min(200, 400 - 0 - 0) = 200; fill(b) = min(300, 400 - 0 - 200) = 200
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.400"), 5)
    fills = rec.of(OrderExecution)[1:]
    assert [(f.cl_id, f.fill_qty) for f in fills] == [("q", "0.200"), ("b", "0.200")]


def test_queue_model_from_name():
    assert queue_model_from_name("conservative").name == "conservative"
    assert queue_model_from_name("uniform").name == "power1"
    assert queue_model_from_name("power", power=3).name == "power3"
    assert queue_model_from_name("LOG").name == "log"
    with pytest.raises(ValueError, match="unknown queue model"):
        queue_model_from_name("magic")


def _lvl(ch, ts):
    """An order-level message of instrument 1, levels given as text (converted as the feed
    does)."""
    ch = [(a, s, lid, ticks(1, p), lots(1, q)) for a, s, lid, p, q in ch]
    return LevelUpdate(ex=Exchange.Sim.value, iid=1, ts=ts, ch=ch)


def test_level_id_data_gives_exact_fifo():
    e, rec = engine()
    e.on_level_update(
        _lvl(
            [
                (ADD, BID, 1, "100.0", "0.400"),
                (ADD, BID, 2, "100.0", "0.600"),
                (ADD, 2, 9, "100.5", "1.000"),
            ],
            1,
        ),
        1,
    )
    e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
    o = get(e, "q")
    assert o.ahead == 1000
    e.on_level_update(_lvl([(DELETE, BID, 2, "100.0", "0")], 3), 3)  # id 2 was ahead: gone
    assert o.ahead == 400
    e.on_level_update(_lvl([(ADD, BID, 3, "100.0", "0.500")], 4), 4)  # joins behind us
    assert o.ahead == 400
    e.on_level_update(_lvl([(MODIFY, BID, 1, "100.0", "0.100")], 5), 5)  # shrinks, keeps place
    assert o.ahead == 100
    e.on_level_update(_lvl([(MODIFY, BID, 3, "100.0", "0.100")], 6), 6)  # behind us: no effect
    assert o.ahead == 100
    rec.clear()
    # a 0.300 trade: 0.100 ahead (id 1), then 0.200 of ours
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.300"), 7)
    assert rec.of(OrderExecution)[0].fill_qty == "0.200"
    assert e.market(1).level(True, 1000) == 200  # 0.100 + 0.100 displayed in the aggregate


def test_level_id_resnapshot_keeps_our_place_in_the_queue():
    # Before issue 17 a fresh image of an order-level book (a re-snapshot) put our resting
    # orders at the front of their queue: every level id in it was newer than them.
    e, rec = engine()
    image = [
        (ADD, BID, 1, "100.0", "0.400"),
        (ADD, BID, 2, "100.0", "0.600"),
        (ADD, 2, 9, "100.5", "1.0"),
    ]
    e.on_level_update(_lvl(image, 1), 1)
    e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
    o = get(e, "q")
    assert o.ahead == 1000
    start = FeedStatus(ex=Exchange.Sim.value, iid=1, status=FeedHandlerStatus.SnapshotStart)
    e.on_feed_status(start, 3)
    e.on_level_update(_lvl(image, 4), 4)  # the same book again
    assert o.ahead == 1000
    rec.clear()
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.300"), 5)  # 0.300 of the 1.000 ahead
    assert rec.of(OrderExecution) == [] and o.ahead == 700
    e.on_level_update(_lvl([(DELETE, BID, 1, "100.0", "0")], 6), 6)  # id 1 was ahead of us
    assert o.ahead == 600
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.700"), 7)  # 0.600 ahead, then 0.100 ours
    assert [x.fill_qty for x in rec.of(OrderExecution)] == ["0.100"]


def test_level_id_resnapshot_with_less_ahead_moves_us_up():
    e, _rec = engine()
    e.on_level_update(
        _lvl([(ADD, BID, 1, "100.0", "0.400"), (ADD, BID, 2, "100.0", "0.600")], 1), 1
    )
    e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
    o = get(e, "q")
    start = FeedStatus(ex=Exchange.Sim.value, iid=1, status=FeedHandlerStatus.SnapshotStart)
    e.on_feed_status(start, 3)
    e.on_level_update(_lvl([(ADD, BID, 2, "100.0", "0.600")], 4), 4)  # id 1 left meanwhile
    assert o.ahead == 600
    e.on_level_update(_lvl([(ADD, BID, 3, "100.0", "0.200")], 5), 5)  # a newcomer: behind
    assert o.ahead == 600


def test_level_id_size_increase_loses_priority():
    e, _rec = engine()
    e.on_level_update(_lvl([(ADD, BID, 1, "100.0", "0.400"), (ADD, 2, 9, "100.5", "1.0")], 1), 1)
    e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
    o = get(e, "q")
    assert o.ahead == 400
    e.on_level_update(_lvl([(MODIFY, BID, 1, "100.0", "0.900")], 3), 3)  # bigger: to the back
    assert o.ahead == 0


@pytest.mark.parametrize(
    ("model", "fills"),
    [
        # docs/simulation.md section 9: conservative fills 0.200 at step 6 only;
        # uniform fills 0.200 at step 4 and the last 0.300 at step 6
        (ConservativeQueue(), [("0.200", "0.300")]),
        (power_queue(1.0), [("0.200", "0.300"), ("0.300", "0.000")]),
    ],
)
def test_docs_worked_example(model, fills):
    e, rec = engine(queue_model=model)
    e.on_book_update(
        book(1, [("100.0", "1.000"), ("99.9", "2.000")], [("100.1", "0.500"), ("100.2", "1.000")]),
        1,
    )
    e.new_order(new("w", Side.Buy, "100.0", "0.500"), 2)  # step 1
    _level(e, "2.000", ts=3)  # step 2
    _level(e, "1.400", ts=4)  # step 3
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.900"), 5)  # step 4
    _level(e, "0.500", ts=6)  # step 5
    e.on_trade_update(trade(1, Side.Sell, "100.0", "0.300"), 7)  # step 6
    got = [(x.fill_qty, x.leaves_qty) for x in rec.of(OrderExecution)]
    assert got == fills
    if len(fills) == 2:
        assert Decimal(rec.of(OrderExecution)[0].fee) == Decimal("0.004")  # 100 * 0.2 * 0.0002


def test_level_id_ask_crossing_our_bid_fills_it():
    e, rec = engine()
    e.on_level_update(_lvl([(ADD, BID, 1, "100.0", "0.400"), (ADD, 2, 9, "100.5", "1.0")], 1), 1)
    e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
    rec.clear()
    # id 1 leaves and an ask of 0.300 arrives at 100.0: it meets our bid
    e.on_level_update(_lvl([(DELETE, BID, 1, "100.0", "0"), (ADD, 2, 10, "100.0", "0.300")], 3), 3)
    (x,) = rec.of(OrderExecution)
    assert (x.price, x.fill_qty, x.leaves_qty, x.maker) == ("100.0", "0.300", "0.200", True)


def test_triggered_fok_stop_that_cannot_fill_is_cancelled_whole():
    from mlthon.basics.mlt_enum import TIF, CancelCode, OrderType, TriggerDirection
    from mlthon.infra.bus.messages import OrderCancelled

    e, rec = engine()
    e.on_book_update(book(1, [("100.0", "1.000")], [("100.5", "0.100")]), 1)
    e.new_order(
        new(
            "f",
            Side.Buy,
            "100.5",
            "0.200",
            ord_type=OrderType.StopLimit,
            tif=TIF.FOK,
            stop_price="100.4",
            trigger_dir=TriggerDirection.Up,
        ),
        2,
    )
    e.on_trade_update(trade(1, Side.Buy, "100.4", "0.001"), 3)  # triggers; only 0.100 offered
    (c,) = rec.of(OrderCancelled)
    assert c.cancel_code is CancelCode.ImmediateOrCancel and not rec.of(OrderExecution)


# ------------------------------------------------------------------------------------ properties
_events = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(1, 1500)),
        st.tuples(st.just("level"), st.integers(0, 4000)),
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(events=_events, start=st.integers(0, 3000))
def test_probabilistic_never_behind_conservative_and_no_early_fill(events, start):
    """On any sequence, the power model fills no later than the conservative one, and neither
    fills before the quantity ahead on arrival has traded or left the level."""
    first: dict[str, int] = {}
    for name, model in (("cons", ConservativeQueue()), ("prob", power_queue(1.0, seed=3))):
        e, rec = engine(queue_model=model)
        e.on_book_update(
            book(1, [("100.0", f"{start / 1000:.3f}")] if start else [], [("101.0", "9.000")]), 1
        )
        e.new_order(new("q", Side.Buy, "100.0", "0.500"), 2)
        level, gone = start, 0
        for i, (kind, n) in enumerate(events, start=3):
            if kind == "trade":
                e.on_trade_update(trade(1, Side.Sell, "100.0", f"{n / 1000:.3f}"), i)
                gone += n
            else:
                e.on_book_update(book(1, [("100.0", f"{n / 1000:.3f}")]), i)
                gone += max(0, level - n)
                level = n
            if rec.of(OrderExecution) and name not in first:
                first[name] = i
                assert gone >= start  # never before the displayed quantity ahead has gone
        o = get(e, "q")
        assert o.ahead >= 0 and o.filled <= o.qty
    assert first.get("prob", 10**9) <= first.get("cons", 10**9)
