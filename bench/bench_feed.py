"""Events/s of replaying the Binance USD-M capture through parser + book, beside a json baseline.

Run: ``python bench/bench_feed.py [capture.gz]``. Both loops read the same lines, already
decompressed into memory, in the same run:

* baseline: a bare Python loop that only ``json.loads`` each line's JSON;
* feed: the production path, decoder (msgspec) + feed engine (book, integrity checks, bus
  messages) into a no-op sink.

The target is a feed rate of at least 1/3 of the baseline's.

``--conversions`` measures the ways to turn the capture's price and size text into integer ticks
and lots (the feed engine's conversion, :mod:`mlthon.feeds.grid`), in CPU ns per text: a dict
lookup of a text already seen (``grid.ticks.get``), the hand-written parser of a new text against
the grid's decimal places (:func:`~mlthon.feeds.grid.scaled` + ``divmod``), and ``Decimal``
(``divmod(Decimal(text), tick_size)``); with how many of the capture's level texts are new to the
cache (the misses), and a check that the parser and ``Decimal`` agree on every distinct text.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from decimal import Decimal
from pathlib import Path

from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.binance_usdm.parse import BinanceDecoder
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import DepthDiff, DepthSnapshot
from mlthon.feeds.grid import places_of, scaled
from mlthon.infra.bus.messages import BookUpdate
from mlthon.infra.instruments import load_instruments

REPO = Path(__file__).resolve().parents[1]
DEFAULT = (
    REPO / ".." / "shared" / "data" / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
)


def baseline(lines: list[bytes]) -> float:
    t = time.perf_counter()
    loads = json.loads
    for raw in lines:
        loads(raw[raw.find(b" ") + 1 :])
    return time.perf_counter() - t


def feed(lines: list[bytes]) -> tuple[float, int, int]:
    count = 0
    levels = 0

    def sink(msg: object) -> None:
        nonlocal count, levels
        count += 1
        if type(msg) is BookUpdate:
            levels += len(msg.ch)

    engine = FeedEngine(load_instruments(), sink)
    decode = BinanceDecoder(Exchange.BinanceUsdm).decode
    on_event = engine.on_event
    ex = Exchange.BinanceUsdm
    t = time.perf_counter()
    for raw in lines:
        sp = raw.find(b" ")
        ts = int(raw[:sp])
        for ev in decode(raw[sp + 1 :]):
            on_event(ts, ex, ev)
    return time.perf_counter() - t, count, levels


def _cpu_ns_each(fn: object, items: list[str], rounds: int = 5) -> float:
    """Best-of-``rounds`` CPU ns per item of ``fn`` over ``items``."""
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time_ns()
        fn(items)  # type: ignore[operator]
        best = min(best, time.process_time_ns() - t)
    return best / max(1, len(items))


def conversions(lines: list[bytes]) -> None:
    """Text -> ticks/lots options on the capture's level texts (see the module docstring)."""
    decode = BinanceDecoder(Exchange.BinanceUsdm).decode
    prices: list[str] = []
    sizes: list[str] = []
    for raw in lines:
        for ev in decode(raw[raw.find(b" ") + 1 :]):
            if type(ev) in (DepthDiff, DepthSnapshot):
                for p, q in (*ev.bids, *ev.asks):  # type: ignore[union-attr]
                    prices.append(p)
                    sizes.append(q)
    inst = next(i for i in load_instruments() if i.instrument_id == 1001)
    for what, texts, step in (("price", prices, inst.tick_size), ("size", sizes, inst.lot_size)):
        distinct = list(dict.fromkeys(texts))
        places = places_of(step)
        units = int(step.scaleb(places))
        cache = {t: divmod(scaled(t, places), units)[0] for t in distinct}  # type: ignore[operator]

        def hits(items: list[str], get=cache.get) -> None:
            for t in items:
                get(t)

        def parser(items: list[str], places=places, units=units) -> None:
            for t in items:
                divmod(scaled(t, places), units)  # type: ignore[operator]

        def decimal(items: list[str], step=step) -> None:
            for t in items:
                n, _r = divmod(Decimal(t), step)
                int(n)

        agree = all(
            divmod(scaled(t, places), units) == tuple(map(int, divmod(Decimal(t), step)))  # type: ignore[operator]
            for t in distinct
        )
        print(
            f"{what}: {len(texts):,} level texts, {len(distinct):,} distinct "
            f"({len(distinct) / len(texts):.2%} misses); CPU ns per text: dict hit "
            f"{_cpu_ns_each(hits, texts):.0f}, hand parser {_cpu_ns_each(parser, distinct):.0f}, "
            f"Decimal {_cpu_ns_each(decimal, distinct):.0f}; parser == Decimal on every text: "
            f"{agree}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("capture", nargs="?", default=str(DEFAULT), help="a Binance USD-M capture")
    ap.add_argument(
        "--conversions", action="store_true", help="measure the text -> ticks options instead"
    )
    args = ap.parse_args()
    path = Path(args.capture)
    with gzip.open(path, "rb") as f:
        lines = [ln.rstrip(b"\n") for ln in f]
    if args.conversions:
        conversions(lines)
        return
    n = len(lines)
    # Interleaved runs, best of each: the machine is shared, so load drifts between runs.
    bases: list[float] = []
    feeds: list[tuple[float, int, int]] = []
    for _ in range(5):
        bases.append(baseline(lines))
        feeds.append(feed(lines))
    base = min(bases)
    best = min(feeds)
    base_rate = n / base
    feed_rate = n / best[0]
    print(f"file: {path.name}, {n} venue messages")
    print(f"baseline json.loads only : {base_rate:12,.0f} msg/s")
    print(f"parser + book + sink     : {feed_rate:12,.0f} msg/s ({best[1]} bus messages)")
    print(f"level changes applied    : {best[2] / best[0]:12,.0f} levels/s ({best[2]} levels)")
    print(f"ratio feed / baseline    : {feed_rate / base_rate:.2f} (target >= 0.33)")


if __name__ == "__main__":
    main()
