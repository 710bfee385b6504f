"""The book a strategy reads in a backtest.

A backtest over recorded files lets the env read the replay engine's own price-level books
instead of keeping copies (``StratEnv.share_feed_books``). What the strategy reads must not depend
on that: the same run over the same messages handed over as objects (the env then keeps its own
copy) must read the same books at every BBO callback and on timers between messages (a timer
due before the next venue message must not see that message), and the books must be valid and
uncrossed.
"""

from __future__ import annotations

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.feeds.replay import replay_files
from mlthon.infra.instruments import load_instruments

BTC = 1001


class BookReader(Strategy):
    """Reads the env's book at every best-level change, every feed status and on a timer."""

    def __init__(self) -> None:
        super().__init__("reader")
        self.reads: list[tuple[str, object]] = []
        self.crossed = 0

    def on_start(self, params: str) -> None:
        self.env.subscribe(Exchange.BinanceUsdm, BTC, MDSub.BBO)
        self.env.subscribe(Exchange.BinanceUsdm, BTC, MDSub.PriceLevelBook)
        self.env.setup_timer(50, self.on_timer)

    def on_timer(self) -> bool:
        # Between venue messages: the book of the last message delivered, never the next one's.
        self._read("timer")
        return True

    def _read(self, why: str) -> None:
        book = self.env.get_book(Exchange.BinanceUsdm, BTC)
        assert book is not None
        bids, asks = book.top(5)
        if bids and asks and bids[0][0] >= asks[0][0]:
            self.crossed += 1
        self.reads.append((why, (book.valid, bids, asks)))

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self._read(f"bid {price} {qty}")

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self._read(f"ask {price} {qty}")

    def on_feed_handler_status(self, exchange, status, detail):
        if status is not FeedHandlerStatus.SnapshotStart:
            self._read(status.name)


def _run(data: object) -> BookReader:
    strat = BookReader()
    insts = [i for i in load_instruments() if i.instrument_id == BTC]
    Backtest(strat, data=data, instruments=insts, name="reader", simulate_exchange=False).run()
    return strat


def test_a_backtest_reads_the_same_books_whether_or_not_it_shares_the_feeds(shared_data):
    capture = shared_data / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
    insts = [i for i in load_instruments() if i.instrument_id == BTC]
    shared = _run([capture])  # files: the env reads the replay engine's books
    own = _run(list(replay_files([capture], insts)))  # objects: the env keeps its own copy
    assert len(shared.reads) > 1_000
    assert sum(why == "timer" for why, _ in shared.reads) > 1_000
    assert shared.reads == own.reads
    assert shared.crossed == own.crossed == 0
    # Every best-level callback agrees with the book read at that moment.
    for why, (valid, bids, asks) in shared.reads:
        if why.startswith("bid "):
            assert valid and why == f"bid {bids[0][0]} {bids[0][1]}"
        elif why.startswith("ask "):
            assert valid and why == f"ask {asks[0][0]} {asks[0][1]}"
