"""The report's risk marks: refusal markers bounded (few keys drawn whole, the rest thinned
evenly, the omitted counted), requests without a price placed at the mid or the chart's foot,
trading-state spans from one change to the next."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlthon.app import report_figures as rf
from mlthon.app.report_html import risk_marks

S = 1_000_000_000
T0 = 1_700_000_000 * S


def refusal(ts: int, key: str, price: str = "", kind: str = "new", iid: str = "9001") -> dict:
    return {
        "ts": str(ts),
        "kind": kind,
        "key": key,
        "instrument_id": iid,
        "instrument": "SIMUSDT" if iid else "",
        "side": "Buy" if kind != "cancel" else "",
        "price": price,
        "qty": "1" if kind != "cancel" else "",
        "cl_id": "7",
        "detail": f"{key} 1 < 2 SIMUSDT",
    }


def state(ts: int, name: str, why: str = "operator: x") -> dict:
    return {**refusal(ts, name, kind="state", iid=""), "detail": why, "side": "", "qty": ""}


def test_budget_gives_small_keys_all_and_shares_the_rest():
    assert rf.refusal_budget({"a": 10, "b": 5}) == {"a": 10, "b": 5}
    got = rf.refusal_budget({"few": 10, "many": 9_990, "more": 50_000}, total=3000)
    assert got["few"] == 10 and got["many"] + got["more"] == 2990
    assert got["many"] == 1495
    assert sum(rf.refusal_budget({str(k): 1000 for k in range(20)}, total=3000).values()) == 3000


def test_many_refusals_are_thinned_evenly_and_counted():
    go = pytest.importorskip("plotly.graph_objects")
    rows = [refusal(T0 + i * S, "max_order_rate", "100.5") for i in range(9_990)]
    rows += [refusal(T0 + i * S, "max_position", "99.5") for i in range(10)]
    fig = go.Figure()
    omitted = rf.add_refusals(fig, rows, [], quote="USDT", unit="SIM", floor=0.0)
    names = {t.name: len(t.x) for t in fig.data}
    assert names == {
        "refused: max_order_rate (2,990 of 9,990 drawn)": 2990,
        "refused: max_position (10)": 10,
    }
    assert omitted == 9_990 - 2_990
    rate = next(t for t in fig.data if t.name.startswith("refused: max_order_rate"))
    assert rate.x[0] == rf.iso(T0) and rate.x[-1] == rf.iso(T0 + 9_989 * S)  # both ends kept
    marks = risk_marks(rows, None, T0)
    assert marks.omitted == omitted and marks.elsewhere == 0


def test_refusals_without_a_price_go_to_the_mid_of_their_time_or_the_foot():
    go = pytest.importorskip("plotly.graph_objects")
    mids = [(T0 + 10 * S, Decimal("100.1")), (T0 + 20 * S, Decimal("100.3"))]
    rows = [
        refusal(T0 + 5 * S, "max_order_notional"),  # before the first mid: the first one
        refusal(T0 + 15 * S, "max_order_notional"),
        refusal(T0 + 25 * S, "max_cancel_rate", kind="cancel", iid=""),
    ]
    fig = go.Figure()
    rf.add_refusals(fig, rows, mids, quote="USDT", unit="SIM", floor=0.0)
    ys = {t.name: list(t.y) for t in fig.data}
    assert ys == {
        "refused: max_cancel_rate (1)": [100.3],
        "refused: max_order_notional (2)": [100.1, 100.1],
    }
    cancel = next(t for t in fig.data if "cancel" in t.name)
    assert cancel.customdata[0][1] == "cancel (instrument not known)"
    assert cancel.customdata[0][2] == "none (drawn at the mid 100.3 USDT)"
    bare = go.Figure()
    rf.add_refusals(bare, rows[:1], [], quote="USDT", unit="SIM", floor=98.5)
    assert list(bare.data[0].y) == [98.5]
    assert "market (no mid" in bare.data[0].customdata[0][2]


def test_state_spans_run_to_the_next_change_and_the_last_to_the_end():
    rows = [
        refusal(T0, "max_position", "1"),
        state(T0 + S, "Halted", "max_daily_loss 1 < 2"),
        state(T0 + 5 * S, "Active"),
    ]
    spans = rf.state_spans(rows, T0 + 9 * S)
    assert spans == [
        rf.StateSpan(T0 + S, T0 + 5 * S, "Halted", "max_daily_loss 1 < 2"),
        rf.StateSpan(T0 + 5 * S, T0 + 9 * S, "Active", "operator: x"),
    ]
    go = pytest.importorskip("plotly.graph_objects")
    fig = go.Figure(go.Scatter(x=[rf.iso(T0)], y=[1]))
    many = [rf.StateSpan(T0 + i, T0 + i + 1, "Halted", "x") for i in range(250)]
    assert rf.add_state_spans(fig, many) == 50
    assert sum(1 for sh in fig.layout.shapes if sh.name == "risk: Halted") == 200
    assert "&lt;" in rf._wrap("a < b")
