"""Telegram control and notifications for mlthon strategies.

:class:`~mlthon.infra.telegram.bridge.TelegramBridge` connects one bot to the bus for every
strategy: commands with roles, confirmations and an audit log one way; ``publish_telegram``
messages and ops alerts through a paced, outage-proof queue the other way. See
``docs/telegram.md``.
"""

from mlthon.infra.telegram.bridge import TelegramBridge
from mlthon.infra.telegram.config import TelegramConfig, load_config

__all__ = ["TelegramBridge", "TelegramConfig", "load_config"]
