"""An order-level book found invalid shows the strategy no levels until its next snapshot.

The shared Databento MBO recording (CME ESM4) with one live order made insane (a price out of
range): the feed engine invalidates the book (``BookInvalid``); the recording then carries a new
snapshot (``R`` and the snapshot's records, as Databento sends after a gap). Replayed in a
backtest, the strategy's ``get_book`` is empty from ``BookInvalid`` on (it used to keep the last
levels, the env's own order-level copy) and shows the new snapshot's levels after it.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.infra.instruments import load_instruments

pytestmark = pytest.mark.integration

MBO = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "data"
    / "nautilus_trader"
    / "databento_mbo_l3"
    / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.csv.gz"
)
CME = Exchange.Cme
INSTS = [i for i in load_instruments() if i.name == "ESM4"]
IID = INSTS[0].instrument_id


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    with gzip.open(MBO, "rt") as f:
        lines = f.read().splitlines()
    # A live add (one event of its own) with a price no instrument can have.
    idx = next(i for i, line in enumerate(lines) if ",A,B," in line and ",130," in line)
    cols = lines[idx].split(",")
    cols[7] = "1e999999"
    lines[idx] = ",".join(cols)
    # A fresh snapshot after the end: R, then the snapshot's orders (F_SNAPSHOT, F_LAST last).
    ts = int(lines[-1].split(",")[0]) + 1_000_000
    row = "{ts},{ts},160,1,5602,{a},{s},{p},{n},0,{oid},{f},0,0,ESM4"
    lines += [
        row.format(ts=ts, a="R", s="N", p="", n=0, oid=0, f=32),
        row.format(ts=ts, a="A", s="B", p="5213.000000000", n=4, oid=91, f=32),
        row.format(ts=ts, a="A", s="A", p="5215.500000000", n=6, oid=92, f=160),
    ]
    path = tmp_path / "esm4-broken.mbo.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


class BookReader(Strategy):
    """Reads its book at every status of its instrument."""

    def __init__(self) -> None:
        super().__init__("reader")
        self.seen: list[tuple[Any, ...]] = []

    def on_start(self, params: str) -> None:
        self.env.subscribe(CME, IID, MDSub.OrderBook)

    def on_feed_handler_status(self, exchange, status, detail) -> None:
        book = self.env.get_book(CME, IID)
        assert book is not None
        bb, ba = book.best_bid(), book.best_ask()
        bids, asks = book.top(3)
        self.seen.append(
            (
                status,
                book.valid,
                None if bb is None else str(bb[0]),
                None if ba is None else str(ba[0]),
                len(bids),
                len(asks),
            )
        )


def test_invalid_book_backtest_get_book_empty_from_book_invalid_to_next_snapshot(broken):
    strat = BookReader()
    Backtest(strat, data=[broken], instruments=INSTS, name="reader", feed_silence_s=0).run()
    book_statuses = [s for s in strat.seen if s[0] is not FeedHandlerStatus.SnapshotStart]
    assert book_statuses[0] == (FeedHandlerStatus.SnapshotEnd, True, "5214.00", "5214.25", 3, 3)
    assert book_statuses[1:] == [
        (FeedHandlerStatus.BookInvalid, False, None, None, 0, 0),
        (FeedHandlerStatus.SnapshotEnd, True, "5213.00", "5215.50", 1, 1),
    ]
