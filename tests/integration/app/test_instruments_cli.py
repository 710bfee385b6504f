"""`mlthon instruments`: what a user runs to find the instrument ids of a recording, or to draft
the instruments file a recording of an unknown symbol needs; the draft is usable as written."""

from __future__ import annotations

import json

import pytest

from mlthon.app.cli import backtest_main
from mlthon.app.instruments_cli import instruments_main, scan
from mlthon.basics.errors import ConfigError
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO

SAMPLE = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
CFG = REPO / "demo_strat" / "market_maker.toml"


def test_the_list_and_the_ids_of_a_recording(shared_data, capsys):
    instruments_main(["--exchange", "BinanceSpot"])
    listed = capsys.readouterr().out
    assert "1201" in listed and "BTCUSDT" in listed and "BinanceUsdm" not in listed
    instruments_main(["--data", str(shared_data / "hftbacktest/binance_spot/btcusdt_20240808.gz")])
    out = capsys.readouterr().out
    assert "1 instruments in" in out and "(0 unreadable lines)" in out
    assert "1201" in out and "not in" not in out


def test_the_grid_is_inferred_from_the_data():
    (st,), bad = scan([str(SAMPLE)])
    assert bad == 0
    assert (st.exchange.name, st.symbol) == ("BinanceUsdm", "BTCUSDT")
    # Binance USD-M BTCUSDT: tick 0.10, step 0.001 (the bundled entry holds the venue's values).
    real = next(i for i in load_instruments() if i.instrument_id == 1001)
    assert st.price_step == real.tick_size and st.size_step == real.lot_size


def test_a_draft_for_an_unknown_symbol_backtests_as_written(tmp_path, capsys):
    only_sim = tmp_path / "sim_only.toml"
    only_sim.write_text(
        '[[instrument]]\ninstrument_id = 9001\nname = "SIMUSDT"\nexchange = "Sim"\n'
        'base = "SIM"\nquote = "USDT"\nkind = "Linear"\ntick_size = "0.1"\nlot_size = "0.001"\n'
    )
    instruments_main(["--file", str(only_sim), "--data", str(SAMPLE)])
    out = capsys.readouterr().out
    assert "1 not in" in out
    table = out[out.index("# inferred") :]
    drafted = tmp_path / "mine.toml"
    drafted.write_text(only_sim.read_text() + "\n" + table)
    (inst,) = [i for i in load_instruments(drafted) if i.name == "BTCUSDT"]
    assert inst.instrument_id == 9002 and inst.exchange.name == "BinanceUsdm"
    assert (str(inst.tick_size), str(inst.lot_size), inst.quote) == ("0.1", "0.001", "USDT")
    cfg = tmp_path / "mm.toml"
    cfg.write_text(
        CFG.read_text()
        .replace("use = [9001]", f'use = [9002]\nfile = "{drafted}"')
        .replace('exchange = "Sim"', 'exchange = "BinanceUsdm"')
        .replace("instrument_id = 9001", "instrument_id = 9002")
    )
    backtest_main([str(cfg), "--data", str(SAMPLE), "--out", str(tmp_path / "out"), "--no-report"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["instruments"] == ["BTCUSDT"] and summary["orders"] > 0


def test_bad_arguments_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="--exchange 'Binance' is not one of"):
        instruments_main(["--exchange", "Binance"])
    with pytest.raises(ConfigError, match="no such file"):
        instruments_main(["--data", str(tmp_path / "nothing.gz")])
