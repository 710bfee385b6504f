"""The status page in headless Chromium: it shows the components and a change appears live."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest

from mlthon.basics.mlt_enum import TIF, Exchange, ExecInstructions, OrderType, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.heartbeat import Heartbeat, Stats
from mlthon.infra.ops.web import StatusWeb
from tests.conftest import wait_until
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


# Collects the page's uncaught errors from before its own script runs.
CATCH_ERRORS = (
    "window.__errors = [];"
    "addEventListener('error', (e) => window.__errors.push(String(e.message)));"
    "addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));"
)
UTC_RE = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"


async def test_status_page_orders_fills_pnl_chart_render_in_chromium(tmp_path):
    sched = LiveScheduler()
    bus = InProcBus(sched)
    topics = Topics("webact")
    board = StatusBoard(bus, sched, topics)
    board.start()
    pnl = {"v": "0"}

    def extra() -> dict:
        s = dict(STRAT_EXTRA["strategy"], pnl=pnl["v"])
        return {"strategy": s}

    hb = Heartbeat(
        bus,
        sched,
        topics,
        name="demo_mm",
        kind="strategy",
        interval_s=30,
        stats=lambda: Stats(extra=extra()),
    )
    async with StatusWeb(board, port=0) as web, chromium_page(tmp_path / "profile") as page:
        hb.start()
        samples = ["1.25", "-0.000699700000000000000000000000", "3"]
        for v in samples:  # one PnL sample per heartbeat
            n = len(web.activity.of("demo_mm").pnl)
            pnl["v"] = v
            hb.beat()
            await wait_until(lambda n=n: len(web.activity.of("demo_mm").pnl) > n, 30, "a sample")
        rpt = topics.gtw_rpt(Exchange.Sim, "demo_mm")
        bus.publish(
            rpt,
            m.NewOrderAck(
                cl_id="17",
                exch_id="x17",
                instrument_id=9001,
                side=Side.Sell,
                price="100.1000",
                qty="0.0040",
                leaves_qty="0.0040",
                ord_type=OrderType.Limit,
                tif=TIF.GTC,
                exec_instr=ExecInstructions.Unset,
                ts=sched.now_ns(),
            ),
            qos=1,
        )
        bus.publish(
            rpt,
            m.OrderExecution(
                cl_id="17",
                exec_id="e1",
                instrument_id=9001,
                side=Side.Sell,
                price="100.1000",
                fill_qty="0.0010",
                leaves_qty="0.0030",
                exec_ts=sched.now_ns(),
                fee="0.000040040000",
                fee_coin="USDT",
            ),
            qos=1,
        )
        await wait_until(lambda: web.activity.of("demo_mm").fills, 30, "the fill")
        await page.send("Page.enable")
        await page.send("Page.addScriptToEvaluateOnNewDocument", source=CATCH_ERRORS)
        await page.send("Page.navigate", url=web.url)

        async def dom(js: str, expected: object, timeout_s: float = 30.0) -> None:
            deadline = sched.now_ns() + int(timeout_s * 1e9)
            got: object = None
            while sched.now_ns() < deadline:
                got = await page.evaluate(js)
                if got == expected:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"{js} -> {got!r}, expected {expected!r}")

        root = "document.querySelector('#s-demo_mm')"
        await dom(f"{root}?.querySelectorAll('table.fills tr').length ?? 0", 2)
        await dom(f"{root}.querySelector('table.orders td:nth-child(2)').textContent", "17")
        orders = await page.evaluate(
            f"[...{root}.querySelectorAll('table.orders tr:nth-child(2) td')]"
            ".map((td) => td.textContent.trim())"
        )
        assert orders[3:8] == ["Sell", "100.1", "0.004", "0.003", "partly filled"]
        assert re.match(UTC_RE, orders[0]), orders
        fill = await page.evaluate(
            f"[...{root}.querySelectorAll('table.fills tr:nth-child(2) td')]"
            ".map((td) => td.textContent.trim())"
        )
        assert fill[4:8] == ["100.1", "0.001", "0.00004004 USDT", "taker"]
        n_points = await page.evaluate(
            f"{root}.querySelector('.pnl-chart svg polyline').points.numberOfItems"
        )
        assert n_points == len(web.activity.of("demo_mm").pnl) >= len(samples)
        assert await page.evaluate(f"{root}.querySelector('.pnl').textContent") == "3"
        since = await page.evaluate(
            "document.querySelector('#c-strategy-demo_mm .since').textContent"
        )
        assert re.match(UTC_RE, since), since
        avg = await page.evaluate(
            f"{root}.querySelector('table.positions td:nth-child(3)').textContent"
        )
        assert avg == "100.1"
        assert await page.evaluate("window.__errors") == []
        shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        out = ARTEFACTS / "ops_status_page_activity.png"
        out.write_bytes(base64.b64decode(shot["data"]))
    hb.stop()
    board.stop()
