"""A real strategy (StratEnv + the Recorder strategy, as in the lifecycle tests) trading against
each fake venue through the real `mlthon gateway` process over mosquitto, and reading the live
Binance book through the real `mlthon feed` process."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sys
from typing import Any

import pytest

from mlthon.api import MDSub
from mlthon.basics import Exchange, FeedHandlerStatus, GtwRejectCode, Price, Qty, Side
from mlthon.gateways.live.gateway import venue_client_id
from tests.conftest import REPO, SHARED_DATA, wait_until
from tests.fakes.recorder import Recorder
from tests.fakes.venues.binance import API_KEY, API_SECRET, FakeBinance
from tests.fakes.venues.bybit import API_KEY as BYBIT_KEY
from tests.fakes.venues.bybit import API_SECRET as BYBIT_SECRET
from tests.fakes.venues.bybit import FakeBybit
from tests.harness import mqtt_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mlthon",
        "--log-level",
        "INFO",
        *args,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(15):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return out.decode(errors="replace")


def binance_frames() -> tuple[dict[str, Any], list[str]]:
    frames: list[str] = []
    snap: dict[str, Any] = {}
    with gzip.open(SHARED_DATA / "hftbacktest/binance_usdm_futures/btcusdt_20240808.gz", "rt") as f:
        for line in f:
            raw = line.partition(" ")[2].strip()
            if '"stream"' not in raw:
                snap = json.loads(raw)
            elif "@depth" in raw:
                frames.append(raw)
            if snap and len(frames) > 60:
                break
    return snap, frames


async def trade(s: Any, ex: Exchange, iid: int, fx: Any) -> None:
    """Place, modify, fill partly, cancel; plus a reject; all through the strategy API."""
    r = s.strat
    env = s.env
    cid = env.send_new_order(None, ex, iid, Side.Buy, "49000.0", "0.010")
    await s.until("on_new_order_ack", timeout=15)
    assert r.of("on_new_order_ack")[0][1] == str(cid)
    env.send_modify_order(ex, cid, "49001.0", None)
    await s.until("on_modify_order_ack", timeout=15)
    assert r.of("on_modify_order_ack")[0][2] == Price("49001.0")
    await fx.fill(venue_client_id(s.strat.name, str(cid)), qty="0.004")
    await s.until("on_order_execution", timeout=15)
    assert r.of("on_order_execution")[0][4:6] == (Qty("0.004"), Qty("0.006"))
    env.send_cancel_order(ex, iid, cid)
    await s.until("on_order_cancelled", timeout=15)
    env.send_cancel_order(ex, iid, 12345)
    await s.until("on_cancel_order_reject", timeout=15)
    assert r.of("on_cancel_order_reject")[0][2] is GtwRejectCode.UnknownOrder


async def test_strategy_trades_binance_through_gateway_and_feed_processes(
    broker, tmp_path, topic_root
):
    snap, frames = binance_frames()
    async with FakeBinance() as fx:
        fx.depth["BTCUSDT"] = snap
        (tmp_path / "gw.toml").write_text(
            f'[gateway]\nexchange = "BinanceUsdm"\nenvironment = "Testnet"\n'
            f'root = "{topic_root}"\ninstruments = [1001]\nrest_url = "{fx.rest_url}"\n'
            f'ws_url = "{fx.ws_url}"\n[bus]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        )
        (tmp_path / "feed.toml").write_text(
            'exchange = "BinanceUsdm"\ninstrument_ids = [1001]\n'
            f'[source]\nkind = "live"\nws_url = "{fx.ws_url}"\nrest_url = "{fx.rest_url}"\n'
            f'[bus]\nhost = "127.0.0.1"\nport = {broker.port}\ntopic_root = "{topic_root}"\n'
        )
        gw = await spawn(
            "gateway",
            "--config",
            str(tmp_path / "gw.toml"),
            env={"MLT_BINANCEUSDM_API_KEY": API_KEY, "MLT_BINANCEUSDM_API_SECRET": API_SECRET},
        )
        feed = await spawn("feed", "--config", str(tmp_path / "feed.toml"))
        outs: list[str] = []
        try:
            strat = Recorder("s1")
            async with mqtt_system(broker.port, topic_root, strat) as s:
                await s.until("on_strat_params_update", timeout=20)
                await wait_until(
                    lambda: (
                        s.env.gateway_status(Exchange.BinanceUsdm) is not None
                        and s.env.gateway_status(Exchange.BinanceUsdm).name == "ReadyToTrade"
                    ),
                    30,
                    "gateway ready",
                )
                s.env.subscribe(Exchange.BinanceUsdm, 1001, MDSub.BBO)
                # The subscription is on the broker once the bus's outbox is drained (the writer
                # waits for the SUBACK): only then may the venue start streaming.
                assert await s.strat_bus.flush()
                await wait_until(lambda: fx.market_ws and "BTCUSDT" in fx.depth_requests, 30)
                for raw in frames:
                    await fx.push_market(raw)
                await wait_until(lambda: strat.of("on_best_bid_level_update"), 30, "live BBO")
                assert any(
                    a[1] is FeedHandlerStatus.SnapshotEnd
                    for a in strat.of("on_feed_handler_status")
                )
                await trade(s, Exchange.BinanceUsdm, 1001, fx)
        finally:
            outs.append(await stop(feed))
            outs.append(await stop(gw))
        assert gw.returncode == 0, outs[1]
        assert API_SECRET not in "".join(outs)


async def test_strategy_trades_bybit_through_gateway_process(broker, tmp_path, topic_root):
    async with FakeBybit() as fx:
        (tmp_path / "key").write_text(BYBIT_KEY)
        (tmp_path / "secret").write_text(BYBIT_SECRET)
        (tmp_path / "gw.toml").write_text(
            f'[gateway]\nexchange = "Bybit"\nenvironment = "Testnet"\nroot = "{topic_root}"\n'
            f'instruments = [2001]\nrest_url = "{fx.rest_url}"\nws_url = "{fx.private_url}"\n'
            f'api_key_file = "{tmp_path / "key"}"\napi_secret_file = "{tmp_path / "secret"}"\n'
            f'[bus]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        )
        gw = await spawn("gateway", "--config", str(tmp_path / "gw.toml"))
        try:
            strat = Recorder("s1")
            async with mqtt_system(broker.port, topic_root, strat, use=[2001]) as s:
                await s.until("on_strat_params_update", timeout=20)
                await wait_until(
                    lambda: (
                        s.env.gateway_status(Exchange.Bybit) is not None
                        and s.env.gateway_status(Exchange.Bybit).name == "ReadyToTrade"
                    ),
                    30,
                    "gateway ready",
                )
                await trade(s, Exchange.Bybit, 2001, fx)
        finally:
            out = await stop(gw)
        assert gw.returncode == 0, out
        assert BYBIT_SECRET not in out
