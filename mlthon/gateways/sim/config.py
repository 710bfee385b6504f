"""Configuration of the simulated exchange gateway, loadable from TOML.

Every key is optional; the defaults give a zero-latency, unlimited, always-open exchange with a
conservative queue and the instruments' own fees::

    [gateway]
    exchange = "BinanceUsdm"     # Exchange member simulated (default "Sim")
    instruments = [1001]         # instrument ids served (default: every one of that exchange)
    instruments_file = "x.toml"  # default: the file shipped with mlthon
    root = "mlt"                 # bus topic root
    connect_delay = "0"          # time from start() to ReadyToTrade
    id_prefix = "sim"            # prefix of exchange order ids and execution ids
    journal = "sim.db"           # order journal (SQLite); state survives restarts (default: none)
    request_ttl_ms = 5000        # a request older than this (from its send time) is refused
                                 # RequestExpired; 0 = never (cancels are executed all the same)
    overload_lag_ms = 1000       # a request that waited longer than this is refused
                                 # GatewayOverloaded; 0 = never

    [bus]                        # used by `mlthon gateway` only
    host = "127.0.0.1"
    port = 1883
    username = "gtw-Sim"         # broker user (default: none)
    password_file = "gtw.pass"   # file holding the password (or env MLTHON_BUS_PASSWORD)
    tls_ca = "ca.pem"            # CA file: TLS to the broker (default: plain TCP)

    [matching]
    queue_model = "conservative" # conservative | power | uniform | log
    queue_power = 2.0            # exponent of the power model
    seed = 0                     # seed of the probabilistic queue models

    [account]                    # every strategy gets its own account with these
    balances = { USDT = "100000", BTC = "1" }
    leverage = "10"
    hedge_mode = false

    [fees]                       # optional overrides of the instruments' own rates
    maker = "0.0002"             # for every instrument of the exchange
    taker = "0.0005"
    [fees.instrument.1001]       # for one instrument id
    maker = "-0.0001"
    taker = "0.0004"

    [latency]
    seed = 1
    market_data = "1ms"          # a duration, or {dist = ..., ...} (see latency.delay_from_config)
    [latency.entry]              # per command kind: new, modify, cancel, cancel_all, fetch
    default = "2ms"
    new = { dist = "uniform", low = "1ms", high = "3ms" }
    [latency.response]
    default = "2ms"

    [rate_limit]
    requests = 1200              # budget per window; 0 = unlimited
    window = "60s"

    [[maintenance]]              # windows during which requests get GtwNotReady
    start = 2024-08-09T00:00:00Z # TOML datetime with offset, or ns since the epoch
    end = 2024-08-09T00:30:00Z

    [unsupported]
    ops = ["ModifyOrder"]        # request kinds answered with UnsupportedOp
    use_exchange_profile = true  # also the built-in profile of the exchange (see PROFILES)

Unknown sections or keys, and values that parse but make no sense, are refused with a
:class:`~mlthon.basics.errors.ConfigError` naming the file, the key and the value: decimals follow
:mod:`mlthon.basics.sanity` (finite, in range; balances ``>= 0``, leverage ``> 0`` and at most
:data:`MAX_LEVERAGE`, fee rates signed and below 1 in magnitude), durations are ``>= 0``, a
log-normal ``sigma`` is from 0 to 5, ``queue_power`` finite, above 0 and at most 100.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Exchange
from mlthon.basics.sanity import decimal_problem
from mlthon.gateways.base import DEFAULT_OVERLOAD_LAG_NS, DEFAULT_REQUEST_TTL_NS
from mlthon.gateways.sim.fees import FeeRates
from mlthon.gateways.sim.latency import (
    COMMAND_KINDS,
    LatencyConfig,
    delay_from_config,
    parse_duration_ns,
)

REQUEST_TYPES = (
    "NewOrder",
    "ModifyOrder",
    "CancelOrder",
    "CancelAll",
    "FetchAccount",
    "FetchWallet",
    "FetchPosition",
    "FetchFunding",
    "FetchOrderStatus",
    "FetchOrders",
)

PROFILES: dict[Exchange, frozenset[str]] = {
    # Coinbase's exchange API has no order amend: a modify is cancel + new on the strategy's side.
    Exchange.Coinbase: frozenset({"ModifyOrder"}),
    # mlthon's Blockchain.com adapter offers no account/funding queries.
    Exchange.Blockchain: frozenset({"ModifyOrder", "FetchFunding"}),
}
"""Request kinds each exchange does not support (used when ``use_exchange_profile`` is true)."""

_QUEUE_MODELS = ("conservative", "power", "uniform", "log")
MAX_LEVERAGE = Decimal(1000)
"""No venue lends more; a larger ``account.leverage`` is a typo."""
MAX_QUEUE_POWER = 100.0
_ID_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_COIN = re.compile(r"[A-Za-z0-9]{1,32}")
_ROOT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


@attrs.frozen
class SimGatewayConfig:
    """Everything the simulated gateway can be told. See the module docstring for the TOML form.

    Attributes:
        exchange: the exchange simulated.
        instrument_ids: instrument ids served (empty: every instrument of ``exchange``).
        instruments_file: instruments TOML (None: the packaged one); a relative path in a config
            file is relative to that file.
        root: bus topic root.
        connect_delay_ns: delay from start() to ReadyToTrade.
        id_prefix: prefix of exchange order ids and execution ids.
        journal: path of the order journal (None: no journal, nothing survives a restart); a
            relative path in a config file is relative to that file.
        request_ttl_ns: a request older than this from its send time is refused
            ``RequestExpired`` (0: never; see :class:`~mlthon.gateways.base.GatewayBase`).
        overload_lag_ns: a request sent while the gateway was up that waited longer than this is
            refused ``GatewayOverloaded`` (0: never).
        bus_host: MQTT host (CLI only).
        bus_port: MQTT port (CLI only).
        bus_username: broker user (CLI only).
        bus_password_file: file holding the broker password (CLI only).
        bus_tls_ca: CA certificate file; set, the CLI connects with TLS.
        queue_model: conservative, power, uniform or log.
        queue_power: exponent of the power model.
        seed: seed of the probabilistic queue models.
        balances: opening balances of each strategy's account.
        leverage: initial-margin leverage.
        hedge_mode: one position per leg (long/short) instead of net.
        exchange_fees: fee rates for every instrument (None: the instruments' own).
        instrument_fees: fee rates per instrument id.
        latency: latency legs.
        rate_limit: request budget per window (0: unlimited).
        rate_window_ns: the window.
        maintenance: (start_ns, end_ns) windows.
        unsupported: request kinds answered with UnsupportedOp.
    """

    exchange: Exchange = Exchange.Sim
    instrument_ids: tuple[int, ...] = ()
    instruments_file: str | None = None
    root: str = "mlt"
    connect_delay_ns: int = 0
    id_prefix: str = "sim"
    journal: str | None = None
    request_ttl_ns: int = DEFAULT_REQUEST_TTL_NS
    overload_lag_ns: int = DEFAULT_OVERLOAD_LAG_NS
    bus_host: str = "127.0.0.1"
    bus_port: int = 1883
    bus_username: str | None = None
    bus_password_file: str | None = None
    bus_tls_ca: str | None = None
    queue_model: str = "conservative"
    queue_power: float = 2.0
    seed: int = 0
    balances: Mapping[str, Decimal] = attrs.field(factory=dict)
    leverage: Decimal = Decimal(1)
    hedge_mode: bool = False
    exchange_fees: FeeRates | None = None
    instrument_fees: Mapping[int, FeeRates] = attrs.field(factory=dict)
    latency: LatencyConfig = attrs.field(factory=LatencyConfig)
    rate_limit: int = 0
    rate_window_ns: int = 60_000_000_000
    maintenance: tuple[tuple[int, int], ...] = ()
    unsupported: frozenset[str] = frozenset()

    @classmethod
    def from_toml(cls, path: str | Path) -> SimGatewayConfig:
        """Load a config file.

        Raises:
            ConfigError: the file is missing, is not TOML, or a key is unknown or wrong.
        """
        source = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("file not found", source=source) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", source=source) from None
        config = cls.from_dict(data, source=source)

        # relative paths are relative to the config file, not to wherever the process started
        def resolve(value: str | None) -> str | None:
            if value and not Path(value).is_absolute():
                return str(Path(path).parent / value)
            return value

        return attrs.evolve(
            config,
            instruments_file=resolve(config.instruments_file),
            journal=resolve(config.journal),
            bus_password_file=resolve(config.bus_password_file),
            bus_tls_ca=resolve(config.bus_tls_ca),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> SimGatewayConfig:
        """Build a config from parsed TOML.

        Raises:
            ConfigError: a key is unknown or has a bad value (the error names it).
        """
        return _Loader(source).load(data)


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, key: str, why: str) -> ConfigError:
        return ConfigError(why, source=self.source, key=key)

    def table(
        self, data: Mapping[str, Any], key: str, known: set[str], prefix: str = ""
    ) -> Mapping[str, Any]:
        value = data.get(key, {})
        where = f"{prefix}{key}"
        if not isinstance(value, Mapping):
            raise self.err(where, "must be a table")
        unknown = set(value) - known
        if unknown:
            raise self.err(where, f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return value

    def decimal(
        self, key: str, value: object, *, positive: bool = False, signed: bool = False
    ) -> Decimal:
        """A decimal value with the one rule of :mod:`mlthon.basics.sanity` (finite, in range;
        ``>= 0`` unless ``signed``, ``> 0`` if ``positive``)."""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.err(key, f'must be a decimal string such as "0.0002", got {value!r}')
        why = decimal_problem(value, positive=positive, signed=signed)
        if why is not None:
            raise self.err(key, why)
        return Decimal(value)

    def text(self, key: str, value: object, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value or "\0" in value:
            raise self.err(key, f"must be a non-empty string, got {value!r}")
        if pattern is not None and pattern.fullmatch(value) is None:
            raise self.err(key, f"{value[:40]!r} must match {pattern.pattern}")
        return value

    def number(self, key: str, value: object, low: float, high: float) -> float:
        """A finite number in ``(low, high]``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.err(key, f"must be a number, got {value!r}")
        if not math.isfinite(value) or not low < value <= high:
            raise self.err(key, f"must be a number > {low} and <= {high}, got {value!r}")
        return float(value)

    def duration(self, key: str, value: object) -> int:
        try:
            return parse_duration_ns(value)
        except (TypeError, ValueError) as exc:
            raise self.err(key, str(exc)) from None

    def int_(self, key: str, value: object, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.err(key, f"must be an integer >= {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.err(key, f"must be an integer <= {maximum}, got {value!r}")
        return value

    def ts(self, key: str, value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return self.int_(key, value)
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                raise self.err(key, f"{value!r} is not an ISO date-time") from None
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise self.err(key, "date-time needs an offset, e.g. 2024-08-09T00:00:00Z")
            delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        raise self.err(key, f"must be a date-time with offset or ns since the epoch, got {value!r}")

    def fee_rates(self, key: str, value: Mapping[str, Any]) -> FeeRates:
        unknown = set(value) - {"maker", "taker"}
        if unknown or "maker" not in value or "taker" not in value:
            raise self.err(key, "needs exactly the keys maker and taker")
        return FeeRates(
            self.fee(f"{key}.maker", value["maker"]), self.fee(f"{key}.taker", value["taker"])
        )

    def fee(self, key: str, value: object) -> Decimal:
        rate = self.decimal(key, value, signed=True)
        if abs(rate) >= 1:
            raise self.err(key, f"{value!r} is a fee of 100 % or more (rates are fractions)")
        return rate

    def load(self, data: Mapping[str, Any]) -> SimGatewayConfig:
        top = {"gateway", "bus", "matching", "account", "fees", "latency", "rate_limit"}
        top |= {"maintenance", "unsupported"}
        unknown = set(data) - top
        if unknown:
            raise ConfigError(
                f"unknown sections {sorted(unknown)}; known: {sorted(top)}", source=self.source
            )
        kw: dict[str, Any] = {}
        g = self.table(
            data,
            "gateway",
            {
                "exchange",
                "instruments",
                "instruments_file",
                "root",
                "connect_delay",
                "id_prefix",
                "journal",
                "request_ttl_ms",
                "overload_lag_ms",
            },
        )
        if "exchange" in g:
            try:
                kw["exchange"] = Exchange.from_name(str(g["exchange"]))
            except ValueError as exc:
                raise self.err("gateway.exchange", str(exc)) from None
        if "instruments" in g:
            ids = g["instruments"]
            if not isinstance(ids, list):
                raise self.err("gateway.instruments", "must be a list of instrument ids")
            kw["instrument_ids"] = tuple(self.int_("gateway.instruments", i, 1) for i in ids)
        if "instruments_file" in g:
            kw["instruments_file"] = self.text("gateway.instruments_file", g["instruments_file"])
        if "root" in g:
            kw["root"] = self.text("gateway.root", g["root"], _ROOT)
        if "connect_delay" in g:
            kw["connect_delay_ns"] = self.duration("gateway.connect_delay", g["connect_delay"])
        if "id_prefix" in g:
            kw["id_prefix"] = self.text("gateway.id_prefix", g["id_prefix"], _ID_PREFIX)
        if "journal" in g:
            kw["journal"] = self.text("gateway.journal", g["journal"])
        for key in ("request_ttl_ms", "overload_lag_ms"):
            if key in g:
                kw[key.replace("_ms", "_ns")] = (
                    self.int_(f"gateway.{key}", g[key], 0, 86_400_000) * 1_000_000
                )
        b = self.table(data, "bus", {"host", "port", "username", "password_file", "tls_ca"})
        for key in ("username", "password_file", "tls_ca"):
            if key in b:
                kw[f"bus_{key}"] = self.text(f"bus.{key}", b[key])
        if "host" in b:
            kw["bus_host"] = self.text("bus.host", b["host"])
        if "port" in b:
            kw["bus_port"] = self.int_("bus.port", b["port"], 1, 65_535)
        m = self.table(data, "matching", {"queue_model", "queue_power", "seed"})
        if "queue_model" in m:
            name = str(m["queue_model"]).lower()
            if name not in _QUEUE_MODELS:
                raise self.err("matching.queue_model", f"{name!r} is not one of {_QUEUE_MODELS}")
            kw["queue_model"] = name
        if "queue_power" in m:
            kw["queue_power"] = self.number(
                "matching.queue_power", m["queue_power"], 0.0, MAX_QUEUE_POWER
            )
        if "seed" in m:
            kw["seed"] = self.int_("matching.seed", m["seed"])
        a = self.table(data, "account", {"balances", "leverage", "hedge_mode"})
        if "balances" in a:
            bal = a["balances"]
            if not isinstance(bal, Mapping):
                raise self.err("account.balances", 'must be a table coin = "amount"')
            kw["balances"] = {
                self.text("account.balances", c, _COIN): self.decimal(f"account.balances.{c}", v)
                for c, v in bal.items()
            }
        if "leverage" in a:
            lev = self.decimal("account.leverage", a["leverage"], positive=True)
            if lev > MAX_LEVERAGE:
                raise self.err("account.leverage", f"{lev} is above {MAX_LEVERAGE}")
            kw["leverage"] = lev
        if "hedge_mode" in a:
            if not isinstance(a["hedge_mode"], bool):
                raise self.err("account.hedge_mode", "must be true or false")
            kw["hedge_mode"] = a["hedge_mode"]
        f = self.table(data, "fees", {"maker", "taker", "instrument"})
        if "maker" in f or "taker" in f:
            kw["exchange_fees"] = self.fee_rates(
                "fees", {k: f[k] for k in ("maker", "taker") if k in f}
            )
        per = f.get("instrument", {})
        if not isinstance(per, Mapping):
            raise self.err("fees.instrument", "must be a table of instrument ids")
        inst_fees: dict[int, FeeRates] = {}
        for iid, rates in per.items():
            key = f"fees.instrument.{iid}"
            if not str(iid).isdigit() or not isinstance(rates, Mapping):
                raise self.err(key, "must be [fees.instrument.<id>] with maker and taker")
            inst_fees[int(iid)] = self.fee_rates(key, rates)
        kw["instrument_fees"] = inst_fees
        kw["latency"] = self.latency(data)
        r = self.table(data, "rate_limit", {"requests", "window"})
        if "requests" in r:
            kw["rate_limit"] = self.int_("rate_limit.requests", r["requests"])
        if "window" in r:
            w = self.duration("rate_limit.window", r["window"])
            if w <= 0:
                raise self.err("rate_limit.window", "must be > 0")
            kw["rate_window_ns"] = w
        kw["maintenance"] = self.maintenance(data.get("maintenance", []))
        u = self.table(data, "unsupported", {"ops", "use_exchange_profile"})
        ops = u.get("ops", [])
        if not isinstance(ops, list) or any(o not in REQUEST_TYPES for o in ops):
            raise self.err("unsupported.ops", f"must be a list of {REQUEST_TYPES}, got {ops!r}")
        unsupported = set(ops)
        if u.get("use_exchange_profile", True):
            unsupported |= PROFILES.get(kw.get("exchange", Exchange.Sim), frozenset())
        kw["unsupported"] = frozenset(unsupported)
        return SimGatewayConfig(**kw)

    def latency(self, data: Mapping[str, Any]) -> LatencyConfig:
        lat = self.table(data, "latency", {"seed", "market_data", "entry", "response"})
        kinds = {"default", *COMMAND_KINDS}
        legs: dict[str, dict[str, Any]] = {}
        for leg in ("entry", "response"):
            t = self.table(lat, leg, kinds, "latency.") if leg in lat else {}
            legs[leg] = {}
            for kind, value in t.items():
                try:
                    legs[leg][kind] = delay_from_config(value)
                except (TypeError, ValueError) as exc:
                    raise self.err(f"latency.{leg}.{kind}", str(exc)) from None
        kw: dict[str, Any] = {"entry": legs["entry"], "response": legs["response"]}
        if "market_data" in lat:
            try:
                kw["market_data"] = delay_from_config(lat["market_data"])
            except (TypeError, ValueError) as exc:
                raise self.err("latency.market_data", str(exc)) from None
        if "seed" in lat:
            kw["seed"] = self.int_("latency.seed", lat["seed"])
        return LatencyConfig(**kw)

    def maintenance(self, value: object) -> tuple[tuple[int, int], ...]:
        if not isinstance(value, list):
            raise self.err("maintenance", "must be an array of tables [[maintenance]]")
        out = []
        for i, w in enumerate(value):
            key = f"maintenance[{i}]"
            if not isinstance(w, Mapping) or set(w) != {"start", "end"}:
                raise self.err(key, "needs exactly start and end")
            start, end = self.ts(f"{key}.start", w["start"]), self.ts(f"{key}.end", w["end"])
            if end <= start:
                raise self.err(key, "end must be after start")
            out.append((start, end))
        return tuple(out)
