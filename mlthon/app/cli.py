"""``mlthon backtest`` and ``mlthon sweep``: a strategy over recorded or synthetic data.

The strategy's TOML config may carry the run's settings, so that one file describes it::

    [backtest]
    data = ["../shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz"]
    # no data: a synthetic market on the strategy's instruments (seeded):
    synthetic_seconds = 600
    synthetic_seed = 7
    out = "results/demo"          # default: results/<strategy name>
    sample_every_s = 1
    capital = "100000"
    feed_silence_s = 10           # a hole in the data longer than this (simulated s) is
                                  # reported as a stale feed; default 10 for recordings,
                                  # 0 (never) for a synthetic market

    [sim]                         # the simulated exchange: the sections of a gateway.toml
    [sim.account]
    balances = { USDT = "100000" }
    [sim.latency]
    market_data = "1ms"

Command-line options override the file: ``--data``/``--start``/``--end``/``--out`` the
``[backtest]`` settings, ``--instruments 1201,1202`` the ``[instruments] use`` list, and
``--set key=value`` (repeatable) the ``[params]``, ``--set section.key=value`` a value of any
other table (``sim.account.balances.USD=100000``); so one config serves several recordings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlthon.app.ledger import HEADLINE_FIGURES
from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.infra.bus import messages as m
from mlthon.infra.config import StrategyConfig, load_strategy_class, load_strategy_config
from mlthon.infra.config_schema import cli_number
from mlthon.infra.strategy_params import param_rules

if TYPE_CHECKING:
    from mlthon.gateways.sim.config import SimGatewayConfig

log = logging.getLogger(__name__)

NS = 1_000_000_000


def _parse_time(text: str | None, what: str) -> int | None:
    """ISO date/time (UTC unless it says otherwise) or integer ns."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--{what} must be ISO time (2024-08-08T12:00:00) or ns, got {text!r}"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * NS)


def _settings(cfg: StrategyConfig, a: argparse.Namespace) -> dict[str, Any]:
    bt = cfg.backtest
    return {
        "data": a.data or list(bt.data),
        "synthetic_seconds": float(a.synthetic_seconds or bt.synthetic_seconds),
        "synthetic_seed": int(a.seed if a.seed is not None else bt.synthetic_seed),
        "out": a.out or bt.out or f"results/{cfg.name}",
        "sample_every_s": bt.sample_every_s,
        "capital": str(bt.capital),
        # None: the default of the data's kind (Backtest.FEED_SILENCE_S)
        "feed_silence_s": bt.feed_silence_s,
        "start": _parse_time(a.start, "start"),
        "end": _parse_time(a.end, "end"),
    }


def _synthetic(cfg: StrategyConfig, seconds: float, seed: int) -> Iterator[m.Msg]:
    from mlthon.feeds.synthetic import synthetic_market

    insts = cfg.instruments()
    start = 1_700_000_000 * NS  # a fixed start keeps synthetic runs reproducible
    streams = [
        synthetic_market(i, seed=seed + k, start_ns=start, duration_s=seconds)
        for k, i in enumerate(insts)
    ]
    if len(streams) == 1:
        return streams[0]
    import heapq

    return heapq.merge(*streams, key=lambda x: x.ts)  # type: ignore[attr-defined,no-any-return]


def run_backtest(
    cfg: StrategyConfig, settings: dict[str, Any], *, progress: bool = False, report: bool = True
) -> tuple[dict[str, Any], dict[str, float], Path]:
    """Run one backtest from a config and settings; write its folder; return the figures."""
    from mlthon.app.backtest import Backtest

    gw = sim_config(cfg)
    cls = load_strategy_class(cfg.class_path, cfg.source)
    seconds = settings["synthetic_seconds"]
    data: Any = settings["data"] or _synthetic(
        cfg, settings["synthetic_seconds"], settings["synthetic_seed"]
    )
    bt = Backtest(
        cls,
        data=data,
        instruments=cfg.instruments(),
        params=cfg.params,
        name=cfg.name,
        gateway=gw,
        start_ns=settings["start"],
        end_ns=settings["end"],
        start_params=cfg.start_params,
        sample_every_s=settings["sample_every_s"],
        capital=settings["capital"],
        progress=progress,
        stop_ack_timeout_s=cfg.stop_ack_timeout_s,
        # Daily callbacks at the strategy's wall time, never the host's (UTC by default).
        timezone=cfg.timezone or "UTC",
        feed_silence_s=settings["feed_silence_s"],
        # What the report's header says the data were, when they are a synthetic market.
        data_label="" if settings["data"] else f"synthetic market, {seconds:g} s",
        data_seed=None if settings["data"] else settings["synthetic_seed"],
    )
    result = bt.run()
    folder = result.write(settings["out"], report=report)
    return result.summary, result.perf, folder


