"""``mlthon backtest``: a strategy over recorded or synthetic data (``mlthon sweep``, many runs
of it: :mod:`mlthon.app.sweep`).

The strategy's TOML config may carry the run's settings, so that one file describes it::

    [backtest]
    data = ["../shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz"]
    # no data: a synthetic market on the strategy's instruments (seeded):
    synthetic_seconds = 600
    synthetic_seed = 7
    out = "results/demo"          # runs go to results/demo/<run id>/ (default: results/<name>)
    strict = true                 # callback errors or no event: exit 1 (as --strict)
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

Each run writes a folder of its own, ``<out>/<run id>/`` (the UTC time and four hex digits),
and points ``<out>/latest`` at it; ``--out DIR`` writes exactly into DIR instead. A sweep writes
``<out>/sweep-<run id>/``: ``sweep.csv``, ``sweep.html`` and a folder per permutation.

Command-line options override the file: ``--data``/``--start``/``--end``/``--out`` the
``[backtest]`` settings, ``--instruments 1201,1202`` the ``[instruments] use`` list, and
``--set key=value`` (repeatable) the ``[params]``, ``--set section.key=value`` a value of any
other table (``sim.account.balances.USD=100000``); so one config serves several recordings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections.abc import Iterator
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


def run_settings(cfg: StrategyConfig, a: argparse.Namespace) -> dict[str, Any]:
    bt = cfg.backtest
    return {
        "data": a.data or list(bt.data),
        "synthetic_seconds": float(a.synthetic_seconds or bt.synthetic_seconds),
        "synthetic_seed": int(a.seed if a.seed is not None else bt.synthetic_seed),
        # --out: exactly that folder; else a new run folder under [backtest] out or results/<name>
        "out": a.out,
        "runs_dir": bt.out or f"results/{cfg.name}",
        "strict": a.strict or bt.strict,
        "sample_every_s": bt.sample_every_s,
        "capital": str(bt.capital),
        # None: the default of the data's kind (Backtest.FEED_SILENCE_S)
        "feed_silence_s": bt.feed_silence_s,
        "start": _parse_time(a.start, "start"),
        "end": _parse_time(a.end, "end"),
        "cache": not a.no_cache,
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
    from mlthon.app.backtest import Backtest, new_run_folder

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
        cache=settings.get("cache", True),
        risk=cfg.risk,
        data_span_s=None if settings["data"] else seconds,
    )
    result = bt.run()
    t0 = time.perf_counter()
    # The folder is made once the run is over: a run that fails leaves none.
    out = settings["out"] or new_run_folder(settings["runs_dir"])
    folder = result.write(out, report=report)
    result.perf["write_s"] = round(time.perf_counter() - t0, 3)
    return result.summary, result.perf, folder


_BACKTEST_HELP = """\
Backtest a strategy (its TOML config) on recorded data or on a seeded synthetic market, in
simulated time, with the simulated exchange of the config's [sim] table. Same inputs, same
outputs. Each run writes results/<strategy>/<run id>/ (tables, summary.json, report.html) and
points results/<strategy>/latest at it; a run with callback errors or no event exits 1 with
--strict ([backtest] strict = true)."""

_BACKTEST_EXAMPLE = """\
example:
  mlthon backtest demo_strat/market_maker.toml
  mlthon backtest demo_strat/market_maker.toml --strict \\
    --data ../shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz \\
    --instruments 1001 --set exchange=BinanceUsdm instrument_id=1001"""


def backtest_parser(prog: str, description: str, example: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="the strategy's TOML config")
    p.add_argument(
        "--data",
        nargs="*",
        default=None,
        help="recordings to replay (default: [backtest].data, else a synthetic market)",
    )
    p.add_argument("--start", help="replay from this time (ISO, UTC) or ns")
    p.add_argument("--end", help="replay up to this time (ISO, UTC) or ns")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write exactly into DIR (default: a new run folder results/<strategy>/<run id>/, "
        "or under [backtest] out)",
    )
    p.add_argument(
        "--synthetic-seconds",
        type=cli_number(0, 1e8),
        default=None,
        help="length of the synthetic market when no data is given (default 600)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic market")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report and plots")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a callback raised, no event was replayed or the positions disagree "
        "([backtest] strict = true)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="decode the recordings again instead of reading the replay cache "
        "($MLTHON_CACHE_DIR, default ~/.cache/mlthon/replay), and write none",
    )
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
        raise ConfigError(config_reason(exc), source=cfg.source, key=key) from None


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
            raise ConfigError(
                f"--set: {config_reason(exc)}", source=exc.source, key=exc.key
            ) from None
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


def config_reason(exc: ConfigError) -> str:
    """The message of ``exc`` without the ``file: [key]`` it starts with."""
    text = str(exc)
    for head in (f"{exc.source}: " if exc.source else "", f"[{exc.key}] " if exc.key else ""):
        text = text.removeprefix(head)
    return text


def backtest_main(argv: list[str]) -> int:
    """``mlthon backtest``: run, write the folder, print the summary and the report's path."""
    p = backtest_parser("mlthon backtest", _BACKTEST_HELP, _BACKTEST_EXAMPLE)
    a = p.parse_args(argv)
    cfg = load_with_overrides(a)
    settings = run_settings(cfg, a)
    check_grids(cfg, settings)
    summary, perf, folder = run_backtest(cfg, settings, progress=True, report=not a.no_report)
    _print_summary(summary, perf, folder, report=not a.no_report)
    from mlthon.app.backtest import point_latest, run_failures

    failures = run_failures(summary)
    if settings["strict"] and failures:
        # The folder stays, to look into; latest keeps pointing at the last run that passed.
        print(f"mlthon backtest: --strict: {'; '.join(failures)}", file=sys.stderr)
        return 1
    if not settings["out"]:
        point_latest(folder)
    return 0


