"""The risk layer in a backtest's results: ``risk_events.csv`` (and Parquet, and the notebook
table) lists every refusal and trading-state change, counted as the summary counts them; the
report marks the refusals on the price chart (one trace per limit key) and shades the time
Halted and ReduceOnly on the price and equity charts; a run without a [risk] table has none of
it, and no error."""

from __future__ import annotations

import csv
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest, BacktestResult
from mlthon.app.report_figures import STATE_COLOURS, iso
from mlthon.app.tables import RISK_EVENT_COLUMNS
from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side
from mlthon.basics.mlt_enum import TradingState
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.instruments import load_instruments
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig
from tests.conftest import REPO, run_cli
from tests.integration.app.test_backtest import hand_backtest
from tests.integration.app.test_report_browser import CHARTS_JS, hover_js_text, open_report
from tests.integration.ops.cdp import chromium_page, find_chromium
from tests.integration.risk.test_risk_backtest import data

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SIM = Exchange.Sim
D = Decimal
RISK = RiskConfig(every=InstrumentLimits(max_order_qty=D("1")), max_daily_loss=D("0.5"))


class Trader(Strategy):
    """At each best-ask update, one step: (0) takes 1 at the ask, asks for 0.8 at a limit and at
    market (1.5: both refused by max_order_qty); the price falls and the daily loss halts it (an
    order sent then is refused); (2) the operator sets ReduceOnly and a buy is refused; (3) the
    operator sets Active again."""

    def __init__(self) -> None:
        super().__init__("risky")
        self.asks = 0
        self.states: list[TradingState] = []

    def on_start(self, params: str) -> None:
        self.env.subscribe(SIM, 9001, MDSub.BBO)

    def send(self, side: Side, price: str | None, qty: str, tif: TIF = TIF.GTC) -> None:
        kind = OrderType.Limit if price is not None else OrderType.Market
        self.env.send_new_order(
            None, SIM, 9001, side, price, qty, ExecInstructions.Unset, kind, tif, False
        )

    def operator(self, *args: str) -> None:
        env = self.env
        assert isinstance(env, StratEnv)
        hook = env.hooks.get("risk")
        assert hook is not None
        hook.callback(list(args))

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        step = self.asks
        self.asks += 1
        if step == 0:
            self.send(Side.Buy, "100.2", "1", TIF.IOC)  # long 1 at 100.2
            self.send(Side.Buy, "99.0", "1.5")  # refused: max_order_qty, at its price
            self.send(Side.Buy, None, "1.5", TIF.IOC)  # refused: max_order_qty, no price
        elif step == 2:
            self.operator("reduceonly", "desk", "limit")
            self.send(Side.Buy, "98.0", "0.1")  # grows the long: refused
        elif step == 3:
            self.operator("active", "back")

    def on_risk_state(self, state: TradingState, reason: str) -> None:
        self.states.append(state)
        if state is TradingState.Halted:
            self.send(Side.Buy, "90.0", "0.1")  # refused: halted

    def on_stop(self, params: str) -> None:
        self.env.send_stop_ack()


def risky_run(risk: RiskConfig | None = RISK) -> tuple[BacktestResult, Trader]:
    insts = [i for i in load_instruments() if i.instrument_id == 9001]
    gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "10000"}}})
    strat = Trader()
    msgs = data((3, "99.0", "99.2"), (6, "98.9", "99.3"), (9, "99.1", "99.4"), (12, "99.2", "99.5"))
    result = Backtest(
        strat, data=msgs, instruments=insts, name="risky", gateway=gw, risk=risk
    ).run()
    return result, strat


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def figures(page: str) -> dict[str, dict[str, Any]]:
    """The plotly figures embedded in a report, by element id: ``Plotly.newPlot("id", data,
    layout, config)`` parsed as the JSON it is."""
    out = {}
    dec = json.JSONDecoder()
    marker = "Plotly.newPlot("
    at = page.find(marker)
    while at >= 0:
        pos = at + len(marker)
        args = []
        for _ in range(3):  # the id, the traces, the layout
            while page[pos] in " \n\t,":
                pos += 1
            value, pos = dec.raw_decode(page, pos)
            args.append(value)
        out[args[0]] = {"data": args[1], "layout": args[2]}
        at = page.find(marker, pos)
    return out


@pytest.fixture(scope="module")
def risky(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, Trader, Path]:
    r, strat = risky_run()
    return r, strat, r.write(tmp_path_factory.mktemp("risky") / "out")


