"""The README's notebook snippet runs as written: a real account (no order refused for want of
balance), fills, a DataFrame of them, and a results folder with its report."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def readme_block(start: str) -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(r"```python\n(" + re.escape(start) + r".*?)```", text, re.S)
    assert found, f"the README lost its python block starting {start!r}"
    return found.group(1)


def test_readme_notebook_snippet_runs_as_written(tmp_path):
    (tmp_path / "my_strat.py").write_text(readme_block("from mlthon.api import MDSub, Strategy"))
    snippet = readme_block("from mlthon.app.backtest import Backtest")
    (tmp_path / "snippet.py").write_text(snippet)
    # As a notebook runs it: the snippet's folder is the working directory, mlthon installed.
    p = subprocess.run(
        [sys.executable, "snippet.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=200,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = tmp_path / "results" / "dip"
    summary = json.loads((out / "summary.json").read_text())
    # Before: the default account was empty and every order was refused InsufficientBalance.
    assert summary["fills"] > 0 and summary["rejects"] == 0, summary
    assert summary["callback_errors"] == 0
    assert (out / "report.html").exists() and (out / "fills.csv").exists()
    orders = (out / "order_events.csv").read_text()
    assert "InsufficientBalance" not in orders
