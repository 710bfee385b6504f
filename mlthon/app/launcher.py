"""``mlthon run <strategy.toml>``: paper trading, each part in its own process.

Started in this order, each waiting for the previous to be up:

1. an MQTT broker: the configured one if it answers, else a mosquitto started here (its config
   turns Nagle off), on a free port when the configured one is taken; without mosquitto, the
   embedded amqtt broker of the ``broker`` extra (``--broker`` chooses: ``auto``, ``mosquitto``,
   ``embedded``; see :mod:`mlthon.infra.embedded_broker`);
2. ``mlthon control`` (logins, commands), ``mlthon gateway`` (the simulated exchange),
   ``mlthon feed`` (synthetic market, or the ``[backtest] data`` recordings replayed at recorded
   speed), ``mlthon telegram`` when a ``[telegram]`` config is given;
3. ``mlthon strategy`` last, once the gateway's and the feed's retained statuses say they are up
   (``ReadyToTrade``, streaming), and the Telegram bridge's when there is one (so that an alert
   of the strategy's first second is heard); if they do not within ``[run] ready_timeout_s``
   (60 s) the run stops with an error naming what is missing.

A part that dies is started again (:mod:`mlthon.app.supervisor`): capped exponential back-off
with jitter, a policy per part (``[run] restart = { gateway = "restart", ... }`` or ``"stop"``:
stop the run), and at most ``[run] max_restarts`` restarts within ``restart_window_s`` (then the
run stops with an error). The strategy hears of it through its gateway / feed status callbacks;
``mlthon status`` shows each part's restarts. A part that exits with code 0 (a replay at its end,
``mlthon kill``) stops the run, as before.

The control service keeps what the operator last asked of the strategy (``mlthon cmd <s>
stop`` / ``start``) in ``<journal>.control-state.json`` beside the journal when there is one,
else in the run's temporary folder: a stopped strategy stays stopped across restarts of any part.

Ctrl-C (or SIGTERM) stops them in reverse: the strategy first (``on_stop`` -> ``send_stop_ack``,
or the cancel-all escalation), then the feed, the gateway (it cancels what is left), control, the
broker. Every child is reaped; one that does not exit in time is killed; a part waiting to be
restarted is not started again.

``--single-process`` runs the same parts as tasks of one process on the in-process bus.

Reliability (``docs/reliability.md``): ``--journal PATH`` (or ``[sim] journal``) gives the
gateway an order journal that survives restarts. ``--secure`` starts the broker with a password
file and ACLs and no anonymous access: every process it starts (control, gateway, feed, Telegram
bridge, strategy) logs in as its own user (``mlthon-admin``, ``gtw-<EX>``, ``feed-<EX>``,
``tg-<client_id>``, ``strat-<name>``) with a generated password written to a file only the user
can read (mode 600, in the run's private folder, removed when the run ends), whose path the child
gets in ``MLTHON_BUS_PASSWORD_FILE`` (the simulated gateway in its config's ``[bus]
password_file``) and its user in ``MLTHON_BUS_USERNAME``: the password is never in a child's
environment (``/proc/<pid>/environ``), on a command line or in a log. The admin's password is the
operator's own when the launcher's environment gives one (``MLTHON_BUS_PASSWORD`` or
``MLTHON_BUS_PASSWORD_FILE``), else generated; the launcher prints where its file is, for
``mlthon status --password-file`` and the other CLI clients.

``--host``, ``--port`` and ``--root`` replace the strategy file's ``[bus]`` table (the broker the
run uses or starts, and its topic root); ``--web [HOST:]PORT`` has the control service serve the
status page and ``/metrics`` there (:class:`~mlthon.infra.ops.web.StatusWeb`, as ``mlthon control
--web``; in ``--single-process`` too).

Runtime modes: ``paper`` is what this runs. A strategy file in mode ``live`` or
``live-testnet`` is refused with a message naming the processes that trade live: this build
has live gateways and feeds for Binance USD-M and Bybit v5 (``docs/exchanges.md``), run as
``mlthon control``, ``mlthon gateway``, ``mlthon feed`` and ``mlthon strategy``, not by this
launcher.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlthon.app.cli import add_override_options, load_with_overrides
from mlthon.app.readiness import VenueReadiness
from mlthon.app.supervisor import Supervisor
from mlthon.basics.errors import ConfigError, MlthonError
from mlthon.basics.mlt_enum import Exchange, RuntimeMode
from mlthon.infra.broker import MosquittoBroker, find_mosquitto, free_port
from mlthon.infra.clock import LiveClock
from mlthon.infra.config import StrategyConfig
from mlthon.infra.config_schema import cli_number
from mlthon.infra.embedded_broker import INSTALL_HINT as EMBEDDED_INSTALL_HINT
from mlthon.infra.embedded_broker import EmbeddedBroker, embedded_broker_available
from mlthon.infra.loop import run_process
from mlthon.infra.ops.wiring import RESTARTS_ENV, Stats
from mlthon.infra.risk.limits import load_desk_file
from mlthon.infra.security import (
    ADMIN_USER,
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    USERNAME_ENV,
    acl_text,
    feed_user,
    gateway_user,
    read_secret,
    strategy_user,
    telegram_user,
    unique_client_id,
    write_secret_file,
)

if TYPE_CHECKING:
    from mlthon.infra.bus.inproc import InProcBus
    from mlthon.infra.clock import LiveScheduler
    from mlthon.infra.control import ControlService

log = logging.getLogger(__name__)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return _toml_value(str(v))


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    """A small TOML writer for the generated configs (tables of scalars, lists, inline maps)."""
    out = []
    for name, table in tables.items():
        if name:
            out.append(f"[{name}]")
        # Nested tables are written as inline maps.
        out.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        out.append("")
    return "\n".join(out)


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.3):
        return True
    return False


def _check_mode(cfg: StrategyConfig) -> None:
    if cfg.mode in (RuntimeMode.Live, RuntimeMode.LiveTestnet):
        raise ConfigError(
            f"`mlthon run` paper-trades on the simulated exchange; mode {cfg.mode.name} is not "
            "started by it yet. To trade live, run `mlthon control`, `mlthon gateway --config "
            'live.toml` (with [gateway] environment = "Testnet" or "Mainnet"), `mlthon '
            'feed` with [source] kind = "live" and `mlthon strategy` (docs/exchanges.md); '
            'or set mode = "paper"',
            source=cfg.source,
            key="strategy.mode",
        )


def _exchange_of(cfg: StrategyConfig) -> Any:
    exchanges = sorted({i.exchange for i in cfg.instruments()}, key=lambda e: e.value)
    if len(exchanges) != 1:
        raise ConfigError(
            "`mlthon run` serves strategies on one exchange for now; got "
            + ", ".join(e.name for e in exchanges),
            source=cfg.source,
        )
    return exchanges[0]


def journal_path(cfg: StrategyConfig, override: str | None) -> str | None:
    """The gateway's journal: ``--journal``, else ``[sim] journal`` (relative to the file)."""
    value = override or cfg.raw.get("sim", {}).get("journal")
    if not value:
        return None
    path = Path(str(value))
    if not path.is_absolute():
        path = (Path(cfg.source).parent if override is None else Path.cwd()) / path
    return str(path.resolve())


