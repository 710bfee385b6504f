"""A CME pre-open in Databento MBO: the order-level book crosses, is kept, uncrosses at the open.

In the pre-open CME accepts orders without matching them, so bids above asks rest side by side;
at the open the auction matches them (``T`` records, then the cancels of what it matched) and
continuous trading starts. The shared recordings hold no pre-open (their books never cross after
an ``F_LAST``), so the recording here is written in their format, with their instrument (ESM4):
a snapshot, a bid above the best ask (the book crosses), more pre-open orders, the open.

Through the production reader, the feed engine, a backtest's env and simulated exchange:

* the feed reports ``BookCrossed`` once and ``Resumed`` at the open, never ``BookInvalid``, and its
  book follows every record;
* the strategy hears both, with a valid book that shows the crossing;
* the simulated exchange does not trade continuously while the book is crossed: a limit order
  rests instead of taking the crossed asks, an IOC is cancelled; at the open the auction's trade
  fills the resting order (the existing rule for trades printing through a resting price).
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.basics.mlt_enum import TIF, Side
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.replay import replay_file
from mlthon.infra.bus.messages import FeedStatus, LevelUpdate, TradeUpdate
from mlthon.infra.instruments import load_instruments

pytestmark = pytest.mark.integration

SHARED_MBO = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "data"
    / "nautilus_trader"
    / "databento_mbo_l3"
    / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.csv.gz"
)
ESM4 = 14001
CME = Exchange.Cme
INSTS = [i for i in load_instruments() if i.instrument_id == ESM4]
S = 1_000_000_000
T0 = 1_714_943_700 * S  # 2024-05-05 21:15 UTC: Sunday's pre-open, 45 minutes before the open
OPEN = T0 + 10 * S
PREOPEN = range(60)
CROSSED = FeedHandlerStatus.BookCrossed
RESUMED = FeedHandlerStatus.Resumed
HEADER = (
    "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,price,size,channel_id,"
    "order_id,flags,ts_in_delta,sequence,symbol"
)


def _row(ts: int, action: str, side: str, price: str, size: int, oid: int, flags: int) -> str:
    px = f"{Decimal(price):.9f}" if price else ""
    return f"{ts},{ts - 1000},160,1,5602,{action},{side},{px},{size},0,{oid},{flags},0,0,ESM4"


def _preopen_rows() -> list[str]:
    snap = T0 - 60 * S
    return [
        # The book as the pre-open starts (R, then the snapshot's adds, F_SNAPSHOT).
        _row(snap, "R", "N", "", 0, 0, 40),
        _row(snap, "A", "B", "5150.00", 5, 101, 40),
        _row(snap, "A", "B", "5149.75", 3, 102, 40),
        _row(snap, "A", "A", "5150.50", 4, 201, 40),
        _row(snap, "A", "A", "5150.75", 2, 202, 168),
        # Pre-open: a bid above the best ask. Nothing trades; the book is crossed.
        _row(T0, "A", "B", "5151.00", 2, 103, 128),
        _row(T0 + 2 * S, "A", "A", "5150.25", 1, 203, 128),
        _row(T0 + 4 * S, "M", "B", "5151.00", 3, 103, 128),
        _row(T0 + 6 * S, "A", "B", "5149.50", 4, 104, 128),
        # A busy pre-open: more orders than the engine used to tolerate a crossing for (50).
        *(
            _row(T0 + 7 * S + i * 10_000_000, "A", "B", "5149.00", 1, 1000 + i, 128)
            for i in PREOPEN
        ),
        # The open: the auction matches 3 lots at 5150.50, then removes what it matched.
        _row(OPEN, "T", "N", "5150.50", 3, 0, 0),
        _row(OPEN, "F", "B", "5151.00", 3, 103, 0),
        _row(OPEN, "C", "B", "5151.00", 3, 103, 0),
        _row(OPEN, "C", "A", "5150.25", 1, 203, 0),
        _row(OPEN, "C", "A", "5150.50", 2, 201, 128),
        # Continuous trading.
        _row(OPEN + S, "A", "A", "5150.50", 1, 204, 128),
        _row(OPEN + 2 * S, "C", "B", "5149.50", 4, 104, 128),
    ]


@pytest.fixture
def preopen(tmp_path: Path) -> Path:
    path = tmp_path / "glbx-mdp3-esm4-preopen.mbo.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(HEADER + "\n" + "\n".join(_preopen_rows()) + "\n")
    return path


def _book_statuses(msgs: list[Any]) -> list[FeedHandlerStatus]:
    return [m.status for m in msgs if isinstance(m, FeedStatus) and m.iid == ESM4]


@pytest.mark.parametrize("run", ["first", "again"])
def test_l3_crossed_preopen_replay_reports_crossed_then_resumed_never_invalid(preopen, run):
    # "again": a second replay of the same file, which may read what the first one decoded (the
    # replay cache), must know the venue's events as well.
    if run == "again":
        list(replay_file(preopen, INSTS))
    r = replay_file(preopen, INSTS)
    msgs = list(r)
    assert _book_statuses(msgs) == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
        CROSSED,
        RESUMED,
    ]
    crossed_at = next(m for m in msgs if isinstance(m, FeedStatus) and m.status is CROSSED)
    resumed_at = next(m for m in msgs if isinstance(m, FeedStatus) and m.status is RESUMED)
    assert (crossed_at.ts, resumed_at.ts) == (T0, OPEN)
    assert "crossed" in crossed_at.detail and "5151" in crossed_at.detail
    # Every pre-open record was applied and published while the book was crossed.
    during = [
        m for m in msgs if isinstance(m, LevelUpdate) and crossed_at.ts <= m.ts < resumed_at.ts
    ]
    assert len(during) == 4 + len(PREOPEN)
    trades = [t for m in msgs if isinstance(m, TradeUpdate) for t in m.tr]
    assert [(t[1], t[2]) for t in trades] == [(5150_50 // 25, 3)]  # 5150.50 in 0.25 ticks
    mirror = BookMirror()
    for m in msgs:
        mirror.apply(m)
    assert mirror.violations == []
    book = mirror.level_book(ESM4).book
    # After the open: bids 5150.00 x5, 5149.75 x3, 5149.00 x60; asks 5150.50 x2+1, 5150.75 x2.
    assert book.depth(1) == [(20600, 5), (20599, 3), (20596, 60)]
    assert book.depth(2) == [(20602, 3), (20603, 2)]
    assert (r.stats.crossed, r.stats.crossed_kept, r.stats.syncs) == (0, 1, 1)


def test_l3_crossed_real_databento_recording_never_reported_crossed():
    # The shared CME recording (continuous trading): matches arrive as several records, but the
    # book is never crossed after an event's last record.
    r = replay_file(SHARED_MBO, [i for i in load_instruments() if i.name == "ESM4"])
    statuses = [m.status for m in r if isinstance(m, FeedStatus) and m.iid]
    assert statuses == [FeedHandlerStatus.SnapshotStart, FeedHandlerStatus.SnapshotEnd]
    assert (r.stats.crossed, r.stats.crossed_kept) == (0, 0)


class PreopenTrader(Strategy):
    """Records the book's statuses with the book it sees, and trades into the crossed book."""

    def __init__(self) -> None:
        super().__init__("preopen")
        self.seen: list[tuple[Any, ...]] = []
        self.fills: list[tuple[str, Decimal, Decimal, int]] = []
        self.cancels: list[tuple[str, str, int]] = []
        self.sent: dict[str, str] = {}

    def on_start(self, params: str) -> None:
        self.env.subscribe(CME, ESM4, MDSub.OrderBook)

    def on_feed_handler_status(self, exchange, status, detail) -> None:
        book = self.env.get_book(CME, ESM4)
        assert book is not None
        bb, ba = book.best_bid(), book.best_ask()
        self.seen.append(
            (
                status,
                book.valid,
                None if bb is None else bb[0].value,
                None if ba is None else ba[0].value,
            )
        )
        if status is CROSSED:
            # A buy at 5150.75 would take the crossed asks at once in continuous trading.
            buy = self.env.send_new_order(None, CME, ESM4, Side.Buy, "5150.75", "1")
            # An IOC sell below the best bid would hit the crossed bids.
            ioc = self.env.send_new_order(
                None, CME, ESM4, Side.Sell, "5149.75", "1", time_in_force=TIF.IOC
            )
            self.sent = {str(buy): "buy", str(ioc): "ioc"}

    def on_order_execution(
        self, exchange, client_id, side, price, fill_qty, leaves_qty, exec_ts, recv_ts
    ) -> None:
        self.fills.append((self.sent[client_id], price.value, fill_qty.value, exec_ts))

    def on_order_cancelled(
        self, exchange, client_id, unsolicited, engine_ts, recv_ts, cancel_code, cancel_reason
    ) -> None:
        self.cancels.append((self.sent[client_id], cancel_reason, engine_ts))


def test_l3_crossed_preopen_backtest_strategy_told_and_sim_does_not_match_crossed_book(preopen):
    strat = PreopenTrader()
    Backtest(
        strat,
        data=[preopen],
        instruments=INSTS,
        name="preopen",
        feed_silence_s=0,
        capital="1000000",
    ).run()
    # Told of the crossing with the (valid, crossed) book, and of the open with the uncrossed one.
    book_seen = [s for s in strat.seen if s[0] in (CROSSED, RESUMED, FeedHandlerStatus.BookInvalid)]
    assert book_seen == [
        (CROSSED, True, Decimal("5151.00"), Decimal("5150.50")),
        (RESUMED, True, Decimal("5150.00"), Decimal("5150.50")),
    ]
    # While crossed nothing matched: the IOC was cancelled, the buy rested until the open, where
    # the auction's trade at 5150.50 printed through its price and filled it.
    ((what, reason, cancelled_ts),) = strat.cancels
    assert what == "ioc" and "crossed" in reason and cancelled_ts < OPEN
    assert strat.fills == [("buy", Decimal("5150.75"), Decimal("1"), OPEN)]
