"""Tardis Machine normalized JSON and Databento MBO CSV parsers, on the real samples."""

from __future__ import annotations

import gzip
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.databento.parse import MboDecoder, MboLayout
from mlthon.feeds.events import (
    DepthDiff,
    DepthSnapshot,
    Disconnect,
    Funding,
    OrderSnapshot,
    OrderUpdate,
    Trades,
)
from mlthon.feeds.readers import detect_format, read_source
from mlthon.feeds.tardis.machine import MachineDecoder, iso_to_ns

NT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "nautilus_trader"
MACHINE = NT / "tardis_machine_json"
MBO = NT / "databento_mbo_l3" / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.csv.gz"


def _read(path: Path) -> tuple[list, list]:
    reports: list[tuple[str, str, int]] = []
    evs = list(read_source(path, lambda why, src, line: reports.append((why, src, line))))
    return evs, reports


def test_iso_to_ns_exact_fraction_digits():
    assert iso_to_ns("2019-10-23T11:29:53.469Z") == 1_571_830_193_469_000_000
    assert iso_to_ns("2019-10-23T11:29:53.4691234Z") == 1_571_830_193_469_123_400
    assert iso_to_ns("2019-10-23T11:29:53Z") == 1_571_830_193_000_000_000
    with pytest.raises(ValueError):
        iso_to_ns("23/10/2019")


def test_detect_format_machine_and_mbo_lines():
    one_line = json.dumps(json.loads((MACHINE / "trade.json").read_text())).encode()
    assert detect_format(one_line) == "tardis_machine"
    assert detect_format(b"{") == "tardis_machine"
    assert detect_format(b'{"topic":"orderbook.50.BTCUSDT","type":"snapshot"}') == "ndjson"
    assert detect_format(MBO_CSV_HEADER.encode()) == "databento_mbo"


def test_machine_sample_files_decode_with_exact_values():
    evs, reports = _read(MACHINE / "book_snapshot.json")
    assert reports == []
    (se,) = evs
    snap = se.event
    assert isinstance(snap, DepthSnapshot) and snap.in_stream
    assert se.exchange is Exchange.Bitmex
    assert snap.bids == [("7633.5", "1906067"), ("7633", "65319")]
    assert snap.asks == [("7634", "1467849"), ("7634.5", "67939")]
    assert se.ts == iso_to_ns("2019-10-25T13:39:46.961Z")
    assert snap.ets == iso_to_ns("2019-10-25T13:39:46.950Z")

    (se,) = _read(MACHINE / "trade.json")[0]
    assert isinstance(se.event, Trades)
    assert se.event.trades == [
        (
            Side.Sell.value,
            "7996",
            "50",
            iso_to_ns("2019-10-23T10:32:49.669Z"),
            "282a0445-0e3a-abeb-f403-11003204ea1b",
        )
    ]

    (se,) = _read(MACHINE / "derivative_ticker.json")[0]
    f = se.event
    assert isinstance(f, Funding) and se.exchange is Exchange.Deribit
    assert (f.symbol, f.rate, f.mark, f.next_ts) == ("BTC-PERPETUAL", "-0.00001568", "7987.56", 0)

    (se,) = _read(MACHINE / "disconnect.json")[0]
    assert isinstance(se.event, Disconnect) and se.exchange is Exchange.Deribit

    (se,) = _read(MACHINE / "book_change.json")[0]
    assert isinstance(se.event, DepthDiff)
    assert se.event.asks == [("7985", "283318")] and se.event.bids == []


def test_machine_trade_bar_reported_once_not_per_message(tmp_path):
    bar = json.dumps(json.loads((MACHINE / "bar.json").read_text()))
    trade = json.dumps(json.loads((MACHINE / "trade.json").read_text()))
    p = tmp_path / "bars.ndjson"
    p.write_text("\n".join([bar, bar, trade, bar]) + "\n")
    evs, reports = _read(p)
    assert len(reports) == 1 and "trade_bar" in reports[0][0]
    assert [type(e.event) for e in evs] == [Trades]


def test_machine_snapshot_after_changes_replaces_and_run_extends():
    dec = MachineDecoder()

    def msg(snap: bool, price: str, ts: str) -> bytes:
        m = {
            "type": "book_change",
            "symbol": "XBTUSD",
            "exchange": "bitmex",
            "isSnapshot": snap,
            "bids": [{"price": Decimal(price), "amount": 5}],
            "asks": [],
            "timestamp": ts,
            "localTimestamp": ts,
        }
        return json.dumps(m, default=float).encode()

    t = "2019-10-23T11:29:53.469Z"
    kinds = [type(dec.decode(msg(s, p, t))[2][0]) for s, p in [(True, "1"), (True, "2")]]
    assert kinds == [DepthSnapshot, DepthDiff]  # the second part extends the first
    assert type(dec.decode(msg(False, "3", t))[2][0]) is DepthDiff
    assert type(dec.decode(msg(True, "4", t))[2][0]) is DepthSnapshot  # a new book
    disc = b'{"type":"disconnect","exchange":"bitmex","localTimestamp":"%s"}' % t.encode()
    assert type(dec.decode(disc)[2][0]) is Disconnect
    assert type(dec.decode(msg(True, "5", t))[2][0]) is DepthSnapshot  # after a reconnect


MBO_CSV_HEADER = (
    "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,price,size,channel_id,"
    "order_id,flags,ts_in_delta,sequence,symbol"
)


