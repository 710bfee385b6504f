"""Replay of Tardis Machine normalized JSON and Databento MBO CSV through the production reader,
the feed engine and a backtest, checked against books computed here from the raw records."""

from __future__ import annotations

import copy
import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.basics.book import ASK, BID
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay import replay_file
from mlthon.infra.bus.messages import FeedStatus, FundingUpdate, LevelUpdate, Msg, TradeUpdate
from mlthon.infra.instruments import load_instruments
from tests import md

NT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "nautilus_trader"
MACHINE = NT / "tardis_machine_json"
MBO = NT / "databento_mbo_l3" / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.csv.gz"
HIST = NT / "binance_futures" / "historical_depth"

pytestmark = pytest.mark.integration

INSTRUMENTS = load_instruments()
ESM4 = 14001
XBTUSD = 5001
BTC_PERP = 4001
BY_IID = {i.instrument_id: i for i in INSTRUMENTS}


def _insts(*iids: int):
    return [i for i in INSTRUMENTS if i.instrument_id in iids]


# --- Databento MBO --------------------------------------------------------------------------------
def _mbo_rows() -> list[tuple[int, list[str]]]:
    with gzip.open(MBO, "rt") as f:
        lines = f.read().splitlines()
    return [(n, line.split(",")) for n, line in enumerate(lines[1:], 2)]


def _mbo_reference() -> list[tuple[int, tuple[Any, ...]]]:
    """(line of each F_LAST record, book summary after it), from the raw records with dicts."""
    orders: dict[int, tuple[str, Decimal, int]] = {}
    out = []
    for line, r in _mbo_rows():
        action, side, oid, size = r[5], r[6], int(r[10]), int(r[8])
        if action == "R":
            orders.clear()
        elif action == "A" or action == "M":
            orders[oid] = (side, Decimal(r[7]), size)
        elif action == "C" and oid in orders:
            s, p, q = orders[oid]
            if q - size > 0:
                orders[oid] = (s, p, q - size)
            else:
                del orders[oid]
        if int(r[11]) & 128:
            out.append((line, _summary(orders)))
    return out


def _summary(orders: dict[int, tuple[str, Decimal, int]]) -> tuple[Any, ...]:
    levels: dict[str, dict[Decimal, int]] = {"B": {}, "A": {}}
    for s, p, q in orders.values():
        levels[s][p] = levels[s].get(p, 0) + q
    bid = max(levels["B"]) if levels["B"] else None
    ask = min(levels["A"]) if levels["A"] else None
    return (
        bid,
        levels["B"].get(bid) if bid is not None else None,
        ask,
        levels["A"].get(ask) if ask is not None else None,
        len(levels["B"]),
        len(levels["A"]),
        len(orders),
    )


def test_databento_book_after_every_f_last_equals_raw_records():
    reference = _mbo_reference()
    assert len(reference) == 185  # the snapshot, then 184 live events
    engine = FeedEngine(_insts(ESM4), lambda m: None)
    events = iter(read_source(MBO, engine.bad_data))
    pending = next(events, None)
    for f_last_line, want in reference:
        # Every event of the venue message ending at this record (F records make none).
        while pending is not None and pending.line <= f_last_line:
            engine.on_source_event(pending)
            pending = next(events, None)
        book = engine.book(ESM4)
        assert book is not None
        levels = book.book  # the order-level book's totals per price
        bb = md.decimal_best(levels, BY_IID[ESM4], BID)
        ba = md.decimal_best(levels, BY_IID[ESM4], ASK)
        got = (
            None if bb is None else bb[0],
            None if bb is None else int(bb[1]),
            None if ba is None else ba[0],
            None if ba is None else int(ba[1]),
            levels.count(BID),
            levels.count(ASK),
            len(book),
        )
        assert got == want, f"after line {f_last_line}"
        assert engine.is_live(ESM4)
    assert pending is None
    assert engine.stats.bad == 0 and engine.stats.crossed == 0
    assert engine.stats.syncs == 1


def test_databento_replay_trades_and_valid_mirror():
    r = replay_file(MBO, INSTRUMENTS)
    mirror = BookMirror()
    msgs = list(r)
    for m in msgs:
        mirror.apply(m)
    assert mirror.violations == []
    trades = [t for m in msgs if isinstance(m, TradeUpdate) for t in m.tr]
    raw_trades = [r_ for _, r_ in _mbo_rows() if r_[5] == "T"]
    es = BY_IID[ESM4]
    assert [(t[0], t[1] * es.tick_size, t[2] * es.lot_size, t[3]) for t in trades] == [
        (1 if r_[6] == "B" else 2, Decimal("5214.25"), Decimal(r_[8]), int(r_[1]))
        for r_ in raw_trades
    ]
    assert sum(isinstance(m, LevelUpdate) for m in msgs) > 100
    assert r.stats.bad == 0 and r.stats.unknown_symbols == set()


