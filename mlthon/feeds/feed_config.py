"""``feed.toml``, the config of ``mlthon feed``: one schema for its three kinds of source.

::

    exchange = "BinanceUsdm"             # an Exchange member name (required)
    instruments_file = "x.toml"          # optional: the packaged file
    instrument_ids = [1001]              # optional: every instrument of the exchange
    speed = 1.0                          # replay, synthetic: a multiple of recorded speed,
                                         # 0 or "max" = as fast as possible
    silence_timeout_s = 30               # replay, live: invalidate a book silent this long
    environment = "Mainnet"              # live only: Testnet | Demo | Mainnet

    [source]
    kind = "replay"                      # replay | synthetic | live (default synthetic)
    heartbeat_s = 2                      # strategies count the feed stale after this silence
    # replay:    files = ["btcusdt.gz"] (relative to this file), start_ns, end_ns
    # synthetic: seed, duration_s or n_events, start_price = "100", start_at_ns
    # live:      ws_url, rest_url (overrides), depth = 50 (Bybit book depth)

    [bus]
    host = "127.0.0.1"
    port = 1883
    topic_root = "mlt"
    username = "feed-BinanceUsdm"        # optional (default feed-<exchange>, with a password)
    password_file = "feed.pass"          # optional: mode 600 (or $MLTHON_BUS_PASSWORD[_FILE])
    tls_ca = "ca.pem"                    # optional: TLS to the broker

Every table is read against this schema (:mod:`mlthon.infra.config_schema`): a key the kind does
not take (``files`` under a synthetic source), a misspelt one, a value of the wrong type, NaN or
infinity, a number out of range, an instrument of another exchange is a
:class:`~mlthon.basics.errors.ConfigError` naming the file, the key and the value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Environment, Exchange
from mlthon.feeds.handler import FeedConfig
from mlthon.feeds.heartbeat import DEFAULT_HEARTBEAT_S, MIN_HEARTBEAT_S
from mlthon.infra.config_schema import Table, read_toml
from mlthon.infra.instruments import load_instruments
from mlthon.infra.security import bus_client_options, feed_user

KINDS = ("replay", "synthetic", "live")
_TOP = (
    "exchange",
    "instruments_file",
    "instrument_ids",
    "speed",
    "silence_timeout_s",
    "environment",
    "source",
    "bus",
)
_TOP_OF_KIND = {
    "replay": ("speed", "silence_timeout_s"),
    "synthetic": ("speed",),
    "live": ("silence_timeout_s", "environment"),
}
_SOURCE_KEYS = {
    "replay": ("kind", "heartbeat_s", "files", "start_ns", "end_ns"),
    "synthetic": (
        "kind",
        "heartbeat_s",
        "seed",
        "duration_s",
        "n_events",
        "start_price",
        "start_at_ns",
    ),
    "live": ("kind", "heartbeat_s", "ws_url", "rest_url", "depth"),
}
_BUS_KEYS = ("host", "port", "topic_root", "username", "password_file", "tls_ca")
_ROOT = re.compile(r"[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}")
_HOST = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,253}")
_URL = re.compile(r"(wss?|https?)://\S{1,2000}")
_NS_MAX = 2**63 - 1
_NS = 1_000_000_000


@attrs.frozen
class FeedBus:
    """The ``[bus]`` table of a feed file: where the broker is and how to log in.

    Attributes:
        host / port / root: the broker and the topic root.
        username: broker user (None: ``$MLTHON_BUS_USERNAME``, else ``feed-<exchange>``).
        password_file: file holding the password (None: ``$MLTHON_BUS_PASSWORD[_FILE]``).
        tls_ca: CA file for TLS (None: ``$MLTHON_BUS_TLS_CA``, else plain TCP).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    root: str = "mlt"
    username: str | None = None
    password_file: str | None = None
    tls_ca: str | None = None

    def client_options(self, exchange: Exchange) -> dict[str, Any]:
        """``username``, ``password``, ``tls_context`` for the feed's ``MqttBus``.

        Raises:
            ConfigError: the password or CA file cannot be read.
        """
        return bus_client_options(
            feed_user(exchange.name),
            user=self.username,
            password_file=self.password_file,
            tls_ca=self.tls_ca,
        )


@attrs.frozen
class FeedFile:
    """A checked ``feed.toml``.

    Attributes:
        kind: ``replay``, ``synthetic`` or ``live``.
        exchange: the venue published.
        instruments: the instruments published.
        bus: the broker and the login.
        config: what a replay or synthetic feed runs (None for ``live``).
        live: the settings of a live feed (None otherwise): ``environment``, ``ws_url``,
            ``rest_url``, ``depth``, ``silence_timeout_s``, ``heartbeat_s``.
    """

    kind: str
    exchange: Exchange
    instruments: list[Instrument]
    bus: FeedBus
    config: FeedConfig | None = None
    live: dict[str, Any] | None = None


def load_feed_file(path: str | Path) -> FeedFile:
    """Read and check a ``feed.toml`` (see the module docstring).

    Raises:
        ConfigError: unreadable, not TOML, or a bad key or value (file, key and value named).
    """
    p = Path(path)
    return parse_feed_file(read_toml(p), str(p), p.parent)


