"""Synthetic market, the feed-handler core, config loading and the raw recorder."""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from pathlib import Path

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.feeds.cli import CountingBus, feed_main, record_main
from mlthon.feeds.feed_config import load_feed_file
from mlthon.feeds.handler import run_feed
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.record import RawRecorder, iter_raw_messages
from mlthon.feeds.replay import replay_file
from mlthon.feeds.synthetic import synthetic_market
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, TradeUpdate
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.instruments import load_instruments


def _load(path):
    feed = load_feed_file(path)
    assert feed.config is not None
    return feed.config


SIM = next(i for i in load_instruments() if i.instrument_id == 9001)
T0 = 1_700_000_000_000_000_000


def test_synthetic_market_is_seeded_and_realistic():
    a = list(synthetic_market(SIM, seed=7, start_ns=T0, n_events=3000))
    b = list(synthetic_market(SIM, seed=7, start_ns=T0, n_events=3000))
    c = list(synthetic_market(SIM, seed=8, start_ns=T0, n_events=3000))
    assert a == b
    assert a != c
    mirror = BookMirror(strict=True)
    spreads = Counter()
    sides = Counter()
    for m in a:
        mirror.apply(m)
        if isinstance(m, BookUpdate) and mirror.is_valid(9001):
            book = mirror.books[9001]
            spreads[book.ask - book.bid] += 1  # in ticks
            assert book.count(1) == 20
            assert book.count(2) == 20
            for _, _, t, n in m.ch:  # whole ticks and lots, near the start price of 100
                assert type(t) is int and 900 <= t <= 1100
                assert type(n) is int and n >= 0
        if isinstance(m, TradeUpdate):
            for side, _, n, _, _ in m.tr:
                sides[side] += 1
                assert n > 0
    assert set(spreads) <= {1, 2}
    assert spreads[1] > 0
    assert spreads[2] > 0
    assert sides[1] > 100
    assert sides[2] > 100
    ts = [m.ts for m in a]
    assert ts == sorted(ts)
    assert any(type(m).__name__ == "FundingUpdate" for m in a)


def test_synthetic_market_duration_bound():
    msgs = list(synthetic_market(SIM, seed=1, start_ns=T0, duration_s=5))
    assert msgs[-1].ts <= T0 + 5_000_000_000
    with pytest.raises(ValueError, match="duration_s or n_events"):
        next(synthetic_market(SIM, seed=1, start_ns=T0))


async def test_run_feed_publishes_md_topics_and_retained_feed_status():
    sched = SimScheduler(SimClock(T0))
    bus = InProcBus(sched)
    topics = Topics("t1")
    got: list[tuple[str, object]] = []
    bus.subscribe("t1/#", lambda topic, msg: got.append((topic, msg)))
    src = list(synthetic_market(SIM, seed=3, start_ns=T0, n_events=300))
    n = await run_feed(
        bus,
        topics,
        iter(src),
        speed=None,
        stop=asyncio.Event(),
        clock=sched.clock,
        exchange=SIM.exchange,
    )
    sched.run_soon()
    assert n == len(src)
    md = [m for t, m in got if t == topics.md(Exchange.Sim, 9001)]
    assert md[: len(src)] == src
    assert isinstance(md[-1], FeedStatus)
    assert md[-1].status is FeedHandlerStatus.Disconnected
    status = [m for t, m in got if t == topics.feed_status(Exchange.Sim)]
    assert [s.status for s in status] == [
        FeedHandlerStatus.SnapshotStart,
        FeedHandlerStatus.SnapshotEnd,
        FeedHandlerStatus.Disconnected,
    ]
    # retained: a late subscriber gets the last feed status
    late: list[object] = []
    bus.subscribe(topics.feed_status(Exchange.Sim), lambda t, m: late.append(m))
    sched.run_soon()
    assert late == [status[-1]]


