"""The mlthon command.

Run ``mlthon --help`` or ``mlthon <command> --help``. Commands that belong to a component
(``feed``, ``gateway``, ``telegram``, ``record``...) are loaded only when used.

Global options (``--log-level``, ``-q``) are taken before or after the command, and so are the
connection options (``--host``, ``--port``, ``--root``, ``--user``, ``--password-file``,
``--tls-ca``) of the commands that talk to the broker: :func:`split_global_options` moves them
where the command's parser reads them. A log level given on the command line is handed to the
processes a command starts through ``$MLTHON_LOG_LEVEL``. The clients (``cmd``, ``params``,
``status``, ``servers``, ``kill``, ``doctor``) log warnings and errors only by default, and not the
bus's connection attempts: they say themselves what went wrong.
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
from typing import TYPE_CHECKING, Any

from mlthon.basics.errors import MlthonError
from mlthon.infra.config_schema import cli_number

if TYPE_CHECKING:
    from mlthon.infra.config import StrategyConfig

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
    "feed": (
        "mlthon.cli",
        "_feed_main",
        "run a feed process: replay, synthetic or a live venue (--config feed.toml)",
    ),
    "record": ("mlthon.feeds.cli", "record_main", "record a feed to the raw capture format"),
    "gateway": (
        "mlthon.cli",
        "_gateway_main",
        "run a gateway: the simulated exchange or a live venue (--config gateway.toml)",
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
    "sweep": (
        "mlthon.app.sweep.cli",
        "sweep_main",
        "a parameter sweep or search of backtests, on local processes or a Ray cluster",
    ),
    "cache": (
        "mlthon.app.cli",
        "cache_main",
        "the replay cache of decoded recordings: where it is, what it holds (info), or clear",
    ),
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


#: The commands that ask something and exit: quiet unless a log level is given.
CLIENTS = frozenset({"cmd", "params", "status", "servers", "kill", "doctor"})
#: The environment variable that carries a command line's log level to the processes it starts.
LOG_LEVEL_ENV = "MLTHON_LOG_LEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_EXAMPLES = "example:\n  "


def setup_logging(level: str = "INFO") -> None:
    """Log lines name their component (the logger) and are %-formatted."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def log_level_of(command: str | None, given: str | None, quiet: bool) -> str:
    """The log level of ``command``: ``--log-level`` if given, ERROR with ``-q``, else
    ``$MLTHON_LOG_LEVEL`` (set by the process that started this one), else WARNING for a
    client and INFO for the others."""
    if given:
        return given
    if quiet:
        return "ERROR"
    inherited = os.environ.get(LOG_LEVEL_ENV, "").upper()
    if inherited in LOG_LEVELS:
        return inherited
    return "WARNING" if command in CLIENTS else "INFO"


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(LOG_LEVELS)}")
    return level


def _global_options() -> argparse.ArgumentParser:
    """The options every command takes, before or after its name."""
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument(
        "--log-level",
        type=_log_level,
        default=None,
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR (default: WARNING for the clients cmd, params, "
        "status, servers, kill and doctor; INFO for the others); also handed to the processes "
        "a command starts",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="errors only (the log level ERROR), unless --log-level is given",
    )
    return g


_GLOBAL_FLAGS = ("-q", "--quiet")


def split_global_options(
    argv: Sequence[str], commands: Sequence[str]
) -> tuple[list[str], list[str]]:
    """``(global options, the rest)`` of a command line: ``--log-level`` and ``-q`` are taken
    wherever they are (up to a ``--``), and connection options written before the command are
    moved after it, where its parser reads them.

    ``mlthon --port 1884 status -q`` becomes ``(["-q"], ["status", "--port", "1884"])``.
    """
    from mlthon.infra.security import BUS_OPTIONS

    globals_: list[str] = []
    before: list[str] = []  # connection options before the command
    rest: list[str] = []
    seen_command = False
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            rest += words[i:]
            break
        name = word.split("=", 1)[0]
        if word in _GLOBAL_FLAGS:
            globals_.append(word)
        elif name == "--log-level":
            take = 1 if "=" in word else 2
            globals_ += words[i : i + take]
            i += take
            continue
        elif not seen_command and name in BUS_OPTIONS:
            take = 1 if "=" in word else 2
            before += words[i : i + take]
            i += take
            continue
        elif not seen_command and word in commands:
            seen_command = True
            rest.append(word)
            rest += before
            before = []
        else:
            rest.append(word)
        i += 1
    return globals_, before + rest


class _Version(argparse.Action):
    """``--version``: the package's version and the core that runs (compiled or pure Python)."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_a: Any, **_kw: Any) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    """``mlthon <version>; mlthon core: compiled (...)`` (or pure Python, and why)."""
    from mlthon._core import describe
    from mlthon.infra.ops.heartbeat import mlthon_version

    return f"mlthon {mlthon_version()}; {describe()}"


def web_address(text: str) -> tuple[str, int]:
    """``--web [HOST:]PORT``: where the status page listens (127.0.0.1 without a host)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"[HOST:]PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def add_web_arg(p: argparse.ArgumentParser) -> None:
    """``--web [HOST:]PORT``: the status page and ``/metrics`` (``mlthon control``, ``mlthon
    run``)."""
    p.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        type=web_address,
        default=None,
        help="serve the status page and /metrics there (actions need $MLTHON_OPS_TOKEN)",
    )


