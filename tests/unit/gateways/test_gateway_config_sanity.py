"""Gateway config values that parse but make no sense are refused with a ``ConfigError`` naming
the file, the key and the value (issue 16, item 2): the simulated gateway's TOML and the live
gateway's, one rule for decimals (:mod:`mlthon.basics.sanity`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.gateways.binance_usdm.gateway import BinanceUsdmApi
from mlthon.gateways.bybit_v5.gateway import BybitV5Api
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig
from mlthon.gateways.sim.config import SimGatewayConfig

SIM_BAD = [
    ('[account]\nbalances = { USDT = "NaN" }\n', "account.balances.USDT", "NaN"),
    ('[account]\nbalances = { USDT = "inf" }\n', "account.balances.USDT", "inf"),
    ('[account]\nbalances = { USDT = "-100" }\n', "account.balances.USDT", "-100"),
    ('[account]\nbalances = { USDT = "1e30" }\n', "account.balances.USDT", "1e30"),
    ('[account]\nbalances = { "US DT" = "100" }\n', "account.balances", "US DT"),
    ('[account]\nleverage = "-5"\n', "account.leverage", "-5"),
    ('[account]\nleverage = "NaN"\n', "account.leverage", "NaN"),
    ('[account]\nleverage = "1e12"\n', "account.leverage", "1000"),
    ('[fees]\nmaker = "NaN"\ntaker = "0.0005"\n', "fees.maker", "NaN"),
    ('[fees]\nmaker = "0.0002"\ntaker = "2"\n', "fees.taker", "'2'"),
    ('[fees.instrument.1]\nmaker = "0"\ntaker = "1e30"\n', "fees.instrument.1.taker", "1e30"),
    ('[latency]\nmarket_data = "-1ms"\n', "latency.market_data", "-1ms"),
    ("[latency.entry]\nnew = -5\n", "latency.entry.new", "-5"),
    (
        '[latency.response]\ndefault = { dist = "lognormal", median = "1ms", sigma = nan }\n',
        "latency.response.default",
        "nan",
    ),
    (
        '[latency.response]\ndefault = { dist = "lognormal", median = "1ms", sigma = inf }\n',
        "latency.response.default",
        "inf",
    ),
    ("[matching]\nqueue_power = nan\n", "matching.queue_power", "nan"),
    ("[matching]\nqueue_power = inf\n", "matching.queue_power", "inf"),
    ('[gateway]\nid_prefix = "a b/c"\n', "gateway.id_prefix", "a b/c"),
    ('[gateway]\nroot = ""\n', "gateway.root", "''"),
    ("[gateway]\nbogus = 1\n", "gateway", "bogus"),
    ("[bus]\nport = 70000\n", "bus.port", "70000"),
    ("[nope]\nx = 1\n", None, "nope"),
]


@pytest.mark.parametrize(("body", "key", "value"), SIM_BAD, ids=[k or v for _, k, v in SIM_BAD])
def test_sim_config_nonsense_refused_naming_file_key_and_value(
    tmp_path: Path, body: str, key: str | None, value: str
) -> None:
    f = tmp_path / "sim.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as info:
        SimGatewayConfig.from_toml(f)
    err = info.value
    assert err.source == str(f) and str(f) in str(err)
    assert err.key == key
    assert value in str(err)


def test_sim_config_sane_values_still_load(tmp_path: Path) -> None:
    f = tmp_path / "sim.toml"
    f.write_text(
        '[account]\nbalances = { USDT = "0", BTC = "1.5" }\nleverage = "125"\n'
        '[fees]\nmaker = "-0.0001"\ntaker = "0.0005"\n[matching]\nqueue_power = 2.5\n'
        '[latency.response]\ndefault = { dist = "lognormal", median = "1ms", sigma = 0 }\n'
    )
    c = SimGatewayConfig.from_toml(f)
    assert str(c.leverage) == "125" and str(c.balances["USDT"]) == "0"


LIVE_BAD = [
    ("[gateway]\nrequest_timeout_s = nan\n", "gateway.request_timeout_s", "nan"),
    ("[gateway]\nfill_wait_s = inf\n", "gateway.fill_wait_s", "inf"),
    ("[gateway]\nkeepalive_s = -1\n", "gateway.keepalive_s", "-1"),
    ("[gateway]\nrecv_window_ms = 1e9\n", "gateway.recv_window_ms", "1000000000"),
    ("[gateway]\nrecv_window_ms = 600000\n", "gateway.recv_window_ms", "600000"),
    ('[gateway]\ncancel_on_stop = "no"\n', "gateway.cancel_on_stop", "'no'"),
    ("[gateway]\ninstruments = [true, -1]\n", "gateway.instruments", "True"),
    ("[gateway]\nrequest_ttl_ms = -5\n", "gateway.request_ttl_ms", "-5"),
    ('[gateway]\nrest_url = "ftp://x"\n', "gateway.rest_url", "ftp://x"),
    ("[gateway]\ntypo_key = 1\n", "gateway", "typo_key"),
    ("[gateway.rate_limits]\norders-10s = -1\n", "gateway.rate_limits.orders-10s", "-1"),
    ('[gateway.rate_limits]\norders-10s = "many"\n', "gateway.rate_limits.orders-10s", "many"),
    ('[bus]\nport = "abc"\n', "bus.port", "abc"),
    ("[bus]\nport = 70000\n", "bus.port", "70000"),
    ('[bus]\nhost = "x"\nuser = "y"\n', "bus", "user"),
    ("[extra]\nx = 1\n", None, "extra"),
]


@pytest.mark.parametrize(("body", "key", "value"), LIVE_BAD, ids=[k or v for _, k, v in LIVE_BAD])
def test_live_config_nonsense_refused_naming_file_key_and_value(
    tmp_path: Path, body: str, key: str | None, value: str
) -> None:
    f = tmp_path / "live.toml"
    head = '[gateway]\nexchange = "BinanceUsdm"\n'
    f.write_text(body.replace("[gateway]\n", head) if "[gateway]\n" in body else head + body)
    with pytest.raises(ConfigError) as info:
        LiveGatewayConfig.from_toml(f)
    err = info.value
    assert err.source == str(f) and err.key == key
    assert value in str(err)


@pytest.mark.parametrize("api", [BinanceUsdmApi, BybitV5Api])
def test_live_config_unknown_rate_budget_refused_by_the_venue(tmp_path: Path, api: type) -> None:
    f = tmp_path / "live.toml"
    exchange = "BinanceUsdm" if api is BinanceUsdmApi else "Bybit"
    f.write_text(f'[gateway]\nexchange = "{exchange}"\n[gateway.rate_limits]\nwidgets-1s = 5\n')
    config = LiveGatewayConfig.from_toml(f)
    with pytest.raises(ConfigError) as info:
        api(config, Credentials("k" * 20, "s" * 20), lambda: 0)
    assert info.value.source == str(f) and info.value.key == "gateway.rate_limits.widgets-1s"
    assert "known:" in str(info.value)
