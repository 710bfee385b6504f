"""The feed-handler process core: publish a message source on the bus, at a chosen speed.

* :func:`run_feed` publishes every message of a source (a replay, the synthetic market, later a
  live venue) on ``topics.md(exchange, iid)`` with QoS 0, and the feed-wide status (``iid`` 0)
  retained on ``topics.feed_status(exchange)`` (and on the md topics of that venue, so that it
  stays in order with the book events).
* ``mlthon.feeds.feed_config.load_feed_file`` reads ``feed.toml``; :func:`build_source` turns
  it into a message iterator.
* With ``heartbeat_s``, :func:`run_feed` also publishes ``FeedHeartbeat`` every
  ``heartbeat_s / 4`` on ``topics.feed_heartbeat(exchange)`` (:mod:`mlthon.feeds.heartbeat`),
  whether or not the market moves.

Feed-wide status meaning: ``SnapshotStart`` = the feed is starting, ``SnapshotEnd`` = it is
streaming, ``Disconnected`` = it stopped (end of a replay, shutdown) or lost its venue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.feeds.heartbeat import HeartbeatSender
from mlthon.feeds.mirror import BookMirror
from mlthon.feeds.replay import replay_files
from mlthon.feeds.synthetic import synthetic_market
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.messages import (
    ADD,
    ASK,
    BID,
    BookUpdate,
    FeedStatus,
    LevelUpdate,
    Msg,
    SnapshotRequest,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Clock, LiveScheduler

log = logging.getLogger(__name__)

NS = 1_000_000_000
_YIELD_EVERY = 256


async def _pause(stop: asyncio.Event, delay_ns: int) -> None:
    """Wait ``delay_ns`` or until ``stop`` is set, whichever comes first."""
    try:
        async with asyncio.timeout(delay_ns / NS):
            await stop.wait()
    except TimeoutError:
        pass


async def run_feed(
    bus: BusBase,
    topics: Topics,
    source_iter: Iterable[Msg],
    *,
    speed: float | None,
    stop: asyncio.Event,
    clock: Clock,
    exchange: Exchange | None = None,
    heartbeat_s: float | None = None,
) -> int:
    """Publish every message of ``source_iter`` until it ends or ``stop`` is set.

    Args:
        bus: where to publish.
        topics: the topic layout.
        source_iter: market-data messages in receive-time order (``ts`` in ns).
        speed: None or 0: as fast as possible; 1.0: at recorded speed; 10.0: ten times faster.
        stop: set it to end the feed early.
        clock: the clock pacing uses (the only time source read here).
        exchange: the venue, for the feed-wide status before the first message (optional).
        heartbeat_s: the feed's heartbeat limit: a ``FeedHeartbeat`` every ``heartbeat_s / 4``
            for ``exchange`` and every venue of the source, on the wall clock of ``clock``
            (None: no heartbeat).

    Returns:
        The number of messages published (statuses of the feed itself excluded).
    """
    # Market data is QoS 0: published while the broker is away it would be lost, so the feed
    # starts streaming only once connected.
    await bus.wait_connected(30.0)
    responder = SnapshotResponder(bus, topics, clock)
    responder.start()
    seen_ex: dict[int, list[str]] = {}

    def feed_status(ex: Exchange, status: FeedHandlerStatus, detail: str) -> None:
        msg = FeedStatus(ex=ex.value, iid=0, status=status, detail=detail, ts=clock.now_ns())
        bus.publish(topics.feed_status(ex), msg, qos=1, retain=True)
        for t in seen_ex.get(ex.value, []):
            bus.publish(t, msg)

    beats: HeartbeatSender | None = None
    if heartbeat_s:
        beats = HeartbeatSender(
            bus,
            LiveScheduler(clock),
            topics,
            heartbeat_s,
            (exchange,) if exchange is not None else (),
        )
        beats.start()
    if exchange is not None:
        feed_status(exchange, FeedHandlerStatus.SnapshotStart, f"{exchange.name} feed starting")
    md_topics: dict[tuple[int, int], str] = {}
    published = 0
    first_ts: int | None = None
    wall0 = 0
    pace = speed is not None and speed > 0
    try:
        for msg in source_iter:
            if stop.is_set():
                break
            ts: int = msg.ts  # type: ignore[attr-defined]
            if pace:
                assert speed is not None
                if first_ts is None:
                    first_ts = ts
                    wall0 = clock.now_ns()
                delay = wall0 + int((ts - first_ts) / speed) - clock.now_ns()
                if delay > 0:
                    await _pause(stop, delay)
                    if stop.is_set():
                        break
            elif published % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            ex_v: int = msg.ex  # type: ignore[attr-defined]
            iid: int = msg.iid  # type: ignore[attr-defined]
            if ex_v not in seen_ex:
                seen_ex[ex_v] = []
                ex = Exchange(ex_v)
                if beats is not None:
                    beats.add(ex)
                log.info("feed: %s streaming", ex.name)
                feed_status(ex, FeedHandlerStatus.SnapshotEnd, f"{ex.name} feed streaming")
            if iid == 0:
                feed_status(Exchange(ex_v), msg.status, msg.detail)  # type: ignore[attr-defined]
                continue
            key = (ex_v, iid)
            topic = md_topics.get(key)
            if topic is None:
                topic = md_topics[key] = topics.md(Exchange(ex_v), iid)
                seen_ex[ex_v].append(topic)
            bus.publish(topic, msg)
            responder.mirror.apply(msg)
            published += 1
    finally:
        if beats is not None:
            beats.stop()
    responder.stop()
    why = "stopped" if stop.is_set() else "source finished"
    for ex_v in seen_ex or ([exchange.value] if exchange is not None else []):
        feed_status(Exchange(ex_v), FeedHandlerStatus.Disconnected, f"feed {why}")
    log.info("feed: %s after %d messages", why, published)
    return published


class SnapshotResponder:
    """Answers ``SnapshotRequest`` messages with the current book of one instrument.

    A strategy that subscribes after the feed sent its snapshot asks for one; the feed keeps a
    copy of what it published (:class:`~mlthon.feeds.mirror.BookMirror`) and re-sends that book,
    framed by ``SnapshotStart`` / ``SnapshotEnd``, on the instrument's market-data topic. Every
    subscriber of the topic sees it and resets its copy; a book that is not valid right now is
    not sent (its next verified snapshot will be).
    """

    def __init__(self, bus: BusBase, topics: Topics, clock: Clock) -> None:
        self.bus = bus
        self.topics = topics
        self.clock = clock
        self.mirror = BookMirror(check_crossed=False)
        self.answered = 0
        self._sub: Subscription | None = None

    def start(self) -> None:
        self._sub = self.bus.subscribe(self.topics.feed_req_all(), self._on_request, qos=1)

    def stop(self) -> None:
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    def _on_request(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, SnapshotRequest):
            return
        iid = msg.iid
        if not self.mirror.is_valid(iid):
            log.info("feed: snapshot request for %d from %s: book not valid yet", iid, msg.strat)
            return
        try:
            ex = Exchange(msg.ex)
        except ValueError:
            log.warning("feed: snapshot request for unknown exchange %r dropped", msg.ex)
            return
        md = self.topics.md(ex, iid)
        now = self.clock.now_ns()
        detail = f"snapshot for {msg.strat or 'a late subscriber'}"
        self.bus.publish(
            md,
            FeedStatus(
                ex=msg.ex, iid=iid, status=FeedHandlerStatus.SnapshotStart, detail=detail, ts=now
            ),
        )
        lb = self.mirror.level_books.get(iid)
        if lb is not None and len(lb):
            lch = [(ADD, side, lid, t, n) for lid, side, t, n in lb.orders()]
            self.bus.publish(md, LevelUpdate(ex=msg.ex, iid=iid, ts=now, ch=lch))
        else:
            book = self.mirror.book(iid)
            ch = [(ADD, BID, t, n) for t, n in book.depth(BID)]
            ch += [(ADD, ASK, t, n) for t, n in book.depth(ASK)]
            self.bus.publish(md, BookUpdate(ex=msg.ex, iid=iid, ts=now, ch=ch))
        self.bus.publish(
            md,
            FeedStatus(
                ex=msg.ex, iid=iid, status=FeedHandlerStatus.SnapshotEnd, detail=detail, ts=now
            ),
        )
        self.answered += 1


# --- configuration -------------------------------------------------------------------------------
@attrs.frozen
class FeedConfig:
    """What ``mlthon feed --config feed.toml`` runs.

    Attributes:
        exchange: the venue published (also filters the instruments).
        instruments: the instruments to publish.
        source: ``"replay"`` or ``"synthetic"``.
        files: recorded files (replay).
        speed: None for as fast as possible, else a multiple of recorded speed.
        silence_timeout_s: invalidate a book silent for this long (None: off).
        heartbeat_s: the feed's heartbeat limit (``[source] heartbeat_s``; default by source
            kind, :data:`~mlthon.feeds.heartbeat.DEFAULT_HEARTBEAT_S`).
        start_ns / end_ns: replay window.
        seed / duration_s / n_events / start_price: synthetic market settings.
        topic_root: the bus topic root.
        mqtt_host / mqtt_port: the broker.
    """

    exchange: Exchange
    instruments: list[Instrument]
    source: str = "synthetic"
    files: list[Path] = attrs.Factory(list)
    speed: float | None = 1.0
    silence_timeout_s: float | None = None
    heartbeat_s: float = 2.0
    start_ns: int | None = None
    end_ns: int | None = None
    seed: int = 1
    duration_s: float | None = 3600.0
    n_events: int | None = None
    start_price: str = "100"
    start_at_ns: int = 1_700_000_000 * NS
    topic_root: str = "mlt"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883


def build_source(cfg: FeedConfig) -> Iterator[Msg]:
    """The message iterator a config describes (a replay, or one synthetic market per
    instrument merged by time)."""
    if cfg.source == "replay":
        return replay_files(
            cfg.files,
            cfg.instruments,
            start_ns=cfg.start_ns,
            end_ns=cfg.end_ns,
            silence_timeout_s=cfg.silence_timeout_s,
        )
    import heapq
    from operator import attrgetter

    markets = [
        synthetic_market(
            inst,
            seed=cfg.seed + k,
            start_ns=cfg.start_at_ns,
            duration_s=cfg.duration_s,
            n_events=cfg.n_events,
            start_price=cfg.start_price,
        )
        for k, inst in enumerate(cfg.instruments)
    ]
    return heapq.merge(*markets, key=attrgetter("ts"))
