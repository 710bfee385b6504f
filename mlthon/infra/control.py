"""The control service: the "trading system" a strategy logs into.

It knows every strategy's config, and what the operator last asked of each: running or stopped
(the *intent*; :mod:`mlthon.infra.operator_intent`). The intent starts as the config's
``auto_start`` and changes only with a ``start`` or ``stop`` command; it is kept in a file
(``state_path``) so that it survives re-logins, broker restarts and restarts of this service.
When a strategy logs in (on its own topic ``{root}/ctl/login/{strat}``; a login naming another
strategy is dropped) it sends, on the strategy's control topic and in this order: its
instruments, then ``Start`` if the operator wants it running or ``Idle`` if stopped (never a
fresh ``Start`` for a stopped strategy), then its parameters. The env turns them into
``on_start`` -> ``on_instruments`` -> ``on_strat_params_update``.

It also routes commands (``CmdRequest`` on ``{root}/ctl/cmd``, from ``mlthon cmd`` or Telegram):

==============  ===========================================================================
``start``       intent running (saved); sends Start, and the strategy answers once
                ``on_start`` ran. On a strategy already running: answers "already running"
                and sends nothing. On one not connected: answers that it starts when it
                logs in
``stop``        intent stopped (saved before the Stop is sent); sends Stop; answered when the
                strategy's StopAck arrives, or, after ``stop_ack_timeout_s``, escalates:
                CancelAll on every gateway the strategy may trade on, StopEscalated to the
                strategy, an alert, and the answer says so. On one not connected: answers that
                it stays stopped when it logs in
``params``      ``key=value`` words checked against the strategy's parameter schema (its
                ``Params``; without one, typed as the current values:
                :mod:`mlthon.infra.strategy_params`), merged, sent as StratParams
``status``      a JSON object: strategies, gateways, feeds
``strategies``  a JSON list of the strategies and their states
``risk``        ``risk <state> [why]`` sets the trading state (``docs/risk.md``) of the strategy,
                or of every strategy when the strategy named is ``desk``: saved first, sent as
                ``RiskStateSet``, and sent again at every login (before ``Start``), so it
                survives restarts. A strategy's risk layer that halts by itself (a loss limit)
                tells this service, which saves that too. ``risk`` alone shows the state
                (forwarded to the strategy; for ``desk``, answered here)
anything else   forwarded as CmdHook to the strategy, which answers through this service
==============  ===========================================================================

**Answers go through this service.** A command's ``reply_to`` must be a reply topic
(``{root}/reply/...``); only this service (``mlthon-admin``) writes there. A hook (or a start)
it forwards to strategy ``s`` carries ``reply_to = {root}/strat/s/up``, the strategy's own topic
(the only one its ACL lets it write besides its requests); the answer that comes back there is
relayed to the asker if, and only if, it answers a command this service sent to ``s`` and has not
been answered yet. So a strategy cannot answer, nor forge an answer to, a command sent to another
strategy, nor write on any asker's reply topic (``docs/reliability.md``, access control). A
``StopAck`` is taken only from the topic of the strategy it names.

Whether a strategy is logged in comes from its logins, its retained ``StratStatus`` and its
process's ``ComponentStatus`` (whose last will says the process is gone): after a restart of
this service, a strategy that is still running does not log in again, and its retained statuses
say so.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Exchange, TradingState
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.codec import instrument_to_wire
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, Handle, Scheduler
from mlthon.infra.config import StrategyConfig, load_strategy_class
from mlthon.infra.operator_intent import (
    RUNNING,
    STOPPED,
    IntentFile,
    OperatorIntent,
    RiskIntent,
)
from mlthon.infra.risk.states import parse_state, stricter
from mlthon.infra.strategy_params import FreeParams, ParamRules, param_rules

log = logging.getLogger(__name__)

#: The name that addresses every strategy in a ``risk`` command (unless a strategy has it).
DESK = "desk"


# The env states of a strategy that is logged in (its StratStatus.state).
_LOGGED_IN_STATES = ("running", "stopping", "stopped")
# A process's ComponentStatus states saying it is gone (a clean stop, or its last will).
_GONE = ("down", "stale")
#: Commands forwarded to strategies and not answered yet, kept at most (the oldest are forgotten:
#: their answers are then dropped).
MAX_PENDING_ANSWERS = 10_000


@attrs.define
class _StratState:
    cfg: StrategyConfig
    params: dict[str, Any]
    intent: OperatorIntent
    rules: ParamRules = attrs.field(factory=FreeParams)
    state: str = "offline"
    # Start sent to (or, after a restart of the control service, seen run by) the process
    # logged in now; cleared by a stop, a new login and a logout.
    started: bool = False
    logged_in: bool = False
    pid: int = 0  # the logged-in process (its Login's, or its retained StratStatus's)
    stop_waiters: list[tuple[str, str]] = attrs.field(factory=list)
    stop_timer: Handle | None = None
    status: m.StratStatus | None = None
    proc: m.ComponentStatus | None = None
    exchanges: set[Exchange] = attrs.field(factory=set)


class ControlService:
    """Serves logins and commands for a set of strategies.

    Args:
        bus: the bus.
        scheduler: for the stop-acknowledgement deadline.
        topics: the topic layout.
        strategies: the configs of the strategies it serves.
        accept_unknown: let strategies without a config log in (with no params, every
            instrument of ``default_instruments``); otherwise they get LoginReject.
        state_path: the file keeping what the operator last asked of each strategy (None:
            memory only; see :mod:`mlthon.infra.operator_intent`).
        param_rules: strategy name -> the rules of its parameters; for a strategy not listed
            they are read from its class (``Params``), free-form if the class cannot be imported
            here (a WARNING says so).

    Raises:
        ConfigError: ``state_path`` exists but cannot be read as an intent file, or a
            strategy's ``[params]`` do not fit its schema.
    """

    def __init__(
        self,
        bus: BusBase,
        scheduler: Scheduler,
        topics: Topics,
        strategies: list[StrategyConfig],
        *,
        accept_unknown: bool = False,
        state_path: str | Path | None = None,
        param_rules: dict[str, ParamRules] | None = None,
        desk_risk: dict[str, Any] | None = None,
        desk_source: str = "",
    ) -> None:
        self.bus = bus
        #: The desk's ``[risk]`` table (checked by the caller: ``load_desk_file``), sent to every
        #: strategy at login: the defaults under its own limits.
        self.desk_risk = dict(desk_risk) if desk_risk else None
        self.desk_source = desk_source
        self.scheduler = scheduler
        self.topics = topics
        self.accept_unknown = accept_unknown
        self.intents = IntentFile(state_path)
        self.strats: dict[str, _StratState] = {}
        for cfg in strategies:
            intent = self.intents.get(cfg.name) or OperatorIntent(
                intent=RUNNING if cfg.auto_start else STOPPED,
                params=cfg.start_params,
                by="config",
            )
            rules = (param_rules or {}).get(cfg.name) or _rules_of(cfg)
            params = rules.check(cfg.params, cfg.source)
            st = _StratState(cfg=cfg, params=params, intent=intent, rules=rules)
            st.exchanges = {i.exchange for i in cfg.instruments()}
            self.strats[cfg.name] = st
            if intent.by != "config" and not intent.running:
                log.warning(
                    "control: %s stays stopped as the operator asked (%s); "
                    "`mlthon cmd %s start` starts it",
                    cfg.name,
                    _asked(intent),
                    cfg.name,
                )
        self.gateways: dict[Exchange, m.GatewayStatus] = {}
        self.feeds: dict[int, m.FeedStatus] = {}
        self._subs: list[Subscription] = []
        self.escalations = 0
        # (strategy, cmd_id) -> the asker's reply topic, for answers relayed from strat/{s}/up.
        self._pending: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.relayed = 0
        self.forged = 0  # answers dropped: no such command was sent to that strategy

    def start(self) -> None:
        """Subscribe to logins, commands, acks and statuses."""
        t = self.topics
        self._subs = [
            self.bus.subscribe(t.login_all(), self._on_login, qos=1),
            self.bus.subscribe(t.cmd(), self._on_cmd, qos=1),
            self.bus.subscribe(t.strat_up_all(), self._on_up, qos=1),
            self.bus.subscribe(t.strat_status_all(), self._on_strat_status, qos=1),
            self.bus.subscribe(t.gtw_status_all(), self._on_gtw_status, qos=1),
            self.bus.subscribe(t.feed_status_all(), self._on_feed_status, qos=1),
            self.bus.subscribe(t.component_status("strategy", "+"), self._on_strat_process, qos=1),
        ]
        log.info("control: serving %s", ", ".join(self.strats) or "no strategies")

    def stop(self) -> None:
        """Unsubscribe."""
        for s in self._subs:
            self.bus.unsubscribe(s)
        self._subs.clear()

    # --- login -----------------------------------------------------------------------------------

    def _on_login(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.Login):
            log.warning("control: unexpected %s on %s", type(msg).__name__, topic)
            return
        sender = self.topics.login_strat(topic)
        if sender != msg.strat:
            # The topic names the sender (a secured broker lets a strategy publish on its own
            # login topic only): a login in another strategy's name is dropped, never answered.
            log.warning(
                "control: login naming %r sent on %r's topic %s dropped", msg.strat, sender, topic
            )
            return
        st = self.strats.get(msg.strat)
        ctl = self.topics.strat_ctl(msg.strat)
        if st is None:
            log.warning("control: login from unknown strategy %r refused", msg.strat)
            self.bus.publish(
                ctl,
                m.LoginReject(
                    strat=msg.strat,
                    reason=f"no config for strategy {msg.strat!r}; known: {sorted(self.strats)}",
                ),
                qos=1,
            )
            return
        log.info(
            "control: %s logged in (pid %d on %s); the operator wants it %s",
            msg.strat,
            msg.pid,
            msg.host,
            st.intent.intent,
        )
        st.logged_in = True
        st.pid = msg.pid
        insts = [instrument_to_wire(i) for i in st.cfg.instruments()]
        self.bus.publish(ctl, m.Instruments(instruments=insts), qos=1)
        # The desk's limits and the trading states, before Start: on_start must not send what
        # they refuse.
        if self.desk_risk is not None:
            self.bus.publish(
                ctl, m.RiskDefaults(table=self.desk_risk, source=self.desk_source), qos=1
            )
        for scope, risk in (
            ("desk", self.intents.desk_risk),
            ("strategy", self.intents.risk.get(msg.strat)),
        ):
            if risk is not None and risk.state is not TradingState.Active:
                self.bus.publish(ctl, _risk_msg(scope, risk), qos=1)
        if st.intent.running:
            st.started = True
            # A start the operator asked for (not the config's default) carries an id: an env
            # that acknowledged a stop before it logged in again starts only on an operator's
            # start, and this is one (asked while the strategy was away).
            by_operator = st.intent.by not in ("", "config")
            cmd_id = f"intent-{st.intent.ts}" if by_operator else ""
            self.bus.publish(ctl, m.Start(params=st.intent.params, cmd_id=cmd_id), qos=1)
        else:
            st.started = False
            self.bus.publish(ctl, m.Idle(detail=self._idle_detail(st)), qos=1)
        self.bus.publish(ctl, m.StratParams(params=st.params), qos=1)

    @staticmethod
    def _idle_detail(st: _StratState) -> str:
        if st.intent.by == "config":
            return f"auto_start is false: {st.cfg.name} waits for a start command"
        return f"stopped as the operator asked ({_asked(st.intent)}); send start to run it"

    def _set_intent(self, strat: str, intent: str, params: str, by: str) -> str:
        """Record what the operator asked; returns "" or why it could not be saved."""
        st = self.strats[strat]
        st.intent = OperatorIntent(
            intent=intent, params=params, by=by or "unknown", ts=self.scheduler.now_ns()
        )
        try:
            self.intents.set(strat, st.intent)
        except OSError as exc:
            text = (
                f"control: {strat} {intent} as asked, but not saved to {self.intents.path}: "
                f"{exc}; a restart of the control service would forget it"
            )
            log.error("%s", text)
            self.bus.publish(
                self.topics.telegram(strat),
                m.TelegramPublish(strat=strat, text=text, priority=0, ts=self.scheduler.now_ns()),
                qos=1,
            )
            return f" (not saved: {exc})"
        return ""

    # --- commands --------------------------------------------------------------------------------

    def _reply(self, req: m.CmdRequest, ok: bool, detail: str) -> None:
        if req.reply_to:
            self.bus.publish(
                req.reply_to,
                m.CmdResult(cmd_id=req.cmd_id, strat=req.strat, ok=ok, detail=detail),
                qos=1,
            )

    def _is_reply_topic(self, topic: str) -> bool:
        prefix = self.topics.reply("")
        rest = topic[len(prefix) :]
        return topic.startswith(prefix) and bool(rest) and not any(c in rest for c in "+#\0")

    def _answer_via_control(self, strat: str, cmd_id: str, reply_to: str) -> str:
        """The ``reply_to`` of a command forwarded to ``strat``: the strategy's own up topic;
        its answer there is relayed to ``reply_to`` (once)."""
        if not reply_to:
            return ""
        key = (strat, cmd_id)
        self._pending.pop(key, None)
        self._pending[key] = reply_to
        while len(self._pending) > MAX_PENDING_ANSWERS:
            (old_strat, old_id), _ = self._pending.popitem(last=False)
            log.warning(
                "control: %d commands unanswered; forgot %s's command %s (its answer will be "
                "dropped)",
                MAX_PENDING_ANSWERS,
                old_strat,
                old_id,
            )
        return self.topics.strat_up(strat)

    def _relay(self, topic: str, msg: m.CmdResult) -> None:
        strat = self._up_strat(topic)
        reply_to = self._pending.pop((strat, msg.cmd_id), None) if strat else None
        if reply_to is None:
            self.forged += 1
            log.warning(
                "control: dropped an answer on %s to command %r: no such command was sent to %s "
                "(or it was answered already)",
                topic,
                msg.cmd_id,
                strat,
            )
            return
        self.relayed += 1
        self.bus.publish(
            reply_to,
            m.CmdResult(cmd_id=msg.cmd_id, strat=strat or "", ok=msg.ok, detail=msg.detail),
            qos=1,
        )

    def _up_strat(self, topic: str) -> str | None:
        """The strategy of a ``strat/{strat}/up`` topic."""
        parts = topic[len(self.topics.root) + 1 :].split("/")
        if len(parts) == 3 and parts[0] == "strat" and parts[2] == "up":
            return parts[1]
        return None

    def _on_cmd(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.CmdRequest):
            log.warning("control: unexpected %s on %s", type(msg).__name__, topic)
            return
        name = msg.name.lower()
        log.info("control: command %s %s %s from %s", name, msg.strat, msg.args, msg.sender)
        if msg.reply_to and not self._is_reply_topic(msg.reply_to):
            log.warning(
                "control: command %s from %s dropped: its reply_to %r is not a reply topic (%s...)",
                name,
                msg.sender,
                msg.reply_to[:100],
                self.topics.reply(""),
            )
            return
        if name == "strategies":
            self._reply(msg, True, json.dumps(self.strategies()))
            return
        if name == "status":
            self._reply(msg, True, json.dumps(self.status(msg.strat or None)))
            return
        if name == "risk" and msg.strat == DESK and DESK not in self.strats:
            self._desk_risk(msg)
            return
        st = self.strats.get(msg.strat)
        if st is None:
            self._reply(msg, False, f"unknown strategy {msg.strat!r}; known: {sorted(self.strats)}")
            return
        ctl = self.topics.strat_ctl(msg.strat)
        if name == "params":
            try:
                update = st.rules.assign(list(msg.args), st.params, f"params of {msg.strat}")
            except ConfigError as exc:
                self._reply(msg, False, f"params not changed: {exc}")
                return
            if not update:
                self._reply(msg, False, "params not changed: give key=value words")
                return
            st.params.update(update)
            self.bus.publish(ctl, m.StratParams(params=st.params), qos=1)
            self._reply(msg, True, "updated " + ", ".join(f"{k}={v!r}" for k, v in update.items()))
            return
        if name == "start":
            self._start(st, msg)
            return
        if name == "risk" and msg.args:
            self._strategy_risk(st, msg)
            return
        if name == "stop" and not st.logged_in:
            unsaved = self._set_intent(msg.strat, STOPPED, st.intent.params, msg.sender)
            self._reply(
                msg,
                True,
                f"strategy {msg.strat} is not connected; it stays stopped when it logs in{unsaved}",
            )
            return
        if not st.logged_in:
            self._reply(msg, False, f"strategy {msg.strat} is not connected")
            return
        if name == "stop":
            self.request_stop(
                msg.strat, " ".join(msg.args), msg.cmd_id, msg.reply_to, by=msg.sender
            )
        else:
            self.bus.publish(
                ctl,
                m.CmdHook(
                    cmd_id=msg.cmd_id,
                    name=name,
                    args=list(msg.args),
                    reply_to=self._answer_via_control(msg.strat, msg.cmd_id, msg.reply_to),
                    sent_ts=self.scheduler.now_ns(),
                ),
                qos=1,
            )

    # --- trading states --------------------------------------------------------------------

    def _risk_intent(self, msg: m.CmdRequest) -> RiskIntent | str:
        """The state a ``risk <state> [why]`` command asks for, or why it is not one."""
        try:
            state = parse_state(msg.args[0])
        except ValueError as exc:
            return str(exc)
        why = " ".join(msg.args[1:])[:400]
        return RiskIntent(
            state=state,
            reason=f"operator{': ' + why if why else ''}",
            by=msg.sender or "unknown",
            ts=self.scheduler.now_ns(),
        )

    def _save_risk(self, strat: str | None, intent: RiskIntent) -> str:
        """Record a trading state; returns "" or why it could not be saved."""
        try:
            self.intents.set_risk(strat, intent)
        except OSError as exc:
            what = "the desk" if strat is None else strat
            log.error(
                "control: %s %s as asked, but not saved to %s: %s; a restart of the control "
                "service would forget it",
                what,
                intent.state.name,
                self.intents.path,
                exc,
            )
            return f" (not saved: {exc})"
        return ""

    def _strategy_risk(self, st: _StratState, msg: m.CmdRequest) -> None:
        intent = self._risk_intent(msg)
        if isinstance(intent, str):
            self._reply(msg, False, intent)
            return
        strat = msg.strat
        unsaved = self._save_risk(strat, intent)
        log.warning(
            "control: %s trading state %s by %s (%s)",
            strat,
            intent.state.name,
            intent.by,
            intent.reason,
        )
        if not st.logged_in:
            self._reply(
                msg,
                True,
                f"strategy {strat} is not connected; it is {intent.state.name} when it logs "
                f"in{unsaved}",
            )
            return
        # An id either way: a RiskStateSet without one is a login's restore (no alert).
        cmd_id = msg.cmd_id or f"risk-{intent.ts}"
        reply_to = self._answer_via_control(strat, cmd_id, msg.reply_to)
        self.bus.publish(
            self.topics.strat_ctl(strat),
            _risk_msg("strategy", intent, cmd_id=cmd_id, reply_to=reply_to),
            qos=1,
        )

    def _desk_risk(self, msg: m.CmdRequest) -> None:
        """``risk`` for the desk: every strategy, logged in now or later."""
        current = self.intents.desk_risk
        if not msg.args:
            text = "Active" if current is None else f"{current.state.name} ({current.reason})"
            self._reply(msg, True, f"desk {text}")
            return
        intent = self._risk_intent(msg)
        if isinstance(intent, str):
            self._reply(msg, False, intent)
            return
        unsaved = self._save_risk(None, intent)
        log.warning(
            "control: desk trading state %s by %s (%s)", intent.state.name, intent.by, intent.reason
        )
        told = []
        for name, st in sorted(self.strats.items()):
            if st.logged_in:
                # With an id (no reply): each strategy alerts as for its own command.
                self.bus.publish(
                    self.topics.strat_ctl(name),
                    _risk_msg("desk", intent, cmd_id=f"desk-{intent.ts}"),
                    qos=1,
                )
                told.append(name)
        away = sorted(set(self.strats) - set(told))
        self._reply(
            msg,
            True,
            f"desk {intent.state.name}: sent to {', '.join(told) or 'no strategy'}"
            + (f"; {', '.join(away)} get it when they log in" if away else "")
            + unsaved,
        )

    def _on_risk_report(self, topic: str, msg: m.RiskStateSet) -> None:
        """A strategy's risk layer changed its own state (a loss limit): saved for its
        restarts."""
        strat = self._up_strat(topic)
        if strat is None or strat not in self.strats or msg.scope != "strategy":
            log.warning("control: risk state from %s (scope %r) dropped", topic, msg.scope[:20])
            return
        intent = RiskIntent(
            state=msg.state, reason=msg.reason[:500], by="risk layer", ts=self.scheduler.now_ns()
        )
        log.warning("control: %s's risk layer: %s (%s)", strat, msg.state.name, intent.reason)
        self._save_risk(strat, intent)

    def _start(self, st: _StratState, msg: m.CmdRequest) -> None:
        strat = msg.strat
        if st.intent.running and st.logged_in and st.started:
            # on_start ran (or is about to) in the process logged in now: not again.
            log.info("control: start of %s: already running; nothing sent", strat)
            self._reply(msg, True, "already running")
            return
        params = " ".join(msg.args)
        unsaved = self._set_intent(strat, RUNNING, params, msg.sender)
        if not st.logged_in:
            self._reply(
                msg, True, f"strategy {strat} is not connected; it starts when it logs in{unsaved}"
            )
            return
        st.started = True
        # The strategy answers once on_start ran.
        self.bus.publish(
            self.topics.strat_ctl(strat),
            m.Start(
                params=params,
                cmd_id=msg.cmd_id,
                reply_to=self._answer_via_control(strat, msg.cmd_id, msg.reply_to),
            ),
            qos=1,
        )

    def request_stop(
        self, strat: str, params: str = "", cmd_id: str = "", reply_to: str = "", by: str = ""
    ) -> None:
        """Record that the operator wants ``strat`` stopped (saved first), send it Stop and arm
        the escalation deadline."""
        st = self.strats[strat]
        self._set_intent(strat, STOPPED, st.intent.params, by)
        st.started = False
        st.stop_waiters.append((cmd_id, reply_to))
        self.bus.publish(self.topics.strat_ctl(strat), m.Stop(params=params, cmd_id=cmd_id), qos=1)
        if st.stop_timer is None:
            st.stop_timer = self.scheduler.call_later(
                int(st.cfg.stop_ack_timeout_s * NS_PER_S), self._escalate, strat
            )

    def _on_up(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.CmdResult):
            self._relay(topic, msg)
            return
        if isinstance(msg, m.RiskStateSet):
            self._on_risk_report(topic, msg)
            return
        if isinstance(msg, m.StopAck):
            sender = self._up_strat(topic)
            if sender != msg.strat:
                # A strategy may write only its own up topic: an ack in another's name is forged.
                log.warning(
                    "control: stop ack naming %r sent on %r's topic %s dropped",
                    msg.strat,
                    sender,
                    topic,
                )
                return
            st = self.strats.get(msg.strat)
            if st is None:
                return
            log.info("control: %s acknowledged its stop", msg.strat)
            st.started = False
            if st.stop_timer is not None:
                st.stop_timer.cancel()
                st.stop_timer = None
            self._answer_stop(msg.strat, True, "stopped (stop acknowledged)")
        else:
            log.warning("control: unexpected %s on %s", type(msg).__name__, topic)

    def _answer_stop(self, strat: str, ok: bool, detail: str) -> None:
        st = self.strats[strat]
        for cmd_id, reply_to in st.stop_waiters:
            if reply_to:
                self.bus.publish(
                    reply_to, m.CmdResult(cmd_id=cmd_id, strat=strat, ok=ok, detail=detail), qos=1
                )
        st.stop_waiters.clear()

    def _escalate(self, strat: str) -> None:
        st = self.strats[strat]
        st.stop_timer = None
        st.started = False
        self.escalations += 1
        exchanges = sorted(st.exchanges | set(self.gateways), key=lambda e: e.value)
        now = self.scheduler.now_ns()
        for ex in exchanges:
            self.bus.publish(
                self.topics.gtw_req(ex, strat),
                m.CancelAll(strat=strat, instrument_id=0, ts=now, escalation=True),
                qos=1,
            )
        detail = (
            f"no stop ack from {strat} within {st.cfg.stop_ack_timeout_s:g}s: cancel-all sent "
            f"to {', '.join(e.name for e in exchanges) or 'no gateway'}"
        )
        log.error("control: stop escalated: %s", detail)
        self.bus.publish(
            self.topics.strat_ctl(strat), m.StopEscalated(strat=strat, detail=detail), qos=1
        )
        self.bus.publish(
            self.topics.telegram(strat),
            m.TelegramPublish(strat=strat, text=f"STOP ESCALATED: {detail}", priority=0, ts=now),
            qos=1,
        )
        self._answer_stop(strat, True, f"stop escalated: {detail}")

    # --- status ----------------------------------------------------------------------------------

    def _on_strat_status(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.StratStatus) and msg.strat in self.strats:
            st = self.strats[msg.strat]
            st.status = msg
            st.state = msg.state
            if msg.state == "disconnected" and st.logged_in and msg.pid in (0, st.pid):
                self._logout(st, "disconnected")
            self._infer_login(st)

    def _on_strat_process(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.ComponentStatus) or msg.kind != "strategy":
            return
        st = self.strats.get(msg.name)
        if st is None:
            return
        st.proc = msg
        if msg.state in _GONE and st.logged_in and msg.pid == st.pid:
            self._logout(st, f"process {msg.pid} {msg.state}: {msg.detail}")
        self._infer_login(st)

    def _logout(self, st: _StratState, why: str) -> None:
        log.info("control: %s logged out (%s)", st.cfg.name, why)
        st.logged_in = False
        st.started = False
        st.pid = 0

    def _infer_login(self, st: _StratState) -> None:
        """After a restart of this service, a strategy still running does not log in again:
        its retained StratStatus (and its process's status, unless that says it is gone) tell
        that it is logged in, and whether it runs."""
        s, p = st.status, st.proc
        if st.logged_in or s is None or s.state not in _LOGGED_IN_STATES:
            return
        if p is not None and (p.pid != s.pid or p.state in _GONE):
            # The process that published the status is gone (its will), or another one runs
            # now (it logs in itself).
            return
        log.info("control: %s is logged in (pid %d, %s, from its status)", s.strat, s.pid, s.state)
        st.logged_in = True
        st.pid = s.pid
        st.started = s.state == "running"

    def _on_gtw_status(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.GatewayStatus):
            self.gateways[msg.exchange] = msg

    def _on_feed_status(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.FeedStatus):
            self.feeds[msg.ex] = msg

    def _risk_of(self, strat: str) -> str:
        """The trading state recorded for ``strat``, the desk's when stricter."""
        own = self.intents.risk.get(strat)
        desk = self.intents.desk_risk
        state = own.state if own is not None else TradingState.Active
        if desk is None or stricter(state, desk.state) is state:
            return state.name
        return f"{desk.state.name} (desk)"

    def strategies(self) -> list[dict[str, Any]]:
        """Every strategy with its state."""
        return [
            {
                "name": name,
                "state": st.state,
                "running": st.started,
                "intent": st.intent.intent,
                "logged_in": st.logged_in,
                "risk": self._risk_of(name),
            }
            for name, st in sorted(self.strats.items())
        ]

    def status(self, strat: str | None = None) -> dict[str, Any]:
        """Strategies (one or all), gateways and feeds."""
        strats = {}
        for name, st in sorted(self.strats.items()):
            if strat and name != strat:
                continue
            s = st.status
            strats[name] = {
                "state": st.state,
                "running": st.started,
                "intent": st.intent.intent,
                "intent_by": st.intent.by,
                "risk": self._risk_of(name),
                "params": st.params,
                "callbacks": s.callbacks if s else 0,
                "callback_errors": s.callback_errors if s else 0,
                "slow_callbacks": s.slow_callbacks if s else 0,
                "detail": s.detail if s else "",
                "hooks": [h.name for h in s.hooks] if s else [],
            }
        desk = self.intents.desk_risk
        return {
            "strategies": strats,
            "desk_risk": "Active" if desk is None else desk.state.name,
            "gateways": {
                ex.name: {"status": g.status.name, "detail": g.detail}
                for ex, g in sorted(self.gateways.items(), key=lambda kv: kv[0].value)
            },
            "feeds": {
                Exchange(ex).name: {"status": f.status.name, "detail": f.detail}
                for ex, f in sorted(self.feeds.items())
                if ex in Exchange._value2member_map_
            },
        }


def _risk_msg(scope: str, r: RiskIntent, cmd_id: str = "", reply_to: str = "") -> m.RiskStateSet:
    return m.RiskStateSet(
        scope=scope,
        state=r.state,
        reason=r.reason,
        by=r.by,
        ts=r.ts,
        cmd_id=cmd_id,
        reply_to=reply_to,
    )


def _rules_of(cfg: StrategyConfig) -> ParamRules:
    """The parameter rules of ``cfg``'s class; free-form (with a WARNING) if it cannot be
    imported here.

    Raises:
        ConfigError: the class declares a ``Params`` that is not a valid schema.
    """
    try:
        cls = load_strategy_class(cfg.class_path, cfg.source)
    except ConfigError as exc:
        log.warning(
            "control: the parameters of %s are checked as free-form: cannot import its class "
            "here (%s)",
            cfg.name,
            exc,
        )
        return FreeParams()
    return param_rules(cls)


def _asked(intent: OperatorIntent) -> str:
    """``by cli:alice at 2024-08-08 12:00:00 UTC``."""
    when = datetime.fromtimestamp(intent.ts / NS_PER_S, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"by {intent.by} at {when} UTC"
