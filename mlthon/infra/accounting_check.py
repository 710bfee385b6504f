"""Accounting checks on the strategy side: positions must equal the sum of fills, both ways.

:class:`AccountingChecker` runs in the strategy process beside the env. It reads the strategy's
reports from the bus (its own subscription to ``gtw/+/rpt/<strat>``), keeps, per exchange and
instrument, the position implied by the fills (each execution id counted once) and the fees paid
per coin, and compares:

* after every fill, with the strategy's own view (``strategy_view``, if given: e.g. what the
  strategy believes it holds);
* on every ``PositionInfo``, with the gateway's view. :meth:`check_gateway` (and the periodic
  timer, ``period_s``) asks each gateway for the position of every instrument traded.

A difference is an alert, not a silent drift: it is logged at ERROR and sent to Telegram with
priority 0 on ``{root}/tg/<strat>``, and kept in :attr:`mismatches`.

The first ``PositionInfo`` of an instrument seen before any fill of it sets the opening position
(a strategy may start with one). :meth:`baseline` asks for the positions at a (re)start: the first
answer then sets the opening position to the gateway's position minus the fills already counted,
so that a process restarted after a crash (whose earlier fills it never saw) starts from the
gateway's books instead of alerting.

In the strategy process (``mlthon.infra.runner.run_strategy``) the env feeds the checker
(:attr:`StratEnv.report_listeners`, after the strategy's own callback, so that ``strategy_view``
already includes the fill) and sends its position requests (``fetch_position``), whose answers
the strategy does not see; ``on_mismatch`` puts the alert in the strategy's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.messages import FetchPosition, OrderExecution, PositionInfo, TelegramPublish
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import Handle, Scheduler

log = logging.getLogger(__name__)

Key = tuple[Exchange, int]
StrategyView = Callable[[], Mapping[Key, Decimal]]
"""Returns the strategy's own positions by (exchange, instrument id)."""


@attrs.frozen
class Mismatch:
    """One failed check.

    Attributes:
        exchange: the venue.
        instrument_id: the instrument.
        source: ``strategy`` or ``gateway``: whose view differed from the sum of fills.
        expected: opening position plus the sum of fills.
        actual: what that view said.
        ts: when it was found.
    """

    exchange: Exchange
    instrument_id: int
    source: str
    expected: Decimal
    actual: Decimal
    ts: int


