"""A sweep's search space (``--grid`` words) checked against the strategy's parameters, and the
searches over it: a bad word is an error naming the key before any backtest; random and optuna
searches are seeded; optuna asks in rounds and is told in trial order."""

from __future__ import annotations

import importlib.util
import random

import pytest

from demo_strat.market_maker import MarketMaker
from mlthon.app.sweep.cli import sweep_main
from mlthon.app.sweep.search import GridSearch, OptunaSearch, RandomSearch, make_search
from mlthon.app.sweep.space import folder_name, parse_space, permutation_id
from mlthon.basics.errors import ConfigError
from mlthon.infra.strategy_params import FreeParams, param_rules
from tests.conftest import REPO

MM_TOML = REPO / "demo_strat" / "market_maker.toml"
RULES = param_rules(MarketMaker)
CURRENT = RULES.check({})


def space(*specs: str):
    return parse_space(list(specs), RULES, CURRENT, "mm.toml")


def test_ranges_and_lists_give_the_values_as_set_words():
    s = space("spread_ticks=2:6:2", "size=0.010:0.012", "exchange=Sim")
    assert [d.values for d in s.dims] == [
        ("2", "4", "6"),
        ("0.010", "0.011", "0.012"),  # a decimal range moves by its last digit
        ("Sim",),
    ]
    assert s.size() == 9
    points = list(s.grid())
    assert points[0] == {"spread_ticks": "2", "size": "0.010", "exchange": "Sim"}
    assert permutation_id(points[1]) == "spread_ticks=2-size=0.011-exchange=Sim"
    assert folder_name("a=b/c d") == "a=b_c_d"
    assert space("skew_ticks=0:1:0.25").dims[0].values == ("0.00", "0.25", "0.50", "0.75", "1.00")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("spread_ticks=5:1", "mm.toml: [params.spread_ticks] --grid: spread_ticks: low 5 > high 1"),
        (
            "spread_ticks=1:5:0",
            "[params.spread_ticks] --grid: spread_ticks: the step 0 must be > 0",
        ),
        ("spread_ticks=1:5000", "[params.spread_ticks] --grid: must be <= 1000"),
        ("spread_ticks=0,2", "[params.spread_ticks] --grid: must be >= 1"),
        ("spread_ticks=1.5:3", "spread_ticks is an int parameter: 1.5:3 is not whole"),
        ("spread_ticks=a:b", "[params.spread_ticks] --grid: spread_ticks=a:b: the ends and step"),
        ("spread_ticks=1:2:3:4", "a range is low:high or low:high:step"),
        ("exchange=a:b", "[params.exchange] --grid: exchange is a str parameter"),
        ("treshold=1,2", "--grid: unknown parameter 'treshold'; known: exchange"),
        ("treshold=1:2", "--grid: unknown parameter 'treshold'; known: exchange"),
        ("spread_ticks=2,2", "spread_ticks lists a value twice"),
        ("spread_ticks", "--grid takes key=v1,v2,... or key=low:high[:step]"),
    ],
)
def test_bad_space_is_an_error_naming_the_key(spec, words):
    with pytest.raises(ConfigError) as err:
        space(spec)
    assert words in str(err.value)


def test_key_given_twice_and_too_many_combinations():
    with pytest.raises(ConfigError, match=r"\[params.size\] --grid: size is given twice"):
        space("size=0.01,0.02", "size=0.03")
    with pytest.raises(ConfigError, match="combinations; at most 100,000"):
        space("spread_ticks=1:1000", "requote_ms=10:1000")


def test_continuous_float_range_samples_but_a_grid_needs_a_step():
    s = parse_space(["alpha=0.1:0.9"], FreeParams(), {"alpha": 0.5})
    assert s.size() is None
    value = float(s.sample(random.Random(1))["alpha"])
    assert 0.1 <= value <= 0.9
    with pytest.raises(ConfigError, match=r"\[params.alpha\] --grid: a grid needs a step"):
        list(s.grid())
    assert parse_space(["alpha=0.1:0.3:0.1"], FreeParams(), {"alpha": 0.5}).size() == 3


