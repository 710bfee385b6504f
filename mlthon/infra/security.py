"""Broker access control and secrets: password files, ACLs, TLS contexts, secret loading.

* :func:`mosquitto_password_hash` writes the PBKDF2-SHA512 form mosquitto 2.0 reads from a
  ``password_file`` (``$7$<iterations>$<salt>$<hash>``, base64), so no ``mosquitto_passwd`` binary
  is needed (tested against ``mosquitto_passwd``'s output and a real mosquitto accepting it:
  ``tests/integration/reliability/test_broker_passwords.py``).
* :func:`acl_text` writes the ``acl_file``: which user may publish and subscribe where. A strategy
  publishes only its login, its own requests (``gtw/+/req/<name>``), its own ``strat/<name>/#``
  (its answers to commands go there, relayed by the control service: no strategy writes on a
  reply topic), Telegram and status topics; a gateway only its own ``gtw/<EX>/#`` and status; a
  feed only its market data and feed topics; the Telegram bridge only commands and its status.
  What an ACL cannot check (the ``strat`` *inside* a request, a stop ack or a login) the reader
  checks against the topic (``docs/reliability.md``).
* :func:`bus_login` reads a process's broker credentials: the user from ``MLTHON_BUS_USERNAME``,
  the password from ``MLTHON_BUS_PASSWORD``, a password file given, or the file named by
  ``MLTHON_BUS_PASSWORD_FILE`` (what ``mlthon run --secure`` hands every child: a file readable by
  the user only, never the password itself). :func:`bus_tls` gives the TLS context of
  ``MLTHON_BUS_TLS_CA`` (or a CA file given). :func:`bus_client_options` combines both for an
  ``MqttBus``.
* :func:`read_secret` reads a secret from the environment or from a file (mode 600) and never
  logs it; :class:`Secret` keeps it out of reprs and f-strings by accident.
* :func:`client_tls_context` builds the TLS context a bus client uses with a private CA.
* :func:`write_secret_file` writes a secret to a file only its owner can read.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 uses by default
ADMIN_USER = "mlthon-admin"
PASSWORD_ENV = "MLTHON_BUS_PASSWORD"  # noqa: S105 - the variable's name, not a password
#: Names a file holding the broker password (mode 600): how `mlthon run` hands it to a child.
PASSWORD_FILE_ENV = "MLTHON_BUS_PASSWORD_FILE"  # noqa: S105 - the variable's name
USERNAME_ENV = "MLTHON_BUS_USERNAME"
#: Names the CA file a bus client trusts (TLS to the broker).
TLS_CA_ENV = "MLTHON_BUS_TLS_CA"


@attrs.frozen(repr=False)
class Secret:
    """A secret value: shown as ``***`` by ``repr`` and ``str``; read it with :meth:`reveal`."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        """The secret itself (hand it to the client library, never to a logger)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


def read_secret(*, env: str | None = None, file: str | Path | None = None) -> Secret | None:
    """A secret from the environment variable ``env``, else from ``file``, else from the file
    named by the variable ``<env>_FILE`` (files are stripped and must be mode 600).

    Returns:
        The secret, or None if none is set.

    Raises:
        ConfigError: a file is given but cannot be read, is empty, or is readable by group or
            others (``chmod 600`` it).
    """
    if env:
        value = os.environ.get(env)
        if value:
            return Secret(value)
    if file is None and env:
        file = os.environ.get(f"{env}_FILE") or None
    if file is None:
        return None
    path = Path(file)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file: {exc.strerror}", source=str(path)) from None
    if mode & 0o077:
        raise ConfigError("secret file is readable by group or others: chmod 600", source=str(path))
    if not text:
        raise ConfigError("secret file is empty", source=str(path))
    return Secret(text)


def mosquitto_password_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The hash of ``password`` in mosquitto 2.0's ``password_file`` format (PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_file_text(users: Mapping[str, str]) -> str:
    """The lines ``user:hash`` of a password file for ``users`` (name -> password).

    Raises:
        ConfigError: a user name is empty or holds ``:`` or white space.
    """
    lines = []
    for user, password in users.items():
        if not user or any(c in user for c in ": \t\n"):
            raise ConfigError(f"bad broker user name {user!r}")
        lines.append(f"{user}:{mosquitto_password_hash(password)}")
    return "\n".join(lines) + "\n"


def strategy_user(name: str) -> str:
    """The broker user of strategy ``name``."""
    return f"strat-{name}"


def gateway_user(exchange: str) -> str:
    """The broker user of the gateway of ``exchange`` (an ``Exchange`` member name)."""
    return f"gtw-{exchange}"


def feed_user(exchange: str) -> str:
    """The broker user of the feed of ``exchange`` (an ``Exchange`` member name)."""
    return f"feed-{exchange}"


def telegram_user(client_id: str) -> str:
    """The broker user of the Telegram bridge whose bus client id is ``client_id``."""
    return f"tg-{client_id}"


