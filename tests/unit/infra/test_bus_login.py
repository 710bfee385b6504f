"""One way for every bus client to log in: the user, the password from the environment or a file
(mode 600) named on the command line or by ``MLTHON_BUS_PASSWORD_FILE``, TLS from a CA file;
unique client ids for processes without a persistent session; command-line numbers that are
NaN or infinite are refused."""

from __future__ import annotations

import argparse
import stat

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.config_schema import cli_number
from mlthon.infra.security import (
    ADMIN_USER,
    bus_client_options,
    bus_login,
    read_secret,
    unique_client_id,
    write_secret_file,
)


@pytest.fixture(autouse=True)
def _no_bus_env(monkeypatch):
    for var in ("PASSWORD", "PASSWORD_FILE", "USERNAME", "TLS_CA"):
        monkeypatch.delenv(f"MLTHON_BUS_{var}", raising=False)


def test_password_file_named_by_the_environment_is_read(tmp_path, monkeypatch):
    f = write_secret_file(tmp_path / "pw", "from-file")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert bus_login(ADMIN_USER) == (None, None)
    monkeypatch.setenv("MLTHON_BUS_PASSWORD_FILE", str(f))
    assert bus_login(ADMIN_USER) == (ADMIN_USER, "from-file")
    monkeypatch.setenv("MLTHON_BUS_USERNAME", "strat-x")
    assert bus_login(ADMIN_USER) == ("strat-x", "from-file")
    assert bus_login(ADMIN_USER, user="me") == ("me", "from-file")
    # the variable holding the password itself still wins (an operator's own shell)
    monkeypatch.setenv("MLTHON_BUS_PASSWORD", "from-env")
    assert bus_login(ADMIN_USER) == ("strat-x", "from-env")
    assert read_secret(env="MLTHON_BUS_PASSWORD").reveal() == "from-env"


def test_password_file_given_explicitly_and_its_mode_checked(tmp_path):
    f = write_secret_file(tmp_path / "pw", "s3cret")
    opts = bus_client_options(ADMIN_USER, password_file=f)
    assert (opts["username"], opts["password"], opts["tls_context"]) == (ADMIN_USER, "s3cret", None)
    f.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        bus_client_options(ADMIN_USER, password_file=f)
    with pytest.raises(ConfigError, match="cannot read"):
        bus_client_options(ADMIN_USER, password_file=tmp_path / "missing")


def test_secret_file_is_private_even_when_it_existed(tmp_path):
    f = tmp_path / "pw"
    f.write_text("old")
    f.chmod(0o644)
    write_secret_file(f, "new")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and f.read_text() == "new\n"


def test_tls_ca_from_the_environment_must_be_a_certificate(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTHON_BUS_TLS_CA", str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="TLS setup failed"):
        bus_client_options(ADMIN_USER)


def test_unique_client_ids_differ_within_one_process():
    ids = {unique_client_id("control") for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("control-") for i in ids)


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "0", "1e7", "x"])
def test_command_line_numbers_refuse_nan_infinity_and_out_of_range(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli_number(0, 1e6)(text)
    assert cli_number(0, 1e6)("2.5") == 2.5
