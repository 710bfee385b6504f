"""`mlthon run --secure --journal`: the whole system trades through a broker with passwords and
ACLs and no anonymous access (control, gateway, feed, Telegram bridge and strategy each log in as
their own user), the gateway journals, and no generated password reaches the output."""

from __future__ import annotations

import os
import re
import sqlite3

import pytest

from mlthon.infra.broker import free_port
from tests.conftest import wait_until
from tests.fakes.bot_api import FakeBotApi
from tests.integration.app.test_run import fast_mm_config
from tests.integration.telegram.updates import TRADER, command
from tests.running import mlthon

pytestmark = pytest.mark.integration


def _telegram_toml(tmp_path, api: FakeBotApi) -> str:
    path = tmp_path / "telegram.toml"
    path.write_text(
        f"""
[telegram]
token_env = "MLTHON_TEST_TG_TOKEN"
base_url = "{api.base_url}"
poll_timeout_s = 1
client_id = "tgsecure"
[bus]
root = "runtest"
[roles]
trader = [{TRADER}]
""",
        encoding="utf-8",
    )
    return str(path)


async def test_run_secure_reaches_fills_with_acls_and_a_journal(tmp_path):
    cfg = fast_mm_config(tmp_path, free_port())
    journal = tmp_path / "gw.db"
    async with FakeBotApi() as api:
        await _run_secure(cfg, journal, api, _telegram_toml(tmp_path, api))


async def _run_secure(cfg, journal, api: FakeBotApi, telegram: str) -> None:
    args = [
        "--log-level", "INFO", "run", str(cfg), "--speed", "20",
        "--secure", "--journal", str(journal), "--telegram", telegram,
    ]  # fmt: skip
    async with mlthon(*args, env={**os.environ, "MLTHON_TEST_TG_TOKEN": api.token}) as run:
        # market data reached the strategy: the feed logged in and may publish it
        await wait_until(
            lambda: any("-> position" in ln for ln in run.lines), 60, "a fill of the market maker"
        )
        # the bridge logged in: its command reached control and the answer came back
        await api.wait_for(lambda: bool(api.calls_of("getUpdates")), timeout=20)
        api.push(command("/status demo_mm"))
        await api.wait_for(lambda: bool(api.texts(TRADER)), timeout=20)
        assert "demo_mm" in api.texts(TRADER)[0], api.texts(TRADER)
        rc = await run.interrupt()
    text = run.text
    assert rc == 0, text[-4000:]
    assert "not authorised" not in text.lower(), text[-4000:]
    with sqlite3.connect(journal) as db:
        (fills,) = db.execute(
            "SELECT COUNT(*) FROM reports WHERE kind = 'OrderExecution'"
        ).fetchone()
    assert fills > 0
    # generated passwords are 32 url-safe characters: none is printed anywhere
    assert not re.search(r"MLTHON_BUS_PASSWORD=\S", text)
