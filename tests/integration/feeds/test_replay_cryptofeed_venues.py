"""Replay of the cryptofeed BitMEX, Deribit and Coinbase recordings through the production readers.

Every check compares with a book or a trade list computed here, independently, from the raw JSON of
the same file (``json`` with ``parse_float=Decimal``, plain dicts).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics.book import ASK, BID
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay import replay_file
from mlthon.infra.bus.messages import FeedStatus, LevelUpdate, TradeUpdate
from mlthon.infra.instruments import load_instruments
from tests import md

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
CF = DATA / "cryptofeed" / "sample_data"
BITMEX = CF / "BITMEX.ws.1.0"
DERIBIT = CF / "DERIBIT.ws.1.0"
COINBASE = CF / "COINBASE.ws.28.0"

pytestmark = pytest.mark.integration

INSTRUMENTS = load_instruments()
IID = {(i.exchange, i.name): i.instrument_id for i in INSTRUMENTS}
BY_IID = {i.instrument_id: i for i in INSTRUMENTS}
RECV_RE = re.compile(r"^(\d+(?:\.\d+)?): (.*)$")

Book = dict[int, dict[Decimal, Decimal]]


def _received(path: Path) -> list[tuple[int, dict]]:
    """(line number, message) of every received WebSocket message, decoded independently."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = RECV_RE.match(line)
        if m is not None:
            out.append((n, json.loads(m.group(2), parse_float=Decimal)))
    return out


def _run(path: Path):
    mirror = BookMirror()
    r = replay_file(path, INSTRUMENTS)
    msgs = list(r)
    for m in msgs:
        mirror.apply(m)
    return mirror, msgs, r


def _levels(book, iid: int) -> Book:
    """A price-level book (ticks and lots) as Decimals of instrument ``iid``."""
    inst = BY_IID[iid]
    return {BID: md.decimal_levels(book, inst, BID), ASK: md.decimal_levels(book, inst, ASK)}


def _assert_same_book(book, iid: int, ref: Book) -> None:
    assert _levels(book, iid) == ref
    assert book.count(BID) == len(ref[BID])
    assert book.count(ASK) == len(ref[ASK])
    if ref[BID]:
        assert md.decimal_best(book, BY_IID[iid], BID)[0] == max(ref[BID])
    if ref[ASK]:
        assert md.decimal_best(book, BY_IID[iid], ASK)[0] == min(ref[ASK])


# --- BitMEX orderBookL2 ---------------------------------------------------------------------------
def _bitmex_reference(msgs: list[tuple[int, dict]]):
    """Per symbol: level id -> (side, price, size), after the partial and after the last row."""
    levels: dict[str, dict[int, tuple[int, Decimal, Decimal]]] = {}
    after_partial: dict[str, dict[int, tuple[int, Decimal, Decimal]]] = {}
    priceless_updates = 0
    side_of = {"Buy": BID, "Sell": ASK}
    for _, m in msgs:
        if m.get("table") != "orderBookL2":
            continue
        if m["action"] == "partial":
            sym = m["filter"]["symbol"]
            levels[sym] = {
                r["id"]: (side_of[r["side"]], r["price"], Decimal(r["size"])) for r in m["data"]
            }
            after_partial[sym] = dict(levels[sym])
            continue
        for r in m["data"]:
            book = levels.get(r["symbol"])
            if book is None:
                continue
            if m["action"] == "insert":
                book[r["id"]] = (side_of[r["side"]], r["price"], Decimal(r["size"]))
            elif m["action"] == "update":
                side, price, _ = book[r["id"]]
                priceless_updates += "price" not in r
                book[r["id"]] = (side, r.get("price", price), Decimal(r["size"]))
            else:
                del book[r["id"]]
    return after_partial, levels, priceless_updates


def _assert_same_level_book(
    book, iid: int, levels: dict[int, tuple[int, Decimal, Decimal]]
) -> None:
    """A level-keyed book aggregated per price against the reference levels."""
    ref = _aggregate(levels)
    assert _levels(book.book, iid) == ref
    assert (book.book.count(BID), book.book.count(ASK)) == (len(ref[BID]), len(ref[ASK]))
    assert md.decimal_best(book.book, BY_IID[iid], BID)[0] == max(ref[BID])
    assert md.decimal_best(book.book, BY_IID[iid], ASK)[0] == min(ref[ASK])
    assert not book.crossed


def _aggregate(levels: dict[int, tuple[int, Decimal, Decimal]]) -> Book:
    out: Book = {BID: defaultdict(Decimal), ASK: defaultdict(Decimal)}
    for side, price, size in levels.values():
        out[side][price] += size
    return {side: dict(v) for side, v in out.items()}


