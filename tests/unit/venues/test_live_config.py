"""Live gateway configuration, key handling and masking, client ids."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Environment, Exchange
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig, mask
from mlthon.gateways.live.gateway import venue_client_id


def test_config_from_toml_and_defaults(tmp_path: Path) -> None:
    f = tmp_path / "gw.toml"
    f.write_text(
        '[gateway]\nexchange = "Bybit"\nenvironment = "demo"\ninstruments = [2001]\n'
        "request_timeout_s = 3\n[bus]\nport = 1999\n"
    )
    c = LiveGatewayConfig.from_toml(f)
    assert c.exchange is Exchange.Bybit and c.environment is Environment.Demo
    assert c.instrument_ids == (2001,) and c.request_timeout_s == 3.0 and c.bus_port == 1999
    assert c.key_env == "MLT_BYBIT_API_KEY" and c.secret_env == "MLT_BYBIT_API_SECRET"


@pytest.mark.parametrize(
    "body",
    [
        '[gateway]\nexchange = "Nope"\n',
        '[gateway]\nexchange = "Bybit"\nrequest_timeout_s = -1\n',
        "not toml [",
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, body: str) -> None:
    f = tmp_path / "gw.toml"
    f.write_text(body)
    with pytest.raises(ConfigError):
        LiveGatewayConfig.from_toml(f)


def test_credentials_from_env_and_files(tmp_path: Path) -> None:
    c = LiveGatewayConfig(exchange=Exchange.BinanceUsdm)
    creds = c.credentials(
        {"MLT_BINANCEUSDM_API_KEY": "k" * 20, "MLT_BINANCEUSDM_API_SECRET": "s" * 20}
    )
    assert creds.api_key == "k" * 20
    (tmp_path / "key").write_text("filekey-123456789\n")
    (tmp_path / "sec").write_text("filesecret-123456789\n")
    c2 = LiveGatewayConfig(
        exchange=Exchange.BinanceUsdm,
        api_key_file=str(tmp_path / "key"),
        api_secret_file=str(tmp_path / "sec"),
    )
    assert c2.credentials({}).api_secret == "filesecret-123456789"
    with pytest.raises(ConfigError, match="MLT_BINANCEUSDM_API_KEY"):
        c.credentials({})


def test_secrets_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    creds = Credentials("AKIAVERYSECRETKEY123", "supersecretvalue123")
    assert "VERYSECRET" not in repr(creds) and "supersecret" not in str(creds)
    assert mask("AKIAVERYSECRETKEY123") == "AK…23" and mask("short") == "***"
    caplog.set_level(logging.DEBUG)
    logging.getLogger("t").info("creds %s", creds)
    assert "supersecret" not in caplog.text


def test_venue_client_id_fits_the_venues() -> None:
    assert venue_client_id("s1", "abc") == "s1-abc"
    long = venue_client_id("strategy-with-a-long-name", "order-id-that-is-long-too")
    assert len(long) <= 36 and long.startswith("h")
    assert venue_client_id("s", "a b") != venue_client_id("s", "a_b")
    assert venue_client_id("s", "x") != venue_client_id("t", "x")


def test_cli_venue_registry_and_live_switch() -> None:
    from mlthon.gateways.binance_usdm.gateway import build_gateway
    from mlthon.gateways.live.cli import builder, is_live_config

    assert builder(Exchange.BinanceUsdm) is build_gateway
    with pytest.raises(ConfigError, match="no live gateway for Deribit"):
        builder(Exchange.Deribit)
    assert is_live_config({"gateway": {"exchange": "Bybit", "environment": "Testnet"}})
    assert not is_live_config({"gateway": {"exchange": "BinanceUsdm"}})


def test_live_feed_config(tmp_path: Path) -> None:
    from mlthon.feeds.live_cli import load_live_feed_config

    f = tmp_path / "feed.toml"
    f.write_text(
        'exchange = "Bybit"\ninstrument_ids = [2001]\n[source]\nkind = "live"\ndepth = 200\n'
        "[bus]\nport = 1999\n"
    )
    cfg = load_live_feed_config(f)
    assert cfg["exchange"] is Exchange.Bybit and cfg["depth"] == 200 and cfg["port"] == 1999
    assert [i.instrument_id for i in cfg["instruments"]] == [2001]
    f.write_text('exchange = "Bybit"\ninstrument_ids = [1001]\n')
    with pytest.raises(ConfigError):
        load_live_feed_config(f)