def test_databento_malformed_record_reported_and_rest_kept(tmp_path):
    with gzip.open(MBO, "rt") as f:
        lines = f.read().splitlines()
    # A live add made unparsable: the record is reported, every other one is kept.
    idx = next(i for i, line in enumerate(lines) if ",A,B," in line and ",130," in line)
    cols = lines[idx].split(",")
    cols[7] = "not-a-price"
    broken = list(lines)
    broken[idx] = ",".join(cols)
    p = tmp_path / "mbo.csv"
    p.write_text("\n".join(broken) + "\n")
    reports: list[tuple[str, int]] = []
    evs = list(read_source(p, lambda why, src, line: reports.append((why, line))))
    assert len(reports) == 1 and reports[0][1] == idx + 1 and "price" in reports[0][0]
    good = list(read_source(MBO, lambda *a: None))
    assert len(evs) == len(good) - 1


# --- Tardis Machine normalized JSON ---------------------------------------------------------------
def _sample(name: str) -> dict[str, Any]:
    with (MACHINE / name).open() as f:
        d: dict[str, Any] = json.load(f)
    return d


def _change(
    exchange: str, symbol: str, ts: str, snap: bool, bids: list[Any], asks: list[Any]
) -> dict[str, Any]:
    return {
        "type": "book_change",
        "symbol": symbol,
        "exchange": exchange,
        "isSnapshot": snap,
        "bids": [{"price": p, "amount": a} for p, a in bids],
        "asks": [{"price": p, "amount": a} for p, a in asks],
        "timestamp": ts,
        "localTimestamp": ts,
    }


def _machine_stream() -> list[dict[str, Any] | str]:
    """The real samples in receive-time order, with derived book_change messages around them
    (a two-part snapshot before the real change, a delete, a Deribit book across the real
    disconnect) and two malformed lines."""
    snap = _sample("book_snapshot.json")
    bids = [(lv["price"], lv["amount"]) for lv in snap["bids"]]
    asks = [(lv["price"], lv["amount"]) for lv in snap["asks"]]
    bad_price = _change("bitmex", "XBTUSD", "2019-10-23T11:29:55.000Z", False, [], [])
    bad_price["asks"] = [{"price": "abc", "amount": 1}]
    return [
        _sample("trade.json"),
        _change("bitmex", "XBTUSD", "2019-10-23T11:29:52.000Z", False, [(7600, 1)], []),
        _change("bitmex", "XBTUSD", "2019-10-23T11:29:53.000Z", True, bids, []),
        _change("bitmex", "XBTUSD", "2019-10-23T11:29:53.000Z", True, [], asks),
        _sample("book_change.json"),
        _change("bitmex", "XBTUSD", "2019-10-23T11:29:54.000Z", False, [(7633, 0)], []),
        "{not json",
        bad_price,
        _change("bitmex", "XBTUSD", "2019-10-23T11:29:56.000Z", False, [], [(7634, 1000)]),
        _change("deribit", "BTC-PERPETUAL", "2019-10-23T11:34:29.000Z", True, [(7987, 10)], []),
        _sample("derivative_ticker.json"),
        _sample("disconnect.json"),
        _change("deribit", "BTC-PERPETUAL", "2019-10-23T11:34:30.000Z", False, [(7986, 3)], []),
        _change("deribit", "BTC-PERPETUAL", "2019-10-23T11:34:31.000Z", True, [(7988, 40)], []),
        _sample("bar.json"),
        _sample("bar.json"),
        snap,
    ]


def _write_ndjson(path: Path) -> list[dict[str, Any] | str]:
    stream = _machine_stream()
    path.write_text("\n".join(m if isinstance(m, str) else json.dumps(m) for m in stream) + "\n")
    return stream


def _reference_bitmex(stream: list[dict[str, Any] | str]) -> dict[int, tuple[Any, ...] | None]:
    """XBTUSD book summary after each (1-based) line, from the raw messages with dicts; None
    while the book has no snapshot."""
    book: dict[str, dict[Decimal, Decimal]] | None = None
    prev_snap = False
    out: dict[int, tuple[Any, ...] | None] = {}
    for line, m in enumerate(stream, 1):
        if isinstance(m, str) or m.get("symbol") != "XBTUSD":
            continue
        if any(isinstance(lv["price"], str) for lv in m.get("asks", [])):
            continue  # the malformed one
        if m["type"] == "book_snapshot":
            book = {"bids": {}, "asks": {}}
        elif m["type"] == "book_change":
            if m["isSnapshot"] and not prev_snap:
                book = {"bids": {}, "asks": {}}
            prev_snap = m["isSnapshot"]
            if book is None:
                continue
        else:
            continue
        for side in ("bids", "asks"):
            for lv in m[side]:
                p, a = Decimal(str(lv["price"])), Decimal(str(lv["amount"]))
                if a:
                    book[side][p] = a
                else:
                    book[side].pop(p, None)
        b, a_ = book["bids"], book["asks"]
        out[line] = (
            max(b) if b else None,
            min(a_) if a_ else None,
            b[max(b)] if b else None,
            len(b),
            len(a_),
        )
    return out


