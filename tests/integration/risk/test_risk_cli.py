"""A strategy file's [risk] table reaches the backtest the CLI runs: orders past a limit are
refused by the env and counted in the summary."""

from __future__ import annotations

import json

from tests.conftest import REPO, run_cli


def test_risk_table_in_strategy_file_refuses_orders_in_backtest_summary_counts(tmp_path):
    toml = (REPO / "demo_strat/market_maker.toml").read_text()
    # the demo quotes 0.010: a limit of 0.005 refuses every quote
    toml += '\n[risk]\nmax_order_qty = "0.005"\n'
    (tmp_path / "mm.toml").write_text(toml)
    out = tmp_path / "out"
    p = run_cli(
        "backtest",
        str(tmp_path / "mm.toml"),
        "--synthetic-seconds",
        "30",
        "--no-report",
        "--out",
        str(out),
        cwd=REPO,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["risk_refusals"] > 0
    assert summary["risk_refused_by"] == {"max_order_qty": summary["risk_refusals"]}
    assert summary["fills"] == 0
    assert summary["risk_state"] == "Active"


def test_risk_table_with_an_unknown_key_is_refused_naming_it(tmp_path):
    toml = (REPO / "demo_strat/market_maker.toml").read_text()
    toml += '\n[risk]\nmax_order_quantity = "0.005"\n'
    (tmp_path / "mm.toml").write_text(toml)
    p = run_cli("backtest", str(tmp_path / "mm.toml"), "--no-report", cwd=tmp_path, timeout=300)
    assert p.returncode != 0
    assert "max_order_quantity" in p.stderr
