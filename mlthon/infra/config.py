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

    [params]                                       # handed to on_strat_params_update
    spread_ticks = 2

    [instruments]
    file = ""                                      # "" = the packaged instruments file
    use = [9001]                                   # instrument ids the strategy may use ([] = all)

    [bus]
    host = "127.0.0.1"
    port = 1883
    root = "mlt"

    [run]                                          # `mlthon run`: supervision of its parts
    restart = { gateway = "restart", feed = "restart", strategy = "restart",
                control = "restart", telegram = "restart" }  # or "stop": a death stops the run
    restart_delay_s = 0.5                          # first back-off; doubles (jitter) up to:
    restart_delay_max_s = 30
    restart_reset_after_s = 60                     # a part up this long backs off from the start
    max_restarts = 5                               # per part within restart_window_s; one more
    restart_window_s = 300                         # stops the run with an error
    ready_timeout_s = 60                           # gateway and feed up before the strategy starts

Paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import RuntimeMode
from mlthon.infra.bus.topics import check_name
from mlthon.infra.instruments import load_instruments

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
class StrategyConfig:
    """A validated strategy config file."""

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
    bus: BusConfig = BusConfig()
    run: RunConfig = RunConfig()
    source: str = ""
    raw: dict[str, Any] = attrs.field(factory=dict)
    preset_instruments: tuple[Instrument, ...] = ()

    def instruments(self) -> list[Instrument]:
        """The instruments the strategy may use (all of the file when ``use`` is empty; the
        preset ones when built in code, as backtests do)."""
        if self.preset_instruments:
            return list(self.preset_instruments)
        all_insts = load_instruments(self.instruments_file or None)
        if not self.instrument_ids:
            return all_insts
        by_id = {i.instrument_id: i for i in all_insts}
        missing = [i for i in self.instrument_ids if i not in by_id]
        if missing:
            raise ConfigError(
                f"instruments {missing} are not in {self.instruments_file or 'the default file'}",
                source=self.source,
                key="instruments.use",
            )
        return [by_id[i] for i in self.instrument_ids]


# The sections of a strategy file, and the keys of those read here (``[params]`` is the
# strategy's own; ``[sim]`` is checked by the simulated exchange's config).
_SECTIONS = ("strategy", "params", "instruments", "bus", "backtest", "sim", "telegram", "run")
_SECTION_KEYS = {
    "instruments": ("use", "file"),
    "bus": ("host", "port", "root"),
    "backtest": (
        "data",
        "synthetic_seconds",
        "synthetic_seed",
        "out",
        "sample_every_s",
        "capital",
        "feed_silence_s",
    ),
    "telegram": ("config",),
    "run": tuple(f.name for f in attrs.fields(RunConfig)),
}


def _known_keys(
    table: dict[str, Any], known: tuple[str, ...], source: str, section: str, what: str
) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {what} {unknown}; known: {sorted(known)}", source=source, key=section or None
        )


def _get(
    table: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    default: Any,
    source: str,
    section: str,
) -> Any:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"must be a number, got {value!r}", source=source, key=f"{section}.{key}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ConfigError(
            f"must be {names}, got {type(value).__name__} {value!r}",
            source=source,
            key=f"{section}.{key}",
        )
    return value


def _seconds(
    table: dict[str, Any],
    key: str,
    default: float,
    source: str,
    section: str,
    *,
    positive: bool = False,
    most: float = 1e9,
) -> float:
    """A finite number of seconds (or milliseconds) from ``table``: NaN, infinities and
    negative values (or zero, when ``positive``) are refused naming the key and the value."""
    value = float(_get(table, key, (int, float), default, source, section))
    if not math.isfinite(value) or value < 0 or (positive and value == 0) or value > most:
        want = "> 0" if positive else ">= 0"
        raise ConfigError(
            f"must be a finite number {want} and at most {most:g}, got {table.get(key)!r}",
            source=source,
            key=f"{section}.{key}",
        )
    return value


