"""Outgoing Telegram messages: priority lanes, pacing, splitting, coalescing, outage survival.

:class:`DeliveryQueue` is the pure core (no I/O, time passed in); :class:`Delivery` runs it
against a :class:`MessageSender` in one task.

* **Lanes.** Priority 0 (errors, kills, command replies) goes before 1 (fills), before 2 (status).
  Within a lane, messages keep their order.
* **Pacing.** At most one message per ``per_chat_interval_s`` to a chat
  (``per_group_interval_s`` to a group) and ``global_rate_per_s`` over all chats; a 429
  pauses every send for its ``retry_after``.
* **Splitting.** A text longer than ``max_len`` (less room for marks) is cut at line or word
  boundaries into parts labelled ``(i/n)``.
* **Coalescing.** A text already waiting for the same chat and lane is not queued twice: the
  waiting one is sent once with a repeat count, "(x5)" written with a multiplication sign.
* **Outages.** While Telegram is unreachable messages wait, with capped exponential back-off
  between attempts; one sent more than ``delay_mark_after_s`` after it was queued starts with
  ``(delayed 5m12s)``. Past ``max_pending`` the oldest message of the lowest non-empty lane is
  dropped and counted; the count is logged and, once Telegram answers again, reported to the
  notice chat.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Iterator
from typing import Protocol

import attrs

from mlthon.infra.clock import NS_PER_S, Clock, LiveClock
from mlthon.infra.telegram.config import DeliveryConfig
from mlthon.infra.telegram.errors import (
    BotApiChatMigrated,
    BotApiFlood,
    BotApiRejected,
    BotApiUnavailable,
)

log = logging.getLogger(__name__)

PRIORITY_ERROR = 0
PRIORITY_FILL = 1
PRIORITY_STATUS = 2
LANES = 3

# Room kept in every part for the marks added at send time: "(delayed ...)", "(xn)", "(i/n)".
MARK_ROOM = 64
TIMES = "\u00d7"  # the multiplication sign


class MessageSender(Protocol):
    """The seam to Telegram: sends one text message."""

    async def send_message(self, chat_id: int, text: str) -> None:
        """Send ``text`` to ``chat_id``.

        Raises:
            BotApiFlood: flood control; wait ``retry_after_s``.
            BotApiUnavailable: Telegram unreachable or failing; try again later.
            BotApiRejected: the message can never be sent (BotApiChatMigrated: to this chat).
        """
        ...


@attrs.define
class OutMessage:
    """A message waiting to be sent (mutable: coalescing bumps ``count``).

    Attributes:
        chat_id: destination chat.
        text: the text (already split to fit).
        priority: lane, 0 (first) to 2.
        queued_ns: when it was first queued.
        count: how many identical messages it stands for.
        attempts: failed attempts so far.
    """

    chat_id: int
    text: str
    priority: int
    queued_ns: int
    count: int = 1
    attempts: int = 0


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, at line or word ends if possible.

    Parts after splitting are labelled ``(i/n)`` (the label fits within ``limit``).
    """
    if len(text) <= limit:
        return [text]
    body_limit = limit - 12  # room for the "(i/n) " label
    parts: list[str] = []
    rest = text
    while len(rest) > body_limit:
        cut = rest.rfind("\n", body_limit // 2, body_limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", body_limit // 2, body_limit + 1)
        if cut <= 0:
            cut = body_limit
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if cut < len(rest) else ""
    if rest:
        parts.append(rest)
    n = len(parts)
    return [f"({i}/{n}) {p}" for i, p in enumerate(parts, 1)]


def format_delay(delay_ns: int) -> str:
    """``3s``, ``5m12s``, ``2h03m``."""
    s = delay_ns // NS_PER_S
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class DeliveryQueue:
    """The pure core of delivery: which message goes next, and when.

    Args:
        config: bounds and pacing.
    """

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config
        self._lanes: list[deque[OutMessage]] = [deque() for _ in range(LANES)]
        self._index: dict[tuple[int, int, str], OutMessage] = {}
        self._chat_ready_ns: dict[int, int] = {}
        self._next_global_ns = 0
        self._paused_until_ns = 0
        self._chat_gap_ns = int(config.per_chat_interval_s * NS_PER_S)
        self._group_gap_ns = int(config.per_group_interval_s * NS_PER_S)
        self._global_gap_ns = int(NS_PER_S / config.global_rate_per_s)
        self.dropped = [0] * LANES
        self.coalesced = 0

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)

    def __iter__(self) -> Iterator[OutMessage]:
        for lane in self._lanes:
            yield from lane

    def put(
        self, chat_id: int, text: str, priority: int, now_ns: int, *, bounded: bool = True
    ) -> list[OutMessage]:
        """Queue ``text`` for ``chat_id`` (split if long, coalesced if already waiting).

        Args:
            chat_id: destination chat.
            text: the text, of any length.
            priority: lane, 0 (first) to 2.
            now_ns: the current time.
            bounded: drop older messages to stay within ``max_pending`` (False for the
                bridge's own notices, which must not push out what they report on).

        Returns:
            The messages dropped to stay within ``max_pending`` (oldest, lowest lane first).
        """
        priority = min(max(priority, 0), LANES - 1)
        for part in split_text(text, self.config.max_len - MARK_ROOM):
            key = (chat_id, priority, part)
            waiting = self._index.get(key)
            if waiting is not None:
                waiting.count += 1
                self.coalesced += 1
                continue
            msg = OutMessage(chat_id, part, priority, now_ns)
            self._lanes[priority].append(msg)
            self._index[key] = msg
        return self._enforce_bound() if bounded else []

    def _enforce_bound(self) -> list[OutMessage]:
        dropped: list[OutMessage] = []
        while len(self) > self.config.max_pending:
            lane = next(i for i in range(LANES - 1, -1, -1) if self._lanes[i])
            msg = self._lanes[lane].popleft()
            self._index.pop((msg.chat_id, msg.priority, msg.text), None)
            self.dropped[lane] += msg.count
            dropped.append(msg)
        return dropped

    def next_ready(self, now_ns: int) -> tuple[OutMessage | None, int | None]:
        """Take the message to send now, if any.

        Returns:
            ``(message, None)`` when one may go now (it leaves the queue), else
            ``(None, wait_ns)``: how long until one may go (None if the queue is empty).
        """
        if not len(self):
            return None, None
        blocked_until = max(self._paused_until_ns, self._next_global_ns)
        if now_ns < blocked_until:
            return None, blocked_until - now_ns
        earliest: int | None = None
        for lane in self._lanes:
            for i, msg in enumerate(lane):
                ready = self._chat_ready_ns.get(msg.chat_id, 0)
                if ready <= now_ns:
                    del lane[i]
                    self._index.pop((msg.chat_id, msg.priority, msg.text), None)
                    return msg, None
                earliest = ready if earliest is None else min(earliest, ready)
        assert earliest is not None  # the queue is not empty and nothing was ready
        return None, earliest - now_ns

    def sent(self, msg: OutMessage, now_ns: int) -> None:
        """Record that ``msg`` went out at ``now_ns`` (starts its chat's and the global gap)."""
        gap = self._group_gap_ns if msg.chat_id < 0 else self._chat_gap_ns
        self._chat_ready_ns[msg.chat_id] = now_ns + gap
        self._next_global_ns = now_ns + self._global_gap_ns

    def requeue(self, msg: OutMessage) -> list[OutMessage]:
        """Put back a message that could not be sent, at the head of its lane.

        An identical message queued meanwhile is folded into it.

        Returns:
            The messages dropped to stay within ``max_pending``.
        """
        key = (msg.chat_id, msg.priority, msg.text)
        newer = self._index.get(key)
        if newer is not None:
            self._lanes[msg.priority].remove(newer)
            msg.count += newer.count
        self._lanes[msg.priority].appendleft(msg)
        self._index[key] = msg
        return self._enforce_bound()

    def pause(self, until_ns: int) -> None:
        """Send nothing before ``until_ns`` (flood control, back-off)."""
        self._paused_until_ns = max(self._paused_until_ns, until_ns)

    def render(self, msg: OutMessage, now_ns: int) -> str:
        """The text to send for ``msg`` now, with its repeat count and delay marks."""
        text = msg.text
        if msg.count > 1:
            text = f"{text} ({TIMES}{msg.count})"
        delay = now_ns - msg.queued_ns
        if delay > self.config.delay_mark_after_s * NS_PER_S:
            text = f"(delayed {format_delay(delay)}) {text}"
        return text


