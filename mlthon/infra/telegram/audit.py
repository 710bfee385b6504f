"""The append-only audit log: one JSON object per line for every command the bridge receives.

Each line holds: ``ts`` (ISO-8601 UTC) and ``ts_ns``, the sender (``user_id``, ``username``), the
chat (``chat_id``, ``chat_type``), the command (``command``, ``strat``, ``args``), its ``cmd_id``
when one was sent to the control service, the ``outcome`` (see :class:`Outcome`), a ``detail``
and the ``latency_ms`` from receipt to outcome.

The file is opened in append mode for each line and flushed, so several bridges, log rotation by
rename, and crashes lose at most the line being written.
"""

from __future__ import annotations

import datetime as dtm
import enum
import json
import logging
import os
from pathlib import Path

import attrs

from mlthon.infra.clock import NS_PER_S, Clock, LiveClock

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """What became of a command."""

    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    INVALID = "invalid"
    CONFIRM_ASKED = "confirm_asked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FOREIGN_CONFIRM = "foreign_confirm"
    TIMEOUT = "timeout"
    ANSWERED = "answered"


@attrs.frozen
class AuditEntry:
    """One audited event.

    Attributes:
        user_id: the sender's Telegram id.
        username: the sender's @username ("" if none).
        chat_id: the chat the command came from.
        chat_type: the chat's type.
        command: the lower-case command name.
        strat: the strategy addressed ("" if none).
        args: the command's arguments.
        outcome: what became of it.
        detail: a short explanation.
        latency_ms: time from receipt to outcome.
        cmd_id: the CmdRequest id, if one was sent.
    """

    user_id: int
    username: str
    chat_id: int
    chat_type: str
    command: str
    strat: str
    args: list[str]
    outcome: Outcome
    detail: str = ""
    latency_ms: float = 0.0
    cmd_id: str = ""


class AuditLog:
    """Appends :class:`AuditEntry` lines to a file.

    Args:
        path: the JSON-lines file; its folder is created if needed.
        clock: time source for the ``ts`` field.
        logger: where write failures are reported.
    """

    def __init__(
        self, path: Path, *, clock: Clock | None = None, logger: logging.Logger | None = None
    ) -> None:
        self.path = path
        self._clock = clock or LiveClock()
        self._log = logger or log

    def write(self, entry: AuditEntry) -> None:
        """Append one line. A failing disk is logged as an error, never raised to the caller."""
        ts_ns = self._clock.now_ns()
        record = {
            "ts": dtm.datetime.fromtimestamp(ts_ns / NS_PER_S, tz=dtm.UTC).isoformat(),
            "ts_ns": ts_ns,
            **attrs.asdict(entry),
        }
        record["latency_ms"] = round(entry.latency_ms, 3)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            self._log.error("telegram audit: cannot write %s: %s; lost: %s", self.path, exc, line)
        self._log.info(
            "telegram audit: user=%s (@%s) chat=%s /%s %s -> %s %s",
            entry.user_id,
            entry.username,
            entry.chat_id,
            entry.command,
            entry.strat,
            entry.outcome.value,
            entry.detail,
        )
