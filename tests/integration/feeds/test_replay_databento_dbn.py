"""Databento's binary format (DBN), zstd-compressed or not, replays as its CSV transcode does.

The shared CME recording exists in both forms; the other DBN files here are written with
Databento's own encoder (``databento-dbn``), from the rows of the CSV tests (the pre-open of
``test_l3_crossed_preopen``), so every case of the CSV reader holds for DBN too. Bad input is a
clear error or a report, never a traceback: a file cut short, bytes that are not DBN, a DBN file
of another schema, the packages missing.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import databento_dbn as db
import pytest
import zstandard

from mlthon.app.cli import backtest_main
from mlthon.app.instruments_cli import instruments_main
from mlthon.basics import FeedHandlerStatus
from mlthon.basics.errors import BadMarketData
from mlthon.feeds.databento.dbn import price_text
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay import replay_file
from mlthon.infra.bus.messages import FeedStatus
from mlthon.infra.instruments import load_instruments
from tests.integration.feeds.test_l3_crossed_preopen import HEADER, _preopen_rows

pytestmark = pytest.mark.integration

MBO = "nautilus_trader/databento_mbo_l3"
PAIR = f"{MBO}/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02"
REPO = Path(__file__).resolve().parents[3]
CFG = REPO / "demo_strat" / "market_maker.toml"


def _events(path: Path | str) -> tuple[list[tuple[int, Any, Any]], list[tuple[str, int]]]:
    reports: list[tuple[str, int]] = []
    evs = [
        (se.ts, se.exchange, se.event)
        for se in read_source(path, lambda why, _src, line: reports.append((why, line)))
    ]
    return evs, reports


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _dbn_of_rows(rows: list[str], *, mapping: bool = True, extra: bytes = b"") -> bytes:
    """A DBN MBO stream of CSV transcode rows (the layout of ``HEADER``): its metadata, then a
    symbol mapping record per instrument (``mapping``), ``extra``, then the records."""
    names = HEADER.split(",")
    at = {n: i for i, n in enumerate(names)}
    out = [
        db.Metadata(
            dataset="GLBX.MDP3",
            schema=db.Schema.MBO,
            start=0,
            stype_in=db.SType.RAW_SYMBOL,
            stype_out=db.SType.INSTRUMENT_ID,
            symbols=["ESM4"],
        ).encode()
    ]
    mapped: set[int] = set()
    records = []
    for row in rows:
        c = row.split(",")
        iid = int(c[at["instrument_id"]])
        if mapping and iid not in mapped:
            mapped.add(iid)
            out.append(
                bytes(
                    db.SymbolMappingMsg(
                        publisher_id=1, instrument_id=iid, ts_event=0,
                        stype_in=db.SType.RAW_SYMBOL, stype_in_symbol=c[at["symbol"]],
                        stype_out=db.SType.INSTRUMENT_ID, stype_out_symbol=str(iid),
                        start_ts=0, end_ts=2**63,
                    )
                )
            )  # fmt: skip
        px = c[at["price"]]
        records.append(
            bytes(
                db.MBOMsg(
                    publisher_id=int(c[at["publisher_id"]]), instrument_id=iid,
                    ts_event=int(c[at["ts_event"]]), order_id=int(c[at["order_id"]]),
                    price=round(float(px) * 1e9) if px else db.UNDEF_PRICE,
                    size=int(c[at["size"]]), action=db.Action(c[at["action"]]),
                    side=db.Side(c[at["side"]]), ts_recv=int(c[at["ts_recv"]]),
                    flags=int(c[at["flags"]]),
                )
            )
        )  # fmt: skip
    return b"".join(out) + extra + b"".join(records)


def test_price_text_is_exact_and_empty_when_undefined():
    assert price_text(5_155_500_000_000) == "5155.500000000"
    assert price_text(250_000_000) == "0.250000000"
    assert price_text(-1_500_000_000) == "-1.500000000"
    assert price_text(db.UNDEF_PRICE) == ""


def test_the_dbn_recording_gives_the_events_of_its_csv_transcode(shared_data):
    dbn, dbn_reports = _events(shared_data / f"{PAIR}.dbn.zst")
    csv, csv_reports = _events(shared_data / f"{PAIR}.csv.gz")
    assert len(dbn) == 191
    assert dbn == csv
    assert dbn_reports == csv_reports == []


def test_plain_dbn_and_zstd_csv_read_by_content_whatever_their_names(shared_data, tmp_path):
    with (shared_data / f"{PAIR}.dbn.zst").open("rb") as f:
        plain = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    (tmp_path / "book.bin").write_bytes(plain)
    with gzip.open(shared_data / f"{PAIR}.csv.gz", "rb") as g:
        (tmp_path / "book.dat").write_bytes(_zstd(g.read()))
    expected, _ = _events(shared_data / f"{PAIR}.csv.gz")
    assert _events(tmp_path / "book.bin") == (expected, [])
    assert _events(tmp_path / "book.dat") == (expected, [])


@pytest.mark.parametrize("mapping", [True, False], ids=["symbol-records", "no-symbols"])
def test_the_preopen_written_in_dbn_replays_as_its_csv(tmp_path, mapping):
    """The CSV pre-open case through DBN: the same events (named by the stream's symbol
    mapping records, or by the instrument id without them, as a CSV without ``symbol``), and
    the feed keeps the crossed book (``BookCrossed`` then ``Resumed``)."""
    rows = _preopen_rows()
    (tmp_path / "preopen.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    if not mapping:
        no_symbol = [r.rsplit(",", 1)[0] + "," for r in rows]
        (tmp_path / "preopen.csv").write_text(HEADER + "\n" + "\n".join(no_symbol) + "\n")
    (tmp_path / "preopen.dbn.zst").write_bytes(_zstd(_dbn_of_rows(rows, mapping=mapping)))
    csv, _ = _events(tmp_path / "preopen.csv")
    dbn, reports = _events(tmp_path / "preopen.dbn.zst")
    assert dbn == csv and reports == []
    assert {ev.symbol for _ts, _ex, ev in dbn} == ({"ESM4"} if mapping else {"5602"})
    if mapping:
        esm4 = [i for i in load_instruments() if i.name == "ESM4"]
        statuses = [
            m.status
            for m in replay_file(tmp_path / "preopen.dbn.zst", esm4, cache=False)
            if isinstance(m, FeedStatus)
        ]
        assert statuses[-2:] == [FeedHandlerStatus.BookCrossed, FeedHandlerStatus.Resumed]


def test_records_that_are_not_mbo_are_reported_once_each_and_skipped(tmp_path):
    rows = _preopen_rows()
    beats = b"".join(bytes(db.SystemMsg(ts_event=i, msg="Heartbeat")) for i in range(3))
    (tmp_path / "x.dbn").write_bytes(_dbn_of_rows(rows, extra=beats))
    (tmp_path / "x.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    dbn, reports = _events(tmp_path / "x.dbn")
    assert dbn == _events(tmp_path / "x.csv")[0]
    assert reports == [("Databento SystemMsg record left out (not MBO)", 2)]


def test_a_file_cut_inside_a_record_keeps_what_came_before_and_says_so(tmp_path):
    rows = _preopen_rows()
    data = _dbn_of_rows(rows)
    (tmp_path / "cut.dbn").write_bytes(data[:-20])  # the last record (56 bytes) cut short
    (tmp_path / "whole.csv").write_text(HEADER + "\n" + "\n".join(rows[:-1]) + "\n")
    dbn, reports = _events(tmp_path / "cut.dbn")
    assert dbn == _events(tmp_path / "whole.csv")[0]
    assert reports == [("the DBN data ends inside a record (36 bytes left)", len(rows) + 1)]


def test_bytes_that_are_not_dbn_and_other_schemas_are_clear_errors(shared_data, tmp_path):
    (tmp_path / "junk.dbn").write_bytes(b"DBN\x03" + b"\xff" * 300)
    with pytest.raises(BadMarketData, match="not a readable DBN file"):
        _events(tmp_path / "junk.dbn")
    (tmp_path / "junk.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 64)
    with pytest.raises(BadMarketData, match=r"junk\.zst: unreadable data"):
        _events(tmp_path / "junk.zst")
    definitions = shared_data / f"{MBO}/orderbooks_definition.dbn.zst"
    with pytest.raises(BadMarketData) as err:
        _events(definitions)
    assert "schema definition" in str(err.value) and "mlthon instruments --data" in str(err.value)


@pytest.mark.parametrize("package", ["databento_dbn", "zstandard"])
def test_without_the_packages_a_dbn_file_names_the_extra_to_install(
    shared_data, monkeypatch, package
):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    with pytest.raises(BadMarketData) as err:
        _events(shared_data / f"{PAIR}.dbn.zst")
    assert "pip install 'mlthon[databento]'" in str(err.value)
    assert package.split("_")[0] in str(err.value)
    # The other formats do not need them.
    assert _events(shared_data / f"{PAIR}.csv.gz")[0]


def test_a_user_backtests_the_cme_sunday_book_and_lists_its_instrument(
    shared_data, tmp_path, capsys
):
    """``mlthon instruments --data`` names the DBN file's instrument (bundled: ESH4), and a
    backtest on it runs with the ids it gave."""
    esh4 = shared_data / f"{MBO}/esh4-glbx-mdp3-20231224.mbo.dbn.zst"
    instruments_main(["--data", str(esh4)])
    listed = capsys.readouterr().out
    assert "ESH4" in listed and "14002" in listed
    args = [str(CFG), "--data", str(esh4), "--out", str(tmp_path / "out"), "--no-report"]
    args += ["--instruments", "14002", "--set", "exchange=Cme", "instrument_id=14002", "size=1"]
    assert backtest_main(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["events"] > 0
    esh = [i for i in load_instruments() if i.name == "ESH4"]
    msgs = list(replay_file(esh4, esh, cache=False))
    # One venue message, the book as the week opens: a valid snapshot of 8,725 orders.
    assert [m.status for m in msgs if isinstance(m, FeedStatus)] == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
    ]
    mirror = BookMirror()
    for m in msgs:
        mirror.apply(m)
    assert mirror.violations == []
    book = mirror.level_book(14002).book
    assert (book.bid, book.ask) == (4799_00 // 25, 4799_50 // 25)  # 4799.00 / 4799.50