def _first_images(msgs: list) -> dict[int, Book]:  # type: ignore[type-arg]
    """Each instrument's first published book message, as price -> size per side."""
    images: dict[int, Book] = {}
    for m in msgs:
        if hasattr(m, "ch") and m.iid not in images:
            inst = BY_IID[m.iid]
            images[m.iid] = {BID: {}, ASK: {}}
            for _act, side, t, n in m.ch:
                images[m.iid][side][t * inst.tick_size] = n * inst.lot_size
    return images


def test_bitmex_orderbookl2_replay_matches_level_id_reference():
    after_partial, final, priceless = _bitmex_reference(_received(BITMEX))
    assert len(final) == 10
    assert priceless > 100  # the recording exercises updates resolved by id
    mirror, msgs, r = _run(BITMEX)
    assert mirror.violations == []
    assert (r.stats.bad, r.stats.gaps, r.stats.crossed, r.stats.absent_deletes) == (0, 0, 0, 0)
    assert r.stats.syncs == 10
    images = {}
    for m in msgs:
        if isinstance(m, LevelUpdate) and m.iid not in images:
            images[m.iid] = m
    for sym, ref in final.items():
        iid = IID[(Exchange.Bitmex, sym)]
        assert mirror.is_valid(iid)
        # After the snapshot: the image holds exactly the partial's levels.
        image = images[iid]
        tick, lot = BY_IID[iid].tick_size, BY_IID[iid].lot_size
        assert {lid: (side, t * tick, n * lot) for _, side, lid, t, n in image.ch} == (
            after_partial[sym]
        )
        # After every update: same level ids with the same side, price and size.
        book = mirror.level_books[iid]
        assert len(book) == len(ref)
        for lid, want in ref.items():
            side, t, n = book.get(lid)
            assert (side, t * tick, n * lot) == want
        _assert_same_level_book(book, iid, ref)


def test_bitmex_trades_taker_side_price_size():
    want = [
        (r["symbol"], BID if r["side"] == "Buy" else ASK, r["price"], Decimal(r["size"]))
        for _, m in _received(BITMEX)
        if m.get("table") == "trade"
        for r in m["data"]
    ]
    _, msgs, _ = _run(BITMEX)
    names = {i.instrument_id: i.name for i in INSTRUMENTS}
    got = [
        (names[m.iid], side, t * BY_IID[m.iid].tick_size, n * BY_IID[m.iid].lot_size)
        for m in msgs
        if isinstance(m, TradeUpdate)
        for side, t, n, _ets, _tid in m.tr
    ]
    assert got == want
    assert len(got) == 27  # in 17 messages


# --- Deribit book.<instrument>.raw ----------------------------------------------------------------
def _is_book_snapshot(m: dict) -> bool:
    data = m.get("params", {}).get("data")
    return isinstance(data, dict) and data.get("type") == "snapshot"


def _deribit_books(msgs: list[tuple[int, dict]]) -> dict[str, Book]:
    books: dict[str, Book] = {}
    for _, m in msgs:
        ch = m.get("params", {}).get("channel", "")
        if not ch.startswith("book."):
            continue
        d = m["params"]["data"]
        if d["type"] == "snapshot":
            books[d["instrument_name"]] = {BID: {}, ASK: {}}
        book = books[d["instrument_name"]]
        for side, key in ((BID, "bids"), (ASK, "asks")):
            for action, price, amount in d[key]:
                if action == "delete":
                    book[side].pop(price, None)
                else:
                    book[side][price] = amount
    return books


def test_deribit_raw_book_replay_matches_reference_after_snapshot_and_updates():
    raw = _received(DERIBIT)
    at_snapshot = _deribit_books([(n, m) for n, m in raw if _is_book_snapshot(m)])
    final = _deribit_books(raw)
    assert len(final) == 10
    mirror, msgs, r = _run(DERIBIT)
    assert mirror.violations == []
    assert (r.stats.bad, r.stats.gaps, r.stats.syncs) == (0, 0, 10)
    images = _first_images(msgs)
    for name, ref in final.items():
        iid = IID[(Exchange.Deribit, name)]
        assert mirror.is_valid(iid)
        if at_snapshot[name][BID] or at_snapshot[name][ASK]:
            assert images[iid] == at_snapshot[name]
        _assert_same_book(mirror.books[iid], iid, ref)
    assert sum(final[n] != at_snapshot[n] for n in final) >= 3  # the changes did change books