class AccountingChecker:
    """Checks positions against fills; see the module docstring.

    Args:
        bus: the strategy's bus.
        scheduler: time and the periodic timer.
        topics: topic names.
        strat: the strategy's name.
        strategy_view: the strategy's own positions (None: only the gateway is compared).
        period_s: how often to ask the gateways (0: only when :meth:`check_gateway` is called).
        fetch_position: sends a position request for (exchange, instrument id) (default: a
            ``FetchPosition`` published on the bus by the checker).
        on_mismatch: also called with every mismatch (e.g. to put it in a status).
        auto_baseline: the first fill of an instrument without an opening position calls
            :meth:`baseline` for it (a process that may have been restarted: its earlier fills
            are in the gateway's position, not in its count).
        logger: where to log.
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        strat: str,
        *,
        strategy_view: StrategyView | None = None,
        period_s: float = 0.0,
        fetch_position: Callable[[Exchange, int], object] | None = None,
        on_mismatch: Callable[[Mismatch], object] | None = None,
        auto_baseline: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        self.bus = bus
        self.scheduler = scheduler
        self.topics = topics
        self.strat = strat
        self.strategy_view = strategy_view
        self.period_ns = int(period_s * 1e9)
        self.fetch_position = fetch_position or self._publish_fetch
        self.on_mismatch = on_mismatch
        self.auto_baseline = auto_baseline
        self.log = logger or log
        self.positions: dict[Key, Decimal] = {}
        self.fees: dict[tuple[Exchange, str], Decimal] = {}
        self.fills = 0
        self.checks = 0
        self.mismatches: list[Mismatch] = []
        self._opening: dict[Key, Decimal] = {}
        self._baseline: set[Key] = set()
        self._seen: set[tuple[Exchange, str]] = set()
        self._sub: Subscription | None = None
        self._timer: Handle | None = None

    def start(self, *, subscribe: bool = True) -> None:
        """Start the periodic check, and read the strategy's reports from the bus (unless
        ``subscribe`` is False: the caller then hands every report to :meth:`on_report`)."""
        if subscribe:
            self._sub = self.bus.subscribe(
                self.topics.gtw_rpt_all_exchanges(self.strat), self.on_report, qos=1
            )
        self._arm()

    def close(self) -> None:
        """Stop reading reports and the timer."""
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def expected(self, key: Key) -> Decimal:
        """Opening position plus the sum of fills of (exchange, instrument id)."""
        return self._opening.get(key, Decimal(0)) + self.positions.get(key, Decimal(0))

    def check_gateway(self) -> None:
        """Ask every gateway traded on for the position of every instrument traded."""
        for ex, iid in sorted(self.positions, key=lambda k: (k[0].value, k[1])):
            self.fetch_position(ex, iid)

    def baseline(self, keys: Iterable[Key]) -> None:
        """Ask for the positions of ``keys`` not yet known (at a start or restart): each first
        answer sets the opening position to what the gateway holds minus the fills counted."""
        for key in sorted(keys, key=lambda k: (k[0].value, k[1])):
            if key in self._opening:
                continue
            self._baseline.add(key)
            self.fetch_position(*key)

    def _publish_fetch(self, ex: Exchange, iid: int) -> None:
        self.bus.publish(
            self.topics.gtw_req(ex, self.strat),
            FetchPosition(strat=self.strat, instrument_id=iid),
            qos=1,
        )

    # --- internals ----------------------------------------------------------------------------
    def _arm(self) -> None:
        if self.period_ns > 0:
            self._timer = self.scheduler.call_later(self.period_ns, self._tick)

    def _tick(self) -> None:
        self.check_gateway()
        self._arm()

    def on_report(self, topic: str, msg: Any) -> None:
        """Take one report of the strategy (fills and positions; others are ignored)."""
        ex = self.topics.exchange_of(topic)
        if ex is None:
            return
        if isinstance(msg, OrderExecution):
            self._on_fill(ex, msg)
        elif isinstance(msg, PositionInfo):
            key = (ex, msg.instrument_id)
            actual = Decimal(msg.position)
            if key in self._baseline:
                # Reports come in order: every fill counted so far is in this position.
                self._baseline.discard(key)
                self._opening[key] = actual - self.positions.get(key, Decimal(0))
                self.log.info(
                    "accounting[%s]: %s %d opens at %s", self.strat, ex.name, key[1], actual
                )
                return
            if key not in self.positions and key not in self._opening:
                self._opening[key] = actual
                return
            self._compare(key, "gateway", actual)

    def _on_fill(self, ex: Exchange, msg: OrderExecution) -> None:
        if (ex, msg.exec_id) in self._seen:
            return  # a repeat of an execution already counted (at-least-once delivery)
        self._seen.add((ex, msg.exec_id))
        self.fills += 1
        key = (ex, msg.instrument_id)
        qty = Decimal(msg.fill_qty)
        self.positions[key] = self.positions.get(key, Decimal(0)) + (
            qty if msg.side is Side.Buy else -qty
        )
        fee_key = (ex, msg.fee_coin)
        self.fees[fee_key] = self.fees.get(fee_key, Decimal(0)) + Decimal(msg.fee)
        if self.auto_baseline and key not in self._opening and key not in self._baseline:
            self.baseline([key])
        if key in self._baseline:
            return  # the opening position is not known yet: nothing to compare with
        if self.strategy_view is not None:
            view = self.strategy_view()
            self._compare(key, "strategy", view.get(key, Decimal(0)))

    def _compare(self, key: Key, source: str, actual: Decimal) -> None:
        self.checks += 1
        expected = self.expected(key)
        if actual == expected:
            return
        ex, iid = key
        mismatch = Mismatch(ex, iid, source, expected, actual, self.scheduler.now_ns())
        self.mismatches.append(mismatch)
        text = (
            f"ACCOUNTING MISMATCH {self.strat} on {ex.name} {iid}: {source} says {actual}, "
            f"opening + sum of {self.fills} fills = {expected}"
        )
        self.log.error("accounting[%s]: %s", self.strat, text)
        self.bus.publish(
            self.topics.telegram(self.strat),
            TelegramPublish(strat=self.strat, text=text, priority=0, ts=mismatch.ts),
            qos=1,
        )
        if self.on_mismatch is not None:
            self.on_mismatch(mismatch)
