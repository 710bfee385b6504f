"""ActivityLog and the page view: orders, fills and PnL over time from the bus, as people read
them (formatted decimals, UTC date-times, a sparkline)."""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    GtwRejectCode,
    InstrumentKind,
    OrderType,
    Side,
)
from mlthon.infra.bus import messages as m
from mlthon.infra.clock import NS_PER_S
from mlthon.infra.ops.activity import ActivityLog
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.figures import PRICE_DIGITS, exact, fig, plain, utc
from mlthon.infra.ops.heartbeat import Heartbeat, Stats
from mlthon.infra.ops.pageview import SPARK_POINTS, page_view, sparkline
from mlthon.infra.ops.positions import portfolio_wire
from mlthon.infra.portfolio import Portfolio
from tests.unit.ops.conftest import T0

UTC_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def _ack(cl_id: str, price: str = "100.10", qty: str = "0.004") -> m.NewOrderAck:
    return m.NewOrderAck(
        cl_id=cl_id,
        exch_id="x" + cl_id,
        instrument_id=9001,
        side=Side.Buy,
        price=price,
        qty=qty,
        leaves_qty=qty,
        ord_type=OrderType.Limit,
        tif=TIF.GTC,
        exec_instr=ExecInstructions.Unset,
        ts=T0,
    )


def _fill(cl_id: str, exec_id: str, qty: str, leaves: str) -> m.OrderExecution:
    return m.OrderExecution(
        cl_id=cl_id,
        exec_id=exec_id,
        instrument_id=9001,
        side=Side.Buy,
        price="100.10",
        fill_qty=qty,
        leaves_qty=leaves,
        exec_ts=T0 + NS_PER_S,
        fee="-0.000020020000000000",
        fee_coin="USDT",
        maker=True,
        ts=T0 + NS_PER_S,
    )


def test_figures_noisy_decimal_plain_without_exponent_or_zeros():
    assert fig("-0.000699700000000000000000000000") == "-0.0006997"
    assert fig("1234567.891") == "1234568"  # PnL: 6 significant digits, integers kept
    assert fig("100.33333333333333333333333333", PRICE_DIGITS) == "100.3333333"
    assert fig("1E+2") == "100" and fig("0E-28") == "0"
    assert exact("0.0040") == "0.004"
    assert fig("1e30") == "1" + "0" * 30
    assert fig(None) == "-" and fig("n/a") == "n/a"
    assert plain(Decimal("-0.000699700000000000000000000000")) == "-0.0006997"


def test_figures_utc_nanoseconds_iso_date_time_with_zone():
    assert utc(1_796_710_288 * NS_PER_S + 5) == "2026-12-08 06:11:28 UTC"
    assert utc(0) == "-"


def test_portfolio_wire_trailing_zeros_plain_text():
    inst = Instrument(
        9001, "SIMUSDT", Exchange.Sim, "SIM", "USDT", InstrumentKind.Linear, "0.01", "0.001"
    )
    p = Portfolio(lambda _ex, _iid: inst, lambda _ex, _iid: None, {}, lambda: 0)
    for i in range(3):
        fill = msgspec.structs.replace(_fill(str(i), f"e{i}", "1", "0"), price="100", fee="0.000")
        p.on_report(Exchange.Sim, fill)
    wire = portfolio_wire(p)["positions"]["Sim:9001"]
    # before: str() kept the inputs' trailing zeros (fees "0.000")
    assert wire["avg_price"] == "100" and wire["fees"] == "0" and wire["qty"] == "3"


def test_activity_reports_on_bus_latest_orders_and_fills_per_strategy(sim):
    log = ActivityLog(sim.bus, sim.topics, sim.sched, keep_orders=2)
    log.start()
    rpt = sim.topics.gtw_rpt(Exchange.Sim, "mm")
    for msg in (
        _ack("1"),
        _ack("2"),
        m.ModifyOrderAck(cl_id="2", new_price="100.20", new_qty="0.004", leaves_qty="0.004"),
        _fill("2", "e1", "0.001", "0.003"),
        _fill("2", "e1", "0.001", "0.003"),  # redelivered: one fill
        m.NewOrderReject(cl_id="3", code=GtwRejectCode.InsufficientBalance, reason="no money"),
        m.OrderCancelled(cl_id="1", unsolicited=False, engine_ts=T0, cancel_code=CancelCode.Unset),
    ):
        sim.bus.publish(rpt, msg, qos=1)
    sim.bus.publish(sim.topics.gtw_rpt(Exchange.Sim, "other"), _ack("9"), qos=1)
    sim.run_for(0.1)
    out = log.to_json()
    assert set(out) == {"mm", "other"}
    orders = out["mm"]["orders"]
    # newest first; at most 2 kept, so order 1 (acked first) was dropped
    assert [(o["cl_id"], o["status"]) for o in orders] == [
        ("3", "rejected"),
        ("2", "partly filled"),
    ]
    assert orders[0]["detail"] == "no money"
    assert orders[1]["price"] == "100.20" and orders[1]["leaves_qty"] == "0.003"
    assert [f["exec_id"] for f in out["mm"]["fills"]] == ["e1"]
    assert out["other"]["orders"][0]["cl_id"] == "9"


