"""Backtests: figures worked out by hand, determinism, the CLI, the report in a browser."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import TIF, Exchange, ExecInstructions, FeedHandlerStatus, OrderType, Side
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.bus import messages as m
from mlthon.infra.instruments import load_instruments
from tests import md
from tests.conftest import REPO

pytestmark = pytest.mark.integration
S = 1_000_000_000
T0 = 1_700_000_000 * S
SIM = Exchange.Sim


class BuyThenSell(Strategy):
    """Buys 0.010 at the first ask (IOC), sells 0.010 at the bid once the bid reaches 100.5."""

    def __init__(self) -> None:
        super().__init__("hand")
        self.step = 0

    def on_start(self, params: str) -> None:
        self.env.subscribe(SIM, 9001, MDSub.BBO)

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        if self.step == 0:
            self.step = 1
            self.env.send_new_order(
                None,
                SIM,
                9001,
                Side.Buy,
                price,
                "0.010",
                ExecInstructions.Unset,
                OrderType.Limit,
                TIF.IOC,
                False,
            )

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        if self.step == 1 and price.value >= Decimal("100.5"):
            self.step = 2
            self.env.send_new_order(
                None,
                SIM,
                9001,
                Side.Sell,
                price,
                "0.010",
                ExecInstructions.Unset,
                OrderType.Limit,
                TIF.IOC,
                False,
            )


def hand_data() -> list[m.Msg]:
    def book(ts, ch):
        return md.book(ex=SIM.value, iid=9001, ts=ts, ch=ch)

    return [
        m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotStart, ts=T0),
        book(T0, [(0, 1, "100.0", "1"), (0, 2, "100.2", "1")]),
        m.FeedStatus(ex=SIM.value, iid=9001, status=FeedHandlerStatus.SnapshotEnd, ts=T0),
        # Three seconds later the market moves up 0.5.
        book(
            T0 + 3 * S,
            [
                (0, 1, "100.5", "1"),
                (0, 2, "100.7", "1"),
                (2, 1, "100.0", "0"),
                (2, 2, "100.2", "0"),
            ],
        ),
        book(T0 + 6 * S, [(1, 1, "100.5", "2")]),
    ]


def hand_backtest() -> Backtest:
    insts = [i for i in load_instruments() if i.instrument_id == 9001]
    gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "1000"}}})
    return Backtest(BuyThenSell, data=hand_data(), instruments=insts, name="hand", gateway=gw)


def test_summary_figures_match_a_hand_computed_case(tmp_path):
    r = hand_backtest().run()
    s = r.summary
    # SIMUSDT: taker fee 0.0005, contract multiplier 1.
    # buy 0.010 @ 100.2: fee 0.010 * 100.2 * 0.0005 = 0.000501
    # sell 0.010 @ 100.5: fee 0.010 * 100.5 * 0.0005 = 0.0005025
    assert Decimal(s["fees"]) == Decimal("0.0010035")
    # realised: 0.010 * (100.5 - 100.2) = 0.003; nothing left open
    assert Decimal(s["realised_pnl"]) == Decimal("0.003")
    assert Decimal(s["unrealised_pnl"]) == 0
    assert Decimal(s["total_pnl"]) == Decimal("0.003") - Decimal("0.0010035")
    # turnover: 0.010 * 100.2 + 0.010 * 100.5 = 2.007
    assert Decimal(s["turnover"]) == Decimal("2.007")
    assert s["fills"] == 2 and s["orders"] == 2 and s["fill_ratio"] == 1.0
    # spread captured vs the mid at each fill: buy (100.1 - 100.2) * 0.01, sell
    # (100.5 - 100.6) * 0.01 -> -0.002
    assert Decimal(s["spread_captured"]) == Decimal("-0.002")
    # Worst point: just after the buy, equity = 0.01 * (100.1 - 100.2) - 0.000501 = -0.001501
    assert Decimal(s["max_drawdown"]) == Decimal("0.001501")
    assert s["final_position"] == {"SIMUSDT": "0.000"}
    assert s["accounting_check"]["SIMUSDT"]["match"]
    assert s["callback_errors"] == 0
    r.write(tmp_path / "out", report=False)
    fills = (tmp_path / "out" / "fills.csv").read_text().splitlines()
    assert fills[0].startswith("ts,cl_id,exec_id") and len(fills) == 3
    assert ",Buy,100.20,0.010," in fills[1] and ",Sell,100.50,0.010," in fills[2]


def test_same_inputs_give_byte_identical_outputs(tmp_path):
    cfg = REPO / "demo_strat" / "market_maker.toml"
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlthon",
                "--log-level",
                "WARNING",
                "backtest",
                str(cfg),
                "--synthetic-seconds",
                "120",
                "--out",
                str(out),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        assert f"report: {out}/report.html" in p.stdout
        outs.append(out)
    files = sorted(f.name for f in outs[0].iterdir())
    assert {
        "orders.csv",
        "fills.csv",
        "equity.csv",
        "summary.json",
        "report.html",
        "perf.json",
    } <= set(files)
    for name in files:
        if name == "perf.json":  # wall time and events/s: the only run-dependent file
            continue
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["fills"] > 0 and summary["events"] > 1000


def test_backtest_replays_a_real_capture(shared_data, tmp_path):
    capture = shared_data / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
    cfg = tmp_path / "mm.toml"
    text = (REPO / "demo_strat" / "market_maker.toml").read_text()
    text = text.replace('exchange = "Sim"', 'exchange = "BinanceUsdm"')
    text = text.replace("instrument_id = 9001", "instrument_id = 1001")
    text = text.replace("use = [9001]", "use = [1001]")
    text = text.replace('size = "0.010"', 'size = "0.002"')
    cfg.write_text(text.replace("[strategy]", "[strategy]", 1))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlthon",
            "--log-level",
            "WARNING",
            "backtest",
            str(cfg),
            "--data",
            str(capture),
            "--end",
            "1723161555000000000",
            "--out",
            str(tmp_path / "real"),
            "--no-report",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((tmp_path / "real" / "summary.json").read_text())
    assert s["instruments"] == ["BTCUSDT"] and s["events"] > 1000
    assert s["orders"] > 0
    assert all(c["match"] for c in s["accounting_check"].values())


def test_sweep_runs_every_combination_in_parallel_best_first(tmp_path):
    cfg = REPO / "demo_strat" / "market_maker.toml"
    out = tmp_path / "sweep"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlthon",
            "--log-level",
            "WARNING",
            "sweep",
            str(cfg),
            "--synthetic-seconds",
            "60",
            "--out",
            str(out),
            "--grid",
            "spread_ticks=2,4",
            "size=0.010,0.020",
            "--jobs",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((out / "sweep.json").read_text())
    assert len(rows) == 4
    assert {(r["param.spread_ticks"], r["param.size"]) for r in rows} == {
        (2, "0.010"),
        (2, "0.020"),
        (4, "0.010"),
        (4, "0.020"),
    }
    pnls = [Decimal(r["total_pnl"]) for r in rows]
    assert pnls == sorted(pnls, reverse=True)
    assert (out / "sweep.csv").read_text().startswith("rank,permutation_id,")
    for r in rows:
        assert (Path(r["folder"]) / "summary.json").exists()
    assert f"table: {out}/sweep.csv" in p.stdout
