"""What a backtest shows while it runs (issue 18, "terminal conventions"): a progress bar with
percent and time left, log lines printed above it (never into its line), slow callbacks measured
on CPU time and counted for the summary, events/s of the engine alone; and the instruments whose
grid the recording contradicts, named at the start of ``mlthon backtest``."""

from __future__ import annotations

import logging
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange
from mlthon.feeds.synthetic import synthetic_market
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOISY = """\
import logging

from mlthon.api import MDSub, Strategy
from mlthon.basics import Exchange

log = logging.getLogger("noisy")


class Noisy(Strategy):
    def on_start(self, params):
        self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)
        self.n = 0
        self.env.setup_timer(60_000, self.tick)

    def tick(self):
        self.n += 1
        log.warning("noisy tick %d", self.n)
        return True

    def on_stop(self, params):
        self.env.send_stop_ack()
"""


def _run_in_terminal(*args: str, cwd: os.PathLike[str]) -> tuple[int, str]:
    """``python -m mlthon <args>`` with a pseudo-terminal as stdout and stderr: what a user sees."""
    parent, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    p = subprocess.Popen(
        [sys.executable, "-m", "mlthon", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=cwd,
        env=env,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(parent, 65536)
        except OSError:  # EIO: the process ended and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(parent)
    return p.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_backtest_terminal_progress_percent_eta_and_log_lines_apart(tmp_path):
    (tmp_path / "noisy.py").write_text(NOISY)
    (tmp_path / "noisy.toml").write_text(
        '[strategy]\nname = "noisy"\nclass = "noisy:Noisy"\n\n[instruments]\nuse = [9001]\n'
    )
    rc, out = _run_in_terminal(
        "backtest", "noisy.toml", "--synthetic-seconds", "900", "--no-report", cwd=tmp_path
    )
    assert rc == 0, out[-3000:]
    text = _ANSI.sub("", out)
    # The bar: what runs, the percent done (a synthetic market's length is known) and the ETA.
    bars = [seg for seg in re.split(r"[\r\n]", text) if "backtest:" in seg and "eta" in seg]
    assert any(re.search(r"\b\d{1,3}%", seg) for seg in bars), bars[-5:]
    # Every log line of the strategy is a line of its own, never written into the bar's line.
    noisy = [line for line in text.split("\n") if "noisy tick" in line]
    assert len(noisy) == 15, noisy
    for line in noisy:
        assert "eta" not in line.rpartition("\r")[2].split("noisy tick")[0], line


def test_sweep_terminal_progress_runs_done_and_percent(tmp_path):
    rc, out = _run_in_terminal(
        "sweep",
        str(REPO / "demo_strat" / "market_maker.toml"),
        *("--synthetic-seconds", "20", "--grid", "spread_ticks=2,4", "--jobs", "2"),
        *("--out", str(tmp_path / "sweep")),
        cwd=tmp_path,
    )
    assert rc == 0, out[-3000:]
    text = _ANSI.sub("", out)
    assert re.search(r"sweep: 0/2 runs .* 0% eta", text), text[-3000:]
    assert re.search(r"sweep: 1/2 runs .* 50% eta", text), text[-3000:]


class SlowTimers(Strategy):
    """One timer callback waits 80 ms without using the CPU; another computes for 80 ms."""

    def on_start(self, params):
        self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)
        self.env.setup_timer(2_000, self.wait)
        self.env.setup_timer(3_000, self.burn)

    def wait(self):
        time.sleep(0.08)  # wall-clock time a busy machine takes away; not the strategy's cost
        return False

    def burn(self):
        start = time.thread_time()
        while time.thread_time() - start < 0.08:
            pass
        return False

    def on_stop(self, params):
        self.env.send_stop_ack()


def _sim_backtest(strategy: type, seconds: float) -> Backtest:
    sim = [i for i in load_instruments() if i.instrument_id == 9001]
    market = synthetic_market(sim[0], seed=7, start_ns=1_700_000_000 * 10**9, duration_s=seconds)
    return Backtest(strategy, data=market, instruments=sim, name="slow")


def test_backtest_slow_callbacks_cpu_time_counted_not_warned(caplog):
    caplog.set_level(logging.DEBUG)
    r = _sim_backtest(SlowTimers, 10).run()
    assert not [
        x
        for x in caplog.records
        if "blocked the reactor" in x.getMessage() and x.levelno >= logging.WARNING
    ]
    # burn's CPU time is estimated from its wall time and the thread's CPU share around it
    # (mlthon/infra/reactor.py): over the 50 ms threshold, whatever the machine's load.
    assert r.perf["slow_callbacks"] >= 1 and r.perf["slowest_callback_ms"] > 50
    (told,) = [x.getMessage() for x in caplog.records if "ms of CPU time" in x.getMessage()]
    assert "burn 1x" in told and "wait" not in told, told


def test_backtest_events_per_second_engine_alone_startup_and_results_apart():
    r = _sim_backtest(SlowTimers, 5).run()
    p = r.perf
    assert p["engine_s"] > 0 and p["startup_s"] >= 0 and p["results_s"] >= 0
    assert p["events_per_s"] == pytest.approx(r.summary["events"] / p["engine_s"], rel=0.01)
    parts = p["startup_s"] + p["engine_s"] + p["results_s"]
    assert parts == pytest.approx(p["wall_time_s"], abs=0.005)


def test_backtest_cli_bundled_tick_contradicted_by_recording_warned_at_start(shared_data, tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(
        (REPO / "demo_strat" / "market_maker.toml")
        .read_text()
        .replace('exchange = "Sim"', 'exchange = "BinanceUsdm"')
        .replace("instrument_id = 9001", "instrument_id = 1001")
        .replace("use = [9001]", "use = [1001]")
    )
    data = shared_data / "nautilus_trader/tardis_csv/binance-futures_trades_2020-02-22_BTCUSDT.csv"
    p = run_cli(
        "backtest", str(cfg), "--data", str(data), "--out", str(tmp_path / "out"), "--no-report"
    )
    assert p.returncode == 0, p.stderr[-3000:]
    warned = p.stderr.find("BTCUSDT (BinanceUsdm, id 1001): tick_size is 0.10")
    assert warned >= 0, p.stderr[-3000:]
    # before the replay's own complaints about the same prices
    first_bad = p.stderr.find("not a multiple of the tick")
    assert first_bad == -1 or warned < first_bad
