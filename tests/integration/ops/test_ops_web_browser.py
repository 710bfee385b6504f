"""The status page in headless Chromium: it shows the components and a change appears live."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.heartbeat import Heartbeat, Stats
from mlthon.infra.ops.web import StatusWeb
from tests.integration.ops.cdp import chromium_page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ARTEFACTS = Path(__file__).resolve().parents[3] / "results" / "test-artefacts"

STRAT_EXTRA = {
    "strategy": {
        "state": "running",
        "open_orders": 3,
        "pnl": "42.5",
        "callbacks": 1200,
        "callback_errors": 0,
        "positions": {
            "Sim:9001": {
                "qty": "0.004",
                "avg_price": "100.1",
                "realized": "40",
                "unrealized": "2.5",
            }
        },
    }
}


async def test_status_page_updates_live_in_chromium(tmp_path):
    sched = LiveScheduler()
    bus = InProcBus(sched)
    topics = Topics("web")
    board = StatusBoard(bus, sched, topics)
    board.start()
    feed = Heartbeat(bus, sched, topics, name="BinanceUsdm", kind="feed", interval_s=30)
    feed.start(detail="streaming")
    Heartbeat(bus, sched, topics, name="Sim", kind="gateway", interval_s=30).start()
    Heartbeat(
        bus,
        sched,
        topics,
        name="demo_mm",
        kind="strategy",
        interval_s=30,
        stats=lambda: Stats(counters={"events": 10}, extra=STRAT_EXTRA),
    ).start()
    async with StatusWeb(board, port=0) as web, chromium_page(tmp_path / "profile") as page:
        await page.send("Page.enable")
        await page.send("Page.navigate", url=web.url)
        state_js = "document.querySelector('#c-feed-BinanceUsdm')?.dataset.state ?? null"

        async def dom_state() -> object:
            return await page.evaluate(state_js)

        seen: list[object] = []

        async def poll(expected: str, timeout_s: float = 20.0) -> None:
            # wait_until for an async predicate: the DOM is read through DevTools.
            deadline = sched.now_ns() + int(timeout_s * 1e9)
            while sched.now_ns() < deadline:
                seen.append(await dom_state())
                if seen[-1] == expected:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"page never showed {expected}: last {seen[-3:]}")

        await poll("up")
        assert (
            await page.evaluate("document.querySelector('#s-demo_mm .pnl').textContent") == "42.5"
        )
        assert await page.evaluate("document.getElementById('conn').textContent") == "live"
        feed.set_state("degraded", "venue lagging")  # no reload: the SSE stream brings it
        await poll("degraded")
        shot = await page.send("Page.captureScreenshot", format="png")
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        out = ARTEFACTS / "ops_status_page.png"
        out.write_bytes(base64.b64decode(shot["data"]))
        assert out.stat().st_size > 1000
    board.stop()
