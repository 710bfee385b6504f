"""Starting a local mosquitto broker (for ``mlthon run`` and the tests).

The config binds one listener to 127.0.0.1, turns Nagle off on the broker's sockets
(``set_tcp_nodelay true``: with it on, QoS 1 round trips take tens of milliseconds) and keeps no
persistence unless asked.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mlthon.basics.errors import BusError

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


class MosquittoBroker:
    """A mosquitto process on 127.0.0.1, started and stopped by us.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        workdir: Path | None = None,
        persistence: bool = False,
        extra_conf: str = "",
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mlthon-broker-"))
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None

    def conf_text(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
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

    def start(self, timeout_s: float = 10.0) -> MosquittoBroker:
        binary = find_mosquitto()
        if binary is None:
            raise BusError(f"mosquitto is not installed; {INSTALL_HINT}")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.conf_text())
        with (self.workdir / "mosquitto.log").open("ab") as log_file:
            # Its own session: a Ctrl-C in the terminal reaches the launcher only, which then
            # stops the parts in order (the broker last).
            self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
                [binary, "-c", str(conf)],
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except BusError:
            self.stop()
            raise
        log.info("mosquitto started on %s:%d (pid %d)", self.host, self.port, self.proc.pid)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
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