def test_machine_ndjson_books_funding_disconnect_and_bad_lines(tmp_path):
    path = tmp_path / "machine.ndjson"
    stream = _write_ndjson(path)
    reference = _reference_bitmex(stream)
    out: list[Msg] = []
    engine = FeedEngine(_insts(XBTUSD, BTC_PERP), out.append)
    reports: list[tuple[str, int]] = []
    for se in read_source(path, lambda why, src, line: reports.append((why, line))):
        engine.on_source_event(se)
        if se.line in reference and se.exchange is Exchange.Bitmex:
            want = reference[se.line]
            book = engine.price_book(Exchange.Bitmex, XBTUSD)
            assert book is not None
            if want is None:
                continue
            bb = md.decimal_best(book, BY_IID[XBTUSD], BID)
            ba = md.decimal_best(book, BY_IID[XBTUSD], ASK)
            got = (
                None if bb is None else bb[0],
                None if ba is None else ba[0],
                None if bb is None else bb[1],
                book.count(BID),
                book.count(ASK),
            )
            assert got == want, f"line {se.line}"
    # Malformed lines are reported with their line; trade_bar once; the rest is kept.
    lines = [ln for _, ln in reports]
    assert 7 in lines and 8 in lines
    assert sum("trade_bar" in why for why, _ in reports) == 1
    assert len(reports) == 3
    # The line-2 change came before any snapshot: skipped, not an error.
    assert engine.stats.dropped_unsynced == 2  # it and the Deribit change after the disconnect
    trades = [m for m in out if isinstance(m, TradeUpdate)]
    assert [t.tr[0][1:3] for t in trades] == [(md.ticks(XBTUSD, "7996"), md.lots(XBTUSD, "50"))]
    (fund,) = [m for m in out if isinstance(m, FundingUpdate)]
    assert (fund.iid, fund.rate, fund.mark) == (BTC_PERP, "-0.00001568", "7987.56")
    deribit = [
        (m.iid, m.status)
        for m in out
        if isinstance(m, FeedStatus) and m.ex == Exchange.Deribit.value
    ]
    assert deribit == [
        (BTC_PERP, FeedHandlerStatus.SnapshotStart),
        (BTC_PERP, FeedHandlerStatus.SnapshotEnd),
        (0, FeedHandlerStatus.Disconnected),
        (BTC_PERP, FeedHandlerStatus.SnapshotStart),
        (BTC_PERP, FeedHandlerStatus.SnapshotEnd),
    ]
    perp = engine.price_book(Exchange.Deribit, BTC_PERP)
    assert perp is not None
    assert md.decimal_best(perp, BY_IID[BTC_PERP], BID) == (Decimal("7988"), Decimal("40"))
    assert perp.count(BID) == 1  # the book was cleared by the disconnect, not merged
    final = engine.price_book(Exchange.Bitmex, XBTUSD)
    assert final is not None
    assert md.decimal_top(final, BY_IID[XBTUSD], 5) == (
        [(Decimal("7633.5"), Decimal("1906067")), (Decimal("7633"), Decimal("65319"))],
        [(Decimal("7634"), Decimal("1467849")), (Decimal("7634.5"), Decimal("67939"))],
    )


def test_machine_json_array_document_same_events_as_ndjson(tmp_path):
    stream = [m for m in _machine_stream() if not isinstance(m, str)]
    nd = tmp_path / "m.ndjson"
    nd.write_text("\n".join(json.dumps(m) for m in stream) + "\n")
    arr = tmp_path / "m.json"
    arr.write_text(json.dumps(stream, indent=2))
    # A pretty-printed single object too (the samples' layout).
    one = tmp_path / "one.json"
    one.write_text(json.dumps(copy.deepcopy(stream[0]), indent=2))

    def sig(path: Path) -> list[tuple[Any, ...]]:
        out = []
        for se in read_source(path, lambda *a: None):
            ev = se.event
            out.append((se.ts, se.exchange, type(ev).__name__, se.line))
        return out

    a, b = sig(nd), sig(arr)
    assert [x[:3] for x in a] == [x[:3] for x in b]
    assert len(a) == len(stream) - 3  # bad price, two trade_bars
    assert [x[2] for x in sig(one)] == ["Trades"]


