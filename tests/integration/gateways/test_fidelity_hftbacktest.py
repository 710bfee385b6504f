"""The sim's fills beside hftbacktest's, on the Binance USD-M BTCUSDT capture (2024-08-08).

The same passive strategy (``bench/bench_vs_hftbacktest.py``: one bid and one ask at or behind the
best, re-placed every 100 ms, post-only, one lot, a position cap) runs on the first two minutes of
the capture in mlthon's backtest and in hftbacktest, both exchanges set up alike (conservative /
risk-averse queue, constant 5 ms latency both ways, one timeline); every fill must be the same:
exchange time to the nanosecond, side, price, quantity and order.

hftbacktest is an optional bench dependency (``pip install hftbacktest``, with numba): without it
the test is skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "hftbacktest", reason="hftbacktest is not installed (optional: pip install hftbacktest)"
)

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

import bench_vs_hftbacktest as bench  # noqa: E402

pytestmark = pytest.mark.integration

CAPTURE = Path("hftbacktest/binance_usdm_futures/btcusdt_20240808.gz")
WINDOW_S = 120


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hbt")


@pytest.mark.parametrize("depth_ticks", [0, 1])
def test_sim_fills_passive_quoter_same_as_hftbacktest(
    depth_ticks: int, shared_data: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTHON_CACHE_DIR", str(work / "replay-cache"))
    data = shared_data / CAPTURE
    inst = bench.bench_instrument(1001)
    start = bench.first_line_ts(data)
    setup = bench.Setup(depth_ticks=depth_ticks, end_ns=start + WINDOW_S * bench.S)
    ours = bench.run_mlthon(data, inst, setup)
    hbt = bench.Hftbacktest(data, inst, setup, work)
    hbt.warm_up()
    theirs = hbt.run(ours.anchor)
    assert len(ours.fills) >= 20  # the strategy trades: the comparison is not vacuous
    assert bench.first_difference(ours.fills, theirs.fills) is None
