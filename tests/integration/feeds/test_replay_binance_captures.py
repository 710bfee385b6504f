"""Replay of the real Binance (and Hyperliquid) captures through the production parsers."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from mlthon.basics.book import ASK, BID
from mlthon.basics.mlt_enum import FeedHandlerStatus
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay import replay_file, replay_files
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, TradeUpdate
from mlthon.infra.instruments import load_instruments
from tests import md

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
HFT = DATA / "hftbacktest"
BINANCE_FILES = sorted(HFT.glob("binance_*/*.gz"))
WITH_SNAPSHOT = [p for p in BINANCE_FILES if p.name.endswith("_20240808.gz")]
USDM = HFT / "binance_usdm_futures" / "btcusdt_20240808.gz"
SPOT = HFT / "binance_spot" / "btcusdt_20240808.gz"

pytestmark = pytest.mark.integration

INSTRUMENTS = load_instruments()
BY_ID = {i.instrument_id: i for i in INSTRUMENTS}


def _levels(book) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Every level of a book, both sides, best first, in ticks and lots."""
    return book.depth(BID), book.depth(ASK)


def _replay_into_mirror(path: Path) -> tuple[BookMirror, Counter[str], object]:
    mirror = BookMirror()
    kinds: Counter[str] = Counter()
    r = replay_file(path, INSTRUMENTS)
    for msg in r:
        kinds[type(msg).__name__] += 1
        mirror.apply(msg)
    return mirror, kinds, r


def test_binance_captures_present():
    assert {p.parent.name for p in BINANCE_FILES} == {
        "binance_usdm_futures",
        "binance_spot",
        "binance_coinm_futures",
    }


