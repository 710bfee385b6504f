"""A misspelt section or key of a strategy file is an error that names it, never a silent default
(``[instruments] uses`` used to mean every instrument, ``[backtset]`` the default settings)."""

from __future__ import annotations

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.config import parse_strategy_config

BASE = {"strategy": {"name": "s", "class": "m:C"}}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"backtset": {"out": "x"}}, "unknown sections ['backtset']"),
        ({"instruments": {"uses": [1001]}}, "[instruments] unknown keys ['uses']"),
        ({"bus": {"hots": "h"}}, "[bus] unknown keys ['hots']"),
        ({"backtest": {"synthetic_second": 5}}, "[backtest] unknown keys ['synthetic_second']"),
        ({"telegram": {"token": "x"}}, "[telegram] unknown keys ['token']"),
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
