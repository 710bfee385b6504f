"""The interactive report in headless Chromium: no script error, every chart drawn, hover data
on our fills and round trips; a market maker's run and a taker's (screenshots of both go to
results/test-artefacts/, copied to docs/ for docs/reports.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from demo_strat.market_maker import MarketMaker
from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest, BacktestResult
from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side
from mlthon.feeds.synthetic import synthetic_market
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.instruments import load_instruments
from tests.integration.ops.cdp import Page, chromium_page, find_chromium

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),
    pytest.mark.skipif(find_chromium() is None, reason="needs Debian chromium (.ci/run)"),
]

S = 1_000_000_000
START = 1_700_000_000 * S
ARTEFACTS = Path(__file__).resolve().parents[3] / "results" / "test-artefacts"
SIM_CONFIG = {
    "account": {"balances": {"USDT": "100000"}, "leverage": "10"},
    "latency": {"market_data": "1ms", "entry": {"default": "2ms"}, "response": {"default": "2ms"}},
}
MAKER_PARAMS = {
    "exchange": "Sim",
    "instrument_id": 9001,
    "spread_ticks": 4,
    "size": "0.010",
    "max_position": "0.050",
    "skew_ticks": "1",
    "requote_ms": 500,
}


class Momentum(Strategy):
    """A taker: every second, buys (sells) at the touch with an IOC order when the mid rose
    (fell) ``ticks`` ticks over the last ``lookback_s`` seconds, and closes the position the same
    way ``hold_s`` seconds later."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__("momentum")
        p = params or {}
        self.ticks = int(p.get("ticks", 3))
        self.lookback = int(p.get("lookback_s", 5))
        self.hold_s = int(p.get("hold_s", 20))
        self.size = str(p.get("size", "0.010"))
        self.bid = self.ask = None
        self.mids: deque[Decimal] = deque(maxlen=self.lookback + 1)
        self.position = Decimal(0)
        self.opened = 0
        self.pending: str | None = None
        self.now = 0

    def on_start(self, params: str) -> None:
        self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)
        self.tick = self.env.get_instrument(Exchange.Sim, 9001).tick_size
        self.env.setup_timer(1000, self.on_second)

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        self.bid, self.now = price, recv_ts

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        self.ask, self.now = price, recv_ts

    def send(self, side: Side, qty: str) -> None:
        price = self.ask if side is Side.Buy else self.bid
        self.pending = self.env.send_new_order(
            None,
            Exchange.Sim,
            9001,
            side,
            price,
            qty,
            ExecInstructions.Unset,
            OrderType.Limit,
            TIF.IOC,
            False,
        )

    def on_second(self) -> bool:
        if self.bid is None or self.ask is None:
            return True
        mid = (self.bid.value + self.ask.value) / 2
        self.mids.append(mid)
        if self.pending is not None:
            return True
        if self.position:
            if self.now - self.opened >= self.hold_s * S:
                side = Side.Sell if self.position > 0 else Side.Buy
                self.send(side, str(abs(self.position)))
            return True
        if len(self.mids) > self.lookback:
            move = (mid - self.mids[0]) / self.tick
            if abs(move) >= self.ticks:
                self.send(Side.Buy if move > 0 else Side.Sell, self.size)
                self.opened = self.now
        return True

    def on_order_execution(
        self, exchange, client_id, side, price, fill_qty, leaves_qty, exec_ts, recv_ts
    ):
        self.position += fill_qty.value if side is Side.Buy else -fill_qty.value
        if leaves_qty.value == 0:
            self.pending = None

    def on_order_cancelled(self, exchange, client_id, unsolicited, engine_ts, recv_ts, code, why):
        self.pending = None

    def on_new_order_reject(self, exchange, client_id, reject_code, reject_reason):
        self.pending = None

    def on_stop(self, params: str) -> None:
        self.env.send_stop_ack()


def sim_instrument():
    return [i for i in load_instruments() if i.instrument_id == 9001]


def maker_run(seconds: float = 600) -> BacktestResult:
    insts = sim_instrument()
    return Backtest(
        MarketMaker,
        data=synthetic_market(insts[0], seed=7, start_ns=START, duration_s=seconds),
        instruments=insts,
        params=MAKER_PARAMS,
        name="demo_mm",
        gateway=SimGatewayConfig.from_dict(SIM_CONFIG),
        data_label=f"synthetic market, {seconds:g} s",
        data_seed=7,
    ).run()


def taker_run(seconds: float = 1800) -> BacktestResult:
    insts = sim_instrument()
    return Backtest(
        Momentum,
        data=synthetic_market(insts[0], seed=11, start_ns=START, duration_s=seconds),
        instruments=insts,
        params={"ticks": 3, "lookback_s": 5, "hold_s": 20, "size": "0.010"},
        name="momentum",
        gateway=SimGatewayConfig.from_dict(SIM_CONFIG),
        data_label=f"synthetic market, {seconds:g} s",
        data_seed=11,
    ).run()


ERROR_PROBE = """
window.__mltErrors = [];
window.addEventListener('error', e => window.__mltErrors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', e => window.__mltErrors.push(String(e.reason)));
"""

CHARTS_JS = """JSON.stringify([...document.querySelectorAll('[data-chart]')].map(c => {
  const gd = c.querySelector('.js-plotly-plot');
  return {
    id: c.dataset.chart,
    svg: !!(gd && gd.querySelector('.main-svg')),
    traces: gd && gd.data ? gd.data.length : 0,
    points: gd && gd.data ? gd.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0,
    drawn: gd ? gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length : 0,
    xtitle: gd && gd.layout.xaxis.title ? gd.layout.xaxis.title.text : '',
    ytitle: gd && gd.layout.yaxis.title ? gd.layout.yaxis.title.text : '',
  };
}))"""


