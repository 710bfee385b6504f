"""Running the parts: a strategy, the control service, or all of them in one process.

Each ``run_*`` coroutine runs until its ``stop`` event is set (by a signal in the CLI, by the test
that started it), then shuts down cleanly:

* a strategy that is trading gets ``on_stop("shutdown")`` and has ``stop_ack_timeout_s`` to call
  ``send_stop_ack``; if it does not, cancel-all requests go to every exchange it may trade on
  (the escalation), and the fact is logged;
* background tasks are cancelled under a bounded timeout, the bus is closed last.

A strategy's MQTT session is persistent (``clean_session=False`` under the stable client id
``strat-<name>-<root>``): the broker keeps its subscriptions and queues the QoS 1 reports published
while it is away, and delivers them when it returns (``docs/reliability.md``); a second process
under that id is detected by the bus (takeover). The control service and the CLI clients keep no
session and connect under a unique id (``control-<pid>-<random>``), so two of them never knock
each other off; a second control service finding one already serving the topic root serves only
its status page (with ``--web``) or refuses to start. On a secured broker the strategy logs in as
``strat-<name>`` and the control service as ``mlthon-admin`` (or ``MLTHON_BUS_USERNAME``) with the
password of ``MLTHON_BUS_PASSWORD`` or of the file ``MLTHON_BUS_PASSWORD_FILE`` names, over TLS
if ``MLTHON_BUS_TLS_CA`` names a CA (:func:`mlthon.infra.security.bus_client_options`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlthon.api.istrategy import IStrategy
from mlthon.basics.errors import ConfigError
from mlthon.infra.accounting_check import AccountingChecker, Mismatch
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler, Scheduler
from mlthon.infra.config import StrategyConfig, load_strategy_class
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import RUNNING, STOPPED, STOPPING, StratEnv
from mlthon.infra.ops import wiring as ops  # ops (issue 7)
from mlthon.infra.ops.collect import connect_or_explain
from mlthon.infra.ops.heartbeat import DEGRADED, UP, component_will
from mlthon.infra.ops.metering import MeteredBus, TimedReactor
from mlthon.infra.reactor import Reactor
from mlthon.infra.risk.limits import load_desk_file
from mlthon.infra.security import (
    ADMIN_USER,
    bus_client_options,
    strategy_user,
    unique_client_id,
)
from mlthon.infra.strategy_params import param_rules

log = logging.getLogger(__name__)

#: How long a starting control service waits for the echo of its probe (the retained status of
#: another control service comes before it).
CONTROL_PROBE_S = 10.0


def strategy_bus(cfg: StrategyConfig, topics: Topics, *, persistent: bool = True) -> MqttBus:
    """The strategy's MQTT bus: a stable client id, a persistent session, its credentials."""
    root = re.sub(r"[^A-Za-z0-9_.-]", "_", topics.root)
    return MqttBus(
        cfg.bus.host,
        cfg.bus.port,
        client_id=f"strat-{cfg.name}-{root}",
        clean_session=not persistent,
        will=component_will(topics, "strategy", cfg.name),  # ops (issue 7)
        **bus_client_options(strategy_user(cfg.name)),
    )


def instantiate_strategy(
    cls: type, params: dict[str, Any], name: str, source: str = ""
) -> IStrategy:
    """Build a strategy: ``cls(params)`` if its ``__init__`` takes a parameter
    (``__init__(self, cfg)``), ``cls()`` otherwise; the convenience base's ``name`` (its login)
    becomes ``name``.

    Raises:
        ConfigError: ``cls`` is not an IStrategy, or its constructor fails.
    """
    if not (isinstance(cls, type) and issubclass(cls, IStrategy)):
        raise ConfigError(f"{cls!r} is not an IStrategy", source=source, key="strategy.class")
    try:
        required = [
            p
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        strat = cls(dict(params)) if required else cls()  # type: ignore[call-arg]
    except TypeError as exc:
        detail = str(exc)
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        if missing:
            detail = (
                f"it leaves {len(missing)} IStrategy callbacks unimplemented "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): derive it "
                "from mlthon.api.Strategy, whose callbacks do nothing, and override only those "
                "you use"
            )
        raise ConfigError(
            f"cannot construct {cls.__name__}: {detail}", source=source, key="strategy.class"
        ) from exc
    set_login_name(strat, name)
    return strat  # type: ignore[no-any-return]


