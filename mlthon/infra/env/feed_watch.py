"""Frozen-feed detection: a feed silent for longer than its limit is reported, and again when it
speaks.

A feed process sends ``FeedHeartbeat{ex, ts, limit_ms}`` every ``limit_ms / 4`` whether or not the
market moves; its ``limit_ms`` is how long the env may hear nothing from it (neither market data
nor heartbeat) before the feed counts as stale. The env may also be given a default limit
(``feed_silence_s``) for every exchange it gets market data from when no heartbeat said one: the
backtest has no feed process, and there a hole in a recording longer than the limit is reported,
in simulated time.

The cost on the market-data path is one attribute store per message
(``FeedMark.seen = True``); a timer on the env's scheduler, every eighth of the smallest limit,
does the comparison: data seen since the last tick refresh the feed's time, and a feed silent
for more than its limit is stale. Detection therefore comes between the limit and the limit plus
a quarter of it after the last message, and the silence reported is the time since the tick that
last saw data (it may be short of the true silence by up to one tick).

Only exchanges the env gets market data from are watched (:meth:`FeedWatch.watch`); a heartbeat
of another feed only records its limit. A feed watched under the env's default limit (no
heartbeat: a backtest's venue) is timed from its first message, so a venue whose data start later
than another's in the same backtest is not reported silent before it began.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.clock import Handle, Scheduler

log = logging.getLogger(__name__)

_MIN_TICK_NS = 1_000_000
_TICKS_PER_LIMIT = 8

StatusCallback = Callable[[Exchange, str], None]


class FeedMark:
    """What the env knows of one feed's liveness.

    Attributes:
        exchange: the feed's exchange.
        seen: set by every market-data message and heartbeat of the feed; cleared by the timer.
        last_ns: when the timer last saw data (or the watch began).
        limit_ns: silence allowed (0: not watched).
        from_heartbeat: ``limit_ns`` came from the feed's heartbeat (not the env's default).
        watched: the env gets market data from this feed.
        stale: reported silent and not heard since.
        heard: something came from the feed since it is watched.
    """

    __slots__ = (
        "exchange",
        "from_heartbeat",
        "heard",
        "last_ns",
        "limit_ns",
        "seen",
        "stale",
        "watched",
    )

    def __init__(self, exchange: Exchange, limit_ns: int) -> None:
        self.exchange = exchange
        self.seen = False
        self.last_ns = 0
        self.limit_ns = limit_ns
        self.from_heartbeat = False
        self.watched = False
        self.stale = False
        self.heard = False


class FeedWatch:
    """Watches the feeds an env gets market data from; see the module docstring.

    Args:
        scheduler: the env's scheduler (live or simulated time).
        default_limit_s: the limit of a feed that sent no heartbeat (None: such feeds are not
            watched).
        on_stale: ``on_stale(exchange, detail)`` when a watched feed is silent past its limit.
        on_resumed: ``on_resumed(exchange, detail)`` when a stale feed speaks again.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        default_limit_s: float | None,
        on_stale: StatusCallback,
        on_resumed: StatusCallback,
    ) -> None:
        if default_limit_s is not None and not default_limit_s > 0:
            raise ValueError(f"feed_silence_s must be > 0 or None, not {default_limit_s!r}")
        self._scheduler = scheduler
        self._default_ns = int(default_limit_s * 1e9) if default_limit_s else 0
        self._on_stale = on_stale
        self._on_resumed = on_resumed
        self._marks: dict[Exchange, FeedMark] = {}
        self._timer: Handle | None = None
        self.stale_reports = 0

    def mark(self, exchange: Exchange) -> FeedMark:
        """The (one, lasting) mark of ``exchange``'s feed, for the market-data handler to set."""
        mk = self._marks.get(exchange)
        if mk is None:
            mk = self._marks[exchange] = FeedMark(exchange, self._default_ns)
        return mk

    def is_stale(self, exchange: Exchange) -> bool:
        """True while ``exchange``'s feed is reported silent."""
        mk = self._marks.get(exchange)
        return mk is not None and mk.stale

    def watch(self, exchange: Exchange) -> None:
        """The env gets market data from ``exchange`` now: watch its feed."""
        mk = self.mark(exchange)
        if mk.watched:
            return
        mk.watched = True
        mk.seen = False
        mk.stale = False
        mk.heard = False
        mk.last_ns = self._scheduler.now_ns()
        self._arm()

    def unwatch(self, exchange: Exchange) -> None:
        """The env no longer gets market data from ``exchange``."""
        mk = self._marks.get(exchange)
        if mk is not None:
            mk.watched = False
            mk.stale = False

    def heartbeat(self, exchange: Exchange, limit_ms: int) -> None:
        """``exchange``'s feed is alive and allows ``limit_ms`` of silence."""
        mk = self.mark(exchange)
        if limit_ms > 0:
            mk.limit_ns = limit_ms * 1_000_000
            mk.from_heartbeat = True
        mk.seen = True
        if mk.watched and mk.stale:
            self._tick_one(mk, self._scheduler.now_ns())  # resumed: say it now, not at the tick
        self._arm()

    def close(self) -> None:
        """Stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _period_ns(self) -> int:
        limits = [mk.limit_ns for mk in self._marks.values() if mk.watched and mk.limit_ns > 0]
        if not limits:
            return 0
        return max(_MIN_TICK_NS, min(limits) // _TICKS_PER_LIMIT)

    def _arm(self) -> None:
        if self._timer is not None:
            return  # armed (the next tick takes a new limit into account)
        period = self._period_ns()
        self._timer = self._scheduler.call_later(period, self._tick) if period else None

    def _tick(self) -> None:
        self._timer = None
        now = self._scheduler.now_ns()
        for mk in list(self._marks.values()):
            if mk.watched and mk.limit_ns > 0:
                self._tick_one(mk, now)
        self._arm()

    def _tick_one(self, mk: FeedMark, now: int) -> None:
        if mk.seen:
            mk.heard = True
            mk.seen = False
            silent = now - mk.last_ns
            mk.last_ns = now
            if mk.stale:
                mk.stale = False
                self._on_resumed(
                    mk.exchange,
                    f"{mk.exchange.name} feed heard again after {silent / 1e9:.1f}s of silence",
                )
            return
        if not mk.heard and not mk.from_heartbeat:
            mk.last_ns = now  # a backtest's venue whose data have not begun yet
            return
        silent = now - mk.last_ns
        if not mk.stale and silent > mk.limit_ns:
            mk.stale = True
            self.stale_reports += 1
            self._on_stale(
                mk.exchange,
                f"{mk.exchange.name} feed silent for {silent / 1e9:.1f}s "
                f"(limit {mk.limit_ns / 1e9:g}s)",
            )
