"""The README's tutorial works as written."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration


def test_tutorial_strategy_backtests_as_written(tmp_path):
    text = (REPO / "README.md").read_text()
    py = re.search(r"```python\n(from mlthon.api import MDSub, Strategy.*?)```", text, re.S)
    toml = re.search(r"```toml\n(\[strategy\]\nname = \"dip\".*?)```", text, re.S)
    assert py and toml
    (tmp_path / "my_strat.py").write_text(py.group(1))
    (tmp_path / "dip.toml").write_text(toml.group(1))
    p = run_cli(
        "backtest",
        "dip.toml",
        "--synthetic-seconds",
        "60",
        "--no-report",
        cwd=tmp_path,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    # each run in a folder of its own, results/dip/latest the last one (issue 18)
    s = json.loads((tmp_path / "results" / "dip" / "latest" / "summary.json").read_text())
    assert s["orders"] > 0 and s["callback_errors"] == 0


def test_replay_of_real_data_runs_as_written(shared_data, tmp_path):
    """The README's command for a real recording (run from the clone, beside shared/)."""
    text = (REPO / "README.md").read_text()
    block = re.search(
        r"```bash\n(mlthon backtest demo_strat/market_maker\.toml \\\n.*?)```", text, re.S
    )
    assert block, "the README lost its replay command"
    words = block.group(1).replace("\\\n", " ").split()
    assert words[0] == "mlthon"
    p = run_cli(*words[1:], "--out", str(tmp_path / "out"), "--no-report", timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["instruments"] == ["BTCUSDT"] and s["fills"] > 0
