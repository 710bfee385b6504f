"""An embedded MQTT broker for machines without mosquitto: amqtt, in a process of its own.

``mlthon run`` uses mosquitto when it is installed. Without it, and with the ``broker`` extra
installed (``pip install 'mlthon[broker]'``, which brings amqtt, a pure-Python MQTT 3.1.1
broker), it starts this one instead: same interface as
:class:`~mlthon.infra.broker.MosquittoBroker` (``host``, ``port``, ``start``, ``stop``, context
manager), one listener on 127.0.0.1, every local client admitted, retained messages, wills, and
persistent sessions that keep QoS 1 messages for a client while it is away, for as long as the
broker process lives.

Limits, beside mosquitto: no password file, ACLs or TLS (``mlthon run --secure`` needs
mosquitto), nothing kept across a broker restart, and about half mosquitto's message rate (a
pure-Python broker tops out near 9 k messages/s on this kind of machine), which paper trading on
one instrument stays well below. Nagle is turned off on the listening socket, which the accepted
connections inherit on Linux, so QoS 1 round trips are not held back by delayed ACKs.

Run by hand: ``python -m mlthon.infra.embedded_broker --port 1883``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlthon.basics.errors import BusError
from mlthon.infra.broker import free_port, stop_process, wait_for_port
from mlthon.infra.loop import run_process

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'mlthon[broker]' (the embedded amqtt broker)"


def embedded_broker_available() -> bool:
    """True if amqtt is installed (the ``broker`` extra)."""
    return importlib.util.find_spec("amqtt") is not None


def broker_config(port: int) -> dict[str, Any]:
    """amqtt's configuration: one TCP listener on 127.0.0.1:``port``, anonymous clients."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        # Not amqtt's anonymous plugin: it keeps nothing for sessions that are away.
        "plugins": {"mlthon.infra.amqtt_auth.LocalAuthPlugin": {}},
    }


class EmbeddedBroker:
    """An amqtt broker process on 127.0.0.1, started and stopped by us.

    Args:
        port: the port (default: a free one).
        workdir: where its log goes (default: a temporary folder).
    """

    def __init__(self, port: int | None = None, *, workdir: Path | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mlthon-amqtt-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        if not embedded_broker_available():
            raise BusError(f"amqtt is not installed; {INSTALL_HINT}")
        with (self.workdir / "amqtt.log").open("ab") as log_file:
            # Its own session, as mosquitto's: the launcher stops it last, after the parts.
            self.proc = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "mlthon.infra.embedded_broker", "--port", str(self.port)],
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except BusError:
            self.stop()
            raise BusError(
                f"the embedded broker did not start; see {self.workdir / 'amqtt.log'}"
            ) from None
        log.info("embedded amqtt broker on %s:%d (pid %d)", self.host, self.port, self.proc.pid)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout_s)
            self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.workdir)


async def serve(port: int, stop: asyncio.Event) -> None:
    """Run an amqtt broker on 127.0.0.1:``port`` until ``stop`` is set."""
    from amqtt.broker import Broker

    broker = Broker(broker_config(port))
    await broker.start()
    for server in broker._servers.values():  # the listening sockets (amqtt has no accessor)
        instance = getattr(server, "instance", None)
        for sock in getattr(instance, "sockets", ()) or ():
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    log.info("embedded broker: listening on 127.0.0.1:%d", port)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m mlthon.infra.embedded_broker --port N``: serve until SIGTERM or SIGINT."""
    ap = argparse.ArgumentParser(prog="python -m mlthon.infra.embedded_broker")
    ap.add_argument("--port", type=int, default=1883, help="port on 127.0.0.1 (default 1883)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    if not embedded_broker_available():
        sys.stderr.write(f"amqtt is not installed; {INSTALL_HINT}\n")
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.port, stop)

    run_process(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