def check_grids(cfg: StrategyConfig, settings: dict[str, Any]) -> None:
    """Warn, before the run, of an instrument whose tick or lot the recordings contradict
    (their first 20,000 events: about 0.8 s on a Binance capture, so here and not in
    :class:`Backtest`, which notebooks call in loops)."""
    if settings["data"]:
        from mlthon.app.instrument_drafts import warn_grid_conflicts

        warn_grid_conflicts(settings["data"], cfg.instruments(), max_events=20_000)


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
    if perf.get("slow_callbacks"):
        t.add_row(
            f"slow callbacks (> {perf['slow_callback_ms']:g} ms CPU)",
            f"{perf['slow_callbacks']:,.0f}, the longest {perf['slowest_callback_ms']:.1f} ms",
        )
    t.add_row("events/s (engine)", f"{perf['events_per_s']:,.0f}")
    t.add_row(
        "time (s)",
        f"start-up {perf['startup_s']:.2f}, engine {perf['engine_s']:.2f}, "
        f"results {perf['results_s'] + perf.get('write_s', 0.0):.2f}",
    )
    Console(file=sys.stdout).print(t)
    print(f"results: {folder}")
    if report:
        print(f"report: {folder / 'report.html'}")


def cache_main(argv: list[str]) -> int:
    """``mlthon cache [info|clear]``: where the replay cache is, what it holds; or empty it."""
    from mlthon.feeds.replay_cache import ReplayCache, decoder_version, read_footer

    p = argparse.ArgumentParser(
        prog="mlthon cache",
        description="the replay cache of decoded recordings ($MLTHON_CACHE_DIR, else "
        "$XDG_CACHE_HOME/mlthon/replay, else ~/.cache/mlthon/replay)",
        epilog="example:\n  mlthon cache info     # where the cache is and what it holds\n"
        "  mlthon cache clear    # empty it (backtests decode and cache again)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=("info", "clear"),
        default="info",
        help="info (the default): the directory and its files; clear: remove them",
    )
    a = p.parse_args(argv)
    cache = ReplayCache()
    if a.action == "clear":
        print(f"removed {cache.clear()} files from {cache.dir}")
        return 0
    files = cache.entries()
    current = decoder_version()
    print(f"directory: {cache.dir}")
    print(f"decoder version: {current}")
    total = 0
    for f in files:
        size = f.stat().st_size
        total += size
        foot = read_footer(f)
        state = "unreadable" if foot is None else "complete" if foot[1] else "prefix"
        stale = "" if f.stem.endswith(current) else ", stale decoder"
        print(f"  {f.name}  {size / 1e6:.1f} MB  {state}{stale}")
    print(f"{len(files)} files, {total / 1e6:.1f} MB")
    return 0


__all__ = ["MlthonError", "backtest_main", "cache_main", "run_backtest"]
