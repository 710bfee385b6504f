"""A seeded synthetic market: the demo's default data (no files, no network).

The model works in whole ticks and lots of the instrument:

* a price-level book of ``depth`` levels a side, sizes on the lot grid, larger further out;
* a spread of 1 or 2 ticks: whenever a side's touch is taken out, a new quote refills the gap;
* events arrive with exponential gaps (mean ``mean_gap_ms``): mostly size changes (new orders,
  cancels) at random levels, some trades at the touch that consume one or more levels (buyers
  lift asks, sellers hit bids), and drifts of the touch that move the mid as a random walk;
* a funding update every ``funding_every_s`` seconds.

The events go through the production :class:`~mlthon.feeds.engine.FeedEngine`, so the output is
exactly what a real feed gives: ``SnapshotStart``, the book, ``SnapshotEnd``, then ``BookUpdate``,
``TradeUpdate`` and ``FundingUpdate`` messages. The same seed gives the same stream.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from decimal import Decimal

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Side
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import (
    SEQ_NEXT,
    DepthDiff,
    DepthSnapshot,
    Event,
    Funding,
    StrTrade,
    Trades,
)
from mlthon.infra.bus.messages import Msg

NS = 1_000_000_000
MS = 1_000_000
BUY = Side.Buy.value
SELL = Side.Sell.value
_FUNDING_PERIOD_NS = 8 * 3600 * NS


class _Model:
    """The synthetic book in integer ticks and lots."""

    def __init__(self, inst: Instrument, rng: random.Random, start_price: Decimal, depth: int):
        self.inst = inst
        self.rng = rng
        self.depth = depth
        self.tick = inst.tick_size
        self.lot = inst.lot_size
        self.unit_lots = max(1, int(Decimal(1) / self.lot)) if self.lot < 1 else 1
        mid = int(start_price / self.tick)
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        bb = mid - 1
        ba = bb + (1 if rng.random() < 0.5 else 2)
        for i in range(depth):
            self.bids[bb - i] = self._size(i)
            self.asks[ba + i] = self._size(i)
        self.uid = 0

    def _size(self, level: int) -> int:
        scale = 0.3 + 0.15 * level
        return max(1, int(self.unit_lots * scale * self.rng.expovariate(1.0)))

    def px(self, ticks: int) -> str:
        return format((self.tick * ticks).quantize(self.tick), "f")

    def qty(self, lots: int) -> str:
        return format((self.lot * lots).quantize(self.lot), "f")

    def best_bid(self) -> int:
        return max(self.bids)

    def best_ask(self) -> int:
        return min(self.asks)

    def snapshot(self, ets: int) -> DepthSnapshot:
        bids = [(self.px(p), self.qty(q)) for p, q in sorted(self.bids.items(), reverse=True)]
        asks = [(self.px(p), self.qty(q)) for p, q in sorted(self.asks.items())]
        return DepthSnapshot(self.inst.name, ets, self.uid, SEQ_NEXT, True, bids, asks)

    def _set(self, side: int, p: int, q: int, ch: dict[tuple[int, int], int]) -> None:
        book = self.bids if side == BUY else self.asks
        if q > 0:
            book[p] = q
        else:
            book.pop(p, None)
        ch[(side, p)] = q

    def _repair(self, ch: dict[tuple[int, int], int]) -> None:
        # Spread of 1-2 ticks: refill a gap left by a trade or a cancel at the touch.
        while self.best_ask() - self.best_bid() > 2:
            if self.rng.random() < 0.5:
                self._set(BUY, self.best_bid() + 1, self._size(0), ch)
            else:
                self._set(SELL, self.best_ask() - 1, self._size(0), ch)
        if self.best_ask() - self.best_bid() == 2 and self.rng.random() < 0.3:
            side = BUY if self.rng.random() < 0.5 else SELL
            p = self.best_bid() + 1 if side == BUY else self.best_ask() - 1
            self._set(side, p, self._size(0), ch)
        # Keep `depth` levels a side: extend the far end, trim beyond it.
        for side, book in ((BUY, self.bids), (SELL, self.asks)):
            while len(book) < self.depth:
                far = min(book) - 1 if side == BUY else max(book) + 1
                self._set(side, far, self._size(self.depth - 1), ch)
            while len(book) > self.depth:
                far = min(book) if side == BUY else max(book)
                self._set(side, far, 0, ch)

    def step(self, ets: int) -> list[Event]:
        """One venue message worth of changes (and maybe a trade)."""
        rng = self.rng
        ch: dict[tuple[int, int], int] = {}
        out: list[Event] = []
        r = rng.random()
        if r < 0.25:
            out.append(self._trade(ets, ch))
        elif r < 0.35:
            # The touch moves: a side's best level is pulled, or a new better quote arrives.
            side = BUY if rng.random() < 0.5 else SELL
            if rng.random() < 0.5:
                best = self.best_bid() if side == BUY else self.best_ask()
                self._set(side, best, 0, ch)
            elif self.best_ask() - self.best_bid() > 1:
                p = self.best_bid() + 1 if side == BUY else self.best_ask() - 1
                self._set(side, p, self._size(0), ch)
        else:
            side = BUY if rng.random() < 0.5 else SELL
            book = self.bids if side == BUY else self.asks
            level = min(int(rng.expovariate(0.25)), len(book) - 1)
            p = sorted(book, reverse=side == BUY)[level]
            delta = int(self._size(level) * (rng.random() - 0.45))
            self._set(side, p, max(0, book[p] + delta), ch)
        self._repair(ch)
        if ch:
            self.uid += 1
            bids = [(self.px(p), self.qty(q)) for (s, p), q in ch.items() if s == BUY]
            asks = [(self.px(p), self.qty(q)) for (s, p), q in ch.items() if s == SELL]
            out.append(DepthDiff(self.inst.name, ets, self.uid, self.uid, -1, SEQ_NEXT, bids, asks))
        return out

    def _trade(self, ets: int, ch: dict[tuple[int, int], int]) -> Trades:
        rng = self.rng
        taker = BUY if rng.random() < 0.5 else SELL
        book = self.asks if taker == BUY else self.bids
        remaining = max(1, int(self.unit_lots * 0.5 * rng.expovariate(1.0)))
        fills: list[StrTrade] = []
        while remaining > 0 and len(book) > 1:
            p = min(book) if taker == BUY else max(book)
            take = min(remaining, book[p])
            fills.append((taker, self.px(p), self.qty(take), ets, f"s{ets}-{len(fills)}"))
            self._set(SELL if taker == BUY else BUY, p, book[p] - take, ch)
            remaining -= take
        return Trades(self.inst.name, fills)


def synthetic_market(
    instrument: Instrument,
    *,
    seed: int,
    start_ns: int,
    duration_s: float | None = None,
    n_events: int | None = None,
    start_price: str = "100",
    depth: int = 20,
    mean_gap_ms: float = 50.0,
    funding_every_s: float = 60.0,
) -> Iterator[Msg]:
    """Messages of a synthetic market for one instrument, in receive-time order.

    Args:
        instrument: what is traded (its exchange, id, tick and lot are used).
        seed: the random seed; the same seed gives the same messages.
        start_ns: time of the first message.
        duration_s: stop after this much market time (None: use ``n_events``).
        n_events: stop after this many venue messages (None: use ``duration_s``).
        start_price: initial mid price.
        depth: levels per side.
        mean_gap_ms: mean time between venue messages.
        funding_every_s: time between funding updates.

    Raises:
        ValueError: neither ``duration_s`` nor ``n_events`` is given, or ``depth`` < 2.
    """
    if duration_s is None and n_events is None:
        raise ValueError("synthetic_market needs duration_s or n_events")
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    rng = random.Random(seed)
    out: deque[Msg] = deque()
    engine = FeedEngine([instrument], out.append)
    model = _Model(instrument, rng, Decimal(start_price), depth)
    ex = instrument.exchange
    end_ns = None if duration_s is None else start_ns + int(duration_s * NS)
    ts = start_ns
    engine.on_event(ts, ex, model.snapshot(ts), "synthetic", 0)
    yield from out
    out.clear()
    next_funding = start_ns
    count = 0
    while n_events is None or count < n_events:
        ts += max(1, int(rng.expovariate(1.0 / mean_gap_ms) * MS))
        if end_ns is not None and ts > end_ns:
            break
        if ts >= next_funding:
            next_funding += int(funding_every_s * NS)
            rate = format(Decimal(rng.randint(-30, 60)) / Decimal(1_000_000), "f")
            nxt = (ts // _FUNDING_PERIOD_NS + 1) * _FUNDING_PERIOD_NS
            mid = model.px((model.best_bid() + model.best_ask()) // 2)
            engine.on_event(ts, ex, Funding(instrument.name, ts, rate, nxt, mid), "synthetic", 0)
        for ev in model.step(ts):
            engine.on_event(ts, ex, ev, "synthetic", count)
        count += 1
        yield from out
        out.clear()