def set_login_name(strat: IStrategy, name: str) -> None:
    """Make a convenience-base strategy log in as ``name``."""
    if isinstance(getattr(strat, "name", None), str):
        strat.name = name  # type: ignore[attr-defined]


def make_strategy(cfg: StrategyConfig) -> IStrategy:
    """Instantiate the strategy class of ``cfg`` (see :func:`instantiate_strategy`) with its
    parameters checked against the class's schema (:mod:`mlthon.infra.strategy_params`).

    Raises:
        ConfigError: the class cannot be imported, is not an IStrategy, its parameters do not
            fit its schema, or its constructor fails.
    """
    cls = load_strategy_class(cfg.class_path, cfg.source)
    params = param_rules(cls).check(cfg.params, cfg.source)
    return instantiate_strategy(cls, params, cfg.name, cfg.source)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (the injectable shutdown trigger)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def shutdown_strategy(env: StratEnv, cfg: StrategyConfig, bus: BusBase) -> str:
    """Stop a strategy before its process ends; returns how it ended (for logs and tests)."""
    if env.state not in (RUNNING, STOPPING):
        return "not running"
    stopped = asyncio.Event()
    env.state_listeners.append(lambda state: stopped.set() if state == STOPPED else None)
    if env.state == RUNNING:
        log.info("strategy %s: shutting down: on_stop", cfg.name)
        env.state = STOPPING
        env.reactor.invoke(env.strategy.on_stop, "shutdown")
    if env.stopped:
        stopped.set()
    try:
        async with asyncio.timeout(cfg.stop_ack_timeout_s):
            await stopped.wait()
    except TimeoutError:
        exchanges = sorted({i.exchange for i in env.get_instruments()}, key=lambda e: e.value)
        now = env.scheduler.now_ns()
        for ex in exchanges:
            bus.publish(
                env.topics.gtw_req(ex, cfg.name),
                m.CancelAll(strat=cfg.name, instrument_id=0, ts=now, escalation=True),
                qos=1,
            )
        log.error(
            "strategy %s: no stop ack within %.1fs; cancel-all sent to %s",
            cfg.name,
            cfg.stop_ack_timeout_s,
            ", ".join(e.name for e in exchanges) or "no exchange",
        )
        return "escalated"
    return "acknowledged"


