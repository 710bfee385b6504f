"""Against the real testnets: deselected by default (``-m live``), skipped without keys.

Run with (see docs/exchanges.md)::

    MLT_BINANCEUSDM_API_KEY=... MLT_BINANCEUSDM_API_SECRET=... \\
    MLT_BYBIT_API_KEY=... MLT_BYBIT_API_SECRET=... \\
    pytest -m live tests/integration/venues/test_live_testnets.py

The order tests place one post-only buy 10 % under the mark price (it cannot fill), check its ack,
then cancel it. ``MLT_LIVE_FEEDS=1`` also runs the public market-data checks (no keys needed).
"""

from __future__ import annotations

import asyncio
import os
from decimal import ROUND_UP, Decimal
from typing import Any

import aiohttp
import pytest

from mlthon.basics.mlt_enum import Environment, Exchange, ExecInstructions, FeedHandlerStatus, Side
from mlthon.gateways.binance_usdm.gateway import URLS as BINANCE_URLS
from mlthon.gateways.binance_usdm.gateway import build_gateway as build_binance
from mlthon.gateways.bybit_v5.gateway import URLS as BYBIT_URLS
from mlthon.gateways.bybit_v5.gateway import build_gateway as build_bybit
from mlthon.gateways.live.config import LiveGatewayConfig
from mlthon.infra.bus.messages import (
    CancelOrder,
    FeedStatus,
    FetchWallet,
    Msg,
    NewOrder,
    NewOrderAck,
    OrderCancelled,
    WalletInfo,
)
from mlthon.infra.clock import LiveClock
from tests.conftest import wait_until
from tests.integration.venues.support import STRAT, instruments, running

pytestmark = [pytest.mark.live, pytest.mark.integration, pytest.mark.timeout(120)]


def _keys(exchange: Exchange) -> None:
    cfg = LiveGatewayConfig(exchange=exchange)
    if not (os.environ.get(cfg.key_env) and os.environ.get(cfg.secret_env)):
        pytest.skip(f"set {cfg.key_env} and {cfg.secret_env} to run against the testnet")


async def _get_json(url: str, params: dict[str, str]) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url, params=params) as r:
        return await r.json()


async def _place_and_cancel(build: Any, exchange: Exchange, symbol: str, mark: Decimal) -> None:
    cfg = LiveGatewayConfig(exchange=exchange, environment=Environment.Testnet)
    inst = next(i for i in instruments(exchange) if i.name == symbol)
    async with running(build, cfg, cfg.credentials(), exchange) as h:
        await h.ready(timeout=30)
        inst = h.gw.instruments[inst.instrument_id]
        price = (mark * Decimal("0.9")).quantize(inst.tick_size)
        need = max(inst.min_notional * Decimal("1.2"), inst.min_qty * price)
        qty = (need / price / inst.lot_size).to_integral_value(ROUND_UP) * inst.lot_size
        h.send(FetchWallet(strat=STRAT, coin="USDT"))
        await h.wait(WalletInfo, timeout=20)
        h.send(
            NewOrder(
                strat=STRAT,
                cl_id="live1",
                instrument_id=inst.instrument_id,
                side=Side.Buy,
                price=str(price),
                qty=str(qty),
                exec_instr=ExecInstructions.PostOnly,
            )
        )
        await h.wait(NewOrderAck, timeout=20)
        h.send(CancelOrder(strat=STRAT, cl_id="live1", instrument_id=inst.instrument_id))
        await h.wait(OrderCancelled, timeout=20)


async def test_live_binance_testnet_place_and_cancel() -> None:
    _keys(Exchange.BinanceUsdm)
    rest = BINANCE_URLS[Environment.Testnet][0]
    body = await _get_json(f"{rest}/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})
    await _place_and_cancel(
        build_binance, Exchange.BinanceUsdm, "BTCUSDT", Decimal(body["markPrice"])
    )


async def test_live_bybit_testnet_place_and_cancel() -> None:
    _keys(Exchange.Bybit)
    rest = BYBIT_URLS[Environment.Testnet][0]
    body = await _get_json(f"{rest}/v5/market/tickers", {"category": "linear", "symbol": "BTCUSDT"})
    mark = Decimal(body["result"]["list"][0]["markPrice"])
    await _place_and_cancel(build_bybit, Exchange.Bybit, "BTCUSDT", mark)


@pytest.mark.parametrize("exchange", [Exchange.BinanceUsdm, Exchange.Bybit])
async def test_live_public_feed_syncs_a_book(exchange: Exchange) -> None:
    if os.environ.get("MLT_LIVE_FEEDS") != "1":
        pytest.skip("set MLT_LIVE_FEEDS=1 to read the venues' public streams")
    from mlthon.feeds.live_cli import build_live_feed

    insts = [i for i in instruments(exchange) if i.name == "BTCUSDT"]
    out: list[Msg] = []
    feed = build_live_feed(exchange, insts, out.append, LiveClock())
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        await wait_until(
            lambda: any(
                isinstance(m, FeedStatus) and m.status is FeedHandlerStatus.SnapshotEnd and m.iid
                for m in out
            ),
            60,
            "a synced book",
        )
    finally:
        stop.set()
        await task
