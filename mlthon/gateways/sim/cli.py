"""``mlthon gateway --config gateway.toml``: run the simulated exchange as a paper gateway on MQTT.

The process serves requests and market data from the broker until SIGINT or SIGTERM, then cancels
every open order, announces its status and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

import attrs

from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.instruments import load_instruments

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlthon gateway", description="Run the simulated exchange gateway on MQTT."
    )
    p.add_argument("--config", required=True, help="gateway TOML file (see docs/simulation.md)")
    p.add_argument("--host", default=None, help="MQTT host (overrides [bus] host)")
    p.add_argument("--port", type=int, default=None, help="MQTT port (overrides [bus] port)")
    p.add_argument("--root", default=None, help="topic root (overrides [gateway] root)")
    return p


def gateway_main(argv: list[str], shutdown: asyncio.Event | None = None) -> int:
    """Entry point of ``mlthon gateway``.

    Args:
        argv: the arguments after ``gateway``.
        shutdown: an event that ends the run when set (tests); signals set it otherwise.

    Returns:
        0 on a clean stop, 2 on a configuration error, 1 on another mlthon error.
    """
    args = _parser().parse_args(argv)
    try:
        config = SimGatewayConfig.from_toml(args.config)
        if args.root:
            config = attrs.evolve(config, root=args.root)
    except ConfigError as exc:
        sys.stderr.write(f"mlthon gateway: {exc}\n")
        return 2
    try:
        asyncio.run(_run(config, args.host, args.port, shutdown))
    except ConfigError as exc:
        sys.stderr.write(f"mlthon gateway: {exc}\n")
        return 2
    except MlthonError as exc:
        log.error("gateway %s failed: %s", config.exchange.name, exc)
        return 1
    return 0


async def _run(
    config: SimGatewayConfig, host: str | None, port: int | None, shutdown: asyncio.Event | None
) -> None:
    instruments = load_instruments(config.instruments_file)
    stop = shutdown or asyncio.Event()
    loop = asyncio.get_running_loop()
    if shutdown is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    scheduler = LiveScheduler(loop=loop)
    async with MqttBus(host or config.bus_host, port or config.bus_port) as bus:
        gateway = SimGateway(bus, scheduler, Topics(config.root), config, list(instruments))
        gateway.start()
        log.info(
            "sim gateway %s serving %d instruments", config.exchange.name, len(gateway.instruments)
        )
        try:
            await stop.wait()
        finally:
            gateway.stop()
            await bus.flush()
