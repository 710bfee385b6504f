"""The ``mlthon`` command.

Run ``mlthon --help`` or ``mlthon <command> --help``. Commands that belong to a component
(``feed``, ``gateway``, ``telegram``, ``record``) are loaded only when used.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.infra.config_schema import cli_number
from mlthon.infra.security import add_login_args, client_options

log = logging.getLogger("mlthon")

# Commands implemented in component packages: name -> (module, function, one-line help).
_DELEGATED: dict[str, tuple[str, str, str]] = {
    "status": (
        "mlthon.infra.ops.cli",
        "status_main",
        "live table of every component (--once, --json)",
    ),
    "servers": ("mlthon.infra.ops.cli", "servers_main", "list running servers (--json, --kind)"),
    "kill": (
        "mlthon.infra.ops.cli",
        "kill_main",
        "stop one server cleanly: name, kind/name, pid or pid@host",
    ),
    "doctor": (
        "mlthon.infra.ops.cli",
        "doctor_main",
        "pre-flight checks (broker, clock, config, secrets, versions, disk)",
    ),
    "feed": ("mlthon.cli", "_feed_main", "run a feed-handler process (--config feed.toml)"),
    "record": ("mlthon.feeds.cli", "record_main", "record a feed to the raw capture format"),
    "gateway": (
        "mlthon.cli",
        "_gateway_main",
        "run the simulated exchange gateway (--config gateway.toml)",
    ),
    "telegram": (
        "mlthon.infra.telegram.cli",
        "telegram_main",
        "run the Telegram bridge (--config telegram.toml)",
    ),
    "backtest": (
        "mlthon.app.cli",
        "backtest_main",
        "backtest a strategy on recorded or synthetic data",
    ),
    "sweep": ("mlthon.app.cli", "sweep_main", "run a parameter sweep of backtests"),
    "instruments": (
        "mlthon.app.instruments_cli",
        "instruments_main",
        "list the known instruments, or those of recordings (--data), with drafts for new ones",
    ),
    "run": (
        "mlthon.app.launcher",
        "run_main",
        "paper-trade a strategy: broker, control, gateway, feed and strategy processes",
    ),
}


def _config_table(argv: list[str]) -> dict[str, Any]:
    """The TOML given with --config in ``argv`` (empty if absent or unreadable: the component's
    own loader then reports the problem)."""
    import tomllib
    from pathlib import Path

    for i, word in enumerate(argv):
        path = argv[i + 1] if word == "--config" and i + 1 < len(argv) else None
        if word.startswith("--config="):
            path = word.split("=", 1)[1]
        if path:
            try:
                return tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                return {}
    return {}


def _gateway_main(argv: list[str]) -> int:
    """``mlthon gateway``: a live venue when the config names an environment, else the
    simulated exchange."""
    from mlthon.gateways.live.cli import is_live_config

    if is_live_config(_config_table(argv)):
        from mlthon.gateways.live.cli import gateway_main as live_main

        return live_main(argv)
    from mlthon.gateways.sim.cli import gateway_main

    return gateway_main(argv)


def _feed_main(argv: list[str]) -> int:
    """``mlthon feed``: a live venue feed when ``[source] kind = "live"``, else replay or
    synthetic."""
    source = _config_table(argv).get("source", {})
    if isinstance(source, dict) and source.get("kind") == "live":
        from mlthon.feeds.live_cli import live_feed_main

        return live_feed_main(argv)
    from mlthon.feeds.cli import feed_main

    return feed_main(argv)


def setup_logging(level: str = "INFO") -> None:
    """Log lines name their component (the logger) and are %-formatted."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _bus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    p.add_argument("--root", default="mlt", help="topic root (default mlt)")


def _cmd_control(a: argparse.Namespace) -> int:
    from mlthon.infra.config import load_strategy_config
    from mlthon.infra.loop import run_process
    from mlthon.infra.runner import install_signal_handlers, run_control

    cfgs = [load_strategy_config(p) for p in a.strategy]
    state = a.state if a.state is not None else default_control_state(a.strategy, a.root)
    web_host, web_port = "127.0.0.1", None
    if a.web:
        host_part, _, port_part = a.web.rpartition(":")
        if not port_part.isdigit():
            raise ConfigError(f"--web takes [HOST:]PORT, got {a.web!r}")
        web_host, web_port = host_part or "127.0.0.1", int(port_part)

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await run_control(
            cfgs,
            stop,
            host=a.host,
            port=a.port,
            root=a.root,
            web_port=web_port,
            web_host=web_host,
            web_token=os.environ.get("MLTHON_OPS_TOKEN"),
            state_path=state or None,
        )

    run_process(main())
    return 0


def default_control_state(strategy_files: list[str], root: str) -> str:
    """Where ``mlthon control`` keeps what the operator last asked of each strategy when
    ``--state`` is not given: ``control-state-<root>.json`` beside the first strategy file (the
    working folder without one)."""
    from pathlib import Path

    folder = Path(strategy_files[0]).resolve().parent if strategy_files else Path.cwd()
    safe_root = "".join(c if c.isalnum() or c in "-_." else "_" for c in root)
    return str(folder / f"control-state-{safe_root}.json")


