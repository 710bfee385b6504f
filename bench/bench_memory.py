"""Peak memory of a file replay: the demo market maker on the Binance capture, 1x and 4x as long.

A replay streams its files (and the replay cache reads its chunks one at a time), so the peak
resident memory of a backtest must not grow with the length of the recording beyond what the
results themselves hold (orders, fills, one equity sample per second). This runs, each in a
fresh child process (so that each peak is its own):

* ``1x``: the demo market maker (``bench_pipeline.py``'s parameters) on the Binance USD-M BTCUSDT
  capture (``shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz``; the bundled
  3,000-line excerpt when absent);
* ``4x``: the same on a file of four copies of the capture one after the other, each shifted in
  time by the capture's span plus one second (the feed resynchronises each copy from its own REST
  snapshot, as a real session after a reconnect would);

each for a strategy that only reads (subscribed to the book, BBO and trades: the replay alone)
and for the demo market maker (whose results, orders, order events and fills, grow with the
run), with the replay cache off (decoding the JSON) and, when ``--cache`` is given, again with a
warm cache. It prints the peak resident set (``ru_maxrss``) of each child, the baseline of a
child that only imports mlthon and builds the backtest, and the growth from 1x to 4x.

Run: python bench/bench_memory.py [--cache]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAPTURE = ROOT.parent / "shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz"
EXCERPT = ROOT / "mlthon/data/binance_usdm_btcusdt_sample.gz"

CHILD = r"""
import json, logging, resource, sys
sys.path.insert(0, {root!r})
logging.disable(logging.WARNING)
from demo_strat.market_maker import MarketMaker
from mlthon.app.backtest import Backtest
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.instruments import load_instruments
insts = [i for i in load_instruments() if i.instrument_id == 1001]
gw = SimGatewayConfig.from_dict({{"account": {{"balances": {{"USDT": "100000"}}}}}})
params = {{"exchange": "BinanceUsdm", "instrument_id": 1001, "spread_ticks": 2, "size": "0.002",
          "max_position": "0.010", "requote_ms": 500}}
from mlthon.api import MDSub, Strategy
from mlthon.basics import Exchange


class Watcher(Strategy):
    def on_framework_connected(self, env):
        self.e = env
        env.login("mem")

    def on_start(self, params):
        for sub in (MDSub.PriceLevelBook, MDSub.BBO, MDSub.PublicTrades):
            self.e.subscribe(Exchange.BinanceUsdm, 1001, sub)

    def on_stop(self, params):
        self.e.send_stop_ack()


if {watch}:
    bt = Backtest(Watcher, data=[{path!r}], instruments=insts, name="mem", gateway=gw)
else:
    bt = Backtest(MarketMaker, data=[{path!r}], instruments=insts, params=params, name="mem",
                  gateway=gw)
events = 0
if {run}:
    r = bt.run()
    events = r.summary["events"]
print(json.dumps({{"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "events": events}}))
"""


def capture() -> Path:
    return CAPTURE if CAPTURE.exists() else EXCERPT


def four_times(src: Path, dst: Path) -> None:
    """Four copies of ``src`` one after the other, each shifted by its span plus 1 s."""
    with gzip.open(src, "rb") as f:
        lines = [line for line in f if line.strip()]
    stamps = [int(line.split(b" ", 1)[0]) for line in lines]
    shift = max(stamps) - min(stamps) + 1_000_000_000
    with gzip.open(dst, "wb", compresslevel=1) as out:
        for k in range(4):
            for ts, line in zip(stamps, lines, strict=True):
                out.write(b"%d %s" % (ts + k * shift, line.split(b" ", 1)[1]))


def child(path: Path, run: bool, cache_dir: str | None, watch: bool = False) -> dict[str, int]:
    env = dict(os.environ)
    env["MLTHON_CACHE_DIR"] = cache_dir or "/proc/mlthon-no-cache"
    code = CHILD.format(root=str(ROOT), path=str(path), run=run, watch=watch)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode:
        sys.exit(f"bench_memory: child failed:\n{proc.stderr[-3000:]}")
    out: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", action="store_true", help="also with a warm replay cache")
    a = ap.parse_args()
    src = capture()
    print(f"data: {src}")
    with tempfile.TemporaryDirectory() as tmp:
        x4 = Path(tmp) / "capture_x4.gz"
        four_times(src, x4)
        base = child(src, False, None)["maxrss_kb"]
        print(f"baseline (imports and set-up, no run): {base / 1024:.1f} MB")
        modes: list[tuple[str, str | None]] = [("cache off", None)]
        if a.cache:
            modes.append(("cache warm", str(Path(tmp) / "cache")))
        for (label, cache_dir), watch in itertools.product(modes, (True, False)):
            if cache_dir is not None:  # fill the cache first
                child(src, True, cache_dir, watch)
                child(x4, True, cache_dir, watch)
            one = child(src, True, cache_dir, watch)
            four = child(x4, True, cache_dir, watch)
            who = "no orders (book, BBO, trades)" if watch else "demo market maker"
            print(
                f"{who}, {label}: 1x {one['maxrss_kb'] / 1024:.1f} MB "
                f"({one['events']:,} messages), "
                f"4x {four['maxrss_kb'] / 1024:.1f} MB ({four['events']:,} messages); "
                f"4x / 1x = {four['maxrss_kb'] / one['maxrss_kb']:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
