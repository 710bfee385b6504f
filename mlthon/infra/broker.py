"""Starting a local mosquitto broker (for ``mlthon run`` and the tests).

The config binds one listener to 127.0.0.1, turns Nagle off on the broker's sockets
(``set_tcp_nodelay true``: with it on, QoS 1 round trips take tens of milliseconds) and keeps no
persistence unless asked (with persistence, persistent sessions and the QoS 1 messages queued for
them survive a broker restart).

``secure=True`` refuses anonymous clients: users come from a password file written from ``users``
(mosquitto's PBKDF2-SHA512 hashes, :mod:`mlthon.infra.security`) and topics are limited by an
``acl_file`` (``acl``, default: only ``mlthon-admin`` may do anything). ``tls`` serves TLS with a
certificate and key (``docs/reliability.md``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

from mlthon.basics.errors import BusError
from mlthon.infra.security import ADMIN_USER, password_file_text

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install it with: apt-get install -y mosquitto (Debian/Ubuntu) or brew install mosquitto"
)


def find_mosquitto() -> str | None:
    """The mosquitto binary's path, if installed."""
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the thread that started it dies, even by SIGKILL
    (Linux's ``PR_SET_PDEATHSIG``; elsewhere nothing), so that no part of a run outlives its
    launcher. Only for children started from a thread that lives as long as the process (the
    main thread): a worker thread's end would stop them."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Terminate a broker process and reap it; killed if it has not ended after ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Wait until a TCP connection to (host, port) succeeds; raise BusError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise BusError(f"broker at {host}:{port} not reachable after {timeout_s}s") from exc
            time.sleep(0.02)


@attrs.frozen
class TlsFiles:
    """The broker's TLS material: its certificate, its key and (for client certificates) a CA."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None


class MosquittoBroker:
    """A mosquitto process on 127.0.0.1, started and stopped by us.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.

    Args:
        port: the port (default: a free one).
        workdir: where the config, logs and persistence go (default: a temporary folder).
        persistence: keep sessions and queued QoS 1 messages across restarts.
        extra_conf: lines appended to the config.
        secure: refuse anonymous clients; check passwords and the ACL.
        users: user name -> password (secure only; ``mlthon-admin`` is added with a random
            password, readable as :attr:`admin_password`, if missing).
        acl: the ACL file's text (secure only; see :func:`mlthon.infra.security.acl_text`).
        tls: serve TLS instead of plain TCP.
        allow_anonymous: (secure only) also accept clients without a user; they get the rules
            at the top of the ACL (see ``anonymous`` of :func:`mlthon.infra.security.acl_text`).
        with_parent: the broker ends when the process that started it dies, even by SIGKILL
            (:func:`die_with_parent`; ``mlthon run`` and ``mlthon broker`` use it). Start it from
            the main thread then.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        workdir: Path | None = None,
        persistence: bool = False,
        extra_conf: str = "",
        secure: bool = False,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        tls: TlsFiles | None = None,
        allow_anonymous: bool = False,
        with_parent: bool = False,
    ) -> None:
        self.host = "127.0.0.1"
        self.with_parent = with_parent
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mlthon-broker-"))
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.secure = secure
        self.users = dict(users or {})
        if secure and ADMIN_USER not in self.users:
            self.users[ADMIN_USER] = secrets.token_urlsafe(24)
        self.acl = acl if acl is not None else f"user {ADMIN_USER}\ntopic readwrite #\n"
        self.tls = tls
        self.allow_anonymous = allow_anonymous
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def admin_password(self) -> str | None:
        """The password of ``mlthon-admin`` (secure brokers only)."""
        return self.users.get(ADMIN_USER)

    def conf_text(self) -> str:
        """The mosquitto.conf this broker runs with."""
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.tls is not None:
            lines += [f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}"]
            if self.tls.cafile is not None:
                lines.append(f"cafile {self.tls.cafile}")
        if self.secure:
            lines += [
                f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
                f"password_file {self.workdir / 'passwd'}",
                f"acl_file {self.workdir / 'acl'}",
            ]
        else:
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            # mosquitto 2 started as root drops to user "mosquitto", which cannot write our
            # persistence folder: stay the user that started it (containers, CI)
            lines.append("user root")
        lines += [
            "set_tcp_nodelay true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def _write_security_files(self) -> None:
        for name, text in (("passwd", password_file_text(self.users)), ("acl", self.acl)):
            path = self.workdir / name
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(text)

    def start(self, timeout_s: float = 10.0) -> MosquittoBroker:
        binary = find_mosquitto()
        if binary is None:
            raise BusError(f"mosquitto is not installed; {INSTALL_HINT}")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.conf_text())
        if self.secure:
            self._write_security_files()
        with (self.workdir / "mosquitto.log").open("ab") as log_file:
            # Its own session: a Ctrl-C in the terminal reaches the launcher only, which then
            # stops the parts in order (the broker last).
            self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
                [binary, "-c", str(conf)],
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=die_with_parent if self.with_parent else None,
            )
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except BusError:
            self.stop()
            raise
        log.info("mosquitto started on %s:%d (pid %d)", self.host, self.port, self.proc.pid)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout_s)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.workdir)