def parse_feed_file(data: object, source: str, base_dir: Path | None = None) -> FeedFile:
    """Check a parsed ``feed.toml``.

    Raises:
        ConfigError: as :func:`load_feed_file`.
    """
    doc = Table.root(data, source, keys=_TOP)
    src = doc.table("source")
    kind = src.text("kind", "synthetic", choices=KINDS)
    allowed_top = {"exchange", "instruments_file", "instrument_ids", "source", "bus"}
    doc.check_keys(allowed_top | set(_TOP_OF_KIND[kind]), f"keys for a {kind} feed")
    src.check_keys(_SOURCE_KEYS[kind], f"keys for a {kind} source")
    name = doc.text("exchange", most=64)
    if name is None:
        raise doc.error("exchange", "missing: the Exchange member name the feed publishes")
    try:
        exchange = Exchange.from_name(name)
    except ValueError as exc:
        raise doc.error("exchange", str(exc)) from None
    instruments = _instruments(doc, exchange, base_dir)
    bus = _bus(doc.table("bus", keys=_BUS_KEYS), base_dir)
    heartbeat_s = src.number("heartbeat_s", DEFAULT_HEARTBEAT_S[kind], low=MIN_HEARTBEAT_S)
    silence = doc.number("silence_timeout_s", None, low=0, low_open=True, high=86400)
    if kind == "live":
        env_name = doc.text("environment", "Mainnet", most=32)
        try:
            environment = Environment.from_name(env_name)
        except ValueError as exc:
            raise doc.error("environment", str(exc)) from None
        live = {
            "environment": environment,
            "ws_url": src.text("ws_url", "", pattern=_URL, empty=True),
            "rest_url": src.text("rest_url", "", pattern=_URL, empty=True),
            "depth": src.integer("depth", 50, low=1, high=1000),
            "silence_timeout_s": 30.0 if silence is None else silence,
            "heartbeat_s": heartbeat_s,
        }
        return FeedFile(kind, exchange, instruments, bus, live=live)
    speed = _speed(doc)
    if kind == "replay":
        files = src.text_list("files", None, empty=False)
        if files is None:
            raise src.error("files", "missing: a replay needs the files to replay")
        paths = [Path(f) if base_dir is None else base_dir / f for f in files]
        start_ns = src.integer("start_ns", None, high=_NS_MAX)
        end_ns = src.integer("end_ns", None, high=_NS_MAX)
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise src.error("end_ns", f"must be after start_ns ({start_ns}), got {end_ns}")
        config = FeedConfig(
            exchange=exchange,
            instruments=instruments,
            source=kind,
            files=paths,
            speed=speed,
            silence_timeout_s=silence,
            heartbeat_s=heartbeat_s,
            start_ns=start_ns,
            end_ns=end_ns,
            topic_root=bus.root,
            mqtt_host=bus.host,
            mqtt_port=bus.port,
        )
        return FeedFile(kind, exchange, instruments, bus, config=config)
    n_events = src.integer("n_events", None, low=1, high=10**10)
    duration = src.number("duration_s", None, low_open=True, high=1e8)
    if n_events is not None and duration is not None:
        raise src.error("n_events", "give duration_s or n_events, not both")
    config = FeedConfig(
        exchange=exchange,
        instruments=instruments,
        source=kind,
        speed=speed,
        heartbeat_s=heartbeat_s,
        seed=src.integer("seed", 1, high=2**32 - 1),
        duration_s=duration if duration is not None or n_events is not None else 3600.0,
        n_events=n_events,
        start_price=str(src.decimal("start_price", "100", positive=True)),
        start_at_ns=src.integer("start_at_ns", 1_700_000_000 * _NS, high=_NS_MAX),
        topic_root=bus.root,
        mqtt_host=bus.host,
        mqtt_port=bus.port,
    )
    return FeedFile(kind, exchange, instruments, bus, config=config)


def _instruments(doc: Table, exchange: Exchange, base_dir: Path | None) -> list[Instrument]:
    inst_file = doc.path_of("instruments_file", base_dir)
    if inst_file is not None and not Path(inst_file).is_file():
        raise doc.error("instruments_file", f"no such file: {inst_file}")
    everything = load_instruments(inst_file)
    ids = doc.int_list("instrument_ids", None, empty=False)
    if ids is None:
        insts = [i for i in everything if i.exchange is exchange]
        if not insts:
            raise doc.error("exchange", f"no instrument on {exchange.name} in the instruments file")
        return insts
    by_id = {i.instrument_id: i for i in everything}
    out = []
    for k, iid in enumerate(ids):
        inst = by_id.get(iid)
        if inst is None:
            raise doc.error(f"instrument_ids[{k}]", f"instrument {iid} is not in the file")
        if inst.exchange is not exchange:
            raise doc.error(
                f"instrument_ids[{k}]",
                f"instrument {iid} is on {inst.exchange.name}, not {exchange.name}",
            )
        out.append(inst)
    return out


def _speed(doc: Table) -> float | None:
    value = doc.data.get("speed")
    if value == "max":
        return None
    if isinstance(value, str):
        raise doc.error("speed", f"must be a number or 'max', got {value!r}")
    speed = doc.number("speed", 1.0, high=1e6)
    return None if speed == 0 else speed


def _bus(b: Table, base_dir: Path | None) -> FeedBus:
    return FeedBus(
        host=b.text("host", "127.0.0.1", pattern=_HOST),
        port=b.integer("port", 1883, low=1, high=65535),
        root=b.text("topic_root", "mlt", pattern=_ROOT),
        username=b.text("username", None, most=128),
        password_file=b.path_of("password_file", base_dir),
        tls_ca=b.path_of("tls_ca", base_dir),
    )