def test_deribit_change_id_gap_invalidates_then_new_snapshot_resyncs(tmp_path):
    lines = DERIBIT.read_text().splitlines()
    name = "BTC-24SEP21-8000-P"
    changes = [i for i, s in enumerate(lines) if f'"book.{name}.raw"' in s and '"change"' in s]
    snapshot = next(s for s in lines if f'"book.{name}.raw"' in s and '"snapshot"' in s)
    drop = changes[3]
    last_ts = next(m.group(1) for s in reversed(lines) if (m := RECV_RE.match(s)))
    resub = f"{Decimal(last_ts) + 1}: {RECV_RE.match(snapshot).group(2)}"
    copy = tmp_path / "DERIBIT.ws.1.0"
    copy.write_text("\n".join([*lines[:drop], *lines[drop + 1 :], resub]) + "\n")
    mirror, msgs, r = _run(copy)
    assert mirror.violations == []
    assert r.stats.gaps == 1
    iid = IID[(Exchange.Deribit, name)]
    invalid = [
        m for m in msgs if isinstance(m, FeedStatus) and m.status is FeedHandlerStatus.BookInvalid
    ]
    assert len(invalid) == 1
    assert invalid[0].iid == iid
    assert "sequence gap" in invalid[0].detail
    assert name in invalid[0].detail
    # Other instruments are untouched; the re-sent snapshot brings the book back.
    assert r.stats.syncs == 11
    assert mirror.is_valid(iid)
    raw = _received(DERIBIT)
    first_snapshot = _deribit_books([(n, m) for n, m in raw if _is_book_snapshot(m)])
    _assert_same_book(mirror.books[iid], iid, first_snapshot[name])


# --- Coinbase level2 + matches + ticker -----------------------------------------------------------
def _coinbase_books(msgs: list[tuple[int, dict]]) -> dict[str, Book]:
    books: dict[str, Book] = {}
    for _, m in msgs:
        if m["type"] == "snapshot":
            books[m["product_id"]] = {
                BID: {Decimal(p): Decimal(q) for p, q in m["bids"]},
                ASK: {Decimal(p): Decimal(q) for p, q in m["asks"]},
            }
        elif m["type"] == "l2update" and m["product_id"] in books:
            book = books[m["product_id"]]
            for side, p, q in m["changes"]:
                levels = book[BID if side == "buy" else ASK]
                if Decimal(q) == 0:
                    levels.pop(Decimal(p), None)
                else:
                    levels[Decimal(p)] = Decimal(q)
    return books


def test_coinbase_level2_replay_matches_reference():
    raw = _received(COINBASE)
    at_snapshot = _coinbase_books([(n, m) for n, m in raw if m["type"] == "snapshot"])
    final = _coinbase_books(raw)
    assert len(final) == 10
    mirror, msgs, r = _run(COINBASE)
    assert mirror.violations == []
    assert (r.stats.bad, r.stats.crossed, r.stats.syncs) == (0, 0, 10)
    images = _first_images(msgs)
    for product, ref in final.items():
        iid = IID[(Exchange.Coinbase, product)]
        assert mirror.is_valid(iid)
        assert images[iid] == at_snapshot[product]
        _assert_same_book(mirror.books[iid], iid, ref)


def test_coinbase_trades_once_each_with_taker_side():
    raw = _received(COINBASE)
    want = [
        (
            m["product_id"],
            ASK if m["side"] == "buy" else BID,
            Decimal(m["price"]),
            Decimal(m["size"]),
            m["trade_id"],
        )
        for _, m in raw
        if m["type"] in ("match", "last_match")
    ]
    # The tickers report the same trades (taker side given directly): no trade of its own.
    tickers = {(m["product_id"], m["trade_id"]) for _, m in raw if m["type"] == "ticker"}
    assert tickers == {(p, t) for p, *_, t in want}
    _, msgs, _ = _run(COINBASE)
    names = {i.instrument_id: i.name for i in INSTRUMENTS}
    got = [
        (names[m.iid], side, t * BY_IID[m.iid].tick_size, n * BY_IID[m.iid].lot_size, int(tid))
        for m in msgs
        if isinstance(m, TradeUpdate)
        for side, t, n, _ets, tid in m.tr
    ]
    assert sorted(got, key=lambda t: (t[0], t[4])) == sorted(want, key=lambda t: (t[0], t[4]))
    assert len(got) == 107


