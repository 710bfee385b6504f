"""Prometheus metrics of every component, read from a :class:`StatusBoard` at scrape time.

Nothing is counted here: components count (see :mod:`mlthon.infra.ops.metering`) and report in
their heartbeats; :class:`BoardCollector` turns the board's latest view into metric families.
Every family has the labels ``kind`` and ``name`` (the component). See ``docs/operations.md``
for the list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from mlthon.infra.clock import NS_PER_S
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.heartbeat import STATES, UP
from mlthon.infra.ops.metering import LATENCY_BUCKETS_MS

#: counter name in heartbeats -> (metric name without _total, help)
COUNTER_METRICS: dict[str, tuple[str, str]] = {
    "events": ("mlthon_events", "Market-data events published or handled."),
    "orders": ("mlthon_orders", "New orders sent or received."),
    "rejects": ("mlthon_rejects", "Rejects sent or received."),
    "fills": ("mlthon_fills", "Order executions sent or received."),
    "resyncs": ("mlthon_book_resyncs", "Books invalidated and resynchronised."),
    "messages_in": ("mlthon_bus_messages_in", "Bus messages handled."),
    "messages_out": ("mlthon_bus_messages_out", "Bus messages published."),
}

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LABELS = ["kind", "name"]


def _num(value: Any) -> float | None:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


class BoardCollector(Collector):
    """A prometheus-client collector over a status board.

    Args:
        board: the board whose components are exported.
    """

    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (called by the registry at each scrape)."""
        now = self.board.scheduler.now_ns()
        views = self.board.sorted_views()
        up = GaugeMetricFamily("mlthon_component_up", "1 if the component is up.", labels=_LABELS)
        state = GaugeMetricFamily(
            "mlthon_component_state",
            "1 for the component's current state.",
            labels=[*_LABELS, "state"],
        )
        age = GaugeMetricFamily(
            "mlthon_heartbeat_age_seconds",
            "Time since the component was last heard.",
            labels=_LABELS,
        )
        rate = GaugeMetricFamily(
            "mlthon_events_per_second", "Market-data events per second.", labels=_LABELS
        )
        lag = GaugeMetricFamily(
            "mlthon_bus_lag_milliseconds", "Age of market data when handled.", labels=_LABELS
        )
        delay = GaugeMetricFamily(
            "mlthon_status_delay_milliseconds",
            "Heartbeat receipt time minus its timestamp (bus delay and clock skew).",
            labels=_LABELS,
        )
        counters = {
            key: CounterMetricFamily(metric, doc, labels=_LABELS)
            for key, (metric, doc) in COUNTER_METRICS.items()
        }
        latency = HistogramMetricFamily(
            "mlthon_callback_latency_seconds",
            "Time spent in each callback or bus handler.",
            labels=[*_LABELS, "callback"],
        )
        cb_errors = CounterMetricFamily(
            "mlthon_callback_errors", "Strategy callbacks that raised.", labels=_LABELS
        )
        open_orders = GaugeMetricFamily(
            "mlthon_strategy_open_orders", "A strategy's open orders.", labels=_LABELS
        )
        pnl = GaugeMetricFamily("mlthon_strategy_pnl", "A strategy's total PnL.", labels=_LABELS)
        position = GaugeMetricFamily(
            "mlthon_strategy_position", "A strategy's position.", labels=[*_LABELS, "instrument"]
        )
        for v in views:
            labels = [v.kind, v.name]
            up.add_metric(labels, 1.0 if v.state == UP else 0.0)
            for s in STATES:
                state.add_metric([*labels, s], 1.0 if v.state == s else 0.0)
            if v.heard_ns:
                age.add_metric(labels, max(0.0, (now - v.heard_ns) / NS_PER_S))
            st = v.status
            if v.strat is not None:
                cb_errors.add_metric(labels, float(v.strat.callback_errors))
            if st is None:
                continue
            delay.add_metric(labels, v.delay_ms)
            lag.add_metric(labels, st.lag_ms)
            rate.add_metric(labels, float(st.rates.get("events", 0.0)))
            counts = st.extra.get("counters", {})
            if isinstance(counts, Mapping):
                for key, fam in counters.items():
                    if key in counts:
                        fam.add_metric(labels, float(counts[key]))
            _add_latency(latency, labels, st.extra.get("latency"))
            _add_strategy(open_orders, pnl, position, labels, st.extra.get("strategy"))
        yield from (up, state, age, rate, lag, delay, *counters.values(), latency, cb_errors)
        yield from (open_orders, pnl, position)


def _add_latency(fam: HistogramMetricFamily, labels: list[str], data: Any) -> None:
    if not isinstance(data, Mapping):
        return
    for cb, h in sorted(data.items()):
        counts = h.get("counts") if isinstance(h, Mapping) else None
        if not isinstance(counts, list) or len(counts) != len(LATENCY_BUCKETS_MS) + 1:
            continue
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*LATENCY_BUCKETS_MS, None), counts, strict=True):
            total += int(n)
            buckets.append(("+Inf" if bound is None else repr(bound / 1000), float(total)))
        fam.add_metric([*labels, str(cb)], buckets, float(h.get("sum_ms", 0.0)) / 1000)


def _add_strategy(
    open_orders: GaugeMetricFamily,
    pnl: GaugeMetricFamily,
    position: GaugeMetricFamily,
    labels: list[str],
    data: Any,
) -> None:
    if not isinstance(data, Mapping):
        return
    if "open_orders" in data:
        open_orders.add_metric(labels, float(data["open_orders"]))
    total = _num(data.get("pnl"))
    if total is not None:
        pnl.add_metric(labels, total)
    positions = data.get("positions", {})
    if isinstance(positions, Mapping):
        for inst, p in sorted(positions.items()):
            qty = _num(p.get("qty")) if isinstance(p, Mapping) else None
            if qty is not None:
                position.add_metric([*labels, str(inst)], qty)


def registry_for(board: StatusBoard) -> CollectorRegistry:
    """A registry exporting ``board`` (and nothing else: no process or GC metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BoardCollector(board))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry`` (what ``/metrics`` serves)."""
    return generate_latest(registry)
