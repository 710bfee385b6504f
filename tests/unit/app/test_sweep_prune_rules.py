"""Pruning a sweep by successive halving (``--prune``, issue 20): the options are checked and a
bad value names its option; a rung's window is the first fraction of a synthetic market's
seconds or of the recordings' span; a rung keeps the best share of every run of it so far
(hopeless runs never); pruned rows are listed last, unranked, marked; optuna is told a pruned
trial as pruned, with its interim values."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from typing import Any

import pytest

from mlthon.app.sweep.cli import sweep_parser
from mlthon.app.sweep.prune import (
    SYNTHETIC_START_NS,
    Pruning,
    RungPool,
    Span,
    prune_rungs,
    rung_settings,
    saved_note,
)
from mlthon.app.sweep.run import rank_rows
from mlthon.app.sweep.search import OptunaSearch, RandomSearch
from mlthon.app.sweep.space import parse_space
from mlthon.infra.strategy_params import FreeParams

S = 1_000_000_000


@pytest.mark.parametrize("value", ["0", "1.5", "x", "1", "-0.2", "0.5,0.25", "0.5,0.5", "nan"])
def test_a_bad_prune_value_is_an_error_naming_the_option(value, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep_parser().parse_args(["mm.toml", "--grid", "k=1", "--prune", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "mlthon sweep: error: argument --prune: " in err
    assert "is not a fraction between 0 and 1" in err or "the fractions must rise" in err


@pytest.mark.parametrize("value", ["0", "1", "2", "half"])
def test_a_bad_prune_keep_is_an_error_naming_the_option(value, capsys):
    with pytest.raises(SystemExit):
        sweep_parser().parse_args(
            ["mm.toml", "--grid", "k=1", "--prune", "0.5", "--prune-keep", value]
        )
    err = capsys.readouterr().err
    assert f"argument --prune-keep: '{value}' is not a fraction between 0 and 1" in err


def test_prune_options_parsed_as_decimals():
    a = sweep_parser().parse_args(["m.toml", "--grid", "k=1", "--prune", "0.25, 0.5"])
    assert a.prune == (Decimal("0.25"), Decimal("0.5")) and a.prune_keep == Decimal("0.5")
    assert prune_rungs("0.3") == (Decimal("0.3"),)


def _settings(**kw: Any) -> dict[str, Any]:
    base = {"data": [], "synthetic_seconds": 120.0, "start": None, "end": None, "out": "o"}
    return {**base, **kw}


def test_a_synthetic_market_is_cut_at_the_fraction_of_its_seconds():
    s = rung_settings(_settings(), Decimal("0.25"), Span())
    assert s["synthetic_seconds"] == 30.0 and s["end"] is None
    # with --start/--end: the fraction of that window, the market made up to the cut
    start = SYNTHETIC_START_NS + 20 * S
    s = rung_settings(_settings(start=start, end=start + 60 * S), Decimal("0.5"), Span())
    assert s["end"] == start + 30 * S and s["synthetic_seconds"] == 50.0


def test_recordings_are_cut_at_the_fraction_of_their_span():
    s = rung_settings(_settings(data=["f.gz"]), Decimal("0.5"), Span(100 * S, 300 * S))
    assert s["end"] == 200 * S and s["start"] is None
    s = rung_settings(_settings(data=["f.gz"], start=200 * S), Decimal("0.25"), Span(0, 600 * S))
    assert s["end"] == 300 * S  # from --start to the last event
    with pytest.raises(ValueError, match="span"):
        rung_settings(_settings(data=["f.gz"]), Decimal("0.5"), Span())


def test_a_rung_keeps_the_best_share_of_its_runs_so_far_hopeless_ones_never():
    pruning = Pruning((Decimal("0.5"),), Decimal("0.5"))
    pool = RungPool()
    pool.values.update({0: 1.0, 1: 3.0, 2: None, 3: 3.0, 4: 2.0, 5: None})
    d = pool.decide(pruning, [0, 1, 2, 3, 4, 5])
    # 3 of 6 kept; the tie 1/3 in trial order; hopeless last
    assert d == {
        0: (False, 4, 6),
        1: (True, 1, 6),
        2: (False, 5, 6),
        3: (True, 2, 6),
        4: (True, 3, 6),
        5: (False, 6, 6),
    }
    # a later bracket is judged against every run of the rung so far (ASHA's rule)
    pool.values.update({6: 2.5, 7: 0.5})
    assert pool.decide(pruning, [6, 7]) == {6: (True, 3, 8), 7: (False, 6, 8)}
    # only hopeless runs: none kept
    lone = RungPool()
    lone.values[0] = None
    assert lone.decide(pruning, [0]) == {0: (False, 1, 1)}
    assert Pruning((Decimal("0.5"),), Decimal("0.3")).kept(10) == 3


def _row(trial: int, fills: int | None, pnl: str | None, pruned: float | None = None, place=""):
    return {
        "rank": "",
        "permutation_id": f"k={trial}",
        "total_pnl": pnl,
        "fills": fills,
        "failures": "",
        "note": "",
        "pruned_at": pruned,
        "interim_rank": place,
        "trial": trial,
    }


def test_pruned_rows_last_unranked_latest_rung_first_marked():
    rows = [
        _row(0, 5, "-0.003", 0.25, "7/8"),
        _row(1, 5, "0.5"),
        _row(2, 0, "0", 0.25, "8/8"),
        _row(3, 4, "0.1", 0.5, "3/4"),
        _row(4, 0, "0"),
        _row(5, 3, "0.7"),
    ]
    rank_rows(rows, "total_pnl", True)
    assert [(r["trial"], r["rank"]) for r in rows] == [
        (5, 1),
        (1, 2),
        (4, ""),
        (3, ""),
        (0, ""),
        (2, ""),
    ]
    assert [r["note"] for r in rows[2:]] == [
        "no fills",
        "pruned at 50% (total_pnl 0.1, rank 3/4)",
        "pruned at 25% (total_pnl -0.003, rank 7/8)",
        "pruned at 25% (no fills, rank 8/8)",
    ]


def test_the_saved_cpu_is_estimated_with_the_full_runs_mean():
    rows = [{"pruned_at": 0.5}, {"pruned_at": 0.5}, {"pruned_at": None}, {"pruned_at": None}]
    note = saved_note(rows, [2.0, 2.0], 6.0)
    assert note.startswith("pruning: 2 of 4 permutations pruned; 6.0 s CPU in all")
    assert note.endswith(
        "about 8.0 s for every one in full (2 full runs, 2.00 s each): 2.0 s CPU saved"
    )


def test_a_pruned_trial_did_not_beat_the_best_for_patience():
    space = parse_space(["k=1:50"], FreeParams(), {}, "t.toml")
    search = RandomSearch(space, trials=10, seed=1, patience=2)
    trials = [search.ask() for _ in range(3)]
    search.tell(trials[0], 1.0)
    search.tell_pruned(trials[1], [(0, 0.5)])
    assert not search.stopped_early
    search.tell_pruned(trials[2], [(0, None)])
    assert search.stopped_early


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna not installed")
def test_optuna_is_told_a_pruned_trial_as_pruned_with_its_interim_values():
    from optuna.trial import TrialState

    space = parse_space(["k=1:50"], FreeParams(), {}, "t.toml")
    search = OptunaSearch(space, trials=3, seed=1, batch=3)
    a, b, c = search.ask(), search.ask(), search.ask()
    assert a and b and c
    search.tell_pruned(b, [(0, 2.0), (1, 1.5)])
    search.tell_pruned(c, [(0, None)])
    search.tell(a, 4.0)  # the round is over: told in trial order
    trials = search._study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED]
    assert trials[0].value == 4.0
    assert trials[1].intermediate_values == {0: 2.0, 1: 1.5}
    assert trials[2].intermediate_values == {}