async def test_run_feed_paced_wait_ends_when_stop_is_set():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    class StopAfterFirst(CountingBus):
        def publish(self, topic, msg, *, qos=0, retain=False):
            super().publish(topic, msg, qos=qos, retain=retain)
            if not retain and self.published >= 1:
                loop.call_soon(stop.set)

    src = list(synthetic_market(SIM, seed=3, start_ns=T0, n_events=50))
    far = [src[0], BookUpdate(ex=1, iid=9001, ts=T0 + 3600 * 10**9, seq=99, ch=[])]
    clock = SimClock(T0)
    bus = StopAfterFirst()
    n = await asyncio.wait_for(
        run_feed(bus, Topics("t2"), iter(far), speed=1.0, stop=stop, clock=clock), timeout=5
    )
    assert n == 1
    last = bus.retained["t2/feed/Sim/status"]
    assert last.status is FeedHandlerStatus.Disconnected
    assert "stopped" in last.detail


def test_feed_config_and_dry_run(tmp_path):
    cfg_file = tmp_path / "feed.toml"
    cfg_file.write_text(
        'exchange = "Sim"\nspeed = "max"\n[source]\nkind = "synthetic"\nn_events = 200\nseed = 4\n'
    )
    cfg = _load(cfg_file)
    assert cfg.speed is None
    assert [i.instrument_id for i in cfg.instruments] == [9001]
    assert feed_main(["--config", str(cfg_file), "--dry-run"]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('exchange = "Nowhere"\n')
    with pytest.raises(ConfigError, match="exchange"):
        _load(bad)
    assert feed_main(["--config", str(bad), "--dry-run"]) == 2


def test_raw_recorder_round_trip_replays(tmp_path):
    out = tmp_path / "rec.gz"
    lines = [
        (
            5,
            b'{"stream":"aaa@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT",'
            b'"U":10,"u":12,"pu":9,"b":[["100.0","1"]],"a":[["101.0","1"]]}}',
        ),
        (6, b'{"lastUpdateId":11,"E":1,"T":1,"bids":[["100.0","2"]],"asks":[["101.0","3"]]}'),
        (
            7,
            b'{"stream":"aaa@depth@0ms","data":{"e":"depthUpdate","E":2,"T":2,"s":"BTCUSDT",'
            b'"U":13,"u":13,"pu":12,\n"b":[["100.0","0"]],"a":[]}}',
        ),
    ]
    with RawRecorder(out) as rec:
        for ts, payload in lines:
            rec.write(ts, payload)
    assert rec.count == 3
    text = gzip.decompress(out.read_bytes()).decode().splitlines()
    assert len(text) == 3
    assert text[0].startswith("5 {")
    assert [ts for ts, _ in iter_raw_messages(out)] == [5, 6, 7]
    msgs = list(replay_file(out, load_instruments()))
    kinds = [type(m).__name__ for m in msgs]
    assert kinds == ["FeedStatus", "BookUpdate", "FeedStatus", "BookUpdate"]
    assert msgs[-1].ch == [(2, 1, 1000, 0)]  # 100.0 in ticks of 0.10
    copy = tmp_path / "copy.gz"
    assert record_main(["--from", str(out), "--out", str(copy)]) == 0
    assert list(iter_raw_messages(copy)) == list(iter_raw_messages(out))


SAMPLE = Path(__file__).resolve().parents[3] / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"


def test_packaged_sample_replays_and_window_starts_with_book_image():
    full = list(replay_file(SAMPLE, load_instruments()))
    assert sum(isinstance(m, BookUpdate) for m in full) > 100
    mid = full[len(full) // 2].ts
    end = full[-10].ts
    window = list(replay_file(SAMPLE, load_instruments(), start_ns=mid, end_ns=end))
    assert all(mid <= m.ts <= end for m in window)
    assert isinstance(window[0], FeedStatus)
    assert window[0].status is FeedHandlerStatus.SnapshotStart
    # The window's first image plus its updates rebuild the same book as the full replay.
    mirror_full = BookMirror()
    for m in full:
        if m.ts <= end:
            mirror_full.apply(m)
    mirror = BookMirror()
    for m in window:
        mirror.apply(m)
    assert mirror.violations == []
    for side in (1, 2):
        assert mirror.books[1001].depth(side) == mirror_full.books[1001].depth(side)
    assert len(mirror.books[1001]) > 100
