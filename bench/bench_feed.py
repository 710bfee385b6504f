"""Events/s of replaying the Binance USD-M capture through parser + book, beside a json baseline.

Run: ``python bench/bench_feed.py [capture.gz]``. Both loops read the same lines, already
decompressed into memory, in the same run:

* baseline: a bare Python loop that only ``json.loads`` each line's JSON;
* feed: the production path, decoder (msgspec) + feed engine (book, integrity checks, bus
  messages) into a no-op sink.

The target is a feed rate of at least 1/3 of the baseline's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.binance_usdm.parse import BinanceDecoder
from mlthon.feeds.engine import FeedEngine
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


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("capture", nargs="?", default=str(DEFAULT), help="a Binance USD-M capture")
    path = Path(ap.parse_args().capture)
    with gzip.open(path, "rb") as f:
        lines = [ln.rstrip(b"\n") for ln in f]
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
