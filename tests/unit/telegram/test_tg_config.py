"""telegram.toml: a full example, and clear errors for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.telegram.access import Role
from mlthon.infra.telegram.cli import telegram_main
from mlthon.infra.telegram.config import load_config, parse_config

TOKEN = "123456789:AAFakeTokenForTests_0123456789abcdef"
ENV = {"MLTHON_TELEGRAM_TOKEN": TOKEN}

FULL = """
[telegram]
token_env = "MLTHON_TELEGRAM_TOKEN"
base_url = "http://127.0.0.1:8081/bot"
confirm_timeout_s = 20
cmd_timeout_s = 45
audit_log = "logs/audit.jsonl"
dangerous = ["Cancel_All"]

[bus]
host = "10.0.0.5"
port = 1884
root = "prod"

[chats]
ops = -1001
default = -1002
control = [-1003]
[chats.strategies]
alpha = 42

[roles]
admin = [1]
trader = [2, 1]
viewer = [3]

[permissions]
flatten = "admin"
start = "admin"

[delivery]
max_pending = 50
per_chat_interval_s = 1.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "telegram.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_config_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL), environ=ENV)
    assert cfg.token == TOKEN
    assert cfg.base_url == "http://127.0.0.1:8081/bot"
    assert cfg.audit_log == tmp_path / "logs" / "audit.jsonl"
    assert (cfg.ops_chat, cfg.default_chat) == (-1001, -1002)
    assert cfg.control_chats == frozenset({-1003})
    assert cfg.chat_for("alpha") == 42
    assert cfg.chat_for("beta") == -1002
    assert cfg.users == {1: Role.ADMIN, 2: Role.TRADER, 3: Role.VIEWER}
    assert cfg.permissions["flatten"] is Role.ADMIN
    assert cfg.permissions["start"] is Role.ADMIN
    assert cfg.permissions["status"] is Role.VIEWER
    assert cfg.dangerous == {"cancel_all"}
    assert cfg.delivery.max_pending == 50
    assert cfg.delivery.per_chat_interval_s == 1.5
    assert (cfg.bus.host, cfg.bus.port, cfg.bus.root) == ("10.0.0.5", 1884, "prod")
    assert TOKEN not in repr(cfg)


def test_token_from_a_secrets_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    cfg = load_config(write(tmp_path, '[telegram]\ntoken_file = "token"\n'), environ={})
    assert cfg.token == TOKEN


@pytest.mark.parametrize(
    ("text", "env", "key", "why"),
    [
        ('[telegram]\ntoken = "1:abc"\n', ENV, "telegram.token", "never write the token"),
        ("[telegram]\n", {}, "telegram.token_env", "MLTHON_TELEGRAM_TOKEN is not set"),
        ("[telegram]\n", {"MLTHON_TELEGRAM_TOKEN": "nonsense"}, "telegram.token", "does not look"),
        ('[telegram]\ntoken_file = "missing"\n', ENV, "telegram.token_file", "cannot read"),
        ("[telegram]\npoll_timeout_s = -1\n", ENV, "telegram.poll_timeout_s", "must be > 0"),
        ("[telegram]\ncolour = 1\n", ENV, "telegram.colour", "unknown key"),
        ("[telgram]\n", ENV, "telgram", "unknown section"),
        ("[roles]\nboss = [1]\n", ENV, "roles.boss", "unknown key"),
        ('[roles]\nadmin = ["1"]\n', ENV, "roles.admin", "list of Telegram user ids"),
        ('[permissions]\nstop = "god"\n', ENV, "permissions.stop", "expected one of"),
        ('[chats]\nops = "x"\n', ENV, "chats.ops", "integer chat id"),
        ('[chats.strategies]\nalpha = "x"\n', ENV, "chats.strategies.alpha", "integer chat id"),
        ("[delivery]\nmax_len = 5000\n", ENV, "delivery.max_len", "at most 4096"),
        ("[bus]\nport = 70000\n", ENV, "bus.port", "TCP port"),
    ],
)
def test_mistakes_raise_config_error_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], key: str, why: str
) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        load_config(write(tmp_path, text), environ=env)
    assert info.value.key == key
    assert info.value.source == str(tmp_path / "telegram.toml")
    assert "nonsense" not in str(info.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[telegram\n"))


def test_parse_config_defaults() -> None:
    cfg = parse_config({}, environ=ENV)
    assert cfg.base_url == "https://api.telegram.org/bot"
    assert cfg.confirm_timeout_s == 30.0
    assert cfg.chat_for("alpha") is None


def test_cli_returns_2_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert telegram_main(["--config", str(tmp_path / "nope.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert telegram_main(["--bogus"]) == 2