def _backtest_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("config", help="the strategy's TOML config")
    p.add_argument(
        "--data",
        nargs="*",
        default=None,
        help="recordings to replay (default: [backtest].data, else a synthetic market)",
    )
    p.add_argument("--start", help="replay from this time (ISO, UTC) or ns")
    p.add_argument("--end", help="replay up to this time (ISO, UTC) or ns")
    p.add_argument("--out", help="results folder (default results/<strategy>)")
    p.add_argument(
        "--synthetic-seconds",
        type=cli_number(0, 1e8),
        default=None,
        help="length of the synthetic market when no data is given (default 600)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic market")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report and plots")
    add_override_options(p)
    return p


def add_override_options(p: argparse.ArgumentParser) -> None:
    """``--set`` and ``--instruments``, for the commands that run a strategy config."""
    p.add_argument(
        "--set",
        dest="assignments",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override [params] entries (TOML values; a text parameter keeps the text as "
        "given); section.key=value sets another table's value (sim.account.balances.USD=1e5)",
    )
    p.add_argument(
        "--instruments",
        help="instrument ids to use instead of [instruments] use, comma separated (1201,1202)",
    )


def sim_config(cfg: StrategyConfig) -> SimGatewayConfig:
    """The simulated exchange of a strategy file (its ``[sim]`` table, a gateway.toml's sections).

    Raises:
        ConfigError: an unknown key or a value that makes no sense (a negative balance, NaN...),
            named with the file and ``sim.<key>``.
    """
    from mlthon.gateways.sim.config import SimGatewayConfig

    sim = cfg.raw.get("sim", {})
    try:
        return SimGatewayConfig.from_dict(sim, cfg.source) if sim else SimGatewayConfig()
    except ConfigError as exc:
        # The gateway's loader names its own sections; here they are under [sim].
        key = f"sim.{exc.key}" if exc.key else "sim"
        raise ConfigError(_reason(exc), source=cfg.source, key=key) from None


def load_with_overrides(a: argparse.Namespace) -> StrategyConfig:
    """The config file with the command line's --set and --instruments applied, its
    ``[params]`` checked against the strategy's parameter schema (if it has one) and its
    ``[sim]`` table against the simulated exchange's.

    Raises:
        ConfigError: a bad file, ``--set`` word or ``--instruments`` id (named).
    """
    # ``section.key=value`` sets a value of the file's tables; a bare ``key=value`` a parameter.
    dotted = [w for w in a.assignments if "." in w.partition("=")[0]]
    plain = [w for w in a.assignments if "." not in w.partition("=")[0]]
    cfg = load_strategy_config(a.config, dotted)
    sim_config(cfg)
    rules = param_rules(load_strategy_class(cfg.class_path, cfg.source))
    params = rules.check(cfg.params, cfg.source)
    if plain:
        try:
            params.update(rules.assign(plain, params, cfg.source))
        except ConfigError as exc:
            raise ConfigError(f"--set: {_reason(exc)}", source=exc.source, key=exc.key) from None
    cfg = attrs.evolve(cfg, params=params)
    if a.instruments:
        try:
            ids = tuple(int(x) for x in a.instruments.split(",") if x.strip())
        except ValueError:
            raise ConfigError(
                f"--instruments takes instrument ids separated by commas, got {a.instruments!r}"
            ) from None
        cfg = attrs.evolve(cfg, instrument_ids=ids)
        cfg.instruments()  # an unknown id is an error now, not in the middle of the run
    return cfg


def _reason(exc: ConfigError) -> str:
    """The message of ``exc`` without the ``file: [key]`` it starts with."""
    text = str(exc)
    for head in (f"{exc.source}: " if exc.source else "", f"[{exc.key}] " if exc.key else ""):
        text = text.removeprefix(head)
    return text


def backtest_main(argv: list[str]) -> int:
    """``mlthon backtest``: run, write the folder, print the summary and the report's path."""
    a = _backtest_parser("mlthon backtest").parse_args(argv)
    cfg = load_with_overrides(a)
    settings = _settings(cfg, a)
    summary, perf, folder = run_backtest(cfg, settings, progress=True, report=not a.no_report)
    _print_summary(summary, perf, folder, report=not a.no_report)
    return 0


def _print_summary(
    summary: dict[str, Any], perf: dict[str, float], folder: Path, *, report: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"backtest {summary['strategy']} on {', '.join(summary['instruments'])}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k in HEADLINE_FIGURES:
        v = summary.get(k)
        t.add_row(k, "n/a" if v is None else str(v))
    if summary.get("callback_errors"):
        t.add_row("callback errors", f"[bold red]{summary['callback_errors']:,}[/] (see the log)")
    t.add_row("events/s", f"{perf['events_per_s']:,.0f}")
    t.add_row("wall time (s)", f"{perf['wall_time_s']:.2f}")
    Console(file=sys.stdout).print(t)
    print(f"results: {folder}")
    if report:
        print(f"report: {folder / 'report.html'}")


# --- sweeps ------------------------------------------------------------------------------------


def _grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"--grid takes key=v1,v2,...; got {spec!r}")
        out.append((key.strip(), [v.strip() for v in values.split(",") if v.strip()]))
    return out


def _sweep_one(
    args: tuple[StrategyConfig, dict[str, Any], dict[str, Any], str],
) -> dict[str, Any]:
    cfg, overrides, settings, perm_id = args
    logging.basicConfig(level=logging.WARNING)
    cfg = attrs.evolve(cfg, params={**cfg.params, **overrides})
    summary, _perf, folder = run_backtest(cfg, settings, report=False)
    return {
        "permutation_id": perm_id,
        **{f"param.{k}": v for k, v in overrides.items()},
        "total_pnl": summary["total_pnl"],
        "sharpe": summary["sharpe"],
        "max_drawdown": summary["max_drawdown"],
        "fills": summary["fills"],
        "fill_ratio": summary["fill_ratio"],
        "fees": summary["fees"],
        "folder": str(folder),
    }


def sweep_main(argv: list[str]) -> int:
    """``mlthon sweep <toml> --grid k=v1,v2 ...``: every combination, in parallel processes,
    one table sorted best first (by total PnL, then Sharpe)."""
    p = _backtest_parser("mlthon sweep")
    p.add_argument("--grid", nargs="+", required=True, help="key=v1,v2,... (repeat for a grid)")
    p.add_argument("--jobs", type=int, default=None, help="parallel processes (default: cores)")
    a = p.parse_args(argv)
    cfg = load_with_overrides(a)
    settings = _settings(cfg, a)
    grid = _grid(a.grid)
    rules = param_rules(load_strategy_class(cfg.class_path, cfg.source))
    base_out = Path(settings["out"])
    jobs = []
    # Every combination is checked before the first backtest starts.
    for combo in itertools.product(*[vals for _, vals in grid]):
        words = [f"{k}={v}" for (k, _), v in zip(grid, combo, strict=True)]
        try:
            overrides = rules.assign(words, cfg.params, cfg.source)
        except ConfigError as exc:
            raise ConfigError(f"--grid: {_reason(exc)}", source=exc.source, key=exc.key) from None
        perm_id = "-".join(f"{k}={v}" for (k, _), v in zip(grid, combo, strict=True))
        safe = "".join(c if c.isalnum() or c in "=-_." else "_" for c in perm_id)
        jobs.append((cfg, overrides, {**settings, "out": str(base_out / safe)}, perm_id))
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        rows = list(pool.map(_sweep_one, jobs))
    from decimal import Decimal

    rows.sort(
        key=lambda r: (Decimal(r["total_pnl"]), r["sharpe"] is not None, r["sharpe"] or 0.0),
        reverse=True,
    )
    base_out.mkdir(parents=True, exist_ok=True)
    table = base_out / "sweep.csv"
    import csv

    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (base_out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"sweep of {cfg.name}: {len(rows)} runs, best first")
    for col in ("permutation_id", "total_pnl", "sharpe", "max_drawdown", "fills"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            *(str(r[c]) for c in ("permutation_id", "total_pnl", "sharpe", "max_drawdown", "fills"))
        )
    Console(file=sys.stdout).print(t)
    print(f"table: {table}")
    return 0


__all__ = ["MlthonError", "backtest_main", "run_backtest", "sweep_main"]