class Delivery:
    """Sends queued messages through a :class:`MessageSender`, in its own task.

    :meth:`put` is synchronous and returns at once, so bus handlers (and thus strategies) never
    wait for Telegram. :meth:`run` is the worker; run it in a task and cancel it to stop.

    Args:
        sender: the Telegram seam.
        config: bounds and pacing.
        clock: time source (delays, pacing).
        notice_chat: chat told how many messages were dropped during an outage.
        logger: where delivery problems are reported.
    """

    def __init__(
        self,
        sender: MessageSender,
        config: DeliveryConfig,
        *,
        clock: Clock | None = None,
        notice_chat: int | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._sender = sender
        self._config = config
        self._clock = clock or LiveClock()
        self._notice_chat = notice_chat
        self._log = logger or log
        self.queue = DeliveryQueue(config)
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._backoff_s = config.retry_min_s
        self._outage_since_ns: int | None = None
        self._dropped_unreported = 0
        self._migrated: dict[int, int] = {}
        self._jitter = random.Random()
        self.sent = 0
        self.failed = 0

    @property
    def online(self) -> bool:
        """False from a failed attempt until the next successful send."""
        return self._outage_since_ns is None

    @property
    def pending(self) -> int:
        """Messages waiting."""
        return len(self.queue)

    @property
    def dropped(self) -> int:
        """Messages dropped because the queue was full (coalesced repeats included)."""
        return sum(self.queue.dropped)

    def put(self, chat_id: int, text: str, priority: int = PRIORITY_STATUS) -> None:
        """Queue ``text`` for ``chat_id`` and return at once."""
        if not text.strip():
            return
        chat_id = self._migrated.get(chat_id, chat_id)
        self._count_drops(self.queue.put(chat_id, text, priority, self._clock.now_ns()))
        self._idle.clear()
        self._wakeup.set()

    def _notice(self, chat_id: int, text: str) -> None:
        self.queue.put(chat_id, text, PRIORITY_ERROR, self._clock.now_ns(), bounded=False)
        self._idle.clear()
        self._wakeup.set()

    def _requeue(self, msg: OutMessage) -> None:
        self._count_drops(self.queue.requeue(msg))

    def _count_drops(self, dropped: list[OutMessage]) -> None:
        if dropped:
            n = sum(m.count for m in dropped)
            first = not self._dropped_unreported
            self._dropped_unreported += n
            level = logging.WARNING if first else logging.DEBUG
            self._log.log(
                level,
                "telegram delivery: queue full (%d pending); dropped %d oldest priority-%d "
                "message(s), %d dropped since Telegram last answered",
                len(self.queue),
                n,
                dropped[-1].priority,
                self._dropped_unreported,
            )

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is pending; False if ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Send messages until cancelled."""
        while True:
            msg, wait_ns = self.queue.next_ready(self._clock.now_ns())
            if msg is None:
                if wait_ns is None:
                    self._idle.set()
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(None if wait_ns is None else wait_ns / NS_PER_S):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                continue
            await self._send(msg)

    async def _send(self, msg: OutMessage) -> None:
        now = self._clock.now_ns()
        text = self.queue.render(msg, now)
        try:
            await self._sender.send_message(msg.chat_id, text)
        except BotApiFlood as exc:
            self._log.warning(
                "telegram delivery: flood control, pausing %.1fs (chat %s)",
                exc.retry_after_s,
                msg.chat_id,
            )
            self._requeue(msg)
            self.queue.pause(self._clock.now_ns() + int(exc.retry_after_s * NS_PER_S))
        except BotApiUnavailable as exc:
            self._on_unavailable(msg, exc)
        except BotApiChatMigrated as exc:
            self._log.warning(
                "telegram delivery: chat %s migrated to %s; update the config",
                msg.chat_id,
                exc.new_chat_id,
            )
            self._migrated[msg.chat_id] = exc.new_chat_id
            msg.chat_id = exc.new_chat_id
            self._requeue(msg)
        except BotApiRejected as exc:
            self.failed += msg.count
            self._log.error(
                "telegram delivery: chat %s refused a message (%s); dropped: %.80r",
                msg.chat_id,
                exc.description,
                msg.text,
            )
        else:
            self.queue.sent(msg, self._clock.now_ns())
            self.sent += 1
            if self._outage_since_ns is not None:
                self._on_recovered()
            elif self._dropped_unreported and not len(self.queue):
                self._report_drops("a burst")

    def _on_unavailable(self, msg: OutMessage, exc: BotApiUnavailable) -> None:
        now = self._clock.now_ns()
        msg.attempts += 1
        self._requeue(msg)
        if self._outage_since_ns is None:
            self._outage_since_ns = now
            self._log.warning("telegram delivery: Telegram unreachable (%s); messages wait", exc)
        else:
            self._log.debug("telegram delivery: still unreachable (%s)", exc)
        wait_s = self._backoff_s * (0.5 + self._jitter.random() / 2)
        self._backoff_s = min(self._backoff_s * 2, self._config.retry_max_s)
        self.queue.pause(now + int(wait_s * NS_PER_S))

    def _on_recovered(self) -> None:
        assert self._outage_since_ns is not None
        down_ns = self._clock.now_ns() - self._outage_since_ns
        self._outage_since_ns = None
        self._backoff_s = self._config.retry_min_s
        self._log.info(
            "telegram delivery: Telegram reachable again after %s; %d pending",
            format_delay(down_ns),
            len(self.queue),
        )
        if self._dropped_unreported:
            self._report_drops(f"an outage of {format_delay(down_ns)}")

    def _report_drops(self, during: str) -> None:
        dropped, self._dropped_unreported = self._dropped_unreported, 0
        self._log.warning(
            "telegram delivery: %d message(s) were dropped during %s (queue bound %d)",
            dropped,
            during,
            self._config.max_pending,
        )
        if self._notice_chat is not None:
            self._notice(
                self._notice_chat,
                f"⚠ {dropped} low-priority message(s) were dropped during {during}.",
            )
