"""The batched book callback (an mlthon extension of the API): ``on_book_update`` gets each venue
message's price-level changes in one call, beside (or instead of) the per-level callbacks, on
price-level and order-level data; a strategy that leaves it at Strategy's no-op is never called.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlthon.api import BookAction, MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange, FeedHandlerStatus, Side
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind
from mlthon.infra.bus import messages as m
from mlthon.infra.env.md_callbacks import implemented_groups
from mlthon.infra.instruments import load_instruments
from tests import md

SIM = Exchange.Sim
IID = 9001  # tick 0.10, lot 0.001


def _snapshot(ts: int) -> list[m.Msg]:
    ex = SIM.value
    return [
        m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotStart, ts=ts),
        md.book(ex=ex, iid=IID, ts=ts, ch=[(0, 1, "100.0", "1"), (0, 2, "100.2", "1")]),
        m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotEnd, ts=ts),
    ]


def _data() -> list[m.Msg]:
    out = _snapshot(1)
    for i in range(2, 6):
        out.append(
            md.book(
                ex=SIM.value,
                iid=IID,
                ts=i * 1_000_000,
                ch=[(1, 1, "100.0", str(i)), (0, 2, "100.1", "2"), (2, 2, "100.1", "0")],
            )
        )
    return out


class Batched(Strategy):
    """Takes the book a message at a time; reads the book from inside the call."""

    def __init__(self) -> None:
        super().__init__("batched")
        self.batches: list[tuple[int, list[tuple[Any, ...]], Any]] = []
        self.levels: list[tuple[Any, ...]] = []

    def on_start(self, params: str) -> None:
        self.env.subscribe(SIM, IID, MDSub.PriceLevelBook)

    def on_book_update(self, exchange, instrument_id, changes, recv_ts) -> None:
        book = self.env.get_book(exchange, instrument_id)
        assert book is not None
        self.batches.append((recv_ts, list(changes), book.top(5)))


class Both(Batched):
    def on_modify_price_level(self, exchange, instrument_id, side, price, new_qty, recv_ts):
        self.levels.append(("modify", side, price, new_qty))
        # the per-level calls of a message come before its batch: the image and the earlier
        # messages' batches only
        assert len(self.batches) == recv_ts // 1_000_000 - 1


def _run(strat: Strategy, data: list[m.Msg], insts: list[Instrument] | None = None) -> Any:
    insts = insts or [i for i in load_instruments() if i.instrument_id == IID]
    return Backtest(strat, data=data, instruments=insts, name=strat.name).run()


def test_batched_callback_gets_each_message_once_with_its_changes():
    strat = Batched()
    assert implemented_groups(strat) == {"book"}
    _run(strat, _data())
    assert len(strat.batches) == 1 + 4  # the snapshot's image, then one per message
    ts, first, _ = strat.batches[0]
    assert first == [
        (BookAction.Add, Side.Buy, Decimal("100.0"), Decimal("1")),
        (BookAction.Add, Side.Sell, Decimal("100.2"), Decimal("1")),
    ]
    for k, (ts, changes, (bids, asks)) in enumerate(strat.batches[1:], 2):
        assert ts == k * 1_000_000
        assert changes == [
            (BookAction.Modify, Side.Buy, Decimal("100.0"), Decimal(k)),
            (BookAction.Add, Side.Sell, Decimal("100.1"), Decimal("2")),
            (BookAction.Delete, Side.Sell, Decimal("100.1"), Decimal("0")),
        ]
        assert all(isinstance(a, BookAction) for a, *_ in changes)
        # The book holds the whole message when the strategy hears of it.
        assert bids == [(Decimal("100.0"), Decimal(k))] and asks == [(Decimal("100.2"), 1)]


def test_batched_callback_follows_the_per_level_ones_and_costs_one_call_per_message():
    both = Both()
    assert implemented_groups(both) == {"book", "price_levels"}
    result = _run(both, _data())
    assert len(both.levels) == 4 and len(both.batches) == 5
    plain = _run(Strategy("bare"), _data())
    # the price-level group: the image's 2 adds and 3 changes in each of 4 messages; 5 batches;
    # the two statuses of the snapshot (the bare strategy subscribes to nothing)
    assert result.perf["callbacks"] - plain.perf["callbacks"] == (2 + 3 * 4) + 5 + 2


def test_a_strategy_without_it_is_never_called():
    class PerLevel(Strategy):
        def __init__(self) -> None:
            super().__init__("per_level")
            self.n = 0

        def on_start(self, params: str) -> None:
            self.env.subscribe(SIM, IID, MDSub.PriceLevelBook)

        def on_modify_price_level(self, *args: Any) -> None:
            self.n += 1

    strat = PerLevel()
    assert "book" not in implemented_groups(strat)
    called: list[Any] = []
    strat.on_book_update = lambda *a: called.append(a)  # type: ignore[method-assign]
    assert "book" in implemented_groups(strat)  # set on the instance: it is called
    _run(strat, _data())
    assert len(called) == 5 and strat.n == 4


L3 = Instrument(
    instrument_id=7701,
    name="L3TEST",
    exchange=SIM,
    base="L",
    quote="USD",
    kind=InstrumentKind.Linear,
    tick_size="0.5",
    lot_size="1",
)


def test_batched_callback_on_order_level_data_gets_the_totals_per_price():
    class L3Batched(Batched):
        def on_start(self, params: str) -> None:
            self.env.subscribe(SIM, L3.instrument_id, MDSub.PriceLevelBook)

    ex, iid = SIM.value, L3.instrument_id
    data: list[m.Msg] = [
        m.FeedStatus(ex=ex, iid=iid, status=FeedHandlerStatus.SnapshotStart, ts=1),
        md.levels(
            ex=ex,
            iid=iid,
            ts=1,
            ch=[(0, 1, 11, "100", "2"), (0, 1, 12, "100", "3"), (0, 2, 21, "101", "1")],
            inst=L3,
        ),
        m.FeedStatus(ex=ex, iid=iid, status=FeedHandlerStatus.SnapshotEnd, ts=1),
        # one message: order 12 leaves 100, order 13 joins at 99.5, order 21 grows
        md.levels(
            ex=ex,
            iid=iid,
            ts=2_000_000,
            ch=[(2, 1, 12, "100", "0"), (0, 1, 13, "99.5", "4"), (1, 2, 21, "101", "6")],
            inst=L3,
        ),
    ]
    strat = L3Batched()
    _run(strat, data, [L3])
    assert [changes for _, changes, _ in strat.batches] == [
        [
            (BookAction.Add, Side.Buy, Decimal("100"), Decimal("2")),
            (BookAction.Modify, Side.Buy, Decimal("100"), Decimal("5")),
            (BookAction.Add, Side.Sell, Decimal("101"), Decimal("1")),
        ],
        [
            (BookAction.Modify, Side.Buy, Decimal("100"), Decimal("2")),
            (BookAction.Add, Side.Buy, Decimal("99.5"), Decimal("4")),
            (BookAction.Modify, Side.Sell, Decimal("101"), Decimal("6")),
        ],
    ]
