"""The status board: every component's latest status, staleness, transitions and errors.

A :class:`StatusBoard` subscribes to ``{root}/status/+/+`` (heartbeats), the gateway and feed
status topics (whose last wills say "process lost") and the strategies' status topics. It keeps
one :class:`ComponentView` per (kind, name) and works out its *effective* state:

* ``stale`` if the process was lost (its gateway/feed will arrived), or if it was ``up`` or
  ``degraded`` and nothing was heard for longer than its timeout (``stale_after_s``, or
  ``stale_factor`` x the component's own heartbeat period);
* otherwise the state the component published (up, degraded, down).

Every change of effective state is a :class:`Transition`; every new ``last_error`` an
:class:`ErrorEntry`; both are kept (bounded) for display. Listeners hear every change.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_MS, NS_PER_S, Handle, Scheduler
from mlthon.infra.ops.heartbeat import DEGRADED, FEED_LOST, GATEWAY_LOST, STALE, UP

log = logging.getLogger(__name__)

Listener = Callable[[], None]


@attrs.define
class ComponentView:
    """What the board knows of one component.

    Attributes:
        kind: gateway, feed, strategy, control, telegram.
        name: its name.
        status: its latest heartbeat (None if only its venue status was heard).
        heard_ns: when it was last heard of (the earlier of receipt and its own timestamp).
        delay_ms: receipt time minus the heartbeat's timestamp (bus delay plus clock skew).
        venue: the latest gateway or feed status, as text (``ReadyToTrade: ...``).
        lost_ns: when its last will said the process was lost (0: not lost).
        strat: a strategy's latest ``StratStatus``.
        state: the effective state (see the module docstring).
        stale_reason: why it was last declared stale.
    """

    kind: str
    name: str
    status: m.ComponentStatus | None = None
    heard_ns: int = 0
    delay_ms: float = 0.0
    venue: str = ""
    venue_up: bool | None = None
    lost_ns: int = 0
    strat: m.StratStatus | None = None
    state: str = ""
    stale_reason: str = ""

    def to_json(self, now_ns: int) -> dict[str, Any]:
        """A JSON-able view (what ``mlthon status --json`` and the web page show)."""
        st = self.status
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "state": self.state,
            "detail": self.stale_reason
            if self.state == STALE
            else ((st.detail if st else "") or self.venue),
            "since": st.since if st else 0,
            "age_s": round((now_ns - self.heard_ns) / NS_PER_S, 3) if self.heard_ns else None,
            "venue": self.venue,
            "version": st.version if st else "",
            "pid": st.pid if st else 0,
            "host": st.host if st else "",
            "heartbeat_s": st.heartbeat_s if st else 0.0,
            "rates": dict(st.rates) if st else {},
            "lag_ms": st.lag_ms if st else 0.0,
            "delay_ms": round(self.delay_ms, 3),
            "last_error": st.last_error if st else "",
            # restarts by its supervisor (`mlthon run`); None when it has none
            "restarts": st.extra.get("restarts") if st else None,
            "extra": dict(st.extra) if st else {},
        }
        if self.strat is not None:
            out["strategy"] = {
                "state": self.strat.state,
                "callbacks": self.strat.callbacks,
                "callback_errors": self.strat.callback_errors,
                "slow_callbacks": self.strat.slow_callbacks,
            }
        return out


@attrs.frozen
class Transition:
    """A change of a component's effective state."""

    ts: int
    kind: str
    name: str
    old: str
    new: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return attrs.asdict(self)