# --- backtests ------------------------------------------------------------------------------------
class _BookWatcher(Strategy):
    """Records the book callbacks of the instruments it is given."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__("watch")
        self.subs: list[tuple[Exchange, int]] = params["subs"]
        self.bids: list[tuple[Exchange, int, Decimal]] = []
        self.asks: list[tuple[Exchange, int, Decimal]] = []
        self.levels = 0
        self.trades: list[tuple[Exchange, Decimal]] = []
        self.funding: list[tuple[Exchange, int, float]] = []
        self.statuses: list[tuple[Exchange, FeedHandlerStatus]] = []

    def on_start(self, params: str) -> None:
        for ex, iid in self.subs:
            for sub in (MDSub.PriceLevelBook, MDSub.BBO, MDSub.PublicTrades, MDSub.Funding):
                self.env.subscribe(ex, iid, sub)

    def on_feed_handler_status(self, exchange, status, detail) -> None:
        self.statuses.append((exchange, status))

    def on_add_price_level(self, exchange, instrument_id, side, price, qty, recv_ts) -> None:
        self.levels += 1

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        self.bids.append((exchange, instrument_id, price.value))

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        self.asks.append((exchange, instrument_id, price.value))

    def on_public_trade(self, exchange, instrument_id, side, price, qty, exec_ts, recv_ts):
        self.trades.append((exchange, price.value))

    def on_funding_info(self, exchange, instrument_id, funding_rate, next_funding_ts) -> None:
        self.funding.append((exchange, instrument_id, funding_rate))


def test_backtest_strategy_gets_book_callbacks_from_databento():
    strat = _BookWatcher({"subs": [(Exchange.Cme, ESM4)]})
    Backtest(strat, data=[MBO], instruments=_insts(ESM4), name="watch").run()
    final = _mbo_reference()[-1][1]
    assert strat.levels > 100
    assert strat.bids and strat.asks
    assert strat.bids[-1] == (Exchange.Cme, ESM4, final[0])
    assert strat.asks[-1] == (Exchange.Cme, ESM4, final[2])
    assert [p for _, p in strat.trades] == [Decimal("5214.25")] * 5


def test_backtest_strategy_gets_book_callbacks_from_tardis_machine(tmp_path):
    path = tmp_path / "machine.ndjson"
    _write_ndjson(path)
    strat = _BookWatcher({"subs": [(Exchange.Bitmex, XBTUSD), (Exchange.Deribit, BTC_PERP)]})
    Backtest(
        strat,
        data=[path],
        instruments=_insts(XBTUSD, BTC_PERP),
        name="watch",
        simulate_exchange=False,
        feed_silence_s=0,  # the hand-made sample has holes of days between its messages
    ).run()
    bitmex_bids = [p for ex, _, p in strat.bids if ex is Exchange.Bitmex]
    assert bitmex_bids and bitmex_bids[-1] == Decimal("7633.5")
    assert [p for ex, _, p in strat.asks if ex is Exchange.Bitmex][-1] == Decimal("7634")
    assert strat.funding == [(Exchange.Deribit, BTC_PERP, pytest.approx(-0.00001568))]
    # The disconnect voids the Deribit book (the strategy hears it, as it would live), and the
    # strategy sees the book rebuilt from the next snapshot.
    assert [st for ex, st in strat.statuses if ex is Exchange.Deribit] == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
        FeedHandlerStatus.Disconnected,
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
    ]
    assert [p for ex, _, p in strat.bids if ex is Exchange.Deribit] == [
        Decimal("7987"),
        Decimal("7988"),
    ]


# --- Binance bulk depth fragments -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("files", "words"),
    [
        (["btcusdt-depth-snap.csv"], "no depth update after it"),
        (["btcusdt-depth-update.csv"], "no snapshot to start from"),
        (["btcusdt-depth-snap.csv", "btcusdt-depth-update.csv"], "older than the first"),
    ],
)
def test_binance_bulk_depth_fragments_say_why_there_is_no_book(files, words, caplog):
    from mlthon.feeds.replay import replay_files

    r = replay_files([HIST / f for f in files], _insts(1001))
    with caplog.at_level("WARNING"):
        assert list(r) == []
    reasons = r.engine.waiting_reasons()
    assert len(reasons) == 1 and "BTCUSDT" in reasons[0] and words in reasons[0]
    assert any(words in rec.getMessage() for rec in caplog.records)