def _cmd_control(a: argparse.Namespace) -> int:
    from mlthon.infra.config import load_strategy_config
    from mlthon.infra.loop import run_process
    from mlthon.infra.runner import install_signal_handlers, run_control
    from mlthon.infra.security import export_login

    export_login(a)
    cfgs = [load_strategy_config(p) for p in a.strategy]
    state = a.state if a.state is not None else default_control_state(a.strategy, a.root)
    web_host, web_port = a.web if a.web else ("127.0.0.1", None)

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
            desk_path=a.desk,
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


def with_bus(cfg: StrategyConfig, a: argparse.Namespace) -> StrategyConfig:
    """``cfg`` with its ``[bus]`` host, port and root replaced by ``--host``, ``--port`` and
    ``--root`` where given (``mlthon strategy``, ``mlthon run``)."""
    import attrs

    from mlthon.infra.config import BusConfig

    if a.host is None and a.port is None and a.root is None:
        return cfg
    bus = BusConfig(
        host=a.host if a.host is not None else cfg.bus.host,
        port=a.port if a.port is not None else cfg.bus.port,
        root=a.root if a.root is not None else cfg.bus.root,
    )
    return attrs.evolve(cfg, bus=bus)


def _cmd_strategy(a: argparse.Namespace) -> int:
    from mlthon.infra.config import load_strategy_config
    from mlthon.infra.loop import run_process
    from mlthon.infra.runner import install_signal_handlers, run_strategy
    from mlthon.infra.security import export_login

    export_login(a)
    cfg = with_bus(load_strategy_config(a.config), a)

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await run_strategy(cfg, stop)

    run_process(main())
    return 0


def _cmd_send(a: argparse.Namespace, name: str, args: list[str]) -> int:
    from mlthon.infra.ops.collect import CREDENTIALS_HINT, BrokerRefused, BrokerUnreachable
    from mlthon.infra.runner import send_command
    from mlthon.infra.security import client_options

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