def test_risk_events_csv_has_every_refusal_and_state_change_counted_as_the_summary(risky):
    r, strat, out = risky
    s = r.summary
    assert strat.states == [TradingState.Halted, TradingState.ReduceOnly, TradingState.Active]
    assert s["risk_refused_by"] == {"max_order_qty": 2, "trading_state": 2}
    assert s["risk_state"] == "Active"
    rows = read(out / "risk_events.csv")
    assert list(rows[0]) == RISK_EVENT_COLUMNS
    assert {"ts", "kind", "key", "side", "price", "qty", "detail"} <= set(RISK_EVENT_COLUMNS)
    refusals = [e for e in rows if e["kind"] != "state"]
    assert dict(Counter(e["key"] for e in refusals)) == s["risk_refused_by"]
    assert len(refusals) == s["risk_refusals"] == 4
    assert {e["kind"] for e in refusals} == {"new"}
    assert [(e["key"], e["detail"].split(" ")[0]) for e in rows if e["kind"] == "state"] == [
        ("Halted", "max_daily_loss"),
        ("ReduceOnly", "operator:"),
        ("Active", "operator:"),
    ]
    times = [int(e["ts"]) for e in rows]
    assert times == sorted(times) and times[0] >= r.summary["start_ns"]
    limit, market = refusals[:2]
    assert (limit["side"], limit["price"], limit["qty"]) == ("Buy", "99.0", "1.5")
    assert (market["side"], market["price"], market["qty"]) == ("Buy", "", "1.5")
    assert limit["instrument"] == "SIMUSDT" and limit["instrument_id"] == "9001"
    assert limit["detail"] == "max_order_qty 1 < 1.5 SIMUSDT" and limit["cl_id"]
    # The notebook table, and Parquet typed as the other tables.
    assert r.risk_events == rows
    pd = pytest.importorskip("pandas")
    frame = r.tables.risk_events()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(rows)
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "risk_events.parquet")
    assert table.num_rows == len(rows)
    assert str(table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    run = json.loads((out / "run.json").read_text())
    assert run["risk_limits"] == [
        "max_order_qty 1 (every instrument)",
        "max_daily_loss 0.5",
        "loss checked every 1 s",
    ]


def test_report_marks_refusals_by_limit_and_shades_the_halt(risky):
    pytest.importorskip("plotly")
    r, _, out = risky
    page = (out / "report.html").read_text()
    figs = figures(page)
    assert {"fig-equity", "fig-position", "fig-price"} <= set(figs)
    rows = r.risk_events
    refusals = [e for e in rows if e["kind"] != "state"]
    price = figs["fig-price"]
    traces = {t["name"]: t for t in price["data"] if t.get("name", "").startswith("refused: ")}
    assert set(traces) == {"refused: max_order_qty (2)", "refused: trading_state (2)"}
    qty = traces["refused: max_order_qty (2)"]
    assert qty["marker"]["symbol"] == "x" and qty["mode"] == "markers"
    assert qty["x"] == [iso(int(e["ts"])) for e in refusals[:2]]
    # The limit order at its price; the market order at the mid of its time (100.1).
    assert qty["y"] == [99.0, 100.1]
    assert "drawn at the mid 100.10" in qty["customdata"][1][2]
    assert "max_order_qty 1 &lt; 1.5 SIMUSDT" in qty["customdata"][0][4]
    assert "refused: %{customdata[0]}" in qty["hovertemplate"]
    changes = [e for e in rows if e["kind"] == "state"]
    halt, reduce, active = (int(e["ts"]) for e in changes)
    for fig, rows_per_shape in ((price, 1), (figs["fig-equity"], 2)):
        shapes = fig["layout"]["shapes"]
        halted = [sh for sh in shapes if sh.get("name") == "risk: Halted"]
        assert len(halted) == rows_per_shape
        assert all(sh["type"] == "rect" for sh in halted)
        assert {(sh["x0"], sh["x1"], sh["fillcolor"]) for sh in halted} == {
            (iso(halt), iso(reduce), STATE_COLOURS["Halted"])
        }
        amber = [sh for sh in shapes if sh.get("name") == "risk: ReduceOnly"]
        assert {(sh["x0"], sh["x1"]) for sh in amber} == {(iso(reduce), iso(active))}
        assert not [sh for sh in shapes if sh.get("name") == "risk: Active"]  # a line, no shade
        lines = {sh["name"] for sh in shapes if sh["type"] == "line"}
        assert lines == {"risk state: Halted", "risk state: ReduceOnly", "risk state: Active"}
        labels = [a["text"] for a in fig["layout"]["annotations"] if "hovertext" in a]
        assert labels == ["Halted", "ReduceOnly", "Active"]
    # The position chart carries none of it; the header says it in figures.
    assert "shapes" not in figs["fig-position"]["layout"]
    assert "risk: 4 refusals, final state Active" in page
    assert "max_order_qty 2, trading_state 2" in page
    assert '<h2 id="risk">Risk layer</h2>' in page
    assert "max_order_qty 1 (every instrument)" in page


def test_a_run_without_a_risk_table_has_no_risk_marks(tmp_path):
    r = hand_backtest().run()
    assert r.risk_events == [] and r.summary["risk_refusals"] == 0
    out = r.write(tmp_path / "out")
    lines = (out / "risk_events.csv").read_text().splitlines()
    assert lines == ["ts,kind,key,instrument_id,instrument,side,price,qty,cl_id,detail"]
    assert json.loads((out / "run.json").read_text())["risk_limits"] is None
    page = (out / "report.html").read_text()
    assert 'id="risk"' not in page and "risk refusals" not in page
    assert "none (no [risk] table)" in page
    pytest.importorskip("plotly")
    figs = figures(page)
    assert figs["fig-price"]["data"]  # the charts are there
    for fig in figs.values():
        assert not [t for t in fig["data"] if t.get("name", "").startswith("refused")]
        assert not fig["layout"].get("shapes")


def test_a_risk_table_with_no_refusal_shows_the_state_and_no_marker(tmp_path):
    r, strat = risky_run(RiskConfig(max_open_orders=100))
    assert strat.states == [TradingState.ReduceOnly, TradingState.Active]
    assert r.summary["risk_refused_by"] == {"trading_state": 1}
    out = r.write(tmp_path / "out")
    page = (out / "report.html").read_text()
    assert "final state Active" in page and "max_open_orders 100" in page


def test_cli_backtest_with_a_risk_table_writes_risk_events_and_marks(tmp_path):
    toml = (REPO / "demo_strat/market_maker.toml").read_text()
    toml += '\n[risk]\nmax_order_qty = "0.005"\n'  # the demo quotes 0.010: every quote refused
    (tmp_path / "mm.toml").write_text(toml)
    out = tmp_path / "out"
    args = ["--synthetic-seconds", "20", "--out", str(out)]
    p = run_cli("backtest", str(tmp_path / "mm.toml"), *args, cwd=REPO, timeout=280)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = read(out / "risk_events.csv")
    assert summary["risk_refusals"] == len(rows) > 0
    assert dict(Counter(e["key"] for e in rows)) == summary["risk_refused_by"]
    pytest.importorskip("plotly")
    price = figures((out / "report.html").read_text())["fig-price"]
    (trace,) = [t for t in price["data"] if t["name"].startswith("refused: max_order_qty")]
    assert len(trace["x"]) == len(rows)
    assert {Decimal(e["qty"]) for e in rows} == {Decimal("0.010")}


@pytest.mark.skipif(find_chromium() is None, reason="needs Debian chromium (.ci/run)")
async def test_risk_marks_render_with_hover_in_chromium(risky, tmp_path):
    _, _, out = risky
    async with chromium_page(tmp_path / "profile") as page:
        await open_report(page, out / "report.html")
        charts = {c["id"]: c for c in json.loads(await page.evaluate(CHARTS_JS))}
        for div in ("fig-equity", "fig-price"):
            assert charts[div]["svg"] and charts[div]["drawn"] > 0, charts[div]
        assert await page.evaluate("JSON.stringify(window.__mltErrors)") == "[]"
        hover = await hover_js_text(page, "fig-price", "refused: max_order_qty")
        assert "refused: max_order_qty" in hover and "max_order_qty 1 < 1.5 SIMUSDT" in hover, hover
        assert "new Buy 1.5 SIM SIMUSDT" in hover and "price: 99.0 USDT" in hover, hover
        shaded = await page.evaluate(
            "document.querySelectorAll('#fig-price .shapelayer path, "
            "#fig-price .layer-below .shapelayer path').length"
        )
        assert shaded >= 4, shaded  # Halted, ReduceOnly, three lines
        labels = await page.evaluate(
            "[...document.querySelectorAll('#fig-equity .annotation-text')]"
            ".map(t => t.textContent).join('|')"
        )
        assert labels == "Halted|ReduceOnly|Active", labels
