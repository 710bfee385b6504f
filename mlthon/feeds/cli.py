"""Entry points of ``mlthon feed`` and ``mlthon record`` (wired by ``mlthon.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import logging
import signal
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path

import attrs

from mlthon.basics.errors import MlthonError
from mlthon.feeds.feed_config import FeedBus, FeedFile, load_feed_file
from mlthon.feeds.handler import FeedConfig, build_source, run_feed
from mlthon.feeds.record import iter_raw_messages, record
from mlthon.infra.bus.bus import BusBase, Handler, Subscription
from mlthon.infra.bus.messages import Msg
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveClock, LiveScheduler
from mlthon.infra.loop import run_process
from mlthon.infra.ops.heartbeat import DEGRADED, feed_will
from mlthon.infra.ops.metering import MeteredBus
from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status, metered_stats
from mlthon.infra.security import add_bus_args

log = logging.getLogger(__name__)


class CountingBus(BusBase):
    """A bus that only counts what is published (``mlthon feed --dry-run``)."""

    def __init__(self) -> None:
        super().__init__()
        self.published = 0
        self.retained: dict[str, Msg] = {}

    @property
    def connected(self) -> bool:
        return True

    def publish(self, topic: str, msg: Msg, *, qos: int = 0, retain: bool = False) -> None:
        self.published += 1
        if retain:
            self.retained[topic] = msg

    def subscribe(self, pattern: str, handler: Handler, *, qos: int = 0) -> Subscription:
        return Subscription(pattern, handler, qos)

    def unsubscribe(self, sub: Subscription) -> None:
        sub.active = False


def _mqtt_bus(cfg: FeedConfig, login: FeedBus) -> BusBase:
    from mlthon.infra.bus.mqtt import MqttBus  # imported here: paho only when used

    root = cfg.topic_root.replace("/", "_")
    return MqttBus(
        cfg.mqtt_host,
        cfg.mqtt_port,
        # One feed per exchange and topic root: a second one is told (the bus's takeover check).
        client_id=f"mlthon-feed-{cfg.exchange.name}-{root}",
        # ops (issue 7): strategies hear Disconnected if this process dies.
        will=feed_will(Topics(cfg.topic_root), cfg.exchange),
        **login.client_options(cfg.exchange),
    )


async def _feed(
    cfg: FeedConfig, dry_run: bool, speed: float | None, login: FeedBus | None = None
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-POSIX loops
            loop.add_signal_handler(sig, stop.set)
    bus: BusBase = CountingBus() if dry_run else _mqtt_bus(cfg, login or FeedBus())
    topics = Topics(cfg.topic_root)
    async with bus:
        # ops (issue 7): counted traffic, heartbeat and `mlthon kill`.
        metered = MeteredBus(bus, LiveClock())
        ops = ProcessOps(
            bus,
            LiveScheduler(loop=loop),
            topics,
            kind="feed",
            name=cfg.exchange.name,
            stop=stop,
            stats=metered_stats(metered),
        )
        await _connected(bus)  # QoS 0 market data published before the connection is lost
        ops.start(DEGRADED, f"{cfg.source} source starting")
        follow_venue_status(ops, bus, topics, "feed", cfg.exchange)
        n = await run_feed(
            metered,
            topics,
            build_source(cfg),
            speed=speed,
            stop=stop,
            clock=LiveClock(),
            exchange=cfg.exchange,
            heartbeat_s=cfg.heartbeat_s,
        )
        ops.close("stopped" if stop.is_set() else "source finished")
        await _flush(bus)
    log.info("feed: published %d messages", n)
    return n


async def _connected(bus: BusBase, timeout_s: float = 10.0) -> None:
    """Wait for the broker before publishing (ops, issue 7)."""
    from mlthon.infra.bus.mqtt import MqttBus

    if isinstance(bus, MqttBus):
        try:
            await bus.wait_connected(timeout_s)
        except TimeoutError:
            log.warning("feed: no broker after %.0fs; publishing anyway", timeout_s)


async def _flush(bus: BusBase) -> None:
    """Let the last statuses reach the broker before disconnecting (ops, issue 7)."""
    from mlthon.infra.bus.mqtt import MqttBus

    if isinstance(bus, MqttBus):
        with contextlib.suppress(TimeoutError):
            await bus.flush(2.0)


def feed_main(argv: list[str]) -> int:
    """``mlthon feed --config feed.toml [--speed X|max] [--dry-run]``; returns the exit code."""
    ap = argparse.ArgumentParser(
        prog="mlthon feed",
        description="Run a market-data feed handler: a replay or a synthetic market (a live "
        'venue with [source] kind = "live": docs/exchanges.md).',
        epilog="example:\n  mlthon feed --config feed.toml --speed 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--config", required=True, type=Path, help="feed TOML file")
    ap.add_argument(
        "--speed", help="a multiple of recorded speed, or max (default: the config's speed)"
    )
    ap.add_argument("--dry-run", action="store_true", help="count messages, publish nothing")
    add_bus_args(ap, overrides=True)
    args = ap.parse_args(argv)
    try:
        feed = with_bus_args(load_feed_file(args.config), args)
        cfg = feed.config
        if cfg is None:
            raise MlthonError(f"{args.config}: a {feed.kind} feed is run by the live feed process")
        speed = cfg.speed
        if args.speed is not None:
            speed = None if args.speed in ("max", "0") else float(args.speed)
        run_process(_feed(cfg, args.dry_run, speed, feed.bus))
    except (MlthonError, ValueError) as exc:
        log.error("feed: %s", exc)
        return 2
    return 0


def _merged(paths: list[Path]) -> Iterator[tuple[int, bytes]]:
    return heapq.merge(*(iter_raw_messages(p) for p in paths), key=itemgetter(0))


def with_bus_args(feed: FeedFile, a: argparse.Namespace) -> FeedFile:
    """``feed`` with its ``[bus]`` table overridden by the connection options given
    (:func:`~mlthon.infra.security.add_bus_args`): ``mlthon feed``, replay and live alike."""
    bus = feed.bus
    given = {
        "host": a.host,
        "port": a.port,
        "root": a.root,
        "username": a.user,
        "password_file": a.password_file,
        "tls_ca": a.tls_ca,
    }
    return attrs.evolve(
        feed, bus=attrs.evolve(bus, **{k: v for k, v in given.items() if v is not None})
    )


def record_main(argv: list[str]) -> int:
    """``mlthon record --from FILE [FILE ...] --out OUT.gz``: re-record venue messages of
    recordings (merged by receive time) as a raw ``<recv_ns> <json>`` gzip capture."""
    ap = argparse.ArgumentParser(
        prog="mlthon record",
        description="Re-record the venue messages of recordings (merged by receive time) in "
        "the raw capture format: one <recv_ns> <json> line each, gzipped.",
        epilog="example:\n  mlthon record --from depth.gz trades.gz --out btcusdt.raw.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--from",
        dest="sources",
        nargs="+",
        required=True,
        type=Path,
        metavar="FILE",
        help="the recordings to read (docs/market-data.md lists the formats)",
    )
    ap.add_argument("--out", required=True, type=Path, help="the capture to write (.gz)")
    args = ap.parse_args(argv)
    try:
        n = record(_merged(args.sources), args.out)
    except (MlthonError, OSError, ValueError) as exc:
        log.error("record: %s", exc)
        return 2
    log.info("record: wrote %d messages to %s", n, args.out)
    return 0
