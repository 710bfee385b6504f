"""A 16-permutation sweep on one recording: local processes against Ray, and the decoding paid
once per node against once per run.

Run: ``python bench/bench_sweep.py [recording] [--jobs 2]``. Default: the Binance USD-M capture
in ``../shared/data`` with ``demo_strat/market_maker.toml`` (instrument 1001), the grid
``spread_ticks=2:9 size=0.010,0.020``. Each case is ``mlthon sweep`` as a user runs it, with an
empty replay cache of its own:

* local, no cache: every run decodes the recording (``--no-cache``);
* local: the cache warmed once before the runs, the runs read it;
* ray: the same on a local Ray instance started by the sweep (its start-up is in "command").

Printed per case: the command's wall time (imports, Ray's start), the sweep's (warm-up and runs),
the CPU seconds of the runs and of the warm-up (measured in the workers), the warm-up's decode
time, and the decoding the runs would have paid without the cache (runs x the decode's CPU).
The tables of the three cases must be equal (the runs are deterministic); it says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CAPTURE = (
    REPO / ".." / "shared" / "data" / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
)
CONFIG = REPO / "demo_strat" / "market_maker.toml"
GRID = ("spread_ticks=2:9", "size=0.010,0.020")
RUN_COLUMNS = ("attempts", "run_s", "cpu_s", "node", "folder")


def sweep(case: str, recording: Path, jobs: int, work: Path) -> dict[str, Any]:
    """Run one case in a fresh cache; its figures."""
    out = work / case
    env = {**os.environ, "MLTHON_CACHE_DIR": str(work / f"cache-{case}")}
    args = [
        *(sys.executable, "-m", "mlthon", "--log-level", "WARNING", "sweep", str(CONFIG)),
        *("--data", str(recording), "--instruments", "1001"),
        *("--set", "exchange=BinanceUsdm", "instrument_id=1001"),
        *("--grid", *GRID, "--jobs", str(jobs), "--out", str(out)),
    ]
    if case == "ray":
        args += ["--engine", "ray"]
    if case == "local, no cache":
        args += ["--no-cache"]
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{case}: exit {p.returncode}\n{p.stderr[-3000:]}")
    info = json.loads((out / "sweep_run.json").read_text())
    rows = json.loads((out / "sweep.json").read_text())
    warm = [w for w in info["warm_up"] if w["decoded"]]
    return {
        "case": case,
        "runs": len(rows),
        "command_s": wall,
        "sweep_s": info["wall_s"],
        "runs_cpu_s": sum(r["cpu_s"] for r in rows),
        "run_s": sum(r["run_s"] for r in rows) / len(rows),
        "decode_s": sum(w["wall_s"] for w in warm),
        "decode_cpu_s": sum(w["cpu_s"] for w in warm),
        "table": [{k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in rows],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", nargs="?", default=str(CAPTURE))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    recording = Path(a.recording).resolve()
    print(f"recording: {recording} ({recording.stat().st_size / 1e6:.1f} MB)")
    print(f"grid: {' '.join(GRID)} (16 permutations), {a.jobs} at once, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        cases = [
            sweep(c, recording, a.jobs, Path(tmp)) for c in ("local, no cache", "local", "ray")
        ]
    head = (
        f"{'case':<16} {'command s':>9} {'sweep s':>8} {'runs CPU s':>10} {'s/run':>6} "
        f"{'decode once s (CPU)':>20}"
    )
    print(head)
    print("-" * len(head))
    for c in cases:
        decode = f"{c['decode_s']:.2f} ({c['decode_cpu_s']:.2f})" if c["decode_s"] else "-"
        print(
            f"{c['case']:<16} {c['command_s']:>9.1f} {c['sweep_s']:>8.1f} "
            f"{c['runs_cpu_s']:>10.1f} {c['run_s']:>6.2f} {decode:>20}"
        )
    cached = cases[1]
    extra = cases[0]["runs_cpu_s"] - cached["runs_cpu_s"]
    print(
        f"decoding: once per node {cached['decode_cpu_s']:.2f} s CPU; paid by every run without "
        f"the cache: {extra:.1f} s CPU over {cached['runs']} runs "
        f"({extra / cached['runs']:.2f} s CPU more per run)"
    )
    same = cases[0]["table"] == cases[1]["table"] == cases[2]["table"]
    print(f"tables equal (local no cache, local, ray): {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