def _mbo_row(action: str, side: str, price: str, size: int, oid: int, flags: int) -> list[str]:
    return (
        f"1715126400059830547,1715126400059699395,160,1,5602,{action},{side},{price},{size},0,"
        f"{oid},{flags},0,1,ESM4"
    ).split(",")


def test_mbo_decoder_partial_cancel_modify_trade_and_fill():
    layout = MboLayout.from_header(MBO_CSV_HEADER)
    assert layout is not None
    dec = MboDecoder(layout)
    out = dec.record(_mbo_row("R", "N", "", 0, 0, 40), 2)
    assert out is None
    out = dec.record(_mbo_row("A", "B", "5155.500000000", 5, 11, 168), 3)
    assert out is not None
    ((_, snap),) = out[2]
    assert isinstance(snap, OrderSnapshot) and snap.orders == [(11, Side.Buy.value, "5155.5", "5")]
    # A trade and the fill of the resting order, then its partial cancel, as one event.
    assert dec.record(_mbo_row("T", "A", "5155.500000000", 2, 0, 0), 4) is None
    assert dec.record(_mbo_row("F", "B", "5155.500000000", 2, 11, 0), 5) is None
    out = dec.record(_mbo_row("C", "B", "5155.500000000", 2, 11, 130), 6)
    assert out is not None
    (_, tr), (l2, upd) = out[2]
    assert isinstance(tr, Trades) and tr.trades[0][:3] == (Side.Sell.value, "5155.5", "2")
    assert isinstance(upd, OrderUpdate) and (upd.size, upd.remove, l2) == ("3", False, 6)
    out = dec.record(_mbo_row("M", "B", "5155.250000000", 7, 11, 130), 7)
    assert out is not None
    upd = out[2][0][1]
    assert isinstance(upd, OrderUpdate) and (upd.price, upd.size) == ("5155.25", "7")
    out = dec.record(_mbo_row("C", "B", "5155.250000000", 7, 11, 130), 8)
    assert out is not None
    upd = out[2][0][1]
    assert isinstance(upd, OrderUpdate) and upd.remove
    assert dec.orders[5602] == {}
    with pytest.raises(ValueError):
        dec.record(_mbo_row("A", "N", "5155.250000000", 1, 12, 130), 9)
    with pytest.raises(ValueError):
        dec.record(_mbo_row("A", "B", "abc", 1, 12, 130), 10)


def test_mbo_sample_opens_with_one_snapshot_of_every_resting_order():
    with gzip.open(MBO, "rt") as f:
        rows = [line.rstrip("\n").split(",") for line in f][1:]
    n_snapshot_adds = sum(1 for r in rows if r[5] == "A" and int(r[11]) & 32)
    evs, reports = _read(MBO)
    assert reports == []
    first = evs[0]
    assert first.exchange is Exchange.Cme
    assert isinstance(first.event, OrderSnapshot)
    assert len(first.event.orders) == n_snapshot_adds == 13600
    assert sum(isinstance(e.event, OrderSnapshot) for e in evs) == 1
    trades = [t for e in evs if isinstance(e.event, Trades) for t in e.event.trades]
    assert len(trades) == sum(1 for r in rows if r[5] == "T")
    assert all(t[0] == Side.Buy.value and t[1] == "5214.25" for t in trades)
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)


def test_mbo_columns_are_found_by_name_symbol_optional_times_iso(tmp_path):
    """Another transcode of the same data: columns in another order, no ``symbol`` column
    (the instrument id names the book), ISO times (``pretty_ts``): the same events."""
    with gzip.open(MBO, "rt") as f:
        rows = [line.rstrip("\n").split(",") for line in f]
    names = rows[0]
    order = [n for n in reversed(names) if n != "symbol"]
    idx = [names.index(n) for n in order]

    def iso(ns: str) -> str:
        s, frac = divmod(int(ns), 1_000_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"

    out = [",".join(order)]
    for r in rows[1:]:
        r = list(r)
        for k in ("ts_recv", "ts_event"):
            r[names.index(k)] = iso(r[names.index(k)])
        out.append(",".join(r[i] for i in idx))
    other = tmp_path / "mbo_pretty.csv"
    other.write_text("\n".join(out) + "\n")
    a, rep_a = _read(MBO)
    b, rep_b = _read(other)
    assert rep_a == rep_b == []

    def key(e):
        ev = e.event
        names = ev.__slots__ if hasattr(ev, "__slots__") else vars(ev)
        fields = {k: getattr(ev, k) for k in names if k != "symbol"}
        return (e.ts, type(ev).__name__, repr(sorted(fields.items())))

    assert [key(e) for e in a] == [key(e) for e in b]
    assert {e.event.symbol for e in b} == {"5602"}
    assert detect_format(out[0].encode()) == "databento_mbo"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "the file holds nothing"),
        (b"\n\n  \n", "the file holds nothing"),
        (b"garbage line\n", "unrecognised format (first line b'garbage line'); the formats"),
    ],
)
def test_a_file_that_is_no_recording_says_so(tmp_path, content, words):
    from mlthon.basics.errors import BadMarketData

    p = tmp_path / "f.txt"
    p.write_bytes(content)
    with pytest.raises(BadMarketData) as err:
        list(read_source(p, lambda *a: None))
    assert words in str(err.value) and str(p) in str(err.value)
