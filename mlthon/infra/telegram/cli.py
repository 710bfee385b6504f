"""``mlthon telegram --config telegram.toml``: the Telegram bridge as its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.loop import run_process
from mlthon.infra.ops.heartbeat import component_will
from mlthon.infra.ops.wiring import ProcessOps
from mlthon.infra.security import add_bus_args, bus_client_options, export_login, telegram_user
from mlthon.infra.telegram.bridge import TelegramBridge
from mlthon.infra.telegram.config import TelegramConfig, load_config
from mlthon.infra.telegram.errors import BotApiRejected

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlthon telegram",
        description="Run the Telegram bridge: commands and notifications for every strategy.",
        epilog="example:\n  mlthon telegram --config telegram.toml --port 1883",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="path of telegram.toml (docs/telegram.md)")
    add_bus_args(p, overrides=True)
    # Deprecated spellings of --host and --port (before the options were the same everywhere).
    p.add_argument("--mqtt-host", help=argparse.SUPPRESS)
    p.add_argument("--mqtt-port", type=int, help=argparse.SUPPRESS)
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level when run as python -m mlthon.infra.telegram (default INFO; mlthon "
        "telegram takes the global --log-level)",
    )
    return p


def telegram_main(argv: list[str]) -> int:
    """Run the bridge until SIGINT or SIGTERM.

    Args:
        argv: the arguments after ``mlthon telegram``.

    Returns:
        0 after a clean stop, 2 for a bad config or bad arguments, 3 when Telegram refuses the
        bot (a wrong or revoked token).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on errors
        return 0 if exc.code == 0 else 2
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # httpx logs every Bot API request (a long poll every few seconds) at INFO.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    for old, new in (("mqtt_host", "host"), ("mqtt_port", "port")):
        if getattr(args, old) is not None:
            log.warning(
                "mlthon telegram: --%s is deprecated, use --%s",
                old.replace("_", "-"),
                new,
            )
            if getattr(args, new) is None:
                setattr(args, new, getattr(args, old))
    try:
        config = load_config(args.config)
        export_login(args)
    except ConfigError as exc:
        sys.stderr.write(f"mlthon telegram: {exc}\n")
        return 2
    bus = config.bus
    config = attrs.evolve(
        config,
        bus=attrs.evolve(
            bus,
            host=args.host or bus.host,
            port=args.port or bus.port,
            root=args.root or bus.root,
        ),
    )
    try:
        run_process(_serve(config, config.bus.host, config.bus.port))
    except BotApiRejected as exc:
        sys.stderr.write(
            f"mlthon telegram: Telegram refused the bot ({exc}); check the token "
            f"({args.config}: [telegram] token / token_env / token_file)\n"
        )
        return 3
    return 0


async def _serve(config: TelegramConfig, host: str, port: int) -> None:
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.set)
    topics = Topics(config.bus.root)
    # ops (issue 7): last will, heartbeat and `mlthon kill`.
    will = component_will(topics, "telegram", config.client_id)
    bus = MqttBus(
        host,
        port,
        client_id=f"mlthon-{config.client_id}",
        will=will,
        **bus_client_options(telegram_user(config.client_id)),
    )
    async with bus:
        ops = ProcessOps(
            bus,
            LiveScheduler(loop=loop),
            topics,
            kind="telegram",
            name=config.client_id,
            stop=shutdown,
        )
        ops.start()
        bridge = TelegramBridge(config, bus, topics=topics)
        try:
            await bridge.run(shutdown)
        finally:
            ops.close()
            with contextlib.suppress(TimeoutError):
                await bus.flush(2.0)
    log.info("mlthon telegram: stopped")
