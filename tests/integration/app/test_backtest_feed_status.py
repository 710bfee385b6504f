"""A venue disconnection inside the data reaches a backtested strategy as it would live.

The replay turns a reconnect in a recording into a feed-wide ``FeedStatus(Disconnected)``; a feed
process publishes that on the venue's status topic and on each of its books' topics. A backtest
does the same: the strategy hears ``on_feed_handler_status(Disconnected)``, its books are empty and
invalid until the venue's next snapshot, and valid again after it.
"""

from __future__ import annotations

from typing import Any

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange
from mlthon.basics.mlt_enum import FeedHandlerStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.instruments import load_instruments
from tests import md

SIM = Exchange.Sim
IID = 9001
MS = 1_000_000


def _snapshot(ts: int, bid: str, ask: str) -> list[m.Msg]:
    ex = SIM.value
    return [
        m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotStart, ts=ts),
        md.book(ex=ex, iid=IID, ts=ts, ch=[(0, 1, bid, "1"), (0, 2, ask, "1")]),
        m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotEnd, ts=ts),
    ]


class Watcher(Strategy):
    def __init__(self) -> None:
        super().__init__("watcher")
        self.seen: list[tuple[Any, ...]] = []

    def on_start(self, params: str) -> None:
        self.env.subscribe(SIM, IID, MDSub.BBO)

    def _book(self) -> tuple[Any, ...]:
        book = self.env.get_book(SIM, IID)
        assert book is not None
        return (book.valid, book.best_bid())

    def on_feed_handler_status(self, exchange, status, detail):
        self.seen.append(("status", status, *self._book()))

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.seen.append(("bid", str(price)))


def test_a_disconnect_in_the_data_reaches_the_strategy():
    data = _snapshot(1 * MS, "100.0", "100.2")
    data.append(
        m.FeedStatus(
            ex=SIM.value,
            iid=0,
            status=FeedHandlerStatus.Disconnected,
            detail="reconnected",
            ts=5 * MS,
        )
    )
    data += _snapshot(9 * MS, "101.0", "101.2")
    strat = Watcher()
    insts = [i for i in load_instruments() if i.instrument_id == IID]
    Backtest(strat, data=data, instruments=insts, name="watcher").run()
    statuses = [s for s in strat.seen if s[0] == "status"]
    assert [s[1:3] for s in statuses[:2]] == [
        (FeedHandlerStatus.SnapshotStart, False),
        (FeedHandlerStatus.SnapshotEnd, True),
    ]
    # The disconnection: heard once, with the book emptied and invalid.
    assert ("status", FeedHandlerStatus.Disconnected, False, None) in statuses
    after = statuses[statuses.index(("status", FeedHandlerStatus.Disconnected, False, None)) + 1 :]
    assert [s[1] for s in after[:2]] == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
    ]
    assert after[1][2] is True  # valid again after the venue's next snapshot
    assert [s for s in strat.seen if s[0] == "bid"] == [
        ("bid", "100.00"),
        ("bid", "101.00"),
    ]  # tick 0.10
