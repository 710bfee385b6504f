"""SimGatewayConfig from TOML, latency parsing and draws."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Exchange
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.fees import FeeRates
from mlthon.gateways.sim.latency import (
    FixedDelay,
    LatencyConfig,
    LatencyModel,
    LogNormalDelay,
    UniformDelay,
    delay_from_config,
    parse_duration_ns,
)

FULL = """
[gateway]
exchange = "BinanceUsdm"
instruments = [1001]
root = "paper"
connect_delay = "250ms"

[bus]
host = "10.0.0.1"
port = 1884

[matching]
queue_model = "power"
queue_power = 3
seed = 9

[account]
balances = { USDT = "50000", BTC = "0.5" }
leverage = "20"
hedge_mode = true

[fees]
maker = "0.0001"
taker = "0.0004"
[fees.instrument.1001]
maker = "-0.0001"
taker = "0.0003"

[latency]
seed = 4
market_data = "1ms"
[latency.entry]
default = "2ms"
new = { dist = "uniform", low = "1ms", high = "3ms" }
[latency.response]
cancel = { dist = "lognormal", median = "2ms", sigma = 0.3, floor = "500us" }

[rate_limit]
requests = 1200
window = "60s"

[[maintenance]]
start = 2024-08-09T00:00:00Z
end = 2024-08-09T00:30:00Z

