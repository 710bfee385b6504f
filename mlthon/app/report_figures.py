"""The report's interactive charts (plotly): what each shows, with its units.

Each function returns a plotly ``Figure``; :mod:`mlthon.app.report_html` places them in the page
with plotly.js embedded once. Times are UTC date-times on every x axis; every y axis names its
unit (the settlement coin for money, the base coin or contracts for positions, the quote coin
for prices). Lines with more points than :data:`MAX_LINE_POINTS` are thinned to the first, last,
lowest and highest point of each bucket, so their shape (and every extreme) survives; fills are
all drawn.

Charts:

* equity and drawdown (PnL since the start, and its fall below the running peak);
* position;
* price (the first instrument's mid) with our fills, whose hover shows the order id, side,
  quantity, price, fee, liquidity and the fill report's latency, and the risk layer's refusals
  (an ``x`` per refused request, one trace per limit key; :func:`add_refusals`);
* for a market maker (most fills passive): the spread captured against the mid, cumulated;
* for a taker: the round trips' net PnL at their exit time and their holding times;
* the daily PnL when the run covers two UTC days or more.

The risk layer's trading-state changes (``risk_events.csv``, kind ``state``) are drawn on the
price and equity charts (:func:`add_state_spans`): a dotted line at each change, labelled with the
state (hover: the reason), and the time until the next change shaded, red while ``Halted``, amber
while ``ReduceOnly``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import html
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from mlthon.app import stats as st
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind
from mlthon.gateways.sim.contract import pnl

MAX_LINE_POINTS = 6000
BUY_COLOUR = "#2ca02c"
SELL_COLOUR = "#d62728"
LINE_COLOUR = "#1f77b4"
MID_COLOUR = "#7f7f7f"
#: Refusal markers drawn on the price chart at most (all of them are in ``risk_events.csv``).
MAX_REFUSAL_MARKERS = 3000
#: Trading-state changes drawn at most.
MAX_STATE_CHANGES = 200
STATE_COLOURS = {"Halted": "#d62728", "ReduceOnly": "#ff9f1c", "Active": "#2ca02c"}
REFUSAL_COLOURS = (
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#1f77b4",
    "#000000",
)


def _go() -> Any:
    import plotly.graph_objects as go  # type: ignore[import-untyped,import-not-found]

    return go


def _subplots(**kw: Any) -> Any:
    from plotly.subplots import make_subplots  # type: ignore[import-untyped,import-not-found]

    return make_subplots(**kw)


def iso(ts: int) -> str:
    """``ts`` (ns) as the UTC date-time plotly reads: ``2024-08-08 23:54:15.030314``."""
    whole, frac = divmod(ts, st.NS_PER_S)
    return (
        dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        + f".{frac // 1000:06d}"
    )


def qty_unit(inst: Instrument | None) -> str:
    """The unit of a quantity: contracts for inverse (and multiplied linear) contracts, the base
    coin otherwise."""
    if inst is None:
        return "qty"
    if inst.kind is InstrumentKind.Inverse or inst.contract_multiplier != 1:
        return "contracts"
    return inst.base


def thin(xs: Sequence[int], ys: Sequence[float], limit: int = MAX_LINE_POINTS) -> list[int]:
    """Indexes to draw of a line of ``len(xs)`` points: all of them up to ``limit``, else the
    first, last, lowest and highest of each of ``limit / 4`` buckets, in order."""
    n = len(xs)
    if n <= limit:
        return list(range(n))
    buckets = max(1, limit // 4)
    keep = {0, n - 1}
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        part = range(lo, hi)
        keep.update((lo, hi - 1, min(part, key=ys.__getitem__), max(part, key=ys.__getitem__)))
    return sorted(keep)


def _layout(fig: Any, *, height: int, title: str) -> Any:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        hoverlabel={"namelength": -1},
    )
    fig.update_xaxes(title_text="time (UTC)", type="date", showspikes=True, spikemode="across")
    return fig


@attrs.frozen
class StateSpan:
    """The trading state from one change to the next (or to the end of the run)."""

    start_ns: int
    end_ns: int
    state: str
    reason: str


def state_spans(events: Sequence[dict[str, str]], end_ns: int) -> list[StateSpan]:
    """The trading states of the risk events' ``state`` rows (in time order), each until the
    next change, the last one until ``end_ns``."""
    changes = [e for e in events if e["kind"] == "state"]
    out = []
    for i, e in enumerate(changes):
        start = int(e["ts"])
        end = int(changes[i + 1]["ts"]) if i + 1 < len(changes) else max(end_ns, start)
        out.append(StateSpan(start, end, e["key"], e["detail"]))
    return out


def _wrap(text: str, width: int = 90) -> str:
    """``text`` escaped for a hover box, broken into lines of about ``width`` characters."""
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width) or [""])


def add_state_spans(fig: Any, spans: Sequence[StateSpan], *, rows: int = 1) -> int:
    """Draw the trading-state changes on ``fig`` (every one of its ``rows`` subplots, one
    column): a dotted line at each change, its label at the top (hover: when and why), and the
    span until the next change shaded (``Halted`` red, ``ReduceOnly`` amber). At most
    :data:`MAX_STATE_CHANGES` are drawn; returns how many were left out."""
    # Built as plain dicts and set once: plotly's add_vrect / add_vline copy the whole layout
    # at each call (minutes for a few hundred changes).
    axes = [("x", "y domain")] + [(f"x{k}", f"y{k} domain") for k in range(2, rows + 1)]
    shapes: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for span in spans[:MAX_STATE_CHANGES]:
        colour = STATE_COLOURS.get(span.state, MID_COLOUR)
        x0 = iso(span.start_ns)
        for xref, yref in axes:
            if span.state != "Active" and span.end_ns > span.start_ns:
                shapes.append(
                    {
                        "type": "rect",
                        "name": f"risk: {span.state}",
                        "xref": xref,
                        "yref": yref,
                        "x0": x0,
                        "x1": iso(span.end_ns),
                        "y0": 0,
                        "y1": 1,
                        "fillcolor": colour,
                        "opacity": 0.14,
                        "line": {"width": 0},
                        "layer": "below",
                    }
                )
            shapes.append(
                {
                    "type": "line",
                    "name": f"risk state: {span.state}",
                    "xref": xref,
                    "yref": yref,
                    "x0": x0,
                    "x1": x0,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": colour, "width": 1.2, "dash": "dot"},
                }
            )
        labels.append(
            {
                "name": f"risk state: {span.state}",
                "x": x0,
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "yanchor": "top",
                "xanchor": "left",
                "text": html.escape(span.state),
                "showarrow": False,
                "font": {"size": 10, "color": colour},
                "bgcolor": "rgba(255,255,255,0.75)",
                "hovertext": (
                    f"{x0} UTC<br>trading state {html.escape(span.state)}<br>{_wrap(span.reason)}"
                ),
            }
        )
    fig.update_layout(
        shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *labels]
    )
    return max(0, len(spans) - MAX_STATE_CHANGES)


def refusal_budget(counts: dict[str, int], total: int = MAX_REFUSAL_MARKERS) -> dict[str, int]:
    """How many refusals of each limit key to draw, ``total`` at most in all: the keys with few
    refusals get them all, the rest share what is left evenly."""
    out: dict[str, int] = {}
    left = total
    keys = sorted(counts, key=lambda k: (counts[k], k))
    for i, key in enumerate(keys):
        share = max(1, left // (len(keys) - i))
        out[key] = min(counts[key], share)
        left = max(0, left - out[key])
    return out


def _evenly(n: int, k: int) -> list[int]:
    """``k`` indexes of ``range(n)`` spread evenly, the first and last among them."""
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


REFUSAL_HOVER = (
    "<b>refused: %{customdata[0]}</b><br>"
    "%{x} UTC<br>"
    "%{customdata[1]}<br>"
    "price: %{customdata[2]}<br>"
    "order id: %{customdata[3]}<br>"
    "%{customdata[4]}"
    "<extra></extra>"
)


def add_refusals(
    fig: Any,
    refusals: Sequence[dict[str, str]],
    mids: Sequence[tuple[int, Decimal]],
    *,
    quote: str,
    unit: str,
    floor: float,
) -> int:
    """Mark refused requests (rows of ``risk_events.csv``) on a price chart: an ``x`` at the
    request's price, one trace per limit key (``refused: max_position (12)``). A request without
    a price (a market order, a cancel, a modify of the quantity alone) is drawn at the mid of
    its time (the last one of ``mids`` at or before it, else the first after), or at ``floor``
    (the bottom of the chart) when there is no mid. At most :data:`MAX_REFUSAL_MARKERS` are drawn
    (:func:`refusal_budget`, spread evenly over each key's refusals); returns how many were left
    out."""
    go = _go()
    mid_ts = [t for t, _ in mids]
    by_key: dict[str, list[dict[str, str]]] = {}
    for r in refusals:
        by_key.setdefault(r["key"], []).append(r)
    budget = refusal_budget({k: len(v) for k, v in by_key.items()})
    omitted = 0
    for n_key, key in enumerate(sorted(by_key)):
        rows = by_key[key]
        keep = [rows[i] for i in _evenly(len(rows), budget[key])]
        omitted += len(rows) - len(keep)
        xs, ys, data = [], [], []
        for r in keep:
            ts = int(r["ts"])
            if r["price"]:
                y = float(r["price"])
                price = f"{r['price']} {quote}"
            else:
                what = "market" if r["kind"] == "new" else "none"
                i = bisect.bisect_right(mid_ts, ts) - 1
                if mids:
                    _, mid = mids[max(i, 0)]
                    y = float(mid)
                    price = f"{what} (drawn at the mid {mid} {quote})"
                else:
                    y = floor
                    price = f"{what} (no mid: drawn at the chart's foot)"
            request = " ".join(
                x
                for x in (
                    r["kind"],
                    r["side"],
                    f"{r['qty']} {unit}" if r["qty"] else "",
                    r["instrument"] or "(instrument not known)",
                )
                if x
            )
            xs.append(iso(ts))
            ys.append(y)
            data.append([key, request, price, r["cl_id"] or "n/a", _wrap(r["detail"])])
        drawn = (
            f"{len(keep):,} of {len(rows):,} drawn" if len(keep) < len(rows) else f"{len(rows):,}"
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=f"refused: {key} ({drawn})",
                marker={
                    "symbol": "x",
                    "size": 9,
                    "color": REFUSAL_COLOURS[n_key % len(REFUSAL_COLOURS)],
                    "line": {"width": 0.5, "color": "#222"},
                },
                customdata=data,
                hovertemplate=REFUSAL_HOVER,
            )
        )
    return omitted


def equity_figure(
    curve: Sequence[tuple[int, Decimal]], coin: str, *, states: Sequence[StateSpan] = ()
) -> Any:
    """Equity (PnL since the start) and drawdown, on one zoomable time axis; the risk layer's
    trading states (``states``) over both."""
    go = _go()
    ts = [t for t, _ in curve]
    eq = [float(e) for _, e in curve]
    dd: list[float] = []
    peak = float("-inf")
    for e in eq:
        peak = max(peak, e)
        dd.append(e - peak)
    keep = sorted(set(thin(ts, eq)) | set(thin(ts, dd)))
    xs = [iso(ts[i]) for i in keep]
    fig = _subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[eq[i] for i in keep],
            mode="lines",
            name="equity",
            line={"color": LINE_COLOUR, "width": 1.5},
            hovertemplate=f"%{{x}}<br>equity %{{y:.6~f}} {coin}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[dd[i] for i in keep],
            mode="lines",
            name="drawdown",
            fill="tozeroy",
            line={"color": SELL_COLOUR, "width": 1},
            hovertemplate=f"%{{x}}<br>drawdown %{{y:.6~f}} {coin}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    _layout(fig, height=480, title=f"Equity and drawdown ({coin})")
    fig.update_xaxes(title_text="", row=1, col=1)
    fig.update_yaxes(title_text=f"equity ({coin})", row=1, col=1)
    fig.update_yaxes(title_text=f"drawdown ({coin})", row=2, col=1)
    if states:
        add_state_spans(fig, states, rows=2)
    return fig


def position_figure(curve: Sequence[tuple[int, Decimal]], unit: str, name: str) -> Any:
    """The position of the first instrument over time (a step line)."""
    go = _go()
    ts = [t for t, _ in curve]
    pos = [float(p) for _, p in curve]
    keep = thin(ts, pos)
    fig = go.Figure(
        go.Scatter(
            x=[iso(ts[i]) for i in keep],
            y=[pos[i] for i in keep],
            mode="lines",
            line={"shape": "hv", "color": BUY_COLOUR, "width": 1.5},
            name="position",
            hovertemplate=f"%{{x}}<br>position %{{y}} {unit}<extra></extra>",
        )
    )
    _layout(fig, height=300, title=f"Position in {name} ({unit})")
    fig.update_yaxes(title_text=f"position ({unit})", zeroline=True, zerolinecolor="#444")
    return fig


FILL_HOVER = (
    "<b>%{customdata[1]} %{customdata[2]} @ %{customdata[3]}</b><br>"
    "%{x} UTC<br>"
    "order id: %{customdata[0]}<br>"
    "fee: %{customdata[4]}<br>"
    "liquidity: %{customdata[5]}<br>"
    "latency (fill to report): %{customdata[6]}<br>"
    "mid at fill: %{customdata[7]}"
    "<extra></extra>"
)


def price_figure(
    mids: Sequence[tuple[int, Decimal]],
    fills: Sequence[dict[str, str]],
    inst: Instrument | None,
    coin: str,
    *,
    refusals: Sequence[dict[str, str]] = (),
    states: Sequence[StateSpan] = (),
) -> Any:
    """The first instrument's mid with our buys and sells (hover: the fill's details), the
    risk layer's refusals of orders on it (:func:`add_refusals`) and its trading states
    (:func:`add_state_spans`)."""
    go = _go()
    quote = inst.quote if inst is not None else "price"
    unit = qty_unit(inst)
    ts = [t for t, _ in mids]
    ys = [float(p) for _, p in mids]
    keep = thin(ts, ys)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[iso(ts[i]) for i in keep],
            y=[ys[i] for i in keep],
            mode="lines",
            name="mid",
            line={"color": MID_COLOUR, "width": 1},
            hovertemplate=f"%{{x}}<br>mid %{{y}} {quote}<extra></extra>",
        )
    )
    for side, symbol, colour in (
        ("Buy", "triangle-up", BUY_COLOUR),
        ("Sell", "triangle-down", SELL_COLOUR),
    ):
        mine = [f for f in fills if f["side"] == side]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[iso(int(f["ts"])) for f in mine],
                y=[float(f["price"]) for f in mine],
                mode="markers",
                name=f"our {side.lower()}s ({len(mine)})",
                marker={
                    "symbol": symbol,
                    "size": 9,
                    "color": colour,
                    "line": {"width": 0.5, "color": "#222"},
                },
                customdata=[
                    [
                        f["cl_id"],
                        side,
                        f"{f['qty']} {unit}",
                        f"{f['price']} {quote}",
                        f"{f['fee']} {coin}",
                        "maker" if f["maker"] == "true" else "taker",
                        st.duration_text(int(f.get("recv_ts") or f["ts"]) - int(f["ts"])),
                        f"{f['mid']} {quote}" if f["mid"] else "n/a",
                    ]
                    for f in mine
                ],
                hovertemplate=FILL_HOVER,
            )
        )
    if refusals:
        drawn = (
            ys
            + [float(f["price"]) for f in fills]
            + [float(r["price"]) for r in refusals if r["price"]]
        )
        add_refusals(fig, refusals, mids, quote=quote, unit=unit, floor=min(drawn, default=0.0))
    if states:
        add_state_spans(fig, states)
    name = inst.name if inst is not None else ""
    what = "our fills and risk refusals" if refusals else "our fills"
    _layout(fig, height=440, title=f"{name} mid price with {what} ({quote})")
    fig.update_yaxes(title_text=f"price ({quote})")
    fig.update_layout(hovermode="closest")
    return fig


def spread_figure(
    fills: Sequence[dict[str, str]], instruments: dict[int, Instrument], coin: str
) -> Any:
    """A market maker's panel: the spread captured against the mid at each fill, cumulated,
    beside the maker and taker fills' counts."""
    go = _go()
    xs: list[str] = []
    ys: list[float] = []
    total = Decimal(0)
    for f in fills:
        inst = instruments.get(int(f["instrument_id"]))
        if not f["mid"] or inst is None:
            continue
        buy = f["side"] == "Buy"
        total += pnl(inst, buy, Decimal(f["qty"]), Decimal(f["price"]), Decimal(f["mid"]))
        xs.append(iso(int(f["ts"])))
        ys.append(float(total))
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": "#9467bd", "width": 1.5, "shape": "hv"},
            name="spread captured",
            hovertemplate=f"%{{x}}<br>spread captured so far %{{y:.6~f}} {coin}<extra></extra>",
        )
    )
    _layout(fig, height=320, title=f"Spread captured against the mid at each fill ({coin})")
    fig.update_yaxes(title_text=f"cumulative spread captured ({coin})")
    return fig