def test_grid_in_order_random_seeded_and_distinct():
    s = space("spread_ticks=1:20", "size=0.010,0.020")
    grid = GridSearch(s)
    trials = [grid.ask() for _ in range(40)]
    assert grid.ask() is None and [t.number for t in trials] == list(range(40))
    draw = [t.perm_id for t in iter(RandomSearch(s, 10, seed=5).ask, None)]
    again = [t.perm_id for t in iter(RandomSearch(s, 10, seed=5).ask, None)]
    other = [t.perm_id for t in iter(RandomSearch(s, 10, seed=6).ask, None)]
    assert draw == again != other and len(set(draw)) == 10
    # A space no larger than the trials: the whole grid, shuffled.
    assert len([*iter(RandomSearch(space("spread_ticks=1:4"), 10, seed=1).ask, None)]) == 4


def test_patience_stops_asking_after_trials_without_a_better_one():
    search = make_search(
        "random", space("spread_ticks=1:50"), trials=50, seed=1, batch=4, patience=3
    )
    for v in (1.0, 2.0, 1.5, None):
        search.tell(search.ask(), v)
    assert not search.stopped_early
    search.tell(search.ask(), 0.5)  # the third in a row not above 2.0
    assert search.stopped_early and search.ask() is None


def test_trials_and_patience_are_for_searches():
    with pytest.raises(ConfigError, match="--trials and --patience are for --search random"):
        make_search("grid", space("spread_ticks=1:3"), trials=5, seed=1, batch=4, patience=None)
    with pytest.raises(ConfigError, match="--trials must be >= 1"):
        make_search("random", space("spread_ticks=1:3"), trials=0, seed=1, batch=4, patience=None)


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna is not installed")
def test_optuna_asks_in_rounds_told_in_trial_order_repeatable():
    def run(seed: int) -> list[str]:
        search = OptunaSearch(space("spread_ticks=1:30", "size=0.010:0.019"), 12, seed, batch=4)
        seen = []
        while True:
            batch = list(iter(search.ask, None))
            if not batch:
                break
            assert len(batch) <= 4
            # told out of order: the search waits for the round's end and tells in order
            for t in reversed(batch):
                x = int(t.point["spread_ticks"])
                search.tell(t, -abs(x - 9) * 1.0)
            seen += [t.perm_id for t in batch]
        return seen

    first = run(3)
    assert first == run(3) != run(4)
    assert len(set(first)) == len(first) <= 12


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna is not installed")
def test_optuna_round_stays_open_when_its_first_runs_end_before_the_rest_is_asked():
    def run(early: bool) -> list[str]:
        search = OptunaSearch(space("spread_ticks=1:30", "size=0.010:0.019"), 12, 5, batch=4)
        seen: list[str] = []
        while True:
            # two slots: the first two trials of a round end before the rest are asked, or not
            batch = [t for t in (search.ask(), search.ask()) if t is not None]
            if not batch:
                break
            if early:
                for t in batch:
                    search.tell(t, -abs(int(t.point["spread_ticks"]) - 9) * 1.0)
            batch += list(iter(search.ask, None))
            for t in batch[2 if early else 0 :]:
                search.tell(t, -abs(int(t.point["spread_ticks"]) - 9) * 1.0)
            seen += [t.perm_id for t in batch]
        return seen

    assert run(True) == run(False)


def test_sweep_range_low_above_high_refused_before_any_backtest(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"\[params.spread_ticks\] --grid: spread_ticks: low 5"):
        sweep_main([str(MM_TOML), "--grid", "spread_ticks=5:1", "--out", str(out)])
    with pytest.raises(ConfigError, match="--trials and --patience are for --search random"):
        sweep_main([str(MM_TOML), "--grid", "spread_ticks=1:5", "--trials", "3", "--out", str(out)])
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna is not installed")
def test_optuna_small_space_points_asked_again_are_told_not_run():
    search = OptunaSearch(space("spread_ticks=1:2"), 10, 1, batch=4)
    ran = []
    while batch := list(iter(search.ask, None)):
        for t in batch:
            ran.append(t.perm_id)
            search.tell(t, float(t.point["spread_ticks"]))
    assert sorted(ran) == ["spread_ticks=1", "spread_ticks=2"]  # each point run once
    assert len(search._study.trials) == 10  # every trial of the budget asked and told
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in search._study.trials)