def bus_login(
    default_user: str, *, user: str | None = None, password_file: str | Path | None = None
) -> tuple[str | None, str | None]:
    """A process's broker credentials: ``(user, password)`` for the MQTT client.

    The password comes from ``$MLTHON_BUS_PASSWORD``, else ``password_file``, else the file named
    by ``$MLTHON_BUS_PASSWORD_FILE`` (files must be mode 600); the user is ``user``, else
    ``$MLTHON_BUS_USERNAME``, else ``default_user``. Without a password both are None (an
    anonymous client).

    Raises:
        ConfigError: a password file that cannot be read, is empty or is readable by others.
    """
    password = read_secret(env=PASSWORD_ENV, file=password_file)
    if password is None:
        return None, None
    return user or os.environ.get(USERNAME_ENV) or default_user, password.reveal()


def bus_tls(ca_file: str | Path | None = None) -> ssl.SSLContext | None:
    """The TLS context of a bus client: trusting ``ca_file``, else ``$MLTHON_BUS_TLS_CA``;
    None (plain TCP) without either.

    Raises:
        ConfigError: the CA file is missing or not a certificate.
    """
    ca = ca_file or os.environ.get(TLS_CA_ENV) or None
    return client_tls_context(ca) if ca else None


def bus_client_options(
    default_user: str,
    *,
    user: str | None = None,
    password_file: str | Path | None = None,
    tls_ca: str | Path | None = None,
) -> dict[str, Any]:
    """``username``, ``password`` and ``tls_context`` for an ``MqttBus``: :func:`bus_login`
    and :func:`bus_tls` (the same options for every client of the bus).

    Raises:
        ConfigError: as :func:`bus_login` and :func:`bus_tls`.
    """
    username, password = bus_login(default_user, user=user, password_file=password_file)
    return {"username": username, "password": password, "tls_context": bus_tls(tls_ca)}


def unique_client_id(role: str) -> str:
    """An MQTT client id no other process uses: ``<role>-<pid>-<random>``, for a process that
    needs no persistent session (CLI clients, the control service, watchers). Two clients with
    one id knock each other off the broker; processes that keep a session (strategies) use a
    stable id instead, and the bus detects a takeover."""
    return f"{role}-{os.getpid()}-{secrets.token_hex(4)}"


def add_login_args(p: argparse.ArgumentParser) -> None:
    """``--user``, ``--password-file`` and ``--tls-ca``: a bus client's login (secured
    brokers), the same for every client command (:func:`add_bus_args` adds them with the
    broker's address)."""
    _login_args(p, process=False)


def _login_args(p: Any, *, process: bool) -> None:
    # ``p``: a parser or an argument group (argparse has no public type for both).
    who = "the process's own user" if process else ADMIN_USER
    p.add_argument(
        "--user",
        default=None,
        help=f"broker user (default $MLTHON_BUS_USERNAME, else {who}; only with a password)",
    )
    p.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="file (mode 600) holding the broker password (default $MLTHON_BUS_PASSWORD, else "
        "the file $MLTHON_BUS_PASSWORD_FILE names)",
    )
    p.add_argument(
        "--tls-ca",
        default=None,
        metavar="FILE",
        help="CA certificate: connect with TLS (default $MLTHON_BUS_TLS_CA; none: plain TCP)",
    )


#: The connection options (:func:`add_bus_args`) that take a value, as written on a command line.
BUS_OPTIONS = ("--host", "--port", "--root", "--user", "--password-file", "--tls-ca")


def add_bus_args(p: argparse.ArgumentParser, *, overrides: bool = False) -> None:
    """The connection options of every command that talks to the broker: ``--host``,
    ``--port``, ``--root`` and the login of :func:`add_login_args`.

    Args:
        p: the command's parser.
        overrides: the command reads its broker from a config file's ``[bus]`` table (a
            strategy, gateway, feed or Telegram bridge process): the options default to None
            and override the file when given. Otherwise (CLI clients, the control service) they
            default to 127.0.0.1, 1883 and ``mlt``.
    """
    g = p.add_argument_group("connection options")
    if overrides:
        g.add_argument("--host", default=None, help="MQTT broker host (default: the config's)")
        g.add_argument(
            "--port", type=int, default=None, help="MQTT broker port (default: the config's)"
        )
        g.add_argument("--root", default=None, help="topic root (default: the config's)")
    else:
        g.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default 127.0.0.1)")
        g.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
        g.add_argument("--root", default="mlt", help="topic root (default mlt)")
    _login_args(g, process=overrides)