def _cmd_strategy(a: argparse.Namespace) -> int:
    import attrs

    from mlthon.infra.config import BusConfig, load_strategy_config
    from mlthon.infra.loop import run_process
    from mlthon.infra.runner import install_signal_handlers, run_strategy

    cfg = load_strategy_config(a.config)
    if a.host or a.port or a.root:
        cfg = attrs.evolve(
            cfg,
            bus=BusConfig(
                host=a.host or cfg.bus.host,
                port=a.port or cfg.bus.port,
                root=a.root or cfg.bus.root,
            ),
        )

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await run_strategy(cfg, stop)

    run_process(main())
    return 0


def _cmd_send(a: argparse.Namespace, name: str, args: list[str]) -> int:
    from mlthon.infra.ops.collect import CREDENTIALS_HINT, BrokerRefused, BrokerUnreachable
    from mlthon.infra.runner import send_command

    try:
        res = asyncio.run(
            send_command(
                a.host,
                a.port,
                a.root,
                a.strat,
                name,
                args,
                a.timeout,
                client_options=client_options(a),
            )
        )
    except BrokerRefused as exc:
        print(f"{exc}; {CREDENTIALS_HINT}", file=sys.stderr)
        return 3
    except BrokerUnreachable as exc:
        print(f"{exc}; is it running? (mlthon broker --port {a.port})", file=sys.stderr)
        return 3
    except TimeoutError:
        print(
            f"no answer within {a.timeout}s: is the control service running on "
            f"{a.host}:{a.port} (root {a.root})?",
            file=sys.stderr,
        )
        return 2
    if a.json:
        print(json.dumps({"ok": res.ok, "strategy": res.strat, "detail": res.detail}))
    else:
        print(("ok: " if res.ok else "failed: ") + res.detail)
    return 0 if res.ok else 1


def _cmd_broker(a: argparse.Namespace) -> int:
    import time

    from mlthon.infra.broker import MosquittoBroker

    with MosquittoBroker(a.port, with_parent=True) as b:
        print(f"mosquitto on 127.0.0.1:{b.port} (Ctrl-C to stop)", flush=True)
        try:
            while b.proc is not None and b.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlthon", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("control", help="run the control service for some strategies")
    p.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="TOML",
        help="a strategy config (repeat for several)",
    )
    p.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        default=None,
        help="serve the status page and /metrics there (actions need $MLTHON_OPS_TOKEN)",
    )
    p.add_argument(
        "--state",
        metavar="PATH",
        default=None,
        help="JSON file keeping what the operator last asked of each strategy (running or "
        "stopped), so that a stopped strategy stays stopped across re-logins and restarts "
        "(default: control-state-<root>.json beside the first --strategy file; '' = memory "
        "only)",
    )
    _bus_args(p)
    p.set_defaults(func=_cmd_control)

    p = sub.add_parser("strategy", help="run one strategy process over MQTT")
    p.add_argument("config", help="the strategy's TOML config")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--root", default=None)
    p.set_defaults(func=_cmd_strategy)

    for name, helptext in (
        ("cmd", "send a command to a strategy (a hook, start, stop, status)"),
        ("params", "update a strategy's parameters: key=value..."),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("strat", help="strategy name")
        if name == "cmd":
            p.add_argument("name", help="command name (a hook, start, stop, status...)")
        p.add_argument("args", nargs="*", help="command arguments")
        p.add_argument("--timeout", type=cli_number(0, 3600), default=30.0)
        p.add_argument("--json", action="store_true", help="print the answer as JSON")
        _bus_args(p)
        add_login_args(p)
        if name == "cmd":
            p.set_defaults(func=lambda a: _cmd_send(a, a.name, a.args))
        else:
            p.set_defaults(func=lambda a: _cmd_send(a, "params", a.args))

    p = sub.add_parser("broker", help="start a local mosquitto configured for mlthon")
    p.add_argument("--port", type=int, default=1883)
    p.set_defaults(func=_cmd_broker)

    for name, (_mod, _fn, helptext) in _DELEGATED.items():
        p = sub.add_parser(name, help=helptext, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(delegated=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    a, _unknown = parser.parse_known_args(argv)
    setup_logging(a.log_level)
    if getattr(a, "delegated", None):
        mod_name, fn_name, _ = _DELEGATED[a.delegated]
        try:
            fn: Callable[[list[str]], int] = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as exc:
            print(f"mlthon {a.delegated}: not available in this build ({exc})", file=sys.stderr)
            return 2
        idx = argv.index(a.delegated)
        rest = argv[idx + 1 :]
        try:
            return fn(rest)
        except MlthonError as exc:
            print(f"mlthon {a.delegated}: {exc}", file=sys.stderr)
            return 2
    if _unknown:
        parser.error(f"unrecognized arguments: {' '.join(_unknown)}")
    if not getattr(a, "func", None):
        parser.print_help()
        return 0
    try:
        rc: int = a.func(a)
    except MlthonError as exc:
        print(f"mlthon {a.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
