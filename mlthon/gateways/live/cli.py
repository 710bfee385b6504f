"""``mlthon gateway --config live.toml`` for a real venue: run a :class:`LiveGateway` on MQTT.

The venue is chosen by ``[gateway] exchange``; :data:`VENUES` maps each supported exchange to its
folder's ``build_gateway`` (adding a venue adds one line here). The process serves until SIGINT or
SIGTERM (or ``mlthon kill``), then cancels its open orders, announces its status and exits.

Like the simulated gateway's process it keeps a persistent MQTT session (client id
``gtw-<EX>-<root>``), leaves ``GatewayStatus(Connecting, "gateway process lost")`` as its last
will, heartbeats on ``{root}/status/gateway/<EX>``, logs in with ``MLTHON_BUS_USERNAME`` (default
``gtw-<EX>``) / ``MLTHON_BUS_PASSWORD`` when set, and with ``[gateway] journal`` keeps an order
journal whose ``sent`` watermark advances once the broker acknowledged the reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.basics.mlt_enum import Exchange
from mlthon.gateways.base import confirm_sent
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.live.config import LiveGatewayConfig
from mlthon.gateways.live.gateway import LiveGateway
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.instruments import load_instruments
from mlthon.infra.loop import run_process
from mlthon.infra.ops.heartbeat import DEGRADED, gateway_will
from mlthon.infra.ops.metering import MeteredBus
from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status, metered_stats
from mlthon.infra.security import add_bus_args, bus_client_options, export_login, gateway_user

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

_CONFIRM_EVERY_S = 0.05

# exchange -> "module:function" building its gateway (bus, scheduler, topics, config, instruments)
VENUES: dict[Exchange, str] = {
    Exchange.BinanceUsdm: "mlthon.gateways.binance_usdm.gateway:build_gateway",
    Exchange.Bybit: "mlthon.gateways.bybit_v5.gateway:build_gateway",
}


def builder(exchange: Exchange) -> Callable[..., LiveGateway]:
    """The ``build_gateway`` of an exchange's folder.

    Raises:
        ConfigError: no live gateway for that exchange.
    """
    target = VENUES.get(exchange)
    if target is None:
        supported = ", ".join(e.name for e in VENUES)
        raise ConfigError(
            f"no live gateway for {exchange.name} (supported: {supported})", key="gateway.exchange"
        )
    module, _, func = target.partition(":")
    fn: Callable[..., LiveGateway] = getattr(importlib.import_module(module), func)
    return fn


def is_live_config(data: dict[str, Any]) -> bool:
    """True if a parsed gateway TOML asks for a live venue (``[gateway] environment`` set):
    the switch ``mlthon gateway`` can use to choose this entry point over the simulator."""
    g = data.get("gateway", {})
    return isinstance(g, dict) and "environment" in g


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlthon gateway",
        description="Run a live venue gateway on MQTT.",
        epilog="example:\n  mlthon gateway --config binance_testnet.toml --port 1883",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="gateway TOML file (see docs/exchanges.md)")
    add_bus_args(p, overrides=True)
    return p


def gateway_main(argv: list[str], shutdown: asyncio.Event | None = None) -> int:
    """Entry point of ``mlthon gateway`` for a live venue.

    Args:
        argv: the arguments after ``gateway``.
        shutdown: an event that ends the run when set (tests); signals set it otherwise.

    Returns:
        0 on a clean stop, 2 on a configuration error (no keys...), 1 on another mlthon error.
    """
    args = _parser().parse_args(argv)
    try:
        config = LiveGatewayConfig.from_toml(args.config)
        config = attrs.evolve(config, root=args.root or config.root)
        export_login(args)
        build = builder(config.exchange)
        creds = config.credentials()
    except ConfigError as exc:
        sys.stderr.write(f"mlthon gateway: {exc}\n")
        return 2
    try:
        run_process(_run(config, build, creds, args.host, args.port, shutdown))
    except ConfigError as exc:
        sys.stderr.write(f"mlthon gateway: {exc}\n")
        return 2
    except MlthonError as exc:
        log.error("gateway %s failed: %s", config.exchange.name, exc)
        return 1
    return 0


async def _run(
    config: LiveGatewayConfig,
    build: Callable[..., LiveGateway],
    creds: Any,
    host: str | None,
    port: int | None,
    shutdown: asyncio.Event | None,
) -> None:
    from mlthon.infra.bus.mqtt import MqttBus  # paho only when used

    instruments = [
        i
        for i in load_instruments(config.instruments_file)
        if i.exchange is config.exchange
        and (not config.instrument_ids or i.instrument_id in config.instrument_ids)
    ]
    if not instruments:
        raise ConfigError(f"no instrument of {config.exchange.name}", key="gateway.instruments")
    stop = shutdown or asyncio.Event()
    loop = asyncio.get_running_loop()
    if shutdown is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    scheduler = LiveScheduler(loop=loop)
    topics = Topics(config.root)
    ex = config.exchange.name
    bus = MqttBus(
        host or config.bus_host,
        port or config.bus_port,
        client_id=f"{gateway_user(ex)}-{config.root.replace('/', '_')}",
        clean_session=False,
        will=gateway_will(topics, config.exchange),
        **bus_client_options(gateway_user(ex)),
    )
    journal = OrderJournal(config.journal) if config.journal else None
    try:
        async with bus:
            metered = MeteredBus(bus, scheduler.clock)
            gateway = build(metered, scheduler, topics, config, instruments, creds)
            gateway.journal = journal
            ops = ProcessOps(
                bus,
                scheduler,
                topics,
                kind="gateway",
                name=ex,
                stop=stop,
                stats=metered_stats(metered),
            )
            ops.start(DEGRADED, f"{config.environment.name} gateway starting")
            follow_venue_status(ops, bus, topics, "gateway", config.exchange)
            log.info(
                "live gateway %s (%s) serving %d instruments%s",
                ex,
                config.environment.name,
                len(instruments),
                f", journal {journal.path}" if journal is not None else "",
            )
            confirm = (
                asyncio.create_task(
                    confirm_sent(
                        bus, lambda: gateway.published_seq, journal, stop, _CONFIRM_EVERY_S
                    ),
                    name=f"gateway[{ex}].confirm_sent",
                )
                if journal is not None
                else None
            )
            try:
                await gateway.run(stop)
            finally:
                if confirm is not None:
                    confirm.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await confirm
                ops.close()
                if await bus.flush() and journal is not None:
                    journal.mark_sent(gateway.published_seq)
    finally:
        if journal is not None:
            journal.close()
