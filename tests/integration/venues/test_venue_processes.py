"""End to end over mosquitto: the live gateway and feed processes (``gateway_main`` /
``live_feed_main`` in subprocesses) against the fake venues, driven like a strategy would."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus, Side
from mlthon.gateways.live.gateway import venue_client_id
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus.messages import (
    BookUpdate,
    CancelOrder,
    ComponentStatus,
    FeedStatus,
    GatewayStatus,
    ModifyOrder,
    ModifyOrderAck,
    Msg,
    NewOrder,
    NewOrderAck,
    OrderCancelled,
    OrderExecution,
)
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import REPO, SHARED_DATA, wait_until
from tests.fakes.venues.binance import API_KEY, API_SECRET, FakeBinance
from tests.fakes.venues.bybit import API_KEY as BYBIT_KEY
from tests.fakes.venues.bybit import API_SECRET as BYBIT_SECRET
from tests.fakes.venues.bybit import FakeBybit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _spawn(code: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _terminate(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return out.decode(errors="replace")


class Client:
    """A strategy's view of the bus: publish requests, collect reports and statuses."""

    def __init__(self, bus: MqttBus, topics: Topics, exchange: Exchange) -> None:
        self.bus, self.topics, self.exchange = bus, topics, exchange
        self.msgs: list[Msg] = []
        bus.subscribe(topics.gtw_rpt(exchange, "s1"), lambda t, m: self.msgs.append(m), qos=1)
        bus.subscribe(topics.gtw_status(exchange), lambda t, m: self.msgs.append(m), qos=1)
        bus.subscribe(topics.component_status_all(), lambda t, m: self.msgs.append(m), qos=1)

    def send(self, msg: Msg) -> None:
        self.bus.publish(self.topics.gtw_req(self.exchange, msg.strat), msg, qos=1)

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.msgs if isinstance(m, kind)]

    def heartbeat(self, kind: str, state: str = "up") -> bool:
        """A heartbeat of ``kind`` for this exchange in ``state`` arrived."""
        return any(
            isinstance(m, ComponentStatus)
            and (m.kind, m.name, m.state) == (kind, self.exchange.name, state)
            for m in self.msgs
        )

    def ready(self) -> bool:
        return any(
            isinstance(m, GatewayStatus) and m.status is GtwStatus.ReadyToTrade for m in self.msgs
        )


@pytest.fixture
async def bus(broker: MosquittoBroker) -> AsyncIterator[MqttBus]:
    async with MqttBus(broker.host, broker.port, client_id="test-strategy") as b:
        await b.wait_connected()
        yield b


def _gateway_code(config: Path) -> str:
    return (
        "import logging, sys; logging.basicConfig(level=logging.INFO);"
        "from mlthon.gateways.live.cli import gateway_main;"
        f"sys.exit(gateway_main(['--config', {str(config)!r}]))"
    )


