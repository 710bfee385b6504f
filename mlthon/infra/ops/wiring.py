"""Attaching the ops parts to a process in a few lines (used by the runner and the process CLIs).

:class:`ProcessOps` bundles a :class:`~mlthon.infra.ops.heartbeat.Heartbeat` and a
:class:`~mlthon.infra.ops.shutdown.ShutdownListener` for one component; :func:`metered_stats`
and :func:`strategy_stats` build the heartbeat's stats callback. The heartbeat period comes from
the ``MLTHON_HEARTBEAT_S`` environment variable when it is set (default 5 s). A process started
by a supervisor (``mlthon run``) finds how many times it was restarted in ``MLTHON_RESTARTS``
and reports it in every heartbeat (``extra["restarts"]``; ``mlthon status`` shows it).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Scheduler
from mlthon.infra.ops.heartbeat import (
    DEGRADED,
    FEED_LOST,
    GATEWAY_LOST,
    UP,
    Heartbeat,
    Stats,
    StatsFn,
)
from mlthon.infra.ops.metering import MeteredBus
from mlthon.infra.ops.positions import portfolio_wire
from mlthon.infra.ops.shutdown import ShutdownListener

__all__ = [
    "DEGRADED",
    "UP",
    "ProcessOps",
    "Stats",
    "follow_venue_status",
    "heartbeat_interval",
    "metered_stats",
    "portfolio_wire",
    "restarts_from_env",
    "strategy_extra",
]

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 5.0
HEARTBEAT_ENV = "MLTHON_HEARTBEAT_S"
RESTARTS_ENV = "MLTHON_RESTARTS"


def heartbeat_interval(default: float = DEFAULT_HEARTBEAT_S) -> float:
    """The heartbeat period: ``$MLTHON_HEARTBEAT_S`` if set to a positive number, else
    ``default``."""
    raw = os.environ.get(HEARTBEAT_ENV, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        log.warning("ops: %s=%r is not a number; using %.1fs", HEARTBEAT_ENV, raw, default)
        return default
    return value if value > 0 else default


def restarts_from_env() -> int | None:
    """How many times a supervisor restarted this process (``$MLTHON_RESTARTS``; None when no
    supervisor said)."""
    raw = os.environ.get(RESTARTS_ENV, "")
    if not raw:
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        log.warning("ops: %s=%r is not a count; ignored", RESTARTS_ENV, raw)
        return None


def _with_restarts(stats: StatsFn | None, restarts: int) -> StatsFn:
    """``stats`` with ``extra["restarts"]`` added."""

    def with_restarts() -> Stats:
        st = stats() if stats is not None else Stats()
        return attrs.evolve(st, extra={**st.extra, "restarts": restarts})

    return with_restarts


class ProcessOps:
    """One component's heartbeat and its ``mlthon kill`` listener.

    Args:
        bus: the process's (unmetered) bus.
        scheduler: the process's scheduler.
        topics: the topic layout.
        kind: gateway, feed, strategy, control or telegram.
        name: the component's name.
        stop: the process's shutdown trigger (set by ``mlthon kill``), if any.
        stats: the heartbeat's stats callback.
        interval_s: the heartbeat period (default: :func:`heartbeat_interval`).
        restarts: how many times this process was restarted by its supervisor, reported in
            every heartbeat (default: :func:`restarts_from_env`; None: not reported).
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        *,
        kind: str,
        name: str,
        stop: asyncio.Event | None = None,
        stats: StatsFn | None = None,
        interval_s: float | None = None,
        restarts: int | None = None,
    ) -> None:
        self.restarts = restarts_from_env() if restarts is None else restarts
        if self.restarts is not None:
            stats = _with_restarts(stats, self.restarts)
        self.heartbeat = Heartbeat(
            bus,
            scheduler,
            topics,
            name=name,
            kind=kind,
            interval_s=interval_s or heartbeat_interval(),
            stats=stats,
        )
        self.stop_event = stop
        self.listener = ShutdownListener(bus, topics, [(kind, name)], self._on_shutdown)

    def start(self, state: str = UP, detail: str = "") -> None:
        """Start heartbeating and listening for ``mlthon kill``."""
        self.listener.start()
        self.heartbeat.start(state, detail)

    def close(self, detail: str = "stopped") -> None:
        """Announce ``down`` and stop listening (call before closing the bus)."""
        self.listener.stop()
        self.heartbeat.stop(detail)

    def _on_shutdown(self, reason: str) -> None:
        self.heartbeat.set_state(DEGRADED, f"stopping: {reason or 'mlthon kill'}")
        if self.stop_event is not None:
            self.stop_event.set()


def follow_venue_status(
    proc_ops: ProcessOps, bus: BusBase, topics: Topics, kind: str, exchange: Exchange
) -> None:
    """Make a gateway's or feed's heartbeat state follow its venue status: ``up`` when
    ReadyToTrade / SnapshotEnd (streaming), ``degraded`` otherwise, with the status as detail.
    Last wills (a previous process lost) are ignored."""

    def on_status(topic: str, msg: Any) -> None:
        if isinstance(msg, m.GatewayStatus) and msg.detail != GATEWAY_LOST:
            up = msg.status is GtwStatus.ReadyToTrade
            detail = f"{msg.status.name}: {msg.detail}" if msg.detail else msg.status.name
        elif isinstance(msg, m.FeedStatus) and not msg.iid and msg.detail != FEED_LOST:
            up = msg.status is FeedHandlerStatus.SnapshotEnd
            detail = f"{msg.status.name}: {msg.detail}" if msg.detail else msg.status.name
        else:
            return
        proc_ops.heartbeat.set_state(UP if up else DEGRADED, detail)

    topic = topics.gtw_status(exchange) if kind == "gateway" else topics.feed_status(exchange)
    bus.subscribe(topic, on_status, qos=1)


def metered_stats(
    metered: MeteredBus,
    *,
    extra: Callable[[], dict[str, Any]] | None = None,
    last_error: Callable[[], str] | None = None,
) -> StatsFn:
    """A stats callback reporting ``metered``'s counters, lag and latency, plus ``extra()``."""

    def stats() -> Stats:
        lag, _worst = metered.take_lag()
        return Stats(
            counters=dict(metered.counters),
            lag_ms=lag,
            latency=metered.latency.to_wire(),
            extra=extra() if extra is not None else {},
            last_error=last_error() if last_error is not None else "",
        )

    return stats


def strategy_extra(env: Any) -> dict[str, Any]:
    """A strategy's figures for its heartbeat: state, callbacks, open orders, positions, PnL and
    its trading state (``docs/risk.md``)."""
    reactor = env.reactor
    out: dict[str, Any] = {
        "state": env.state,
        "started": env.state == "running",
        "callbacks": reactor.callbacks,
        "callback_errors": reactor.callback_errors,
        "slow_callbacks": reactor.slow_callbacks,
        "reports": env.reports_received,
        "md_messages": env.md_messages,
    }
    out.update(portfolio_wire(env.portfolio))
    guard = env.risk
    out["risk_state"] = env.risk_state.name
    out["risk_reason"] = guard.effective_reason if guard is not None else ""
    return {"strategy": out}
