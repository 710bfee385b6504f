"""``mlthon kill``: ask one process on the bus to stop cleanly.

``Shutdown{target, reason}`` goes to ``{root}/ops/shutdown`` (QoS 1, not retained). Every process
with a :class:`ShutdownListener` checks whether ``target`` names it (component name,
``kind/name``, pid, or ``pid@host``) and, if so, sets its shutdown trigger, exactly as SIGTERM
would.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase, Subscription
from mlthon.infra.bus.topics import Topics

log = logging.getLogger(__name__)


def shutdown_topic(topics: Topics) -> str:
    """``{root}/ops/shutdown``."""
    return f"{topics.root}/ops/shutdown"


def target_matches(target: str, names: Iterable[tuple[str, str]], pid: int, host: str) -> bool:
    """True if ``target`` names this process: a component name, ``kind/name``, pid or pid@host.

    Args:
        target: what ``mlthon kill`` was given.
        names: the (kind, name) pairs of the components of this process.
        pid: this process's pid.
        host: this host's name.
    """
    target = target.strip()
    if target in (str(pid), f"{pid}@{host}"):
        return True
    return any(target in (name, f"{kind}/{name}") for kind, name in names)


class ShutdownListener:
    """Sets ``trigger`` when a Shutdown message names this process.

    Args:
        bus: the process's bus.
        topics: the topic layout.
        names: (kind, name) of every component this process runs.
        trigger: called with the reason (usually ``stop_event.set`` wrapped).
        pid: this process's pid (default: ``os.getpid()``).
        host: this host (default: ``socket.gethostname()``).
    """

    def __init__(
        self,
        bus: BusBase,
        topics: Topics,
        names: Iterable[tuple[str, str]],
        trigger: Callable[[str], None],
        *,
        pid: int | None = None,
        host: str | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.names = list(names)
        self.trigger = trigger
        self.pid = os.getpid() if pid is None else pid
        self.host = host or socket.gethostname()
        self._sub: Subscription | None = None

    def start(self) -> None:
        """Subscribe to the shutdown topic."""
        if self._sub is None:
            self._sub = self.bus.subscribe(shutdown_topic(self.topics), self._on_msg, qos=1)

    def stop(self) -> None:
        """Unsubscribe."""
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    def _on_msg(self, topic: str, msg: Any) -> None:
        if not isinstance(msg, m.Shutdown):
            log.warning("ops: unexpected %s on %s; dropped", type(msg).__name__, topic)
            return
        if target_matches(msg.target, self.names, self.pid, self.host):
            log.warning(
                "ops: shutdown requested for %s (%s)", msg.target, msg.reason or "no reason"
            )
            self.trigger(msg.reason)
