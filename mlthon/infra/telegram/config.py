"""The Telegram bridge's configuration, read from ``telegram.toml``.

Every section and key is checked against this schema (:mod:`mlthon.infra.config_schema`); an
unknown one, a value of the wrong type, a number that is NaN, infinite or out of range raises
:class:`~mlthon.basics.errors.ConfigError` naming the file, the key and the value. The bot token
is never written in the file: it comes from an environment variable (``token_env``) or a secrets
file (``token_file``). ``client_id`` names the bridge on the bus (its reply topic and broker user
``tg-<client_id>``): letters, digits, ``_ . -``.

Example::

    [telegram]
    token_env = "MLTHON_TELEGRAM_TOKEN"   # or token_file = "/run/secrets/telegram_token"
    confirm_timeout_s = 30
    audit_log = "telegram-audit.jsonl"

    [bus]
    host = "127.0.0.1"
    port = 1883

    [chats]
    ops = -1001234567890
    [chats.strategies]
    alpha = 123456789

    [roles]
    admin = [111111]
    trader = [222222]
    viewer = [333333]
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.infra.config_schema import Table, show
from mlthon.infra.telegram.access import DEFAULT_PERMISSIONS, ROLE_NAMES, Role

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
_TOKEN_RE = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{1,200}$")
_CMD_RE = re.compile(r"^[a-z0-9_]{1,32}$")


@attrs.frozen
class BusConfig:
    """Where the bridge finds the message bus.

    Attributes:
        host: MQTT broker host.
        port: MQTT broker port.
        root: topic root (see :mod:`mlthon.infra.bus.topics`).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    root: str = "mlt"


@attrs.frozen
class DeliveryConfig:
    """Bounds and pacing of the outgoing queue (see :mod:`mlthon.infra.telegram.delivery`).

    Attributes:
        max_pending: messages held at most; past it the oldest lowest-priority ones are dropped.
        per_chat_interval_s: least time between two messages to one chat (Telegram: ~1 s).
        per_group_interval_s: the same for group chats (negative ids; Telegram: 20 a minute).
        global_rate_per_s: messages per second at most over all chats (Telegram: 30).
        max_len: longest text sent in one message; longer ones are split.
        delay_mark_after_s: a message sent later than this after it was published is marked
            with its delay.
        retry_min_s: first wait after a network failure; doubled up to ``retry_max_s``.
        retry_max_s: longest wait between two attempts while Telegram is unreachable.
    """

    max_pending: int = 1000
    per_chat_interval_s: float = 1.0
    per_group_interval_s: float = 3.0
    global_rate_per_s: float = 30.0
    max_len: int = 4096
    delay_mark_after_s: float = 10.0
    retry_min_s: float = 1.0
    retry_max_s: float = 60.0


@attrs.frozen
class TelegramConfig:
    """Everything the Telegram bridge needs.

    Attributes:
        token: the bot token (from the environment or a secrets file; never logged).
        base_url: Bot API base, ``https://api.telegram.org/bot`` unless overridden for tests.
        client_id: the bridge's bus client id; command results come on ``reply/<client_id>``.
        poll_timeout_s: getUpdates long-polling timeout.
        confirm_timeout_s: how long a confirmation button stays valid.
        cmd_timeout_s: how long the bridge waits for a command's result before giving up.
        audit_log: path of the append-only JSON-lines audit log.
        ops_chat: chat receiving alerts (and messages of strategies with no chat), if any.
        default_chat: chat for strategies with no chat of their own, if any.
        strategy_chats: strategy name -> chat id for ``publish_telegram``.
        control_chats: group chats in which listed users may give commands (besides the ops
            and strategy chats).
        users: Telegram user id -> role.
        permissions: command name -> least role allowed to run it (``hook`` and
            ``dangerous_hook`` stand for every hook without an entry of its own).
        dangerous: extra command names that always need a confirmation.
        delivery: outgoing queue settings.
        bus: message bus settings.
    """

    token: str = attrs.field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    client_id: str = "telegram"
    poll_timeout_s: float = 10.0
    confirm_timeout_s: float = 30.0
    cmd_timeout_s: float = 60.0
    audit_log: Path = Path("telegram-audit.jsonl")
    ops_chat: int | None = None
    default_chat: int | None = None
    strategy_chats: Mapping[str, int] = attrs.field(factory=dict)
    control_chats: frozenset[int] = frozenset()
    users: Mapping[int, Role] = attrs.field(factory=dict)
    permissions: Mapping[str, Role] = attrs.field(factory=lambda: dict(DEFAULT_PERMISSIONS))
    dangerous: frozenset[str] = frozenset()
    delivery: DeliveryConfig = DeliveryConfig()
    bus: BusConfig = BusConfig()

    def chat_for(self, strat: str) -> int | None:
        """The chat receiving ``strat``'s messages: its own, else the default, else ops."""
        chat = self.strategy_chats.get(strat)
        if chat is not None:
            return chat
        return self.default_chat if self.default_chat is not None else self.ops_chat


