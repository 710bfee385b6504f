"""Errors of the Telegram bridge, translated from python-telegram-bot at one boundary::

    MlthonError
    └── BotApiError              a Bot API call failed
        ├── BotApiUnavailable    network error, timeout or 5xx: try again later
        ├── BotApiFlood          429 flood control (retry_after_s)
        └── BotApiRejected       the request itself is wrong or forbidden (error_code, description)
            └── BotApiChatMigrated  the group became a supergroup (new_chat_id)

Only :mod:`mlthon.infra.telegram.ptb` catches python-telegram-bot's exceptions; everything else
in the bridge sees these.
"""

from __future__ import annotations

from mlthon.basics.errors import MlthonError


class BotApiError(MlthonError):
    """A Bot API call failed.

    Attributes:
        method: the Bot API method, e.g. ``sendMessage``.
    """

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method


class BotApiUnavailable(BotApiError):
    """Telegram could not be reached or answered with a server error; retry later."""


class BotApiFlood(BotApiError):
    """Telegram's flood control refused the call.

    Attributes:
        retry_after_s: seconds to wait before the next call.
    """

    def __init__(self, method: str, retry_after_s: float) -> None:
        super().__init__(method, f"flood control; retry after {retry_after_s:g}s")
        self.retry_after_s = retry_after_s


class BotApiRejected(BotApiError):
    """Telegram refused the request itself (bad chat, blocked bot, bad text); do not retry.

    Attributes:
        description: Telegram's description of the problem.
    """

    def __init__(self, method: str, description: str) -> None:
        super().__init__(method, description)
        self.description = description


class BotApiChatMigrated(BotApiRejected):
    """The group chat was upgraded to a supergroup with a new id.

    Attributes:
        new_chat_id: the supergroup's id.
    """

    def __init__(self, method: str, new_chat_id: int) -> None:
        super().__init__(method, f"chat migrated to {new_chat_id}")
        self.new_chat_id = new_chat_id
