"""The live feed loop shared by every venue: connect, subscribe, sync books, detect silence,
reconnect with capped exponential back-off and jitter.

A venue's ``handler.py`` subclasses :class:`LiveFeedBase` with its URL, subscription, decoder and
resync procedure (Binance: a REST snapshot bridged to the buffered diffs; Bybit: resubscribe the
book topic). Parsed events go through a :class:`~mlthon.feeds.engine.FeedEngine`, which keeps
every book's integrity and emits our bus messages to ``emit``.

* Gap, crossed book or bad data on one instrument -> ``BookInvalid`` for that instrument, and
  :meth:`LiveFeedBase.resync` of that instrument only.
* No frame at all for ``silence_timeout_s`` -> every live book is invalidated (``BookInvalid``,
  "feed silent") and the connection is dropped and reopened.
* A lost connection -> ``FeedStatus(Disconnected)`` for the venue, books back to waiting; each
  (re)connect -> ``FeedStatus(SnapshotEnd, iid=0)`` ("streaming"), then every book resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from mlthon.basics.errors import GatewayError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import Disconnect, Event
from mlthon.feeds.handler import SnapshotResponder
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.messages import FeedStatus, Msg
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Clock, LiveClock
from mlthon.venues.backoff import Backoff
from mlthon.venues.transport import WsConnection, ws_connect

log = logging.getLogger(__name__)

NS = 1_000_000_000


class LiveFeedBase(ABC):
    """One venue's live market-data connection feeding a :class:`FeedEngine`.

    Args:
        instruments: the instruments to subscribe (all of this venue).
        emit: receives every bus message, in order.
        now_ns: the clock (receive times, silence).
        silence_timeout_s: a connection with no frame for this long is declared silent.
        reconnect_max_s: cap of the reconnect back-off.
        resync_min_interval_s: least time between two resyncs of one instrument.
        rng: the jitter's random source.
        logger: where to log.
    """

    exchange: Exchange = Exchange.Unset

    def __init__(
        self,
        instruments: list[Instrument],
        emit: Callable[[Msg], None],
        now_ns: Callable[[], int],
        *,
        silence_timeout_s: float = 30.0,
        reconnect_max_s: float = 30.0,
        resync_min_interval_s: float = 1.0,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.instruments = [i for i in instruments if i.exchange is self.exchange]
        self.by_symbol = {i.name.upper(): i for i in self.instruments}
        self.now_ns = now_ns
        self._emit = emit
        self.log = logger or log
        self.silence_timeout_s = silence_timeout_s
        self.resync_min_interval_s = resync_min_interval_s
        self.engine = FeedEngine(
            self.instruments,
            emit,
            silence_timeout_ns=int(silence_timeout_s * NS),
            on_snapshot_needed=self._on_snapshot_needed,
            logger=self.log,
        )
        self.backoff = Backoff(base_s=0.2, cap_s=reconnect_max_s, rng=rng)
        self.connects = 0
        self.resyncs: list[str] = []
        self._conn: WsConnection | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_resync: dict[int, int] = {}
        self._pending_resync: set[int] = set()
        self._scheduled: set[int] = set()

    @property
    def name(self) -> str:
        """``feed[<exchange>]``."""
        return f"feed[{self.exchange.name}]"

    # --- what a venue provides ------------------------------------------------------------------
    @abstractmethod
    def url(self) -> str:
        """The websocket URL to open."""

    @abstractmethod
    async def on_open(self, conn: WsConnection) -> None:
        """Subscribe (and whatever else follows the connect)."""

    @abstractmethod
    def decode(self, raw: bytes) -> list[Event]:
        """The events of one frame (raise msgspec errors on malformed frames)."""

    @abstractmethod
    async def resync(self, inst: Instrument, conn: WsConnection) -> None:
        """Get a fresh book of one instrument (REST snapshot, resubscription...)."""

    def ping_payload(self) -> str | None:
        """An application-level ping to send every ``ping_interval_s`` (None: none)."""
        return None

    ping_interval_s: float = 20.0
    # Binance needs a REST snapshot per book after each connect; Bybit sends one per subscription.
    resync_on_connect: bool = True

    # --- the loop -------------------------------------------------------------------------------
    def feed(self, events: list[Event], source: str = "") -> None:
        """Hand events (received now) to the engine."""
        ts = self.now_ns()
        for ev in events:
            self.engine.on_event(ts, self.exchange, ev, source)

    def _on_snapshot_needed(self, inst: Instrument) -> None:
        self._pending_resync.add(inst.instrument_id)
        conn = self._conn
        if conn is None:
            return  # the next connect resyncs everything
        if inst.instrument_id in self._scheduled:
            return
        self._scheduled.add(inst.instrument_id)
        self._spawn(self._resync_later(inst, conn), f"resync[{inst.name}]")

    async def _resync_later(self, inst: Instrument, conn: WsConnection) -> None:
        iid = inst.instrument_id
        wait_ns = self._last_resync.get(iid, 0) + int(self.resync_min_interval_s * NS)
        delay = (wait_ns - self.now_ns()) / NS
        if delay > 0:
            await asyncio.sleep(delay)
        self._scheduled.discard(iid)
        if iid not in self._pending_resync or self._conn is not conn:
            return
        self._pending_resync.discard(iid)
        self._last_resync[iid] = self.now_ns()
        self.resyncs.append(inst.name)
        self.log.info("%s: resyncing %s", self.name, inst.name)
        try:
            await self.resync(inst, conn)
        except GatewayError as exc:
            self.log.warning("%s: resync of %s failed: %s", self.name, inst.name, exc)
            self._on_snapshot_needed(inst)

    def _spawn(self, coro: Coroutine[Any, Any, Any], role: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}.{role}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error(
                "%s: task %s failed", self.name, task.get_name(), exc_info=task.exception()
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set, reconnecting with capped back-off and jitter."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            session = loop.create_task(self._session(), name=f"{self.name}.session")
            stopper = loop.create_task(stop.wait(), name=f"{self.name}.stop")
            await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if session.done():
                why = session.result()
            else:
                session.cancel()
                await asyncio.wait({session})
                why = "stopped"
            self._conn = None
            await self._cancel_tasks()
            self.feed([Disconnect(why)])
            if stop.is_set():
                break
            delay = self.backoff.next_delay()
            self.log.warning("%s: %s; reconnecting in %.2fs", self.name, why, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()

    async def _cancel_tasks(self) -> None:
        self._scheduled.clear()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _session(self) -> str:
        """One connection's life; returns why it ended."""
        try:
            async with ws_connect(self.url()) as conn:
                self._conn = conn
                self.connects += 1
                await self.on_open(conn)
                self.backoff.reset()
                self._emit(
                    FeedStatus(
                        ex=self.exchange.value,
                        iid=0,
                        status=FeedHandlerStatus.SnapshotEnd,
                        detail=f"{self.exchange.name} live feed streaming",
                        ts=self.now_ns(),
                    )
                )
                self._last_resync.clear()
                if self.resync_on_connect:
                    for inst in self.instruments:
                        self._on_snapshot_needed(inst)
                if self.ping_payload() is not None:
                    self._spawn(self._ping(conn), "ping")
                return await self._receive(conn)
        except GatewayError as exc:
            return str(exc)

    async def _receive(self, conn: WsConnection) -> str:
        while True:
            try:
                async with asyncio.timeout(self.silence_timeout_s):
                    raw = await conn.receive()
            except TimeoutError:
                # connected but silent: every book is stale
                self.engine.connection_silent(self.now_ns(), self.silence_timeout_s)
                return f"connected but silent for {self.silence_timeout_s}s"
            if raw is None:
                return "connection closed by the venue"
            try:
                events = self.decode(raw)
            except msgspec.DecodeError as exc:
                self.engine.bad_data(f"undecodable frame: {exc}", self.name)
                continue
            self.feed(events, self.name)
            self.engine.check_silence(self.now_ns())

    async def _ping(self, conn: WsConnection) -> None:
        payload = self.ping_payload()
        assert payload is not None
        while True:
            await asyncio.sleep(self.ping_interval_s)
            await conn.send(payload)


def bus_sink(bus: BusBase, topics: Topics, clock: Clock | None = None) -> Callable[[Msg], None]:
    """An ``emit`` publishing like :func:`~mlthon.feeds.handler.run_feed`: instrument messages
    on ``md(exchange, iid)`` (QoS 0), feed-wide statuses retained on ``feed_status``; late
    subscribers' snapshot requests are answered from a copy of what was published."""
    md: dict[tuple[int, int], str] = {}
    responder = SnapshotResponder(bus, topics, clock or LiveClock())
    responder.start()
    mirror = responder.mirror

    def emit(msg: Msg) -> None:
        ex: int = msg.ex  # type: ignore[attr-defined]
        iid: int = msg.iid  # type: ignore[attr-defined]
        if iid == 0:
            bus.publish(topics.feed_status(Exchange(ex)), msg, qos=1, retain=True)
            return
        topic = md.get((ex, iid))
        if topic is None:
            topic = md[(ex, iid)] = topics.md(Exchange(ex), iid)
        bus.publish(topic, msg)
        mirror.apply(msg)

    return emit