def parse_strategy_config(
    data: dict[str, Any], source: str = "<config>", base_dir: Path | None = None
) -> StrategyConfig:
    """Validate a parsed strategy config.

    Raises:
        ConfigError: a missing or wrongly typed key, an unknown section key, a bad name or mode.
    """
    strat = data.get("strategy")
    if not isinstance(strat, dict):
        raise ConfigError("missing [strategy] table", source=source, key="strategy")
    # A misspelt section or key would otherwise be ignored in silence (``[instruments] uses``
    # meant every instrument, ``[backtset]`` the defaults).
    _known_keys(data, _SECTIONS, source, "", "sections")
    for section, keys in _SECTION_KEYS.items():
        table = data.get(section, {})
        if isinstance(table, dict):
            _known_keys(table, keys, source, section, "keys")
    known = {
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
    }
    unknown = set(strat) - known
    if unknown:
        raise ConfigError(
            f"unknown keys {sorted(unknown)}; known: {sorted(known)}", source=source, key="strategy"
        )
    name = _get(strat, "name", str, None, source, "strategy")
    if name is None:
        raise ConfigError("missing", source=source, key="strategy.name")
    try:
        check_name(name, "strategy.name")
    except ValueError as exc:
        raise ConfigError(str(exc), source=source, key="strategy.name") from None
    class_path = _get(strat, "class", str, None, source, "strategy")
    if not class_path or ":" not in class_path:
        raise ConfigError(
            "must be 'module:Class' (or 'path/to/file.py:Class')",
            source=source,
            key="strategy.class",
        )
    mode_s = _get(strat, "mode", str, "paper", source, "strategy")
    if mode_s not in _MODES:
        raise ConfigError(
            f"must be one of {sorted(_MODES)}, got {mode_s!r}", source=source, key="strategy.mode"
        )
    timeout = _seconds(strat, "stop_ack_timeout_s", 10.0, source, "strategy", positive=True)
    slow_ms = _seconds(strat, "slow_callback_ms", 50.0, source, "strategy", positive=True)
    tz = _get(strat, "timezone", str, "", source, "strategy")
    stale_s = _seconds(strat, "stale_cmd_s", 60.0, source, "strategy")
    acct_s = _seconds(strat, "accounting_period_s", 30.0, source, "strategy")
    start_wait = _seconds(strat, "start_wait_s", 3.0, source, "strategy", most=600)
    hold = _seconds(
        strat, "stop_ack_hold_s", min(3.0, 0.8 * timeout), source, "strategy", most=3600
    )
    if hold >= timeout:
        raise ConfigError(
            f"must be below stop_ack_timeout_s ({timeout:g}): a held stop acknowledgement must "
            "go out before the control service escalates",
            source=source,
            key="strategy.stop_ack_hold_s",
        )
    silence = _seconds(strat, "feed_silence_s", 0.0, source, "strategy", most=86400)
    if tz:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"unknown time zone {tz!r}", source=source, key="strategy.timezone"
            ) from None
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError("must be a table", source=source, key="params")
    inst = data.get("instruments", {})
    if not isinstance(inst, dict):
        raise ConfigError("must be a table", source=source, key="instruments")
    inst_file = _get(inst, "file", str, "", source, "instruments")
    if inst_file and base_dir is not None and not Path(inst_file).is_absolute():
        inst_file = str(base_dir / inst_file)
    use = _get(inst, "use", list, [], source, "instruments")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in use):
        raise ConfigError("must be a list of instrument ids", source=source, key="instruments.use")
    bus_t = data.get("bus", {})
    if not isinstance(bus_t, dict):
        raise ConfigError("must be a table", source=source, key="bus")
    bus = BusConfig(
        host=_get(bus_t, "host", str, "127.0.0.1", source, "bus"),
        port=_get(bus_t, "port", int, 1883, source, "bus"),
        root=_get(bus_t, "root", str, "mlt", source, "bus"),
    )
    bt = data.get("backtest", {})
    if isinstance(bt, dict) and "feed_silence_s" in bt:
        silence = _get(bt, "feed_silence_s", (int, float), 0, source, "backtest")
        if silence < 0:
            raise ConfigError(
                "must be >= 0 (0: never)", source=source, key="backtest.feed_silence_s"
            )
    run = parse_run_table(data.get("run", {}), source)
    if base_dir is not None and ".py:" in class_path and not Path(class_path).is_absolute():
        class_path = str(base_dir / class_path)
    return StrategyConfig(
        name=name,
        class_path=class_path,
        params=dict(params),
        start_params=_get(strat, "start_params", str, "", source, "strategy"),
        auto_start=_get(strat, "auto_start", bool, True, source, "strategy"),
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
        instrument_ids=tuple(use),
        bus=bus,
        run=run,
        source=source,
        raw=data,
    )


def parse_run_table(table: Any, source: str = "<config>") -> RunConfig:
    """Validate the ``[run]`` table (see :class:`RunConfig`); its keys are checked already.

    ``restart`` is a table of part -> ``"restart"`` / ``"stop"`` (parts left out restart), or
    one of those words for every part.

    Raises:
        ConfigError: not a table, an unknown part or policy, or a value out of range (the key
            is named).
    """
    if not isinstance(table, dict):
        raise ConfigError("must be a table", source=source, key="run")
    policies = _default_restart()
    given = table.get("restart", {})
    if isinstance(given, str):
        given = dict.fromkeys(RUN_PARTS, given)
    if not isinstance(given, dict):
        raise ConfigError(
            f'must be a table such as {{ gateway = "restart", strategy = "stop" }} or one of '
            f"{list(RESTART_POLICIES)}, got {given!r}",
            source=source,
            key="run.restart",
        )
    unknown = sorted(set(given) - set(RUN_PARTS))
    if unknown:
        raise ConfigError(
            f"unknown parts {unknown}; known: {list(RUN_PARTS)}", source=source, key="run.restart"
        )
    for part, policy in given.items():
        if policy not in RESTART_POLICIES:
            raise ConfigError(
                f"must be one of {list(RESTART_POLICIES)}, got {policy!r}",
                source=source,
                key=f"run.restart.{part}",
            )
        policies[part] = policy
    defaults = RunConfig()
    values: dict[str, Any] = {}
    for key in (
        "restart_delay_s",
        "restart_delay_max_s",
        "restart_reset_after_s",
        "restart_window_s",
        "ready_timeout_s",
    ):
        value = float(_get(table, key, (int, float), getattr(defaults, key), source, "run"))
        if not value > 0:
            raise ConfigError(f"must be > 0, got {value!r}", source=source, key=f"run.{key}")
        values[key] = value
    max_restarts = _get(table, "max_restarts", int, defaults.max_restarts, source, "run")
    if max_restarts < 0:
        raise ConfigError(
            f"must be >= 0, got {max_restarts!r}", source=source, key="run.max_restarts"
        )
    if values["restart_delay_max_s"] < values["restart_delay_s"]:
        raise ConfigError(
            f"must be >= restart_delay_s ({values['restart_delay_s']:g})",
            source=source,
            key="run.restart_delay_max_s",
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
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(p)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(p)) from exc
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
