"""Broker access control and secrets: password files, ACLs, TLS contexts, secret loading.

* :func:`mosquitto_password_hash` writes the PBKDF2-SHA512 form mosquitto 2.0 reads from a
  ``password_file`` (``$7$<iterations>$<salt>$<hash>``, base64), so no ``mosquitto_passwd`` binary
  is needed.
* :func:`acl_text` writes the ``acl_file``: which user may publish and subscribe where. A strategy
  publishes only its login, requests to gateways, its own ``strat/<name>/#``, Telegram and status
  topics; a gateway only its own ``gtw/<EX>/#`` and status. What an ACL cannot check (the ``strat``
  *inside* a request) the gateway checks (``docs/reliability.md``).
* :func:`read_secret` reads a secret from the environment or from a file and never logs it;
  :class:`Secret` keeps it out of reprs and f-strings by accident.
* :func:`client_tls_context` builds the TLS context a bus client uses with a private CA.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from mlthon.basics.errors import ConfigError

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 uses by default
ADMIN_USER = "mlthon-admin"


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
    """A secret from the environment variable ``env``, else from ``file`` (stripped).

    Returns:
        The secret, or None if neither is set.

    Raises:
        ConfigError: ``file`` is given but cannot be read, is empty, or is readable by group or
            others (``chmod 600`` it).
    """
    if env:
        value = os.environ.get(env)
        if value:
            return Secret(value)
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


def acl_text(
    root: str, strategies: Iterable[str], gateways: Iterable[str], *, anonymous_feed: bool = False
) -> str:
    """A mosquitto ``acl_file`` for one topic root.

    ``mlthon-admin`` (control service, feeds, Telegram bridge, CLI clients) may do anything under
    ``root``. Each strategy and each gateway gets its own user (:func:`strategy_user`,
    :func:`gateway_user`) limited as the module docstring says; everybody may read market data,
    statuses and the ops topics. ``anonymous_feed`` gives clients without a user (on a broker
    that allows them) exactly a feed handler's rights: publish market data and feed statuses,
    read snapshot requests.
    """
    r = root
    out = []
    if anonymous_feed:
        out += [
            f"topic write {r}/md/#",
            f"topic readwrite {r}/feed/+/status",
            f"topic read {r}/feed/+/req",
            f"topic readwrite {r}/status/feed/#",
            f"topic read {r}/ops/#",
            "",
        ]
    out += [f"user {ADMIN_USER}", f"topic readwrite {r}/#", ""]
    common_read = [
        f"topic read {r}/md/#",
        f"topic read {r}/feed/+/status",
        f"topic read {r}/gtw/+/status",
        f"topic read {r}/status/#",
        f"topic read {r}/ops/#",
    ]
    for name in strategies:
        out += [
            f"user {strategy_user(name)}",
            f"topic write {r}/ctl/login",
            f"topic write {r}/gtw/+/req",
            f"topic readwrite {r}/strat/{name}/#",
            f"topic write {r}/tg/{name}",
            f"topic write {r}/feed/+/req",
            f"topic readwrite {r}/status/strategy/{name}",
            f"topic read {r}/gtw/+/rpt/{name}",
            f"topic write {r}/reply/#",
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