async def run_strategy(
    cfg: StrategyConfig,
    stop: asyncio.Event,
    *,
    bus: BusBase | None = None,
    scheduler: Scheduler | None = None,
    strategy: IStrategy | None = None,
    on_env: Callable[[StratEnv], Any] | None = None,
) -> str:
    """Run one strategy over MQTT (or over ``bus``) until ``stop`` is set."""
    strategy = strategy or make_strategy(cfg)
    scheduler = scheduler or LiveScheduler()
    topics = Topics(cfg.bus.root)
    own_bus = bus is None
    the_bus: BusBase = bus or strategy_bus(cfg, topics)
    # ops (issue 7): the env's traffic and callbacks are counted and timed for the heartbeat.
    metered = MeteredBus(the_bus, scheduler.clock)
    reactor: Reactor = TimedReactor(
        scheduler,
        latency=metered.latency,
        name=f"strategy[{cfg.name}]",
        slow_callback_ms=cfg.slow_callback_ms,
    )
    outcome = "not running"
    async with contextlib.AsyncExitStack() as stack:
        if own_bus:
            await stack.enter_async_context(the_bus)
        env = StratEnv(
            strategy,
            metered,
            reactor,
            topics,
            # Daily callbacks at the strategy's wall time, never the host's (UTC by default).
            tz=cfg.timezone or "UTC",
            stale_cmd_s=cfg.stale_cmd_s,
            start_wait_s=cfg.start_wait_s,
            stop_ack_hold_s=cfg.stop_ack_hold_s,
            feed_silence_s=cfg.feed_silence_s or None,
            risk=cfg.risk,
        )
        checker = start_accounting(env, cfg)
        proc_ops = _strategy_ops(env, the_bus, metered, cfg, topics, stop)  # ops (issue 7)
        if on_env is not None:
            on_env(env)
        await stop.wait()
        outcome = await shutdown_strategy(env, cfg, the_bus)
        checker.close()
        env.close()
        proc_ops.close(f"stopped ({outcome})")  # ops (issue 7)
        if isinstance(the_bus, MqttBus):
            with contextlib.suppress(TimeoutError):
                await the_bus.flush(2.0)
        await reactor.cancel_tasks()
    log.info("strategy %s: stopped (%s)", cfg.name, outcome)
    return outcome


def start_accounting(env: StratEnv, cfg: StrategyConfig) -> AccountingChecker:
    """The accounting check of a strategy process (``docs/reliability.md`` §4).

    The env hands it every report after the strategy's callback and sends its position requests
    (their answers are not shown to the strategy); the gateways are asked every
    ``cfg.accounting_period_s``. A strategy with an ``accounting_positions()`` method (returning
    its own positions by ``(Exchange, instrument_id)``) is compared after every fill. A mismatch
    is logged at ERROR, sent to Telegram (priority 0) and put in the strategy's status.
    """
    view = getattr(env.strategy, "accounting_positions", None)

    def on_mismatch(mm: Mismatch) -> None:
        env.publish_status(
            f"ACCOUNTING MISMATCH on {mm.exchange.name} {mm.instrument_id}: {mm.source} says "
            f"{mm.actual}, the fills say {mm.expected}"
        )

    checker = AccountingChecker(
        env.bus,
        env.scheduler,
        env.topics,
        cfg.name,
        strategy_view=view if callable(view) else None,
        period_s=cfg.accounting_period_s,
        fetch_position=env.request_position,
        on_mismatch=on_mismatch,
        auto_baseline=True,
    )
    env.report_listeners.append(checker.on_report)
    checker.start(subscribe=False)
    return checker


def _strategy_ops(
    env: StratEnv,
    bus: BusBase,
    metered: MeteredBus,
    cfg: StrategyConfig,
    topics: Topics,
    stop: asyncio.Event,
) -> ops.ProcessOps:
    """ops (issue 7): heartbeat (up while running), positions, and ``mlthon kill``."""
    proc_ops = ops.ProcessOps(
        bus,
        env.scheduler,
        topics,
        kind="strategy",
        name=cfg.name,
        stop=stop,
        stats=ops.metered_stats(
            metered,
            extra=lambda: ops.strategy_extra(env),
            last_error=lambda: env.reactor.last_error,
        ),
    )

    def on_state(state: str) -> None:
        proc_ops.heartbeat.set_state(ops.UP if state == RUNNING else ops.DEGRADED, state)

    env.state_listeners.append(on_state)
    env.risk_listeners.append(lambda _state, _why: proc_ops.heartbeat.beat())
    proc_ops.start(ops.DEGRADED, env.state)
    return proc_ops


