"""``mlthon sweep``: backtests of many parameter permutations, on local processes or a Ray
cluster, ranked best first (``docs/sweeps.md``)."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mlthon.app.cli import backtest_parser, check_grids, load_with_overrides, run_settings
from mlthon.app.sweep.engines import ENGINES, make_engine
from mlthon.app.sweep.prune import (
    Pruning,
    Span,
    check_window,
    prune_keep,
    prune_rungs,
    saved_note,
)
from mlthon.app.sweep.run import (
    RUN_COLUMNS,
    Job,
    SweepCancelled,
    SweepRun,
    data_span,
    decode_note,
    rank_figure,
    rank_rows,
    run_trials,
    runs_folder,
    warm_cache,
)
from mlthon.app.sweep.search import SEARCHES, Trial, make_search
from mlthon.app.sweep.space import assign, parse_space
from mlthon.basics.errors import ConfigError
from mlthon.infra.config import load_strategy_class
from mlthon.infra.strategy_params import param_rules

_SWEEP_HELP = """\
Backtest many permutations of a strategy's parameters and rank them by a figure of the summary
(--rank, default total_pnl; higher is better, except for drawdowns, fees, rejects and
latencies). --search grid runs every combination of --grid's values; random and optuna run
--trials permutations of the ranges (optuna: the TPE sampler, seeded). --engine local runs them in
local processes, --engine ray on a Ray instance started here or on the cluster at --address.
Recordings are decoded once per node into the replay cache before the runs start. A run that
fails is run once more. Runs without a fill are listed last, marked, not ranked. --prune
0.25,0.5 runs each permutation over the first quarter of the data first, then only the best half
over the first half, then the best half of those over the whole (pruned ones listed last). Writes
results/<strategy>/sweep-<run id>/ with sweep.csv, sweep.json, sweep.html and a folder per
permutation."""

_SWEEP_EXAMPLE = """\
example:
  mlthon sweep demo_strat/market_maker.toml --synthetic-seconds 120 \\
    --grid spread_ticks=2,4,6 size=0.010,0.020 --rank sharpe --jobs 2
  mlthon sweep demo_strat/market_maker.toml --synthetic-seconds 120 --engine ray \\
    --search optuna --trials 40 --grid spread_ticks=1:20 skew_ticks=0:4:0.5"""


def sweep_parser() -> argparse.ArgumentParser:
    """The options of ``mlthon sweep``: those of ``mlthon backtest`` and the sweep's."""
    p = backtest_parser("mlthon sweep", _SWEEP_HELP, _SWEEP_EXAMPLE)
    p.add_argument(
        "--grid",
        "--space",
        nargs="+",
        required=True,
        metavar="KEY=VALUES",
        help="a parameter and its values: key=v1,v2,... or key=low:high[:step] (several: "
        "every combination for a grid, the dimensions of the space for a search)",
    )
    p.add_argument(
        "--search",
        choices=SEARCHES,
        default="grid",
        help="grid (default): every combination; random: --trials permutations drawn; "
        "optuna: --trials permutations chosen by Optuna's TPE sampler",
    )
    p.add_argument(
        "--trials", type=int, default=None, help="permutations of a random or optuna search (20)"
    )
    p.add_argument(
        "--search-seed",
        type=int,
        default=1,
        help="seed of the random or optuna search (default 1): the same seed, the same trials",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=4,
        help="optuna: trials asked per round, told in trial order when the round ends "
        "(default 4; the same batch and seed give the same trials on any engine)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help="random and optuna: stop after this many trials in a row without a better one",
    )
    p.add_argument(
        "--prune",
        type=prune_rungs,
        default=None,
        metavar="FRACTION[,FRACTION...]",
        help="successive halving: run each permutation over these first fractions of the data "
        "window first (0.25,0.5); at each, only the best --prune-keep share goes on, the "
        "others are pruned (listed last); the rest then run over the whole window",
    )
    p.add_argument(
        "--prune-keep",
        type=prune_keep,
        default=Decimal("0.5"),
        metavar="SHARE",
        help="with --prune: the share of the permutations kept at each fraction (default 0.5)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local (default): local processes; ray: Ray tasks (a local Ray instance, or the "
        "cluster at --address)",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="join the Ray cluster there (host:port of its head; implies --engine ray)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs at once (default: the cores; with ray: the cluster's CPUs)",
    )
    p.add_argument(
        "--reports",
        action="store_true",
        help="write each permutation's full report.html (default: a summary page each)",
    )
    p.add_argument(
        "--rank",
        type=rank_figure,
        default=("total_pnl", True),
        metavar="FIGURE",
        help="the summary figure that orders the runs (default total_pnl); more is better "
        "except for max_drawdown, fees, rejects and latencies; --rank=-FIGURE reverses it",
    )
    return p