# --- malformed lines ------------------------------------------------------------------------------
def test_malformed_lines_are_reported_and_skipped_without_losing_the_rest(tmp_path):
    lines = BITMEX.read_text().splitlines()
    update = next(i for i, s in enumerate(lines) if '"action":"update"' in s and "XBTUSD" in s)
    ts = RECV_RE.match(lines[update]).group(1)
    junk = [
        f"{ts}: {{not json",
        f'{ts}: {{"table":"orderBookL2","action":"insert","data":[{{"symbol":"XBTUSD"}}]}}',
        f'{ts}: {{"table":"orderBookL2","action":"update","data":[{{"symbol":"XBTUSD","id":1,'
        f'"side":"Sell","size":5}}]}}',
        "this line is no cryptofeed line",
    ]
    copy = tmp_path / "BITMEX.ws.1.0"
    copy.write_text("\n".join([*lines[:update], *junk, *lines[update:]]) + "\n")
    reports: list[tuple[str, str, int]] = []
    list(read_source(copy, lambda why, src, line: reports.append((why, src, line))))
    assert [line for _, _, line in reports] == [update + 1, update + 2, update + 3, update + 4]
    assert "unparsable" in reports[0][0]
    assert "unknown level 1" in reports[2][0]
    assert "unrecognised line" in reports[3][0]
    # The replay reports the same lines as bad data and still builds every book exactly.
    mirror, _msgs, r = _run(copy)
    assert r.stats.bad == 4
    assert {e.line for e in r.stats.bad_records} == {update + 1, update + 2, update + 3, update + 4}
    _, final, _ = _bitmex_reference(_received(BITMEX))
    for sym, ref in final.items():
        iid = IID[(Exchange.Bitmex, sym)]
        assert mirror.is_valid(iid)
        _assert_same_level_book(mirror.level_books[iid], iid, ref)


# --- end to end: a backtest over each recording ---------------------------------------------------
class BookWatcher(Strategy):
    """Subscribes to every book and trade feed of its instruments and counts the callbacks."""

    def __init__(self, exchange: Exchange, iids: list[int]) -> None:
        super().__init__("watcher")
        self.exchange = exchange
        self.iids = iids
        self.calls: dict[str, int] = defaultdict(int)
        self.best: dict[int, tuple[object, object]] = {}

    def on_start(self, params: str) -> None:
        for iid in self.iids:
            for sub in (MDSub.LevelBook, MDSub.PriceLevelBook, MDSub.BBO, MDSub.PublicTrades):
                self.env.subscribe(self.exchange, iid, sub)

    def on_add_level(self, *args) -> None:
        self.calls["add_level"] += 1

    def on_modify_level(self, *args) -> None:
        self.calls["modify_level"] += 1

    def on_delete_level(self, *args) -> None:
        self.calls["delete_level"] += 1

    def on_add_price_level(self, *args) -> None:
        self.calls["add_price_level"] += 1

    def on_modify_price_level(self, *args) -> None:
        self.calls["modify_price_level"] += 1

    def on_delete_price_level(self, *args) -> None:
        self.calls["delete_price_level"] += 1

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        self.calls["best_bid"] += 1
        self.best[instrument_id] = (price, self.best.get(instrument_id, (None, None))[1])

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        self.calls["best_ask"] += 1
        self.best[instrument_id] = (self.best.get(instrument_id, (None, None))[0], price)

    def on_public_trade(self, *args) -> None:
        self.calls["trade"] += 1


@pytest.mark.parametrize(
    ("path", "exchange", "level_keyed"),
    [
        (BITMEX, Exchange.Bitmex, True),
        (DERIBIT, Exchange.Deribit, False),
        (COINBASE, Exchange.Coinbase, False),
    ],
    ids=["bitmex", "deribit", "coinbase"],
)
def test_backtest_over_each_recording_reaches_the_book_callbacks(path, exchange, level_keyed):
    insts = [i for i in INSTRUMENTS if i.exchange is exchange]
    strat = BookWatcher(exchange, [i.instrument_id for i in insts])
    Backtest(strat, data=[path], instruments=insts, name=f"cf-{exchange.name}").run()
    assert strat.calls["add_price_level"] > 0
    assert strat.calls["best_bid"] > 0
    assert strat.calls["best_ask"] > 0
    if level_keyed:
        assert strat.calls["add_level"] > 0
        assert strat.calls["delete_level"] > 0
        assert strat.calls["trade"] == 27
    elif exchange is Exchange.Coinbase:
        assert strat.calls["trade"] == 107
    # The last best prices the strategy saw are those of the replayed books.
    mirror, _msgs, _r = _run(path)
    for iid, (bid, ask) in strat.best.items():
        book = mirror.books[iid]
        if not book.count(BID) and not book.count(ASK):
            book = mirror.level_books[iid].book  # order-level data: the totals per price
        if bid is not None and book.count(BID):
            assert bid == md.decimal_best(book, BY_IID[iid], BID)[0]
        if ask is not None and book.count(ASK):
            assert ask == md.decimal_best(book, BY_IID[iid], ASK)[0]
