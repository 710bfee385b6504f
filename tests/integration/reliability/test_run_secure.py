"""`mlthon run --secure --journal`: the whole system trades through a broker with passwords and
ACLs, the gateway journals, and no generated password reaches the output."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import sys

import pytest

from mlthon.infra.broker import free_port
from tests.conftest import REPO, wait_until
from tests.integration.app.test_run import fast_mm_config

pytestmark = pytest.mark.integration


async def test_run_secure_reaches_fills_with_acls_and_a_journal(tmp_path):
    cfg = fast_mm_config(tmp_path, free_port())
    journal = tmp_path / "gw.db"
    args = [
        sys.executable, "-m", "mlthon", "--log-level", "INFO", "run", str(cfg), "--speed", "20",
        "--secure", "--journal", str(journal),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    lines: list[str] = []

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip())

    reader = asyncio.create_task(pump())
    try:
        await wait_until(
            lambda: any("-> position" in ln for ln in lines), 60, "a fill of the market maker"
        )
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "\n".join(lines)
    assert proc.returncode == 0, text[-4000:]
    assert "not authorised" not in text.lower(), text[-4000:]
    with sqlite3.connect(journal) as db:
        (fills,) = db.execute(
            "SELECT COUNT(*) FROM reports WHERE kind = 'OrderExecution'"
        ).fetchone()
    assert fills > 0
    # generated passwords are 32 url-safe characters: none is printed anywhere
    assert not re.search(r"MLTHON_BUS_PASSWORD=\S", text)
