"""Telegram -> fake Bot API -> PTB -> bridge -> bus -> the real control service -> a strategy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlthon.infra.telegram.bridge import TelegramBridge
from tests.conftest import wait_until
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.recorder import Recorder
from tests.harness import inproc_system
from tests.integration.telegram.support import audit_lines, make_config
from tests.integration.telegram.updates import ADMIN, STRANGER, TRADER, command, press

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

REC_CHAT = 7001


async def test_telegram_drives_a_real_strategy_through_the_control_service(
    api: FakeBotApi, tmp_path: Path
) -> None:
    strat = Recorder("rec", auto_ack_stop=False)
    async with inproc_system(strat) as s:
        await s.until("on_strat_params_update")
        assert s.env is not None
        widened: list[list[str]] = []

        def widen(args: list[str]) -> Any:
            widened.append(args)
            return "widened"

        s.env.add_cmd_hook("widen", widen, help="widen the quotes by N ticks")
        config = make_config(api, tmp_path, strategy_chats={"rec": REC_CHAT})
        bridge = TelegramBridge(config, s.sys_bus, topics=s.topics)
        await bridge.start()
        try:
            await wait_until(lambda: bridge.ready.is_set(), what="bridge ready")
            await wait_until(lambda: "widen" in bridge.known_hooks().get("rec", []), what="hook")
            starts = len(strat.of("on_start"))

            # A trader's /start of the running strategy is answered "already running": on_start
            # runs once per start, never a second time in the same process.
            api.push(command("/start rec level=2"))
            await api.wait_for(lambda: bool(api.texts(TRADER)))
            assert api.texts(TRADER)[0].startswith("✅ /start rec level=2")
            assert "already running" in api.texts(TRADER)[0]
            assert len(strat.of("on_start")) == starts

            # The same from a stranger is refused, and audited.
            api.push(command("/start rec", sender=STRANGER))
            await api.wait_for(lambda: bool(api.texts(STRANGER)))
            assert len(strat.of("on_start")) == starts
            assert audit_lines(tmp_path / "audit.jsonl")[-1]["outcome"] == "refused"

            # A custom hook reaches its callback with its params.
            api.push(command("/widen rec 3"))
            await api.wait_for(lambda: len(api.texts(TRADER)) == 2)
            assert widened == [["3"]]
            assert api.texts(TRADER)[1].startswith("✅ /widen rec 3")

            # publish_telegram arrives as sendMessage in the strategy's chat.
            s.env.publish_telegram("filled 0.001 @ 100", priority=1)
            await api.wait_for(lambda: bool(api.texts(REC_CHAT)))
            assert api.texts(REC_CHAT) == ["filled 0.001 @ 100"]

            # A Telegram outage costs the strategy nothing: publish_telegram returns at once,
            # and every message arrives after recovery.
            api.outage = {"sendMessage"}
            t0 = time.perf_counter()
            for i in range(100):
                s.env.publish_telegram(f"tick {i}")
            assert time.perf_counter() - t0 < 0.1
            await api.wait_for(lambda: bool(api.calls_of("sendMessage")[-1].status == 502))
            api.outage = None
            await api.wait_for(lambda: len(api.texts(REC_CHAT)) == 101, timeout=10)
            assert api.texts(REC_CHAT)[1:] == [f"tick {i}" for i in range(100)]
            assert s.reactor.slow_callbacks == 0

            # /stop asks for confirmation and completes only after send_stop_ack.
            api.push(command("/stop rec", sender=ADMIN))
            await api.wait_for(lambda: bool(api.sent(ADMIN)))
            markup = api.sent(ADMIN)[0]["reply_markup"]
            api.push(
                press(
                    markup["inline_keyboard"][0][0]["callback_data"],
                    sender=ADMIN,
                    chat=ADMIN,
                    message_id=1001,
                )
            )
            await s.until("on_stop")
            await api.wait_for(lambda: bool(api.calls_of("editMessageText")))
            assert len(api.texts(ADMIN)) == 1  # only the prompt so far
            s.env.send_stop_ack()
            await api.wait_for(lambda: len(api.texts(ADMIN)) == 2)
            assert api.texts(ADMIN)[1].startswith("✅ /stop rec: stopped")
        finally:
            await bridge.stop()
