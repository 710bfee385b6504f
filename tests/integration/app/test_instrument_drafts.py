"""Instrument drafts from recorded definitions (Databento definition files, Binance exchangeInfo)
and bundled instruments whose grid the recording contradicts, flagged before the run."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import attrs

from mlthon.app.instrument_drafts import (
    binance_exchange_info,
    grid_conflicts,
    read_definitions,
    warn_grid_conflicts,
)
from mlthon.app.instruments_cli import _split, instruments_main, scan
from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO

DBN = "nautilus_trader/databento_mbo_l3"
ES_DEF = f"{DBN}/orderbooks_definition.dbn.zst"
ES_MBO = f"{DBN}/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.csv.gz"
CF = "cryptofeed/sample_data"
BTC_2020 = "nautilus_trader/tardis_csv/binance-futures_trades_2020-02-22_BTCUSDT.csv"
ONLY_SIM = (
    '[[instrument]]\ninstrument_id = 9001\nname = "SIMUSDT"\nexchange = "Sim"\n'
    'base = "SIM"\nquote = "USDT"\nkind = "Linear"\ntick_size = "0.1"\nlot_size = "0.001"\n'
)


def _drafts(tmp_path, capsys, *data: str) -> list:
    only_sim = tmp_path / "sim_only.toml"
    only_sim.write_text(ONLY_SIM)
    instruments_main(["--file", str(only_sim), "--data", *data])
    out = capsys.readouterr().out
    drafted = tmp_path / "drafted.toml"
    drafted.write_text(ONLY_SIM + "\n" + out[out.index("# from the recording") :])
    return [i for i in load_instruments(drafted) if i.instrument_id != 9001]


def test_draft_databento_definition_base_multiplier_tick_lot_from_record(
    shared_data, tmp_path, capsys
):
    (es,) = _drafts(tmp_path, capsys, str(shared_data / ES_DEF), str(shared_data / ES_MBO))
    # before: base "ESM4", no multiplier (1), the grid guessed from 2 s of prices
    assert (es.name, es.exchange, es.base, es.quote) == ("ESM4", Exchange.Cme, "ES", "USD")
    assert es.contract_multiplier == 50
    assert (es.tick_size, es.lot_size, es.min_qty) == (Decimal("0.25"), 1, 1)


def test_draft_cryptofeed_exchange_info_venue_grid_and_minimums(shared_data, tmp_path, capsys):
    drafts = _drafts(
        tmp_path,
        capsys,
        str(shared_data / CF / "BINANCE_FUTURES.0"),
        str(shared_data / CF / "BINANCE_FUTURES.ws.1.0"),
    )
    by_name = {i.name: i for i in drafts}
    assert set(by_name) == {"SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"}
    # the recording's own exchangeInfo (2021-07-22), not a grid guessed from the prices
    info = read_definitions([shared_data / CF / "BINANCE_FUTURES.0"])
    for name, inst in by_name.items():
        d = info[(Exchange.BinanceUsdm, name)]
        assert (inst.tick_size, inst.lot_size, inst.min_qty) == (d.tick, d.lot, d.min_qty)
        assert inst.base == name.removesuffix("USDT") and inst.quote == "USDT"
        assert inst.min_notional == d.min_notional


def test_exchange_info_document_file_definitions_read(shared_data):
    path = shared_data / "nautilus_trader/binance_futures/py_fixtures/http_responses"
    defs = read_definitions([path / "http_futures_market_exchange_info.json"])
    btc = defs[(Exchange.BinanceUsdm, "BTCUSDT")]
    assert (btc.tick, btc.lot, btc.min_notional, btc.base) == (
        Decimal("0.1"),
        Decimal("0.001"),
        Decimal(10),
        "BTC",
    )


def test_exchange_info_coinm_dated_future_base_coin_and_contract_size():
    # the shape of GET /dapi/v1/exchangeInfo (Binance COIN-M), one dated future
    body = json.dumps(
        {
            "timezone": "UTC",
            "symbols": [
                {
                    "symbol": "BCHUSD_210924",
                    "pair": "BCHUSD",
                    "contractType": "CURRENT_QUARTER",
                    "baseAsset": "BCH",
                    "quoteAsset": "USD",
                    "marginAsset": "BCH",
                    "contractSize": 10,
                    "filters": [
                        {"filterType": "PRICE_FILTER", "tickSize": "0.01"},
                        {"filterType": "LOT_SIZE", "stepSize": "1", "minQty": "1"},
                    ],
                }
            ],
        }
    )
    (d,) = binance_exchange_info(body, Exchange.BinanceCoinm)
    assert (d.base, d.quote, d.settle_coin, d.kind) == ("BCH", "USD", "BCH", "Inverse")
    assert (d.multiplier, d.tick, d.lot) == (10, Decimal("0.01"), 1)
    # without a definition the guess no longer takes the delivery date for the coin
    assert _split("BCHUSD_210924") == ("BCH", "USD")


def test_instruments_bundled_tick_contradicted_by_recording_flagged(shared_data, capsys):
    instruments_main(["--data", str(shared_data / BTC_2020)])
    out = capsys.readouterr().out
    assert "WARNING: 1 grid(s) the recording contradicts" in out
    assert "BTCUSDT (BinanceUsdm, id 1001): tick_size is 0.10" in out
    assert 'tick_size = "0.01"' in out


def test_warn_grid_conflicts_backtest_start_logs_each_conflict(shared_data, caplog):
    caplog.set_level(logging.WARNING)
    lines = warn_grid_conflicts([str(shared_data / BTC_2020)], load_instruments())
    assert len(lines) == 1 and "tick_size is 0.10" in lines[0]
    assert any("unusable book level" in r.getMessage() for r in caplog.records)
    # a recording on the bundled grid is not flagged
    sample = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
    assert warn_grid_conflicts([str(sample)], load_instruments(), max_events=5000) == []


def test_grid_conflicts_definition_tick_differs_from_file_flagged(shared_data):
    found, _ = scan([str(shared_data / ES_MBO)])
    es = next(i for i in load_instruments() if i.name == "ESM4")
    defs = read_definitions([shared_data / ES_DEF])
    assert grid_conflicts(found, [es], defs) == []
    (c,) = grid_conflicts(found, [attrs.evolve(es, tick_size=Decimal("0.5"))], defs)
    assert c.by_definition and (c.what, c.recorded) == ("tick_size", Decimal("0.25"))
    assert "the recording's definition gives tick_size 0.25" in c.message()