def write_configs(
    cfg: StrategyConfig,
    workdir: Path,
    port: int,
    data: list[str],
    speed: float,
    *,
    journal: str | None = None,
    bus_user: str | None = None,
    bus_password_file: Path | None = None,
) -> dict[str, Path]:
    """The generated gateway, feed and strategy configs for one run.

    Args:
        cfg: the strategy's config.
        workdir: where to write them.
        port: the broker's port.
        data: recordings to replay (empty: a synthetic market).
        speed: replay speed.
        journal: the gateway's order journal (None: none).
        bus_user: the gateway's broker user (secure brokers).
        bus_password_file: the file holding its password (secure brokers).
    """
    insts = cfg.instruments()
    ex = _exchange_of(cfg)
    ids = [i.instrument_id for i in insts]
    root = cfg.bus.root
    inst_file = cfg.instruments_file
    sim = dict(cfg.raw.get("sim", {}))
    gw: dict[str, dict[str, Any]] = {
        "gateway": {
            "exchange": ex.name,
            "instruments": ids,
            "root": root,
            **({"instruments_file": inst_file} if inst_file else {}),
            **({"journal": journal} if journal else {}),
        },
        "bus": {
            "host": "127.0.0.1",
            "port": port,
            **({"username": bus_user} if bus_user else {}),
            **({"password_file": str(bus_password_file)} if bus_password_file else {}),
        },
    }
    # Nested tables (latency.entry) are written as inline maps. A [sim.gateway] or [sim.bus]
    # table adds its keys (connect_delay, request_ttl_ms...) to the run's own, which win.
    for section, table in sim.items():
        if isinstance(table, dict):
            gw[section] = {**table, **gw.get(section, {})}
    feed_source: dict[str, Any] = (
        {"kind": "replay", "files": [str(Path(p).resolve()) for p in data]}
        if data
        else {
            "kind": "synthetic",
            "seed": cfg.backtest.synthetic_seed,
            "duration_s": 7 * 24 * 3600.0,
        }
    )
    feed: dict[str, dict[str, Any]] = {
        "": {
            "exchange": ex.name,
            "instrument_ids": ids,
            "speed": speed,
            **({"instruments_file": inst_file} if inst_file else {}),
        },
        "source": feed_source,
        "bus": {"host": "127.0.0.1", "port": port, "topic_root": root},
    }
    paths = {"gateway": workdir / "gateway.toml", "feed": workdir / "feed.toml"}
    paths["gateway"].write_text(_toml(gw))
    paths["feed"].write_text(_toml(feed))
    return paths


