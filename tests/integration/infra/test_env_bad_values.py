"""Values that decode but are not sane never reach a strategy, and env calls refuse them with
``InvalidArgument`` naming the parameter (issue 16).

* ``send_new_order`` with qty ``"1e30"`` or price ``Decimal("1E+400")`` raised
  ``decimal.InvalidOperation``; ``client_id=10**70`` was accepted but its cancel refused.
* A book level ``"1e999999"`` reached the strategy as its best bid, and its next order raised.
* A trade with a ``NaN`` price was blamed on the strategy's ``on_public_trade``.

Since issue 17 market data travel in integer ticks and lots: the feed refuses such text before it
becomes ticks (tests/unit/feeds/test_feed_engine.py); here a receiver gets ticks whose price is not
sane (out of range, not positive) and refuses them the same way.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus, InvalidArgument, Side
from mlthon.infra.bus import messages as m
from tests.conftest import wait_until
from tests.harness import inproc_system

SIM = Exchange.Sim


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("qty", "1e30", "out of range"),
        ("qty", Decimal("1E+400"), "out of range"),
        ("qty", "1e-30", "more than 18 decimals"),
        ("price", Decimal("1E+400"), "out of range"),
        ("price", "NaN", "finite"),
    ],
)
async def test_env_order_with_an_absurd_value_raises_invalid_argument_naming_it(field, value, why):
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        args = {"price": "100.0", "qty": "0.001", field: value}
        with pytest.raises(InvalidArgument, match=why) as err:
            env.send_new_order(None, SIM, 9001, Side.Buy, args["price"], args["qty"])
        assert err.value.param == field


async def test_env_client_ids_follow_one_rule_for_new_modify_and_cancel():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        with pytest.raises(InvalidArgument, match="2\\*\\*63") as err:
            env.send_new_order(10**70, SIM, 9001, Side.Buy, "100.0", "0.001")
        assert err.value.param == "client_id"
        for bad in ("", "x" * 10_000, "a.b", 10**70, 0):
            with pytest.raises(InvalidArgument):
                env.send_cancel_order(SIM, 9001, bad)
            with pytest.raises(InvalidArgument):
                env.send_modify_order(SIM, bad, "100.0", None)
        # the largest id a new order takes is one modify and cancel take too
        big = env.send_new_order(2**63 - 1, SIM, 9001, Side.Buy, "100.0", "0.001")
        env.send_cancel_order(SIM, 9001, big)


async def test_env_book_level_that_is_not_sane_never_reaches_the_strategy():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(SIM, 9001, MDSub.BBO)
        s.feed(m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotStart))
        s.feed(m.BookUpdate(ex=SIM.value, iid=9001, ts=10, ch=[(0, 1, 1000, 1000)]))  # 100.0, 1
        s.feed(m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotEnd))
        await s.until("on_best_bid_level_update")
        # 10**20 ticks of 0.10: 1e19, past the sanity bound (1e15)
        s.feed(m.BookUpdate(ex=SIM.value, iid=9001, ts=11, ch=[(0, 1, 10**20, 1000)]))
        await wait_until(
            lambda: any(
                a[1] is FeedHandlerStatus.BookInvalid for a in s.strat.of("on_feed_handler_status")
            ),
            what="the book declared invalid",
        )
        bids = [a[2] for a in s.strat.of("on_best_bid_level_update")]
        assert bids == [Decimal("100.0")], bids
        detail = next(
            a[2]
            for a in s.strat.of("on_feed_handler_status")
            if a[1] is FeedHandlerStatus.BookInvalid
        )
        assert "tick 100000000000000000000" in detail and "out of range" in detail
        book = env.get_book(SIM, 9001)
        assert book is not None and not book.valid
        # the env keeps working: its next order goes out
        env.send_new_order(None, SIM, 9001, Side.Buy, "100.0", "0.001")
        await s.until("on_new_order_ack")


async def test_env_trade_that_is_not_sane_is_left_out_not_blamed_on_the_strategy():
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(SIM, 9001, MDSub.PublicTrades)
        s.feed(
            m.TradeUpdate(
                ex=SIM.value,
                iid=9001,
                ts=12,
                tr=[(1, -5, 1000, 12, "t1"), (1, 1000, 1000, 12, "t2")],  # -0.5, then 100.0
            )
        )
        await s.until("on_public_trade")
        assert [a[3] for a in s.strat.of("on_public_trade")] == [Decimal("100.0")]
        assert env.bad_trades == 1 and env.reactor.callback_errors == 0
