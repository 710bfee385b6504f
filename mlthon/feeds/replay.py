"""Replay of recorded market data through the production parsers and the feed engine.

:func:`replay_file` / :func:`replay_files` yield our normalised messages (``FeedStatus``,
``BookUpdate``, ``LevelUpdate``, ``TradeUpdate``, ``FundingUpdate``) in receive-time order, each
with its ``ts``. Several files are merged by receive time (ties: the order of ``paths``, then file
order) and share one engine, so a REST-snapshot file and a WebSocket file of one session, or two
consecutive days, make one continuous feed.

Each file's venue events are decoded once: later replays of the same bytes read them from the
replay cache (:mod:`mlthon.feeds.replay_cache`) unless ``cache=False``.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter
from pathlib import Path

from mlthon.basics.instrument import Instrument
from mlthon.feeds.engine import FeedEngine, FeedStats
from mlthon.feeds.events import SourceEvent
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay_cache import ReplayCache
from mlthon.infra.bus.messages import Msg

log = logging.getLogger(__name__)

NS = 1_000_000_000


class Replay(Iterator[Msg]):
    """An iterator of the messages of recorded files; ``engine`` and ``stats`` stay readable.

    Args:
        paths: the files (any supported format; see :mod:`mlthon.feeds.readers`).
        instruments: instruments to publish; other symbols are counted as unknown.
        start_ns: messages before this receive time are not yielded; the books are still built
            from them, and at the first event at or after it every live book is sent as a
            snapshot (``SnapshotStart``, the book, ``SnapshotEnd``).
        end_ns: stop after this receive time.
        silence_timeout_s: invalidate a live book with no update for this long (None: off).
        cache: the replay cache of decoded files: True (the default directory,
            ``$MLTHON_CACHE_DIR``), a :class:`ReplayCache`, or False to decode every file.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        instruments: Iterable[Instrument],
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        silence_timeout_s: float | None = None,
        cache: bool | ReplayCache = True,
    ) -> None:
        self._out: deque[Msg] = deque()
        timeout = None if silence_timeout_s is None else int(silence_timeout_s * NS)
        self.engine = FeedEngine(instruments, self._out.append, silence_timeout_ns=timeout)
        self.paths = [str(p) for p in paths]
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.cache: ReplayCache | None = (
            cache if isinstance(cache, ReplayCache) else ReplayCache() if cache else None
        )
        self._sources: list[Iterator[SourceEvent]] = []
        # Called with each venue event's receive time before the engine applies it (once the
        # first message is out): a backtest runs the timers due by then, so that a timer between
        # two messages sees the engine's books as of the last message delivered, not the next.
        self.advance: Callable[[int], None] | None = None
        self._it = self._run()

    @property
    def stats(self) -> FeedStats:
        """The engine's counters so far."""
        return self.engine.stats

    def __iter__(self) -> Iterator[Msg]:
        # The generator itself: a ``for`` loop then runs at generator speed, without a Python
        # ``__next__`` call per message.
        return self._it

    def __next__(self) -> Msg:
        return next(self._it)

    def _events(self) -> Iterator[SourceEvent]:
        report = self.engine.bad_data
        cache = self.cache
        sources = [
            read_source(p, report) if cache is None else cache.events(p, report) for p in self.paths
        ]
        self._sources = sources
        if len(sources) == 1:
            return sources[0]
        return heapq.merge(*sources, key=attrgetter("ts"))

    def _run(self) -> Iterator[Msg]:
        engine = self.engine
        out = self._out
        start = self.start_ns
        end = self.end_ns
        silence = engine.silence_timeout_ns is not None
        started = start is None
        on_event = engine.on_event
        last_ts: dict[str, int] = {}
        advanced = -1  # the last time handed to ``advance`` (once per receive time)
        try:
            for se in self._events():
                ts = se.ts
                src = se.source
                if ts < last_ts.get(src, ts):
                    engine.bad_data(f"receive time {ts} goes backwards; skipped", src, se.line)
                    continue
                last_ts[src] = ts
                if end is not None and ts > end:
                    break
                if not started and start is not None and ts >= start:
                    started = True
                    out.clear()
                    engine.emit_book_images(ts)
                if silence:
                    engine.check_silence(ts)
                if started and ts > advanced:
                    advanced = ts
                    advance = self.advance
                    if advance is not None:
                        advance(ts)
                on_event(ts, se.exchange, se.event, se.source, se.line)
                if started:
                    while out:
                        yield out.popleft()
                else:
                    out.clear()
            for why in engine.waiting_reasons():
                log.warning("feed: %s", why)
            s = engine.stats
            log.info(
                "feed: replay of %s done: %d events, %d messages, %d syncs, %d gaps, %d bad",
                ", ".join(self.paths),
                s.events,
                s.emitted,
                s.syncs,
                s.gaps,
                s.bad,
            )
        finally:
            # A replay stopped before the end of its files: each cached reader keeps what it
            # decoded so far (closing a reader that already ended does nothing).
            for reader in self._sources:
                close = getattr(reader, "close", None)
                if close is not None:
                    close()


def replay_files(
    paths: Sequence[str | Path],
    instruments: Iterable[Instrument],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    silence_timeout_s: float | None = None,
    cache: bool | ReplayCache = True,
) -> Replay:
    """Replay several recorded files merged by receive time through one engine.

    ``cache``: see :class:`Replay` (True: decode each file once, then read the replay cache).

    Returns:
        A :class:`Replay`: an iterator of messages that also exposes ``stats`` and ``engine``.

    Raises:
        BadMarketData: (while iterating) a file cannot be read or its format is unknown.
    """
    return Replay(
        paths,
        instruments,
        start_ns=start_ns,
        end_ns=end_ns,
        silence_timeout_s=silence_timeout_s,
        cache=cache,
    )


def replay_file(
    path: str | Path,
    instruments: Iterable[Instrument],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    silence_timeout_s: float | None = None,
    cache: bool | ReplayCache = True,
) -> Replay:
    """Replay one recorded file (format detected from its content); see :func:`replay_files`."""
    return Replay(
        [path],
        instruments,
        start_ns=start_ns,
        end_ns=end_ns,
        silence_timeout_s=silence_timeout_s,
        cache=cache,
    )