def _broker_kind(wanted: str, secure: bool, host: str, port: int) -> str:
    """Which broker to start (``mosquitto`` or ``embedded``) for ``--broker wanted``.

    Raises:
        ConfigError: the one asked for (or any, for ``auto``) cannot be started here.
    """
    have_mosquitto = find_mosquitto() is not None
    if wanted not in ("auto", "mosquitto", "embedded"):
        raise ConfigError(f"--broker must be auto, mosquitto or embedded, not {wanted!r}")
    if secure and (wanted == "embedded" or not have_mosquitto):
        raise ConfigError(
            "--secure needs mosquitto (password file, ACLs, TLS); the embedded broker has none: "
            "apt-get install -y mosquitto"
        )
    if wanted == "mosquitto" or (wanted == "auto" and have_mosquitto):
        if not have_mosquitto:
            raise ConfigError("mosquitto is not installed: apt-get install -y mosquitto")
        return "mosquitto"
    if not embedded_broker_available():
        raise ConfigError(
            f"no MQTT broker answers on {host}:{port}, mosquitto is not installed "
            f"(apt-get install -y mosquitto) and neither is the embedded broker "
            f"({EMBEDDED_INSTALL_HINT}); or use --single-process"
        )
    return "embedded"


def _mosquitto(
    port: int,
    secure: bool,
    passwords: dict[str, str],
    cfg: StrategyConfig,
    ex: Exchange,
    tg_client: str | None,
) -> MosquittoBroker:
    """The mosquitto broker of a run: with users and ACLs when ``secure``."""
    if not secure:
        return MosquittoBroker(port, with_parent=True)
    acl = acl_text(
        cfg.bus.root,
        [cfg.name],
        [ex.name],
        feeds=[ex.name],
        telegrams=[tg_client] if tg_client is not None else [],
    )
    return MosquittoBroker(port, secure=True, users=passwords, acl=acl, with_parent=True)


