"""Config plumbing: the gateway's journal and broker credentials, `mlthon run`'s journal, the
secure broker's config, the gateway bus's session and secrets."""

from __future__ import annotations

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.gateways.sim.cli import _make_bus
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.broker import MosquittoBroker, TlsFiles


def test_gateway_config_reads_journal_and_bus_credentials_relative_to_the_file(tmp_path):
    f = tmp_path / "gw.toml"
    f.write_text(
        '[gateway]\njournal = "j/sim.db"\n'
        '[bus]\nusername = "gtw-Sim"\npassword_file = "pw"\ntls_ca = "/etc/ca.pem"\n'
    )
    cfg = SimGatewayConfig.from_toml(f)
    assert cfg.journal == str(tmp_path / "j" / "sim.db")
    assert cfg.bus_username == "gtw-Sim"
    assert cfg.bus_password_file == str(tmp_path / "pw")
    assert cfg.bus_tls_ca == "/etc/ca.pem"


def test_gateway_bus_is_a_persistent_session_with_the_secret_from_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MLTHON_BUS_PASSWORD", raising=False)
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    cfg = SimGatewayConfig(root="a/b", bus_username="gtw-Sim", bus_password_file=str(pw))
    bus = _make_bus(cfg, None, None, None)
    assert bus.client_id == "gtw-Sim-a_b"
    assert bus._clean_session is False
    assert bus._username == "gtw-Sim" and bus._password == "s3cret"


def test_gateway_tls_with_a_missing_ca_is_a_config_error(tmp_path):
    cfg = SimGatewayConfig(bus_tls_ca=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError):
        _make_bus(cfg, None, None, None)


def test_secure_broker_config_has_password_file_acl_and_tls(tmp_path):
    b = MosquittoBroker(
        1234,
        workdir=tmp_path,
        secure=True,
        users={"u": "plain-text-pw"},
        tls=TlsFiles(certfile=tmp_path / "c.pem", keyfile=tmp_path / "k.pem"),
    )
    conf = b.conf_text()
    assert "allow_anonymous false" in conf
    assert f"password_file {tmp_path / 'passwd'}" in conf
    assert f"acl_file {tmp_path / 'acl'}" in conf
    assert f"certfile {tmp_path / 'c.pem'}" in conf
    assert b.admin_password and "mlthon-admin" in b.users
    b._write_security_files()
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o600
    assert "plain-text-pw" not in (tmp_path / "passwd").read_text()


def test_run_writes_the_journal_and_user_into_the_gateway_config(tmp_path):
    from mlthon.app.launcher import journal_path, write_configs
    from mlthon.infra.config import load_strategy_config
    from tests.conftest import REPO

    cfg = load_strategy_config(REPO / "demo_strat" / "market_maker.toml")
    journal = journal_path(cfg, str(tmp_path / "gw.db"))
    paths = write_configs(cfg, tmp_path, 1883, [], 1.0, journal=journal, bus_user="gtw-Sim")
    gw = SimGatewayConfig.from_toml(paths["gateway"])
    assert gw.journal == str(tmp_path / "gw.db")
    assert gw.bus_username == "gtw-Sim"
    assert journal_path(cfg, None) is None
