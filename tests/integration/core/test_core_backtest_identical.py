"""A backtest gives byte-identical results with the compiled core and the pure-Python one.

Each case runs ``mlthon backtest`` twice in fresh processes, once as installed (the compiled core)
and once with ``MLTHON_PURE=1``, and compares the result files byte for byte (``perf.json`` holds
the wall time and the pid, so it is left out). Cases: the demo on the synthetic market, on the
bundled Binance USD-M excerpt, on the whole USD-M capture and on the Binance spot capture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

CFG = REPO / "demo_strat" / "market_maker.toml"
COMPARED = ("orders.csv", "fills.csv", "equity.csv", "summary.json")
USDM = ["--instruments", "1001", "--set", "exchange=BinanceUsdm", "instrument_id=1001"]
SPOT = [
    *("--instruments", "1201", "--set", "exchange=BinanceSpot", "instrument_id=1201"),
    *("--set", "spread_ticks=6"),
]

CASES = {
    "synthetic": ["--synthetic-seconds", "300", "--seed", "7"],
    "bundled-usdm": ["--data", str(REPO / "mlthon/data/sample_binance_usdm_btcusdt.gz"), *USDM],
    "usdm-capture": [
        "--data",
        str(SHARED_DATA / "hftbacktest/binance_usdm_futures/btcusdt_20240808.gz"),
        *USDM,
    ],
    "spot-capture": [
        "--data",
        str(SHARED_DATA / "hftbacktest/binance_spot/btcusdt_20240808.gz"),
        *SPOT,
    ],
}


def _backtest(out: Path, args: list[str], pure: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MLTHON_PURE"}
    env["MLTHON_PURE"] = "1" if pure else "0"
    res = subprocess.run(
        [
            *(sys.executable, "-m", "mlthon", "--log-level", "INFO", "backtest", str(CFG)),
            *("--out", str(out), "--no-report", *args),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res.stderr


@pytest.fixture(scope="module")
def compiled_built() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "mlthon._core", "--expect", "compiled"],
        env={k: v for k, v in os.environ.items() if k != "MLTHON_PURE"},
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        pytest.skip(f"compiled core not built: {probe.stdout.strip()}")


@pytest.mark.parametrize("case", list(CASES))
def test_core_backtest_results_identical_compiled_and_pure(tmp_path, case, compiled_built):
    args = CASES[case]
    if "--data" in args:
        data = Path(args[args.index("--data") + 1])
        assert data.is_file(), f"{data} is missing (the shared data folder sits beside the clone)"
    said_compiled = _backtest(tmp_path / "compiled", args, pure=False)
    said_pure = _backtest(tmp_path / "pure", args, pure=True)
    if "mlthon core:" not in said_compiled + said_pure:
        pytest.skip("this backtest does not use the core's classes yet (no 'mlthon core' line)")
    assert "mlthon core: compiled" in said_compiled
    assert "mlthon core: pure Python (MLTHON_PURE=1)" in said_pure
    for name in COMPARED:
        a = (tmp_path / "compiled" / name).read_bytes()
        b = (tmp_path / "pure" / name).read_bytes()
        assert a == b, f"{case}: {name} differs between the compiled and the pure core"
    assert b'"fills": 0,' not in (tmp_path / "pure" / "summary.json").read_bytes()