async def run_processes(
    cfg: StrategyConfig,
    *,
    data: list[str],
    speed: float,
    stop: asyncio.Event,
    telegram: str | None = None,
    ready: asyncio.Event | None = None,
    secure: bool = False,
    journal: str | None = None,
    broker_kind: str = "auto",
    web: tuple[str, int] | None = None,
    desk: str | None = None,
) -> int:
    """Run every part in its own process until ``stop``; returns the exit code.

    ``broker_kind`` chooses the broker started when none answers: ``auto`` (mosquitto if
    installed, else the embedded amqtt broker), ``mosquitto`` or ``embedded``. ``web``
    (host, port) has the control service serve the status page there.

    Raises:
        ConfigError: no broker can be started, or ``secure`` with a broker already running or
            without mosquitto.
    """
    _check_mode(cfg)
    broker: MosquittoBroker | EmbeddedBroker | None = None
    host, port = cfg.bus.host, cfg.bus.port
    ex = _exchange_of(cfg)
    tg_client = _telegram_client_id(telegram) if telegram and secure else None
    users = [ADMIN_USER, strategy_user(cfg.name), gateway_user(ex.name), feed_user(ex.name)]
    if tg_client is not None:
        users.append(telegram_user(tg_client))
    passwords = {name: secrets.token_urlsafe(24) for name in users}
    # The operator's own admin password, if given, so that their shell's `mlthon status` works.
    own = read_secret(env=PASSWORD_ENV) if secure else None
    if own is not None:
        passwords[ADMIN_USER] = own.reveal()
    if not (host in ("127.0.0.1", "localhost") and _port_open(host, port)):
        kind = _broker_kind(broker_kind, secure, host, port)
        broker_port = port if not _port_open("127.0.0.1", port) else free_port()
        if kind == "embedded":
            broker = EmbeddedBroker(broker_port)
            print(
                "mlthon run: mosquitto not used; the embedded amqtt broker serves "
                f"127.0.0.1:{broker_port}",
                file=sys.stderr,
            )
        else:
            broker = _mosquitto(broker_port, secure, passwords, cfg, ex, tg_client)
        broker.start()
        host, port = broker.host, broker.port
    elif secure:
        raise ConfigError(
            f"--secure configures the broker it starts, but one already answers on {host}:{port}"
        )
    supervisor = Supervisor(cfg.run)
    startup_error = ""
    # The run's private folder (mode 700): generated configs, the password files.
    with tempfile.TemporaryDirectory(prefix="mlthon-run-") as tmp:
        work = Path(tmp)
        secret_files = _write_passwords(work, passwords) if secure else {}
        journal_file = journal_path(cfg, journal)
        paths = write_configs(
            cfg,
            work,
            port,
            data,
            speed,
            journal=journal_file,
            bus_user=gateway_user(ex.name) if secure else None,
            bus_password_file=secret_files.get(gateway_user(ex.name)),
        )
        strat_cfg = work / "strategy.toml"
        # The strategy's own file (with the command line's settings) and the bus of this run.
        strat_cfg.write_text(_with_bus(port, cfg, Path(cfg.source).parent))
        bus_args = ["--port", str(port), "--root", cfg.bus.root]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(cfg.source).resolve().parent), os.getcwd(), env.get("PYTHONPATH", "")]
        )
        for var in (PASSWORD_ENV, PASSWORD_FILE_ENV, USERNAME_ENV, RESTARTS_ENV):
            env.pop(var, None)

        def env_of(user: str) -> dict[str, str]:
            """The child's environment: its own broker user and the path of its password file
            (never the password) when secure."""
            if not secure:
                return env
            return {**env, USERNAME_ENV: user, PASSWORD_FILE_ENV: str(secret_files[user])}

        if secure:
            print(
                f"mlthon run: secured broker on 127.0.0.1:{port}; the admin ({ADMIN_USER}) "
                f"password is in {secret_files[ADMIN_USER]} (removed when the run ends): "
                f"mlthon status --port {port} --root {cfg.bus.root} --password-file "
                f"{secret_files[ADMIN_USER]}",
                flush=True,
            )

        state = control_state_path(journal_file, work)
        try:
            since_ns = LiveClock().now_ns()
            await supervisor.start(
                "control",
                [
                    *("control", "--strategy", str(strat_cfg), *bus_args, "--state", str(state)),
                    *(("--web", f"{web[0]}:{web[1]}") if web is not None else ()),
                    *(("--desk", desk) if desk else ()),
                ],
                env_of(ADMIN_USER),
                stop_timeout_s=10,
            )
            await supervisor.start(
                "gateway",
                ["gateway", "--config", str(paths["gateway"])],
                env_of(gateway_user(ex.name)),
                stop_timeout_s=10,
            )
            await supervisor.start(
                "feed",
                ["feed", "--config", str(paths["feed"])],
                env_of(feed_user(ex.name)),
                stop_timeout_s=10,
            )
            if telegram:
                await supervisor.start(
                    "telegram",
                    [
                        *("telegram", "--config", telegram),
                        *("--host", "127.0.0.1", "--port", str(port)),
                    ],
                    env_of(telegram_user(tg_client)) if tg_client else env,
                    stop_timeout_s=10,
                )
            startup_error = await _wait_venue_up(
                cfg,
                ex,
                port,
                since_ns,
                stop,
                supervisor,
                admin_password=passwords[ADMIN_USER] if secure else None,
                telegram=_telegram_client_id(telegram) if telegram else None,
            )
            # (A Ctrl-C or a part ending the run during the wait: no strategy to start.)
            if not (startup_error or stop.is_set() or supervisor.ended.is_set()):
                await supervisor.start(
                    "strategy",
                    ["strategy", str(strat_cfg)],
                    env_of(strategy_user(cfg.name)),
                    stop_timeout_s=cfg.stop_ack_timeout_s + 5,
                )
                if ready is not None:
                    ready.set()
                print(
                    f"mlthon run: {cfg.name} paper trading; broker 127.0.0.1:{port}; "
                    f"operator's start/stop kept in {state}; Ctrl-C to stop",
                    flush=True,
                )
                await _first(stop.wait(), supervisor.ended.wait())
        finally:
            # Ctrl-C, a part that ended the run, or a failed start: everything stops, in the
            # reverse order of the start (the strategy first; a restart in progress is dropped).
            await supervisor.stop_all()
            if broker is not None:
                broker.stop()
    if startup_error:
        print(f"mlthon run: {startup_error}", file=sys.stderr, flush=True)
        return 1
    if supervisor.failed:
        print(f"mlthon run: {supervisor.reason}", file=sys.stderr, flush=True)
        return 1
    bad = [n for n, rc in supervisor.returncodes().items() if rc not in (0, -signal.SIGTERM)]
    return 1 if bad else 0