ROUND_TRIP_HOVER = (
    "<b>%{customdata[0]} %{customdata[1]}</b><br>"
    "entry %{customdata[2]} @ %{customdata[3]}<br>"
    "exit %{x} UTC @ %{customdata[4]}<br>"
    "held %{customdata[5]}<br>"
    "gross %{customdata[6]}, fees %{customdata[7]}<br>"
    "net %{y:.6~f} %{customdata[8]}<br>"
    "orders %{customdata[9]} -> %{customdata[10]}"
    "<extra></extra>"
)


def round_trip_figure(trips: Sequence[st.RoundTrip], coin: str) -> Any:
    """A taker's panel: each round trip's net PnL at its exit time (wins green, losses red),
    and a histogram of the holding times."""
    go = _go()
    fig = _subplots(
        rows=1,
        cols=2,
        column_widths=[0.65, 0.35],
        horizontal_spacing=0.1,
    )
    for won, colour, label in ((True, BUY_COLOUR, "wins"), (False, SELL_COLOUR, "losses")):
        mine = [t for t in trips if (t.net > 0) == won]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[iso(t.exit_ts) for t in mine],
                y=[float(t.net) for t in mine],
                mode="markers",
                name=f"{label} ({len(mine)})",
                marker={"color": colour, "size": 8, "line": {"width": 0.5, "color": "#222"}},
                customdata=[
                    [
                        "long" if t.long else "short",
                        str(t.qty),
                        iso(t.entry_ts),
                        str(t.entry_price),
                        st.money(t.exit_price),
                        st.duration_text(t.holding_ns),
                        st.money(t.gross),
                        st.money(t.fees),
                        coin,
                        t.entry_cl_id,
                        " ".join(t.exit_cl_ids),
                    ]
                    for t in mine
                ],
                hovertemplate=ROUND_TRIP_HOVER,
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Histogram(
            x=[t.holding_ns / st.NS_PER_S for t in trips],
            name="holding time",
            marker={"color": LINE_COLOUR},
            hovertemplate="held %{x} s<br>%{y} round trips<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    _layout(
        fig,
        height=380,
        title=f"Round trips ({len(trips)}, FIFO): net PnL at exit, and holding times",
    )
    fig.update_xaxes(title_text="holding time (s)", type="linear", showspikes=False, row=1, col=2)
    fig.update_yaxes(title_text=f"net PnL ({coin})", row=1, col=1)
    fig.update_yaxes(title_text="round trips", row=1, col=2)
    fig.update_layout(hovermode="closest")
    return fig


def daily_figure(days: Sequence[st.Day], coin: str) -> Any:
    """The PnL of each UTC day."""
    go = _go()
    fig = go.Figure(
        go.Bar(
            x=[d.day for d in days],
            y=[float(d.pnl) for d in days],
            marker={"color": [BUY_COLOUR if d.pnl >= 0 else SELL_COLOUR for d in days]},
            customdata=[[d.fills, st.money(d.fees)] for d in days],
            hovertemplate=(
                f"%{{x}}<br>PnL %{{y:.6~f}} {coin}<br>%{{customdata[0]}} fills, "
                f"fees %{{customdata[1]}} {coin}<extra></extra>"
            ),
            name="daily PnL",
        )
    )
    _layout(fig, height=300, title=f"PnL per UTC day ({coin})")
    fig.update_xaxes(title_text="day (UTC)", type="category")
    fig.update_yaxes(title_text=f"PnL ({coin})")
    return fig