@pytest.mark.parametrize("path", BINANCE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_binance_capture_replays_valid_uncrossed_book(path):
    mirror, kinds, r = _replay_into_mirror(path)
    stats = r.stats
    assert mirror.violations == []  # never crossed, no update outside a valid book, seq dense
    assert stats.bad == 0
    assert stats.gaps == 0
    assert stats.crossed == 0
    assert stats.mismatches == 0
    assert not stats.unknown_symbols
    assert kinds["TradeUpdate"] > 0
    if path in WITH_SNAPSHOT:
        assert stats.syncs == 1
        assert kinds["BookUpdate"] > 1000
        (iid,) = mirror.books
        engine_book = r.engine.book(iid)
        assert engine_book is not None
        # The consumer's copy, rebuilt from messages only, equals the engine's book.
        assert _levels(mirror.books[iid]) == _levels(engine_book)
        assert mirror.is_valid(iid)
    else:
        # *_20240809 files continue a session and hold no snapshot: no book is ever published.
        assert stats.syncs == 0
        assert kinds["BookUpdate"] == 0
        assert stats.dropped_unsynced == 0  # still buffered, waiting for a snapshot


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as f:
        return [ln.rstrip(b"\n") for ln in f]


def _book_after_line(path: Path, line_no: int):
    """Engine book and last update id right after 1-based line ``line_no``."""
    engine = FeedEngine(INSTRUMENTS, lambda m: None)
    captured = None
    for se in read_source(path, engine.bad_data):
        engine.on_source_event(se)
        if se.line == line_no:
            captured = se
        elif captured is not None:
            break
    ((_, st),) = [(k, v) for k, v in engine._by_key.items() if v.state == 1]
    return md.decimal_top(st.l2, st.inst, 100_000), st.last_id


def _snapshot_line(ts: bytes, last_id: int, book, tamper: bool = False) -> bytes:
    bids, asks = book
    bids = [[format(p, "f"), format(q, "f")] for p, q in bids]
    asks = [[format(p, "f"), format(q, "f")] for p, q in asks]
    if tamper:
        bids[0][1] = format(Decimal(bids[0][1]) + Decimal("0.001"), "f")  # one more lot
    body = {"lastUpdateId": last_id, "E": 0, "T": 0, "bids": bids, "asks": asks}
    return ts + b" " + json.dumps(body).encode()


def _depth_line_numbers(lines: list[bytes]) -> tuple[int, list[int]]:
    snap = next(i for i, ln in enumerate(lines, 1) if b'"stream"' not in ln)
    depth = [i for i, ln in enumerate(lines, 1) if b"@depth" in ln and i > snap]
    return snap, depth


def _write(tmp_path: Path, name: str, lines: list[bytes]) -> Path:
    out = tmp_path / name
    with gzip.open(out, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    return out


@pytest.mark.parametrize("path", [USDM, SPOT], ids=["usdm", "spot"])
def test_binance_dropped_depth_update_is_gap_then_resync(tmp_path, path):
    lines = _lines(path)[:15_000]
    path = _write(tmp_path, "base.gz", lines)
    _, depth = _depth_line_numbers(lines)
    drop, checkpoint = depth[100], depth[300]
    ref_book, ref_id = _book_after_line(path, checkpoint)
    snap = _snapshot_line(lines[checkpoint - 1].split(b" ", 1)[0], ref_id, ref_book)
    changed = lines[: drop - 1] + lines[drop:checkpoint] + [snap] + lines[checkpoint:]
    copy = _write(tmp_path, "gap.gz", changed)

    ref = replay_file(path, INSTRUMENTS)
    ref_msgs = list(ref)
    mirror = BookMirror()
    r = replay_file(copy, INSTRUMENTS)
    msgs = list(r)
    for m in msgs:
        mirror.apply(m)
    assert mirror.violations == []
    statuses = [m for m in msgs if isinstance(m, FeedStatus)]
    assert [s.status for s in statuses] == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
        FeedHandlerStatus.BookInvalid,
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
    ]
    invalid = statuses[2]
    assert "BTCUSDT" in invalid.detail
    assert "gap" in invalid.detail
    assert r.stats.gaps == 1
    assert r.stats.syncs == 2
    # Nothing is published for the instrument between BookInvalid and the new snapshot.
    i_bad = msgs.index(invalid)
    assert isinstance(msgs[i_bad + 1], FeedStatus | TradeUpdate)
    assert not any(isinstance(m, BookUpdate) for m in msgs[i_bad + 1 : msgs.index(statuses[3])])
    # After the resync the book is the one of the untouched file, to the last level.
    (iid,) = mirror.books
    ref_engine_book = ref.engine.book(iid)
    assert ref_engine_book is not None
    assert _levels(mirror.books[iid]) == _levels(ref_engine_book)
    assert len(ref_msgs) > 0


@pytest.mark.parametrize("tamper", [False, True], ids=["matching", "tampered"])
def test_binance_later_rest_snapshot_checks_top5(tmp_path, tamper):
    lines = _lines(USDM)[:15_000]
    base = _write(tmp_path, "base.gz", lines)
    _, depth = _depth_line_numbers(lines)
    checkpoint = depth[500]
    ref_book, ref_id = _book_after_line(base, checkpoint)
    # The snapshot arrives after two more diffs, as recorded REST answers do.
    at = depth[502]
    snap = _snapshot_line(lines[at - 2].split(b" ", 1)[0], ref_id, ref_book, tamper)
    copy = _write(tmp_path, "snap2.gz", [*lines[: at - 1], snap, *lines[at - 1 :]])
    mirror = BookMirror()
    r = replay_file(copy, INSTRUMENTS)
    for m in r:
        mirror.apply(m)
    assert mirror.violations == []
    if tamper:
        assert r.stats.mismatches == 1
        kinds = [s.status for s in mirror.statuses]
        assert FeedHandlerStatus.BookInvalid in kinds
        assert kinds[-1] is FeedHandlerStatus.SnapshotEnd
        assert "top 5" in next(s.detail for s in mirror.statuses if s.status.value == 4)
    else:
        assert r.stats.verified_snapshots == 1
        assert r.stats.mismatches == 0
        assert len(mirror.statuses) == 2


@pytest.mark.parametrize("path", WITH_SNAPSHOT, ids=lambda p: p.parent.name)
def test_binance_published_book_equals_rest_snapshot_brought_forward(path, tmp_path):
    """Independent check with json + dicts: the book published at sync is the REST snapshot
    plus the diffs received before it with ``u`` at or after its id, to the last level."""
    snap_no, _ = _depth_line_numbers(_lines(path))
    lines = _lines(path)[: snap_no + 200]
    snap = json.loads(lines[snap_no - 1].split(b" ", 1)[1])
    spot = "binance_spot" in str(path)
    bridge = snap["lastUpdateId"] + (1 if spot else 0)
    book = {
        BID: {Decimal(p): Decimal(q) for p, q in snap["bids"]},
        ASK: {Decimal(p): Decimal(q) for p, q in snap["asks"]},
    }
    for raw in lines[: snap_no - 1]:
        msg = json.loads(raw.split(b" ", 1)[1])
        d = msg.get("data", {})
        if d.get("e") != "depthUpdate" or d["u"] < bridge:
            continue
        for side, key in ((BID, "b"), (ASK, "a")):
            for p, q in d[key]:
                if Decimal(q) == 0:
                    book[side].pop(Decimal(p), None)
                else:
                    book[side][Decimal(p)] = Decimal(q)
    msgs = list(replay_file(_write(tmp_path, "head.gz", lines), INSTRUMENTS))
    image = next(m for m in msgs if isinstance(m, BookUpdate))
    inst = BY_ID[image.iid]
    got: dict[int, dict[Decimal, Decimal]] = {BID: {}, ASK: {}}
    for _, side, t, n in image.ch:
        got[side][t * inst.tick_size] = n * inst.lot_size
    assert got == book
    top = sorted(book[BID], reverse=True)[:5]
    assert [t * inst.tick_size for _, s, t, _ in image.ch if s == BID][:5] == top


def test_binance_consecutive_days_carry_the_book(tmp_path):
    """Two files of one session merged by time share one engine: the second day continues."""
    lines = _lines(USDM)[:20_000]
    base = _write(tmp_path, "base.gz", lines)
    half = len(lines) // 2
    a = _write(tmp_path, "day1.gz", lines[:half])
    b = _write(tmp_path, "day2.gz", lines[half:])
    mirror = BookMirror()
    r = replay_files([b, a], INSTRUMENTS)
    for m in r:
        mirror.apply(m)
    assert mirror.violations == []
    assert r.stats.syncs == 1
    assert r.stats.gaps == 0
    ref = replay_file(base, INSTRUMENTS)
    for _ in ref:
        pass
    (iid,) = mirror.books
    ref_book = ref.engine.book(iid)
    assert ref_book is not None
    assert _levels(mirror.books[iid]) == _levels(ref_book)


def test_hyperliquid_capture_full_books_and_trades():
    mirror, kinds, r = _replay_into_mirror(HFT / "hyperliquid" / "btcusd_20250126.gz")
    assert mirror.violations == []
    assert r.stats.bad == 0
    assert r.stats.syncs == 1
    assert kinds["TradeUpdate"] == 9
    (iid,) = mirror.books
    book = mirror.books[iid]
    assert book.count(BID) == 20
    assert book.count(ASK) == 20
    assert not book.crossed
