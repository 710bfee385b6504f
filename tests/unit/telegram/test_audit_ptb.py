"""The audit log's lines; PTB error translation and token masking."""

from __future__ import annotations

import datetime as dtm
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from mlthon.infra.clock import SimClock
from mlthon.infra.telegram.audit import AuditEntry, AuditLog, Outcome
from mlthon.infra.telegram.errors import (
    BotApiChatMigrated,
    BotApiError,
    BotApiFlood,
    BotApiRejected,
    BotApiUnavailable,
)
from mlthon.infra.telegram.ptb import (
    MASK,
    bot_api_errors,
    mask_secret,
    mask_text,
    opt_in_timedelta,
)


def test_audit_appends_one_json_line_per_entry(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.jsonl"
    audit = AuditLog(path, clock=SimClock(1_700_000_000_000_000_000))
    entry = AuditEntry(
        user_id=7,
        username="bob",
        chat_id=-5,
        chat_type="group",
        command="stop",
        strat="alpha",
        args=[],
        outcome=Outcome.OK,
        detail="done",
        latency_ms=1.23456,
    )
    audit.write(entry)
    audit.write(entry)
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    assert lines[0]["ts"] == "2023-11-14T22:13:20+00:00"
    assert lines[0]["outcome"] == "ok"
    assert lines[0]["latency_ms"] == 1.235
    assert (lines[0]["user_id"], lines[0]["username"], lines[0]["chat_id"]) == (7, "bob", -5)


@pytest.mark.parametrize(
    ("make", "ours"),
    [
        (lambda: RetryAfter(dtm.timedelta(seconds=14)), BotApiFlood),
        (lambda: ChatMigrated(-1009), BotApiChatMigrated),
        (lambda: BadRequest("Bad Request: message is too long"), BotApiRejected),
        (lambda: Forbidden("Forbidden: user is deactivated"), BotApiRejected),
        (lambda: NetworkError("Bad Gateway"), BotApiUnavailable),
        (lambda: TimedOut(), BotApiUnavailable),
    ],
)
def test_ptb_errors_are_translated(make: Callable[[], Exception], ours: type[BotApiError]) -> None:
    opt_in_timedelta()  # as the bridge does: PTB's RetryAfter() warns otherwise
    exc = make()
    with pytest.raises(ours) as info, bot_api_errors("sendMessage"):
        raise exc
    assert info.value.method == "sendMessage"
    assert info.value.__cause__ is exc
    if isinstance(info.value, BotApiFlood):
        assert info.value.retry_after_s == 14
    if isinstance(info.value, BotApiChatMigrated):
        assert info.value.new_chat_id == -1009


def test_secrets_are_masked_in_log_records(caplog: pytest.LogCaptureFixture) -> None:
    token = "987654321:AAMaskMeOrElse_abcdefghijklmnop"
    mask_secret(token)
    logger = logging.getLogger("httpx")
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        logger.debug("HTTP Request: POST %s", f"https://api.telegram.org/bot{token}/getMe")
        try:
            raise ValueError(f"boom at /bot{token}/sendMessage")
        except ValueError:
            logger.exception("failed")
    assert token not in caplog.text
    assert "AAMaskMeOrElse" not in caplog.text
    assert f"/bot{MASK}/getMe" in caplog.text
    assert mask_text(f"x{token}y") == f"x{MASK}y"