async def _status_json(broker: MosquittoBroker, root: str) -> dict[str, Any]:
    """What ``mlthon status --json`` prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mlthon", "status", "--json", "--port", str(broker.port),
        "--root", root, cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    data: dict[str, Any] = json.loads(out)
    return data


async def _trade_round(c: Client, iid: int, fill: Any, link: str) -> None:
    c.send(
        NewOrder(
            strat="s1", cl_id="o1", instrument_id=iid, side=Side.Buy, price="49000.0", qty="0.010"
        )
    )
    await wait_until(lambda: c.of(NewOrderAck), 30, "ack over MQTT")
    c.send(ModifyOrder(strat="s1", cl_id="o1", new_price="49001.0"))
    await wait_until(lambda: c.of(ModifyOrderAck), 30, "modify ack")
    await fill(link, qty="0.004")
    await wait_until(lambda: c.of(OrderExecution), 30, "fill over MQTT")
    c.send(CancelOrder(strat="s1", cl_id="o1", instrument_id=iid))
    await wait_until(lambda: c.of(OrderCancelled), 30, "cancel over MQTT")
    assert c.of(OrderExecution)[0].leaves_qty == "0.006"


async def test_binance_gateway_process_over_mosquitto(
    broker: MosquittoBroker, bus: MqttBus, tmp_path: Path, topic_root: str
) -> None:
    async with FakeBinance() as fx:
        cfg = tmp_path / "gw.toml"
        cfg.write_text(
            f'[gateway]\nexchange = "BinanceUsdm"\nenvironment = "Testnet"\nroot = "{topic_root}"\n'
            f'instruments = [1001]\nrest_url = "{fx.rest_url}"\nws_url = "{fx.ws_url}"\n'
            f'reconnect_max_s = 0.2\n[bus]\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        c = Client(bus, Topics(topic_root), Exchange.BinanceUsdm)
        proc = await _spawn(
            _gateway_code(cfg),
            {"MLT_BINANCEUSDM_API_KEY": API_KEY, "MLT_BINANCEUSDM_API_SECRET": API_SECRET},
        )
        try:
            await wait_until(c.ready, 30, "gateway ready")
            await wait_until(lambda: c.heartbeat("gateway"), 30, "the gateway's heartbeat")
            status = await _status_json(broker, topic_root)
            (gw,) = [x for x in status["components"] if x["kind"] == "gateway"]
            assert (gw["name"], gw["state"]) == ("BinanceUsdm", "up"), status
            await _trade_round(c, 1001, fx.fill, venue_client_id("s1", "o1"))
            # a disconnect mid-order: nothing lost, nothing twice
            c.send(
                NewOrder(
                    strat="s1",
                    cl_id="o2",
                    instrument_id=1001,
                    side=Side.Buy,
                    price="49000.0",
                    qty="0.010",
                )
            )
            await wait_until(lambda: len(c.of(NewOrderAck)) == 2, 30, "second ack")
            fx.hold_pushes = True
            await fx.drop_user_streams()
            await fx.fill(venue_client_id("s1", "o2"))
            fx.hold_pushes = False
            await wait_until(lambda: len(c.of(OrderExecution)) == 2, 30, "reconciled fill")
            await fx.push_raw_user(fx.lost)
            c.send(
                NewOrder(
                    strat="s1",
                    cl_id="o3",
                    instrument_id=1001,
                    side=Side.Buy,
                    price="48000.0",
                    qty="0.010",
                )
            )
            await wait_until(lambda: len(c.of(NewOrderAck)) == 3, 30, "third ack")
        finally:
            out = await _terminate(proc)
        assert proc.returncode == 0, out
        assert len(c.of(OrderExecution)) == 2
        assert fx.orders[venue_client_id("s1", "o3")].status == "CANCELED"  # cancelled on stop
        assert c.heartbeat("gateway", "down")
        assert API_SECRET not in out and API_KEY not in out


async def test_bybit_gateway_process_over_mosquitto(
    broker: MosquittoBroker, bus: MqttBus, tmp_path: Path, topic_root: str
) -> None:
    async with FakeBybit() as fx:
        cfg = tmp_path / "gw.toml"
        (tmp_path / "key").write_text(BYBIT_KEY)
        (tmp_path / "secret").write_text(BYBIT_SECRET)
        cfg.write_text(
            f'[gateway]\nexchange = "Bybit"\nenvironment = "Testnet"\nroot = "{topic_root}"\n'
            f'instruments = [2001]\nrest_url = "{fx.rest_url}"\nws_url = "{fx.private_url}"\n'
            f'api_key_file = "{tmp_path / "key"}"\napi_secret_file = "{tmp_path / "secret"}"\n'
            f'[bus]\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        c = Client(bus, Topics(topic_root), Exchange.Bybit)
        proc = await _spawn(_gateway_code(cfg), {})
        try:
            await wait_until(c.ready, 30, "gateway ready")
            await _trade_round(c, 2001, fx.fill, venue_client_id("s1", "o1"))
        finally:
            out = await _terminate(proc)
        assert proc.returncode == 0, out
        assert BYBIT_SECRET not in out


async def test_gateway_process_without_keys_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[gateway]\nexchange = "BinanceUsdm"\nenvironment = "Testnet"\n')
    env = dict.fromkeys(("MLT_BINANCEUSDM_API_KEY", "MLT_BINANCEUSDM_API_SECRET"), "")
    proc = await _spawn(_gateway_code(cfg), env)
    async with asyncio.timeout(20):
        raw, _ = await proc.communicate()
    out = raw.decode(errors="replace")
    assert proc.returncode == 2 and "MLT_BINANCEUSDM_API_KEY" in out


async def test_binance_live_feed_process_over_mosquitto(
    broker: MosquittoBroker, bus: MqttBus, tmp_path: Path, topic_root: str
) -> None:
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
    async with FakeBinance() as fx:
        fx.depth["BTCUSDT"] = snap
        cfg = tmp_path / "feed.toml"
        cfg.write_text(
            'exchange = "BinanceUsdm"\ninstrument_ids = [1001]\n'
            f'[source]\nkind = "live"\nws_url = "{fx.ws_url}"\nrest_url = "{fx.rest_url}"\n'
            f'[bus]\nhost = "{broker.host}"\nport = {broker.port}\ntopic_root = "{topic_root}"\n'
        )
        topics = Topics(topic_root)
        got: list[Msg] = []
        bus.subscribe(topics.md(Exchange.BinanceUsdm, 1001), lambda t, m: got.append(m))
        # On the broker before the feed can publish (the writer waits for the SUBACK).
        assert await bus.flush()
        proc = await _spawn(
            "import sys; from mlthon.feeds.live_cli import live_feed_main;"
            f"sys.exit(live_feed_main(['--config', {str(cfg)!r}]))",
            {},
        )
        synced = False
        try:
            await wait_until(lambda: fx.market_ws and "BTCUSDT" in fx.depth_requests, 30)
            for raw in frames:
                await fx.push_market(raw)
            with contextlib.suppress(AssertionError):
                await wait_until(
                    lambda: any(
                        isinstance(m, FeedStatus) and m.status is FeedHandlerStatus.SnapshotEnd
                        for m in got
                    ),
                    30,
                    "book synced over MQTT",
                )
                await wait_until(lambda: any(isinstance(m, BookUpdate) for m in got[3:]), 30)
                synced = True
            # the feed heartbeats: `mlthon status` sees it up while it streams
            status = await _status_json(broker, topic_root)
            feeds = [x for x in status["components"] if x["kind"] == "feed"]
        finally:
            out = await _terminate(proc)
        assert synced, f"no synced book over MQTT; got {got[:5]}; feed output:\n{out}"
        assert proc.returncode == 0, out
        assert [(x["name"], x["state"]) for x in feeds] == [("BinanceUsdm", "up")], status
        assert Decimal(0) < Decimal(len(got))
