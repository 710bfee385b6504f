"""Decoding a recording once: a cold replay (JSON decode + cache write) against a cached one.

Run: ``python bench/bench_decode_cache.py [recording] [--repeat 5]``. Default recording: the
Binance USD-M capture in ``../shared/data`` (else the bundled sample in ``mlthon/data``). Each
repeat, interleaved, times iterating every event of the file (what the feed engine receives):

* decode: :func:`mlthon.feeds.readers.read_source` alone (the JSON decoded, no cache);
* cold: a replay with an empty cache directory (decode + writing the cache);
* cached: the same file read again from that cache (hash of the file + cache file).

Wall and CPU time are the best of the repeats; the figure to watch is cached / decode (goal
<= 0.20). It runs twice: with the interpreter's default garbage collector, and with the settings
a backtest runs under (``gc.freeze`` + a gen-0 threshold of 100,000, see ``Backtest.run``). The
cache's size is printed beside the recording's.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from mlthon.feeds.events import SourceEvent
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay_cache import ReplayCache

REPO = Path(__file__).resolve().parents[1]
CAPTURE = (
    REPO / ".." / "shared" / "data" / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
)
SAMPLE = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"


def _report(why: str, source: str, line: int | None) -> None:
    pass


def timed(make: Callable[[], Iterator[SourceEvent]]) -> tuple[float, float, int]:
    """(wall s, CPU s, events) of iterating every event."""
    w = time.perf_counter()
    c = time.process_time()
    n = 0
    for _ in make():
        n += 1
    return time.perf_counter() - w, time.process_time() - c, n


def measure(path: Path, repeat: int) -> dict[str, tuple[float, float]]:
    best: dict[str, tuple[float, float]] = {}
    counts = set()

    def keep(name: str, wall: float, cpu: float, n: int) -> None:
        counts.add(n)
        w0, c0 = best.get(name, (wall, cpu))
        best[name] = (min(w0, wall), min(c0, cpu))

    for _ in range(repeat):
        d = Path(tempfile.mkdtemp(prefix="mlthon-bench-cache-"))
        try:
            cache = ReplayCache(d)
            keep("decode", *timed(partial(read_source, path, _report)))
            keep("cold", *timed(partial(cache.events, path, _report)))
            keep("cached", *timed(partial(cache.events, path, _report)))
            size = sum(p.stat().st_size for p in cache.entries())
        finally:
            shutil.rmtree(d, ignore_errors=True)
    assert len(counts) == 1, f"event counts differ between runs: {counts}"
    best["size"] = (float(size), float(counts.pop()))
    return best


def show(title: str, best: dict[str, tuple[float, float]], gz_size: int) -> None:
    size, events = best["size"]
    print(f"\n{title}  ({events:,.0f} events)")
    print(f"  {'':10} {'wall ms':>9} {'cpu ms':>9}")
    for name in ("decode", "cold", "cached"):
        w, c = best[name]
        print(f"  {name:10} {w * 1e3:9.1f} {c * 1e3:9.1f}")
    dw, dc = best["decode"]
    cw, cc = best["cached"]
    fw, fc = best["cold"]
    print(f"  cached / decode: wall {cw / dw:.3f}, cpu {cc / dc:.3f}   (goal <= 0.20)")
    print(f"  cached / cold:   wall {cw / fw:.3f}, cpu {cc / fc:.3f}")
    print(
        f"  cache {size / 1e6:.2f} MB vs recording {gz_size / 1e6:.2f} MB ({size / gz_size:.2f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", nargs="?", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=5, help="best of this many runs (default 5)")
    a = ap.parse_args()
    path = a.recording or (CAPTURE if CAPTURE.exists() else SAMPLE)
    path = path.resolve()
    print(f"recording: {path}")
    gz_size = path.stat().st_size
    show("gc: interpreter default", measure(path, a.repeat), gz_size)
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, thresholds[1], thresholds[2])
    try:
        show(
            "gc: as in a backtest (freeze, gen-0 threshold 100,000)",
            measure(path, a.repeat),
            gz_size,
        )
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


if __name__ == "__main__":
    main()
