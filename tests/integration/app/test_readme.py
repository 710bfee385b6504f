"""The README's tutorial works as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_tutorial_strategy_backtests_as_written(tmp_path):
    text = (REPO / "README.md").read_text()
    py = re.search(r"```python\n(from mlthon.api import MDSub, Strategy.*?)```", text, re.S)
    toml = re.search(r"```toml\n(\[strategy\]\nname = \"dip\".*?)```", text, re.S)
    assert py and toml
    (tmp_path / "my_strat.py").write_text(py.group(1))
    (tmp_path / "dip.toml").write_text(toml.group(1))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlthon",
            "--log-level",
            "WARNING",
            "backtest",
            "dip.toml",
            "--synthetic-seconds",
            "60",
            "--no-report",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((tmp_path / "results" / "dip" / "summary.json").read_text())
    assert s["orders"] > 0 and s["callback_errors"] == 0
