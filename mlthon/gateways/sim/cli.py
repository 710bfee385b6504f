"""``mlthon gateway --config gateway.toml``: run the simulated exchange as a paper gateway on MQTT.

The process serves requests and market data from the broker until SIGINT or SIGTERM, then cancels
every open order, announces its status and exits.

Reliability (``docs/reliability.md``): with ``[gateway] journal`` the gateway journals every
request and report and restores its state on restart. Its MQTT session is persistent
(``clean_session=False``, client id ``gtw-<exchange>``), so requests published while it was away
are delivered when it returns. Reports are marked sent in the journal once the broker has
acknowledged them; a restart publishes again those that were not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.gateways.base import confirm_sent
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.instruments import load_instruments
from mlthon.infra.loop import run_process
from mlthon.infra.ops.heartbeat import DEGRADED, gateway_will
from mlthon.infra.ops.metering import MeteredBus
from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status, metered_stats
from mlthon.infra.security import add_bus_args, bus_client_options, gateway_user

log = logging.getLogger(__name__)

_CONFIRM_EVERY_S = 0.05


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlthon gateway",
        description="Run the simulated exchange gateway on MQTT (a live venue when the config "
        "names an environment: docs/exchanges.md).",
        epilog="example:\n  mlthon gateway --config gateway.toml --port 1883",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="gateway TOML file (see docs/simulation.md)")
    add_bus_args(p, overrides=True)
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
        config = attrs.evolve(
            config,
            root=args.root or config.root,
            bus_username=args.user or config.bus_username,
            bus_password_file=args.password_file or config.bus_password_file,
            bus_tls_ca=args.tls_ca or config.bus_tls_ca,
        )
    except ConfigError as exc:
        sys.stderr.write(f"mlthon gateway: {exc}\n")
        return 2
    try:
        run_process(_run(config, args.host, args.port, shutdown))
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
    topics = Topics(config.root)
    # ops (issue 7): a last will for strategies, counted traffic, heartbeat, `mlthon kill`.
    will = gateway_will(topics, config.exchange)
    journal = OrderJournal(config.journal) if config.journal else None
    bus = _make_bus(config, host, port, will)
    try:
        async with bus:
            await _serve(config, bus, scheduler, topics, instruments, journal, stop)
    finally:
        if journal is not None:
            journal.close()


def _make_bus(config: SimGatewayConfig, host: str | None, port: int | None, will: Any) -> MqttBus:
    """The gateway's bus: a persistent session under a stable client id, credentials, TLS."""
    kw: dict[str, Any] = {
        "client_id": f"{gateway_user(config.exchange.name)}-{config.root.replace('/', '_')}",
        "clean_session": False,
        "will": will,
        # the same login as every client: [bus] username / password_file / tls_ca, else the
        # environment (MLTHON_BUS_PASSWORD[_FILE], MLTHON_BUS_TLS_CA)
        **bus_client_options(
            gateway_user(config.exchange.name),
            user=config.bus_username or None,
            password_file=config.bus_password_file or None,
            tls_ca=config.bus_tls_ca or None,
        ),
    }
    try:
        return MqttBus(host or config.bus_host, port or config.bus_port, **kw)
    except TypeError as exc:
        raise ConfigError(f"this build's MQTT bus cannot do that: {exc}", key="bus") from None


async def _serve(
    config: SimGatewayConfig,
    bus: MqttBus,
    scheduler: LiveScheduler,
    topics: Topics,
    instruments: Any,
    journal: OrderJournal | None,
    stop: asyncio.Event,
) -> None:
    metered = MeteredBus(bus, scheduler.clock)
    gateway = SimGateway(metered, scheduler, topics, config, list(instruments), journal=journal)
    ops = ProcessOps(
        bus,
        scheduler,
        topics,
        kind="gateway",
        name=config.exchange.name,
        stop=stop,
        stats=metered_stats(metered),
    )
    ops.start(DEGRADED, "simulated exchange starting")
    follow_venue_status(ops, bus, topics, "gateway", config.exchange)
    gateway.start()
    log.info(
        "sim gateway %s serving %d instruments", config.exchange.name, len(gateway.instruments)
    )
    try:
        if journal is None:
            await stop.wait()
        else:
            await confirm_sent(bus, lambda: gateway.published_seq, journal, stop, _CONFIRM_EVERY_S)
    finally:
        gateway.stop()
        ops.close()
        if await bus.flush() and journal is not None:
            journal.mark_sent(gateway.published_seq)
