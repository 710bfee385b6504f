"""What ran: the record of a backtest's inputs that heads its report and ``run.json``.

A result is worth little without what made it: the strategy and its parameters, the data and
the window replayed, the seeds, the simulated exchange's latency, queue and fee models, the
account, and the mlthon version. :func:`describe_run` reads them off a finished
:class:`~mlthon.app.backtest.Backtest`; every field is plain data (JSON-ready through
:meth:`RunInfo.to_dict`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.gateways.sim.fees import FeeModel
from mlthon.gateways.sim.latency import (
    COMMAND_KINDS,
    Delay,
    FixedDelay,
    LatencyConfig,
    LogNormalDelay,
    UniformDelay,
)
from mlthon.infra.ops.heartbeat import mlthon_version
from mlthon.infra.risk.limits import INSTRUMENT_KEYS, RISK_KEYS, InstrumentLimits, RiskConfig

if TYPE_CHECKING:
    from mlthon.app.backtest import Backtest
    from mlthon.gateways.sim.config import SimGatewayConfig

NS_PER_S = 1_000_000_000


@attrs.frozen
class RunInfo:
    """The inputs of one backtest.

    Attributes:
        strategy: the strategy's name (its login).
        strategy_class: ``module:QualName`` of its class.
        params: its parameters as checked (defaults filled in).
        start_params: the text given to ``on_start``.
        instruments: the instruments it could trade (the first one is the market benchmark).
        data: the recordings replayed (paths as given), or a description of the messages.
        data_files: True when ``data`` are files.
        start_ns, end_ns: the first and last market-data times replayed.
        requested_start_ns, requested_end_ns: the window asked for (None: the data's own).
        seeds: every seed that shaped the run, by what it seeded.
        latency_model: the latency legs, in words.
        queue_model: the queue model, in words.
        fee_model: the fee rates of each instrument, in words.
        balances: the account's opening balances (coin -> amount).
        leverage: the account's leverage.
        capital: the capital returns are measured on.
        sample_every_s: the equity curve's spacing.
        timezone: the time zone of daily callbacks.
        mlthon_version: the mlthon that ran it.
        risk_limits: the risk layer's limits in words (its ``[risk]`` table, :func:`risk_texts`);
            None: the run had no risk layer.
    """

    strategy: str
    strategy_class: str
    params: Mapping[str, Any]
    start_params: str
    instruments: tuple[Instrument, ...]
    data: tuple[str, ...]
    data_files: bool
    start_ns: int
    end_ns: int
    requested_start_ns: int | None
    requested_end_ns: int | None
    seeds: Mapping[str, int]
    latency_model: str
    queue_model: str
    fee_model: tuple[str, ...]
    balances: Mapping[str, str]
    leverage: str
    capital: Decimal
    sample_every_s: float
    timezone: str
    mlthon_version: str
    risk_limits: tuple[str, ...] | None = None

    @property
    def settle_coin(self) -> str:
        """The coin amounts are in (the first instrument's settlement coin)."""
        return self.instruments[0].settlement if self.instruments else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``run.json``): times both as ns and as UTC text."""
        return {
            "strategy": self.strategy,
            "strategy_class": self.strategy_class,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "start_params": self.start_params,
            "instruments": [instrument_text(i) for i in self.instruments],
            "data": list(self.data),
            "data_files": self.data_files,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "start_utc": utc_text(self.start_ns),
            "end_utc": utc_text(self.end_ns),
            "requested_start_ns": self.requested_start_ns,
            "requested_end_ns": self.requested_end_ns,
            "seeds": dict(self.seeds),
            "latency_model": self.latency_model,
            "queue_model": self.queue_model,
            "fee_model": list(self.fee_model),
            "balances": dict(self.balances),
            "leverage": self.leverage,
            "capital": str(self.capital),
            "sample_every_s": self.sample_every_s,
            "timezone": self.timezone,
            "mlthon_version": self.mlthon_version,
            "risk_limits": None if self.risk_limits is None else list(self.risk_limits),
        }


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def utc_text(ts: int | None, *, digits: int = 6) -> str:
    """``ts`` (ns) as ``2024-08-08 23:54:15.030314 UTC`` (``digits`` decimals of seconds)."""
    if ts is None:
        return ""
    whole, frac = divmod(ts, NS_PER_S)
    stamp = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if digits:
        stamp += "." + f"{frac:09d}"[:digits]
    return stamp + " UTC"


def instrument_text(inst: Instrument) -> str:
    """``BinanceUsdm BTCUSDT (1001): Linear, tick 0.10, lot 0.001, x1, settled in USDT``."""
    return (
        f"{inst.exchange.name} {inst.name} ({inst.instrument_id}): {inst.kind.name}, "
        f"tick {inst.tick_size}, lot {inst.lot_size}, x{inst.contract_multiplier}, "
        f"settled in {inst.settlement}"
    )


def delay_text(d: Delay) -> str:
    """A latency leg in words: ``2 ms``, ``uniform 1-3 ms``, ``log-normal median 2 ms ...``."""
    if isinstance(d, FixedDelay):
        return _ns_text(d.ns)
    if isinstance(d, UniformDelay):
        return f"uniform {_ns_text(d.low_ns)} to {_ns_text(d.high_ns)}"
    if isinstance(d, LogNormalDelay):
        floor = f" + floor {_ns_text(d.floor_ns)}" if d.floor_ns else ""
        return f"log-normal, median {_ns_text(d.median_ns)}, sigma {d.sigma:g}{floor}"
    return type(d).__name__


def _ns_text(ns: int) -> str:
    for unit, scale in (("s", NS_PER_S), ("ms", 1_000_000), ("µs", 1_000)):
        if ns >= scale:
            return f"{ns / scale:g} {unit}"
    return f"{ns} ns" if ns else "0"


def latency_text(cfg: LatencyConfig) -> str:
    """Every leg: ``entry 2 ms; response 2 ms; market data 1 ms`` (per command kind where one
    differs from the default)."""
    parts = []
    for leg, table in (("entry", cfg.entry), ("response", cfg.response)):
        default = table.get("default")
        text = delay_text(default) if default is not None else "0"
        own = [
            f"{k} {delay_text(table[k])}" for k in COMMAND_KINDS if k in table and k != "default"
        ]
        parts.append(f"{leg} {text}" + (f" ({', '.join(own)})" if own else ""))
    parts.append(f"market data {delay_text(cfg.market_data)}")
    return "; ".join(parts)


def queue_text(cfg: SimGatewayConfig) -> str:
    """``conservative`` or ``power (exponent 2)``."""
    if cfg.queue_model == "power":
        return f"power (exponent {cfg.queue_power:g})"
    return cfg.queue_model


def fee_texts(cfg: SimGatewayConfig, instruments: Iterable[Instrument]) -> tuple[str, ...]:
    """The rates that apply to each instrument and where they come from."""
    out = []
    for inst in instruments:
        by_ex = {inst.exchange: cfg.exchange_fees} if cfg.exchange_fees is not None else {}
        rates = FeeModel(by_ex, cfg.instrument_fees).rates(inst)
        if inst.instrument_id in cfg.instrument_fees:
            source = "[fees.instrument]"
        elif cfg.exchange_fees is not None:
            source = "[fees]"
        else:
            source = "the instrument's own"
        out.append(
            f"{inst.name}: maker {_rate(rates.maker)}, taker {_rate(rates.taker)} ({source})"
        )
    return tuple(out)


def _rate(r: Decimal) -> str:
    """``0.0002`` -> ``0.02 %``; a negative rate is a rebate."""
    pct = format((r * 100).normalize(), "f")
    return f"{pct} %" + (" (rebate)" if r < 0 else "")


# The keys of [risk] that are not a limit of the strategy as a whole.
_NOT_LIMITS = ("flatten_on_halt", "loss_check_s", "instruments")


def risk_texts(cfg: RiskConfig) -> tuple[str, ...]:
    """The limits a ``[risk]`` table sets, in words: ``max_order_qty 0.5 (every instrument)``,
    ``BTCUSDT: max_position 1``, ``max_daily_loss 1000``...; the trading state alone when it sets
    none."""
    out: list[str] = []

    def limits(lim: InstrumentLimits) -> list[str]:
        return [f"{k} {getattr(lim, k)}" for k in INSTRUMENT_KEYS if getattr(lim, k) is not None]

    own = limits(cfg.every)
    if own:
        out.append(", ".join(own) + " (every instrument)")
    for key in sorted(cfg.instruments):
        theirs = limits(cfg.instruments[key])
        if theirs:
            out.append(f"{key}: " + ", ".join(theirs))
    for name in RISK_KEYS:
        if name in INSTRUMENT_KEYS or name in _NOT_LIMITS:
            continue
        value = getattr(cfg, name)
        if value is not None:
            out.append(f"{name} {value}")
    if not out:
        return ("no limit (the trading state only)",)
    if cfg.watches_loss:
        out.append(f"loss checked every {cfg.loss_check_s:g} s")
    if cfg.flatten_on_halt:
        out.append("flatten_on_halt")
    return tuple(out)


def describe_run(
    bt: Backtest,
    strategy: object,
    start_ns: int,
    end_ns: int,
    *,
    data: object,
    data_label: str = "",
    data_seed: int | None = None,
    risk: RiskConfig | None = None,
) -> RunInfo:
    """The :class:`RunInfo` of a finished backtest.

    Args:
        bt: the backtest.
        strategy: the strategy instance that ran.
        start_ns, end_ns: the first and last market-data times replayed.
        data: the backtest's data argument (paths, or messages).
        data_label: what the data are when they are messages (``synthetic market, 900 s``).
        data_seed: the seed that made them (a synthetic market's).
        risk: the risk layer's limits (None: the run had none).
    """
    cls = type(strategy)
    paths = (
        [str(p) for p in data]
        if isinstance(data, list | tuple) and data and all(isinstance(p, str | Path) for p in data)
        else []
    )
    described = tuple(paths) or (data_label or "market-data messages given in Python",)
    gw = bt.gateway_cfg
    seeds = {"queue model": gw.seed, "latency": gw.latency.seed}
    if data_seed is not None:
        seeds = {"data": data_seed, **seeds}
    return RunInfo(
        strategy=bt.name,
        strategy_class=f"{cls.__module__}:{cls.__qualname__}",
        params=dict(bt.params),
        start_params=bt.start_params,
        instruments=tuple(bt.instruments),
        data=described,
        data_files=bool(paths),
        start_ns=start_ns,
        end_ns=end_ns,
        requested_start_ns=bt.start_ns,
        requested_end_ns=bt.end_ns,
        seeds=seeds,
        latency_model=latency_text(gw.latency),
        queue_model=queue_text(gw),
        fee_model=fee_texts(gw, bt.instruments),
        balances={k: str(v) for k, v in gw.balances.items()},
        leverage=str(gw.leverage),
        capital=bt.capital,
        sample_every_s=bt.sample_every_ns / NS_PER_S,
        timezone=bt.timezone,
        mlthon_version=mlthon_version(),
        risk_limits=None if risk is None else risk_texts(risk),
    )