async def run_control(
    cfgs: list[StrategyConfig],
    stop: asyncio.Event,
    *,
    host: str,
    port: int,
    root: str,
    bus: BusBase | None = None,
    web_port: int | None = None,
    web_host: str = "127.0.0.1",
    web_token: str | None = None,
    state_path: str | Path | None = None,
    desk_path: str | None = None,
) -> None:
    """Run the control service until ``stop`` is set.

    With ``web_port`` (0: any free port) it also serves the status page and ``/metrics``
    (:class:`~mlthon.infra.ops.web.StatusWeb`); ``web_token`` unlocks its actions.
    ``state_path`` keeps what the operator last asked of each strategy (running or stopped)
    across restarts (None: memory only; see :mod:`mlthon.infra.operator_intent`).
    ``desk_path``: a desk file whose ``[risk]`` table every strategy gets at login, the defaults
    under its own limits (``docs/risk.md``).

    Over MQTT (no ``bus`` given) it connects under a unique client id and first looks for
    another control service serving ``root`` (its retained status; :func:`_other_control`): if
    one is up (a live process), this one serves only the status page when ``web_port`` is given
    (logins and commands stay with the other), and refuses otherwise.

    Raises:
        ConfigError: ``state_path`` exists but is not an intent file; the desk file is not
            valid; another control service serves ``root`` and no ``web_port`` is given.
    """
    scheduler = LiveScheduler()
    topics = Topics(root)
    desk = load_desk_file(desk_path) if desk_path else None
    web_only = False
    options: dict[str, Any] = {}
    if bus is None:
        options = bus_client_options(ADMIN_USER)
        # A short first connection looks for another control service (no will: it is not one).
        async with MqttBus(host, port, client_id=unique_client_id("control-probe"), **options) as b:
            other = await _other_control(b, topics, CONTROL_PROBE_S)
        if other is not None:
            where = f"pid {other.pid} on {other.host}"
            if web_port is None:
                raise ConfigError(
                    f"another control service serves topic root {root!r} on {host}:{port} "
                    f"({where}); stop it first, or give --web PORT to serve only the status "
                    "page beside it"
                )
            log.warning(
                "control: another control service serves %r (%s): this one serves only the "
                "status page",
                root,
                where,
            )
            web_only = True
    the_bus: BusBase = bus or MqttBus(
        host,
        port,
        client_id=unique_client_id("control-web" if web_only else "control"),
        # The page alone is no control service: its loss says nothing about the one serving.
        will=None if web_only else component_will(topics, "control", "control"),
        **options,
    )
    async with contextlib.AsyncExitStack() as stack:
        if bus is None:
            await stack.enter_async_context(the_bus)
        if web_only and web_port is not None:
            await _serve_web_only(
                the_bus, scheduler, topics, stop, stack, web_host, web_port, web_token
            )
            return
        control = ControlService(
            the_bus,
            scheduler,
            topics,
            cfgs,
            state_path=state_path,
            desk_risk=desk,
            desk_source=desk_path or "",
        )
        control.start()
        # ops (issue 7): heartbeat, `mlthon kill`, the status board and the web page.
        proc_ops = ops.ProcessOps(
            the_bus,
            scheduler,
            topics,
            kind="control",
            name="control",
            stop=stop,
            stats=lambda: ops.Stats(
                extra={"strategies": {n: st.state for n, st in control.strats.items()}}
            ),
        )
        proc_ops.start()
        if web_port is not None:
            from mlthon.infra.ops.board import StatusBoard
            from mlthon.infra.ops.web import StatusWeb

            board = StatusBoard(the_bus, scheduler, topics)
            board.start()
            stack.callback(board.stop, unsubscribe=False)  # the bus closes next
            await stack.enter_async_context(
                StatusWeb(board, host=web_host, port=web_port, token=web_token)
            )
        await stop.wait()
        proc_ops.close()
        control.stop()
        if isinstance(the_bus, MqttBus):
            with contextlib.suppress(TimeoutError):
                await the_bus.flush(2.0)