def sweep_main(argv: list[str]) -> int:
    """``mlthon sweep <toml> --grid k=v1,v2 ...``: every permutation asked by the search, on
    the engine, one table best first by ``--rank`` (runs without a fill last, unranked)."""
    a = sweep_parser().parse_args(argv)
    cfg = load_with_overrides(a)
    settings = run_settings(cfg, a)
    rules = param_rules(load_strategy_class(cfg.class_path, cfg.source))
    space = parse_space(a.grid, rules, cfg.params, cfg.source)
    figure, higher_is_better = a.rank
    pruning = Pruning(a.prune, a.prune_keep) if a.prune else None
    search = make_search(
        a.search,
        space,
        trials=a.trials,
        seed=a.search_seed,
        batch=a.batch,
        patience=a.patience,
    )
    if a.search == "grid":  # every combination is checked before the first backtest starts
        for point in space.grid():
            assign(rules, point, cfg.params, cfg.source)
    check_grids(cfg, settings)
    from mlthon.app.backtest import new_run_folder, point_latest

    remote = a.engine == "ray" or bool(a.address)
    if remote:  # a Ray worker's working folder is not this one
        cfg = attrs.evolve(cfg, source=str(Path(cfg.source).resolve()))
        settings["data"] = [str(Path(p).resolve()) for p in settings["data"]]
    engine = make_engine(a.engine, a.address, a.jobs)
    # --out: exactly there; else a folder of its own beside the strategy's runs.
    try:
        base_out = Path(settings["out"] or new_run_folder(settings["runs_dir"], prefix="sweep-"))
    except OSError:
        engine.close()
        raise
    if remote:
        base_out = base_out.resolve()

    def make_job(trial: Trial) -> Job:
        overrides = assign(rules, trial.point, cfg.params, cfg.source)
        out = {**settings, "out": str(runs_folder(base_out, trial.perm_id))}
        return Job(cfg, overrides, out, trial, figure, report=a.reports)

    t0 = time.perf_counter()
    stop_on_term = _TermAsInterrupt()
    try:
        try:
            warm = warm_cache(engine, list(settings["data"])) if settings["cache"] else []
            span = (
                data_span(engine, list(settings["data"]), warm, settings["cache"])
                if pruning is not None and settings["data"]
                else Span()
            )
        except KeyboardInterrupt:
            engine.cancel()
            raise SweepCancelled([]) from None
        if pruning is not None:
            check_window(settings, span)
        warm_s = time.perf_counter() - t0
        run = run_trials(
            engine,
            search,
            make_job,
            higher_is_better=higher_is_better,
            progress=True,
            pruning=pruning,
            span=span,
            # optuna's rounds (and random's with --patience) are pruned one at a time
            bracket=a.batch if search.name == "optuna" or a.patience else None,
        )
    except SweepCancelled as exc:
        if exc.rows:
            _write_tables(base_out, exc.rows, figure, higher_is_better)
        print(
            f"mlthon sweep: cancelled; {len(exc.rows)} runs had finished (in {base_out})",
            file=sys.stderr,
        )
        return 130
    finally:
        stop_on_term.restore()
        engine.close()
    rows = run.rows
    if not rows:
        raise ConfigError("the search asked for no permutation")
    table = _write_tables(base_out, rows, figure, higher_is_better)
    from mlthon.app.sweep.report import write_sweep_report

    info = {
        "strategy": cfg.name,
        "engine": engine.name,
        "address": a.address,
        "search": search.name,
        "trials": search.total,
        "search_seed": a.search_seed if search.name != "grid" else None,
        "batch": a.batch if search.name == "optuna" else None,
        "stopped_early": search.stopped_early,
        "rank": figure,
        "higher_is_better": higher_is_better,
        "space": list(a.grid),
        "runs": len(rows),
        "retried": run.retried,
        "wall_s": round(time.perf_counter() - t0, 3),
        "warm_up_s": round(warm_s, 3),
        "warm_up": warm,
        "decode": decode_note(warm, len(rows)),
        "prune": [str(f) for f in pruning.rungs] if pruning else None,
        "prune_keep": str(pruning.keep) if pruning else None,
        "prune_window_ns": [span.lo, span.hi] if pruning and span.lo is not None else None,
        "pruned": sum(1 for r in rows if r.get("pruned_at") is not None),
        "prune_note": saved_note(rows, run.full_cpu_s, run.cpu_s) if pruning else "",
    }
    (base_out / "sweep_run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    page = write_sweep_report(base_out, rows, run.summaries, space, info)
    _print_table(cfg.name, rows, figure, higher_is_better, run, info)
    print(f"table: {table}")
    print(f"report: {page}")
    if not a.out:
        point_latest(base_out, "latest-sweep")
    failed = [f"{r['permutation_id']} ({r['failures']})" for r in rows if r["failures"]]
    if settings["strict"] and failed:
        print(f"mlthon sweep: --strict: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


class _TermAsInterrupt:
    """While a sweep runs, SIGTERM (a scheduler's or ``kill``'s stop) cancels it as Ctrl-C
    does: the runs are stopped, not left running without their parent."""

    def __init__(self) -> None:
        self._old: Any = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._interrupt)

    @staticmethod
    def _interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    def restore(self) -> None:
        """Put the previous handler back."""
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
            self._old = None


def _write_tables(
    base_out: Path, rows: list[dict[str, Any]], figure: str, higher_is_better: bool
) -> Path:
    """Rank the rows and write sweep.csv and sweep.json; returns the CSV's path."""
    rank_rows(rows, figure, higher_is_better)
    base_out.mkdir(parents=True, exist_ok=True)
    table = base_out / "sweep.csv"
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (base_out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return table


def _print_table(
    name: str,
    rows: list[dict[str, Any]],
    figure: str,
    higher_is_better: bool,
    run: SweepRun,
    info: dict[str, Any],
) -> None:
    from rich.console import Console
    from rich.table import Table

    order = "more" if higher_is_better else "less"
    t = Table(
        title=f"sweep of {name}: {len(rows)} runs ({info['search']} on {info['engine']}), "
        f"by {figure} ({order} is better)"
    )
    cols = ("rank", "permutation_id", *dict.fromkeys((figure, "total_pnl", "fills")), "note")
    for col in cols:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*("n/a" if r[c] is None else str(r[c]) for c in cols))
    Console(file=sys.stdout).print(t)
    again = f"; retried: {', '.join(run.retried)}" if run.retried else ""
    print(f"time: {info['wall_s']:.1f} s (runs {run.wall_s:.1f} s){again}")
    if info["decode"]:
        print(info["decode"])
    if info["prune_note"]:
        print(info["prune_note"])


__all__ = ["RUN_COLUMNS", "sweep_main", "sweep_parser"]
