"""A misspelt section or key of a strategy file is an error that names it, never a silent default
(``[instruments] uses`` used to mean every instrument, ``[backtset]`` the default settings)."""

from __future__ import annotations

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.config import parse_strategy_config

BASE = {"strategy": {"name": "s", "class": "m:C"}, "instruments": {"use": [9001]}}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"backtset": {"out": "x"}}, "[backtset] unknown section 'backtset'"),
        ({"instruments": {"uses": [1001]}}, "[instruments.uses] unknown key 'uses'"),
        ({"bus": {"hots": "h"}}, "[bus.hots] unknown key 'hots'"),
        (
            {"backtest": {"synthetic_second": 5}},
            "[backtest.synthetic_second] unknown key 'synthetic_second'",
        ),
        ({"telegram": {"token": "x"}}, "[telegram.token] unknown key 'token'"),
    ],
)
def test_unknown_sections_and_keys_are_named(extra, words):
    with pytest.raises(ConfigError) as err:
        parse_strategy_config({**BASE, **extra}, "s.toml")
    assert words in str(err.value) and "s.toml" in str(err.value)
    assert "known:" in str(err.value)


def test_every_known_section_and_key_is_accepted():
    cfg = parse_strategy_config(
        {
            **BASE,
            "params": {"anything": 1, "the_strategy_decides": "yes"},
            "instruments": {"use": [9001], "file": "i.toml"},
            "bus": {"host": "h", "port": 1, "root": "r"},
            "backtest": {
                "data": [],
                "synthetic_seconds": 1,
                "synthetic_seed": 2,
                "out": "o",
                "sample_every_s": 1,
                "capital": "1",
            },
            "sim": {"account": {"balances": {"USDT": "1"}}},
            "telegram": {"config": "t.toml"},
        },
        "s.toml",
    )
    assert cfg.instrument_ids == (9001,) and cfg.params["anything"] == 1


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("slow_callback_ms", float("nan"), "finite"),
        ("stop_ack_timeout_s", float("inf"), "finite"),
        ("stale_cmd_s", -1, ">= 0"),
        ("start_wait_s", 1e9, "<= 600"),
        ("stop_ack_hold_s", 30, "below stop_ack_timeout_s"),
        ("feed_silence_s", float("nan"), "finite"),
    ],
)
def test_strategy_numbers_that_make_no_sense_are_refused_naming_the_key(key, value, why):
    data = {**BASE, "strategy": {"name": "s", "class": "m:C", key: value}}
    with pytest.raises(ConfigError, match=why) as err:
        parse_strategy_config(data, "s.toml")
    assert err.value.key == f"strategy.{key}" and "s.toml" in str(err.value)


def test_strategy_env_bounds_have_sane_defaults():
    cfg = parse_strategy_config(
        {**BASE, "strategy": {"name": "s", "class": "m:C", "stop_ack_timeout_s": 2}}
    )
    assert cfg.start_wait_s == 3.0 and cfg.stop_ack_hold_s == pytest.approx(1.6)
    assert cfg.feed_silence_s == 0.0
