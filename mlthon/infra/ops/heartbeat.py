"""Heartbeats and retained status: every process says who it is, how it is, and that it lives.

A :class:`Heartbeat` publishes a :class:`~mlthon.infra.bus.messages.ComponentStatus` retained on
``{root}/status/{kind}/{name}`` (QoS 1) when its state changes and every ``interval_s``; on a
clean stop it publishes state ``down``. A process that dies without stopping cleanly stops
heartbeating: watchers (:class:`~mlthon.infra.ops.board.StatusBoard`) mark it ``stale`` after
their timeout. The broker publishes one last will per client (see :func:`process_will`):

* a gateway's will is ``GatewayStatus(Connecting, "gateway process lost")`` and a feed's is
  ``FeedStatus(Disconnected, "feed process lost")``, so strategies hear ``on_gateway_status`` /
  ``on_feed_handler_status`` at once; watchers read these wills as "process lost";
* any other process's will is its own ``ComponentStatus(state="stale", detail="connection lost")``
  (a clean stop says ``down``; a crash says ``stale``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.topics import Topics, check_name
from mlthon.infra.clock import NS_PER_S, Handle, Scheduler

log = logging.getLogger(__name__)

UP = "up"
DEGRADED = "degraded"
DOWN = "down"
STALE = "stale"
STATES = (UP, DEGRADED, DOWN, STALE)
KINDS = ("gateway", "feed", "strategy", "control", "telegram")

GATEWAY_LOST = "gateway process lost"
FEED_LOST = "feed process lost"
CONNECTION_LOST = "connection lost"


def mlthon_version() -> str:
    """The installed mlthon version (``0+unknown`` when run from a bare source tree)."""
    try:
        return importlib.metadata.version("mlthon")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


@attrs.frozen
class Stats:
    """What a process reports in each heartbeat, from its stats callback.

    Attributes:
        counters: totals since start (events, orders, rejects, fills, resyncs...); the heartbeat
            turns them into per-second ``rates``.
        lag_ms: the bus lag (age of the newest market data when handled).
        latency: callback durations (:meth:`LatencyHistogram.to_wire` form).
        extra: kind-specific figures (a strategy's state, open orders, positions, PnL).
        last_error: the latest error, if any.
    """

    counters: Mapping[str, int] = attrs.field(factory=dict)
    lag_ms: float = 0.0
    latency: Mapping[str, Any] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    last_error: str = ""


StatsFn = Callable[[], Stats]


class Heartbeat:
    """Publishes one component's retained status on changes and periodically.

    Args:
        bus: the process's bus.
        scheduler: for the period and the timestamps.
        topics: the topic layout.
        name: the component's name (a strategy's name, an exchange's name for a gateway or feed).
        kind: gateway, feed, strategy, control or telegram.
        interval_s: the heartbeat period.
        stats: called at every heartbeat for counters, lag, latency and extra figures.
        version: reported version (default: mlthon's).
        pid: reported pid (default: this process's).
        host: reported host (default: this host's name).

    Raises:
        ValueError: a name or kind that cannot be a topic level, or a non-positive interval.
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        *,
        name: str,
        kind: str,
        interval_s: float = 5.0,
        stats: StatsFn | None = None,
        version: str | None = None,
        pid: int | None = None,
        host: str | None = None,
    ) -> None:
        check_name(name, "component name")
        check_name(kind, "component kind")
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.bus = bus
        self.scheduler = scheduler
        self.topics = topics
        self.name = name
        self.kind = kind
        self.interval_s = float(interval_s)
        self.stats = stats
        self.version = version or mlthon_version()
        self.pid = os.getpid() if pid is None else pid
        self.host = host or socket.gethostname()
        self.topic = topics.component_status(kind, name)
        self.state = DOWN
        self.detail = ""
        self.since = 0
        self.last_error = ""
        self.published = 0
        self._timer: Handle | None = None
        self._running = False
        self._last_counters: dict[str, int] = {}
        self._last_ns = 0
        self._rates: dict[str, float] = {}

    def start(self, state: str = UP, detail: str = "") -> None:
        """Announce ``state`` now, then heartbeat every ``interval_s`` until :meth:`stop`."""
        if self._running:
            return
        self._running = True
        self.bus.add_connection_listener(self._on_connection)
        self.set_state(state, detail, force=True)
        self._schedule()

    def stop(self, detail: str = "stopped") -> None:
        """Stop heartbeating and announce ``down`` (a clean stop)."""
        if not self._running:
            return
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.set_state(DOWN, detail, force=True)

    def set_state(self, state: str, detail: str = "", *, force: bool = False) -> None:
        """Change the state (up, degraded, down); publishes at once if it or the detail changed.
        Ignored outside :meth:`start` ... :meth:`stop` (a stopped component stays ``down``).

        Raises:
            ValueError: an unknown state.
        """
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        if not self._running and state != DOWN:
            return
        if state == self.state and detail == self.detail and not force:
            return
        if state != self.state or not self.since:
            self.since = self.scheduler.now_ns()
            log.info("heartbeat[%s/%s]: %s %s", self.kind, self.name, state, detail)
        self.state = state
        self.detail = detail
        self.beat()

    def error(self, text: str) -> None:
        """Record ``text`` as the last error and publish it."""
        self.last_error = text
        self.beat()

    def beat(self) -> None:
        """Publish the status now (retained, QoS 1)."""
        self.bus.publish(self.topic, self.status(), qos=1, retain=True)
        self.published += 1

    def status(self) -> m.ComponentStatus:
        """The status as it would be published now (rates since the previous call)."""
        now = self.scheduler.now_ns()
        st = self.stats() if self.stats is not None else Stats()
        counters = dict(st.counters)
        if self._last_ns and now > self._last_ns:
            dt = (now - self._last_ns) / NS_PER_S
            self._rates = {
                k: round((v - self._last_counters.get(k, 0)) / dt, 3) for k, v in counters.items()
            }
        self._last_counters = counters
        self._last_ns = now
        extra: dict[str, Any] = dict(st.extra)
        if counters:
            extra["counters"] = counters
        if st.latency:
            extra["latency"] = dict(st.latency)
        return m.ComponentStatus(
            name=self.name,
            kind=self.kind,
            state=self.state,
            since=self.since,
            ts=now,
            detail=self.detail,
            version=self.version,
            pid=self.pid,
            host=self.host,
            heartbeat_s=self.interval_s,
            rates=dict(self._rates),
            lag_ms=round(st.lag_ms, 3),
            last_error=st.last_error or self.last_error,
            extra=extra,
        )

    def _schedule(self) -> None:
        self._timer = self.scheduler.call_later(int(self.interval_s * NS_PER_S), self._tick)

    def _tick(self) -> None:
        if not self._running:
            return
        self.beat()
        self._schedule()

    def _on_connection(self, up: bool) -> None:
        # A broker restart loses retained messages when it does not persist them: say it again.
        if up and self._running:
            self.beat()


def component_will(
    topics: Topics, kind: str, name: str, *, version: str | None = None
) -> tuple[str, m.Msg]:
    """The last will of a process whose only status is its ``ComponentStatus``.

    Returns:
        (topic, message) for ``MqttBus(will=...)``: state ``stale``, detail "connection lost".
    """
    return topics.component_status(kind, name), m.ComponentStatus(
        name=name,
        kind=kind,
        state=STALE,
        detail=CONNECTION_LOST,
        version=version or mlthon_version(),
        pid=os.getpid(),
        host=socket.gethostname(),
    )


def gateway_will(topics: Topics, exchange: Exchange) -> tuple[str, m.Msg]:
    """A gateway's last will: ``GatewayStatus(Connecting, "gateway process lost")``, so that
    strategies hear ``on_gateway_status`` when the gateway process dies."""
    return topics.gtw_status(exchange), m.GatewayStatus(
        exchange=exchange, status=GtwStatus.Connecting, detail=GATEWAY_LOST
    )


def feed_will(topics: Topics, exchange: Exchange) -> tuple[str, m.Msg]:
    """A feed's last will: ``FeedStatus(iid=0, Disconnected, "feed process lost")``, so that
    strategies hear ``on_feed_handler_status`` when the feed process dies."""
    return topics.feed_status(exchange), m.FeedStatus(
        ex=exchange.value, iid=0, status=FeedHandlerStatus.Disconnected, detail=FEED_LOST
    )
