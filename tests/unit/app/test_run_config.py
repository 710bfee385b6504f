"""The strategy file's ``[run]`` table (supervision of `mlthon run`): defaults, per-part restart
policies, and a ConfigError naming every unknown or bad key or value."""

from __future__ import annotations

from typing import Any

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.config import RUN_PARTS, RunConfig, parse_strategy_config

BASE = {"strategy": {"name": "s", "class": "m:C"}, "instruments": {"use": [9001]}}


def _cfg(run: Any) -> Any:
    data = {**BASE, "run": run}
    return parse_strategy_config(data, "s.toml")


def test_run_config_defaults_restart_every_part():
    cfg = parse_strategy_config(dict(BASE), "s.toml")
    assert cfg.run == RunConfig()
    assert cfg.run.restart == dict.fromkeys(RUN_PARTS, "restart")
    assert (cfg.run.max_restarts, cfg.run.restart_window_s) == (5, 300.0)


def test_run_config_policies_per_part_and_for_all():
    cfg = _cfg({"restart": {"gateway": "stop"}, "max_restarts": 2, "restart_delay_s": 1})
    assert cfg.run.restart["gateway"] == "stop"
    assert cfg.run.restart["strategy"] == "restart"
    assert (cfg.run.max_restarts, cfg.run.restart_delay_s) == (2, 1.0)
    assert set(_cfg({"restart": "stop"}).run.restart.values()) == {"stop"}


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ({"restart": {"gatway": "stop"}}, "[run.restart] unknown parts ['gatway']"),
        ({"restart": {"feed": "retry"}}, "[run.restart.feed] must be one of ['restart', 'stop']"),
        ({"restart": "sometimes"}, "[run.restart.control] must be one of"),
        ({"restart": 3}, "[run.restart] must be a table"),
        ({"restarts": 3}, "[run.restarts] unknown key 'restarts'"),
        ({"max_restarts": -1}, "[run.max_restarts] must be an integer >= 0"),
        ({"max_restarts": 1.5}, "[run.max_restarts] must be an integer, got 1.5"),
        ({"restart_delay_s": 0}, "[run.restart_delay_s] must be > 0"),
        ({"restart_delay_s": float("nan")}, "[run.restart_delay_s] must be a finite number"),
        ({"ready_timeout_s": "1m"}, "[run.ready_timeout_s] must be a number, got '1m'"),
        (
            {"restart_delay_s": 5, "restart_delay_max_s": 1},
            "[run.restart_delay_max_s] must be >= restart_delay_s (5)",
        ),
        ([1], "[run] must be a table"),
    ],
)
def test_run_config_bad_values_name_the_key(run, expected):
    with pytest.raises(ConfigError) as err:
        _cfg(run)
    assert expected in str(err.value), str(err.value)


def test_backtest_feed_silence_is_checked():
    data = {**BASE, "backtest": {"feed_silence_s": -1}}
    with pytest.raises(ConfigError, match=r"backtest\.feed_silence_s"):
        parse_strategy_config(data, "s.toml")
    data["backtest"] = {"feed_silence_s": 3}
    cfg = parse_strategy_config(data, "s.toml")
    assert cfg.backtest.feed_silence_s == 3
    # the backtest's setting is the backtest's: the strategy's own (live) one is untouched
    assert cfg.feed_silence_s == 0
