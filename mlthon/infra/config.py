"""The strategy config file (TOML), validated with clear errors.

Example::

    [strategy]
    name = "demo_mm"                               # login name: letters, digits, _ . -
    class = "demo_strat.market_maker:MarketMaker"  # module:Class (module importable, or a .py path)
    start_params = ""                              # text given to on_start at auto-start
    auto_start = true                              # send "start" right after login
    mode = "paper"                                 # backtest | paper | live | live-testnet
    stop_ack_timeout_s = 10                        # then the stop escalates (cancel-all)
    slow_callback_ms = 50                          # report callbacks blocking longer
    timezone = ""                                  # daily callbacks: "" = UTC (never the host's)
    stale_cmd_s = 60                               # drop command hooks older than this (0: never)
    accounting_period_s = 30                       # ask the gateways for positions (0: never)
    start_wait_s = 3                               # on_start waits this long for every gateway's
                                                   # and feed's status (0: not at all)
    stop_ack_hold_s = 3                            # a stop ack waits this long for the cancels
                                                   # sent since the stop (below stop_ack_timeout_s)
    feed_silence_s = 0                             # a feed without heartbeats silent this long is
                                                   # Stale (0: only heartbeats decide)

    [params]                                       # handed to on_strat_params_update; checked
    spread_ticks = 2                               # against the strategy's Params schema if it
                                                   # has one (mlthon.infra.strategy_params)

    [instruments]
    file = ""                                      # "" = the packaged instruments file
    use = [9001]                                   # instrument ids the strategy may use, or
                                                   # "all" (every instrument of the file; asked
                                                   # for explicitly: [] and no use are errors)

    [bus]
    host = "127.0.0.1"
    port = 1883
    root = "mlt"

    [backtest]                                     # `mlthon backtest` (app/cli.py)
    data = []                                      # recordings; [] = a synthetic market
    synthetic_seconds = 600
    synthetic_seed = 7
    out = ""                                       # runs: <out>/<run id>/ ("" = results/<name>)
    sample_every_s = 1
    capital = "100000"
    feed_silence_s = 10                            # default: 10 for recordings, 0 synthetic
    strict = false                                 # true: callback errors or no event fail
                                                   # the run (exit 1), as --strict

    [telegram]
    config = "telegram.toml"                       # the bridge `mlthon run` starts

    [sim]                                          # the simulated exchange (a gateway.toml's
                                                   # sections; checked by SimGatewayConfig)

    [risk]                                         # the env's risk layer (docs/risk.md);
    max_order_qty = "0.5"                          # every limit is off unless written
    [risk.instruments.BTCUSDT]                     # per instrument, by name or id
    max_position = "1"

    [run]                                          # `mlthon run`: supervision of its parts
    restart = { gateway = "restart", feed = "restart", strategy = "restart",
                control = "restart", telegram = "restart" }  # or "stop": a death stops the run
    restart_delay_s = 0.5                          # first back-off; doubles (jitter) up to:
    restart_delay_max_s = 30
    restart_reset_after_s = 60                     # a part up this long backs off from the start
    max_restarts = 5                               # per part within restart_window_s; one more
    restart_window_s = 300                         # stops the run with an error
    ready_timeout_s = 60                           # gateway and feed up before the strategy starts

Paths in the file are relative to the file's folder. Every table is read against this schema
(:mod:`mlthon.infra.config_schema`): an unknown section or key, a value of the wrong type, a
number that is NaN, infinite or out of range, a decimal the one rule of
:mod:`mlthon.basics.sanity` refuses, is a :class:`~mlthon.basics.errors.ConfigError` naming the
file, the key and the value.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import sys
import tomllib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import RuntimeMode
from mlthon.infra.bus.topics import check_name
from mlthon.infra.config_schema import REQUIRED, Table, read_toml, show
from mlthon.infra.instruments import load_instruments
from mlthon.infra.risk.limits import RiskConfig, parse_risk_table

_MODES = {
    "backtest": RuntimeMode.Backtest,
    "paper": RuntimeMode.Paper,
    "live": RuntimeMode.Live,
    "live-testnet": RuntimeMode.LiveTestnet,
}


@attrs.frozen
class BusConfig:
    """Where the MQTT broker is."""

    host: str = "127.0.0.1"
    port: int = 1883
    root: str = "mlt"


# The parts `mlthon run` supervises, and what it does when one dies.
RUN_PARTS = ("control", "gateway", "feed", "telegram", "strategy")
RESTART = "restart"
STOP_RUN = "stop"
RESTART_POLICIES = (RESTART, STOP_RUN)


def _default_restart() -> dict[str, str]:
    return dict.fromkeys(RUN_PARTS, RESTART)


@attrs.frozen
class RunConfig:
    """How ``mlthon run`` supervises its parts (the ``[run]`` table).

    Attributes:
        restart: per part (control, gateway, feed, telegram, strategy): ``restart`` it when it
            dies, or ``stop`` the run.
        restart_delay_s: the first back-off before a restart; it doubles (with jitter) per
            restart up to ``restart_delay_max_s``.
        restart_delay_max_s: the largest back-off.
        restart_reset_after_s: a part that ran this long before dying starts again from
            ``restart_delay_s``.
        max_restarts: restarts of one part allowed within ``restart_window_s``; one more
            stops the run with an error.
        restart_window_s: the window of ``max_restarts``.
        ready_timeout_s: how long the gateway and the feed have to report up before the
            strategy is started (else the run stops with an error).
    """

    restart: dict[str, str] = attrs.field(factory=_default_restart)
    restart_delay_s: float = 0.5
    restart_delay_max_s: float = 30.0
    restart_reset_after_s: float = 60.0
    max_restarts: int = 5
    restart_window_s: float = 300.0
    ready_timeout_s: float = 60.0


@attrs.frozen
class BacktestConfig:
    """The ``[backtest]`` table: how ``mlthon backtest`` (and ``mlthon run``'s feed) gets its data.

    Attributes:
        data: recordings to replay (absolute paths; empty: a synthetic market).
        synthetic_seconds: length of the synthetic market.
        synthetic_seed: its seed.
        out: where the run folders go (``<out>/<run id>/``; "" = ``results/<strategy name>``).
        sample_every_s: period of the equity samples.
        capital: the capital the returns are measured against.
        feed_silence_s: a hole in the data longer than this (simulated seconds) is reported as a
            stale feed (None: the default of the data's kind; 0: never).
        strict: a run with callback errors, no event or a position mismatch exits non-zero
            (``--strict``).
    """

    data: tuple[str, ...] = ()
    synthetic_seconds: float = 600.0
    synthetic_seed: int = 7
    out: str = ""
    sample_every_s: float = 1.0
    capital: Decimal = Decimal(100000)
    feed_silence_s: float | None = None
    strict: bool = False


@attrs.frozen
class StrategyConfig:
    """A validated strategy config file.

    ``instrument_ids`` are the instruments of ``[instruments] use``; ``every_instrument`` is
    ``use = "all"`` (every instrument of the file, asked for explicitly).
    """

    name: str
    class_path: str
    params: dict[str, Any]
    start_params: str = ""
    auto_start: bool = True
    mode: RuntimeMode = RuntimeMode.Paper
    stop_ack_timeout_s: float = 10.0
    slow_callback_ms: float = 50.0
    timezone: str = ""
    stale_cmd_s: float = 60.0
    accounting_period_s: float = 30.0
    start_wait_s: float = 3.0
    stop_ack_hold_s: float = 3.0
    feed_silence_s: float = 0.0
    instruments_file: str = ""
    instrument_ids: tuple[int, ...] = ()
    every_instrument: bool = False
    bus: BusConfig = BusConfig()
    run: RunConfig = RunConfig()
    backtest: BacktestConfig = BacktestConfig()
    telegram_config: str = ""
    risk: RiskConfig | None = None
    source: str = ""
    raw: dict[str, Any] = attrs.field(factory=dict)
    preset_instruments: tuple[Instrument, ...] = ()

    def instruments(self) -> list[Instrument]:
        """The instruments the strategy may use: those of ``use`` (every instrument of the file
        for ``use = "all"``; the preset ones when built in code, as backtests do).

        Raises:
            ConfigError: an id not in the file, or no instrument named at all.
        """
        if self.preset_instruments:
            return list(self.preset_instruments)
        if self.instruments_file and not Path(self.instruments_file).is_file():
            raise ConfigError(
                f"no such file: {self.instruments_file}", source=self.source, key="instruments.file"
            )
        all_insts = load_instruments(self.instruments_file or None)
        if self.every_instrument:
            return all_insts
        if not self.instrument_ids:
            raise ConfigError(_NO_INSTRUMENT, source=self.source, key="instruments.use")
        by_id = {i.instrument_id: i for i in all_insts}
        missing = [i for i in self.instrument_ids if i not in by_id]
        if missing:
            raise ConfigError(
                f"instruments {missing} are not in {self.instruments_file or 'the default file'}",
                source=self.source,
                key="instruments.use",
            )
        return [by_id[i] for i in self.instrument_ids]


_NO_INSTRUMENT = (
    'names no instrument: list the ids the strategy may trade (use = [1001]), or write use = "all"'
    " for every instrument of the instruments file"
)
#: ``[instruments] use = "all"``: every instrument of the file, asked for explicitly.
EVERY_INSTRUMENT = "all"

# The sections of a strategy file, and the keys of those read here (``[params]`` is checked
# against the strategy's parameter schema, :mod:`mlthon.infra.strategy_params`; ``[sim]`` by the
# simulated exchange's config where it is used).
_SECTIONS = (
    "strategy",
    "params",
    "instruments",
    "bus",
    "backtest",
    "sim",
    "telegram",
    "run",
    "risk",
)
_STRATEGY_KEYS = (
    "name",
    "class",
    "start_params",
    "auto_start",
    "mode",
    "stop_ack_timeout_s",
    "slow_callback_ms",
    "timezone",
    "stale_cmd_s",
    "accounting_period_s",
    "start_wait_s",
    "stop_ack_hold_s",
    "feed_silence_s",
)
_BACKTEST_KEYS = tuple(f.name for f in attrs.fields(BacktestConfig))
_CLASS_PATH = re.compile(r"[^:\s][^:]*:[A-Za-z_][A-Za-z0-9_]*")
#: A topic root: levels of letters, digits, ``_ . -`` separated by ``/``.
TOPIC_ROOT = re.compile(r"[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}")
_HOST = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,253}")
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
#: The largest number of seconds any setting takes (31 years).
MOST_S = 1e9


def parse_strategy_config(
    data: dict[str, Any], source: str = "<config>", base_dir: Path | None = None
) -> StrategyConfig:
    """Validate a parsed strategy config (its schema: the module docstring).

    Raises:
        ConfigError: an unknown section or key, a missing or wrongly typed key, a number that is
            not finite or out of range, a bad name, mode, time zone or instrument list (the file,
            the key and the value are named).
    """
    doc = Table.root(data, source, keys=_SECTIONS, what="sections")
    strat = doc.table("strategy", keys=_STRATEGY_KEYS, required=True)
    name = strat.text("name", REQUIRED)
    try:
        check_name(name, "strategy.name")
    except ValueError as exc:
        raise strat.error("name", str(exc)) from None
    class_path = strat.text("class", REQUIRED)
    if _CLASS_PATH.fullmatch(class_path) is None:
        raise strat.error(
            "class", f"must be 'module:Class' (or 'path/to/file.py:Class'), got {class_path!r}"
        )
    mode_s = strat.text("mode", "paper", choices=sorted(_MODES))
    timeout = strat.number("stop_ack_timeout_s", 10.0, low_open=True, high=MOST_S)
    slow_ms = strat.number("slow_callback_ms", 50.0, low_open=True, high=MOST_S)
    tz = strat.text("timezone", "", empty=True, most=64)
    stale_s = strat.number("stale_cmd_s", 60.0, high=MOST_S)
    acct_s = strat.number("accounting_period_s", 30.0, high=MOST_S)
    start_wait = strat.number("start_wait_s", 3.0, high=600)
    hold = strat.number("stop_ack_hold_s", min(3.0, 0.8 * timeout), high=3600)
    if hold >= timeout:
        raise strat.error(
            "stop_ack_hold_s",
            f"must be below stop_ack_timeout_s ({timeout:g}), got {hold:g}: a held stop "
            "acknowledgement must go out before the control service escalates",
        )
    silence = strat.number("feed_silence_s", 0.0, high=86400)
    if tz:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise strat.error("timezone", f"unknown time zone {tz!r}") from None
    params = doc.table("params")
    check_free_values(params)
    inst = doc.table("instruments", keys=("use", "file"))
    inst_file = inst.path_of("file", base_dir, "")
    every, ids = _instrument_use(inst)
    bus_t = doc.table("bus", keys=("host", "port", "root"))
    bus = BusConfig(
        host=bus_t.text("host", "127.0.0.1", pattern=_HOST),
        port=bus_t.integer("port", 1883, low=1, high=65535),
        root=bus_t.text("root", "mlt", pattern=TOPIC_ROOT),
    )
    backtest = _parse_backtest(doc.table("backtest", keys=_BACKTEST_KEYS), base_dir)
    doc.table("sim")  # a table; its keys are the simulated exchange's (checked where used)
    tg = doc.table("telegram", keys=("config",))
    telegram_config = tg.path_of("config", base_dir, "")
    run = parse_run_table(data.get("run", {}), source)
    risk = parse_risk_table(doc.table("risk"))
    if base_dir is not None and ".py:" in class_path and not Path(class_path).is_absolute():
        class_path = str(base_dir / class_path)
    return StrategyConfig(
        name=name,
        class_path=class_path,
        params=dict(params.data),
        start_params=strat.text("start_params", "", empty=True),
        auto_start=strat.flag("auto_start", True),
        mode=_MODES[mode_s],
        stop_ack_timeout_s=timeout,
        slow_callback_ms=slow_ms,
        timezone=tz,
        stale_cmd_s=stale_s,
        accounting_period_s=acct_s,
        start_wait_s=start_wait,
        stop_ack_hold_s=hold,
        feed_silence_s=silence,
        instruments_file=inst_file,
        instrument_ids=tuple(ids),
        every_instrument=every,
        bus=bus,
        run=run,
        backtest=backtest,
        telegram_config=telegram_config,
        risk=risk,
        source=source,
        raw=data,
    )


def _instrument_use(inst: Table) -> tuple[bool, list[int]]:
    """``[instruments] use``: ``(True, [])`` for ``"all"``, else ``(False, ids)``.

    Raises:
        ConfigError: missing, empty, or neither a list of ids nor ``"all"``.
    """
    if "use" not in inst:
        raise inst.error("use", f"missing: it {_NO_INSTRUMENT}")
    value = inst.data["use"]
    if isinstance(value, str):
        if value != EVERY_INSTRUMENT:
            raise inst.error(
                "use", f'must be a list of instrument ids or "{EVERY_INSTRUMENT}", got {value!r}'
            )
        return True, []
    if value == []:
        raise inst.error("use", f"[] {_NO_INSTRUMENT}")
    ids = inst.int_list("use", low=1, high=2**63 - 1)
    if len(set(ids)) != len(ids):
        raise inst.error("use", f"names an instrument twice: {ids}")
    return False, ids


def _parse_backtest(bt: Table, base_dir: Path | None) -> BacktestConfig:
    data = bt.text_list("data", [])
    if base_dir is not None:
        data = [p if Path(p).is_absolute() else str(base_dir / p) for p in data]
    return BacktestConfig(
        data=tuple(data),
        synthetic_seconds=bt.number("synthetic_seconds", 600.0, low_open=True, high=1e8),
        synthetic_seed=bt.integer("synthetic_seed", 7, low=0),
        out=bt.text("out", ""),
        sample_every_s=bt.number("sample_every_s", 1.0, low_open=True, high=86400),
        capital=bt.decimal("capital", "100000", positive=True),
        feed_silence_s=bt.number("feed_silence_s", None, high=86400),
        strict=bt.flag("strict", False),
    )


def check_free_values(table: Table) -> None:
    """Check the values of a table whose keys are free (``[params]`` without a schema): every
    key is a name, every number finite, at any depth.

    Raises:
        ConfigError: a key that is not a name, or a number that is not finite (the key is named).
    """
    for key, value in table.data.items():
        if not isinstance(key, str) or _NAME.fullmatch(key) is None:
            raise table.error(
                None, f"key {show(key)} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        _check_free_value(table, key, value, 0)


def _check_free_value(table: Table, key: str, value: object, depth: int) -> None:
    if depth > 8:
        raise table.error(key, "is nested more than 8 levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise table.error(key, f"must be a finite number, got {value!r}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_free_value(table, f"{key}[{i}]", item, depth + 1)
    elif isinstance(value, dict):
        check_free_values(Table(value, table.source, table.key(key)))


def parse_run_table(table: Any, source: str = "<config>") -> RunConfig:
    """Validate the ``[run]`` table (see :class:`RunConfig`).

    ``restart`` is a table of part -> ``"restart"`` / ``"stop"`` (parts left out restart), or
    one of those words for every part.

    Raises:
        ConfigError: not a table, an unknown key, part or policy, or a value out of range (the
            key is named).
    """
    run = Table.root({"run": table}, source).table(
        "run", keys=[f.name for f in attrs.fields(RunConfig)]
    )
    policies = _default_restart()
    given = run.data.get("restart", {})
    if isinstance(given, str):
        given = dict.fromkeys(RUN_PARTS, given)
    if not isinstance(given, dict):
        raise run.error(
            "restart",
            f'must be a table such as {{ gateway = "restart", strategy = "stop" }} or one of '
            f"{list(RESTART_POLICIES)}, got {show(given)}",
        )
    unknown = sorted(str(k) for k in set(given) - set(RUN_PARTS))
    if unknown:
        raise run.error("restart", f"unknown parts {unknown}; known: {list(RUN_PARTS)}")
    restart = Table(given, source, "run.restart")
    for part in given:
        policies[part] = restart.text(part, choices=RESTART_POLICIES)
    defaults = RunConfig()
    values: dict[str, Any] = {}
    for key in (
        "restart_delay_s",
        "restart_delay_max_s",
        "restart_reset_after_s",
        "restart_window_s",
        "ready_timeout_s",
    ):
        values[key] = run.number(key, getattr(defaults, key), low_open=True, high=MOST_S)
    max_restarts = run.integer("max_restarts", defaults.max_restarts, low=0, high=1_000_000)
    if values["restart_delay_max_s"] < values["restart_delay_s"]:
        raise run.error(
            "restart_delay_max_s", f"must be >= restart_delay_s ({values['restart_delay_s']:g})"
        )
    return RunConfig(restart=policies, max_restarts=max_restarts, **values)


def load_strategy_config(path: str | Path, settings: Sequence[str] = ()) -> StrategyConfig:
    """Read and validate a strategy config file, with ``settings`` applied first: words
    ``section.key=value`` (``sim.account.balances.USD=100000``, ``strategy.stop_ack_timeout_s=3``)
    that set a value of the file's tables (see :func:`set_in_tables`).

    Raises:
        ConfigError: unreadable, not TOML, or invalid (the message names the file and the key).
    """
    p = Path(path)
    data = read_toml(p)
    for word in settings:
        set_in_tables(data, word, str(p))
    return parse_strategy_config(data, str(p), p.resolve().parent)


def set_in_tables(data: dict[str, Any], word: str, source: str = "") -> None:
    """Set ``section.key[.key...]=value`` in a parsed file's tables (created as needed); the
    value is read as a TOML value (``3``, ``true``, ``"x"``, ``[1, 2]``), else taken as text.

    Raises:
        ConfigError: not ``section.key=value``, or a key that is a value, not a table.
    """
    path, sep, text = word.partition("=")
    keys = [k.strip() for k in path.split(".")]
    if not sep or len(keys) < 2 or not all(keys):
        raise ConfigError(f"{word!r} is not section.key=value", source=source)
    try:
        value: Any = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    table = data
    for k in keys[:-1]:
        nxt = table.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(keys)}: {k} is a value, not a table", source=source)
        table = nxt
    table[keys[-1]] = value


def load_strategy_class(class_path: str, source: str = "") -> type:
    """Import ``module:Class`` or ``path/to/file.py:Class``.

    Raises:
        ConfigError: the module or class cannot be found.
    """
    mod_name, _, cls_name = class_path.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            # Strategies usually live beside their config or in the working folder.
            for folder in (str(Path(source).resolve().parent) if source else "", os.getcwd()):
                if folder and folder not in sys.path:
                    sys.path.append(folder)
            module = importlib.import_module(mod_name)
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"cannot import {mod_name!r}: {exc}", source=source, key="strategy.class"
        ) from exc
    cls = getattr(module, cls_name, None)
    if not isinstance(cls, type):
        raise ConfigError(
            f"{mod_name!r} has no class {cls_name!r}", source=source, key="strategy.class"
        )
    return cls


def parse_param_assignments(args: list[str], current: dict[str, Any]) -> dict[str, Any]:
    """Parse ``key=value`` words into typed values.

    A value is read as a TOML value (``2``, ``0.5``, ``true``, ``"text"``); a bare word that is
    not TOML is taken as a string. When the key already exists its type must be kept (an int may
    become a float); a key whose current value is a string takes the text as given (so
    ``size=0.010`` stays the exact ``"0.010"``).

    Raises:
        ValueError: a word without ``=``, or a value whose type does not match the current one.
    """
    out: dict[str, Any] = {}
    for word in args:
        key, sep, text = word.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{word!r} is not key=value")
        if isinstance(current.get(key), str):
            # A text parameter (a decimal like "0.010", a name) keeps the words as given.
            out[key] = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
            continue
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        if key in current:
            old = current[key]
            if isinstance(old, bool) != isinstance(value, bool) or (
                not isinstance(value, type(old))
                and not (isinstance(old, float) and isinstance(value, int))
            ):
                raise ValueError(
                    f"{key} is a {type(old).__name__} ({old!r}); got {type(value).__name__} "
                    f"{value!r}"
                )
            if isinstance(old, float) and isinstance(value, int):
                value = float(value)
        out[key] = value
    return out
