"""Configuration of a live gateway, loadable from TOML, and API-key handling.

::

    [gateway]
    exchange = "BinanceUsdm"        # or "Bybit"
    environment = "Testnet"         # Testnet | Demo | Mainnet
    instruments = [1001]            # ids served (default: every instrument of the exchange)
    instruments_file = "x.toml"     # default: the file shipped with mlthon
    root = "mlt"                    # bus topic root
    api_key_env = "MLT_BINANCEUSDM_API_KEY"        # default: MLT_<EXCHANGE>_API_KEY
    api_secret_env = "MLT_BINANCEUSDM_API_SECRET"  # default: MLT_<EXCHANGE>_API_SECRET
    api_key_file = "/run/secrets/key"              # optional; wins over the variable
    api_secret_file = "/run/secrets/secret"
    rest_url = ""                   # optional override of the environment's REST base URL
    ws_url = ""                     # optional override of the private stream base URL
    recv_window_ms = 5000
    request_timeout_s = 10
    keepalive_s = 1800              # Binance listen-key keep-alive period
    reconnect_max_s = 30            # cap of the private-stream reconnect back-off
    maintenance_probe_s = 30        # probe period while the venue is in maintenance
    cancel_on_stop = true
    fill_wait_s = 2                 # a cancel the venue reported with fills not yet seen waits
                                    # this long for them, then fetches them and closes
    journal = "binance.db"          # order journal (SQLite), relative to this file; default none
    request_ttl_ms = 5000           # older requests are refused RequestExpired (0 = never)
    overload_lag_ms = 1000          # requests waiting longer: GatewayOverloaded (0 = never)

    [gateway.rate_limits]           # local budgets; defaults from the venue's documentation
    orders-10s = 150                # e.g. half Binance's; 0 = not enforced (docs/exchanges.md)

    [bus]
    host = "127.0.0.1"
    port = 1883

Unknown keys, and values that parse but make no sense (``NaN``, a negative timeout, a port out of
range, ``cancel_on_stop = "no"``), are refused with a :class:`ConfigError` naming the file, the key
and the value.

Keys are never logged: :func:`mask` shows their first and last two characters only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Environment, Exchange
from mlthon.gateways.base import DEFAULT_OVERLOAD_LAG_NS, DEFAULT_REQUEST_TTL_NS
from mlthon.gateways.live.budget import check_budget_names
from mlthon.infra.config_schema import read_toml

MAX_RECV_WINDOW_MS = 60_000
"""Binance refuses a larger ``recvWindow``; Bybit's is no wider."""

_GATEWAY_KEYS = frozenset(
    {
        "exchange",
        "environment",
        "instruments",
        "instruments_file",
        "root",
        "api_key_env",
        "api_secret_env",
        "api_key_file",
        "api_secret_file",
        "rest_url",
        "ws_url",
        "recv_window_ms",
        "request_timeout_s",
        "keepalive_s",
        "reconnect_max_s",
        "maintenance_probe_s",
        "cancel_on_stop",
        "fill_wait_s",
        "journal",
        "request_ttl_ms",
        "overload_lag_ms",
        "rate_limits",
    }
)
_BUS_KEYS = frozenset({"host", "port"})


def mask(secret: str) -> str:
    """A printable stand-in for a secret: ``ab…yz`` (``***`` if it is short)."""
    if len(secret) < 8:
        return "***"
    return f"{secret[:2]}…{secret[-2:]}"