def _write_passwords(workdir: Path, passwords: dict[str, str]) -> dict[str, Path]:
    """One file per broker user, readable by the user running mlthon only (mode 600, in the
    run's private folder, which is removed when the run ends); returns user -> file."""
    folder = workdir / "secrets"
    folder.mkdir(mode=0o700)
    return {user: write_secret_file(folder / user, pw) for user, pw in passwords.items()}


def control_state_path(journal: str | None, workdir: Path) -> Path:
    """Where the run's control service keeps the operator's start/stop of the strategy: beside
    the journal when there is one (``sim.db`` -> ``sim.control-state.json``: a run started
    again on the same journal keeps a strategy the operator stopped stopped), else in the run's
    folder (kept while the run lasts, across restarts of the control service)."""
    if journal:
        j = Path(journal)
        return j.with_name(f"{j.stem}.control-state.json")
    return workdir / "control-state.json"


async def _first(*aws: Any) -> None:
    """Wait for the first of ``aws`` to finish; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def _wait_venue_up(
    cfg: StrategyConfig,
    ex: Exchange,
    port: int,
    since_ns: int,
    stop: asyncio.Event,
    supervisor: Supervisor,
    *,
    admin_password: str | None,
    telegram: str | None = None,
) -> str:
    """Wait (``[run] ready_timeout_s``) until the gateway and the feed say they are up, and the
    Telegram bridge (client id ``telegram``) if the run has one; returns "" or why the strategy
    cannot be started."""
    from mlthon.infra.bus.mqtt import MqttBus
    from mlthon.infra.bus.topics import Topics

    timeout_s = cfg.run.ready_timeout_s
    give_up = asyncio.Event()
    watcher = asyncio.ensure_future(_first(stop.wait(), supervisor.ended.wait()))
    watcher.add_done_callback(lambda _f: give_up.set())
    try:
        async with MqttBus(
            "127.0.0.1",
            port,
            client_id=unique_client_id("mlthon-run"),
            username=ADMIN_USER if admin_password else None,
            password=admin_password,
        ) as bus:
            try:
                await bus.wait_connected(timeout_s)
            except TimeoutError:
                return f"the launcher found no broker on 127.0.0.1:{port} in {timeout_s:g}s"
            readiness = VenueReadiness(bus, Topics(cfg.bus.root), ex, since_ns, telegram)
            missing = await readiness.wait(timeout_s, give_up=give_up)
            readiness.close()
    finally:
        watcher.cancel()
    if stop.is_set() or supervisor.ended.is_set() or not missing:
        return ""
    return (
        f"not starting {cfg.name}: after {timeout_s:g}s ([run] ready_timeout_s), "
        + "; ".join(missing)
        + " (see its log above)"
    )


def _with_bus(port: int, cfg: StrategyConfig, base: Path) -> str:
    """The strategy file as read (the command line's settings applied) with its [bus] table
    replaced, the command line's parameters and instruments, and relative paths made absolute."""
    data = copy.deepcopy(cfg.raw)
    data["bus"] = {"host": "127.0.0.1", "port": port, "root": cfg.bus.root}
    data["params"] = dict(cfg.params)
    inst = data.setdefault("instruments", {})
    if cfg.instrument_ids:
        inst["use"] = list(cfg.instrument_ids)
    if inst.get("file") and not Path(inst["file"]).is_absolute():
        inst["file"] = str((base / inst["file"]).resolve())
    out = []
    for name, table in data.items():
        if isinstance(table, dict):
            out.append(f"[{name}]")
            for k, v in table.items():
                out.append(f"{k} = {_toml_value(v)}")
            out.append("")
    return "\n".join(out)


async def run_single_process(
    cfg: StrategyConfig,
    *,
    data: list[str],
    speed: float,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    bus: InProcBus | None = None,
    scheduler: LiveScheduler | None = None,
    web: tuple[str, int] | None = None,
    desk: str | None = None,
) -> str:
    """Every part in this process, on the in-process bus and the wall clock.

    Each part heartbeats on ``{root}/status/{kind}/{name}`` of that bus, as its own process
    would. ``bus`` and its ``scheduler`` (default: new ones) let a caller watch them. ``web``
    (host, port) serves the status page of that bus there, as the control service does.
    """
    _check_mode(cfg)
    from mlthon.app.cli import sim_config
    from mlthon.feeds.handler import run_feed
    from mlthon.feeds.heartbeat import DEFAULT_HEARTBEAT_S
    from mlthon.gateways.sim.gateway import SimGateway
    from mlthon.infra.bus.inproc import InProcBus
    from mlthon.infra.bus.topics import Topics
    from mlthon.infra.clock import LiveClock, LiveScheduler
    from mlthon.infra.control import ControlService
    from mlthon.infra.ops.heartbeat import DEGRADED
    from mlthon.infra.ops.wiring import ProcessOps, follow_venue_status
    from mlthon.infra.runner import run_strategy

    sched = scheduler or LiveScheduler()
    bus = bus or InProcBus(sched)
    topics = Topics(cfg.bus.root)
    insts = cfg.instruments()
    control = ControlService(
        bus,
        sched,
        topics,
        [cfg],
        desk_risk=load_desk_file(desk) if desk else None,
        desk_source=desk or "",
    )
    control.start()
    exchanges = sorted({i.exchange for i in insts}, key=lambda e: e.value)
    # ops: the heartbeats each process would send (the strategy's come from run_strategy)
    parts = [
        ProcessOps(
            bus, sched, topics, kind="control", name="control", stats=lambda: ops_stats(control)
        )
    ]
    parts[0].start()
    for ex in exchanges:
        for kind in ("gateway", "feed"):
            part = ProcessOps(bus, sched, topics, kind=kind, name=ex.name)
            part.start(DEGRADED, "starting")
            follow_venue_status(part, bus, topics, kind, ex)
            parts.append(part)
    gw_cfg = sim_config(cfg)
    gateways = []
    for ex in exchanges:
        import attrs

        gw = SimGateway(
            bus, sched, topics, attrs.evolve(gw_cfg, exchange=ex, instrument_ids=()), insts
        )
        gw.start()
        gateways.append(gw)
    if data:
        from mlthon.feeds.replay import replay_files

        source: Any = replay_files([Path(p) for p in data], insts)
    else:
        from mlthon.app.cli import _synthetic

        source = _synthetic(cfg, 7 * 24 * 3600.0, cfg.backtest.synthetic_seed)
        # A live synthetic market starts now, not at its fixed epoch.
        source = _shift_to_now(source)
    feed_stop = asyncio.Event()
    strat_stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
        if web is not None:
            await _serve_web(stack, bus, sched, topics, web)
        strat_task = tg.create_task(
            run_strategy(cfg, strat_stop, bus=bus, scheduler=sched), name=f"strategy[{cfg.name}]"
        )
        feed_task = tg.create_task(
            run_feed(
                bus,
                topics,
                source,
                speed=speed,
                stop=feed_stop,
                clock=LiveClock(),
                heartbeat_s=DEFAULT_HEARTBEAT_S["replay" if data else "synthetic"],
            ),
            name="feed",
        )
        if ready is not None:
            ready.set()
        print(f"mlthon run --single-process: {cfg.name} paper trading; Ctrl-C to stop", flush=True)
        await stop.wait()
        strat_stop.set()
        outcome = await strat_task
        feed_stop.set()
        await feed_task
        for gw in gateways:
            gw.stop()
        control.stop()
        for part in reversed(parts):
            part.close()
    return outcome


async def _serve_web(
    stack: contextlib.AsyncExitStack,
    bus: InProcBus,
    sched: LiveScheduler,
    topics: Any,
    web: tuple[str, int],
) -> None:
    """The status page and ``/metrics`` of the in-process bus on ``web`` (host, port), until
    ``stack`` closes; its actions need ``$MLTHON_OPS_TOKEN``, as with ``mlthon control``."""
    from mlthon.infra.ops.board import StatusBoard
    from mlthon.infra.ops.web import StatusWeb

    board = StatusBoard(bus, sched, topics)
    board.start()
    stack.callback(board.stop)
    page = StatusWeb(
        board, host=web[0], port=web[1], token=os.environ.get("MLTHON_OPS_TOKEN") or None
    )
    await stack.enter_async_context(page)
    print(f"mlthon run: status page on http://{web[0]}:{page.port}/", flush=True)


def ops_stats(control: ControlService) -> Stats:
    """The control service's heartbeat figures: each strategy's state."""
    return Stats(extra={"strategies": {n: st.state for n, st in control.strats.items()}})


def _shift_to_now(source: Any) -> Any:
    import time

    first = None
    offset = 0
    for msg in source:
        if first is None:
            first = msg.ts
            offset = time.time_ns() - first
        yield _with_ts(msg, msg.ts + offset)


def _with_ts(msg: Any, ts: int) -> Any:
    import msgspec

    return msgspec.structs.replace(msg, ts=ts)


def _telegram_client_id(path: str) -> str:
    """The bus client id of the Telegram bridge configured by ``path`` (its broker user's name).

    Raises:
        ConfigError: the config does not load.
    """
    from mlthon.infra.telegram.config import load_config

    return load_config(path).client_id


def _telegram_config(cfg: StrategyConfig) -> str | None:
    """The Telegram bridge config that `mlthon run` starts when a token is configured: the
    strategy file's ``[telegram] config = "telegram.toml"`` (relative to it), else
    ``$MLTHON_TELEGRAM_CONFIG``."""
    if cfg.telegram_config:
        return str(Path(cfg.telegram_config).resolve())
    return os.environ.get("MLTHON_TELEGRAM_CONFIG") or None


def run_main(argv: list[str]) -> int:
    """Entry point of ``mlthon run``."""
    from mlthon.cli import add_web_arg, with_bus
    from mlthon.infra.security import add_bus_args, export_login

    p = argparse.ArgumentParser(
        prog="mlthon run",
        description="Paper trading: the broker, control service, simulated exchange, feed and "
        "strategy, each in its own process (or all in one with --single-process).",
        epilog="example:\n  mlthon run dip.toml --web 8787\n"
        "  mlthon run dip.toml --single-process --data rec.gz --speed 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="the strategy's TOML config")
    p.add_argument(
        "--single-process",
        action="store_true",
        help="all parts in this process on the in-process bus",
    )
    p.add_argument(
        "--data",
        nargs="*",
        default=None,
        help="recordings to replay at recorded speed (default: [backtest].data, else "
        "a synthetic market)",
    )
    p.add_argument(
        "--speed",
        type=cli_number(0, 1e6),
        default=1.0,
        help="replay speed: 1 = recorded speed, 10 = ten times faster",
    )
    p.add_argument(
        "--telegram",
        default=None,
        help="a telegram.toml to start the bridge with (default: [telegram] config of the "
        "strategy file, else $MLTHON_TELEGRAM_CONFIG; none: no bridge)",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="start the broker with a password file and ACLs (docs/reliability.md)",
    )
    p.add_argument(
        "--journal",
        default=None,
        help="the gateway's order journal (SQLite file); state survives gateway restarts",
    )
    p.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="the broker to start when none answers: mosquitto if installed, else the embedded "
        "amqtt broker (pip install 'mlthon[broker]') (default auto)",
    )
    p.add_argument(
        "--desk",
        default=None,
        metavar="TOML",
        help="a desk file whose [risk] table gives every strategy's default limits "
        "(docs/risk.md); the strategy's own [risk] keys win",
    )
    add_web_arg(p)
    add_override_options(p)
    add_bus_args(p, overrides=True)
    a = p.parse_args(argv)
    export_login(a)
    cfg = with_bus(load_with_overrides(a), a)
    desk = str(Path(a.desk).resolve()) if a.desk else None
    if desk:
        load_desk_file(desk)  # a bad desk file stops the run before anything starts
    telegram = a.telegram or _telegram_config(cfg)
    data = a.data if a.data is not None else [str(Path(d).resolve()) for d in cfg.backtest.data]

    async def main() -> int:
        from mlthon.infra.runner import install_signal_handlers

        stop = asyncio.Event()
        install_signal_handlers(stop)
        if a.single_process:
            outcome = await run_single_process(
                cfg, data=data, speed=a.speed, stop=stop, web=a.web, desk=desk
            )
            print(f"mlthon run: stopped ({outcome})")
            return 0
        rc = await run_processes(
            cfg,
            data=data,
            speed=a.speed,
            stop=stop,
            telegram=telegram,
            secure=a.secure,
            journal=a.journal,
            broker_kind=a.broker,
            web=a.web,
            desk=desk,
        )
        print("mlthon run: stopped; every process reaped")
        return rc

    try:
        return run_process(main())
    except MlthonError as exc:
        print(f"mlthon run: {exc}", file=sys.stderr)
        return 2
