"""The boundary with python-telegram-bot: building the Application, translating its errors, and
keeping the bot token out of logs. The only module of mlthon that catches PTB exceptions.
"""

from __future__ import annotations

import contextlib
import datetime as dtm
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder
from telegram.warnings import PTBDeprecationWarning

from mlthon.infra.telegram.config import TelegramConfig
from mlthon.infra.telegram.errors import (
    BotApiChatMigrated,
    BotApiFlood,
    BotApiRejected,
    BotApiUnavailable,
)

AnyApplication = Application[Any, Any, Any, Any, Any, Any]

MASK = "<telegram-token>"


@contextlib.contextmanager
def bot_api_errors(method: str) -> Iterator[None]:
    """Translate python-telegram-bot exceptions raised inside the block into ours.

    Raises:
        BotApiFlood: on ``RetryAfter``.
        BotApiChatMigrated: on ``ChatMigrated``.
        BotApiRejected: on ``BadRequest``, ``Forbidden``, ``InvalidToken``, ``Conflict``.
        BotApiUnavailable: on ``NetworkError``, ``TimedOut`` and other Telegram errors.
    """
    try:
        yield
    except RetryAfter as exc:
        raise BotApiFlood(method, retry_after_seconds(exc)) from exc
    except ChatMigrated as exc:
        raise BotApiChatMigrated(method, exc.new_chat_id) from exc
    except (BadRequest, Forbidden, InvalidToken, EndPointNotFound, Conflict) as exc:
        raise BotApiRejected(method, mask_text(exc.message)) from exc
    except NetworkError as exc:
        raise BotApiUnavailable(method, mask_text(exc.message)) from exc
    except TelegramError as exc:
        raise BotApiUnavailable(method, mask_text(exc.message)) from exc


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait a ``RetryAfter`` asks for, in seconds.

    PTB 22.2+ warns when ``retry_after`` is read as an int; read it either way, quietly.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | dtm.timedelta = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def opt_in_timedelta() -> None:
    """Opt in to PTB's future time-period types (``PTB_TIMEDELTA``) unless the user chose.

    Without it, PTB 22.2+ emits a ``PTBDeprecationWarning`` from inside ``RetryAfter()`` itself,
    which turns every 429 into a warning (or, with warnings as errors, into the wrong
    exception). The bridge reads time periods as either type.
    """
    os.environ.setdefault("PTB_TIMEDELTA", "true")


class PtbSender:
    """A :class:`~mlthon.infra.telegram.delivery.MessageSender` over a PTB ``Bot``.

    Args:
        bot: the application's bot.
        is_ready: tells whether the bot was initialised; before that, sends raise
            :class:`BotApiUnavailable` so that messages wait.
    """

    def __init__(self, bot: Bot, is_ready: Callable[[], bool]) -> None:
        self._bot = bot
        self._is_ready = is_ready

    async def send_message(self, chat_id: int, text: str) -> None:
        """Send ``text`` to ``chat_id``; raises the errors of :func:`bot_api_errors`."""
        if not self._is_ready():
            raise BotApiUnavailable("sendMessage", "bot not connected yet")
        with bot_api_errors("sendMessage"):
            await self._bot.send_message(chat_id=chat_id, text=text)


def build_application(config: TelegramConfig) -> AnyApplication:
    """A PTB Application for ``config`` (not initialised; the bridge runs its phases).

    Updates are handled concurrently so that a slow handler (a confirmation prompt during a
    Telegram hiccup) does not hold back the others.
    """
    opt_in_timedelta()
    poll = config.poll_timeout_s
    return (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.base_url)
        .base_file_url(config.base_url.removesuffix("/bot") + "/file/bot")
        .connect_timeout(5.0)
        .read_timeout(10.0)
        .write_timeout(10.0)
        .get_updates_connect_timeout(5.0)
        .get_updates_read_timeout(poll + 5.0)
        .concurrent_updates(True)
        .build()
    )


# ------------------------------------------------------------------------------------------------
# Keeping the token out of logs. PTB and httpx put it in every request URL
# (``.../bot<token>/getMe``) and in some exception texts, at DEBUG and above; a log record
# factory masks it in every record, whichever logger or handler produces it, including
# formatted tracebacks.
# ------------------------------------------------------------------------------------------------

_secrets: set[str] = set()
_installed = False


def mask_text(text: str) -> str:
    """``text`` with every registered secret replaced by a mask."""
    for secret in sorted(_secrets, key=len, reverse=True):  # whole token before its parts
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_secret(secret: str) -> None:
    """Mask ``secret`` (and its numeric-id-less part) in every log record from now on."""
    global _installed
    _secrets.add(secret)
    bare = secret.partition(":")[2]
    if len(bare) >= 8:
        _secrets.add(bare)
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _secrets:
            return record
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string; let the handler report it
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
