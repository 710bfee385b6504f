"""The one implementation of :class:`~mlthon.api.IStratEnv`, over any bus.

The same class serves live and paper trading (MQTT bus, live scheduler), single-process runs and
backtests (in-process bus; live or simulated scheduler). It is the coordinator of:

* the strategy's life cycle: login, start, stop, and what the operator wants
  (``Start`` / ``Idle`` / ``Stop``), with the two bounded waits of :mod:`.lifecycle` (the start
  waits for the gateway and feed statuses, the stop acknowledgement for the cancels it caused);
* env calls: validated (bad arguments raise at once), then bus requests;
* orders and reports (:mod:`.orders`): every report turned into its strategy callback, once, with
  the order's life cycle kept by the one order state machine; reconciliation and adoption;
* market data (:mod:`.md_callbacks`): each subscribed book (:mod:`.book_view`: the env's own, or
  an in-process feed's, shared), its callbacks, BBO callbacks only when the best level changes,
  and ``get_book`` without the strategy keeping its own; feed liveness (:mod:`.feed_watch`);
* statuses, timers, command hooks and Telegram messages;
* the risk layer (:mod:`mlthon.infra.risk`, ``docs/risk.md``), when the strategy has a ``[risk]``
  table: every new order, modify and cancel is checked by it in the send call, after its arguments
  and before anything is published, and a refusal is a reject like any other
  (``GtwRejectCode.RiskLimit``); its trading state (``risk_state``) and the ``risk`` command.

Every strategy callback goes through the reactor's guard. Refusals that depend on state
(stopped, not logged in, no ready gateway) are delivered as reject callbacks on the next turn of
the reactor, never from inside the call.

Subscriptions are made once and kept across reconnects (the bus restores them), so a message is
handled once however often the env logs in again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from mlthon.api.istrat_env import BookView, IStratEnv, PriceLike, QtyLike
from mlthon.api.istrategy import IStrategy
from mlthon.basics.errors import ConfigError, InvalidArgument, InvalidArgumentType
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    MARKET_ORDER_TYPES,
    STOP_ORDER_TYPES,
    TIF,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    InstrumentKind,
    MDSub,
    OrderType,
    Side,
    TradingState,
    TriggerDirection,
)
from mlthon.basics.sanity import decimal_problem, int_cl_id_problem
from mlthon.basics.tickbook import NO_ASK, NO_BID, TickBook
from mlthon.basics.values import Price, to_decimal
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.codec import instrument_from_wire
from mlthon.infra.bus.topics import Topics, check_name
from mlthon.infra.clock import Handle
from mlthon.infra.cmd_hooks import CmdHookRegistry
from mlthon.infra.env.feed_watch import FeedWatch
from mlthon.infra.env.lifecycle import StartGate, StopAckHold
from mlthon.infra.env.md_callbacks import (
    MdState,
    book_handler,
    emit_bbo,
    implemented_groups,
    on_levels,
    on_trades,
)
from mlthon.infra.env.orders import OrderTracker
from mlthon.infra.portfolio import Portfolio, PositionMismatch
from mlthon.infra.reactor import Reactor
from mlthon.infra.risk.guard import RiskGuard
from mlthon.infra.risk.limits import RiskConfig, read_risk_table
from mlthon.infra.risk.states import parse_state
from mlthon.infra.timers import TimerService

log = logging.getLogger(__name__)

# Members read on every order, bound once: reading one off its Enum class (``OrderType.Limit``)
# goes through EnumType's Python-level __getattr__ hook on Python 3.11 (about 800 instructions).
_SIDE_UNSET = Side.Unset
_TYPE_UNSET, _LIMIT = OrderType.Unset, OrderType.Limit
_TIF_UNSET, _GTC = TIF.Unset, TIF.GTC
_POST_ONLY = ExecInstructions.PostOnly
_TRIGGER_UNSET = TriggerDirection.Unset
_READY = GtwStatus.ReadyToTrade
_EXCHANGE_UNSET = Exchange.Unset

_ERROR_ALERT_INTERVAL_NS = 10_000_000_000
# The env's own fetches (reconciliation, adoption, accounting checks) carry a request id that
# the gateway echoes, so their answers never reach the strategy; at most this many wait.
_OWN_ASKS_MAX = 10_000

# Strategy life-cycle states, as published in StratStatus.
DISCONNECTED = "disconnected"
CONNECTED = "connected"
LOGGING_IN = "logging_in"
RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"
# The states of a strategy logged in (where it is in its life).
_RUN_STATES = (RUNNING, STOPPING, STOPPED)


class StratEnv(IStratEnv):
    """Runs one strategy against the system over ``bus``.

    Args:
        strategy: the strategy object.
        bus: the bus (MQTT or in-process).
        reactor: the reactor (its scheduler gives the clock).
        topics: the topic layout.
        tz: time zone for daily callbacks (None: UTC, never the host's).
        login_retry_s: the login is sent again this often until answered.
        stale_cmd_s: a command hook older than this is dropped with an answer saying so (0:
            never).
        feed_silence_s: the silence allowed to the feed of every exchange the env gets market
            data from, when no ``FeedHeartbeat`` told one (None: only feeds that send
            heartbeats are watched); see :mod:`mlthon.infra.env.feed_watch`.
        start_wait_s: on ``Start``, ``on_start`` waits at most this long for the gateway and
            feed statuses of every exchange of the strategy's instruments (0: never; on an
            in-process bus there is nothing to wait for: a retained status is delivered before
            the login can be answered); see :mod:`mlthon.infra.env.lifecycle`.
        stop_ack_hold_s: ``send_stop_ack`` while cancels sent since the ``Stop`` are
            unanswered holds the ``StopAck`` until they are, at most this long.
        risk: the strategy's ``[risk]`` table (None: no risk layer, nothing checked, nothing
            paid); see :meth:`set_risk_config` and ``docs/risk.md``.

    Raises:
        ValueError: ``feed_silence_s`` is not positive.
    """

    def __init__(
        self,
        strategy: IStrategy,
        bus: BusBase,
        reactor: Reactor,
        topics: Topics | None = None,
        *,
        tz: str | None = None,
        login_retry_s: float = 2.0,
        stale_cmd_s: float = 60.0,
        feed_silence_s: float | None = None,
        start_wait_s: float = 3.0,
        stop_ack_hold_s: float = 3.0,
        risk: RiskConfig | None = None,
    ) -> None:
        self.strategy = strategy
        self.login_retry_ns = int(login_retry_s * 1e9)
        self.stale_cmd_ns = int(stale_cmd_s * 1e9)
        self.bus = bus
        self.reactor = reactor
        self.topics = topics or Topics()
        self.scheduler = reactor.scheduler
        self.timers = TimerService(reactor, tz)
        self.hooks = CmdHookRegistry()
        self.state_listeners: list[Callable[[str], None]] = []
        #: Told every change of the trading state (the heartbeat publishes it at once).
        self.risk_listeners: list[Callable[[TradingState, str], None]] = []
        self._state = DISCONNECTED
        # Where the strategy is in its life (None: never started in this process; RUNNING,
        # STOPPING, STOPPED), kept across reconnects: a re-login never starts it again.
        self._run: str | None = None
        self._started = False  # on_start ran in this process
        self._stop_acked = False  # send_stop_ack was called (requests refused from then on)
        self._stop_mark: int | None = None  # the cancels sent since the stop (OrderTracker)
        self._login_timer: Handle | None = None
        self.strat_name = ""
        self.instruments: dict[tuple[Exchange, int], Instrument] = {}
        self._instruments_told: dict[tuple[Exchange, int], Instrument] | None = None
        self._gtw_status: dict[Exchange, GtwStatus] = {}
        self._feed_status: dict[Exchange, FeedHandlerStatus] = {}
        self._md: dict[tuple[Exchange, int], MdState] = {}
        self._book_lookup: Callable[[Exchange, int], TickBook | None] | None = None
        self._subs: list[Subscription] = []
        self._status_scheduled = False
        self._last_error_alert: dict[str, int] = {}
        self.reports_received = 0
        self.md_messages = 0
        self.md_gaps = 0  # market-data sequence gaps seen (messages lost on the bus)
        self.bad_trades = 0  # public trades left out: a tick or lot count that is not sane
        # Over MQTT (QoS 0) market data can be lost: the feed's sequence numbers are checked.
        lossless = bus.lossless
        self._check_md_seq = not lossless
        self.orders = OrderTracker(self)
        self.feeds = FeedWatch(
            self.scheduler, feed_silence_s, self._on_feed_stale, self._on_feed_resumed
        )
        self.start_gate = StartGate(
            self.scheduler,
            0.0 if lossless else start_wait_s,
            self._statuses_missing,
            self._start,
            self._on_ctl,
        )
        self.stop_ack = StopAckHold(
            self.scheduler, stop_ack_hold_s, self._stop_cancels_in_flight, self._send_stop_ack
        )
        self.orders.on_cancel_answered = self.stop_ack.check
        self._portfolio = Portfolio(
            lambda ex, iid: self.instruments.get((ex, iid)),
            self._mid,
            self.orders.open,
            self.scheduler.now_ns,
            self._on_position_mismatch,
        )
        self.orders.on_delivered = self._portfolio.on_report
        self._risk: RiskGuard | None = None
        # A trading state applied from the control service (not told back to it).
        self._risk_from_ctl = False
        self._risk_restore = False
        # The last mid of each book: (best bid, best ask in ticks, the mid as a Decimal).
        self._mids: dict[MdState, tuple[int, int, Decimal]] = {}
        # The strategy's own [risk] limits, kept apart once the desk's defaults are merged in.
        self._own_risk: RiskConfig | None = None
        # The operator's kill switch: there with or without a [risk] table (``docs/risk.md``).
        self.hooks.add(
            "risk",
            self._risk_cmd,
            help="risk [active|reduceonly|halted] [why]: show or set the trading state",
            dangerous=True,
        )
        if risk is not None:
            self.set_risk_config(risk)
        # Request id -> the env-side handler of the answer, for the env's own fetches.
        self._own_asks: dict[str, Callable[[Exchange, Any], None]] = {}
        self._ask_seq = 0
        # Unique per process (the clock at start), so that an answer to a previous run's request,
        # delivered late by a persistent session, never matches one of this run's.
        self._ask_prefix = f"env-{self.scheduler.now_ns():x}-"
        self.stale_cmds = 0
        # Called with (topic, report) for every report the env receives, after the strategy's
        # callback if there was one (accounting checks). A report held or dropped (an unknown
        # order) is seen here when it arrives.
        self.report_listeners: list[Callable[[str, Any], None]] = []
        reactor.on_error = self._on_callback_error
        reactor.on_slow = self._on_callback_slow
        bus.add_connection_listener(self._on_bus_connection)
        if bus.connected:
            self.scheduler.call_soon(self._on_bus_connection, True)

    @property
    def state(self) -> str:
        """The strategy's life-cycle state (disconnected, connected, logging_in, running,
        stopping, stopped)."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        if value in _RUN_STATES:
            self._note_run(value)
        if value != self._state:
            self._state = value
            for listener in list(self.state_listeners):
                listener(value)

    def _note_run(self, run: str) -> None:
        if run == STOPPING and self._run != STOPPING:
            # The cancels sent from now on are the stop's: its acknowledgement waits for them.
            self._stop_mark = self.orders.cancel_mark()
        self._run = run

    def _enter(self, run: str) -> None:
        """The login was answered: the strategy is ``run`` (the published state follows unless
        the bus went away meanwhile)."""
        if self._state == DISCONNECTED:
            self._note_run(run)
        else:
            self.state = run

    def _set_run(self, run: str) -> None:
        """The strategy moves to ``run``; the published state follows while logged in."""
        if self._state in _RUN_STATES:
            self.state = run
        else:
            self._note_run(run)

    # --- compatibility views of the order tracker --------------------------------------------

    @property
    def duplicate_fills(self) -> int:
        """Repeated executions dropped."""
        return self.orders.duplicate_fills

    @property
    def unknown_reports(self) -> int:
        """Reports about orders this env never sent, asked about or adopted, dropped."""
        return self.orders.unknown_reports

    @property
    def reconciled_orders(self) -> int:
        """Orders found ended (or lost) by a reconciliation."""
        return self.orders.reconciled_orders

    @property
    def adopted_orders(self) -> int:
        """Open orders of an earlier life adopted."""
        return self.orders.adopted_orders

    @property
    def last_reconciliation(self) -> str:
        """The summary of the last reconciliation."""
        return self.orders.last_reconciliation

    # ==========================================================================================
    # connection and login
    # ==========================================================================================

    def _on_bus_connection(self, up: bool) -> None:
        if up:
            if self.state != DISCONNECTED:
                return
            self.state = CONNECTED
            log.info("env: connected to the framework")
            self.reactor.invoke(self.strategy.on_framework_connected, self)
        else:
            if self.state == DISCONNECTED:
                return
            was = self.state
            # Subscriptions stay: the bus restores them when it reconnects, so no message is
            # handled twice after a re-login.
            self.state = DISCONNECTED
            log.warning("env: lost the framework (was %s)", was)
            self.reactor.invoke(self.strategy.on_framework_disconnected)

    def login(self, strat_name: str) -> None:
        if not isinstance(strat_name, str):
            raise InvalidArgumentType("strat_name", strat_name, "must be a str")
        try:
            check_name(strat_name, "strat_name")
        except ValueError as exc:
            raise InvalidArgument("strat_name", strat_name, str(exc)) from None
        if self.state == DISCONNECTED:
            raise InvalidArgument("strat_name", strat_name, "login before on_framework_connected")
        if self.strat_name and self.strat_name != strat_name:
            raise InvalidArgument(
                "strat_name", strat_name, f"already logged in as {self.strat_name!r}"
            )
        self.strat_name = strat_name
        if self._risk is not None:
            self._risk.name = strat_name
        self.state = LOGGING_IN
        t = self.topics
        again = bool(self._subs)
        if not again:
            # Made once, kept across reconnects (the bus restores them).
            self._subs = [
                self.bus.subscribe(t.strat_ctl(strat_name), self._on_ctl, qos=1),
                self.bus.subscribe(t.gtw_rpt_all_exchanges(strat_name), self._on_report, qos=1),
                self.bus.subscribe(t.gtw_status_all(), self._on_gtw_status, qos=1),
                self.bus.subscribe(t.feed_status_all(), self._on_feed_status, qos=1),
                self.bus.subscribe(t.feed_heartbeat_all(), self._on_feed_heartbeat, qos=0),
            ]
        for st in self._md.values():
            if not st.subs:
                continue
            if st.topic_sub is None:
                self._subscribe_md_topic(st)  # subscribed while disconnected
            elif again:
                # Logging in again: messages may have been lost meanwhile; a fresh copy.
                self._request_snapshot(st)
        self._send_login()
        self._publish_status_soon()

    def _send_login(self) -> None:
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None
        if self.state != LOGGING_IN:
            return
        self.bus.publish(
            self.topics.login(self.strat_name),
            m.Login(strat=self.strat_name, pid=os.getpid(), host=socket.gethostname()),
            qos=1,
        )
        log.info("env: logging in as %s", self.strat_name)
        # The control service may be away (restarting, reconnecting): ask again until answered.
        self._login_timer = self.scheduler.call_later(self.login_retry_ns, self._retry_login)

    def _retry_login(self) -> None:
        self._login_timer = None
        if not self.start_gate.waiting:  # answered: the start waits for the statuses
            self._send_login()

    # ==========================================================================================
    # control messages
    # ==========================================================================================

    def _on_ctl(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.RiskStateSet):
            # Never held behind a waiting start: it must apply before on_start can send.
            self._on_risk_state_msg(msg)
        elif isinstance(msg, m.RiskDefaults):
            self._on_risk_defaults(msg)
        elif self.start_gate.waiting:
            # on_start waits for the statuses: what follows the Start is handled after it.
            self.start_gate.hold(topic, msg)
        elif isinstance(msg, m.Instruments):
            self._on_instruments_msg(msg)
        elif isinstance(msg, m.Start):
            self._on_start_msg(msg)
        elif isinstance(msg, m.Idle):
            self._on_idle_msg(msg)
        elif isinstance(msg, m.StratParams):
            self.reactor.invoke(self.strategy.on_strat_params_update, dict(msg.params))
        elif isinstance(msg, m.Stop):
            self._begin_stop(msg.params)
        elif isinstance(msg, m.CmdHook):
            self._on_cmd(msg)
        elif isinstance(msg, m.StopEscalated):
            log.error("env: stop escalated by the control service: %s", msg.detail)
            self._set_run(STOPPED)
            self._publish_status_soon()
        elif isinstance(msg, m.LoginReject):
            log.error("env: login refused: %s", msg.reason)
            self.state = CONNECTED
            self._publish_status_soon(detail=f"login refused: {msg.reason}")
        else:
            log.warning("env: unexpected %s on %s; dropped", type(msg).__name__, topic)

    def _on_instruments_msg(self, msg: m.Instruments) -> None:
        insts: dict[tuple[Exchange, int], Instrument] = {}
        for w in msg.instruments:
            try:
                inst = instrument_from_wire(w)
            except (ValueError, TypeError) as exc:
                log.error("env: bad instrument %r dropped: %s", w.name, exc)
                continue
            insts[(inst.exchange, inst.instrument_id)] = inst
        self.instruments = insts
        if self._risk is not None:
            for name in self._risk.config.unmatched(insts.values()):
                log.error("env: [risk.instruments.%s] names none of the instruments", name)
        for key, st in self._md.items():
            known = insts.get(key)
            if known is not None and st.book.regrid(known) and st.topic_sub is not None:
                self._rebuild_md_handler(st)  # its closures hold the old grid's caches

    def _tell_instruments(self) -> None:
        """``on_instruments``, if the strategy has not been given these ones yet."""
        if self._instruments_told != self.instruments:
            self._instruments_told = dict(self.instruments)
            self.reactor.invoke(self.strategy.on_instruments, list(self.instruments.values()))

    def _answer(self, msg: m.Start, ok: bool, detail: str) -> None:
        if msg.reply_to:
            self.bus.publish(
                msg.reply_to,
                m.CmdResult(cmd_id=msg.cmd_id, strat=self.strat_name, ok=ok, detail=detail),
                qos=1,
            )

    def _on_start_msg(self, msg: m.Start) -> None:
        command = bool(msg.cmd_id)
        run = self._run
        answering_login = self.state in (CONNECTED, LOGGING_IN)
        if run in (RUNNING, STOPPING):
            # on_start runs once per start: a start command on a running strategy, the answers
            # to logins sent again while the control service was away, and the answer to a
            # re-login after a broker blip do not run it again, and none undoes a stop in
            # progress.
            log.info(
                "env: start (%s) while %s: on_start not run again",
                "command" if command else "login answer",
                run,
            )
            if answering_login:
                self._logged_in_again()
            self._answer(msg, run == RUNNING, "already running" if run == RUNNING else "stopping")
            return
        if run == STOPPED and not command:
            # The strategy acknowledged a stop: only a start command starts it again, never the
            # answer to a login (a broker blip, a control service that forgot the stop).
            log.warning(
                "env: a start answering the login of stopped %s ignored: it stays stopped "
                "until a start command",
                self.strat_name,
            )
            if answering_login:
                self._logged_in_again()
            return
        self.start_gate.request(msg)

    def _start(self, msg: m.Start) -> None:
        self._enter(RUNNING)
        self._started = True
        self._stop_acked = False
        self._stop_mark = None
        log.info("env: start (%r)", msg.params)
        self.reactor.invoke(self.strategy.on_start, msg.params)
        self._tell_instruments()
        self._answer(msg, True, "started")
        self._publish_status_soon()
        self._reconcile_all()

    def _logged_in_again(self) -> None:
        """A login answered for a strategy that already ran in this process: back to where it
        was (no on_start), orders checked and adopted again."""
        run = self._run or STOPPED
        self._enter(run)
        log.info("env: %s logged in again (%s)", self.strat_name, run)
        if run == RUNNING:
            self._tell_instruments()
        self._publish_status_soon()
        self._reconcile_all()

    def _on_idle_msg(self, msg: m.Idle) -> None:
        # The operator wants the strategy stopped: no on_start; a running one stops as usual.
        log.warning("env: %s stays stopped: %s", self.strat_name, msg.detail or "Idle")
        run = self._run
        if run == RUNNING:
            self._enter(RUNNING)
            self._begin_stop("")
            return
        self._enter(STOPPING if run == STOPPING else STOPPED)
        self._publish_status_soon(detail=msg.detail)
        if self._started:
            self._reconcile_all()

    def _begin_stop(self, params: str) -> None:
        if self._run in (STOPPED, STOPPING):
            log.info("env: stop while %s; on_stop called again", self._run)
        self._set_run(STOPPING)
        self._stop_acked = False
        log.info("env: stop (%r)", params)
        self._publish_status_soon()
        self.reactor.invoke(self.strategy.on_stop, params)

    def send_stop_ack(self) -> None:
        if self._run != STOPPING:
            log.warning("env: send_stop_ack while %s (no stop pending); sent anyway", self.state)
            self._stop_mark = None  # no stop: no cancel of its to wait for
        self._stop_acked = True
        self.stop_ack.request()

    def _stop_cancels_in_flight(self) -> int:
        mark = self._stop_mark
        return 0 if mark is None else self.orders.cancels_in_flight(mark)

    def _send_stop_ack(self, note: str) -> None:
        self._set_run(STOPPED)
        if self.strat_name:
            self.bus.publish(
                self.topics.strat_up(self.strat_name), m.StopAck(strat=self.strat_name), qos=1
            )
        log.info("env: stop acknowledged%s; requests refused until the next start", note)
        self._publish_status_soon()

    # --- orders: reconciliation and the env's own questions -----------------------------------

    def _reconcile_all(self) -> None:
        """Check the orders believed open and adopt unknown ones, on every gateway heard."""
        exchanges = self.orders.open_exchanges() | set(self._gtw_status)
        for ex in sorted(exchanges, key=lambda e: e.value):
            self._reconcile(ex)

    def _reconcile(self, exchange: Exchange) -> None:
        self.orders.reconcile(exchange)

    def ask(
        self, exchange: Exchange, msg: m.Msg, on_answer: Callable[[Exchange, Any], None]
    ) -> bool:
        """Send a fetch whose answer (info or reject) goes to ``on_answer``, not to the
        strategy. False (nothing sent) if the gateway is not ready or the env not logged in."""
        if self._gateway_refusal(exchange) or self._not_logged_in():
            return False
        self._ask_seq += 1
        rid = f"{self._ask_prefix}{self._ask_seq}"
        if len(self._own_asks) >= _OWN_ASKS_MAX:
            del self._own_asks[next(iter(self._own_asks))]  # never answered: forget the oldest
        self._own_asks[rid] = on_answer
        msg = msgspec.structs.replace(msg, req_id=rid)
        self.bus.publish(self.topics.gtw_req(exchange, self.strat_name), msg, qos=1)
        return True

    def request_position(self, exchange: Exchange, instrument_id: int) -> bool:
        """Ask ``exchange``'s gateway for the position of ``instrument_id`` on the env's own
        account: the ``PositionInfo`` goes to :attr:`report_listeners` (the accounting check),
        not to the strategy. False if not sent (gateway not ready, not logged in)."""
        return self.ask(
            exchange,
            m.FetchPosition(strat=self.strat_name, instrument_id=instrument_id),
            lambda _ex, _msg: None,
        )

    def reconciliation_done(self, summary: str, changed: bool) -> None:
        """A reconciliation that ended or adopted orders: status detail and Telegram."""
        if changed:
            self._publish_status_soon(detail=summary)
            self.publish_telegram(f"{self.strat_name}: {summary}", priority=1)

    def _on_cmd(self, msg: m.CmdHook) -> None:
        age = self.scheduler.now_ns() - msg.sent_ts
        entry = self.hooks.get(msg.name)
        if msg.sent_ts and self.stale_cmd_ns > 0 and age > self.stale_cmd_ns:
            # Kept by the persistent session while the strategy was away: too old to act on.
            self.stale_cmds += 1
            ok, detail = (
                False,
                f"dropped as stale: command {msg.name!r} is {age / 1e9:.1f}s old "
                f"(limit {self.stale_cmd_ns / 1e9:g}s); not run",
            )
            log.warning("env: %s %s", self.strat_name, detail)
        elif entry is None:
            ok, detail = False, f"unknown command {msg.name!r}"
            log.warning("env: %s", detail)
        else:
            errors_before = self.reactor.callback_errors
            result = self.reactor.invoke(entry.callback, list(msg.args))
            ok = self.reactor.callback_errors == errors_before
            detail = (
                ("" if result is None else str(result))
                if ok
                else f"hook {entry.name} raised: {self.reactor.last_error}"
            )
        if msg.reply_to:
            self.bus.publish(
                msg.reply_to,
                m.CmdResult(cmd_id=msg.cmd_id, strat=self.strat_name, ok=ok, detail=detail),
                qos=1,
            )

    # ==========================================================================================
    # status
    # ==========================================================================================

    def _on_gtw_status(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.GatewayStatus):
            log.warning("env: unexpected %s on %s; dropped", type(msg).__name__, topic)
            return
        prev = self._gtw_status.get(msg.exchange)
        self._gtw_status[msg.exchange] = msg.status
        self.start_gate.heard()
        if prev == msg.status:
            return
        if prev is None and msg.status is GtwStatus.ReadyToTrade:
            self._halted_cancel_all(msg.exchange)
            if self._may_reconcile():
                self._reconcile(msg.exchange)  # first heard after the start: adopt its orders
            return  # ready from the start: not a transition (as in the reference)
        log.info("env: gateway %s %s -> %s (%s)", msg.exchange.name, prev, msg.status, msg.detail)
        self.reactor.invoke(self.strategy.on_gateway_status, msg.exchange, msg.status, msg.detail)
        if msg.status is GtwStatus.ReadyToTrade:
            self._halted_cancel_all(msg.exchange)
            if self._may_reconcile():
                self._reconcile(msg.exchange)

    def _halted_cancel_all(self, exchange: Exchange) -> None:
        """A halted strategy's gateway is (back) up: whatever rests there is cancelled (orders
        of an earlier life, placed while the gateway was away from the halt)."""
        if self.risk_state is TradingState.Halted and self._not_logged_in() is None:
            log.warning("env: risk: halted; cancel-all on %s, ready again", exchange.name)
            self.send_cancel_all(exchange, None)

    def _may_reconcile(self) -> bool:
        # Logged in, and the strategy started in this process (it hears of orders after
        # on_start, never before).
        return self.state in _RUN_STATES and self._started

    def _statuses_missing(self) -> list[str]:
        """The gateway and feed statuses not heard yet, of every exchange of the instruments."""
        out: list[str] = []
        for ex in sorted({e for e, _ in self.instruments}, key=lambda e: e.value):
            if ex not in self._gtw_status:
                out.append(f"the {ex.name} gateway's status")
            if ex not in self._feed_status:
                out.append(f"the {ex.name} feed's status")
        return out

    def _on_feed_status(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.FeedStatus):
            log.warning("env: unexpected %s on %s; dropped", type(msg).__name__, topic)
            return
        try:
            ex = Exchange(msg.ex)
        except ValueError:
            log.warning("env: feed status for unknown exchange %r dropped", msg.ex)
            return
        prev = self._feed_status.get(ex)
        self._feed_status[ex] = msg.status
        self.start_gate.heard()
        if prev == msg.status or msg.iid:
            return
        if msg.status is FeedHandlerStatus.Disconnected:
            for st in self._md.values():
                if st.exchange is ex:
                    st.book.clear()
                    st.book.valid = False
                    st.forget_best()
        if prev is None and msg.status is not FeedHandlerStatus.Disconnected:
            return  # a feed that is up when we arrive is not a transition
        self.reactor.invoke(self.strategy.on_feed_handler_status, ex, msg.status, msg.detail)

    # --- feed liveness (feed_watch) -------------------------------------------------------------

    def _on_feed_heartbeat(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.FeedHeartbeat):
            log.warning("env: unexpected %s on %s; dropped", type(msg).__name__, topic)
            return
        try:
            ex = Exchange(msg.ex)
        except ValueError:
            log.warning("env: feed heartbeat for unknown exchange %r dropped", msg.ex)
            return
        self.feeds.heartbeat(ex, msg.limit_ms)

    def _on_feed_stale(self, ex: Exchange, detail: str) -> None:
        """``ex``'s feed is silent past its limit: its books are not valid until it speaks
        again (they keep their last levels, which ``get_book`` shows with ``valid`` False)."""
        log.warning("env: %s; its books are invalid until it is heard again", detail)
        for st in self._md.values():
            if st.exchange is ex:
                st.was_valid = st.book.valid
                st.book.valid = False
        self.reactor.invoke(
            self.strategy.on_feed_handler_status, ex, FeedHandlerStatus.Stale, detail
        )
        self._publish_status_soon(detail=detail)

    def _on_feed_resumed(self, ex: Exchange, detail: str) -> None:
        """``ex``'s feed speaks again: the strategy is told, and each book asks for a snapshot
        (valid again at its SnapshotEnd). A book shared with an in-process feed engine lost
        nothing: it is as valid as before the silence."""
        log.info("env: %s; snapshots requested", detail)
        self.reactor.invoke(
            self.strategy.on_feed_handler_status, ex, FeedHandlerStatus.Resumed, detail
        )
        self._publish_status_soon(detail=detail)
        for st in self._md.values():
            if st.exchange is ex and st.subs:
                if st.book.shared:
                    st.book.valid = st.was_valid
                else:
                    self._request_snapshot(st)

    def gateway_status(self, exchange: Exchange) -> GtwStatus | None:
        """The last status heard from ``exchange``'s gateway (None if never heard)."""
        return self._gtw_status.get(exchange)

    def publish_status(self, detail: str) -> None:
        """Publish the strategy's status soon with ``detail`` (an alert raised beside the
        strategy, such as an accounting mismatch)."""
        self._publish_status_soon(detail=detail)

    def _publish_status_soon(self, detail: str = "") -> None:
        if self._status_scheduled or not self.strat_name:
            return
        self._status_scheduled = True
        self.scheduler.call_soon(self._publish_status, detail)

    def _publish_status(self, detail: str = "") -> None:
        self._status_scheduled = False
        if not self.strat_name:
            return
        r = self.reactor
        self.bus.publish(
            self.topics.strat_status(self.strat_name),
            m.StratStatus(
                strat=self.strat_name,
                state=self.state,
                detail=detail or r.last_error,
                ts=self.scheduler.now_ns(),
                callbacks=r.callbacks,
                callback_errors=r.callback_errors,
                slow_callbacks=r.slow_callbacks,
                pid=os.getpid(),
                hooks=[
                    m.HookInfo(name=e.name, help=e.help, dangerous=e.dangerous)
                    for e in self.hooks.entries()
                ],
            ),
            qos=1,
            retain=True,
        )

    def _on_callback_error(self, name: str, exc: BaseException) -> None:
        self._publish_status_soon()
        if not self.strat_name:
            return
        now = time.monotonic_ns()
        last = self._last_error_alert.get(name)
        if last is not None and now - last < _ERROR_ALERT_INTERVAL_NS:
            return
        self._last_error_alert[name] = now
        self.bus.publish(
            self.topics.telegram(self.strat_name),
            m.TelegramPublish(
                strat=self.strat_name,
                text=f"{self.strat_name}: callback {name} raised {type(exc).__name__}: {exc}",
                priority=0,
                ts=self.scheduler.now_ns(),
            ),
            qos=1,
        )

    def _on_callback_slow(self, name: str, ms: float) -> None:
        self._publish_status_soon(detail=f"callback {name} blocked the reactor for {ms:.1f} ms")

    # ==========================================================================================
    # timers, hooks, telegram
    # ==========================================================================================

    def setup_timer(self, duration_ms: int, callback_func: Callable[[], Any]) -> int:
        return self.timers.setup_timer(duration_ms, callback_func)

    def setup_daily_callback(self, hh_mm_ss: str, callback_func: Callable[[], Any]) -> int:
        return self.timers.setup_daily_callback(hh_mm_ss, callback_func)

    def cancel_timer(self, timer_id: int) -> bool:
        if isinstance(timer_id, bool) or not isinstance(timer_id, int):
            raise InvalidArgumentType("timer_id", timer_id, "must be the int a setup call returned")
        return self.timers.cancel(timer_id)

    def get_time_ns(self) -> int:
        return self.scheduler.now_ns()

    def add_cmd_hook(
        self,
        cmd_name_str: str,
        callback_func: Callable[[list[str]], Any],
        *,
        help: str | None = None,
        dangerous: bool = False,
    ) -> None:
        """See :meth:`IStratEnv.add_cmd_hook`. ``help`` overrides the docstring's first line;
        ``dangerous`` hooks (flatten, cancel-all...) need a confirmation in Telegram. ``risk`` is
        the env's own (the operator's kill switch) and refused here."""
        if isinstance(cmd_name_str, str) and cmd_name_str.lower() == "risk":
            raise InvalidArgument("cmd_name_str", cmd_name_str, "is the risk layer's command")
        self.hooks.add(cmd_name_str, callback_func, help=help, dangerous=dangerous)
        self._publish_status_soon()

    def publish_telegram(self, msg: str, *, priority: int = 2) -> None:
        """See :meth:`IStratEnv.publish_telegram`. ``priority`` 0 = error, 1 = fill, 2 = info."""
        if not isinstance(msg, str):
            raise InvalidArgumentType("msg", msg, "must be a str")
        if not msg.strip():
            raise InvalidArgument("msg", msg, "must not be empty")
        if priority not in (0, 1, 2):
            raise InvalidArgument("priority", priority, "must be 0 (error), 1 (fill) or 2 (info)")
        if not self.strat_name:
            log.warning("env: publish_telegram before login dropped: %s", msg[:80])
            return
        self.bus.publish(
            self.topics.telegram(self.strat_name),
            m.TelegramPublish(
                strat=self.strat_name, text=msg, priority=priority, ts=self.scheduler.now_ns()
            ),
            qos=1,
        )

    # ==========================================================================================
    # reference data
    # ==========================================================================================

    def get_instruments(self) -> list[Instrument]:
        return list(self.instruments.values())

    def get_instrument(self, exchange: Exchange, instrument_id: int) -> Instrument:
        self._check_exchange(exchange)
        return self._instrument(exchange, instrument_id)

    def _check_exchange(self, exchange: object) -> Exchange:
        if not isinstance(exchange, Exchange):
            raise InvalidArgumentType("exchange", exchange, "must be an Exchange member")
        if exchange is _EXCHANGE_UNSET:
            raise InvalidArgument("exchange", exchange, "must be a real exchange")
        return exchange

    def _instrument(self, exchange: Exchange, instrument_id: object) -> Instrument:
        if isinstance(instrument_id, bool) or not isinstance(instrument_id, int):
            raise InvalidArgumentType("instrument_id", instrument_id, "must be an int")
        inst = self.instruments.get((exchange, instrument_id))
        if inst is None:
            known = sorted(i for (ex, i) in self.instruments if ex is exchange)
            raise InvalidArgument(
                "instrument_id",
                instrument_id,
                f"unknown on {exchange.name} (known: {known or 'none; no instruments loaded'})",
            )
        return inst

    # ==========================================================================================
    # market data
    # ==========================================================================================

    def subscribe(self, exchange: Exchange, instrument_id: int, md_sub: MDSub) -> None:
        self._check_exchange(exchange)
        inst = self._instrument(exchange, instrument_id)
        if not isinstance(md_sub, MDSub):
            raise InvalidArgumentType("md_sub", md_sub, "must be an MDSub member")
        key = (exchange, instrument_id)
        st = self._md.get(key)
        if st is None:
            st = self._md[key] = MdState(
                exchange, inst, implemented_groups(self.strategy), self.feeds.mark(exchange)
            )
            self._attach_shared_book(st)
            self.feeds.watch(exchange)
        if md_sub in st.subs:
            return
        st.subs.add(md_sub)
        st.refresh()
        if st.topic_sub is not None:
            self._rebuild_md_handler(st)
        elif self.state != DISCONNECTED:
            self._subscribe_md_topic(st)

    def _subscribe_md_topic(self, st: MdState) -> None:
        topic = self.topics.md(st.exchange, st.iid)
        st.topic_sub = self.bus.subscribe(topic, book_handler(self, st), qos=0)
        # A late subscriber asks the feed for the current book.
        self._request_snapshot(st)

    def _request_snapshot(self, st: MdState) -> None:
        """Ask the feed to send ``st``'s book again (framed by SnapshotStart / SnapshotEnd)."""
        self.bus.publish(
            self.topics.feed_req(st.exchange),
            m.SnapshotRequest(ex=st.exchange.value, iid=st.iid, strat=self.strat_name),
            qos=1,
        )

    def _rebuild_md_handler(self, st: MdState) -> None:
        # The handler is specialised for a set of subscriptions: swap in a new one. The new
        # subscription goes first, so the broker subscription is never dropped in between.
        old = st.topic_sub
        st.topic_sub = self.bus.subscribe(
            self.topics.md(st.exchange, st.iid), book_handler(self, st), qos=0
        )
        if old is not None:
            self.bus.unsubscribe(old)

    def unsubscribe(self, exchange: Exchange, instrument_id: int, md_sub: MDSub) -> None:
        self._check_exchange(exchange)
        if not isinstance(md_sub, MDSub):
            raise InvalidArgumentType("md_sub", md_sub, "must be an MDSub member")
        st = self._md.get((exchange, instrument_id))
        if st is None or md_sub not in st.subs:
            return
        st.subs.discard(md_sub)
        st.refresh()
        if st.subs and st.topic_sub is not None:
            self._rebuild_md_handler(st)
        if not st.subs:
            if st.topic_sub is not None:
                self.bus.unsubscribe(st.topic_sub)
            del self._md[(exchange, instrument_id)]
            if not any(other.exchange is exchange for other in self._md.values()):
                self.feeds.unwatch(exchange)

    def share_feed_books(self, lookup: Callable[[Exchange, int], TickBook | None]) -> None:
        """Read price-level books from an in-process feed instead of keeping copies.

        For backtests, where the feed engine (or the backtest's book keeper) runs in this process
        and applies every message before it is delivered: ``lookup(exchange, instrument_id)``
        gives its book (None: keep an own copy). The level callbacks are unchanged; the book the
        strategy reads (:meth:`get_book`, BBO) is then always the whole of the last message
        delivered. Order-level instruments keep their own aggregated book.
        """
        self._book_lookup = lookup
        for st in self._md.values():
            self._attach_shared_book(st)

    def _attach_shared_book(self, st: MdState) -> None:
        lookup = self._book_lookup
        if lookup is None or st.book.shared or st.book.levels is not None:
            return
        shared = lookup(st.exchange, st.iid)
        if shared is None:
            return
        st.book.share(shared)
        if st.topic_sub is not None:
            self._rebuild_md_handler(st)

    def get_book(self, exchange: Exchange, instrument_id: int) -> BookView | None:
        """See :meth:`IStratEnv.get_book`. The view is the env's live copy. While it cannot be
        trusted its ``valid`` is False: an invalid book (``BookInvalid``: a gap, a bad message,
        before its first snapshot) shows no levels until its next snapshot starts; a book whose
        feed is silent past its limit (``Stale``) keeps its last levels for the strategy to judge
        (to pull quotes placed around them, say); a book being rebuilt from a snapshot shows the
        levels received so far. An order-level book crossed in an auction or pre-open
        (``BookCrossed``) stays valid and shows the crossing."""
        self._check_exchange(exchange)
        if isinstance(instrument_id, bool) or not isinstance(instrument_id, int):
            raise InvalidArgumentType("instrument_id", instrument_id, "must be an int")
        st = self._md.get((exchange, instrument_id))
        return st.book if st is not None else None

    def _md_gap(self, st: MdState, last: int, seq: int) -> None:
        """Market data lost on the bus (the feed numbers each instrument's messages): the book
        cannot be trusted until a fresh snapshot. A count that starts again at 1 is a feed that
        restarted, not a loss (it sends a snapshot of its own)."""
        self.md_gaps += 1
        lost = seq - last - 1
        what = f"{lost} market-data message(s) lost" if lost > 0 else "market data out of order"
        self._invalidate_book(
            st,
            f"{st.exchange.name} {st.iid}: {what} on the bus (feed sequence {last} then {seq}); "
            "book invalid, snapshot requested",
        )

    def _bad_book_message(self, st: MdState, exc: Exception) -> None:
        """A book message that could not be applied: the book is invalid, the strategy is
        told, and the feed is asked for a snapshot (the book is valid again after it)."""
        self._invalidate_book(
            st,
            f"{st.exchange.name} {st.iid}: bad book message from the feed ({exc}); "
            "book invalid, snapshot requested",
        )

    def _invalidate_book(self, st: MdState, detail: str) -> None:
        log.error("env: %s", detail)
        st.book.valid = False
        self.reactor.invoke(
            self.strategy.on_feed_handler_status,
            st.exchange,
            FeedHandlerStatus.BookInvalid,
            detail,
        )
        self._request_snapshot(st)

    def _on_md(self, st: MdState, msg: Any) -> None:
        self.md_messages += 1
        t0 = self.reactor.timer_ns()  # the wall clock; `blocked` makes it CPU time in backtests
        seq = getattr(msg, "seq", 0) if self._check_md_seq else 0
        if seq:
            last = st.last_seq
            st.last_seq = seq
            if last and seq != last + 1 and seq != 1:
                self._md_gap(st, last, seq)
        kind = type(msg)
        if kind is m.TradeUpdate:
            if st.want_trades:
                on_trades(self, st, msg)
        elif kind is m.LevelUpdate:
            on_levels(self, st, msg)
        elif kind is m.FundingUpdate:
            if st.want_funding:
                self.reactor.invoke(
                    self.strategy.on_funding_info,
                    st.exchange,
                    st.iid,
                    float(msg.rate),
                    msg.next_ts,
                )
        elif kind is m.FeedStatus:
            self._on_book_status(st, msg)
        else:
            log.warning("env: unexpected %s for %s; dropped", kind.__name__, st.iid)
            return
        elapsed = self.reactor.timer_ns() - t0
        if elapsed > self.reactor.slow_callback_ns:
            self.reactor.blocked(f"market data ({kind.__name__})", elapsed)

    def _on_book_status(self, st: MdState, msg: m.FeedStatus) -> None:
        book = st.book
        status = msg.status
        if msg.iid == 0:
            # A feed-wide status repeated on the book's topic to keep it in order with the book:
            # it only matters for the book when the feed went away; the strategy hears the
            # transition once, from the feed's status topic.
            if status is FeedHandlerStatus.Disconnected:
                book.clear()
                book.valid = book.building = False
                st.forget_best()
            return
        if status is FeedHandlerStatus.SnapshotStart:
            book.clear()
            book.valid = False
            book.building = True
        elif status is FeedHandlerStatus.SnapshotEnd:
            book.valid = True
            book.building = False
        elif status in (FeedHandlerStatus.BookInvalid, FeedHandlerStatus.Disconnected):
            book.valid = False
            book.building = False
            if status is FeedHandlerStatus.Disconnected:
                book.clear()
        self.reactor.invoke(self.strategy.on_feed_handler_status, st.exchange, status, msg.detail)
        if status is not FeedHandlerStatus.SnapshotStart:
            emit_bbo(self, st, st.last_ts or msg.ts)

    def bad_trade(self, st: MdState, exc: Exception) -> None:
        """A public trade left out: its tick or lot count is not sane (the feed's fault, not the
        strategy's; counted and logged, less and less often)."""
        self.bad_trades += 1
        if self.bad_trades in (1, 10, 100) or self.bad_trades % 1000 == 0:
            log.warning(
                "env: a trade of %s %s left out: %s (%d so far)",
                st.exchange.name,
                st.iid,
                exc,
                self.bad_trades,
            )

    # ==========================================================================================
    # risk layer (mlthon.infra.risk; docs/risk.md)
    # ==========================================================================================

    def set_risk_config(self, config: RiskConfig) -> None:
        """Put the risk layer of ``config`` in front of every gateway (an mlthon extension, for
        the code that builds the env: the runner and backtests pass the strategy's ``[risk]``
        table; it is not part of :class:`~mlthon.api.IStratEnv`). Once only, before login: a
        strategy cannot replace or loosen limits it was given.

        Raises:
            InvalidArgumentType: ``config`` is not a RiskConfig.
            InvalidArgument: a risk layer is there already, or the env logged in.
        """
        if not isinstance(config, RiskConfig):
            raise InvalidArgumentType("config", config, "must be a RiskConfig")
        if self._risk is not None:
            raise InvalidArgument("config", config, "the risk layer is set already")
        if self.strat_name:
            raise InvalidArgument("config", config, "the risk layer is set before login")
        self._install_risk(config)

    def _install_risk(self, config: RiskConfig) -> RiskGuard:
        guard = RiskGuard(
            config,
            self.scheduler,
            instrument_of=lambda ex, iid: self.instruments.get((ex, iid)),
            mark_of=self._mid,
            is_open=lambda ex, cl: (ex, cl) in self.orders.open,
            on_state=self._on_risk_state,
            name=self.strat_name,
            portfolio=self._portfolio,
        )
        self._risk = guard
        self.orders.on_delivered = self._on_delivered
        return guard

    @property
    def portfolio(self) -> Portfolio:
        """See :attr:`IStratEnv.portfolio` (``docs/portfolio.md``)."""
        return self._portfolio

    def _on_delivered(self, exchange: Exchange, msg: Any) -> None:
        """Every report the env delivers: the portfolio first (positions), then the risk layer
        (working orders, loss limits)."""
        self._portfolio.on_report(exchange, msg)
        guard = self._risk
        if guard is not None:
            guard.on_report(exchange, msg)

    def _on_position_mismatch(self, mm: PositionMismatch) -> None:
        """The portfolio's position differed from a gateway's answer: an alert, as the
        accounting check's."""
        inst = self.instruments.get((mm.exchange, mm.instrument_id))
        name = inst.name if inst is not None else str(mm.instrument_id)
        text = (
            f"ACCOUNTING MISMATCH on {mm.exchange.name} {name}: the gateway says {mm.actual}, "
            f"the fills say {mm.expected}"
        )
        self._publish_status_soon(detail=text)
        if self.strat_name:
            self.publish_telegram(f"{self.strat_name}: {text}", priority=0)

    def _guard(self) -> RiskGuard:
        """The risk layer, put in place with no limit when the operator sets a state for a
        strategy that has no ``[risk]`` table (a kill switch needs no limits)."""
        guard = self._risk
        if guard is None:
            log.warning(
                "env: risk: %s has no [risk] table; a risk layer with no limit is put in place "
                "for the operator's trading state",
                self.strat_name or "(not logged in)",
            )
            guard = self._install_risk(RiskConfig())
        return guard

    @property
    def risk(self) -> RiskGuard | None:
        """The risk layer (None without a ``[risk]`` table): its limits, figures, refusals."""
        return self._risk

    @property
    def risk_state(self) -> TradingState:
        """See :attr:`IStratEnv.risk_state` (``Active`` without a risk layer)."""
        guard = self._risk
        return TradingState.Active if guard is None else guard.effective_state

    @property
    def risk_refusals(self) -> int:
        """Requests the risk layer refused."""
        guard = self._risk
        return 0 if guard is None else guard.refusals

    def set_risk_state(self, state: TradingState, reason: str = "operator") -> bool:
        """Set the trading state (the operator's kill switch; the ``risk`` command). ``Halted``
        cancels the open orders (and flattens if ``flatten_on_halt``). False if it was in that
        state already.

        Raises:
            InvalidArgumentType: ``state`` is not a TradingState.
            InvalidArgument: the env has no risk layer.
        """
        self._enum("state", state, TradingState)
        return self._guard().set_state(state, reason)

    def _risk_cmd(self, args: list[str]) -> str:
        """The ``risk`` command: ``risk`` shows the state, ``risk halted [why]`` sets it."""
        if args:
            try:
                state = parse_state(args[0])
            except ValueError as exc:
                raise InvalidArgument("state", args[0], str(exc)) from None
            why = " ".join(args[1:])
            if not self._guard().set_state(state, f"operator{': ' + why if why else ''}"):
                return f"already {state.name}"
        guard = self._risk
        if guard is None:
            return "Active (no [risk] table: no limits); 0 refusals"
        desk = (
            f"; desk {guard.desk_state.name} ({guard.desk_reason})"
            if guard.desk_state is not TradingState.Active
            else ""
        )
        text = f"{guard.state.name} ({guard.state_reason}){desk}; {guard.refusals} refusals"
        return text + (f" {dict(sorted(guard.refused_by.items()))}" if guard.refused_by else "")

    def _on_risk_defaults(self, msg: m.RiskDefaults) -> None:
        """The desk's limits (``mlthon control --desk``): under the strategy's own ``[risk]``
        table, a limit it leaves off takes the desk's."""
        source = f"the desk's [risk] ({msg.source[:200] or 'control'})"
        try:
            desk = read_risk_table(msg.table, source)
        except ConfigError as exc:
            # The control service checked it at its start: a version mismatch. The strategy's
            # own limits stay; the operator hears of it.
            log.error("env: risk: %s refused: %s; the strategy's own limits stay", source, exc)
            self._publish_status_soon(detail=f"risk: desk limits refused: {exc}")
            return
        if desk is None:
            return
        guard = self._risk
        if guard is None:
            self._own_risk = RiskConfig()
            guard = self._install_risk(desk)
        else:
            if self._own_risk is None:
                self._own_risk = guard.config
            guard.reconfigure(self._own_risk.with_defaults(desk))
        log.info("env: risk: %s applied under the strategy's own limits", source)

    def _on_risk_state_msg(self, msg: m.RiskStateSet) -> None:
        """The control service set a trading state (a command, or the recorded one at login)."""
        ok, detail = True, ""
        if msg.scope not in m.RISK_SCOPES:
            ok, detail = False, f"unknown scope {msg.scope[:40]!r}; one of {m.RISK_SCOPES}"
            log.warning("env: risk state: %s", detail)
        else:
            reason = msg.reason[:500]
            guard = self._guard()
            # Not told back to the control service (it recorded it); a login's restore (no
            # id) is not alerted again either.
            self._risk_from_ctl = True
            self._risk_restore = not msg.cmd_id
            try:
                if msg.scope == "desk":
                    changed = guard.set_desk_state(msg.state, reason)
                else:
                    changed = guard.set_state(msg.state, reason)
            finally:
                self._risk_from_ctl = self._risk_restore = False
            detail = ("" if changed else f"already {msg.scope} {msg.state.name}: ") + (
                self._risk_cmd([])
            )
            if not msg.cmd_id and msg.state is not TradingState.Active:
                log.warning(
                    "env: risk: %s restored at login: %s (%s)", msg.scope, msg.state.name, reason
                )
        if msg.cmd_id and msg.reply_to:
            self.bus.publish(
                msg.reply_to,
                m.CmdResult(cmd_id=msg.cmd_id, strat=self.strat_name, ok=ok, detail=detail),
                qos=1,
            )

    def _mid(self, exchange: Exchange, instrument_id: int) -> Decimal | None:
        """The mid of the env's book of the instrument (None: not subscribed, not valid, or a
        side empty): the risk layer's reference price."""
        st = self._md.get((exchange, instrument_id))
        if st is None or not st.book.valid:
            return None
        tb = st.book.book
        bid = tb.bid
        ask = tb.ask
        if bid == NO_BID or ask == NO_ASK:
            return None
        # Asked several times per order (price band, exposure, the marks): made once per top.
        cached = self._mids.get(st)
        if cached is not None and cached[0] == bid and cached[1] == ask:
            return cached[2]
        mid = (bid + ask) * st.book.prices.step / 2
        self._mids[st] = (bid, ask, mid)
        return mid

    def _risk_refusal(self, why: str | None) -> tuple[GtwRejectCode, str] | None:
        return None if why is None else (GtwRejectCode.RiskLimit, why)

    def _on_risk_state(self, state: TradingState, reason: str) -> None:
        """The trading state changed: a halt cancels (and flattens); the log, the status,
        Telegram and the strategy's ``on_risk_state`` are told."""
        guard = self._risk
        name = self.strat_name or "(not logged in)"
        restored = self._risk_restore
        if state is TradingState.Halted:
            flatten = guard is not None and guard.config.flatten_on_halt
            log.error(
                "env: risk: %s HALTED: %s; open orders cancelled%s",
                name,
                reason,
                ", positions closed at market" if flatten else "",
            )
            self._risk_cancel_all()
            if flatten:
                self._risk_flatten()
            if self.strat_name and not restored:
                self.publish_telegram(f"{name}: HALTED: {reason}", priority=0)
        else:
            log.warning("env: risk: %s trading state %s: %s", name, state.name, reason)
        logged_in = self.state not in (DISCONNECTED, CONNECTED)
        if guard is not None and self.strat_name and logged_in and not self._risk_from_ctl:
            # The control service records the strategy's own state, so that a restarted
            # strategy is still halted (a command's change is recorded there already).
            self.bus.publish(
                self.topics.strat_up(self.strat_name),
                m.RiskStateSet(
                    scope="strategy",
                    state=guard.state,
                    reason=guard.state_reason[:500],
                    by="risk layer",
                    ts=self.scheduler.now_ns(),
                ),
                qos=1,
            )
        self._later(self.strategy.on_risk_state, state, reason)
        self._publish_status_soon(detail=f"risk: {state.name}: {reason}")
        for listener in list(self.risk_listeners):
            listener(state, reason)

    def _risk_cancel_all(self) -> None:
        """A cancel-all to every ready gateway of the strategy's instruments (and of its open
        orders)."""
        exchanges = self.orders.open_exchanges() | {ex for ex, _ in self.instruments}
        for ex in sorted(exchanges, key=lambda e: e.value):
            if self._gateway_refusal(ex) is None and self._not_logged_in() is None:
                self.send_cancel_all(ex, None)

    def _risk_flatten(self) -> None:
        """Close every position the risk layer counts with a market order (past the layer:
        the strategy is halted)."""
        guard = self._risk
        if guard is None:
            return
        for (ex, iid), h in list(guard.holdings.items()):
            if not h.qty or self._gateway_refusal(ex) or self._not_logged_in():
                continue
            cl = str(self._new_cl_id(None))
            self._publish_new(
                ex,
                cl,
                iid,
                Side.Sell if h.qty > 0 else Side.Buy,
                Decimal(0),
                abs(h.qty),
                ExecInstructions.Unset,
                OrderType.Market,
                TIF.IOC,
                h.inst.kind is not InstrumentKind.Spot,
                None,
                TriggerDirection.Unset,
            )

    # ==========================================================================================
    # order entry
    # ==========================================================================================

    def _can_trade(self) -> tuple[GtwRejectCode, str] | None:
        if not self.strat_name or self.state in (DISCONNECTED, CONNECTED, LOGGING_IN):
            return GtwRejectCode.NotLoggedIn, f"not logged in (state {self.state})"
        if self._run == STOPPED or self._stop_acked:
            return (
                GtwRejectCode.StrategyStopped,
                "strategy is stopped (stop acknowledged, or the operator wants it stopped); "
                "requests resume after on_start",
            )
        return None

    def _gateway_refusal(self, exchange: Exchange) -> tuple[GtwRejectCode, str] | None:
        status = self._gtw_status.get(exchange)
        if status is None:
            return GtwRejectCode.GtwNotReady, f"no gateway for {exchange.name} has reported"
        if status is not _READY:
            return GtwRejectCode.GtwNotReady, f"gateway {exchange.name} is {status.name}"
        return None

    def _later(self, fn: Callable[..., Any], *args: Any) -> None:
        self.scheduler.call_soon(self.reactor.invoke, fn, *args)

    def _new_cl_id(self, client_id: object) -> int:
        return self.orders.new_id(client_id)

    @staticmethod
    def _enum(name: str, value: object, cls: type[Any]) -> Any:
        if not isinstance(value, cls):
            raise InvalidArgumentType(name, value, f"must be a {cls.__name__} member")
        return value

    @staticmethod
    def _decimal(name: str, value: object) -> Decimal:
        try:
            d = to_decimal(value, name)
        except TypeError as exc:
            raise InvalidArgumentType(name, value, str(exc)) from None
        except ValueError as exc:
            raise InvalidArgument(name, value, str(exc)) from None
        why = decimal_problem(d, signed=True)  # 1e30, 1E+400, 1e-30: not a price or a size
        if why is not None:
            raise InvalidArgument(name, value, why)
        return d

    def _check_price(self, name: str, value: object, inst: Instrument) -> Decimal:
        d = self._decimal(name, value)
        if d <= 0:
            raise InvalidArgument(name, value, "must be > 0")
        if d % inst.tick_size:
            raise InvalidArgument(
                name,
                value,
                f"is off {inst.name}'s tick {inst.tick_size} (e.g. use "
                f"{Price._make(d).round_to(inst.tick_size)})",
            )
        return d

    def _check_qty(self, name: str, value: object, inst: Instrument) -> Decimal:
        d = self._decimal(name, value)
        if d <= 0:
            raise InvalidArgument(name, value, "must be > 0")
        if d % inst.lot_size:
            raise InvalidArgument(name, value, f"is off {inst.name}'s lot {inst.lot_size}")
        if d < inst.min_qty:
            raise InvalidArgument(name, value, f"is below {inst.name}'s minimum {inst.min_qty}")
        return d

    def send_new_order(
        self,
        client_id: int | None,
        exchange: Exchange,
        instrument_id: int,
        side: Side,
        price: PriceLike,
        qty: QtyLike,
        exec_instr: ExecInstructions = ExecInstructions.Unset,
        ord_type: OrderType = OrderType.Limit,
        time_in_force: TIF = TIF.GTC,
        close_position: bool = False,
        *,
        stop_price: PriceLike | None = None,
        trigger_direction: TriggerDirection = TriggerDirection.Unset,
    ) -> int:
        self._check_exchange(exchange)
        inst = self._instrument(exchange, instrument_id)
        self._enum("side", side, Side)
        if side is _SIDE_UNSET:
            raise InvalidArgument("side", side, "must be Side.Buy or Side.Sell")
        self._enum("exec_instr", exec_instr, ExecInstructions)
        self._enum("ord_type", ord_type, OrderType)
        self._enum("time_in_force", time_in_force, TIF)
        self._enum("trigger_direction", trigger_direction, TriggerDirection)
        if not isinstance(close_position, bool):
            raise InvalidArgumentType("close_position", close_position, "must be a bool")
        if ord_type is _TYPE_UNSET:
            ord_type = _LIMIT
        if time_in_force is _TIF_UNSET:
            time_in_force = _GTC
        q = self._check_qty("qty", qty, inst)
        if ord_type in MARKET_ORDER_TYPES:
            p = self._decimal("price", price) if price is not None else Decimal(0)
            if p < 0:
                raise InvalidArgument("price", price, "must be >= 0")
            if exec_instr is _POST_ONLY:
                raise InvalidArgument("exec_instr", exec_instr, "a market order cannot post")
        else:
            p = self._check_price("price", price, inst)
        stop: str | None = None
        if ord_type in STOP_ORDER_TYPES:
            if stop_price is None:
                raise InvalidArgument("stop_price", stop_price, f"required for {ord_type.name}")
            stop = str(self._check_price("stop_price", stop_price, inst))
            if trigger_direction is _TRIGGER_UNSET:
                raise InvalidArgument(
                    "trigger_direction", trigger_direction, f"Up or Down for {ord_type.name}"
                )
        elif stop_price is not None:
            raise InvalidArgument("stop_price", stop_price, "only for StopLimit/StopMarket")
        cid = self._new_cl_id(client_id)
        cl = str(cid)
        refusal = self._can_trade() or self._gateway_refusal(exchange)
        risk = self._risk
        if refusal is None and risk is not None:
            refusal = self._risk_refusal(risk.check_new(exchange, inst, cl, side, p, q))
        if refusal is not None:
            self._later(self.strategy.on_new_order_reject, exchange, cl, *refusal)
            return cid
        self._publish_new(
            exchange,
            cl,
            instrument_id,
            side,
            p,
            q,
            exec_instr,
            ord_type,
            time_in_force,
            close_position,
            stop,
            trigger_direction,
        )
        return cid

    def _publish_new(
        self,
        exchange: Exchange,
        cl: str,
        instrument_id: int,
        side: Side,
        p: Decimal,
        q: Decimal,
        exec_instr: ExecInstructions,
        ord_type: OrderType,
        time_in_force: TIF,
        close_position: bool,
        stop: str | None,
        trigger_direction: TriggerDirection,
    ) -> None:
        self.orders.sent_new(exchange, cl, instrument_id, q, side, p)
        self.bus.publish(
            self.topics.gtw_req(exchange, self.strat_name),
            m.NewOrder(
                strat=self.strat_name,
                cl_id=cl,
                instrument_id=instrument_id,
                side=side,
                price=str(p),
                qty=str(q),
                exec_instr=exec_instr,
                ord_type=ord_type,
                tif=time_in_force,
                close_position=close_position,
                stop_price=stop,
                trigger_dir=trigger_direction,
                ts=self.scheduler.now_ns(),
            ),
            qos=1,
        )

    def _cl(self, name: str, value: object) -> str:
        """The wire form of a client order id given to modify, cancel or status: the one rule
        of :func:`~mlthon.basics.sanity.int_cl_id_problem`, as for new orders."""
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidArgumentType(name, value, "must be the int returned by send_new_order")
        why = int_cl_id_problem(value)
        if why is not None:
            raise InvalidArgument(name, value, why)
        return str(value)

    def send_modify_order(
        self,
        exchange: Exchange,
        client_ord_id: int | str,
        new_price: PriceLike | None,
        new_qty: QtyLike | None,
    ) -> None:
        self._check_exchange(exchange)
        cl = self._cl("client_ord_id", client_ord_id)
        if new_price is None and new_qty is None:
            raise InvalidArgument("new_price", None, "give new_price, new_qty or both")
        iid = self.orders.instrument_of(exchange, cl)
        inst = self.instruments.get((exchange, iid)) if iid is not None else None
        dp = dq = None
        if new_price is not None:
            dp = (
                self._check_price("new_price", new_price, inst)
                if inst
                else self._decimal("new_price", new_price)
            )
        if new_qty is not None:
            dq = (
                self._check_qty("new_qty", new_qty, inst)
                if inst
                else self._decimal("new_qty", new_qty)
            )
        p = None if dp is None else str(dp)
        q = None if dq is None else str(dq)
        refusal = self._can_trade() or self._gateway_refusal(exchange)
        risk = self._risk
        if refusal is None and risk is not None:
            refusal = self._risk_refusal(risk.check_modify(exchange, cl, dp, dq))
        if refusal is not None:
            self._later(self.strategy.on_modify_order_reject, exchange, cl, *refusal)
            return
        self.orders.sent_modify(exchange, cl)
        self.bus.publish(
            self.topics.gtw_req(exchange, self.strat_name),
            m.ModifyOrder(
                strat=self.strat_name,
                cl_id=cl,
                new_price=p,
                new_qty=q,
                ts=self.scheduler.now_ns(),
            ),
            qos=1,
        )

    def send_cancel_order(
        self, exchange: Exchange, instrument_id: int, client_ord_id: int | str
    ) -> None:
        self._check_exchange(exchange)
        inst = self._instrument(exchange, instrument_id)
        cl = self._cl("client_ord_id", client_ord_id)
        refusal = self._gateway_refusal(exchange) or self._not_logged_in()
        risk = self._risk
        if refusal is None and risk is not None:
            refusal = self._risk_refusal(risk.check_cancel(inst, cl))
        if refusal is not None:
            self._later(self.strategy.on_cancel_order_reject, exchange, cl, *refusal)
            return
        self.orders.sent_cancel(exchange, cl)
        self.bus.publish(
            self.topics.gtw_req(exchange, self.strat_name),
            m.CancelOrder(
                strat=self.strat_name,
                cl_id=cl,
                instrument_id=instrument_id,
                ts=self.scheduler.now_ns(),
            ),
            qos=1,
        )

    def _not_logged_in(self) -> tuple[GtwRejectCode, str] | None:
        # Cancels stay allowed while stopped: pulling orders is always safe.
        if not self.strat_name or self.state in (DISCONNECTED, CONNECTED, LOGGING_IN):
            return GtwRejectCode.NotLoggedIn, f"not logged in (state {self.state})"
        return None

    def send_cancel_all(self, exchange: Exchange, instrument_id: int | None) -> None:
        self._check_exchange(exchange)
        iid = 0
        if instrument_id is not None:
            iid = self._instrument(exchange, instrument_id).instrument_id
        refusal = self._gateway_refusal(exchange) or self._not_logged_in()
        if refusal is not None:
            self._later(self.strategy.on_cancel_all_reject, exchange, iid, *refusal)
            return
        self.orders.sent_cancel_all(exchange, iid)
        self.bus.publish(
            self.topics.gtw_req(exchange, self.strat_name),
            m.CancelAll(strat=self.strat_name, instrument_id=iid, ts=self.scheduler.now_ns()),
            qos=1,
        )

    # --- fetches -------------------------------------------------------------------------------

    def _fetch(self, exchange: Exchange, msg: m.Msg, rqst_type: str) -> None:
        refusal = self._gateway_refusal(exchange) or self._not_logged_in()
        if refusal is not None:
            code, why = refusal
            self._later(self.strategy.on_request_reject, exchange, code, why, rqst_type)
            return
        self.bus.publish(self.topics.gtw_req(exchange, self.strat_name), msg, qos=1)

    def fetch_account_info(self, exchange: Exchange) -> None:
        self._check_exchange(exchange)
        self._fetch(exchange, m.FetchAccount(strat=self.strat_name), "FetchAccountInfo")

    def fetch_wallet_info(self, exchange: Exchange, coin: str) -> None:
        self._check_exchange(exchange)
        if not isinstance(coin, str) or not coin.strip():
            raise InvalidArgumentType("coin", coin, "must be a coin name such as 'USDT'")
        self._fetch(exchange, m.FetchWallet(strat=self.strat_name, coin=coin), "FetchWalletInfo")

    def fetch_position_info(self, exchange: Exchange, instrument_id: int) -> None:
        self._check_exchange(exchange)
        self._instrument(exchange, instrument_id)
        self._fetch(
            exchange,
            m.FetchPosition(strat=self.strat_name, instrument_id=instrument_id),
            "FetchPositionInfo",
        )

    def fetch_funding_info(self, exchange: Exchange, instrument_id: int) -> None:
        self._check_exchange(exchange)
        self._instrument(exchange, instrument_id)
        self._fetch(
            exchange,
            m.FetchFunding(strat=self.strat_name, instrument_id=instrument_id),
            "FetchFundingInfo",
        )

    def fetch_order_status(
        self, exchange: Exchange, instrument_id: int, client_ord_id: int | str
    ) -> None:
        self._check_exchange(exchange)
        self._instrument(exchange, instrument_id)
        cl = self._cl("client_ord_id", client_ord_id)
        self._fetch(
            exchange,
            m.FetchOrderStatus(strat=self.strat_name, instrument_id=instrument_id, cl_id=cl),
            "FetchOrderStatus",
        )

    def fetch_orders_info(self, exchange: Exchange, instrument_id: int | None = None) -> None:
        self._check_exchange(exchange)
        iid = 0
        if instrument_id is not None:
            iid = self._instrument(exchange, instrument_id).instrument_id
        self._fetch(
            exchange, m.FetchOrders(strat=self.strat_name, instrument_id=iid), "FetchOrdersInfo"
        )

    # ==========================================================================================
    # reports
    # ==========================================================================================

    def _on_report(self, topic: str, msg: Any) -> None:
        rid = getattr(msg, "req_id", "")
        asker = self._own_asks.pop(rid, None) if rid else None
        ex = self.topics.exchange_of(topic)
        if asker is not None and ex is not None:
            self.reports_received += 1
            if type(msg) is m.PositionInfo or type(msg) is m.WalletInfo:
                self._portfolio.on_report(ex, msg)  # the accounting check's: reconciled too
            asker(ex, msg)  # the env asked: the answer is its own
        elif rid.startswith("env-"):
            log.info("env: late answer %s to an own request dropped", type(msg).__name__)
        elif ex is None:
            log.warning("env: report on unparsable topic %s dropped", topic)
        else:
            self.reports_received += 1
            self.orders.on_report(ex, msg, self.scheduler.now_ns())
        for listener in self.report_listeners:
            listener(topic, msg)

    # ==========================================================================================

    def close(self) -> None:
        """Cancel timers and subscriptions (the process is ending)."""
        self.timers.cancel_all()
        self.feeds.close()
        if self._risk is not None:
            self._risk.close()
        self.start_gate.close()
        self.stop_ack.close()
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None
        for sub in self._subs:
            self.bus.unsubscribe(sub)
        self._subs.clear()
        for st in self._md.values():
            if st.topic_sub is not None:
                self.bus.unsubscribe(st.topic_sub)
                st.topic_sub = None

    @property
    def stopped(self) -> bool:
        """True once the stop was acknowledged (or the operator wants the strategy stopped),
        until the next start."""
        return self._run == STOPPED
