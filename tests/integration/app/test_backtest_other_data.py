"""A strategy config pointed at another recording from the command line.

A newcomer's first try is the demo config on a recording of another instrument. Without telling
the backtest which instrument that is, the run says what the data holds and how to use it; with
``--instruments`` and ``--set`` (no file edit) the demo trades it. On a spot instrument the
exchange side of the accounting check is the base coin's wallet (spot has no position), and the
demo never sells what it has not bought.
"""

from __future__ import annotations

import csv
import gzip
import json
from decimal import Decimal

import pytest

from mlthon.app.cli import backtest_main
from mlthon.basics.errors import ConfigError
from tests.conftest import REPO, run_cli

CFG = REPO / "demo_strat" / "market_maker.toml"
SPOT = "hftbacktest/binance_spot/btcusdt_20240808.gz"


def test_data_of_another_instrument_is_explained(shared_data, tmp_path):
    with pytest.raises(ConfigError) as err:
        backtest_main(
            [str(CFG), "--data", str(shared_data / SPOT), "--out", str(tmp_path), "--no-report"]
        )
    text = str(err.value)
    assert "Sim SIMUSDT (9001)" in text
    assert "BinanceSpot BTCUSDT (instrument 1201 in the bundled list)" in text
    assert "--instruments" in text and "--set" in text


def test_instruments_and_set_point_the_demo_at_a_spot_recording(shared_data, tmp_path):
    out = tmp_path / "spot"
    backtest_main(
        [
            str(CFG),
            "--data",
            str(shared_data / SPOT),
            "--out",
            str(out),
            "--no-report",
            "--instruments",
            "1201",
            "--set",
            "exchange=BinanceSpot",
            "instrument_id=1201",
            "--set",
            "spread_ticks=6",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["instruments"] == ["BTCUSDT"]
    assert summary["fills"] > 0
    # The ledger's position is the BTC the strategy's spot trades added to its wallet.
    assert summary["accounting_check"]["BTCUSDT"]["match"] is True
    held = Decimal(0)
    with (out / "fills.csv").open() as f:
        for row in csv.DictReader(f):
            held += Decimal(row["qty"]) * (1 if row["side"] == "Buy" else -1)
            assert held >= 0, "sold BTC it did not hold"
    assert Decimal(summary["accounting_check"]["BTCUSDT"]["exchange_side"]) == held
    with (out / "orders.csv").open() as f:
        rejects = [r["reject"] for r in csv.DictReader(f) if r["reject"]]
    assert not [r for r in rejects if "InsufficientBalance" in r]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--instruments", "424242"], "[424242] are not in"),
        (["--instruments", "BTCUSDT"], "--instruments takes instrument ids"),
        (
            ["--set", "spread_ticks=wide"],
            "[params.spread_ticks] --set: must be an integer, got 'wide'",
        ),
        (["--set", "spread_ticks"], "--set: 'spread_ticks' is not key=value"),
    ],
)
def test_bad_overrides_are_refused_before_the_run(tmp_path, args, words):
    with pytest.raises(ConfigError) as err:
        backtest_main([str(CFG), "--out", str(tmp_path), "--no-report", *args])
    assert words in str(err.value)


def test_sweep_workers_get_the_overrides(shared_data, tmp_path):
    out = tmp_path / "sweep"
    p = run_cli(
        "sweep",
        str(CFG),
        *("--data", str(shared_data / SPOT), "--out", str(out), "--instruments", "1201"),
        *("--set", "exchange=BinanceSpot", "instrument_id=1201"),
        *("--grid", "spread_ticks=4,8", "--jobs", "2"),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((out / "sweep.json").read_text())
    assert sorted(r["param.spread_ticks"] for r in rows) == [4, 8]
    for r in rows:
        assert r["fills"] > 0
        summary = json.loads((tmp_path / r["folder"] / "summary.json").read_text())
        assert summary["instruments"] == ["BTCUSDT"]


def test_data_that_cannot_start_a_book_says_why(shared_data, tmp_path):
    snap = shared_data / "nautilus_trader/binance_futures/historical_depth/btcusdt-depth-snap.csv"
    with pytest.raises(ConfigError) as err:
        backtest_main(
            [
                *(str(CFG), "--data", str(snap), "--instruments", "1001"),
                *("--out", str(tmp_path), "--no-report"),
            ]
        )
    assert "BTCUSDT@BinanceUsdm#1001 has no book" in str(err.value)
    assert "no depth update after it" in str(err.value)


def test_a_symbol_mlthon_does_not_know_is_pointed_at_mlthon_instruments(tmp_path):
    sample = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
    other = tmp_path / "zzz.gz"
    with gzip.open(sample, "rb") as f, gzip.open(other, "wb") as g:
        g.write(f.read().replace(b"BTCUSDT", b"ZZZUSDT").replace(b"btcusdt", b"zzzusdt"))
    with pytest.raises(ConfigError) as err:
        backtest_main([str(CFG), "--data", str(other), "--out", str(tmp_path), "--no-report"])
    text = str(err.value)
    assert "BinanceUsdm ZZZUSDT (not in the bundled list: `mlthon instruments --data" in text


def test_set_reaches_the_other_tables_of_the_file(shared_data, tmp_path):
    """``section.key=value`` sets a value of the file's tables: here the simulated account's
    balance in the coin a CME future settles in (the demo file funds USDT only)."""
    mbo = "nautilus_trader/databento_mbo_l3/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02"
    args = [str(CFG), "--data", str(shared_data / f"{mbo}.csv.gz"), "--no-report"]
    args += ["--instruments", "14001", "--set", "exchange=Cme", "instrument_id=14001", "size=1"]

    def rejects(out: str) -> list[str]:
        with (tmp_path / out / "orders.csv").open() as f:
            return [r["reject"] for r in csv.DictReader(f) if r["reject"]]

    backtest_main([*args, "--out", str(tmp_path / "unfunded")])
    assert rejects("unfunded") and all("InsufficientBalance" in r for r in rejects("unfunded"))
    backtest_main(
        [*args, "--set", "sim.account.balances.USD=1000000", "--out", str(tmp_path / "funded")]
    )
    summary = json.loads((tmp_path / "funded" / "summary.json").read_text())
    assert summary["orders"] > 0 and rejects("funded") == []


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("strategy.stop_ack_timeout_s=-1", "[strategy.stop_ack_timeout_s] must be > 0"),
        ("strategy.name.x=1", "strategy.name.x: name is a value, not a table"),
        ("sim.acount.balances.USD=1", "[sim] unknown sections ['acount']"),
        ("sim.account.balances.USD=-1", "[sim.account.balances.USD] -1 must be >= 0"),
    ],
)
def test_bad_table_settings_are_refused_before_the_run(tmp_path, word, words):
    with pytest.raises(ConfigError) as err:
        backtest_main([str(CFG), "--out", str(tmp_path), "--no-report", "--set", word])
    assert words in str(err.value)
