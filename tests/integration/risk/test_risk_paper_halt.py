"""A paper run (`mlthon run`: mosquitto, control, the sim gateway, the feed, the Telegram bridge
and the strategy, each its own process) halted by its loss limit: the strategy's risk layer
sends the cancel-all, the gateway answers it, the alert reaches a local Bot API server, the
control service records the halt, and the strategy's status says so."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from mlthon.basics import Exchange
from mlthon.infra.broker import free_port
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import REPO, wait_until
from tests.fakes.bot_api import FakeBotApi
from tests.integration.app.test_run import fast_mm_config
from tests.running import mlthon

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ALERT_CHAT = 7001
STRAT = "demo_mm"


def _telegram_toml(tmp_path: Path, api: FakeBotApi) -> str:
    path = tmp_path / "telegram.toml"
    path.write_text(
        f"""
[telegram]
token_env = "MLTHON_TEST_TG_TOKEN"
base_url = "{api.base_url}"
poll_timeout_s = 1
client_id = "tghalt"
[bus]
root = "runtest"
[chats.strategies]
{STRAT} = {ALERT_CHAT}
""",
        encoding="utf-8",
    )
    return str(path)


async def test_a_paper_run_halts_on_its_loss_limit(tmp_path: Path) -> None:
    port = free_port()
    cfg = fast_mm_config(tmp_path, port)
    # Any loss from the day's peak halts it: a market maker's first adverse move will do.
    cfg.write_text(
        cfg.read_text() + '\n[risk]\nmax_drawdown = "0.000001"\nloss_check_s = 0.2\n',
        encoding="utf-8",
    )
    journal = tmp_path / "gw.db"
    topics = Topics("runtest")
    seen: list[Any] = []
    async with FakeBotApi() as api:
        args = [
            "--log-level", "INFO", "run", str(cfg), "--speed", "20", "--journal", str(journal),
            "--telegram", _telegram_toml(tmp_path, api),
        ]  # fmt: skip
        async with mlthon(*args, env={**os.environ, "MLTHON_TEST_TG_TOKEN": api.token}) as run:
            lines = run.lines
            await wait_until(lambda: any("control:" in ln for ln in lines), 60, "control up")
            async with MqttBus("127.0.0.1", port) as observer:
                await observer.wait_connected(30)
                observer.subscribe(
                    topics.gtw_req(Exchange.Sim, STRAT), lambda _t, x: seen.append(x), qos=1
                )
                observer.subscribe(
                    topics.gtw_rpt_all_exchanges(STRAT), lambda _t, x: seen.append(x), qos=1
                )
                statuses: list[m.StratStatus] = []
                observer.subscribe(
                    topics.strat_status(STRAT), lambda _t, x: statuses.append(x), qos=1
                )
                await wait_until(
                    lambda: any(isinstance(x, m.NewOrder) for x in seen), 60, "the first quotes"
                )
                await wait_until(
                    lambda: any(isinstance(x, m.CancelAll) for x in seen),
                    90,
                    "the halt's cancel-all",
                )
                await wait_until(
                    lambda: any(isinstance(x, m.CancelAllAck) for x in seen),
                    30,
                    "the gateway's answer to the cancel-all",
                )
                await api.wait_for(
                    lambda: any("HALTED" in t for t in api.texts(ALERT_CHAT)), timeout=30
                )
                alert = next(t for t in api.texts(ALERT_CHAT) if "HALTED" in t)
                assert alert.startswith(f"{STRAT}: HALTED: max_drawdown 0.000001 < "), alert
                halt_at = next(i for i, x in enumerate(seen) if isinstance(x, m.CancelAll))
                await wait_until(
                    lambda: statuses and "risk: Halted" in statuses[-1].detail,
                    30,
                    "the halt in the strategy's status",
                )
                # Nothing new after the halt, however long the waits above took: the quotes
                # stopped (the strategy's orders are refused in the env, before the bus).
                assert not any(isinstance(x, m.NewOrder) for x in seen[halt_at:])
            # `mlthon status` shows the halt beside the strategy.
            status = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "mlthon", "status", "--once"),
                *("--port", str(port), "--root", "runtest"),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "200"},
            )
            out, _ = await asyncio.wait_for(status.communicate(), 60)
            table = out.decode(errors="replace")
            assert "risk Halted: max_drawdown 0.000001" in table, table
            # The control service saved it for the strategy's next life.
            state_file = journal.with_name("gw.control-state.json")
            await wait_until(state_file.exists, 30, "the control state file")
            saved = json.loads(state_file.read_text())["risk"]["strategies"][STRAT]
            assert (saved["state"], saved["by"]) == ("Halted", "risk layer")
            rc = await run.interrupt()
    text = run.text
    assert rc == 0, text[-4000:]
    assert f"env: risk: {STRAT} HALTED: max_drawdown" in text, text[-4000:]
