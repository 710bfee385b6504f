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
from pathlib import Path
from typing import Any

from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange, FeedHandlerStatus
from mlthon.feeds.feed_config import FeedBus, load_feed_file
from mlthon.feeds.heartbeat import HeartbeatSender
from mlthon.feeds.live import LiveFeedBase, bus_sink
from mlthon.infra.bus.messages import FeedStatus, Msg
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Clock, LiveClock, LiveScheduler
from mlthon.infra.loop import run_process
from mlthon.infra.ops.heartbeat import DEGRADED, feed_will
from mlthon.infra.ops.metering import MeteredBus
from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status, metered_stats
from mlthon.infra.security import add_bus_args

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


def load_live_feed_config(
    path: str | Path, overrides: argparse.Namespace | None = None
) -> dict[str, Any]:
    """Read a live feed config (see the module docstring and
    :mod:`mlthon.feeds.feed_config`, its schema) into plain values; ``overrides``: the
    command line's connection options, which replace the ``[bus]`` table's.

    Raises:
        ConfigError: unreadable file, bad TOML, not a live feed, or a bad key or value (file,
            key and value named).
    """
    feed = load_feed_file(path)
    if overrides is not None:
        from mlthon.feeds.cli import with_bus_args

        feed = with_bus_args(feed, overrides)
    if feed.live is None:
        raise ConfigError(
            f'is a {feed.kind} feed, not a live one ([source] kind = "live")',
            source=str(path),
            key="source.kind",
        )
    return {
        "exchange": feed.exchange,
        "instruments": feed.instruments,
        **feed.live,
        "host": feed.bus.host,
        "port": feed.bus.port,
        "root": feed.bus.root,
        "login": feed.bus,
    }


def live_feed_main(argv: list[str], shutdown: asyncio.Event | None = None) -> int:
    """Entry point for a live feed process.

    Returns:
        0 on a clean stop, 2 on a configuration error, 1 on another mlthon error.
    """
    p = argparse.ArgumentParser(
        prog="mlthon feed",
        description="Run a live venue feed on MQTT.",
        epilog="example:\n  mlthon feed --config binance_feed.toml --port 1883",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="live feed TOML file (docs/exchanges.md)")
    add_bus_args(p, overrides=True)
    args = p.parse_args(argv)
    try:
        cfg = load_live_feed_config(args.config, args)
    except ConfigError as exc:
        sys.stderr.write(f"mlthon feed: {exc}\n")
        return 2
    try:
        run_process(_run(cfg, shutdown))
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
    login: FeedBus = cfg.get("login") or FeedBus()
    bus = MqttBus(
        cfg["host"],
        cfg["port"],
        client_id=f"mlthon-feed-{exchange.name}-{topics.root.replace('/', '_')}",
        will=feed_will(topics, exchange),  # strategies hear Disconnected if this process dies
        **login.client_options(exchange),
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