[unsupported]
ops = ["FetchFunding"]
"""


def test_full_config_loads(tmp_path):
    p = tmp_path / "gw.toml"
    p.write_text(FULL)
    c = SimGatewayConfig.from_toml(p)
    assert c.exchange is Exchange.BinanceUsdm
    assert c.instrument_ids == (1001,)
    assert (c.root, c.connect_delay_ns, c.bus_host, c.bus_port) == (
        "paper",
        250_000_000,
        "10.0.0.1",
        1884,
    )
    assert (c.queue_model, c.queue_power, c.seed) == ("power", 3.0, 9)
    assert c.balances == {"USDT": D("50000"), "BTC": D("0.5")}
    assert (c.leverage, c.hedge_mode) == (D("20"), True)
    assert c.exchange_fees == FeeRates(D("0.0001"), D("0.0004"))
    assert c.instrument_fees == {1001: FeeRates(D("-0.0001"), D("0.0003"))}
    assert c.latency.entry["default"] == FixedDelay(2_000_000)
    assert c.latency.entry["new"] == UniformDelay(1_000_000, 3_000_000)
    assert c.latency.response["cancel"] == LogNormalDelay(2_000_000, 0.3, 500_000)
    assert (c.latency.market_data, c.latency.seed) == (FixedDelay(1_000_000), 4)
    assert (c.rate_limit, c.rate_window_ns) == (1200, 60_000_000_000)
    # 2024-08-09T00:00:00Z = 1723161600 s
    assert c.maintenance == ((1723161600 * 10**9, (1723161600 + 1800) * 10**9),)
    assert c.unsupported == frozenset({"FetchFunding"})


def test_empty_config_gives_defaults():
    c = SimGatewayConfig.from_dict({})
    assert c == SimGatewayConfig(unsupported=frozenset())


def test_exchange_profile_adds_unsupported_ops():
    c = SimGatewayConfig.from_dict({"gateway": {"exchange": "Coinbase"}})
    assert "ModifyOrder" in c.unsupported
    c = SimGatewayConfig.from_dict(
        {"gateway": {"exchange": "Coinbase"}, "unsupported": {"use_exchange_profile": False}}
    )
    assert c.unsupported == frozenset()


@pytest.mark.parametrize(
    ("data", "key", "text"),
    [
        ({"gatway": {}}, None, "unknown sections"),
        ({"gateway": {"exchange": "Nope"}}, "gateway.exchange", "no member"),
        ({"gateway": {"colour": 1}}, "gateway", "unknown keys"),
        ({"matching": {"queue_model": "magic"}}, "matching.queue_model", "not one of"),
        ({"account": {"leverage": "0"}}, "account.leverage", "> 0"),
        ({"account": {"leverage": 2.5}}, "account.leverage", "decimal string"),
        ({"account": {"balances": {"USDT": "lots"}}}, "account.balances.USDT", "not a number"),
        ({"fees": {"maker": "0.1"}}, "fees", "maker and taker"),
        ({"latency": {"entry": {"new": "fast"}}}, "latency.entry.new", "not a duration"),
        ({"latency": {"entry": {"sideways": "1ms"}}}, "latency.entry", "unknown keys"),
        ({"latency": {"market_data": {"dist": "gamma"}}}, "latency.market_data", "unknown delay"),
        ({"rate_limit": {"requests": -1}}, "rate_limit.requests", "integer >= 0"),
        ({"maintenance": [{"start": 10, "end": 5}]}, "maintenance[0]", "after start"),
        (
            {"maintenance": [{"start": "2024-01-01T00:00:00", "end": 5}]},
            "maintenance[0].start",
            "offset",
        ),
        ({"unsupported": {"ops": ["Teleport"]}}, "unsupported.ops", "must be a list"),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(data, key, text):
    with pytest.raises(ConfigError, match=text) as info:
        SimGatewayConfig.from_dict(data, source="gw.toml")
    assert info.value.key == key
    assert info.value.source == "gw.toml"


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        SimGatewayConfig.from_toml(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        SimGatewayConfig.from_toml(bad)


@pytest.mark.parametrize(
    ("value", "ns"),
    [(0, 0), (1500, 1500), ("250us", 250_000), ("1.5ms", 1_500_000), ("2s", 2 * 10**9), ("7", 7)],
)
def test_parse_duration(value, ns):
    assert parse_duration_ns(value) == ns


@pytest.mark.parametrize("value", [-1, "1 minute", "-3ms"])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError, match=r"duration|not a duration"):
        parse_duration_ns(value)


def test_parse_duration_rejects_floats():
    with pytest.raises(TypeError):
        parse_duration_ns(1.5)


def test_latency_per_command_kind_with_default():
    m = LatencyModel(
        LatencyConfig(
            entry={"default": FixedDelay(7), "cancel": FixedDelay(3)},
            response={"new": FixedDelay(11)},
        )
    )
    assert (m.entry_ns("new"), m.entry_ns("cancel"), m.entry_ns("modify")) == (7, 3, 7)
    assert (m.response_ns("new"), m.response_ns("cancel")) == (11, 0)
    assert m.market_data_ns() == 0


def test_latency_draws_are_seeded_and_in_range():
    cfg = LatencyConfig(entry={"default": UniformDelay(100, 200)}, seed=5)
    a = [LatencyModel(cfg).entry_ns("new") for _ in range(1)] + [LatencyModel(cfg).entry_ns("new")]
    assert a[0] == a[1]
    m = LatencyModel(cfg)
    draws = [m.entry_ns("new") for _ in range(200)]
    assert min(draws) >= 100 and max(draws) <= 200 and len(set(draws)) > 20


def test_lognormal_delay_median_and_floor():
    d = delay_from_config({"dist": "lognormal", "median": "1ms", "sigma": 0.5, "floor": "100us"})
    rng = random.Random(1)
    draws = sorted(d.sample(rng) for _ in range(2001))
    assert draws[0] >= 100_000
    # floor + median * exp(N(0, 0.5)): the median of the draws is near 1.1 ms
    assert 1_000_000 < draws[1000] < 1_200_000


def test_instruments_file_is_relative_to_the_config(tmp_path):
    p = tmp_path / "gw.toml"
    p.write_text('[gateway]\ninstruments_file = "inst.toml"\n')
    assert SimGatewayConfig.from_toml(p).instruments_file == str(tmp_path / "inst.toml")
