"""Failures fail (issue 18): ``--strict`` (``[backtest] strict``) makes a backtest whose callbacks
raised exit non-zero; a sweep ranks by a chosen figure of the summary and lists the runs without
a fill last, marked, instead of ranking them best."""

from __future__ import annotations

import csv
import json
import os

import pytest

from mlthon.app.backtest import Backtest
from mlthon.app.sweep.cli import sweep_main
from mlthon.app.sweep.run import RANK_FIGURES, rank_figure, rank_rows
from mlthon.basics.errors import ConfigError
from mlthon.feeds.synthetic import synthetic_market
from mlthon.infra.config import load_strategy_config
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CFG = REPO / "demo_strat" / "market_maker.toml"
FAULTY = """\
from mlthon.api import MDSub, Strategy
from mlthon.basics import Exchange


class Faulty(Strategy):
    def on_start(self, params):
        self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        raise RuntimeError("a bug in the strategy")

    def on_stop(self, params):
        self.env.send_stop_ack()
"""
FAULTY_TOML = (
    '[strategy]\nname = "faulty"\nclass = "faulty:Faulty"\n\n[instruments]\nuse = [9001]\n'
)


@pytest.fixture
def faulty(tmp_path):
    (tmp_path / "faulty.py").write_text(FAULTY)
    (tmp_path / "faulty.toml").write_text(FAULTY_TOML)
    return tmp_path


def test_backtest_callback_errors_strict_exits_1_latest_not_moved(faulty):
    args = ("backtest", "faulty.toml", "--synthetic-seconds", "20", "--no-report")
    p = run_cli(*args, cwd=faulty)
    assert p.returncode == 0, p.stderr[-3000:]  # without --strict: reported, not failed
    base = faulty / "results" / "faulty"
    good = os.readlink(base / "latest")
    p = run_cli(*args, "--strict", cwd=faulty)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "--strict:" in p.stderr and "callback errors" in p.stderr
    assert os.readlink(base / "latest") == good  # the failed run's folder is kept, not latest
    assert len([d for d in base.iterdir() if not d.is_symlink()]) == 2


def test_backtest_config_strict_key_exits_1(faulty):
    (faulty / "faulty.toml").write_text(FAULTY_TOML + "\n[backtest]\nstrict = true\n")
    p = run_cli("backtest", "faulty.toml", "--synthetic-seconds", "20", "--no-report", cwd=faulty)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "callback errors" in p.stderr


def test_config_strict_not_a_boolean_error_names_key(faulty):
    (faulty / "faulty.toml").write_text(FAULTY_TOML + '\n[backtest]\nstrict = "yes"\n')
    with pytest.raises(ConfigError, match=r"strict.*must be true or false"):
        load_strategy_config(faulty / "faulty.toml")


def test_python_failures_callback_errors_listed(faulty, monkeypatch):
    monkeypatch.syspath_prepend(str(faulty))
    from faulty import Faulty  # type: ignore[import-not-found]

    sim = [i for i in load_instruments() if i.instrument_id == 9001]
    market = synthetic_market(sim[0], seed=7, start_ns=1_700_000_000 * 10**9, duration_s=10)
    r = Backtest(Faulty, data=market, instruments=sim, name="faulty").run()
    (failure,) = r.failures()
    assert "callback errors" in failure


def test_sweep_zero_fill_run_listed_last_marked_not_ranked(tmp_path):
    out = tmp_path / "sweep"
    p = run_cli(
        "sweep",
        str(CFG),
        "--synthetic-seconds",
        "30",
        "--out",
        str(out),
        "--grid",
        "spread_ticks=2,400",
        "size=0.010,0.020",
        "--jobs",
        "2",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = list(csv.DictReader((out / "sweep.csv").read_text().splitlines()))
    fills = [int(r["fills"]) for r in rows]
    # spread_ticks=400 never fills: listed after every run that did, not ranked
    assert fills[:2] != [0, 0] and fills[2:] == [0, 0], rows
    assert [r["rank"] for r in rows] == ["1", "2", "", ""]
    assert [r["note"] for r in rows[2:]] == ["no fills", "no fills"]
    assert all(r["permutation_id"].startswith("spread_ticks=400") for r in rows[2:])
    assert "no fills" in p.stdout and not (tmp_path / "results").exists()


def test_sweep_rank_unknown_figure_error_lists_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        sweep_main([str(CFG), "--grid", "spread_ticks=2,4", "--rank", "pnl"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'pnl' is not a figure of the summary; one of: total_pnl" in err
    assert "max_drawdown" in err


def test_rank_figure_direction_drawdown_lower_minus_reverses():
    assert rank_figure("sharpe") == ("sharpe", True)
    assert rank_figure("max_drawdown") == ("max_drawdown", False)
    assert rank_figure("-sharpe") == ("sharpe", False)
    assert rank_figure("-max_drawdown") == ("max_drawdown", True)


def test_rank_rows_drawdown_smallest_first_na_and_no_fills_last():
    def row(pid, dd, fills):
        return {"permutation_id": pid, "max_drawdown": dd, "fills": fills, "failures": ""}

    rows = [row("a", "3.5", 4), row("b", None, 2), row("c", "0", 0), row("d", "1.25", 9)]
    rank_rows(rows, "max_drawdown", higher_is_better=False)
    assert [(r["permutation_id"], r["rank"], r["note"]) for r in rows] == [
        ("d", 1, ""),
        ("a", 2, ""),
        ("b", "", "max_drawdown n/a"),
        ("c", "", "no fills"),
    ]


def test_rank_figures_are_figures_of_the_summary(tmp_path):
    sim = [i for i in load_instruments() if i.instrument_id == 9001]
    market = synthetic_market(sim[0], seed=7, start_ns=1_700_000_000 * 10**9, duration_s=10)
    from demo_strat.market_maker import MarketMaker

    summary = Backtest(MarketMaker, data=market, instruments=sim).run().summary
    assert set(RANK_FIGURES) <= set(summary)
    json.dumps(summary)
