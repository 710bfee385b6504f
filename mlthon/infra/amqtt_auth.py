"""The embedded broker's authentication: every local client is let in as a named session.

amqtt treats a client admitted by its anonymous plugin as anonymous and then keeps nothing for it
while it is away, which would break the persistent sessions mlthon's gateways and strategies rely
on (QoS 1 reports and requests published while a process restarts). This plugin admits every
client (the broker listens on 127.0.0.1 only) without marking it anonymous. Loaded by amqtt from
:func:`mlthon.infra.embedded_broker.broker_config`; imports amqtt, so only the broker process
imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.plugins.base import BaseAuthPlugin


class LocalAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Admit every client of the loopback listener; sessions keep their queued messages."""

    async def authenticate(self, *, session: Any) -> bool:
        return True

    @dataclass
    class Config:
        """No options."""