_SECTIONS = {"telegram", "bus", "chats", "roles", "permissions", "delivery"}
_TELEGRAM_KEYS = {
    "token_env",
    "token_file",
    "base_url",
    "client_id",
    "poll_timeout_s",
    "confirm_timeout_s",
    "cmd_timeout_s",
    "audit_log",
    "dangerous",
}


_CLIENT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,253}")
_ROOT = re.compile(r"[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: The longest time setting (a year).
_MOST_S = 366 * 86400.0


class _Reader:
    """Typed access to one TOML table (:class:`~mlthon.infra.config_schema.Table`) with this
    file's own words for chat ids and ports."""

    def __init__(self, source: str, section: str, table: Mapping[str, Any]) -> None:
        self.t = Table.root({section: table}, source).table(section)
        self.table = self.t.data

    def error(self, key: str, why: str) -> ConfigError:
        return self.t.error(key, why)

    def check_keys(self, allowed: set[str]) -> None:
        self.t.check_keys(allowed)

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        return float(self.t.number(key, default, low=0.0, low_open=positive, high=_MOST_S))

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {show(value)}")
        return value

    def string(
        self, key: str, default: str, *, pattern: re.Pattern[str] | None = None, most: int = 4096
    ) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {show(value)}")
        return str(self.t.check_text(key, value, pattern=pattern, most=most))

    def chat_id(self, key: str) -> int | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer chat id, got {show(value)}")
        return value


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> TelegramConfig:
    """Read and check a ``telegram.toml``.

    Args:
        path: the file to read.
        environ: where ``token_env`` is looked up (default: ``os.environ``).

    Returns:
        The checked configuration. Relative paths (``audit_log``, ``token_file``) are taken
        relative to the config file's folder.

    Raises:
        ConfigError: the file is missing or not TOML, a key is unknown or of the wrong type,
            the token is missing, inline, or malformed.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("file not found", source=source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=source) from exc
    return parse_config(raw, source=source, base_dir=path.parent, environ=environ)


def parse_config(
    raw: Mapping[str, Any],
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> TelegramConfig:
    """Check an already parsed TOML document; see :func:`load_config`.

    Raises:
        ConfigError: as :func:`load_config`.
    """
    base_dir = base_dir or Path.cwd()
    env = os.environ if environ is None else environ
    for section, table in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"unknown section (expected {sorted(_SECTIONS)})", source=source, key=section
            )
        if not isinstance(table, Mapping):
            raise ConfigError("expected a table", source=source, key=section)

    tg = _Reader(source, "telegram", raw.get("telegram", {}))
    # (every section is a table: checked above)
    if "token" in tg.table:
        raise tg.error("token", "never write the token in the config; use token_env or token_file")
    tg.check_keys(_TELEGRAM_KEYS)
    token = _read_token(tg, base_dir, env)
    base_url = tg.string("base_url", DEFAULT_BASE_URL, most=2048)
    if not base_url.startswith(("http://", "https://")):
        raise tg.error("base_url", f"expected an http(s) URL, got {base_url!r}")
    dangerous_raw = tg.table.get("dangerous", [])
    if not isinstance(dangerous_raw, list) or not all(
        isinstance(d, str) and _CMD_RE.match(d.lower()) for d in dangerous_raw
    ):
        raise tg.error("dangerous", f"expected a list of command names, got {show(dangerous_raw)}")

    chats = _Reader(source, "chats", raw.get("chats", {}))
    chats.check_keys({"ops", "default", "strategies", "control"})
    strategy_chats = _int_map(chats, "strategies")
    control_raw = chats.table.get("control", [])
    if not isinstance(control_raw, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in control_raw
    ):
        raise chats.error("control", "expected a list of chat ids")

    config = TelegramConfig(
        token=token,
        base_url=base_url,
        client_id=tg.string("client_id", "telegram", pattern=_CLIENT_ID),
        poll_timeout_s=tg.number("poll_timeout_s", 10.0),
        confirm_timeout_s=tg.number("confirm_timeout_s", 30.0),
        cmd_timeout_s=tg.number("cmd_timeout_s", 60.0),
        audit_log=base_dir / tg.string("audit_log", "telegram-audit.jsonl", most=1024),
        ops_chat=chats.chat_id("ops"),
        default_chat=chats.chat_id("default"),
        strategy_chats=strategy_chats,
        control_chats=frozenset(control_raw),
        users=_read_roles(_Reader(source, "roles", raw.get("roles", {}))),
        permissions=_read_permissions(_Reader(source, "permissions", raw.get("permissions", {}))),
        dangerous=frozenset(d.lower() for d in dangerous_raw),
        delivery=_read_delivery(_Reader(source, "delivery", raw.get("delivery", {}))),
        bus=_read_bus(_Reader(source, "bus", raw.get("bus", {}))),
    )
    return config


def _read_token(tg: _Reader, base_dir: Path, env: Mapping[str, str]) -> str:
    if "token_env" in tg.table and "token_file" in tg.table:
        raise tg.error("token_env", "give token_env or token_file, not both")
    if "token_file" in tg.table:
        file = base_dir / tg.string("token_file", "", most=1024)
        try:
            token = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise tg.error("token_file", f"cannot read {file}: {exc.strerror}") from exc
        where = f"file {file}"
    else:
        var = tg.string("token_env", "MLTHON_TELEGRAM_TOKEN", pattern=_ENV_VAR)
        token = env.get(var, "").strip()
        if not token:
            raise tg.error("token_env", f"environment variable {var} is not set")
        where = f"environment variable {var}"
    if not _TOKEN_RE.match(token):
        # Never echo the value: it may be a real token with a typo.
        raise tg.error("token", f"the token in {where} does not look like <digits>:<secret>")
    return token


def _int_map(reader: _Reader, key: str) -> dict[str, int]:
    table = reader.table.get(key, {})
    if not isinstance(table, Mapping):
        raise reader.error(key, "expected a table of name = chat id")
    out: dict[str, int] = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise reader.error(f"{key}.{name}", f"expected an integer chat id, got {value!r}")
        out[name] = value
    return out


def _read_roles(roles: _Reader) -> dict[int, Role]:
    roles.check_keys(set(ROLE_NAMES))
    users: dict[int, Role] = {}
    for name, ids in roles.table.items():
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise roles.error(name, "expected a list of Telegram user ids")
        role = ROLE_NAMES[name]
        for user_id in ids:
            # A user listed under several roles gets the highest.
            users[user_id] = max(role, users.get(user_id, role))
    return users


def _read_permissions(perms: _Reader) -> dict[str, Role]:
    out = dict(DEFAULT_PERMISSIONS)
    for cmd, role_name in perms.table.items():
        if not _CMD_RE.match(cmd):
            raise perms.error(cmd, "command names are 1-32 of a-z, 0-9 and _ (lower case)")
        if role_name not in ROLE_NAMES:
            raise perms.error(cmd, f"expected one of {sorted(ROLE_NAMES)}, got {role_name!r}")
        out[cmd] = ROLE_NAMES[role_name]
    return out


def _read_delivery(d: _Reader) -> DeliveryConfig:
    d.check_keys({f.name for f in attrs.fields(DeliveryConfig)})
    max_len = d.integer("max_len", 4096, minimum=200)
    if max_len > 4096:
        raise d.error("max_len", f"Telegram accepts at most 4096 characters, got {max_len}")
    retry_min = d.number("retry_min_s", 1.0)
    retry_max = d.number("retry_max_s", 60.0)
    if retry_max < retry_min:
        raise d.error("retry_max_s", "must be >= retry_min_s")
    return DeliveryConfig(
        max_pending=d.integer("max_pending", 1000),
        per_chat_interval_s=d.number("per_chat_interval_s", 1.0, positive=False),
        per_group_interval_s=d.number("per_group_interval_s", 3.0, positive=False),
        global_rate_per_s=d.number("global_rate_per_s", 30.0),
        max_len=max_len,
        delay_mark_after_s=d.number("delay_mark_after_s", 10.0, positive=False),
        retry_min_s=retry_min,
        retry_max_s=retry_max,
    )


def _read_bus(b: _Reader) -> BusConfig:
    b.check_keys({"host", "port", "root"})
    port = b.integer("port", 1883)
    if port > 65535:
        raise b.error("port", f"expected a TCP port, got {port}")
    return BusConfig(
        host=b.string("host", "127.0.0.1", pattern=_HOST),
        port=port,
        root=b.string("root", "mlt", pattern=_ROOT),
    )
