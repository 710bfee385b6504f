"""``python -m mlthon.infra.telegram``: the bridge as its own process, on a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.fakes.bot_api import FakeBotApi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def test_cli_bridge_delivers_publishes_from_mqtt_and_stops_on_sigterm(
    api: FakeBotApi, mosquitto: MosquittoBroker, topic_root: str, tmp_path: Path
) -> None:
    config = tmp_path / "telegram.toml"
    config.write_text(
        f"""
[telegram]
token_env = "MLTHON_TEST_TG_TOKEN"
base_url = "{api.base_url}"
poll_timeout_s = 1
[bus]
host = "{mosquitto.host}"
port = {mosquitto.port}
root = "{topic_root}"
[chats.strategies]
alpha = 5001
""",
        encoding="utf-8",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mlthon.infra.telegram",
        "--config",
        str(config),
        "--log-level",
        "DEBUG",
        env={**os.environ, "MLTHON_TEST_TG_TOKEN": api.token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await api.wait_for(lambda: bool(api.calls_of("getUpdates")), timeout=20)
        async with MqttBus(mosquitto.host, mosquitto.port) as bus:
            await bus.wait_connected()
            msg = m.TelegramPublish(strat="alpha", text="hello over mqtt", priority=1)
            # The bridge's MQTT subscription may still be on its way: publish until one arrives.
            for _ in range(20):
                bus.publish(Topics(topic_root).telegram("alpha"), msg, qos=1)
                with contextlib.suppress(TimeoutError):
                    await api.wait_for(lambda: bool(api.texts(5001)), timeout=0.5)
                    break
        assert set(api.texts(5001)) == {"hello over mqtt"}
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rc = await proc.wait()
        assert rc == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    logs = (await proc.stderr.read()).decode()
    assert "polling as @mlthon_test_bot" in logs
    assert api.token.split(":")[1] not in logs


async def test_cli_bridge_with_a_token_telegram_refuses_exits_non_zero_with_a_clear_error(
    api: FakeBotApi, mosquitto: MosquittoBroker, topic_root: str, tmp_path: Path
) -> None:
    config = tmp_path / "telegram.toml"
    config.write_text(
        f"""
[telegram]
token_env = "MLTHON_TEST_TG_TOKEN"
base_url = "{api.base_url}"
[bus]
host = "{mosquitto.host}"
port = {mosquitto.port}
root = "{topic_root}"
""",
        encoding="utf-8",
    )
    wrong = "987654321:AAWrongTokenWrongTokenWrongToken_0000"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mlthon.infra.telegram",
        "--config",
        str(config),
        env={**os.environ, "MLTHON_TEST_TG_TOKEN": wrong},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(25):
            _out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 3, text
    assert "Telegram refused the bot" in text and "check the token" in text
    assert wrong.split(":")[1] not in text  # never the token itself