def export_login(a: argparse.Namespace) -> None:
    """Hand a process's ``--user``, ``--password-file`` and ``--tls-ca`` to every bus client it
    opens, as ``$MLTHON_BUS_USERNAME``, ``$MLTHON_BUS_PASSWORD_FILE`` and
    ``$MLTHON_BUS_TLS_CA`` would (:func:`bus_client_options` reads them): the options a
    strategy, gateway, feed, Telegram or control process was given win over its environment."""
    if a.password_file:
        os.environ.pop(PASSWORD_ENV, None)  # the password itself would win over the file
    given = ((a.user, USERNAME_ENV), (a.password_file, PASSWORD_FILE_ENV), (a.tls_ca, TLS_CA_ENV))
    for value, var in given:
        if value:
            os.environ[var] = str(value)


def client_options(a: argparse.Namespace) -> dict[str, Any]:
    """The bus client options of ``--user``, ``--password-file`` and ``--tls-ca``.

    Raises:
        ConfigError: the password or CA file cannot be read (or is readable by others).
    """
    return bus_client_options(
        ADMIN_USER, user=a.user, password_file=a.password_file, tls_ca=a.tls_ca
    )


def write_secret_file(path: str | Path, secret: str) -> Path:
    """Write ``secret`` to ``path``, readable and writable by its owner only (mode 600, set
    before anything is written).

    Raises:
        OSError: the file cannot be created.
    """
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret.encode() + b"\n")
    finally:
        os.close(fd)
    return p


def acl_text(
    root: str,
    strategies: Iterable[str],
    gateways: Iterable[str],
    *,
    feeds: Iterable[str] = (),
    telegrams: Iterable[str] = (),
    anonymous_feed: bool = False,
) -> str:
    """A mosquitto ``acl_file`` for one topic root.

    ``mlthon-admin`` (control service, CLI clients) may do anything under ``root``. Each
    strategy, gateway, feed (by exchange name) and Telegram bridge (by bus client id) gets its
    own user (:func:`strategy_user`, :func:`gateway_user`, :func:`feed_user`,
    :func:`telegram_user`) limited as the module docstring says; everybody may read statuses
    and the ops topics. ``anonymous_feed`` gives clients without a user (on a broker that allows
    them) a feed handler's rights for every exchange.
    """
    r = root
    # Every client may read the broker's uptime: the MQTT bus reads it to tell a client id taken
    # over by another process from a broker restart (``pattern`` lines apply to every user).
    out = ["pattern read $SYS/broker/uptime", ""]

    def feed_rights(ex: str) -> list[str]:
        return [
            f"topic write {r}/md/{ex}/#",
            f"topic readwrite {r}/feed/{ex}/#",
            f"topic read {r}/feed/+/req",
            f"topic readwrite {r}/status/feed/{ex}",
            f"topic read {r}/ops/#",
            "",
        ]

    if anonymous_feed:
        out += feed_rights("+")
    out += [f"user {ADMIN_USER}", f"topic readwrite {r}/#", ""]
    common_read = [
        f"topic read {r}/md/#",
        f"topic read {r}/feed/+/status",
        f"topic read {r}/feed/+/hb",
        f"topic read {r}/gtw/+/status",
        f"topic read {r}/status/#",
        f"topic read {r}/ops/#",
    ]
    for name in strategies:
        out += [
            f"user {strategy_user(name)}",
            f"topic write {r}/ctl/login/{name}",
            f"topic write {r}/gtw/+/req/{name}",
            f"topic readwrite {r}/strat/{name}/#",
            f"topic write {r}/tg/{name}",
            f"topic write {r}/feed/+/req",
            f"topic readwrite {r}/status/strategy/{name}",
            f"topic read {r}/gtw/+/rpt/{name}",
            *common_read,
            "",
        ]
    for ex in gateways:
        out += [
            f"user {gateway_user(ex)}",
            f"topic readwrite {r}/gtw/{ex}/#",
            f"topic readwrite {r}/status/gateway/{ex}",
            f"topic write {r}/tg/#",
            *common_read,
            "",
        ]
    for ex in feeds:
        out += [f"user {feed_user(ex)}", *feed_rights(ex)]
    for client_id in telegrams:
        out += [
            f"user {telegram_user(client_id)}",
            f"topic write {r}/ctl/cmd",
            f"topic read {r}/reply/{client_id}",
            f"topic read {r}/tg/+",
            f"topic read {r}/strat/+/status",
            f"topic read {r}/strat/+/ctl",
            f"topic readwrite {r}/status/telegram/{client_id}",
            f"topic read {r}/feed/+/status",
            f"topic read {r}/gtw/+/status",
            f"topic read {r}/status/#",
            f"topic read {r}/ops/#",
            "",
        ]
    return "\n".join(out)


def client_tls_context(
    ca_file: str | Path, cert_file: str | Path | None = None, key_file: str | Path | None = None
) -> ssl.SSLContext:
    """A client TLS context trusting ``ca_file`` (and presenting a client certificate if given).

    Raises:
        ConfigError: a file is missing or not a certificate / key.
    """
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        if cert_file is not None:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS setup failed: {exc}", source=str(ca_file)) from None
    return ctx