def _sub(
    sub: Any, name: str, helptext: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A command's parser: its one-line help, a description and an example (the epilog)."""
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=helptext,
        description=description,
        epilog=_EXAMPLES + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options()],
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``mlthon`` and of the commands implemented here (control, strategy, cmd,
    params, broker); the others are listed and handed their arguments (``_DELEGATED``)."""
    from mlthon.infra.security import add_bus_args

    parser = argparse.ArgumentParser(
        prog="mlthon",
        description="mlthon: event-driven trading, from backtest to paper to live.",
        epilog="The global options may come before or after the command, and so may the\n"
        "connection options (--host, --port, --root, --user, --password-file, --tls-ca)\n"
        "of the commands that talk to the broker.\n\n"
        + _EXAMPLES
        + "mlthon backtest demo_strat/market_maker.toml\n  mlthon status --once -q",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options()],
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version and the core that runs, and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _sub(
        sub,
        "control",
        "run the control service for some strategies",
        "Run the control service: strategy logins, start/stop, parameters and commands.",
        "mlthon control --strategy dip.toml --web 8787",
    )
    p.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="TOML",
        help="a strategy config (repeat for several)",
    )
    add_web_arg(p)
    p.add_argument(
        "--state",
        metavar="PATH",
        default=None,
        help="JSON file keeping what the operator last asked of each strategy (running or "
        "stopped), so that a stopped strategy stays stopped across re-logins and restarts "
        "(default: control-state-<root>.json beside the first --strategy file; '' = memory "
        "only)",
    )
    p.add_argument(
        "--desk",
        metavar="TOML",
        default=None,
        help="a desk file whose [risk] table gives every strategy's default limits, sent at "
        "login (docs/risk.md); a strategy's own [risk] keys win",
    )
    add_bus_args(p)
    p.set_defaults(func=_cmd_control)

    p = _sub(
        sub,
        "strategy",
        "run one strategy process over MQTT",
        "Run one strategy process; it logs in to the control service over MQTT.",
        "mlthon strategy dip.toml --port 1883",
    )
    p.add_argument("config", help="the strategy's TOML config")
    add_bus_args(p, overrides=True)
    p.set_defaults(func=_cmd_strategy)

    for name, helptext, example in (
        (
            "cmd",
            "send a command to a strategy (a hook, start, stop, status)",
            "mlthon cmd dip show\n  mlthon cmd dip stop --json",
        ),
        (
            "params",
            "update a strategy's parameters: key=value...",
            "mlthon params dip min_spread_ticks=3",
        ),
    ):
        p = _sub(sub, name, helptext, helptext[0].upper() + helptext[1:] + ".", example)
        p.add_argument("strat", help="strategy name")
        if name == "cmd":
            p.add_argument("name", help="command name (a hook, start, stop, status...)")
            p.add_argument("args", nargs="*", help="command arguments")
        else:
            p.add_argument("args", nargs="*", metavar="key=value", help="the parameters to set")
        p.add_argument(
            "--timeout",
            type=cli_number(0, 3600),
            default=30.0,
            help="seconds to wait for the answer (default 30)",
        )
        p.add_argument("--json", action="store_true", help="print the answer as JSON")
        add_bus_args(p)
        if name == "cmd":
            p.set_defaults(func=lambda a: _cmd_send(a, a.name, a.args))
        else:
            p.set_defaults(func=lambda a: _cmd_send(a, "params", a.args))

    p = _sub(
        sub,
        "broker",
        "start a local mosquitto configured for mlthon",
        "Start a local mosquitto on 127.0.0.1, configured for mlthon; Ctrl-C stops it.",
        "mlthon broker --port 1883",
    )
    p.add_argument(
        "--port", type=int, default=1883, help="port to listen on, 127.0.0.1 (default 1883)"
    )
    p.set_defaults(func=_cmd_broker)

    for name, (_mod, _fn, helptext) in _DELEGATED.items():
        p = sub.add_parser(name, help=helptext, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(delegated=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    The logging levels it sets for the command are put back when it returns, so that a caller
    in the same process (a test, a notebook) keeps its own."""
    loggers = [logging.getLogger(), logging.getLogger("mlthon.infra.bus")]
    levels = [lg.level for lg in loggers]
    env_level = os.environ.get(LOG_LEVEL_ENV)
    try:
        return _main(argv)
    finally:
        for lg, lvl in zip(loggers, levels, strict=True):
            lg.setLevel(lvl)
        if env_level is None:
            os.environ.pop(LOG_LEVEL_ENV, None)
        else:
            os.environ[LOG_LEVEL_ENV] = env_level


def _main(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = [*_DELEGATED, "control", "strategy", "cmd", "params", "broker"]
    global_words, words = split_global_options(words, commands)
    g = _global_options().parse_args(global_words)
    a, unknown = parser.parse_known_args(words)
    level = log_level_of(a.command, g.log_level, g.quiet)
    setup_logging(level)
    if g.log_level or g.quiet:
        os.environ[LOG_LEVEL_ENV] = level  # the processes this one starts log alike
    elif a.command in CLIENTS:
        # A client says itself why the broker cannot be reached: not after a retry log per try.
        logging.getLogger("mlthon.infra.bus").setLevel(logging.ERROR)
    if getattr(a, "delegated", None):
        mod_name, fn_name, _ = _DELEGATED[a.delegated]
        try:
            fn: Callable[[list[str]], int] = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as exc:
            print(f"mlthon {a.delegated}: not available in this build ({exc})", file=sys.stderr)
            return 2
        rest = words[words.index(a.delegated) + 1 :]
        try:
            return fn(rest)
        except MlthonError as exc:
            print(f"mlthon {a.delegated}: {exc}", file=sys.stderr)
            return 2
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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
