"""The Telegram bridge: one bot for many strategies, between Telegram and the bus.

Telegram -> bus: commands become :class:`~mlthon.infra.bus.messages.CmdRequest` on
``topics.cmd()``, after the access check and, for dangerous ones, a confirmation; the
:class:`~mlthon.infra.bus.messages.CmdResult` that comes back on ``topics.reply(client_id)`` is
the reply. Bus -> Telegram: ``TelegramPublish`` messages go to their strategy's chat and alerts to
the ops chat, through :class:`~mlthon.infra.telegram.delivery.Delivery`.

Life cycle (python-telegram-bot's phases, inside the caller's loop, never ``run_polling``)::

    bridge = TelegramBridge(config, bus)
    await bridge.start()      # subscribe; then, in the background, initialize (getMe, retried
                              # while Telegram is unreachable), start, updater.start_polling
    await bridge.ready.wait() # optional: polling runs
    ...
    await bridge.stop()       # updater.stop, stop, a bounded flush of the queue, shutdown

or ``async with TelegramBridge(config, bus) as bridge:``, or ``await bridge.run(shutdown_event)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import itertools
import logging
import random
import secrets
from collections.abc import Coroutine
from typing import Any

import attrs
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.messages import CmdRequest, CmdResult, StratStatus, TelegramPublish
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, Clock, Handle, LiveClock, LiveScheduler, Scheduler
from mlthon.infra.telegram.access import AccessPolicy
from mlthon.infra.telegram.alerts import Alerts
from mlthon.infra.telegram.audit import AuditEntry, AuditLog, Outcome
from mlthon.infra.telegram.commands import (
    BUILTINS,
    Directory,
    Request,
    format_help,
    format_result,
    parse_command,
    resolve,
)
from mlthon.infra.telegram.config import TelegramConfig
from mlthon.infra.telegram.confirm import (
    ConfirmBook,
    ConfirmState,
    callback_data,
    parse_callback_data,
)
from mlthon.infra.telegram.delivery import PRIORITY_ERROR, Delivery
from mlthon.infra.telegram.errors import BotApiError, BotApiRejected, BotApiUnavailable
from mlthon.infra.telegram.ptb import (
    AnyApplication,
    PtbSender,
    bot_api_errors,
    build_application,
    mask_secret,
)

log = logging.getLogger(__name__)

STOP_FLUSH_S = 2.0
TASK_CANCEL_S = 5.0
# Commands older than this (Telegram's message date) are not run: they waited while the bridge
# was down, and starting or stopping a strategy late can do harm.
MAX_COMMAND_AGE_S = 120


@attrs.frozen
class Sender:
    """Who sent a command, and where.

    Attributes:
        user_id: Telegram user id.
        username: @username without the @ ("" if none).
        chat_id: the chat.
        chat_type: ``private``, ``group``, ``supergroup`` or ``channel``.
    """

    user_id: int
    username: str
    chat_id: int
    chat_type: str


@attrs.frozen
class _Invocation:
    req: Request
    sender: Sender
    received_ns: int


@attrs.define
class _Pending:
    inv: _Invocation
    timer: Handle


class TelegramBridge:
    """Telegram control and notifications for every strategy on one bus.

    Args:
        config: the bridge's configuration (token, chats, roles, bounds).
        bus: the message bus (in-process or MQTT); the bridge does not open or close it.
        topics: topic names (default: under ``config.bus.root``).
        clock: time source (latency, confirmations, delays).
        scheduler: runs the command time-outs (default: the running loop).
        logger: where the bridge logs; the token is masked in every log record.

    Attributes:
        ready: set once polling runs (getMe answered and updates are fetched).
        failed: set when Telegram refused the bot itself (a revoked or mistyped token: 401 on
            ``getMe``); :meth:`run` then stops and raises it, and ``mlthon telegram`` exits
            non-zero. Retrying would never succeed.
        delivery: the outgoing queue.
        audit: the audit log.
    """

    def __init__(
        self,
        config: TelegramConfig,
        bus: BusBase,
        *,
        topics: Topics | None = None,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._config = config
        self._bus = bus
        self._topics = topics or Topics(config.bus.root)
        self._clock = clock or LiveClock()
        self._scheduler = scheduler
        self._log = logger or log
        self._name = f"telegram[{config.client_id}]"
        self._policy = AccessPolicy(
            users=config.users,
            permissions=config.permissions,
            group_chats=frozenset(
                {
                    *config.control_chats,
                    *config.strategy_chats.values(),
                    *(c for c in (config.ops_chat, config.default_chat) if c is not None),
                }
            ),
        )
        self.audit = AuditLog(config.audit_log, clock=self._clock, logger=self._log)
        self._directory = Directory()
        self._confirms: ConfirmBook[_Invocation] = ConfirmBook(
            int(config.confirm_timeout_s * NS_PER_S)
        )
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._subs: list[Subscription] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._no_chat_warned: set[str] = set()
        self._commands_dirty = asyncio.Event()
        self._app: AnyApplication | None = None
        self._bot_ready = False
        self._bot_username: str | None = None
        self._poll_error_logged_ns = -(2**62)
        self.ready = asyncio.Event()
        self.failed: BotApiRejected | None = None
        self._fatal = asyncio.Event()
        self.delivery: Delivery | None = None
        self.alerts: Alerts | None = None

    # ------------------------------------------------------------------------------------------
    # Life cycle
    # ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> TelegramBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, shutdown: asyncio.Event) -> None:
        """Start, run until ``shutdown`` is set, then stop.

        Raises:
            BotApiRejected: Telegram refused the bot (see :attr:`failed`); the bridge stopped.
        """
        await self.start()
        try:
            waits = {
                asyncio.ensure_future(shutdown.wait()),
                asyncio.ensure_future(self._fatal.wait()),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        finally:
            await self.stop()
        if self.failed is not None:
            raise self.failed

    async def start(self) -> None:
        """Subscribe to the bus and start delivery; connect to Telegram in the background.

        Returns once the bridge listens on the bus: messages published from then on are queued
        even while Telegram is unreachable. :attr:`ready` is set when polling runs.
        """
        if self._app is not None:
            raise RuntimeError(f"{self._name} already started")
        mask_secret(self._config.token)
        if self._scheduler is None:
            self._scheduler = LiveScheduler(self._clock)
        app = build_application(self._config)
        app.add_handler(
            MessageHandler(filters.COMMAND & filters.UpdateType.MESSAGE, self._on_command)
        )
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_error_handler(self._on_handler_error)
        self._app = app
        self.delivery = Delivery(
            PtbSender(app.bot, lambda: self._bot_ready),
            self._config.delivery,
            clock=self._clock,
            notice_chat=self._config.ops_chat,
            logger=self._log,
        )
        t = self._topics
        self._subs = [
            self._bus.subscribe(t.reply(self._config.client_id), self._on_reply, qos=1),
            self._bus.subscribe(t.telegram_all(), self._on_publish, qos=1),
            self._bus.subscribe(t.strat_status_all(), self._on_strat_status, qos=1),
        ]
        if self._config.ops_chat is not None:
            self.alerts = Alerts(self._bus, t, self._alert, logger=self._log)
            self.alerts.start()
        self._spawn("delivery", self.delivery.run())
        self._spawn("connect", self._connect())
        self._spawn("commands", self._commands_loop())
        self._log.info("%s: started; connecting to Telegram", self._name)

    async def stop(self) -> None:
        """Stop polling, flush what can be sent within a few seconds, release everything."""
        app = self._app
        if app is None:
            return
        for sub in self._subs:
            self._bus.unsubscribe(sub)
        self._subs = []
        if self.alerts is not None:
            self.alerts.stop()
        await self._cancel_task("connect")
        with contextlib.suppress(BotApiError), bot_api_errors("stop"):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
        for pending in self._pending.values():
            pending.timer.cancel()
        delivery = self.delivery
        flush = delivery is not None and delivery.online and delivery.pending > 0
        if flush and delivery is not None and not await delivery.wait_idle(STOP_FLUSH_S):
            self._log.warning("%s: %d message(s) left unsent at stop", self._name, delivery.pending)
        for role in list(self._tasks):
            await self._cancel_task(role)
        self._bot_ready = False
        with contextlib.suppress(BotApiError), bot_api_errors("shutdown"):
            await app.shutdown()
        self._app = None
        self.ready.clear()
        self._log.info("%s: stopped", self._name)

    def _spawn(self, role: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"{self._name}.{role}")
        self._tasks[role] = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.error("%s: task %s failed", self._name, task.get_name(), exc_info=exc)

    async def _cancel_task(self, role: str) -> None:
        task = self._tasks.pop(role, None)
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=TASK_CANCEL_S)
        if not done:
            self._log.warning("%s: task %s did not stop in time", self._name, task.get_name())

    async def _connect(self) -> None:
        app = self._app
        assert app is not None
        assert app.updater is not None
        d = self._config.delivery
        backoff = d.retry_min_s
        while True:
            try:
                with bot_api_errors("getMe"):
                    await app.initialize()
                break
            except BotApiRejected as exc:
                self._log.error(
                    "%s: Telegram refused the bot (%s); check the token", self._name, exc
                )
                self.failed = exc
                self._fatal.set()
                return
            except BotApiUnavailable as exc:
                self._log.warning("%s: Telegram unreachable (%s); retrying", self._name, exc)
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, d.retry_max_s)
        self._bot_username = app.bot.username
        self._bot_ready = True
        await app.start()
        await app.updater.start_polling(
            poll_interval=0.0,
            timeout=dtm.timedelta(seconds=self._config.poll_timeout_s),
            bootstrap_retries=-1,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            drop_pending_updates=True,
            error_callback=self._on_poll_error,
        )
        self._commands_dirty.set()
        self.ready.set()
        self._log.info("%s: polling as @%s", self._name, self._bot_username)

    def _on_poll_error(self, exc: Exception) -> None:
        # Called by PTB for each failed getUpdates; it retries by itself, with back-off. One
        # warning a minute is enough during a long outage.
        now = self._clock.now_ns()
        level = logging.DEBUG
        if now - self._poll_error_logged_ns >= 60 * NS_PER_S:
            self._poll_error_logged_ns = now
            level = logging.WARNING
        self._log.log(level, "%s: polling failed (%s); PTB retries", self._name, exc)

    async def _on_handler_error(self, update: object, context: Any) -> None:
        self._log.error("%s: handler failed on an update", self._name, exc_info=context.error)

    async def _commands_loop(self) -> None:
        # Keeps Telegram's command menu (setMyCommands) in line with the strategies' hooks.
        while True:
            await self._commands_dirty.wait()
            self._commands_dirty.clear()
            if self._app is None or not self._bot_ready:
                continue
            commands = [BotCommand(n, u.split(" — ")[-1][:256]) for n, u in BUILTINS.items()]
            commands += [BotCommand(h, "strategy hook, see /help") for h in self._hook_menu()]
            try:
                with bot_api_errors("setMyCommands"):
                    await self._app.bot.set_my_commands(commands[:100])
            except BotApiError as exc:
                self._log.warning("%s: could not set the command menu: %s", self._name, exc)

    def known_hooks(self) -> dict[str, list[str]]:
        """Strategy -> the hooks it advertised in its last status (as registered)."""
        out: dict[str, list[str]] = {}
        for strat in self._directory.strategies():
            status = self._directory.status(strat)
            out[strat] = [h.name for h in status.hooks] if status is not None else []
        return out

    def _hook_menu(self) -> list[str]:
        return [
            h
            for h in self._directory.hook_names()
            if 1 <= len(h) <= 32 and all(c.isascii() and (c.isalnum() or c == "_") for c in h)
        ]

    # ------------------------------------------------------------------------------------------
    # Bus -> Telegram
    # ------------------------------------------------------------------------------------------

    def send(self, chat_id: int, text: str, priority: int = PRIORITY_ERROR) -> None:
        """Queue ``text`` for ``chat_id``; returns at once."""
        if self.delivery is None:
            raise RuntimeError(f"{self._name} not started")
        self.delivery.put(chat_id, text, priority)

    def _alert(self, text: str, priority: int) -> None:
        if self._config.ops_chat is not None:
            self.send(self._config.ops_chat, text, priority)

    def _on_publish(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, TelegramPublish):
            self._log.warning("%s: unexpected %s on %s", self._name, type(msg).__name__, topic)
            return
        chat = self._config.chat_for(msg.strat)
        if chat is None:
            if msg.strat not in self._no_chat_warned:
                self._no_chat_warned.add(msg.strat)
                self._log.warning(
                    "%s: no chat for strategy %s (no [chats] entry, default or ops); "
                    "its messages are dropped",
                    self._name,
                    msg.strat,
                )
            return
        own = self._config.strategy_chats.get(msg.strat) == chat
        text = msg.text if own else f"[{msg.strat}] {msg.text}"
        self.send(chat, text, msg.priority)

    def _on_strat_status(self, topic: str, msg: Any) -> None:
        if isinstance(msg, StratStatus) and self._directory.update(msg):
            self._commands_dirty.set()

    def _on_reply(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, CmdResult):
            return
        pending = self._pending.pop(msg.cmd_id, None)
        if pending is None:
            self._log.debug("%s: result for unknown command %s", self._name, msg.cmd_id)
            return
        pending.timer.cancel()
        inv = pending.inv
        self.send(inv.sender.chat_id, format_result(inv.req, msg), PRIORITY_ERROR)
        self._audit(inv, Outcome.OK if msg.ok else Outcome.FAILED, msg.detail, msg.cmd_id)

    def _on_cmd_timeout(self, cmd_id: str) -> None:
        pending = self._pending.pop(cmd_id, None)
        if pending is None:
            return
        inv = pending.inv
        wait = self._config.cmd_timeout_s
        self.send(
            inv.sender.chat_id,
            f"⌛ {inv.req.describe()}: no answer from the control service within {wait:g}s",
        )
        self._audit(inv, Outcome.TIMEOUT, f"no result within {wait:g}s", cmd_id)

    # ------------------------------------------------------------------------------------------
    # Telegram -> bus
    # ------------------------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: Any) -> None:
        message, user, chat = update.message, update.effective_user, update.effective_chat
        if message is None or message.text is None or user is None or chat is None:
            return
        parsed = parse_command(message.text, self._bot_username)
        if parsed is None:
            return
        now = self._clock.now_ns()
        sender = Sender(user.id, user.username or "", chat.id, chat.type)
        age_s = now / NS_PER_S - message.date.timestamp()
        resolved = resolve(parsed, self._directory, self._config.dangerous)
        req = (
            resolved
            if isinstance(resolved, Request)
            else Request(parsed.name, "", parsed.name, parsed.args)
        )
        inv = _Invocation(req, sender, now)
        # An unresolvable command is answered with its usage to anyone who may read /help.
        decision = self._policy.check(
            user.id,
            chat.id,
            chat.type,
            req.command if isinstance(resolved, Request) else "help",
            is_hook=req.is_hook,
            dangerous=req.dangerous,
        )
        if not decision.allowed:
            self._refuse(inv, decision.reason, stranger=decision.role is None)
            return
        if age_s > MAX_COMMAND_AGE_S:
            self.send(chat.id, f"⏱ {req.describe()} ignored: sent {age_s:.0f}s ago")
            self._audit(inv, Outcome.INVALID, f"stale ({age_s:.0f}s old)")
            return
        if isinstance(resolved, str):
            self.send(chat.id, resolved)
            self._audit(inv, Outcome.INVALID, resolved)
            return
        if req.command == "help":
            self.send(chat.id, format_help(self._directory))
            self._audit(inv, Outcome.ANSWERED)
            return
        if req.dangerous:
            await self._ask_confirmation(inv)
            return
        self._dispatch(inv)

    def _refuse(self, inv: _Invocation, reason: str, *, stranger: bool) -> None:
        s = inv.sender
        self._log.warning(
            "%s: refused %s from user %s (@%s) in chat %s (%s): %s",
            self._name,
            inv.req.describe()[:100],
            s.user_id,
            s.username,
            s.chat_id,
            s.chat_type,
            reason,
        )
        self.send(s.chat_id, "⛔ Not authorised." if stranger else f"⛔ {reason}.")
        self._audit(inv, Outcome.REFUSED, reason)

    async def _ask_confirmation(self, inv: _Invocation) -> None:
        assert self._app is not None
        pending = self._confirms.create(
            inv.sender.user_id, inv.sender.chat_id, inv, self._clock.now_ns()
        )
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        "✅ Confirm", callback_data=callback_data(pending.token, confirm=True)
                    ),
                    InlineKeyboardButton(
                        "✖ Cancel", callback_data=callback_data(pending.token, confirm=False)
                    ),
                ]
            ]
        )
        who = f"@{inv.sender.username}" if inv.sender.username else str(inv.sender.user_id)
        text = (
            f"⚠ Confirm {inv.req.describe()}?\n"
            f"Only {who} can confirm, within {self._config.confirm_timeout_s:g}s."
        )
        try:
            with bot_api_errors("sendMessage"):
                await self._app.bot.send_message(inv.sender.chat_id, text, reply_markup=keyboard)
        except BotApiError as exc:
            self._confirms.resolve(pending.token, inv.sender.user_id, 0, confirm=False)
            self._log.warning("%s: could not ask for confirmation: %s", self._name, exc)
            self._audit(inv, Outcome.FAILED, f"could not ask for confirmation: {exc}")
            return
        self._audit(inv, Outcome.CONFIRM_ASKED, f"valid {self._config.confirm_timeout_s:g}s")

    async def _on_callback(self, update: Update, context: Any) -> None:
        query = update.callback_query
        if query is None:
            return
        parsed = parse_callback_data(query.data or "")
        if parsed is None:
            await self._answer(query, "")
            return
        token, confirm = parsed
        user = query.from_user
        state, pending = self._confirms.resolve(
            token, user.id, self._clock.now_ns(), confirm=confirm
        )
        if pending is None:
            await self._answer(query, "This confirmation is no longer valid.")
            return
        inv = pending.payload
        what = inv.req.describe()
        if state is ConfirmState.FOREIGN:
            chat_id = query.message.chat.id if query.message is not None else pending.chat_id
            intruder = _Invocation(
                inv.req, Sender(user.id, user.username or "", chat_id, "callback"), inv.received_ns
            )
            self._log.warning(
                "%s: user %s (@%s) pressed the confirmation of %s meant for user %s",
                self._name,
                user.id,
                user.username,
                what,
                inv.sender.user_id,
            )
            self._audit(intruder, Outcome.FOREIGN_CONFIRM, f"confirmation of {what} refused")
            await self._answer(query, "Only the user who sent the command can confirm it.")
            return
        if state is ConfirmState.EXPIRED:
            self._audit(inv, Outcome.EXPIRED, "confirmation came too late")
            await self._answer(query, "Too late: the confirmation expired.")
            await self._edit(query, f"⌛ {what}: confirmation expired, nothing done.")
            return
        if state is ConfirmState.CANCELLED:
            self._audit(inv, Outcome.CANCELLED)
            await self._answer(query, "Cancelled.")
            await self._edit(query, f"✖ {what}: cancelled.")
            return
        await self._answer(query, "Confirmed.")
        await self._edit(query, f"✔ {what}: confirmed, sent.")
        self._dispatch(inv)

    async def _answer(self, query: Any, text: str) -> None:
        try:
            with bot_api_errors("answerCallbackQuery"):
                await query.answer(text or None)
        except BotApiError as exc:
            self._log.warning("%s: answerCallbackQuery failed: %s", self._name, exc)

    async def _edit(self, query: Any, text: str) -> None:
        if query.message is None:
            return
        try:
            with bot_api_errors("editMessageText"):
                await query.edit_message_text(text)
        except BotApiError as exc:
            self._log.warning("%s: editMessageText failed: %s", self._name, exc)

    def _dispatch(self, inv: _Invocation) -> None:
        assert self._scheduler is not None
        cmd_id = f"{self._config.client_id}-{next(self._ids)}-{secrets.token_hex(3)}"
        s = inv.sender
        request = CmdRequest(
            cmd_id=cmd_id,
            strat=inv.req.strat,
            name=inv.req.name,
            args=list(inv.req.args),
            reply_to=self._topics.reply(self._config.client_id),
            sender=f"telegram:{s.user_id}" + (f":@{s.username}" if s.username else ""),
        )
        timer = self._scheduler.call_later(
            int(self._config.cmd_timeout_s * NS_PER_S), self._on_cmd_timeout, cmd_id
        )
        self._pending[cmd_id] = _Pending(inv, timer)
        self._bus.publish(self._topics.cmd(), request, qos=1)
        self._log.info("%s: sent %s as %s", self._name, inv.req.describe()[:100], cmd_id)

    def _audit(
        self, inv: _Invocation, outcome: Outcome, detail: str = "", cmd_id: str = ""
    ) -> None:
        s = inv.sender
        self.audit.write(
            AuditEntry(
                user_id=s.user_id,
                username=s.username,
                chat_id=s.chat_id,
                chat_type=s.chat_type,
                command=inv.req.command,
                strat=inv.req.strat,
                args=list(inv.req.args),
                outcome=outcome,
                detail=detail[:500],
                latency_ms=(self._clock.now_ns() - inv.received_ns) / 1e6,
                cmd_id=cmd_id,
            )
        )
