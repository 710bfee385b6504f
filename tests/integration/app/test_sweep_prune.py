"""Pruning a sweep by successive halving (``--prune``, issue 20): a grid keeps the best half of
its permutations at half the window and prunes the rest, which are listed last, unranked and
marked; its best is the unpruned sweep's best; two runs give the same table; optuna with pruning
is repeatable; recordings are cut at the fraction of their span; Ray prunes as the local engine
does."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import REPO
from tests.integration.app import test_sweep_cluster as cluster
from tests.integration.app.test_sweep_cluster import NO_OPTUNA, NO_RAY, RAY_ENV, sweep, table

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# x=14:17, y=4,5 of the peak strategy (30 - |x - 17| - |y - 5| fills, one every 20 ms): all its
# orders are done within its first second, so half of 2 s ranks as the whole does.
GRID = ("--grid", "x=14:17", "y=4,5", "--rank", "fills", "--synthetic-seconds", "2")
peak = cluster.peak  # the peak strategy beside its TOML, in a folder of the test's


def test_a_grid_pruned_at_half_keeps_the_best_half_same_best_same_table(peak):
    p = sweep(peak, "peak.toml", *GRID, "--prune", "0.5", "--jobs", "2", "--out", "a")
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((peak / "a" / "sweep.json").read_text())
    assert len(rows) == 8
    full, pruned = rows[:4], rows[4:]
    assert [r["rank"] for r in full] == [1, 2, 3, 4]
    assert all(r["pruned_at"] is None and r["interim_rank"] == "" for r in full)
    assert [r["rank"] for r in pruned] == [""] * 4
    assert [r["interim_rank"] for r in pruned] == ["5/8", "6/8", "7/8", "8/8"]
    assert all(r["pruned_at"] == 0.5 for r in pruned)
    assert pruned[0]["note"] == "pruned at 50% (fills 28, rank 5/8)"
    assert max(r["fills"] for r in pruned) <= min(r["fills"] for r in full)
    # a pruned run's folder is its half-window run's; a full run took two runs
    assert pruned[0]["folder"].endswith("/rung-50pct") and full[0]["attempts"] == 2
    summary = json.loads((peak / pruned[0]["folder"] / "summary.json").read_text())
    assert summary["duration_s"] <= 1.0
    assert "pruning: 4 of 8 permutations pruned;" in p.stdout and "s CPU saved" in p.stdout
    info = json.loads((peak / "a" / "sweep_run.json").read_text())
    assert info["prune"] == ["0.5"] and info["prune_keep"] == "0.5" and info["pruned"] == 4
    html = (peak / "a" / "sweep.html").read_text()
    assert html.count('<tr class="pruned">') == 4 and "pruned at 50%" in html

    again = sweep(peak, "peak.toml", *GRID, "--prune", "0.5", "--jobs", "2", "--out", "b")
    assert again.returncode == 0, again.stderr[-3000:]
    assert table(peak / "a") == table(peak / "b")  # the same pruning, the same table

    whole = sweep(peak, "peak.toml", *GRID, "--jobs", "2", "--out", "c")
    assert whole.returncode == 0, whole.stderr[-3000:]
    unpruned = table(peak / "c")
    best = {k: v for k, v in table(peak / "a")[0].items() if k not in ("pruned_at", "interim_rank")}
    assert best == unpruned[0] and best["permutation_id"] == "x=17-y=5"
    # the kept ones are the unpruned sweep's top four
    assert [r["permutation_id"] for r in full] == [r["permutation_id"] for r in unpruned[:4]]


def test_two_rungs_keep_a_share_at_each(peak):
    p = sweep(
        peak,
        *("peak.toml", *GRID, "--prune", "0.5,0.75", "--prune-keep", "0.5", "--jobs", "2"),
        *("--out", "o"),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((peak / "o" / "sweep.json").read_text())
    assert [r["pruned_at"] for r in rows] == [None, None, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5]
    assert rows[0]["permutation_id"] == "x=17-y=5" and rows[0]["attempts"] == 3
    assert [r["interim_rank"] for r in rows[2:4]] == ["3/4", "4/4"]


def test_optuna_with_pruning_is_repeatable(peak):
    if importlib.util.find_spec("optuna") is None:
        pytest.skip(NO_OPTUNA)
    args = ("peak.toml", "--grid", "x=8:26", "y=0:12", "--search", "optuna", "--trials", "12")
    args += ("--search-seed", "3", "--rank", "fills", "--synthetic-seconds", "2", "--jobs", "2")
    args += ("--prune", "0.5", "--batch", "4")
    first = sweep(peak, *args, "--out", "a")
    assert first.returncode == 0, first.stderr[-3000:]
    second = sweep(peak, *args, "--out", "b")
    assert second.returncode == 0, second.stderr[-3000:]
    a = table(peak / "a")
    assert a == table(peak / "b")
    kept = [r for r in a if r["pruned_at"] is None]
    assert kept and all(r["rank"] for r in kept if r["fills"])
    assert any(r["pruned_at"] == 0.5 for r in a)
    # the first round (4 trials) keeps 2; later rounds are judged against every trial so far
    assert sum(1 for r in a if r["trial"] < 4 and r["pruned_at"] is None) == 2


def test_recordings_cut_at_the_fraction_of_their_span(shared_data, tmp_path):
    recording = shared_data / "hftbacktest" / "binance_spot" / "btcusdt_20240808.gz"
    args = (
        str(REPO / "demo_strat" / "market_maker.toml"),
        *("--data", str(recording), "--instruments", "1201"),
        *("--set", "exchange=BinanceSpot", "instrument_id=1201"),
        *("--end", "2024-08-08T23:58:00", "--grid", "spread_ticks=4,8", "--jobs", "2"),
        *("--prune", "0.5", "--out", "o"),
    )
    p = sweep(tmp_path, *args, env={"MLTHON_CACHE_DIR": str(tmp_path / "cache")})
    assert p.returncode == 0, p.stderr[-3000:]
    info = json.loads((tmp_path / "o" / "sweep_run.json").read_text())
    lo, hi = info["prune_window_ns"]
    end = 1_723_161_480 * 1_000_000_000  # --end 2024-08-08T23:58:00 (from 23:54:13)
    assert info["warm_up"][0]["first_ns"] == lo and hi > end
    rows = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert len(rows) == 2 and rows[0]["pruned_at"] is None
    assert rows[1]["pruned_at"] == 0.5 and rows[1]["note"].startswith("pruned at 50% (")
    full = json.loads((tmp_path / rows[0]["folder"] / "summary.json").read_text())
    half = json.loads((tmp_path / rows[0]["folder"] / "rung-50pct" / "summary.json").read_text())
    assert half["end_ns"] <= lo + (end - lo) // 2 < full["end_ns"] <= end


def test_ray_prunes_as_the_local_engine_does(peak):
    if importlib.util.find_spec("ray") is None:
        pytest.skip(NO_RAY)
    args = ("peak.toml", *GRID, "--prune", "0.5", "--jobs", "2")
    p = sweep(peak, *args, "--engine", "ray", "--out", "r", env=RAY_ENV)
    assert p.returncode == 0, p.stderr[-3000:]
    q = sweep(peak, *args, "--out", "l")
    assert q.returncode == 0, q.stderr[-3000:]
    assert table(peak / "r") == table(peak / "l")
    assert sum(1 for r in table(peak / "r") if r["pruned_at"] == 0.5) == 4
