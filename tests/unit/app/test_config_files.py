"""Values that parse but make no sense, in every config file, are refused naming the file, the
key and the value: ``[instruments] use = []`` (and no ``use``), NaN wherever a number is read, a
negative balance in ``[sim.account]``, unknown keys in ``feed.toml`` and under its ``[source]``,
a Telegram bridge's client id that is not a topic level, a fee of 100 % in the instruments
file."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest

from mlthon.app.cli import load_with_overrides
from mlthon.basics.errors import ConfigError
from mlthon.feeds.feed_config import load_feed_file, parse_feed_file
from mlthon.feeds.live_cli import load_live_feed_config
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.instruments import parse_instruments
from mlthon.infra.telegram.config import parse_config

SRC = "s.toml"
BASE: dict[str, Any] = {"strategy": {"name": "s", "class": "m:C"}, "instruments": {"use": [9001]}}


def _strategy(**tables: Any) -> dict[str, Any]:
    return {**BASE, **tables}


def _refused(fn: Any, key: str, *words: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        fn()
    assert err.value.key == key, err.value
    for w in words:
        assert w in str(err.value), err.value
    return err.value


# --- the strategy file -------------------------------------------------------------------------


def test_strategy_file_use_empty_list_is_refused_and_all_must_be_asked_for():
    e = _refused(
        lambda: parse_strategy_config(_strategy(instruments={"use": []}), SRC),
        "instruments.use",
        "names no instrument",
        'use = "all"',
    )
    assert SRC in str(e)
    _refused(
        lambda: parse_strategy_config(_strategy(instruments={}), SRC), "instruments.use", "missing"
    )
    _refused(lambda: parse_strategy_config({"strategy": BASE["strategy"]}, SRC), "instruments.use")
    cfg = parse_strategy_config(_strategy(instruments={"use": "all"}), SRC)
    assert cfg.every_instrument and len(cfg.instruments()) > 1
    _refused(
        lambda: parse_strategy_config(_strategy(instruments={"use": "every"}), SRC),
        "instruments.use",
        "'every'",
    )
    _refused(
        lambda: parse_strategy_config(_strategy(instruments={"use": [9001, 9001]}), SRC),
        "instruments.use",
        "twice",
    )


@pytest.mark.parametrize(
    ("tables", "key", "words"),
    [
        ({"params": {"threshold": math.nan}}, "params.threshold", "finite"),
        ({"params": {"levels": [1.0, math.inf]}}, "params.levels[1]", "finite"),
        ({"params": {"risk": {"limit": -math.inf}}}, "params.risk.limit", "finite"),
        ({"backtest": {"feed_silence_s": math.nan}}, "backtest.feed_silence_s", "finite"),
        ({"backtest": {"synthetic_seconds": math.inf}}, "backtest.synthetic_seconds", "finite"),
        ({"backtest": {"capital": "NaN"}}, "backtest.capital", "not finite"),
        ({"backtest": {"capital": "-5"}}, "backtest.capital", "> 0"),
        ({"backtest": {"sample_every_s": 0}}, "backtest.sample_every_s", "> 0"),
        ({"bus": {"port": 70000}}, "bus.port", "<= 65535"),
        ({"bus": {"root": "a/+"}}, "bus.root", "must match"),
        ({"run": {"restart_window_s": math.nan}}, "run.restart_window_s", "finite"),
    ],
)
def test_strategy_file_nonsense_values_are_refused_naming_file_key_and_value(tables, key, words):
    e = _refused(lambda: parse_strategy_config(_strategy(**tables), SRC), key, words)
    assert SRC in str(e)


def test_strategy_file_backtest_feed_silence_leaves_the_strategy_setting_alone():
    cfg = parse_strategy_config(
        _strategy(
            strategy={**BASE["strategy"], "feed_silence_s": 7}, backtest={"feed_silence_s": 3}
        ),
        SRC,
    )
    assert (cfg.feed_silence_s, cfg.backtest.feed_silence_s) == (7, 3)


def _args(config: Path, *assignments: str) -> argparse.Namespace:
    return argparse.Namespace(config=str(config), assignments=list(assignments), instruments=None)


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MM = """
[strategy]
name = "demo_mm"
class = "demo_strat.market_maker:MarketMaker"
[params]
spread_ticks = 4
size = "0.010"
[instruments]
use = [9001]
"""


def test_strategy_file_negative_balance_in_sim_account_is_refused(tmp_path):
    path = _write(tmp_path, MM + '[sim.account]\nbalances = { USDT = "-100" }\n')
    e = _refused(lambda: load_with_overrides(_args(path)), "sim.account.balances.USDT", ">= 0")
    assert str(path) in str(e)
    path = _write(tmp_path, MM + '[sim.account]\nleverage = "NaN"\n')
    _refused(lambda: load_with_overrides(_args(path)), "sim.account.leverage", "not finite")


# --- feed.toml ----------------------------------------------------------------------------------

REPLAY = {"exchange": "BinanceUsdm", "source": {"kind": "replay", "files": ["x.gz"]}}
SYNTH = {"exchange": "Sim", "source": {"kind": "synthetic"}}


@pytest.mark.parametrize(
    ("doc", "key", "words"),
    [
        ({**SYNTH, "spede": 2}, "spede", "unknown key"),
        ({**SYNTH, "source": {"kind": "synthetic", "sed": 3}}, "source.sed", "unknown key"),
        (
            {**SYNTH, "source": {"kind": "synthetic", "files": ["x"]}},
            "source.files",
            "for a synthetic source",
        ),
        ({**REPLAY, "environment": "Mainnet"}, "environment", "for a replay feed"),
        ({**SYNTH, "source": {"kind": "synthetic", "heartbeat_s": math.nan}}, "source.heartbeat_s",
         "finite"),
        ({**REPLAY, "silence_timeout_s": math.nan}, "silence_timeout_s", "finite"),
        ({**SYNTH, "speed": math.inf}, "speed", "finite"),
        ({**SYNTH, "source": {"kind": "synthetic", "duration_s": -5}}, "source.duration_s", "> 0"),
        ({**SYNTH, "source": {"kind": "synthetic", "start_price": "NaN"}}, "source.start_price",
         "not finite"),
        ({**SYNTH, "bus": {"port": "1883"}}, "bus.port", "must be an integer"),
        ({**SYNTH, "bus": {"topic_root": "a/#"}}, "bus.topic_root", "must match"),
        ({**SYNTH, "instrument_ids": [1001]}, "instrument_ids[0]", "on BinanceUsdm, not Sim"),
        ({**SYNTH, "instrument_ids": []}, "instrument_ids", "must not be empty"),
        ({"exchange": "Nowhere"}, "exchange", "Nowhere"),
        ({**REPLAY, "source": {"kind": "replay"}}, "source.files", "missing"),
        ({**SYNTH, "source": {"kind": "stream"}}, "source.kind", "one of"),
    ],
)  # fmt: skip
def test_feed_file_unknown_keys_and_nonsense_values_are_refused(doc, key, words):
    e = _refused(lambda: parse_feed_file(doc, "feed.toml"), key, words)
    assert "feed.toml" in str(e)


def test_feed_file_live_keys_and_values_are_checked(tmp_path):
    live = 'exchange = "Bybit"\n[source]\nkind = "live"\n'
    path = _write(tmp_path, live + "dept = 5\n", "live.toml")
    _refused(lambda: load_live_feed_config(path), "source.dept", "unknown key")
    path = _write(tmp_path, live + 'depth = "50"\n', "live.toml")
    _refused(lambda: load_live_feed_config(path), "source.depth", "must be an integer")
    path = _write(tmp_path, 'exchange = "Bybit"\nspeed = 2\n[source]\nkind = "live"\n', "l.toml")
    _refused(lambda: load_live_feed_config(path), "speed", "for a live feed")
    cfg = load_live_feed_config(_write(tmp_path, live + "depth = 200\n", "ok.toml"))
    assert cfg["depth"] == 200 and cfg["heartbeat_s"] == 5.0


def test_feed_file_good_replay_is_read(tmp_path):
    path = _write(
        tmp_path,
        'exchange = "BinanceUsdm"\ninstrument_ids = [1001]\nspeed = "max"\n'
        '[source]\nkind = "replay"\nfiles = ["x.gz"]\nheartbeat_s = 2\n'
        '[bus]\nport = 1999\ntopic_root = "a/b"\nusername = "feed-x"\n',
        "feed.toml",
    )
    feed = load_feed_file(path)
    assert feed.config is not None and feed.config.speed is None
    assert feed.config.files == [tmp_path / "x.gz"] and feed.config.heartbeat_s == 2
    assert (feed.bus.port, feed.bus.root, feed.bus.username) == (1999, "a/b", "feed-x")


# --- telegram.toml ------------------------------------------------------------------------------

ENV = {"MLTHON_TELEGRAM_TOKEN": "123:abc"}


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({"telegram": {"poll_timeout_s": math.nan}}, "telegram.poll_timeout_s", "finite"),
        ({"telegram": {"cmd_timeout_s": math.inf}}, "telegram.cmd_timeout_s", "finite"),
        ({"delivery": {"retry_max_s": math.nan}}, "delivery.retry_max_s", "finite"),
        ({"telegram": {"client_id": "tg/+"}}, "telegram.client_id", "must match"),
        ({"bus": {"root": "a/#"}}, "bus.root", "must match"),
        ({"telegram": {"dangerous": ["Not a command"]}}, "telegram.dangerous", "command names"),
    ],
)
def test_telegram_file_nonsense_values_are_refused(raw, key, words):
    _refused(lambda: parse_config(raw, source="tg.toml", environ=ENV), key, words)


# --- the instruments file -----------------------------------------------------------------------

INST = {
    "instrument_id": 1, "name": "BTCUSDT", "exchange": "BinanceUsdm", "base": "BTC",
    "quote": "USDT", "kind": "Linear", "tick_size": "0.10", "lot_size": "0.001",
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"tick_size": "NaN"}, "instrument[0].tick_size", "not finite"),
        ({"tick_size": "0"}, "instrument[0].tick_size", "> 0"),
        ({"lot_size": 0.001}, "instrument[0].lot_size", "float"),
        ({"maker_fee": "1.5"}, "instrument[0].maker_fee", "100 %"),
        ({"min_qty": "1e30"}, "instrument[0].min_qty", "out of range"),
        ({"tick": "0.1"}, "instrument[0].tick", "unknown key"),
        ({"instrument_id": 0}, "instrument[0].instrument_id", ">= 1"),
        ({"base": "B T C"}, "instrument[0].base", "must match"),
    ],
)
def test_instruments_file_nonsense_values_are_refused(change, key, words):
    doc = {"instrument": [{**INST, **change}]}
    e = _refused(lambda: parse_instruments(doc, "i.toml"), key, words)
    assert "i.toml" in str(e)


def test_instruments_file_duplicate_ids_are_named():
    doc = {"instrument": [INST, {**INST, "name": "ETHUSDT"}]}
    _refused(lambda: parse_instruments(doc, "i.toml"), "instrument[1].instrument_id", "duplicate")
