"""Runs are kept (issue 18): each backtest writes ``results/<strategy>/<run id>/`` and points
``latest`` at it, ``--out DIR`` writes exactly there, a sweep writes a folder of its own with one
sub-folder per combination."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from unittest import mock

import pytest

from mlthon.app.backtest import Backtest, new_run_folder, point_latest
from mlthon.app.cli import backtest_main
from mlthon.feeds.synthetic import synthetic_market
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CFG = REPO / "demo_strat" / "market_maker.toml"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")


def _runs(folder: Path, prefix: str = "") -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name[:1] != "."
        if RUN_ID.fullmatch(p.name.removeprefix(prefix))
    )


def test_backtest_twice_without_out_two_run_folders_latest_is_last(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(CFG), "--synthetic-seconds", "20", "--no-report"]
    assert backtest_main(args) == 0
    assert backtest_main([*args, "--seed", "8"]) == 0
    base = tmp_path / "results" / "demo_mm"  # the demo's [backtest] out
    first, second = _runs(base)
    latest = base / "latest"
    assert latest.is_symlink() and os.readlink(latest) in (first.name, second.name)
    # relative, so the results folder can be moved or copied
    assert "/" not in os.readlink(latest)
    seeds = {json.loads((r / "run.json").read_text())["seeds"]["data"] for r in (first, second)}
    assert seeds == {7, 8}
    assert json.loads((latest / "run.json").read_text())["seeds"]["data"] == 8


def test_backtest_out_dir_writes_exactly_there_no_latest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mine"
    args = [str(CFG), "--synthetic-seconds", "10", "--no-report", "--out", str(out)]
    assert backtest_main(args) == 0
    assert (out / "summary.json").exists()
    assert not (tmp_path / "results").exists()


def test_new_run_folder_same_second_distinct_folders(tmp_path):
    folders = {new_run_folder(tmp_path) for _ in range(50)}
    assert len(folders) == 50 and all(RUN_ID.fullmatch(f.name) for f in folders)
    assert new_run_folder(tmp_path, prefix="sweep-").name.startswith("sweep-")


def test_point_latest_symlinks_refused_pointer_file_instead(tmp_path):
    a, b = new_run_folder(tmp_path), new_run_folder(tmp_path)
    with mock.patch.object(Path, "symlink_to", side_effect=OSError("not permitted")):
        pointer = point_latest(a)
    assert pointer == tmp_path / "latest.txt" and pointer.read_text() == f"{a.name}\n"
    # symlinks work again: the link replaces the pointer file, which would be stale
    assert point_latest(b) == tmp_path / "latest"
    assert os.readlink(tmp_path / "latest") == b.name and not pointer.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_python_write_without_folder_new_run_folder_and_latest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sim = [i for i in load_instruments() if i.instrument_id == 9001]
    market = synthetic_market(sim[0], seed=7, start_ns=1_700_000_000 * 10**9, duration_s=10)
    from demo_strat.market_maker import MarketMaker

    result = Backtest(MarketMaker, data=market, instruments=sim, name="nb").run()
    folder = result.write(report=False)
    assert folder.parent == Path("results") / "nb" and RUN_ID.fullmatch(folder.name)
    assert (tmp_path / "results" / "nb" / "latest" / "summary.json").exists()
    assert result.failures() == []


def test_sweep_without_out_own_folder_one_subfolder_per_combination(tmp_path):
    p = run_cli(
        "sweep",
        str(CFG),
        "--synthetic-seconds",
        "20",
        "--grid",
        "spread_ticks=2,4",
        "--jobs",
        "2",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    base = tmp_path / "results" / "demo_mm"
    (sweep,) = _runs(base, "sweep-")
    assert sorted(d.name for d in sweep.iterdir() if d.is_dir()) == [
        "spread_ticks=2",
        "spread_ticks=4",
    ]
    assert (sweep / "sweep.csv").exists() and (sweep / "spread_ticks=2" / "summary.json").exists()
    assert os.readlink(base / "latest-sweep") == sweep.name
    assert not (base / "latest").exists()  # latest is the last backtest's
