"""Backtests from the replay cache give byte-identical results to backtests from the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlthon.app.cli import cache_main
from mlthon.feeds.replay_cache import ReplayCache, read_footer
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration

SAMPLE = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
# The files of a results folder that depend on the data only (perf.json holds wall times).
OUTPUTS = ("summary.json", "fills.csv", "orders.csv", "equity.csv", "stats.json")


def _config(tmp_path: Path) -> Path:
    """The demo market maker on Binance USD-M BTCUSDT (the recordings' instrument)."""
    text = (REPO / "demo_strat" / "market_maker.toml").read_text()
    text = text.replace('exchange = "Sim"', 'exchange = "BinanceUsdm"')
    text = text.replace("instrument_id = 9001", "instrument_id = 1001")
    text = text.replace("use = [9001]", "use = [1001]")
    text = text.replace('size = "0.010"', 'size = "0.002"')
    cfg = tmp_path / "mm.toml"
    cfg.write_text(text)
    return cfg


def _backtest(cfg: Path, data: Path, out: Path, *extra: str) -> dict[str, bytes]:
    p = run_cli("backtest", str(cfg), "--data", str(data), "--out", str(out), "--no-report", *extra)
    assert p.returncode == 0, p.stderr[-3000:]
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_backtest_cache_sample_cold_warm_equal_no_cache(tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("MLTHON_CACHE_DIR", str(cache_dir))
    cfg = _config(tmp_path)
    plain = _backtest(cfg, SAMPLE, tmp_path / "plain", "--no-cache")
    assert not cache_dir.exists()  # --no-cache writes nothing either
    cold = _backtest(cfg, SAMPLE, tmp_path / "cold")
    [entry] = ReplayCache(cache_dir).entries()
    assert read_footer(entry) is not None and read_footer(entry)[1]  # type: ignore[index]
    warm = _backtest(cfg, SAMPLE, tmp_path / "warm")
    assert cold == plain
    assert warm == plain
    summary = json.loads(plain["summary.json"])
    assert summary["events"] > 500 and summary["orders"] > 0


def test_backtest_cache_capture_window_prefix_then_whole_equal_no_cache(
    shared_data, tmp_path, monkeypatch
):
    capture = shared_data / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("MLTHON_CACHE_DIR", str(cache_dir))
    cfg = _config(tmp_path)
    window = ("--end", "1723161555000000000")
    plain = _backtest(cfg, capture, tmp_path / "plain", *window, "--no-cache")
    cold = _backtest(cfg, capture, tmp_path / "cold", *window)  # stops early: caches a prefix
    [entry] = ReplayCache(cache_dir).entries()
    footer = read_footer(entry)
    assert footer is not None and not footer[1]
    warm = _backtest(cfg, capture, tmp_path / "warm", *window)
    assert cold == plain
    assert warm == plain
    assert json.loads(plain["summary.json"])["orders"] > 0


def test_cache_command_info_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLTHON_CACHE_DIR", str(tmp_path))
    cache = ReplayCache()
    for _ in cache.events(SAMPLE, lambda *r: None):
        pass
    assert cache_main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"directory: {tmp_path}" in out and "complete" in out and "1 files" in out
    assert cache_main(["clear"]) == 0
    assert "removed 1 files" in capsys.readouterr().out
    assert cache.entries() == []
