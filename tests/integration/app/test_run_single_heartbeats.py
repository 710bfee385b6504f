"""``mlthon run --single-process`` heartbeats every part as separate processes would, so the
status board (what ``mlthon status`` and the web page show) sees control, gateway, feed and
strategy up while it runs and down after it stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mlthon.app.launcher import run_single_process
from mlthon.infra.broker import free_port
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.config import load_strategy_config
from mlthon.infra.ops.board import StatusBoard
from tests.conftest import wait_until
from tests.integration.app.test_run import fast_mm_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PARTS = {("control", "control"), ("gateway", "Sim"), ("feed", "Sim"), ("strategy", "demo_mm")}


async def test_single_process_run_heartbeats_every_part(tmp_path: Path) -> None:
    cfg = load_strategy_config(fast_mm_config(tmp_path, free_port()))
    sched = LiveScheduler(loop=asyncio.get_running_loop())
    bus = InProcBus(sched)
    board = StatusBoard(bus, sched, Topics(cfg.bus.root))
    board.start()

    def states() -> dict[tuple[str, str], str]:
        return {(v.kind, v.name): v.state for v in board.sorted_views()}

    stop = asyncio.Event()
    run = asyncio.create_task(
        run_single_process(cfg, data=[], speed=20.0, stop=stop, bus=bus, scheduler=sched)
    )
    try:
        await wait_until(lambda: all(states().get(p) == "up" for p in PARTS), 30, f"{PARTS} up")
        snapshot = board.snapshot()
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await run
    await wait_until(lambda: all(states().get(p) == "down" for p in PARTS), 30, "all down")
    gw = next(c for c in snapshot["components"] if c["kind"] == "gateway")
    assert gw["pid"] and gw["venue"].startswith("ReadyToTrade"), gw
    board.stop()