def test_activity_strategy_heartbeats_pnl_series_sampled_once_each(sim):
    log = ActivityLog(sim.bus, sim.topics, sim.sched)
    log.start()
    pnl = {"v": "0"}
    hb = Heartbeat(
        sim.bus,
        sim.sched,
        sim.topics,
        name="mm",
        kind="strategy",
        interval_s=1.0,
        stats=lambda: Stats(extra={"strategy": {"pnl": pnl["v"]}}),
    )
    hb.start()
    for v in ("1.5", "-0.000699700000000000000000000000", "2"):
        sim.run_for(1.0)
        pnl["v"] = v
    sim.run_for(1.0)
    series = log.to_json()["mm"]["pnl"]
    values = [Decimal(v) for _, v in series]
    assert values[0] == 0 and values[-1] == 2 and Decimal("-0.0006997") in values
    assert [ts for ts, _ in series] == sorted({ts for ts, _ in series})


def test_sparkline_long_series_thinned_with_zero_line_and_title():
    pts = [(T0 + i * NS_PER_S, Decimal(i % 7) - 3) for i in range(1000)]
    svg = sparkline(pts)
    coords = re.search(r'points="([^"]+)"', svg)
    assert coords is not None and len(coords.group(1).split()) == SPARK_POINTS
    assert 'class="zero"' in svg and "UTC" in svg and svg.startswith("<svg")
    assert sparkline([]) == ""
    assert "polyline" in sparkline([(T0, Decimal(1))])


def test_page_view_raw_snapshot_figures_and_times_as_text(sim):
    board = StatusBoard(sim.bus, sim.sched, sim.topics)
    board.start()
    log = ActivityLog(sim.bus, sim.topics, sim.sched)
    log.start()
    extra = {
        "strategy": {
            "state": "running",
            "open_orders": 1,
            "risk_state": "Halted",
            "risk_reason": "max_drawdown 5 < 6",
            "pnl": "-0.000699700000000000000000000000",
            "positions": {
                "Sim:9001": {
                    "qty": "0.0010",
                    "avg_price": "100.3333333333333333333333333",
                    "realized": "0E-28",
                    "unrealized": "-0.000699700000000000000000000000",
                    "fees": "0.00002002",
                }
            },
        }
    }
    Heartbeat(
        sim.bus, sim.sched, sim.topics, name="mm", kind="strategy", stats=lambda: Stats(extra=extra)
    ).start()
    sim.bus.publish(sim.topics.gtw_rpt(Exchange.Sim, "mm"), _ack("1"), qos=1)
    sim.bus.publish(
        sim.topics.gtw_rpt(Exchange.Sim, "mm"), _fill("1", "e1", "0.0010", "0.0030"), qos=1
    )
    sim.run_for(0.1)
    view = page_view(board.snapshot(), log.to_json())
    (s,) = view["strategies"]
    assert s["pnl"] == "-0.0006997"
    assert (s["risk_state"], s["risk_reason"]) == ("Halted", "max_drawdown 5 < 6")
    assert s["positions"] == [
        {
            "instrument": "Sim:9001",
            "qty": "0.001",
            "avg_price": "100.3333333",
            "realized": "0",
            "unrealized": "-0.0006997",
            "fees": "0.00002002",
        }
    ]
    assert s["orders"][0]["price"] == "100.1" and s["orders"][0]["status"] == "partly filled"
    fill = s["fills"][0]
    assert (fill["qty"], fill["fee"], fill["liquidity"]) == ("0.001", "-0.00002002 USDT", "maker")
    assert UTC_RE.match(fill["time"]) and UTC_RE.match(view["updated"])
    assert UTC_RE.match(view["components"][0]["since"])
    assert all(UTC_RE.match(t["time"]) for t in view["transitions"])
    assert "<svg" in s["pnl_chart"]
