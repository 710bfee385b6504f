"""Every config file against its schema, fuzzed: the strategy file (with its ``[sim]`` table and
the demo market maker's parameter schema), ``feed.toml`` (each kind of source), ``telegram.toml``
and the instruments file. A random change of a valid file (a value replaced by NaN, a negative,
a float, a text, a list, a table; a key added or removed) gives a config or a ConfigError that
names the file and the key, never another exception.

Each test runs ``MLTHON_FUZZ_EXAMPLES`` examples (150 by default, deterministic unless
``MLTHON_FUZZ_RANDOM=1``)."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_strat.market_maker import MarketMaker
from mlthon.app.cli import sim_config
from mlthon.basics.errors import ConfigError
from mlthon.feeds.feed_config import parse_feed_file
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.instruments import parse_instruments
from mlthon.infra.strategy_params import param_rules
from mlthon.infra.telegram.config import parse_config

EXAMPLES = int(os.environ.get("MLTHON_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("MLTHON_FUZZ_RANDOM") != "1",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SRC = "fuzz.toml"

STRATEGY: dict[str, Any] = {
    "strategy": {"name": "demo_mm", "class": "demo_strat.market_maker:MarketMaker",
                 "stop_ack_timeout_s": 5, "slow_callback_ms": 50, "auto_start": True},
    "params": {"exchange": "Sim", "instrument_id": 9001, "spread_ticks": 4, "size": "0.010",
               "max_position": "0.050", "skew_ticks": "1", "requote_ms": 500},
    "instruments": {"use": [9001]},
    "bus": {"host": "127.0.0.1", "port": 1883, "root": "mlt"},
    "backtest": {"synthetic_seconds": 900, "synthetic_seed": 7, "capital": "100000",
                 "feed_silence_s": 10, "data": ["a.gz"]},
    "run": {"restart": {"gateway": "restart"}, "max_restarts": 5, "restart_delay_s": 0.5},
    "sim": {"account": {"balances": {"USDT": "100000"}, "leverage": "10"},
            "latency": {"market_data": "1ms"}, "gateway": {"request_ttl_ms": 5000}},
}  # fmt: skip
FEEDS: list[dict[str, Any]] = [
    {"exchange": "BinanceUsdm", "instrument_ids": [1001], "speed": 1.0,
     "silence_timeout_s": 30, "source": {"kind": "replay", "files": ["x.gz"], "heartbeat_s": 2},
     "bus": {"host": "127.0.0.1", "port": 1883, "topic_root": "mlt"}},
    {"exchange": "Sim", "speed": "max",
     "source": {"kind": "synthetic", "seed": 3, "duration_s": 60, "start_price": "100"},
     "bus": {"port": 1883}},
    {"exchange": "Bybit", "environment": "Testnet",
     "source": {"kind": "live", "depth": 50, "ws_url": "ws://127.0.0.1:1/x"}},
]  # fmt: skip
TELEGRAM: dict[str, Any] = {
    "telegram": {"token_env": "TG_TOKEN", "poll_timeout_s": 10, "client_id": "tg1",
                 "confirm_timeout_s": 30},
    "bus": {"host": "127.0.0.1", "port": 1883, "root": "mlt"},
    "chats": {"ops": -100, "strategies": {"demo_mm": 42}},
    "roles": {"admin": [1], "trader": [2]},
    "delivery": {"max_pending": 100, "per_chat_interval_s": 1.0},
}  # fmt: skip
INSTRUMENTS: dict[str, Any] = {
    "instrument": [
        {"instrument_id": 1, "name": "BTCUSDT", "exchange": "BinanceUsdm", "base": "BTC",
         "quote": "USDT", "kind": "Linear", "tick_size": "0.10", "lot_size": "0.001",
         "min_qty": "0.001", "maker_fee": "0.0002", "taker_fee": "0.0005"},
        {"instrument_id": 2, "name": "X", "exchange": "Sim", "base": "X", "quote": "USDT",
         "kind": "Spot", "tick_size": "0.01", "lot_size": "1"},
    ]
}  # fmt: skip

# What TOML can hold, with the values that make no sense where a number is read.
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, 1e300, -0.0]),
    st.text(max_size=12),
    st.sampled_from(["NaN", "1e30", "1e999999", "-1", "", "all", "max", "0.010", "Sim", "a/b"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=2),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with 1 to 3 changes: a value replaced, a key removed, or a key added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        *head, last = path
        parent: Any = doc
        for p in head:
            parent = parent[p]
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[last] = draw(VALUES)
        elif action == "remove" and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    return doc


def _named(exc: ConfigError) -> None:
    """A ConfigError names the file and the key."""
    assert exc.source == SRC, exc
    assert exc.key, exc
    assert SRC in str(exc) and f"[{exc.key}]" in str(exc)


@FUZZ
@given(doc=mutated(STRATEGY))
def test_fuzz_strategy_file_gives_a_config_or_a_config_error_naming_file_and_key(doc):
    try:
        cfg = parse_strategy_config(doc, SRC)
        sim_config(cfg)
        param_rules(MarketMaker).check(cfg.params, SRC)
    except ConfigError as exc:
        _named(exc)


@FUZZ
@given(doc=st.sampled_from(FEEDS).flatmap(mutated))
def test_fuzz_feed_file_gives_a_config_or_a_config_error_naming_file_and_key(doc):
    try:
        parse_feed_file(doc, SRC)
    except ConfigError as exc:
        _named(exc)


@FUZZ
@given(doc=mutated(TELEGRAM))
def test_fuzz_telegram_file_gives_a_config_or_a_config_error_naming_file_and_key(doc):
    env = {"TG_TOKEN": "123:abc", "MLTHON_TELEGRAM_TOKEN": "123:abc"}
    try:
        parse_config(doc, source=SRC, base_dir=Path("/nonexistent"), environ=env)
    except ConfigError as exc:
        _named(exc)


@FUZZ
@given(doc=mutated(INSTRUMENTS))
def test_fuzz_instruments_file_gives_instruments_or_a_config_error_naming_file_and_key(doc):
    try:
        parse_instruments(doc, SRC)
    except ConfigError as exc:
        _named(exc)


@pytest.mark.parametrize(
    "base", [STRATEGY, *FEEDS, TELEGRAM, INSTRUMENTS], ids=["strategy", *"rsl", "tg", "inst"]
)
def test_fuzz_bases_are_valid(base):
    """The fuzz starts from valid files (else it would only test the first error)."""
    if base is STRATEGY:
        cfg = parse_strategy_config(copy.deepcopy(base), SRC)
        sim_config(cfg)
        assert param_rules(MarketMaker).check(cfg.params, SRC)["spread_ticks"] == 4
    elif base is TELEGRAM:
        parse_config(base, source=SRC, environ={"TG_TOKEN": "123:abc"})
    elif base is INSTRUMENTS:
        assert len(parse_instruments(base, SRC)) == 2
    else:
        parse_feed_file(base, SRC)