@attrs.frozen(repr=False)
class Credentials:
    """An API key and its secret. ``repr`` and ``str`` mask both."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)!r}, api_secret='***')"

    __str__ = __repr__


@attrs.frozen
class LiveGatewayConfig:
    """What a live gateway needs; see the module docstring for the TOML form.

    Attributes:
        exchange: the venue.
        environment: testnet, demo or mainnet (decides the base URLs).
        instrument_ids: the instruments served (empty: every one of the exchange).
        instruments_file: the instruments file (None: the packaged one).
        root: the bus topic root.
        api_key_env / api_secret_env: environment variables holding the key and secret.
        api_key_file / api_secret_file: files holding them (win over the variables).
        rest_url / ws_url: overrides of the environment's base URLs (tests, proxies).
        recv_window_ms: the venue's receive window for signed requests.
        request_timeout_s: per-request timeout.
        keepalive_s: listen-key keep-alive (Binance) or ping (Bybit) period.
        reconnect_max_s: cap of the private-stream reconnect back-off.
        maintenance_probe_s: how often a venue in maintenance is probed.
        cancel_on_stop: cancel the open orders on stop.
        fill_wait_s: how long a cancellation reported with fills not yet seen (or without its
            final figure) waits for them before the gateway fetches the order's fills and
            closes it.
        journal: the order journal's SQLite file (None: nothing survives a restart;
            ``docs/reliability.md``).
        request_ttl_ns: a request older than this from its send time is refused
            ``RequestExpired`` (0: never; see :class:`~mlthon.gateways.base.GatewayBase`).
        overload_lag_ns: a request sent while the gateway was up that waited longer than this is
            refused ``GatewayOverloaded`` (0: never).
        rate_limits: limits of the venue's local rate budgets by name (``orders-10s``...; 0: not
            enforced); the others keep the venue's documented default
            (:mod:`mlthon.gateways.live.budget`).
        bus_host / bus_port: the broker (``mlthon gateway`` only).
        source: the file the configuration was read from ("" if built in code), for errors.
    """

    exchange: Exchange
    environment: Environment = Environment.Testnet
    instrument_ids: tuple[int, ...] = ()
    instruments_file: str | None = None
    root: str = "mlt"
    api_key_env: str = ""
    api_secret_env: str = ""
    api_key_file: str | None = None
    api_secret_file: str | None = None
    rest_url: str = ""
    ws_url: str = ""
    recv_window_ms: int = 5000
    request_timeout_s: float = 10.0
    keepalive_s: float = 1800.0
    reconnect_max_s: float = 30.0
    maintenance_probe_s: float = 30.0
    cancel_on_stop: bool = True
    fill_wait_s: float = 2.0
    journal: str | None = None
    request_ttl_ns: int = DEFAULT_REQUEST_TTL_NS
    overload_lag_ns: int = DEFAULT_OVERLOAD_LAG_NS
    rate_limits: Mapping[str, int] = attrs.field(factory=dict)
    bus_host: str = "127.0.0.1"
    bus_port: int = 1883
    source: str = ""

    @property
    def key_env(self) -> str:
        """The variable holding the API key (default ``MLT_<EXCHANGE>_API_KEY``)."""
        return self.api_key_env or f"MLT_{self.exchange.name.upper()}_API_KEY"

    @property
    def secret_env(self) -> str:
        """The variable holding the API secret (default ``MLT_<EXCHANGE>_API_SECRET``)."""
        return self.api_secret_env or f"MLT_{self.exchange.name.upper()}_API_SECRET"

    def credentials(self, environ: dict[str, str] | None = None) -> Credentials:
        """Read the key and secret from their files, else from the environment.

        Raises:
            ConfigError: a file cannot be read, or no key / secret is configured.
        """
        env = os.environ if environ is None else environ
        key = _secret(self.api_key_file, env.get(self.key_env, ""), "api_key_file")
        secret = _secret(self.api_secret_file, env.get(self.secret_env, ""), "api_secret_file")
        if not key or not secret:
            raise ConfigError(
                f"no API key/secret for {self.exchange.name}: set {self.key_env} and "
                f"{self.secret_env}, or api_key_file / api_secret_file",
                key="gateway.api_key_env",
            )
        return Credentials(key, secret)

    @classmethod
    def from_toml(cls, path: str | Path) -> LiveGatewayConfig:
        """Read a config file.

        Raises:
            ConfigError: unreadable file, bad TOML or a bad value (file and key named).
        """
        p = Path(path)
        return cls.from_dict(read_toml(p), str(p), p.parent)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "<dict>", base: Path | None = None
    ) -> LiveGatewayConfig:
        """Build from the parsed TOML tables (``gateway`` and ``bus``).

        Raises:
            ConfigError: a bad value (key named).
        """
        return _Reader(source).read(data, base)


class _Reader:
    """One pass over a live gateway's TOML tables, each value checked as it is read."""

    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, key: str, why: str) -> ConfigError:
        return ConfigError(why, source=self.source, key=key)

    def table(self, data: Mapping[str, Any], name: str, known: frozenset[str]) -> dict[str, Any]:
        t = data.get(name, {})
        if not isinstance(t, dict):
            raise self.err(name, f"must be a table, got {t!r}")
        unknown = sorted(set(t) - known)
        if unknown:
            raise self.err(name, f"unknown keys {unknown}; known: {sorted(known)}")
        return t

    def text(self, key: str, value: object, *, empty: bool = True) -> str:
        if not isinstance(value, str) or (not empty and not value) or "\0" in value:
            raise self.err(key, f"must be a {'' if empty else 'non-empty '}string, got {value!r}")
        return value

    def url(self, key: str, value: object, schemes: tuple[str, ...]) -> str:
        v = self.text(key, value)
        if v and not v.startswith(schemes):
            raise self.err(key, f"{v[:80]!r} must start with {' or '.join(schemes)}")
        return v

    def positive(self, key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.err(key, f"must be a positive number, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise self.err(key, f"must be a positive finite number, got {value!r}")
        return float(value)

    def integer(self, key: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.err(key, f"must be an integer from {low} to {high}, got {value!r}")
        return value

    def read(self, data: dict[str, Any], base: Path | None) -> LiveGatewayConfig:
        unknown = sorted(set(data) - {"gateway", "bus"})
        if unknown:
            raise ConfigError(
                f"unknown sections {unknown}; known: ['bus', 'gateway']", source=self.source
            )
        g = self.table(data, "gateway", _GATEWAY_KEYS)
        bus = self.table(data, "bus", _BUS_KEYS)
        try:
            exchange = Exchange.from_name(str(g.get("exchange", "")))
        except ValueError as exc:
            raise self.err("gateway.exchange", str(exc)) from exc
        try:
            environment = Environment.from_name(str(g.get("environment", "Testnet")))
        except ValueError as exc:
            raise self.err("gateway.environment", str(exc)) from exc
        ids = g.get("instruments", [])
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids
        ):
            raise self.err("gateway.instruments", f"must be a list of ids > 0, got {ids!r}")
        inst_file = g.get("instruments_file")
        if inst_file is not None:
            inst_file = self.text("gateway.instruments_file", inst_file, empty=False)
            if base is not None:
                inst_file = str(base / inst_file)
        journal = g.get("journal")
        if journal is not None:
            journal = self.text("gateway.journal", journal, empty=False)
            journal = str(base / journal) if base is not None else journal

        def num(key: str, default: float) -> float:
            return self.positive(f"gateway.{key}", g.get(key, default))

        def ms(key: str, default_ns: int) -> int:
            v = g.get(key, default_ns // 1_000_000)
            return self.integer(f"gateway.{key}", v, 0, 86_400_000) * 1_000_000

        cancel_on_stop = g.get("cancel_on_stop", True)
        if not isinstance(cancel_on_stop, bool):
            raise self.err(
                "gateway.cancel_on_stop", f"must be true or false, got {cancel_on_stop!r}"
            )
        limits = g.get("rate_limits", {})
        if not isinstance(limits, dict):
            raise self.err("gateway.rate_limits", f"must be a table, got {limits!r}")
        bad = check_budget_names(limits)
        if bad:
            raise self.err("gateway.rate_limits", f"{bad[0]!r} is not a budget name")
        for name, limit in limits.items():
            self.integer(f"gateway.rate_limits.{name}", limit, 0, 10_000_000)
        optional = {
            k: self.text(f"gateway.{k}", g[k], empty=False)
            for k in ("api_key_file", "api_secret_file")
            if k in g
        }
        return LiveGatewayConfig(
            exchange=exchange,
            environment=environment,
            instrument_ids=tuple(ids),
            instruments_file=inst_file,
            root=self.text("gateway.root", g.get("root", "mlt"), empty=False),
            api_key_env=self.text("gateway.api_key_env", g.get("api_key_env", "")),
            api_secret_env=self.text("gateway.api_secret_env", g.get("api_secret_env", "")),
            api_key_file=optional.get("api_key_file"),
            api_secret_file=optional.get("api_secret_file"),
            rest_url=self.url("gateway.rest_url", g.get("rest_url", ""), ("http://", "https://")),
            ws_url=self.url("gateway.ws_url", g.get("ws_url", ""), ("ws://", "wss://")),
            recv_window_ms=self.integer(
                "gateway.recv_window_ms", g.get("recv_window_ms", 5000), 1, MAX_RECV_WINDOW_MS
            ),
            request_timeout_s=num("request_timeout_s", 10.0),
            keepalive_s=num("keepalive_s", 1800.0),
            reconnect_max_s=num("reconnect_max_s", 30.0),
            maintenance_probe_s=num("maintenance_probe_s", 30.0),
            cancel_on_stop=cancel_on_stop,
            fill_wait_s=num("fill_wait_s", 2.0),
            journal=journal,
            request_ttl_ns=ms("request_ttl_ms", DEFAULT_REQUEST_TTL_NS),
            overload_lag_ns=ms("overload_lag_ms", DEFAULT_OVERLOAD_LAG_NS),
            rate_limits=dict(limits),
            bus_host=self.text("bus.host", bus.get("host", "127.0.0.1"), empty=False),
            bus_port=self.integer("bus.port", bus.get("port", 1883), 1, 65_535),
            source=self.source,
        )


def _secret(path: str | None, fallback: str, key: str) -> str:
    if not path:
        return fallback.strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file: {exc.strerror}", key=key) from exc
