"""``mlthon feed --config live_feed.toml`` for a real venue: a live feed published on MQTT.

::

    exchange = "BinanceUsdm"        # or "Bybit"
    environment = "Mainnet"         # Testnet | Demo | Mainnet (market data: see docs/exchanges.md)
    instruments_file = "x.toml"     # optional: the packaged file
    instrument_ids = [1001]         # optional: every instrument of the exchange
    silence_timeout_s = 30
    [source]
    kind = "live"
    ws_url = ""                     # optional overrides (tests, proxies)
    rest_url = ""
    depth = 50                      # Bybit book depth
    heartbeat_s = 5                 # strategies count the feed stale after this silence (5 s)
    [bus]
    host = "127.0.0.1"
    port = 1883
    topic_root = "mlt"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange, FeedHandlerStatus
from mlthon.feeds.heartbeat import HeartbeatSender, heartbeat_limit
from mlthon.feeds.live import LiveFeedBase, bus_sink
from mlthon.infra.bus.messages import FeedStatus, Msg
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Clock, LiveClock, LiveScheduler
from mlthon.infra.instruments import load_instruments
from mlthon.infra.ops.heartbeat import DEGRADED, feed_will
from mlthon.infra.ops.metering import MeteredBus
from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status, metered_stats
from mlthon.infra.security import bus_login, feed_user

log = logging.getLogger(__name__)

LIVE_FEEDS = (Exchange.BinanceUsdm, Exchange.Bybit)


def build_live_feed(
    exchange: Exchange,
    instruments: list[Instrument],
    emit: Any,
    clock: Clock,
    *,
    environment: Environment = Environment.Mainnet,
    ws_url: str = "",
    rest_url: str = "",
    depth: int = 50,
    silence_timeout_s: float = 30.0,
) -> LiveFeedBase:
    """The live feed of one exchange.

    Raises:
        ConfigError: no live feed for that exchange.
    """
    if exchange is Exchange.BinanceUsdm:
        from mlthon.feeds.binance_usdm.handler import BinanceUsdmFeed

        return BinanceUsdmFeed(
            instruments,
            emit,
            clock.now_ns,
            environment=environment,
            ws_url=ws_url,
            rest_url=rest_url,
            silence_timeout_s=silence_timeout_s,
        )
    if exchange is Exchange.Bybit:
        from mlthon.feeds.bybit_v5.handler import BybitV5Feed

        return BybitV5Feed(
            instruments,
            emit,
            clock.now_ns,
            environment=environment,
            ws_url=ws_url,
            depth=depth,
            silence_timeout_s=silence_timeout_s,
        )
    raise ConfigError(f"no live feed for {exchange.name}", key="exchange")


def load_live_feed_config(path: str | Path) -> dict[str, Any]:
    """Read a live feed config (see the module docstring) into plain values.

    Raises:
        ConfigError: unreadable file, bad TOML or a bad value.
    """
    p = Path(path)
    src = str(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=src) from exc
    try:
        exchange = Exchange.from_name(str(data.get("exchange", "")))
        environment = Environment.from_name(str(data.get("environment", "Mainnet")))
    except ValueError as exc:
        raise ConfigError(str(exc), source=src, key="exchange") from exc
    inst_file = data.get("instruments_file")
    insts = [
        i
        for i in load_instruments(p.parent / inst_file if inst_file else None)
        if i.exchange is exchange
    ]
    ids = data.get("instrument_ids")
    if ids is not None:
        insts = [i for i in insts if i.instrument_id in ids]
    if not insts:
        raise ConfigError(f"no instrument on {exchange.name}", source=src, key="instrument_ids")
    source = data.get("source", {})
    bus = data.get("bus", {})
    if not isinstance(source, dict) or not isinstance(bus, dict):
        raise ConfigError("[source] and [bus] must be tables", source=src)
    return {
        "exchange": exchange,
        "environment": environment,
        "instruments": insts,
        "silence_timeout_s": float(data.get("silence_timeout_s", 30.0)),
        "ws_url": str(source.get("ws_url", "")),
        "rest_url": str(source.get("rest_url", "")),
        "depth": int(source.get("depth", 50)),
        "heartbeat_s": heartbeat_limit(source.get("heartbeat_s"), "live", src),
        "host": str(bus.get("host", "127.0.0.1")),
        "port": int(bus.get("port", 1883)),
        "root": str(bus.get("topic_root", "mlt")),
    }


def live_feed_main(argv: list[str], shutdown: asyncio.Event | None = None) -> int:
    """Entry point for a live feed process.

    Returns:
        0 on a clean stop, 2 on a configuration error, 1 on another mlthon error.
    """
    p = argparse.ArgumentParser(prog="mlthon feed", description="Run a live venue feed on MQTT.")
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    try:
        cfg = load_live_feed_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"mlthon feed: {exc}\n")
        return 2
    try:
        asyncio.run(_run(cfg, shutdown))
    except MlthonError as exc:
        log.error("live feed failed: %s", exc)
        return 1
    return 0


async def _run(cfg: dict[str, Any], shutdown: asyncio.Event | None) -> None:
    from mlthon.infra.bus.mqtt import MqttBus

    stop = shutdown or asyncio.Event()
    if shutdown is None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    clock = LiveClock()
    topics = Topics(cfg["root"])
    exchange: Exchange = cfg["exchange"]
    user, password = bus_login(feed_user(exchange.name))
    bus = MqttBus(
        cfg["host"],
        cfg["port"],
        client_id=f"mlthon-feed-{exchange.name}-{topics.root.replace('/', '_')}",
        will=feed_will(topics, exchange),  # strategies hear Disconnected if this process dies
        username=user,
        password=password,
    )
    async with bus:
        # Market data go out at QoS 0 and are dropped while the broker is not connected: the
        # venue is not opened (its snapshot not taken) before the bus is up.
        await bus.wait_connected(30.0)
        # ops: counted traffic, heartbeat on status/feed/<EX>, `mlthon kill`
        metered = MeteredBus(bus, clock)
        ops = ProcessOps(
            bus,
            LiveScheduler(loop=asyncio.get_running_loop()),
            topics,
            kind="feed",
            name=exchange.name,
            stop=stop,
            stats=metered_stats(metered),
        )
        ops.start(DEGRADED, f"{exchange.name} live feed starting")
        follow_venue_status(ops, bus, topics, "feed", exchange)
        emit = bus_sink(metered, topics)
        # Alive, whether or not the venue sends anything: strategies tell a frozen process.
        beats = HeartbeatSender(
            metered, LiveScheduler(clock), topics, cfg["heartbeat_s"], (exchange,)
        )
        beats.start()

        def status(s: FeedHandlerStatus, detail: str) -> Msg:
            return FeedStatus(ex=exchange.value, iid=0, status=s, detail=detail, ts=clock.now_ns())

        emit(status(FeedHandlerStatus.SnapshotStart, f"{exchange.name} live feed starting"))
        feed = build_live_feed(
            exchange,
            cfg["instruments"],
            emit,
            clock,
            environment=cfg["environment"],
            ws_url=cfg["ws_url"],
            rest_url=cfg["rest_url"],
            depth=cfg["depth"],
            silence_timeout_s=cfg["silence_timeout_s"],
        )
        try:
            await feed.run(stop)
        finally:
            beats.stop()
            emit(status(FeedHandlerStatus.Disconnected, "feed stopped"))
            ops.close()
            await bus.flush()
