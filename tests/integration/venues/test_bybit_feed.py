"""The live Bybit v5 feed against the fake exchange streaming the recorded ob500 dump."""

from __future__ import annotations

import asyncio
import json
import random
import zipfile
from collections.abc import AsyncIterator

import pytest

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.feeds.bybit_v5.handler import BybitV5Feed
from mlthon.infra.bus.messages import BookUpdate, FeedStatus, FundingUpdate, Msg, TradeUpdate
from mlthon.infra.clock import LiveClock
from mlthon.infra.instruments import load_instruments
from tests.conftest import SHARED_DATA, wait_until
from tests.fakes.venues.bybit import FakeBybit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DUMP = SHARED_DATA / "nautilus_trader/bybit_v5/historical_ob500/xrpusdt-ob500.data.zip"
SAMPLES = SHARED_DATA / "nautilus_trader/bybit_v5/rust_fixtures"


def _dump() -> list[str]:
    with zipfile.ZipFile(DUMP) as z:
        return z.read(z.namelist()[0]).decode().splitlines()


def _as_eth(raw: str) -> str:
    return raw.replace("XRPUSDT", "ETHUSDT")


def _insts() -> tuple[Instrument, Instrument]:
    by_name = {i.name: i for i in load_instruments() if i.exchange is Exchange.Bybit}
    return by_name["XRPUSDT"], by_name["ETHUSDT"]


def _status(out: list[Msg], status: FeedHandlerStatus, iid: int | None = None) -> list[FeedStatus]:
    return [
        m
        for m in out
        if isinstance(m, FeedStatus) and m.status is status and (iid is None or m.iid == iid)
    ]


@pytest.fixture
async def fx() -> AsyncIterator[FakeBybit]:
    async with FakeBybit() as f:
        yield f


async def _start(
    fx: FakeBybit, out: list[Msg], **kw: object
) -> tuple[BybitV5Feed, asyncio.Task[None], asyncio.Event]:
    xrp, eth = _insts()
    feed = BybitV5Feed(
        [xrp, eth],
        out.append,
        LiveClock().now_ns,
        ws_url=fx.public_url,
        depth=500,
        reconnect_max_s=0.2,
        resync_min_interval_s=0.02,
        rng=random.Random(3),
        **kw,  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    await wait_until(lambda: len(fx.public_subscriptions) >= 6, 30, "subscriptions")
    return feed, task, stop


async def _stop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    async with asyncio.timeout(30):
        await task


async def test_bybit_feed_subscribes_and_streams_book_trades_funding(fx: FakeBybit) -> None:
    out: list[Msg] = []
    feed, task, stop = await _start(fx, out)
    xrp, _ = _insts()
    try:
        assert set(fx.public_subscriptions) == {
            "orderbook.500.XRPUSDT",
            "publicTrade.XRPUSDT",
            "tickers.XRPUSDT",
            "orderbook.500.ETHUSDT",
            "publicTrade.ETHUSDT",
            "tickers.ETHUSDT",
        }
        for raw in _dump():
            await fx.push_market(raw)
        trade = json.loads((SAMPLES / "ws_public_trade.json").read_text())
        for t in trade["data"]:
            t["s"] = "XRPUSDT"
        trade["topic"] = "publicTrade.XRPUSDT"
        await fx.push_market(json.dumps(trade))
        ticker = json.loads((SAMPLES / "ws_ticker_linear.json").read_text())
        ticker["data"]["symbol"] = "XRPUSDT"
        ticker["topic"] = "tickers.XRPUSDT"
        await fx.push_market(json.dumps(ticker))
        await wait_until(lambda: any(isinstance(m, FundingUpdate) for m in out), 30, "funding")
        assert _status(out, FeedHandlerStatus.SnapshotEnd, xrp.instrument_id)
        assert sum(isinstance(m, BookUpdate) and m.iid == xrp.instrument_id for m in out) >= 40
        assert any(isinstance(m, TradeUpdate) for m in out)
        assert feed.engine.is_live(xrp.instrument_id)
    finally:
        await _stop(task, stop)


async def test_bybit_feed_gap_resubscribes_that_instrument_only(fx: FakeBybit) -> None:
    lines = _dump()
    out: list[Msg] = []
    feed, task, stop = await _start(fx, out)
    xrp, eth = _insts()
    try:
        for raw in lines[:20]:
            await fx.push_market(raw)
            await fx.push_market(_as_eth(raw))
        await wait_until(lambda: feed.engine.is_live(xrp.instrument_id), 30, "xrp live")
        await fx.push_market(_as_eth(lines[20]))  # xrp loses delta 20
        for raw in lines[21:25]:
            await fx.push_market(raw)
            await fx.push_market(_as_eth(raw))
        await wait_until(lambda: _status(out, FeedHandlerStatus.BookInvalid, xrp.instrument_id), 30)
        await wait_until(lambda: "orderbook.500.XRPUSDT" in fx.public_unsubscriptions, 30)
        assert fx.public_unsubscriptions == ["orderbook.500.XRPUSDT"]
        assert fx.public_subscriptions.count("orderbook.500.XRPUSDT") == 2
        assert fx.public_subscriptions.count("orderbook.500.ETHUSDT") == 1
        # the venue answers the new subscription with a snapshot
        await fx.push_market(lines[0])
        for raw in lines[1:10]:
            await fx.push_market(raw)
        await wait_until(
            lambda: len(_status(out, FeedHandlerStatus.SnapshotEnd, xrp.instrument_id)) == 2, 30
        )
        assert not _status(out, FeedHandlerStatus.BookInvalid, eth.instrument_id)
        assert feed.engine.is_live(eth.instrument_id)
    finally:
        await _stop(task, stop)


async def test_bybit_feed_silence_and_reconnect_resubscribes(fx: FakeBybit) -> None:
    lines = _dump()
    out: list[Msg] = []
    feed, task, stop = await _start(fx, out, silence_timeout_s=0.4)
    xrp, _ = _insts()
    try:
        for raw in lines[:5]:
            await fx.push_market(raw)
        await wait_until(lambda: feed.engine.is_live(xrp.instrument_id), 30, "xrp live")
        await wait_until(lambda: _status(out, FeedHandlerStatus.BookInvalid, xrp.instrument_id), 30)
        assert "silent" in _status(out, FeedHandlerStatus.BookInvalid, xrp.instrument_id)[0].detail
        await wait_until(lambda: feed.connects >= 2 and len(fx.public_subscriptions) >= 12, 30)
        assert _status(out, FeedHandlerStatus.Disconnected, 0)
    finally:
        await _stop(task, stop)


async def test_bybit_feed_pings(fx: FakeBybit) -> None:
    out: list[Msg] = []
    feed, task, stop = await _start(fx, out, ping_interval_s=0.05)
    try:
        await wait_until(lambda: fx.pings >= 2, 30, "pings")
        await fx.drop_public_streams()
        await wait_until(lambda: feed.connects == 2, 30, "reconnect")
        assert feed.backoff.attempt == 0
    finally:
        await _stop(task, stop)
