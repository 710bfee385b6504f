"""A backtest's daily callbacks follow the strategy's ``timezone`` (UTC when none is given),
never the host's: the same backtest under TZ=UTC and TZ=America/New_York fires the same ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

# The synthetic market runs from 2023-11-14 22:13:20 UTC for 500 s: 22:20:00 UTC is in it, and
# so is 17:20:00 in New York (EST, UTC-5); 22:20:00 in New York and 17:20:00 UTC are not.
AT_2220_UTC = 1_700_000_400_000_000_000

STRATEGY = """
import json
from mlthon.api import Strategy


class Daily(Strategy):
    def __init__(self, params):
        super().__init__()
        self.params = params
        self.fired = []

    def on_start(self, params):
        for hms in self.params["at"]:
            self.env.setup_daily_callback(hms, lambda hms=hms: self.fire(hms))

    def fire(self, hms):
        self.fired.append([hms, self.env.get_time_ns()])
        with open(self.params["out"], "w") as f:
            json.dump(self.fired, f)
        return True

    def on_stop(self, params):
        self.env.send_stop_ack()
"""


def _daily_callbacks(tmp_path: Path, host_tz: str, timezone: str | None) -> list[list[object]]:
    tag = f"{host_tz.replace('/', '_')}-{timezone or 'none'}".replace("/", "_")
    out = tmp_path / f"fired-{tag}.json"
    (tmp_path / "daily.py").write_text(STRATEGY)
    tz_line = f'timezone = "{timezone}"\n' if timezone else ""
    cfg = tmp_path / f"s-{tag}.toml"
    cfg.write_text(
        f'[strategy]\nname = "daily"\nclass = "daily.py:Daily"\n{tz_line}'
        f'[params]\nat = ["22:20:00", "17:20:00"]\nout = "{out}"\n'
        "[instruments]\nuse = [9001]\n[backtest]\nsynthetic_seconds = 500\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "mlthon", "--log-level", "WARNING", "backtest", str(cfg),
         "--no-report", "--out", str(tmp_path / f"results-{tag}")],
        cwd=REPO, env={**os.environ, "TZ": host_tz}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()) if out.exists() else []


def test_run_backtest_daily_callbacks_ignore_the_host_time_zone(tmp_path):
    utc = _daily_callbacks(tmp_path, "UTC", None)
    new_york = _daily_callbacks(tmp_path, "America/New_York", None)
    assert utc == new_york == [["22:20:00", AT_2220_UTC]]


def test_run_backtest_daily_callbacks_follow_the_strategy_time_zone(tmp_path):
    utc = _daily_callbacks(tmp_path, "UTC", "America/New_York")
    new_york = _daily_callbacks(tmp_path, "America/New_York", "America/New_York")
    assert utc == new_york == [["17:20:00", AT_2220_UTC]]
