"""Password hashes mosquitto reads, ACL layout, secrets that never show."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.security import (
    Secret,
    acl_text,
    mosquitto_password_hash,
    password_file_text,
    read_secret,
)


def test_password_hash_is_mosquitto_pbkdf2_sha512():
    # produced by `mosquitto_passwd -b` 2.0.11 for user1 / secret1
    ref = (
        "$7$101$DuWu7TBH8TLUc3C7$iNDSMHN5jBnAChwpFcmBuXyuLfdaPEsd4w2dz0U78se0HUxWeV1ZV35P2H5d1GI7R"
        "zPyFsktbwTAbzqp+U6SNg=="
    )
    salt = base64.b64decode(ref.split("$")[3])
    assert mosquitto_password_hash("secret1", salt=salt) == ref
    fresh = mosquitto_password_hash("secret1").split("$")
    assert fresh[1:3] == ["7", "101"] and len(base64.b64decode(fresh[3])) == 12
    digest = hashlib.pbkdf2_hmac("sha512", b"secret1", base64.b64decode(fresh[3]), 101)
    assert base64.b64decode(fresh[4]) == digest


def test_password_file_refuses_bad_user_names():
    assert password_file_text({"a": "x"}).startswith("a:$7$")
    with pytest.raises(ConfigError, match="bad broker user"):
        password_file_text({"a:b": "x"})


def test_acl_limits_a_strategy_to_its_own_topics():
    acl = acl_text("mlt", ["mm"], ["BinanceUsdm"])
    block = acl.split("user strat-mm\n")[1].split("\n\n")[0].splitlines()
    writes = sorted(line.split()[2] for line in block if line.split()[1] in ("write", "readwrite"))
    assert writes == sorted(
        [
            "mlt/ctl/login/mm",
            "mlt/gtw/+/req/mm",
            "mlt/strat/mm/#",
            "mlt/tg/mm",
            "mlt/feed/+/req",
            "mlt/status/strategy/mm",
        ]
    )
    gtw = acl.split("user gtw-BinanceUsdm\n")[1].split("\n\n")[0]
    gtw_writes = [line.split()[2] for line in gtw.splitlines() if " read " not in line]
    assert gtw_writes == ["mlt/gtw/BinanceUsdm/#", "mlt/status/gateway/BinanceUsdm", "mlt/tg/#"]


def test_read_secret_from_env_then_file(tmp_path, monkeypatch):
    f = tmp_path / "token"
    f.write_text("from-file\n")
    f.chmod(0o600)
    monkeypatch.setenv("MLT_TEST_SECRET", "from-env")
    assert read_secret(env="MLT_TEST_SECRET", file=f).reveal() == "from-env"
    monkeypatch.delenv("MLT_TEST_SECRET")
    assert read_secret(env="MLT_TEST_SECRET", file=f).reveal() == "from-file"
    assert read_secret(env="MLT_TEST_SECRET") is None


def test_read_secret_refuses_open_or_missing_files(tmp_path):
    f = tmp_path / "token"
    f.write_text("x")
    f.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secret(file=f)
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret(file=tmp_path / "nope")


def test_secret_is_masked_in_repr_and_str():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2"