def hover_js(div: str, trace_prefix: str) -> str:
    """Hover the first point of the trace whose name starts with ``trace_prefix``; the hover
    box's text (or why there is none)."""
    return f"""(() => {{
  const gd = document.getElementById('{div}');
  const i = gd.data.findIndex(t => (t.name || '').startsWith('{trace_prefix}'));
  if (i < 0) return 'no trace {trace_prefix}';
  Plotly.Fx.hover(gd, [{{curveNumber: i, pointNumber: 0}}]);
  const box = gd.querySelector('.hoverlayer');
  return box ? box.textContent : 'no hover layer';
}})()"""


async def wait_for(page: Page, expression: str, what: str, timeout_s: float = 60) -> Any:
    """Evaluate ``expression`` until it is truthy (the page renders on its own clock)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await page.evaluate(expression)
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: still {last!r} after {timeout_s} s")


async def open_report(page: Page, path: Path) -> None:
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=1000,
        deviceScaleFactor=1,
        mobile=False,
    )
    await page.send("Page.addScriptToEvaluateOnNewDocument", source=ERROR_PROBE)
    await page.send("Page.enable")
    await page.send("Page.navigate", url=path.as_uri())
    await wait_for(
        page,
        "document.readyState === 'complete' && typeof Plotly !== 'undefined' && "
        "document.querySelectorAll('[data-chart] .main-svg').length > 0",
        "the report's charts",
    )


async def screenshot(page: Page, name: str, height: int = 2700) -> Path:
    metrics = await page.send("Page.getLayoutMetrics")
    full = int(metrics["cssContentSize"]["height"])
    shot = await page.send(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": min(full, height), "scale": 1},
    )
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTEFACTS / name
    out.write_bytes(base64.b64decode(shot["data"]))
    return out


async def check_charts(page: Page, expected: list[str]) -> list[dict[str, Any]]:
    charts = json.loads(await page.evaluate(CHARTS_JS))
    assert [c["id"] for c in charts] == expected
    for c in charts:
        assert c["svg"] and c["traces"] > 0 and c["points"] > 0 and c["drawn"] > 0, c
        assert c["ytitle"] and "(" in c["ytitle"], c  # a unit on every y axis
    assert await page.evaluate("JSON.stringify(window.__mltErrors)") == "[]"
    return charts


async def test_report_of_a_market_maker_renders_with_hover_data_in_chromium(tmp_path):
    r = maker_run()
    assert r.stats is not None and r.stats.kind == "maker"
    out = r.write(tmp_path / "maker")
    first_buy = next(f for f in r.fills if f["side"] == "Buy")
    async with chromium_page(tmp_path / "profile") as page:
        await open_report(page, out / "report.html")
        charts = await check_charts(page, ["fig-equity", "fig-position", "fig-price", "fig-spread"])
        assert charts[0]["xtitle"] == "" and charts[1]["xtitle"] == "time (UTC)"
        hover = await hover_js_text(page, "fig-price", "our buys")
        assert f"order id: {first_buy['cl_id']}" in hover, hover
        assert f"fee: {first_buy['fee']} USDT" in hover and "liquidity: maker" in hover, hover
        assert "latency (fill to report): 2 ms" in hover, hover
        # The tables show UTC date-times, not nanoseconds.
        cell = await page.evaluate(
            "document.querySelector('#fills + .scroll td')?.textContent ?? ''"
        )
        assert cell.startswith("2023-11-14 22:1"), cell
        header = await page.evaluate("document.querySelector('table.run').textContent")
        for text in (
            "demo_strat.market_maker:MarketMaker",
            "spread_ticks = 4",
            "data 7",
            "entry 2 ms; response 2 ms; market data 1 ms",
            "conservative",
            "maker 0.02 %, taker 0.05 %",
            "2023-11-14 22:13:20",
        ):
            assert text in header, text
        shot = await screenshot(page, "report-maker.png")
    assert shot.stat().st_size > 50_000


async def hover_js_text(page: Page, div: str, trace: str) -> str:
    text = await page.evaluate(hover_js(div, trace))
    return str(text)


async def test_report_of_a_taker_renders_round_trips_with_hover_data_in_chromium(tmp_path):
    r = taker_run()
    assert r.stats is not None and r.stats.kind == "taker"
    assert r.stats.trip_stats.count >= 5
    out = r.write(tmp_path / "taker")
    async with chromium_page(tmp_path / "profile") as page:
        await open_report(page, out / "report.html")
        await check_charts(page, ["fig-equity", "fig-position", "fig-price", "fig-round-trips"])
        assert "spread captured" not in await page.evaluate(
            "[...document.querySelectorAll('.gtitle')].map(t => t.textContent).join('|')"
        )
        trip = r.stats.trips[0]
        label = "wins" if trip.net > 0 else "losses"
        hover = await hover_js_text(page, "fig-round-trips", label)
        assert "held" in hover and "gross" in hover and "net" in hover, hover
        fills_hover = await hover_js_text(page, "fig-price", "our ")
        assert "liquidity: taker" in fills_hover, fills_hover
        shot = await screenshot(page, "report-taker.png")
    assert shot.stat().st_size > 50_000
