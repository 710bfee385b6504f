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

    [bus]
    host = "127.0.0.1"
    port = 1883

Keys are never logged: :func:`mask` shows their first and last two characters only.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Environment, Exchange
from mlthon.gateways.base import DEFAULT_OVERLOAD_LAG_NS, DEFAULT_REQUEST_TTL_NS


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
        bus_host / bus_port: the broker (``mlthon gateway`` only).
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
    bus_host: str = "127.0.0.1"
    bus_port: int = 1883

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
        src = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc}", source=src) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", source=src) from exc
        return cls.from_dict(data, src, p.parent)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "<dict>", base: Path | None = None
    ) -> LiveGatewayConfig:
        """Build from the parsed TOML tables (``gateway`` and ``bus``).

        Raises:
            ConfigError: a bad value (key named).
        """
        g = data.get("gateway", {})
        bus = data.get("bus", {})
        if not isinstance(g, dict) or not isinstance(bus, dict):
            raise ConfigError("[gateway] and [bus] must be tables", source=source)
        try:
            exchange = Exchange.from_name(str(g.get("exchange", "")))
            environment = Environment.from_name(str(g.get("environment", "Testnet")))
        except ValueError as exc:
            raise ConfigError(str(exc), source=source, key="gateway.exchange") from exc
        ids = g.get("instruments", [])
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ConfigError("must be a list of ids", source=source, key="gateway.instruments")
        inst_file = g.get("instruments_file")
        if inst_file is not None and base is not None:
            inst_file = str(base / str(inst_file))
        journal = g.get("journal")
        if journal is not None:
            journal = str(base / str(journal)) if base is not None else str(journal)

        def num(key: str, default: float) -> float:
            v = g.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"must be a positive number, got {v!r}", source=source, key=key)
            return float(v)

        def ms(key: str, default_ns: int) -> int:
            v = g.get(key, default_ns // 1_000_000)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(
                    f"must be an integer >= 0 (milliseconds; 0 = never), got {v!r}",
                    source=source,
                    key=f"gateway.{key}",
                )
            return v * 1_000_000

        return cls(
            exchange=exchange,
            environment=environment,
            instrument_ids=tuple(ids),
            instruments_file=inst_file,
            root=str(g.get("root", "mlt")),
            api_key_env=str(g.get("api_key_env", "")),
            api_secret_env=str(g.get("api_secret_env", "")),
            api_key_file=g.get("api_key_file"),
            api_secret_file=g.get("api_secret_file"),
            rest_url=str(g.get("rest_url", "")),
            ws_url=str(g.get("ws_url", "")),
            recv_window_ms=int(num("recv_window_ms", 5000)),
            request_timeout_s=num("request_timeout_s", 10.0),
            keepalive_s=num("keepalive_s", 1800.0),
            reconnect_max_s=num("reconnect_max_s", 30.0),
            maintenance_probe_s=num("maintenance_probe_s", 30.0),
            cancel_on_stop=bool(g.get("cancel_on_stop", True)),
            fill_wait_s=num("fill_wait_s", 2.0),
            journal=journal,
            request_ttl_ns=ms("request_ttl_ms", DEFAULT_REQUEST_TTL_NS),
            overload_lag_ns=ms("overload_lag_ms", DEFAULT_OVERLOAD_LAG_NS),
            bus_host=str(bus.get("host", "127.0.0.1")),
            bus_port=int(bus.get("port", 1883)),
        )


def _secret(path: str | None, fallback: str, key: str) -> str:
    if not path:
        return fallback.strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file: {exc.strerror}", key=key) from exc