async def _other_control(
    bus: BusBase, topics: Topics, timeout_s: float
) -> m.ComponentStatus | None:
    """The retained status of another control service that is up, if there is one (a process
    of this host that no longer exists does not count).

    The broker sends the retained status right after the subscription, and before the echo of a
    message this process publishes after subscribing (one connection's packets are handled in
    order): the echo of a probe on ``{root}/ctl/probe/<client id>`` says that all was heard.
    """
    heard: list[m.ComponentStatus] = []
    echoed = asyncio.Event()
    probe = topics.ctl_probe(getattr(bus, "client_id", "control"))

    def on_status(topic: str, msg: Any) -> None:
        if isinstance(msg, m.ComponentStatus):
            heard.append(msg)

    subs = [
        bus.subscribe(topics.component_status("control", "control"), on_status, qos=1),
        bus.subscribe(probe, lambda _t, _x: echoed.set(), qos=1),
    ]
    bus.publish(probe, m.CmdResult(cmd_id="probe", strat="", ok=True), qos=1)
    try:
        async with asyncio.timeout(timeout_s):
            await echoed.wait()
    except TimeoutError:
        log.warning("control: no echo of the probe within %.0fs; going on", timeout_s)
    for sub in subs:
        bus.unsubscribe(sub)
    if not heard or heard[-1].state not in (UP, DEGRADED):
        return None
    st = heard[-1]
    if st.host == socket.gethostname() and (st.pid == os.getpid() or not _pid_alive(st.pid)):
        return None
    return st


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _serve_web_only(
    bus: BusBase,
    scheduler: Scheduler,
    topics: Topics,
    stop: asyncio.Event,
    stack: contextlib.AsyncExitStack,
    web_host: str,
    web_port: int,
    web_token: str | None,
) -> None:
    """The status page and ``/metrics`` beside another control service, until ``stop``."""
    from mlthon.infra.ops.board import StatusBoard
    from mlthon.infra.ops.web import StatusWeb

    board = StatusBoard(bus, scheduler, topics)
    board.start()
    stack.callback(board.stop, unsubscribe=False)  # the bus closes next
    await stack.enter_async_context(StatusWeb(board, host=web_host, port=web_port, token=web_token))
    await stop.wait()


async def send_command(
    host: str,
    port: int,
    root: str,
    strat: str,
    name: str,
    args: list[str],
    timeout_s: float = 30.0,
    *,
    client_options: dict[str, Any] | None = None,
) -> m.CmdResult:
    """Send one command as ``mlthon cmd`` does and wait for its answer.

    ``client_options`` are the bus client's ``username``, ``password`` and ``tls_context``
    (default: :func:`~mlthon.infra.security.bus_client_options` of ``mlthon-admin``).

    Raises:
        TimeoutError: no answer within ``timeout_s`` (is the control service running?).
        BrokerUnreachable: no broker answers.
        BrokerRefused: the broker refuses the login.
        ConfigError: a password or CA file cannot be read.
    """
    import getpass

    topics = Topics(root)
    client = unique_client_id("cli")
    cmd_id = f"{client}-{int(asyncio.get_running_loop().time() * 1e6)}"
    answer: asyncio.Future[m.CmdResult] = asyncio.get_running_loop().create_future()

    def on_result(topic: str, msg: Any) -> None:
        if isinstance(msg, m.CmdResult) and msg.cmd_id == cmd_id and not answer.done():
            answer.set_result(msg)

    options = client_options if client_options is not None else bus_client_options(ADMIN_USER)
    async with MqttBus(host, port, client_id=client, **options) as bus:
        await connect_or_explain(bus, options, min(timeout_s, 10.0))
        async with asyncio.timeout(timeout_s):
            bus.subscribe(topics.reply(client), on_result, qos=1)
            bus.publish(
                topics.cmd(),
                m.CmdRequest(
                    cmd_id=cmd_id,
                    strat=strat,
                    name=name,
                    args=args,
                    reply_to=topics.reply(client),
                    sender=f"cli:{getpass.getuser()}",
                ),
                qos=1,
            )
            return await answer