@attrs.frozen
class ErrorEntry:
    """A new ``last_error`` reported by a component."""

    ts: int
    kind: str
    name: str
    text: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view."""
        return attrs.asdict(self)


class StatusBoard:
    """Watches every component's status on the bus.

    Args:
        bus: the bus.
        scheduler: time and the staleness check timer.
        topics: the topic layout.
        stale_after_s: declare a component stale after this long unheard (None: use
            ``stale_factor`` x its heartbeat period).
        stale_factor: multiple of the heartbeat period when ``stale_after_s`` is None.
        check_interval_s: how often staleness is checked.
        history: how many transitions and errors are kept.
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        *,
        stale_after_s: float | None = None,
        stale_factor: float = 3.0,
        check_interval_s: float = 0.5,
        history: int = 100,
    ) -> None:
        self.bus = bus
        self.scheduler = scheduler
        self.topics = topics
        self.stale_after_s = stale_after_s
        self.stale_factor = stale_factor
        self.check_interval_ns = int(check_interval_s * NS_PER_S)
        self.components: dict[tuple[str, str], ComponentView] = {}
        self.transitions: deque[Transition] = deque(maxlen=history)
        self.errors: deque[ErrorEntry] = deque(maxlen=history)
        self.received = 0
        self._listeners: list[Listener] = []
        self._subs: list[Subscription] = []
        self._timer: Handle | None = None

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the status topics and start the staleness check."""
        if self._subs:
            return
        t = self.topics
        self._subs = [
            self.bus.subscribe(t.component_status_all(), self._on_component, qos=1),
            self.bus.subscribe(t.gtw_status_all(), self._on_gateway, qos=1),
            self.bus.subscribe(t.feed_status_all(), self._on_feed, qos=1),
            self.bus.subscribe(t.strat_status_all(), self._on_strat, qos=1),
        ]
        self._schedule()

    def stop(self, *, unsubscribe: bool = True) -> None:
        """Stop checking and (unless the bus is about to close anyway) unsubscribe."""
        if unsubscribe:
            for sub in self._subs:
                self.bus.unsubscribe(sub)
        self._subs.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` after every change (new status, transition, error)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # --- queries -------------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> ComponentView | None:
        """The view of one component, if known."""
        return self.components.get((kind, name))

    def sorted_views(self) -> list[ComponentView]:
        """Every component, by kind then name."""
        return [self.components[k] for k in sorted(self.components)]

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-able: ``{"ts", "components", "transitions", "errors"}``."""
        now = self.scheduler.now_ns()
        return {
            "ts": now,
            "components": [v.to_json(now) for v in self.sorted_views()],
            "transitions": [t.to_json() for t in reversed(self.transitions)],
            "errors": [e.to_json() for e in reversed(self.errors)],
        }

    def timeout_ns(self, view: ComponentView) -> int | None:
        """How long ``view`` may stay unheard before it is stale (None: never)."""
        if self.stale_after_s is not None:
            return int(self.stale_after_s * NS_PER_S)
        if view.status is None or view.status.heartbeat_s <= 0:
            return None
        return int(self.stale_factor * view.status.heartbeat_s * NS_PER_S)

    # --- updates -------------------------------------------------------------------------------

    def _view(self, kind: str, name: str) -> ComponentView:
        view = self.components.get((kind, name))
        if view is None:
            view = self.components[(kind, name)] = ComponentView(kind=kind, name=name)
        return view

    def _on_component(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.ComponentStatus):
            log.warning("ops board: unexpected %s on %s; dropped", type(msg).__name__, topic)
            return
        self.received += 1
        now = self.scheduler.now_ns()
        view = self._view(msg.kind, msg.name)
        prev_error = view.status.last_error if view.status is not None else ""
        view.status = msg
        view.heard_ns = min(now, msg.ts) if msg.ts else now
        view.delay_ms = (now - msg.ts) / NS_PER_MS if msg.ts else 0.0
        if view.lost_ns and msg.ts > view.lost_ns:
            view.lost_ns = 0  # a fresh heartbeat: the process is back
        if msg.last_error and msg.last_error != prev_error:
            self.errors.append(ErrorEntry(msg.ts or now, msg.kind, msg.name, msg.last_error))
        self._refresh(view, msg.detail)

    def _on_gateway(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.GatewayStatus):
            return
        view = self._view("gateway", msg.exchange.name)
        view.venue = f"{msg.status.name}: {msg.detail}" if msg.detail else msg.status.name
        view.venue_up = msg.status is GtwStatus.ReadyToTrade
        self._venue_update(view, msg.detail == GATEWAY_LOST, msg.detail)

    def _on_feed(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.FeedStatus) or msg.iid:
            return
        try:
            name = Exchange(msg.ex).name
        except ValueError:
            return
        view = self._view("feed", name)
        view.venue = f"{msg.status.name}: {msg.detail}" if msg.detail else msg.status.name
        view.venue_up = msg.status in (
            FeedHandlerStatus.SnapshotStart,
            FeedHandlerStatus.SnapshotEnd,
        )
        self._venue_update(view, msg.detail == FEED_LOST, msg.detail)

    def _venue_update(self, view: ComponentView, lost: bool, detail: str) -> None:
        self.received += 1
        now = self.scheduler.now_ns()
        if lost:
            view.lost_ns = now
        elif view.lost_ns:
            view.lost_ns = 0
        self._refresh(view, detail)

    def _on_strat(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.StratStatus):
            return
        self.received += 1
        view = self._view("strategy", msg.strat)
        view.strat = msg
        self._refresh(view, msg.detail)

    # --- staleness -----------------------------------------------------------------------------

    def effective_state(self, view: ComponentView, now_ns: int) -> str:
        """The state ``view`` is in at ``now_ns`` (see the module docstring)."""
        if view.lost_ns:
            return STALE
        st = view.status
        if st is None:
            if view.venue_up is None:
                return view.state
            return UP if view.venue_up else DEGRADED
        if st.state in (UP, DEGRADED):
            timeout = self.timeout_ns(view)
            if timeout is not None and now_ns - view.heard_ns > timeout:
                return STALE
        return st.state

    def check(self) -> None:
        """Re-evaluate every component's effective state now (the timer calls it)."""
        for view in list(self.components.values()):
            self._refresh(view, "", notify_always=False)

    def _refresh(self, view: ComponentView, detail: str, *, notify_always: bool = True) -> None:
        now = self.scheduler.now_ns()
        new = self.effective_state(view, now)
        changed = new != view.state
        if changed:
            if new == STALE and not view.lost_ns:
                detail = "no heartbeat for %.1fs" % ((now - view.heard_ns) / NS_PER_S)
            elif new == STALE:
                detail = "process lost (last will)"
            if new == STALE:
                view.stale_reason = detail
            self.transitions.append(Transition(now, view.kind, view.name, view.state, new, detail))
            log.log(
                logging.WARNING if new == STALE else logging.INFO,
                "ops board: %s/%s %s -> %s %s",
                view.kind,
                view.name,
                view.state,
                new,
                detail,
            )
            view.state = new
        if changed or notify_always:
            self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("ops board: listener %r failed", listener)

    def _schedule(self) -> None:
        self._timer = self.scheduler.call_later(self.check_interval_ns, self._tick)

    def _tick(self) -> None:
        self.check()
        if self._subs:
            self._schedule()
