"""Alerts to the ops chat, from the status topics of the bus.

* gateway status transitions (``GatewayStatus``), a gateway not ready when first seen;
* feed disconnects and recoveries, and one instrument's book becoming invalid (``FeedStatus``);
* a strategy's state changes and rising callback errors (``StratStatus``);
* stop escalations (``StopEscalated``);
* the bridge losing or regaining the bus.

Bad news goes out at priority 0, recoveries at priority 2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.messages import FeedStatus, GatewayStatus, StopEscalated, StratStatus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.telegram.delivery import PRIORITY_ERROR, PRIORITY_STATUS

log = logging.getLogger(__name__)

Notify = Callable[[str, int], None]

BAD_STRAT_STATES = frozenset(
    {"error", "failed", "crashed", "dead", "disconnected", "offline", "lost", "killed"}
)


def _exchange_name(ex: int | Exchange) -> str:
    try:
        return Exchange(ex).name
    except ValueError:
        return str(ex)


class Alerts:
    """Watches the bus and tells the ops chat about trouble.

    Args:
        bus: the message bus.
        topics: topic names.
        notify: ``notify(text, priority)`` queues a message to the ops chat.
        logger: where alerts are also logged.
    """

    def __init__(
        self,
        bus: BusBase,
        topics: Topics,
        notify: Notify,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self._bus = bus
        self._topics = topics
        self._notify = notify
        self._log = logger or log
        self._subs: list[Subscription] = []
        self._gtw: dict[str, GtwStatus] = {}
        self._feed: dict[tuple[str, int], FeedHandlerStatus] = {}
        self._strat_state: dict[str, str] = {}
        self._strat_errors: dict[str, int] = {}
        self._bus_up: bool | None = None
        self.sent = 0

    def start(self) -> None:
        """Subscribe to the status topics."""
        t = self._topics
        self._subs = [
            self._bus.subscribe(t.gtw_status_all(), self._on_gateway, qos=1),
            self._bus.subscribe(t.feed_status_all(), self._on_feed, qos=1),
            self._bus.subscribe(t.strat_status_all(), self._on_strat, qos=1),
            self._bus.subscribe(t.strat_ctl("+"), self._on_strat_ctl, qos=1),
        ]
        self._bus.add_connection_listener(self._on_bus_connection)

    def stop(self) -> None:
        """Unsubscribe."""
        for sub in self._subs:
            self._bus.unsubscribe(sub)
        self._subs = []

    def _alert(self, text: str, priority: int) -> None:
        self.sent += 1
        level = logging.WARNING if priority == PRIORITY_ERROR else logging.INFO
        self._log.log(level, "telegram alert: %s", text)
        self._notify(text, priority)

    def _on_gateway(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, GatewayStatus):
            return
        name = _exchange_name(msg.exchange)
        old = self._gtw.get(name)
        self._gtw[name] = msg.status
        if old == msg.status:
            return
        detail = f" ({msg.detail})" if msg.detail else ""
        if msg.status == GtwStatus.ReadyToTrade:
            if old is not None:
                self._alert(f"🟢 gateway {name}: ready to trade{detail}", PRIORITY_STATUS)
            return
        was = f"{old.name} → " if old is not None else ""
        self._alert(f"🔴 gateway {name}: {was}{msg.status.name}{detail}", PRIORITY_ERROR)

    def _on_feed(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, FeedStatus):
            return
        name = _exchange_name(msg.ex)
        key = (name, msg.iid)
        old = self._feed.get(key)
        self._feed[key] = msg.status
        what = f"feed {name}" if msg.iid == 0 else f"book {name} #{msg.iid}"
        detail = f" ({msg.detail})" if msg.detail else ""
        bad = (FeedHandlerStatus.Disconnected, FeedHandlerStatus.BookInvalid)
        if msg.status in bad:
            if old != msg.status:
                word = "disconnected" if msg.status == FeedHandlerStatus.Disconnected else "invalid"
                self._alert(f"🔴 {what}: {word}{detail}", PRIORITY_ERROR)
        elif msg.status == FeedHandlerStatus.SnapshotEnd and old in bad:
            self._alert(f"🟢 {what}: back in sync", PRIORITY_STATUS)

    def _on_strat(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, StratStatus):
            return
        old_state = self._strat_state.get(msg.strat)
        old_errors = self._strat_errors.get(msg.strat)
        self._strat_state[msg.strat] = msg.state
        self._strat_errors[msg.strat] = msg.callback_errors
        bad = msg.state.lower() in BAD_STRAT_STATES
        detail = f" ({msg.detail})" if msg.detail else ""
        if old_state is None:
            if bad:
                self._alert(f"🔴 strategy {msg.strat}: {msg.state}{detail}", PRIORITY_ERROR)
        elif old_state != msg.state:
            icon = "🔴" if bad else "ℹ️"  # noqa: RUF001 - the information emoji
            self._alert(
                f"{icon} strategy {msg.strat}: {old_state} → {msg.state}{detail}",
                PRIORITY_ERROR if bad else PRIORITY_STATUS,
            )
        if old_errors is not None and msg.callback_errors > old_errors:
            new = msg.callback_errors - old_errors
            self._alert(
                f"⚠ strategy {msg.strat}: {new} new callback error(s), "
                f"{msg.callback_errors} in total",
                PRIORITY_ERROR,
            )

    def _on_strat_ctl(self, topic: str, msg: Any) -> None:
        if isinstance(msg, StopEscalated):
            self._alert(f"🛑 strategy {msg.strat}: stop escalated — {msg.detail}", PRIORITY_ERROR)

    def _on_bus_connection(self, up: bool) -> None:
        old, self._bus_up = self._bus_up, up
        if old is None and up:
            return
        if up and old is False:
            self._alert("🟢 Telegram bridge: message bus reconnected", PRIORITY_STATUS)
        elif not up and old is not False:
            self._alert("🔴 Telegram bridge: message bus disconnected", PRIORITY_ERROR)
