"""Counting and timing what a process does, for its heartbeat and the metrics endpoint.

* :class:`LatencyHistogram` keeps callback durations in fixed millisecond buckets, in the shape
  Prometheus wants (travels inside ``ComponentStatus.extra["latency"]``).
* :class:`MeteredBus` wraps a process's bus: every message published or handled is counted by
  category (events, orders, rejects, fills, resyncs), every handler call is timed by message kind,
  and the age of incoming market data gives the bus lag.
* :class:`TimedReactor` is a :class:`~mlthon.infra.reactor.Reactor` that also times each guarded
  callback by name.

Durations are read from the injected :class:`~mlthon.infra.clock.Clock` (nothing else reads time).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from typing import Any

from mlthon.basics.mlt_enum import FeedHandlerStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, ConnectionListener, Handler, Subscription
from mlthon.infra.clock import NS_PER_MS, Clock, Scheduler
from mlthon.infra.reactor import Reactor

#: Upper bounds of the latency buckets, in milliseconds (the last bucket is +Inf).
LATENCY_BUCKETS_MS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0)

#: Market-data lags beyond this are not measured (a replay's recorded timestamps are old).
MAX_LAG_MS = 3_600_000.0

_MD = (m.BookUpdate, m.LevelUpdate, m.TradeUpdate, m.FundingUpdate)
_REJECTS = (
    m.NewOrderReject,
    m.ModifyOrderReject,
    m.CancelOrderReject,
    m.CancelAllReject,
    m.RequestReject,
    m.LoginReject,
)

#: The counters every metered process reports (``ComponentStatus.extra["counters"]``).
COUNTERS = ("messages_in", "messages_out", "events", "orders", "rejects", "fills", "resyncs")


def categories(msg: object) -> tuple[str, ...]:
    """The counter categories one message falls in (besides messages_in/out)."""
    if isinstance(msg, _MD):
        return ("events",)
    if isinstance(msg, m.NewOrder):
        return ("orders",)
    if isinstance(msg, _REJECTS):
        return ("rejects",)
    if isinstance(msg, m.OrderExecution):
        return ("fills",)
    if isinstance(msg, m.FeedStatus) and msg.iid and msg.status is FeedHandlerStatus.BookInvalid:
        return ("resyncs",)
    return ()


class LatencyHistogram:
    """Durations by name in fixed buckets (:data:`LATENCY_BUCKETS_MS`, then +Inf)."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, name: str, ms: float) -> None:
        """Count one duration of ``ms`` milliseconds under ``name``."""
        counts = self._counts.get(name)
        if counts is None:
            counts = self._counts[name] = [0] * (len(LATENCY_BUCKETS_MS) + 1)
            self._sums[name] = 0.0
        counts[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        self._sums[name] += ms

    def to_wire(self) -> dict[str, dict[str, Any]]:
        """``{name: {"counts": [per bucket, +Inf last], "sum_ms": total}}`` (JSON-able)."""
        return {
            name: {"counts": list(counts), "sum_ms": round(self._sums[name], 6)}
            for name, counts in self._counts.items()
        }


class MeteredBus(BusBase):
    """A bus that counts and times what goes through it, then hands it to ``inner``.

    Give the wrapper to the component (env, gateway, feed); keep using ``inner`` for the process's
    life cycle (``async with``, ``flush``).

    Args:
        inner: the real bus.
        clock: the time source for handler durations and market-data lag.
    """

    def __init__(self, inner: BusBase, clock: Clock) -> None:
        super().__init__()
        self.inner = inner
        self.lossless = inner.lossless  # the wrapper delivers what its transport delivers
        self.redelivers = inner.redelivers
        self.clock = clock
        self.counters: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self.latency = LatencyHistogram()
        self._lag_ms = 0.0
        self._lag_max_ms = 0.0

    @property
    def connected(self) -> bool:
        return self.inner.connected

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        self.inner.add_connection_listener(listener)

    def before_acks(self, fn: Callable[[], None]) -> bool:
        return self.inner.before_acks(fn)

    def publish(self, topic: str, msg: m.Msg, *, qos: int = 0, retain: bool = False) -> None:
        counters = self.counters
        counters["messages_out"] += 1
        for cat in categories(msg):
            counters[cat] += 1
        self.inner.publish(topic, msg, qos=qos, retain=retain)

    def subscribe(self, pattern: str, handler: Handler, *, qos: int = 0) -> Subscription:
        return self.inner.subscribe(pattern, self._metered(handler), qos=qos)

    def unsubscribe(self, sub: Subscription) -> None:
        self.inner.unsubscribe(sub)

    def _metered(self, handler: Handler) -> Handler:
        counters = self.counters
        now = self.clock.now_ns
        observe = self.latency.observe

        def metered(topic: str, msg: Any) -> None:
            counters["messages_in"] += 1
            t0 = now()
            cats = categories(msg)
            for cat in cats:
                counters[cat] += 1
            if cats == ("events",):
                self._observe_lag((t0 - msg.ts) / NS_PER_MS)
            try:
                handler(topic, msg)
            finally:
                observe(f"bus:{type(msg).__name__}", (now() - t0) / NS_PER_MS)

        return metered

    def _observe_lag(self, ms: float) -> None:
        if 0.0 <= ms <= MAX_LAG_MS:
            self._lag_ms = ms if self._lag_ms == 0.0 else 0.9 * self._lag_ms + 0.1 * ms
            self._lag_max_ms = max(self._lag_max_ms, ms)

    def take_lag(self) -> tuple[float, float]:
        """(smoothed lag, worst lag since the last call), in ms; resets the worst."""
        out = (self._lag_ms, self._lag_max_ms)
        self._lag_max_ms = 0.0
        return out


class TimedReactor(Reactor):
    """A reactor that also times every guarded callback by its name.

    Args:
        scheduler: as for :class:`~mlthon.infra.reactor.Reactor`; its clock times callbacks.
        latency: where durations go (shared with the process's :class:`MeteredBus` if wanted).
        **kwargs: passed to :class:`~mlthon.infra.reactor.Reactor`.
    """

    def __init__(
        self, scheduler: Scheduler, *, latency: LatencyHistogram | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scheduler, **kwargs)
        self.latency = latency or LatencyHistogram()
        self._now: Callable[[], int] = scheduler.clock.now_ns

    def invoke(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` under the guard and record how long it ran."""
        t0 = self._now()
        try:
            return super().invoke(fn, *args)
        finally:
            name = getattr(fn, "__name__", type(fn).__name__)
            self.latency.observe(f"cb:{name}", (self._now() - t0) / NS_PER_MS)
