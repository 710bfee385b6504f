"""Commands through python-telegram-bot, the fake Bot API and the bus."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.fakes.bot_api import FakeBotApi
from tests.integration.telegram.support import (
    BridgeFactory,
    FakeControl,
    OffsetClock,
    audit_lines,
)
from tests.integration.telegram.updates import (
    ADMIN,
    GROUP,
    STRANGER,
    TRADER,
    VIEWER,
    command,
    press,
    sample,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def reply(api: FakeBotApi, chat: int, n: int = 1) -> str:
    """The n-th message sent to ``chat`` (waits for it)."""
    await api.wait_for(lambda: len(api.texts(chat)) >= n)
    return api.texts(chat)[n - 1]


async def test_start_from_trader_reaches_control_and_is_audited(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory, tmp_path: Path
) -> None:
    await make_bridge()
    api.push(command("/start alpha fast=1 mode=paper"))
    text = await reply(api, TRADER)
    assert text.startswith("✅ /start alpha fast=1 mode=paper")
    (req,) = control.requests
    assert (req.strat, req.name, req.args) == ("alpha", "start", ["fast=1", "mode=paper"])
    assert req.reply_to == "mlt/reply/tg-test"
    assert req.sender == f"telegram:{TRADER}:@user{TRADER}"
    line = audit_lines(tmp_path / "audit.jsonl")[-1]
    assert line["outcome"] == "ok"
    assert (line["user_id"], line["username"], line["command"]) == (
        TRADER,
        f"user{TRADER}",
        "start",
    )
    assert line["chat_id"] == TRADER
    assert line["latency_ms"] >= 0


async def test_builtins_route_to_the_control_service(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/params alpha spread=3 size=0.002"))
    assert (await reply(api, TRADER, 1)).startswith("✅ /params alpha spread=3 size=0.002")
    assert control.params["alpha"] == {"spread": "3", "size": "0.002"}
    api.push(command("/STATUS alpha", sender=VIEWER))
    status = await reply(api, VIEWER, 1)
    assert "state: running" in status
    assert "pnl: 12.5" in status
    api.push(command("/strategies", sender=VIEWER))
    listing = await reply(api, VIEWER, 2)
    assert "• alpha — state=running" in listing
    assert "• beta — state=stopped" in listing
    assert control.names() == ["params", "status", "strategies"]
    assert control.requests[2].strat == ""


async def test_help_lists_builtins_and_each_strategys_hooks(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/help", sender=VIEWER))
    text = await reply(api, VIEWER)
    assert "/stop <strategy>" in text
    assert "• /quote alpha — set the quote width in ticks" in text
    assert "• /flatten alpha — close every position now ⚠ confirm" in text
    assert "• /flatten beta" in text
    assert control.requests == []  # answered by the bridge itself
    await api.wait_for(lambda: bool(api.calls_of("setMyCommands")))
    menu = api.calls_of("setMyCommands")[-1].params["commands"]
    assert {"start", "stop", "quote", "flatten"} <= {c["command"] for c in menu}


async def test_hook_reaches_its_strategy_with_args_case_insensitively(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/QUOTE alpha 5 wide"))
    assert (await reply(api, TRADER, 1)).startswith("✅ /quote alpha 5 wide")
    api.push(command("/quote 7"))  # only alpha has /quote: the strategy may be left out
    await reply(api, TRADER, 2)
    assert [(r.strat, r.name, r.args) for r in control.requests] == [
        ("alpha", "Quote", ["5", "wide"]),
        ("alpha", "Quote", ["7"]),
    ]


async def test_ambiguous_and_unknown_commands_get_usage(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/flatten", sender=ADMIN))
    assert "Several strategies have /flatten (alpha, beta)" in await reply(api, ADMIN, 1)
    api.push(command("/frobnicate alpha", sender=ADMIN))
    assert await reply(api, ADMIN, 2) == "Unknown command /frobnicate. See /help."
    api.push(command("/params alpha oops", sender=ADMIN))
    assert (await reply(api, ADMIN, 3)).startswith("Usage: /params")
    assert control.requests == []


async def test_stranger_is_refused_logged_and_audited(
    api: FakeBotApi,
    control: FakeControl,
    make_bridge: BridgeFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await make_bridge()
    with caplog.at_level(logging.WARNING):
        api.push(command("/start alpha", sender=STRANGER))
        assert await reply(api, STRANGER) == "⛔ Not authorised."
    assert control.requests == []
    line = audit_lines(tmp_path / "audit.jsonl")[-1]
    assert (line["user_id"], line["outcome"], line["command"]) == (STRANGER, "refused", "start")
    assert f"refused /start alpha from user {STRANGER}" in caplog.text


async def test_role_too_low_is_refused(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/start alpha", sender=VIEWER))
    assert await reply(api, VIEWER, 1) == "⛔ needs role trader."
    api.push(command("/stop alpha", sender=TRADER))
    assert await reply(api, TRADER, 1) == "⛔ needs role admin."
    api.push(command("/flatten alpha", sender=TRADER))
    assert await reply(api, TRADER, 2) == "⛔ needs role admin."
    assert control.requests == []


async def test_group_chat_gives_control_to_listed_users_only(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/start alpha", sender=STRANGER, chat=GROUP))
    assert await reply(api, GROUP, 1) == "⛔ Not authorised."
    api.push(command("/start@mlthon_test_bot alpha", sender=TRADER, chat=GROUP))
    assert (await reply(api, GROUP, 2)).startswith("✅ /start alpha")
    api.push(command("/start alpha", sender=TRADER, chat=-100999))  # a group the bot doesn't know
    assert await reply(api, -100999, 1) == "⛔ commands are not accepted in this chat."
    assert len(control.requests) == 1


async def test_non_commands_and_other_bots_commands_are_ignored(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    for name in ("command_tag_wrong.json", "not_command.json", "command_with_parameters.json"):
        api.push(sample(name))
    api.push(command("/start@otherbot alpha"))
    api.push(command("/strategies"))
    await reply(api, TRADER)
    assert control.names() == ["strategies"]
    assert len(api.sent()) == 1


async def test_stop_asks_confirmation_and_answers_only_after_the_stop_ack(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory, tmp_path: Path
) -> None:
    await make_bridge()
    api.push(command("/stop alpha", sender=ADMIN))
    await api.wait_for(lambda: bool(api.sent(ADMIN)))
    prompt = api.sent(ADMIN)[0]
    assert prompt["text"].startswith("⚠ Confirm /stop alpha?")
    confirm_data = prompt["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert control.requests == []
    message_id = 1001  # the fake server's first message id
    api.push(press(confirm_data, sender=ADMIN, chat=ADMIN, message_id=message_id))
    await wait_until(lambda: control.names() == ["stop"], what="stop request")
    await api.wait_for(lambda: bool(api.calls_of("editMessageText")))
    assert "confirmed" in api.calls_of("editMessageText")[-1].params["text"]
    assert len(api.texts(ADMIN)) == 1  # nothing but the prompt until the strategy acks
    control.ack_stop()
    assert await reply(api, ADMIN, 2) == "✅ /stop alpha: stopped\nstop acknowledged"
    outcomes = [line["outcome"] for line in audit_lines(tmp_path / "audit.jsonl")]
    assert outcomes == ["confirm_asked", "ok"]


async def test_confirmation_by_another_user_is_refused(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory, tmp_path: Path
) -> None:
    await make_bridge()
    api.push(command("/flatten alpha", sender=ADMIN, chat=GROUP))
    await api.wait_for(lambda: bool(api.sent(GROUP)))
    data = api.sent(GROUP)[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    api.push(press(data, sender=TRADER, chat=GROUP, message_id=1001))
    await api.wait_for(lambda: bool(api.calls_of("answerCallbackQuery")))
    answer = api.calls_of("answerCallbackQuery")[0].params
    assert answer["text"] == "Only the user who sent the command can confirm it."
    assert control.requests == []
    line = audit_lines(tmp_path / "audit.jsonl")[-1]
    assert (line["user_id"], line["outcome"]) == (TRADER, "foreign_confirm")
    # The sender can still confirm.
    api.push(press(data, sender=ADMIN, chat=GROUP, message_id=1001))
    await wait_until(lambda: control.names() == ["flatten"], what="flatten request")
    assert await reply(api, GROUP, 2) == "✅ /flatten alpha\nflatten"


async def test_expired_confirmation_does_nothing(
    api: FakeBotApi,
    control: FakeControl,
    make_bridge: BridgeFactory,
    clock: OffsetClock,
    tmp_path: Path,
) -> None:
    await make_bridge()
    api.push(command("/stop alpha", sender=ADMIN))
    await api.wait_for(lambda: bool(api.sent(ADMIN)))
    data = api.sent(ADMIN)[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    clock.advance(31)
    api.push(press(data, sender=ADMIN, chat=ADMIN, message_id=1001))
    await api.wait_for(lambda: bool(api.calls_of("editMessageText")))
    assert "expired" in api.calls_of("editMessageText")[0].params["text"]
    assert control.requests == []
    assert audit_lines(tmp_path / "audit.jsonl")[-1]["outcome"] == "expired"
    # A second press of the same button is no longer valid.
    api.push(press(data, sender=ADMIN, chat=ADMIN, message_id=1001))
    await api.wait_for(lambda: len(api.calls_of("answerCallbackQuery")) == 2)
    assert api.calls_of("answerCallbackQuery")[1].params["text"] == (
        "This confirmation is no longer valid."
    )


async def test_cancelled_confirmation_does_nothing(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/stop alpha", sender=ADMIN))
    await api.wait_for(lambda: bool(api.sent(ADMIN)))
    data = api.sent(ADMIN)[0]["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    api.push(press(data, sender=ADMIN, chat=ADMIN, message_id=1001))
    await api.wait_for(lambda: bool(api.calls_of("editMessageText")))
    assert api.calls_of("editMessageText")[0].params["text"] == "✖ /stop alpha: cancelled."
    assert control.requests == []


async def test_unanswered_command_times_out(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory, tmp_path: Path
) -> None:
    await make_bridge(cmd_timeout_s=0.3)
    api.push(command("/slow alpha"))
    text = await reply(api, TRADER)
    assert text == "⌛ /slow alpha: no answer from the control service within 0.3s"
    assert audit_lines(tmp_path / "audit.jsonl")[-1]["outcome"] == "timeout"


async def test_stale_command_is_not_run(
    api: FakeBotApi, control: FakeControl, make_bridge: BridgeFactory
) -> None:
    await make_bridge()
    api.push(command("/start alpha", age_s=600))
    assert (await reply(api, TRADER)).startswith("⏱ /start alpha ignored: sent")
    assert control.requests == []


async def test_token_never_appears_in_logs(
    api: FakeBotApi,
    control: FakeControl,
    make_bridge: BridgeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        bridge = await make_bridge()
        api.push(command("/start alpha"))
        await reply(api, TRADER)
        await bridge.stop()
    assert "getUpdates" in caplog.text  # PTB/httpx did log request URLs...
    secret = api.token.split(":")[1]
    assert secret not in caplog.text  # ...with the token masked
    assert "<telegram-token>" in caplog.text
