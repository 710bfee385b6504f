"""A strategy's parameter schema (``Params``, the mlthon extension of the API): ``[params]``,
``--set``, ``--grid`` and the control service's ``params`` command are checked against it (an
unknown name such as ``treshold`` is named with the known ones; a wrong type or a value out of
bounds is refused); a strategy without one keeps the free-form dict."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from demo_strat.market_maker import MarketMaker, MarketMakerParams
from mlthon.api import Strategy
from mlthon.api.istrategy import param
from mlthon.app.cli import load_with_overrides
from mlthon.app.sweep.cli import sweep_main
from mlthon.basics.errors import ConfigError
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimScheduler
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.control import ControlService
from mlthon.infra.runner import make_strategy
from mlthon.infra.strategy_params import FreeParams, ParamSchema, param_rules

REPO = Path(__file__).resolve().parents[3]
MM_TOML = REPO / "demo_strat" / "market_maker.toml"
KNOWN = ("exchange", "instrument_id", "spread_ticks", "size", "max_position", "skew_ticks")


def _schema() -> ParamSchema:
    rules = param_rules(MarketMaker)
    assert isinstance(rules, ParamSchema)
    return rules


def test_params_schema_fills_defaults_and_gives_decimals_as_text():
    params = _schema().check({"spread_ticks": 3, "size": "0.020"}, "s.toml")
    assert params["spread_ticks"] == 3 and params["size"] == "0.020"
    assert params["requote_ms"] == 1000 and params["max_position"] == "0.01"
    # what the strategy receives builds its typed parameters
    assert MarketMakerParams(**params).size == Decimal("0.020")


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"treshold": 3}, "params.treshold", "unknown parameter 'treshold'; known: "),
        ({"spread_ticks": 0}, "params.spread_ticks", ">= 1"),
        ({"spread_ticks": 2.5}, "params.spread_ticks", "must be an integer"),
        ({"spread_ticks": True}, "params.spread_ticks", "must be an integer"),
        ({"size": "NaN"}, "params.size", "not finite"),
        ({"size": 0.01}, "params.size", "float"),
        ({"size": "0"}, "params.size", ">= 0.000001"),
        ({"skew_ticks": "101"}, "params.skew_ticks", "<= 100"),
        ({"exchange": 3}, "params.exchange", "must be a text"),
    ],
)
def test_params_schema_refuses_unknown_names_wrong_types_and_out_of_bounds(values, key, words):
    with pytest.raises(ConfigError) as err:
        _schema().check(values, "s.toml")
    assert err.value.key == key and words in str(err.value), err.value
    if "unknown" in words:
        assert all(k in str(err.value) for k in KNOWN)


def test_params_schema_assign_reads_each_word_by_the_parameter_type():
    current = _schema().check({}, "")
    assert _schema().assign(["size=0.010", "spread_ticks=7"], current) == {
        "size": "0.010",
        "spread_ticks": 7,
    }
    with pytest.raises(ConfigError, match="unknown parameter 'treshold'") as err:
        _schema().assign(["treshold=3"], current)
    assert "spread_ticks (int, 1..1000, default 2)" in str(err.value)
    with pytest.raises(ConfigError, match="must be an integer"):
        _schema().assign(["spread_ticks=wide"], current)
    with pytest.raises(ConfigError, match="not key=value"):
        _schema().assign(["spread_ticks"], current)


def test_free_form_params_keep_their_types_and_refuse_nan():
    rules = param_rules(Strategy)
    assert isinstance(rules, FreeParams)
    assert rules.check({"anything": 1, "x": "y"}) == {"anything": 1, "x": "y"}
    assert rules.assign(["anything=2", "new=true"], {"anything": 1}) == {
        "anything": 2,
        "new": True,
    }
    with pytest.raises(ConfigError, match="is a int"):
        rules.assign(["anything=wide"], {"anything": 1})
    with pytest.raises(ConfigError, match="finite") as err:
        rules.assign(["level=nan"], {})
    assert err.value.key == "params.level"


def test_params_class_mistakes_of_the_author_are_config_errors():
    @attrs.frozen
    class BadType:
        levels: list[int] = attrs.field(factory=list)

    @attrs.frozen
    class BadDefault:
        n: int = param(0, low=1)

    for params_cls, words in ((BadType, "is not one of"), (BadDefault, "its default")):
        cls = type("S", (Strategy,), {"Params": params_cls})
        with pytest.raises(ConfigError, match=words):
            param_rules(cls)


def _args(*assignments: str, config: Path = MM_TOML) -> argparse.Namespace:
    return argparse.Namespace(config=str(config), assignments=list(assignments), instruments=None)


def test_set_with_an_unknown_parameter_is_an_error_naming_it_and_the_known_ones():
    with pytest.raises(ConfigError) as err:
        load_with_overrides(_args("treshold=3"))
    text = str(err.value)
    assert "--set: unknown parameter 'treshold'" in text and str(MM_TOML) in text
    assert all(k in text for k in KNOWN)
    with pytest.raises(ConfigError, match=r"\[params.spread_ticks\] --set: must be >= 1"):
        load_with_overrides(_args("spread_ticks=0"))
    cfg = load_with_overrides(_args("spread_ticks=3", "size=0.020"))
    assert cfg.params["spread_ticks"] == 3 and cfg.params["size"] == "0.020"
    assert cfg.params["requote_ms"] == 500  # the file's; defaults fill the rest


def test_grid_with_an_unknown_parameter_is_an_error_before_any_backtest(tmp_path):
    argv = [str(MM_TOML), "--grid", "treshold=3,4", "--out", str(tmp_path / "out")]
    with pytest.raises(ConfigError, match="--grid: unknown parameter 'treshold'; known: "):
        sweep_main(argv)
    with pytest.raises(ConfigError, match=r"--grid: must be <= 1000"):
        sweep_main([*argv[:2], "spread_ticks=2,5000", *argv[3:]])
    assert not (tmp_path / "out").exists()


def test_strategy_process_checks_the_file_params_against_the_schema():
    data: dict[str, Any] = {
        "strategy": {"name": "demo_mm", "class": "demo_strat.market_maker:MarketMaker"},
        "params": {"spread_tiks": 3},
        "instruments": {"use": [9001]},
    }
    with pytest.raises(ConfigError, match="unknown parameter 'spread_tiks'"):
        make_strategy(parse_strategy_config(data, "s.toml"))
    data["params"] = {"spread_ticks": 3}
    assert isinstance(make_strategy(parse_strategy_config(data, "s.toml")), MarketMaker)


def _control() -> tuple[ControlService, InProcBus, SimScheduler, Topics, dict[str, Any]]:
    sched = SimScheduler()
    sched.clock.advance_to(1_700_000_000 * NS_PER_S)
    bus = InProcBus(sched)
    topics = Topics("p")
    cfg = parse_strategy_config(
        {
            "strategy": {"name": "demo_mm", "class": "demo_strat.market_maker:MarketMaker"},
            "params": {"spread_ticks": 4},
            "instruments": {"use": [9001]},
        },
        "mm.toml",
    )
    control = ControlService(bus, sched, topics, [cfg])
    control.start()
    got: dict[str, Any] = {"answers": {}, "params": []}
    bus.subscribe(topics.reply("cli"), lambda _t, x: got["answers"].__setitem__(x.cmd_id, x))
    bus.subscribe(
        topics.strat_ctl("demo_mm"),
        lambda _t, x: got["params"].append(x) if isinstance(x, m.StratParams) else None,
    )
    return control, bus, sched, topics, got


def test_control_params_command_checks_against_the_schema():
    control, bus, sched, topics, got = _control()

    def cmd(*args: str) -> m.CmdResult:
        cmd_id = f"c{len(got['answers'])}"
        bus.publish(
            topics.cmd(),
            m.CmdRequest(cmd_id=cmd_id, strat="demo_mm", name="params", args=list(args),
                         reply_to=topics.reply("cli"), sender="test"),
            qos=1,
        )  # fmt: skip
        sched.run_until(sched.now_ns() + NS_PER_S)
        return got["answers"][cmd_id]

    bad = cmd("treshold=3")
    assert not bad.ok and "unknown parameter 'treshold'" in bad.detail
    assert all(k in bad.detail for k in KNOWN)
    assert not cmd("spread_ticks=0").ok and not got["params"]
    ok = cmd("spread_ticks=6", "size=0.02")
    assert ok.ok, ok.detail
    (sent,) = got["params"]
    assert sent.params["spread_ticks"] == 6 and sent.params["size"] == "0.02"
    assert sent.params["requote_ms"] == 1000  # every parameter, defaults filled in
    assert control.status()["strategies"]["demo_mm"]["params"]["spread_ticks"] == 6
