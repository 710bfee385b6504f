"""The live Binance USD-M feed against the fake exchange streaming recorded data."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections.abc import AsyncIterator

import pytest

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.feeds.binance_usdm.handler import BinanceUsdmFeed
from mlthon.feeds.binance_usdm.parse import BinanceDecoder
from mlthon.feeds.engine import FeedEngine
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, Msg, TradeUpdate
from mlthon.infra.clock import LiveClock
from mlthon.infra.instruments import load_instruments
from tests import md
from tests.conftest import SHARED_DATA, wait_until
from tests.fakes.venues.binance import FakeBinance

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CAPTURE = SHARED_DATA / "hftbacktest/binance_usdm_futures/btcusdt_20240808.gz"


def _capture(n: int = 400) -> tuple[dict[str, object], list[str]]:
    """The REST snapshot and the first ``n`` depth/trade frames of the recording."""
    snap: dict[str, object] = {}
    frames: list[str] = []
    with gzip.open(CAPTURE, "rt") as f:
        for line in f:
            _, _, raw = line.partition(" ")
            if '"stream"' not in raw:
                snap = json.loads(raw)
            elif "@depth" in raw or "@trade" in raw:
                frames.append(raw.strip())
            if len(frames) >= n and snap:
                break
    return snap, frames


def _as_eth(raw: str) -> str:
    return raw.replace("btcusdt@", "ethusdt@").replace('"s":"BTCUSDT"', '"s":"ETHUSDT"')


def _insts() -> tuple[Instrument, Instrument]:
    by_name = {i.name: i for i in load_instruments() if i.exchange is Exchange.BinanceUsdm}
    return by_name["BTCUSDT"], by_name["ETHUSDT"]


class Out:
    def __init__(self) -> None:
        self.msgs: list[Msg] = []

    def status(self, status: FeedHandlerStatus, iid: int | None = None) -> list[FeedStatus]:
        return [
            m
            for m in self.msgs
            if isinstance(m, FeedStatus) and m.status is status and (iid is None or m.iid == iid)
        ]


@pytest.fixture
async def fx() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as f:
        yield f


async def _start(
    fx: FakeBinance, out: Out, **kw: object
) -> tuple[BinanceUsdmFeed, asyncio.Task[None], asyncio.Event]:
    btc, eth = _insts()
    feed = BinanceUsdmFeed(
        [btc, eth],
        out.msgs.append,
        LiveClock().now_ns,
        rest_url=fx.rest_url,
        ws_url=fx.ws_url,
        reconnect_max_s=0.2,
        resync_min_interval_s=0.02,
        rng=random.Random(7),
        **kw,  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    await wait_until(lambda: len(fx.market_ws) == 1, 30, "market connection")
    return feed, task, stop


async def _stop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    async with asyncio.timeout(30):
        await task


def _reference_snapshot(snap: dict[str, object], frames: list[str], upto: int) -> dict[str, object]:
    """The exact REST answer a venue would give right after ``frames[upto]``."""
    btc, _ = _insts()
    engine = FeedEngine([btc], lambda m: None)
    dec = BinanceDecoder(Exchange.BinanceUsdm)
    for raw in frames[: upto + 1]:
        for ev in dec.decode(raw):
            engine.on_event(0, Exchange.BinanceUsdm, ev)
        if not engine.is_live(btc.instrument_id):
            for ev in dec.decode(json.dumps(snap)):
                engine.on_event(0, Exchange.BinanceUsdm, ev)
    book = engine.book(btc.instrument_id)
    assert book is not None and engine.is_live(btc.instrument_id)
    bids, asks = md.decimal_top(book, btc, 10_000)  # type: ignore[arg-type]
    last = json.loads(frames[upto])["data"]["u"]
    return {
        "lastUpdateId": last,
        "E": 0,
        "T": 0,
        "bids": [[format(p, "f"), format(q, "f")] for p, q in bids],
        "asks": [[format(p, "f"), format(q, "f")] for p, q in asks],
    }


async def test_binance_feed_subscribes_syncs_and_streams(fx: FakeBinance) -> None:
    snap, frames = _capture(200)
    fx.depth["BTCUSDT"] = snap
    out = Out()
    feed, task, stop = await _start(fx, out)
    try:
        assert set(fx.market_subscriptions[0]) == {
            "btcusdt@depth@100ms",
            "btcusdt@aggTrade",
            "btcusdt@markPrice",
            "ethusdt@depth@100ms",
            "ethusdt@aggTrade",
            "ethusdt@markPrice",
        }
        await wait_until(lambda: "BTCUSDT" in fx.depth_requests, 30, "snapshot request")
        for raw in frames:
            await fx.push_market(raw)
        btc, _ = _insts()
        await wait_until(lambda: out.status(FeedHandlerStatus.SnapshotEnd, btc.instrument_id), 30)
        await wait_until(lambda: any(isinstance(m, TradeUpdate) for m in out.msgs), 30)
        assert any(isinstance(m, BookUpdate) and m.iid == btc.instrument_id for m in out.msgs)
        assert feed.engine.is_live(btc.instrument_id)
    finally:
        await _stop(task, stop)
    assert out.status(FeedHandlerStatus.Disconnected, 0)


async def test_binance_feed_gap_resyncs_that_instrument_only(fx: FakeBinance) -> None:
    snap, frames = _capture(400)
    depth_idx = [i for i, raw in enumerate(frames) if "@depth" in raw]
    gap = depth_idx[40]  # this diff is lost
    after = depth_idx[41]
    fx.depth["BTCUSDT"] = snap
    fx.depth["ETHUSDT"] = snap
    out = Out()
    feed, task, stop = await _start(fx, out)
    btc, eth = _insts()
    try:
        await wait_until(lambda: len(fx.depth_requests) >= 2, 30, "snapshot requests")
        for raw in frames[:gap]:
            await fx.push_market(raw)
            await fx.push_market(_as_eth(raw))
        await wait_until(lambda: feed.engine.is_live(btc.instrument_id), 30, "btc live")
        await wait_until(lambda: feed.engine.is_live(eth.instrument_id), 30, "eth live")
        fx.depth["BTCUSDT"] = _reference_snapshot(snap, frames, after)
        await fx.push_market(_as_eth(frames[gap]))  # eth gets it, btc does not
        for raw in frames[gap + 1 :]:
            await fx.push_market(raw)
            await fx.push_market(_as_eth(raw))
        await wait_until(lambda: out.status(FeedHandlerStatus.BookInvalid, btc.instrument_id), 30)
        await wait_until(
            lambda: len(out.status(FeedHandlerStatus.SnapshotEnd, btc.instrument_id)) >= 2, 30
        )
        assert (
            "sequence gap" in out.status(FeedHandlerStatus.BookInvalid, btc.instrument_id)[0].detail
        )
        assert not out.status(FeedHandlerStatus.BookInvalid, eth.instrument_id)
        assert len(out.status(FeedHandlerStatus.SnapshotEnd, eth.instrument_id)) == 1
        assert fx.depth_requests.count("ETHUSDT") == 1
        assert set(feed.resyncs[2:]) == {"BTCUSDT"}
        assert feed.engine.is_live(btc.instrument_id) and feed.engine.is_live(eth.instrument_id)
    finally:
        await _stop(task, stop)


async def test_binance_feed_silence_invalidates_and_reconnects(fx: FakeBinance) -> None:
    snap, frames = _capture(100)
    fx.depth["BTCUSDT"] = snap
    out = Out()
    feed, task, stop = await _start(fx, out, silence_timeout_s=0.4)
    btc, _ = _insts()
    try:
        for raw in frames:
            await fx.push_market(raw)
        await wait_until(lambda: feed.engine.is_live(btc.instrument_id), 30, "btc live")
        # nothing more is sent: connected but silent
        await wait_until(lambda: out.status(FeedHandlerStatus.BookInvalid, btc.instrument_id), 30)
        assert "silent" in out.status(FeedHandlerStatus.BookInvalid, btc.instrument_id)[0].detail
        await wait_until(lambda: feed.connects >= 2, 30, "reconnect")
        assert out.status(FeedHandlerStatus.Disconnected, 0)
    finally:
        await _stop(task, stop)


async def test_binance_feed_reconnects_with_backoff_and_resyncs(fx: FakeBinance) -> None:
    snap, frames = _capture(100)
    fx.depth["BTCUSDT"] = snap
    out = Out()
    feed, task, stop = await _start(fx, out)
    btc, _ = _insts()
    try:
        for raw in frames:
            await fx.push_market(raw)
        await wait_until(lambda: feed.engine.is_live(btc.instrument_id), 30, "btc live")
        await fx.drop_market_streams()
        await wait_until(lambda: out.status(FeedHandlerStatus.Disconnected, 0), 30)
        assert not feed.engine.is_live(btc.instrument_id)
        await wait_until(lambda: len(fx.market_ws) == 1 and feed.connects == 2, 30, "reconnect")
        assert feed.backoff.attempt == 0  # reset after the successful connect
        await wait_until(lambda: fx.depth_requests.count("BTCUSDT") >= 2, 30)
        for raw in frames:
            await fx.push_market(raw)
        await wait_until(
            lambda: len(out.status(FeedHandlerStatus.SnapshotEnd, btc.instrument_id)) >= 2, 30
        )
    finally:
        await _stop(task, stop)
