"""The report page: one self-contained HTML file (plotly.js embedded once: it opens offline).

Top to bottom: what ran (strategy, parameters, data and window in UTC, seeds, the simulated
exchange's latency, queue and fee models, the account, the risk limits, the mlthon version), the
key figures, the charts of :mod:`mlthon.app.report_figures`, the statistics of
:mod:`mlthon.app.stats` with their units, and the first rows of the round trips, fills, order
events and, with a risk layer, its refusals and trading-state changes (times as UTC date-times).
Without plotly the page keeps everything but the charts and says how to get them.

The page depends only on the inputs (no time stamp, fixed element ids), so the same backtest
writes the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from mlthon.app import report_figures as rf
from mlthon.app import stats as st
from mlthon.app.run_info import RunInfo, instrument_text, utc_text
from mlthon.app.tables import ResultTables, daily_rows, round_trip_rows

TABLE_ROWS = 500
"""Rows of each long table shown in the page (the files have them all)."""

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": True}

REPORT_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:1.2rem 1.5rem 3rem}
h1{font-size:1.45rem;margin:.2rem 0}h2{font-size:1.15rem;margin:2rem 0 .6rem;
border-bottom:1px solid #ddd;padding-bottom:.3rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.sub{color:#555;margin:.2rem 0 1rem}
table{border-collapse:collapse;margin:.4rem 0;font-size:.86rem;background:#fff}
td,th{border:1px solid #e2e2e2;padding:.25rem .55rem;vertical-align:top}
th{background:#f3f3f3;text-align:left;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
table.run{width:100%}table.run th{width:11rem}table.run td{text-align:left;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(205px,1fr));gap:.6rem}
.card{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:.55rem .75rem}
.card .k{color:#666;font-size:.78rem}.card .v{font-size:1.15rem;font-weight:600;
font-variant-numeric:tabular-nums}.card .d{color:#777;font-size:.75rem}
.pos{color:#1a7f37}.neg{color:#c62828}.na{color:#888;font-weight:400}
.chart{background:#fff;border:1px solid #e2e2e2;border-radius:6px;margin:.6rem 0;padding:.2rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(500px,1fr));gap:.2rem 1.6rem}
.grid table{width:100%}.grid th{width:48%}
.scroll{max-height:420px;overflow:auto;border:1px solid #e2e2e2}
.scroll table{margin:0}.note{color:#666;font-size:.85rem}
code{background:#f0f0f0;padding:0 .25rem;border-radius:3px}
"""


def esc(x: object) -> str:
    """HTML-escaped text of ``x``."""
    return html.escape(str(x))


def na(x: object, text: str | None = None) -> str:
    """``text`` (or ``x``), or a grey n/a for None."""
    if x is None:
        return '<span class="na">n/a</span>'
    return esc(text if text is not None else x)


def amount(d: Decimal | None, coin: str, *, colour: bool = True) -> str:
    """``-12.5 USDT``: a gain green and a loss red (``colour``: for PnL, not for costs)."""
    if d is None:
        return na(None)
    cls = ("pos" if d > 0 else "neg" if d < 0 else "") if colour else ""
    return f'<span class="{cls}">{esc(st.money(d))} {esc(coin)}</span>'


def fixed(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits and never an exponent: ``0.00003911``."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{places}f}"


def pct(x: float | None, digits: int = 4) -> str:
    """A fraction as a percentage: ``0.0123`` -> ``1.23 %``."""
    if x is None:
        return na(None)
    return esc(f"{fixed(100 * x, digits)} %")


def num(x: float | None, digits: int = 4) -> str:
    """A ratio with ``digits`` significant digits."""
    return na(x, None if x is None else fixed(x, digits))


def seconds(s: float | None) -> str:
    """A duration given in seconds."""
    return na(s, None if s is None else st.duration_text(round(s * st.NS_PER_S)))


def ns_duration(ns: int | float | None) -> str:
    """A duration given in ns."""
    return na(ns, None if ns is None else st.duration_text(round(ns)))


def _kv_table(rows: Iterable[tuple[str, str]], cls: str = "") -> str:
    body = "".join(f'<tr><th>{esc(k)}</th><td class="n">{v}</td></tr>' for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _run_rows(run: RunInfo | None, summary: dict[str, Any]) -> list[tuple[str, str]]:
    if run is None:
        return [
            ("strategy", esc(summary.get("strategy", ""))),
            ("instruments", esc(", ".join(summary.get("instruments", [])))),
            (
                "window",
                esc(f"{utc_text(summary.get('start_ns'))} to {utc_text(summary.get('end_ns'))}"),
            ),
            ("note", "this result carries no record of its inputs"),
        ]
    params = ", ".join(f"{k} = {v!r}" for k, v in sorted(run.params.items())) or "(none)"
    span = st.duration_text(run.end_ns - run.start_ns)
    asked = ""
    if run.requested_start_ns is not None or run.requested_end_ns is not None:
        asked = (
            f"<br>asked for: {esc(utc_text(run.requested_start_ns) or 'start')} to "
            f"{esc(utc_text(run.requested_end_ns) or 'end')}"
        )
    return [
        ("strategy", f"{esc(run.strategy)} ({esc(run.strategy_class)})"),
        ("parameters", esc(params)),
        ("start parameters", esc(run.start_params or "(none)")),
        ("instruments", "<br>".join(esc(instrument_text(i)) for i in run.instruments)),
        ("data", "<br>".join(esc(d) for d in run.data)),
        (
            "window (UTC)",
            f"{esc(utc_text(run.start_ns))} to {esc(utc_text(run.end_ns))} ({esc(span)}){asked}",
        ),
        ("seeds", esc(", ".join(f"{k} {v}" for k, v in run.seeds.items()))),
        ("latency model", esc(run.latency_model)),
        ("queue model", esc(run.queue_model)),
        ("fee model", "<br>".join(esc(f) for f in run.fee_model)),
        (
            "account",
            esc(", ".join(f"{c} {v}" for c, v in sorted(run.balances.items())) or "(empty)")
            + esc(f"; leverage {run.leverage}"),
        ),
        (
            "returns measured on",
            esc(f"{run.capital} {run.settle_coin}; equity sampled every {run.sample_every_s:g} s"),
        ),
        ("daily callbacks", esc(f"time zone {run.timezone}")),
        (
            "risk limits",
            "<br>".join(esc(t) for t in run.risk_limits)
            if run.risk_limits is not None
            else "none (no [risk] table)",
        ),
        ("mlthon", esc(run.mlthon_version)),
    ]


def _card(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{detail}</div>' if detail else ""
    return f'<div class="card"><div class="k">{esc(key)}</div><div class="v">{value}</div>{d}</div>'


def has_risk(summary: dict[str, Any], tables: ResultTables, run: RunInfo | None) -> bool:
    """Whether the run had a risk layer (its run record says; a result without one: any risk
    event or refusal)."""
    if run is not None:
        return run.risk_limits is not None
    return bool(tables.text_rows("risk_events") or summary.get("risk_refusals"))


def refused_by_text(summary: dict[str, Any]) -> str:
    """``max_position 12, trading_state 3`` (most first), or ``none``."""
    by = summary.get("risk_refused_by") or {}
    ranked = sorted(by.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    return ", ".join(f"{k} {int(n):,}" for k, n in ranked) or "none"


def _risk_card(summary: dict[str, Any]) -> str:
    state = str(summary.get("risk_state", "Active"))
    cls = {"Halted": "neg", "ReduceOnly": "neg"}.get(state, "")
    return _card(
        "risk refusals",
        esc(f"{len_or(summary, 'risk_refusals'):,}"),
        f'{esc(refused_by_text(summary))}; final state <span class="{cls}">{esc(state)}</span>',
    )


def _cards(s: st.Statistics, summary: dict[str, Any], coin: str, risk: bool = False) -> str:
    r, dd, t, m = s.returns, s.drawdown, s.trip_stats, s.market
    total = Decimal(str(summary.get("total_pnl", "0")))
    lat = s.latency["order_ack"]
    market = f"{m.instrument} mid {m.first_mid} to {m.last_mid}" if m.first_mid is not None else ""
    dd_pct = float(dd.max_amount / s.capital) if s.capital else None
    cards = [
        _card("total PnL", amount(total, coin), f"return on capital {pct(r.total_return)}"),
        _card("market change (buy and hold)", pct(m.change), esc(market)),
        _card(
            "max drawdown",
            amount(-dd.max_amount, coin, colour=False),
            f"{pct(dd_pct)} of capital, lasted {ns_duration(dd.duration_ns)}",
        ),
        _card(
            "Sharpe (annualised)",
            num(r.sharpe),
            esc(f"{st.duration_text(round(r.period_s * st.NS_PER_S))} returns")
            + (f"; {esc(r.why_na)}" if r.why_na else ""),
        ),
        _card("Sortino / Calmar", f"{num(r.sortino)} / {num(r.calmar)}"),
        _card(
            "round trips",
            esc(f"{t.count:,}"),
            f"win rate {pct(t.win_rate, 3)}, expectancy {amount(t.expectancy, coin)}",
        ),
        _card(
            "fills / orders",
            esc(f"{len_or(summary, 'fills'):,} / {s.orders.orders:,}"),
            f"fill ratio {pct(s.orders.fill_ratio, 3)}, maker share {pct(s.fees.maker_share, 3)}",
        ),
        _card(
            "fees (net)",
            amount(s.fees.net, coin, colour=False),
            f"maker {amount(s.fees.maker, coin, colour=False)}, "
            f"taker {amount(s.fees.taker, coin, colour=False)}, "
            f"rebates {amount(s.fees.rebates, coin)}",
        ),
        _card(
            "order to ack (simulated)",
            f"p50 {ns_duration(lat.p50_ns)}",
            f"p99 {ns_duration(lat.p99_ns)}",
        ),
    ]
    if risk:
        cards.append(_risk_card(summary))
    return '<div class="cards">' + "".join(cards) + "</div>"


def len_or(summary: dict[str, Any], key: str) -> int:
    """An integer figure of the summary (0 when absent)."""
    return int(summary.get(key, 0) or 0)


def _stats_tables(s: st.Statistics, coin: str) -> str:
    r, dd, t, f = s.returns, s.drawdown, s.trip_stats, s.fees
    period = st.duration_text(round(r.period_s * st.NS_PER_S))
    returns = _kv_table(
        [
            ("sampling", esc(f"{period} returns on capital, {r.periods_per_year:,.0f} a year")),
            ("whole periods", esc(f"{r.periods:,}")),
            ("total return", pct(r.total_return)),
            (f"mean return per {period}", pct(r.mean)),
            (f"volatility per {period}", pct(r.stdev)),
            ("annualised return", pct(r.annual_return)),
            ("annualised volatility", pct(r.annual_volatility)),
            ("Sharpe ratio", num(r.sharpe)),
            ("Sortino ratio", num(r.sortino)),
            ("Calmar ratio", num(r.calmar)),
        ]
        + ([("why n/a", esc(r.why_na))] if r.why_na else [])
    )
    drawdown = _kv_table(
        [
            ("max drawdown", amount(dd.max_amount, coin, colour=False)),
            (
                "share of capital",
                pct(float(dd.max_amount / s.capital) if s.capital else None),
            ),
            ("peak", na(dd.peak_ts, utc_text(dd.peak_ts))),
            ("trough", na(dd.trough_ts, utc_text(dd.trough_ts))),
            (
                "recovered",
                na(dd.recovery_ts, utc_text(dd.recovery_ts))
                if dd.peak_ts is None or dd.recovery_ts is not None
                else "not by the end",
            ),
            ("duration (peak to recovery or end)", ns_duration(dd.duration_ns)),
            ("longest time under a previous peak", ns_duration(dd.longest_ns)),
        ]
    )
    trips = _kv_table(
        [
            (
                "round trips (long / short)",
                esc(f"{t.count:,} ({t.long_count:,} / {t.short_count:,})"),
            ),
            ("wins / losses", esc(f"{t.wins:,} / {t.losses:,}")),
            ("win rate", pct(t.win_rate)),
            ("average win", amount(t.avg_win, coin)),
            ("average loss", amount(t.avg_loss, coin)),
            ("largest win", amount(t.largest_win, coin)),
            ("largest loss", amount(t.largest_loss, coin)),
            ("profit factor", num(t.profit_factor)),
            ("expectancy (net per round trip)", amount(t.expectancy, coin)),
            (
                "gross / fees / net",
                f"{amount(t.gross, coin)} / {amount(t.fees, coin, colour=False)} / "
                f"{amount(t.net, coin)}",
            ),
            ("holding time: mean", seconds(t.avg_holding_s)),
            ("holding time: median", seconds(t.median_holding_s)),
            ("holding time: longest", seconds(t.max_holding_s)),
            ("lots still open at the end", esc(f"{len(s.open_lots):,}")),
        ]
    )
    fees = _kv_table(
        [
            ("maker fees paid", amount(f.maker, coin, colour=False)),
            ("taker fees paid", amount(f.taker, coin, colour=False)),
            ("rebates received", amount(f.rebates, coin)),
            ("net fees", amount(f.net, coin, colour=False)),
            ("funding paid", amount(f.funding_paid, coin, colour=False)),
            ("funding received", amount(f.funding_received, coin)),
            ("maker / taker fills", esc(f"{f.maker_fills:,} / {f.taker_fills:,}")),
            ("maker share", pct(f.maker_share)),
            ("spread captured vs mid", amount(s.spread_captured, coin)),
        ]
    )
    names = {
        "order_ack": "new order to ack or reject",
        "modify_ack": "modify to its answer",
        "cancel": "cancel to the order's end",
        "fill_report": "fill at the exchange to its report",
    }
    lat_rows = "".join(
        f"<tr><th>{esc(names[k])}</th><td class='n'>{v.count:,}</td>"
        f"<td class='n'>{ns_duration(v.p50_ns)}</td><td class='n'>{ns_duration(v.p99_ns)}</td>"
        f"<td class='n'>{ns_duration(v.mean_ns)}</td>"
        f"<td class='n'>{ns_duration(v.max_ns)}</td></tr>"
        for k, v in s.latency.items()
    )
    latency = (
        "<table><tr><th>delay (simulated time)</th><th>count</th><th>p50</th><th>p99</th>"
        f"<th>mean</th><th>max</th></tr>{lat_rows}</table>"
    )
    o = s.orders
    orders = _kv_table(
        [
            ("orders sent", esc(f"{o.orders:,}")),
            ("modifies asked", esc(f"{o.modifies:,}")),
            ("cancels asked", esc(f"{o.cancels:,}")),
            ("rejects", esc(f"{o.rejects:,}")),
            ("orders with a fill", esc(f"{o.filled_orders:,}")),
            ("fill ratio", pct(o.fill_ratio)),
        ]
    )
    return (
        '<div class="grid">'
        f"<div><h3>Returns</h3>{returns}</div>"
        f"<div><h3>Drawdown</h3>{drawdown}</div>"
        f"<div><h3>Round trips (FIFO)</h3>{trips}</div>"
        f"<div><h3>Fees and funding</h3>{fees}</div>"
        f"<div><h3>Orders</h3>{orders}</div>"
        f"<div><h3>Latency</h3>{latency}</div>"
        "</div>"
    )


def _rows_table(
    rows: Sequence[dict[str, str]],
    columns: Sequence[tuple[str, str]],
    *,
    times: Iterable[str] = (),
    file: str,
) -> str:
    """The first :data:`TABLE_ROWS` rows; ``times`` columns shown as UTC date-times."""
    if not rows:
        return '<p class="note">none</p>'
    as_time = set(times)
    head = "".join(f"<th>{esc(title)}</th>" for _, title in columns)

    def cell(col: str, text: str) -> str:
        if col in as_time and text:
            return f'<td class="n">{esc(utc_text(int(text)).removesuffix(" UTC"))}</td>'
        return f'<td class="n">{esc(text)}</td>'

    body = "".join(
        "<tr>" + "".join(cell(c, r.get(c, "")) for c, _ in columns) + "</tr>"
        for r in rows[:TABLE_ROWS]
    )
    more = f"the first {TABLE_ROWS:,} of {len(rows):,} rows; " if len(rows) > TABLE_ROWS else ""
    return (
        f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'
        f'<p class="note">{more}all of them: <code>{esc(file)}.csv</code> '
        f"(and <code>{esc(file)}.parquet</code> with pyarrow).</p>"
    )


@attrs.frozen
class RiskMarks:
    """What the charts draw of the risk layer's events."""

    refusals: list[dict[str, str]]
    """The refusals drawn on the price chart (the first instrument's, and those whose
    instrument is not known)."""
    elsewhere: int
    """Refusals on other instruments (no price chart: in the table and the file only)."""
    states: list[rf.StateSpan]

    @property
    def omitted(self) -> int:
        """Refusals of the price chart left out to keep it light."""
        counts: dict[str, int] = {}
        for r in self.refusals:
            counts[r["key"]] = counts.get(r["key"], 0) + 1
        return sum(counts.values()) - sum(rf.refusal_budget(counts).values())


def risk_marks(events: Sequence[dict[str, str]], run: RunInfo | None, end_ns: int) -> RiskMarks:
    """The refusals and trading states to draw, from the rows of ``risk_events``."""
    first = run.instruments[0] if run is not None and run.instruments else None
    refusals, elsewhere = [], 0
    for e in events:
        if e["kind"] == "state":
            continue
        iid = int(e["instrument_id"] or 0)
        if first is None or iid in (0, first.instrument_id):
            refusals.append(e)
        else:
            elsewhere += 1
    return RiskMarks(refusals, elsewhere, rf.state_spans(events, end_ns))


def _figures(
    tables: ResultTables, s: st.Statistics, run: RunInfo | None, coin: str, marks: RiskMarks
) -> list[tuple[str, Any]]:
    """The (element id, figure) pairs of the page's charts."""
    first = run.instruments[0] if run is not None and run.instruments else None
    by_id = {i.instrument_id: i for i in run.instruments} if run is not None else {}
    curve_rows = tables.text_rows("equity")
    curve = [(int(r["ts"]), Decimal(r["equity"])) for r in curve_rows]
    position = [(int(r["ts"]), Decimal(r["position"])) for r in curve_rows]
    mids = [(int(r["ts"]), Decimal(r["mid"])) for r in curve_rows if r["mid"]]
    fills = tables.text_rows("fills")
    first_fills = [
        f for f in fills if first is None or int(f["instrument_id"]) == first.instrument_id
    ]
    name = first.name if first is not None else ""
    figs: list[tuple[str, Any]] = [
        ("fig-equity", rf.equity_figure(curve, coin, states=marks.states)),
        ("fig-position", rf.position_figure(position, rf.qty_unit(first), name)),
        (
            "fig-price",
            rf.price_figure(
                mids, first_fills, first, coin, refusals=marks.refusals, states=marks.states
            ),
        ),
    ]
    if s.kind == "maker":
        figs.append(("fig-spread", rf.spread_figure(fills, by_id, coin)))
    elif s.kind == "taker":
        figs.append(("fig-round-trips", rf.round_trip_figure(s.trips, coin)))
    if len(s.daily) >= 2:
        figs.append(("fig-daily", rf.daily_figure(s.daily, coin)))
    return figs


def _risk_note(marks: RiskMarks) -> str:
    """What the charts show of the risk layer, and what they leave out."""
    parts = []
    if marks.refusals:
        drawn = len(marks.refusals) - marks.omitted
        text = f"{drawn:,} refusals are marked (x) on the price chart"
        if marks.omitted:
            text += f", {marks.omitted:,} more left out to keep it light"
        parts.append(
            text + "; a request without a price (a market order, a cancel) is drawn at the mid "
            "of its time"
        )
    if marks.elsewhere:
        parts.append(f"{marks.elsewhere:,} refusals on other instruments are not charted")
    if marks.states:
        parts.append(
            "trading-state changes are dotted lines on the equity and price charts, the time "
            "Halted shaded red, ReduceOnly amber"
        )
    if not parts:
        return ""
    return (
        '<p class="note">Risk layer: '
        + esc("; ".join(parts))
        + " (all of them: <code>risk_events.csv</code>).</p>"
    )


def _risk_section(summary: dict[str, Any], tables: ResultTables, marks: RiskMarks) -> str:
    """The risk layer's section: refusals by limit, the trading states, the events."""
    events = tables.text_rows("risk_events")
    refusals = sum(1 for e in events if e["kind"] != "state")
    total = len_or(summary, "risk_refusals")
    lost = (
        f'<p class="note">The run kept its latest {len(events):,} risk events: the first '
        f"{total - refusals:,} refusals are counted above but not listed.</p>"
        if total > refusals
        else ""
    )
    states = (
        "<br>".join(
            esc(f"{utc_text(sp.start_ns)}: {sp.state} ({sp.reason})") for sp in marks.states
        )
        or "none (Active throughout)"
    )
    rows = [
        ("refusals", esc(f"{total:,}")),
        ("refusals by limit", esc(refused_by_text(summary))),
        ("final trading state", esc(summary.get("risk_state", "Active"))),
        ("trading-state changes", states),
    ]
    table = _rows_table(
        events,
        [
            ("ts", "time (UTC)"),
            ("kind", "kind"),
            ("key", "limit or state"),
            ("instrument", "instrument"),
            ("side", "side"),
            ("price", "price"),
            ("qty", "qty"),
            ("cl_id", "order id"),
            ("detail", "reason"),
        ],
        times=("ts",),
        file="risk_events",
    )
    return (
        '<h2 id="risk">Risk layer</h2>\n'
        + _kv_table(rows)
        + lost
        + "\n<h3>Refusals and trading-state changes</h3>\n"
        + table
    )


def plotly_module() -> Any:
    """plotly's ``io`` module and its plotly.js, or None without plotly."""
    try:
        import plotly.io as pio  # type: ignore[import-untyped,import-not-found]
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped,import-not-found]
    except ImportError:
        return None
    return pio, get_plotlyjs()


def render(
    summary: dict[str, Any],
    tables: ResultTables,
    s: st.Statistics,
    run: RunInfo | None,
) -> str:
    """The whole page."""
    coin = s.settle_coin or (run.settle_coin if run is not None else "")
    title = (
        f"Backtest of {summary.get('strategy', '')} on {', '.join(summary.get('instruments', []))}"
    )
    window = (
        f"{utc_text(summary.get('start_ns'), digits=3)} to "
        f"{utc_text(summary.get('end_ns'), digits=3)} "
        f"({st.duration_text(int(summary.get('end_ns', 0)) - int(summary.get('start_ns', 0)))})"
    )
    risk = has_risk(summary, tables, run)
    curve = tables.text_rows("equity")
    end_ns = max(int(summary.get("end_ns", 0) or 0), int(curve[-1]["ts"]) if curve else 0)
    marks = risk_marks(tables.text_rows("risk_events"), run, end_ns)
    plotly = plotly_module()
    head_js = ""
    if plotly is not None:
        pio, js = plotly
        head_js = f'<script type="text/javascript">{js}</script>'
        charts = "".join(
            f'<div class="chart" data-chart="{esc(div)}">'
            + pio.to_html(
                fig, full_html=False, include_plotlyjs=False, div_id=div, config=PLOTLY_CONFIG
            )
            + "</div>"
            for div, fig in _figures(tables, s, run, coin, marks)
        )
        charts += _risk_note(marks)
        charts += (
            '<p class="note">Drag to zoom (double-click to reset), hover for details; the '
            "toolbar saves a chart as PNG.</p>"
        )
    else:
        charts = (
            '<p class="note">No charts: plotly is not installed '
            "(<code>pip install 'mlthon[report]'</code>). The tables below have every figure.</p>"
        )
    kind = {"maker": "market maker (most fills passive)", "taker": "taker (most fills aggressive)"}
    check = summary.get("accounting_check", {})
    check_text = ", ".join(
        f"{k}: {'match' if v.get('match') else 'MISMATCH'} "
        f"({v.get('strategy_side')} / {v.get('exchange_side')})"
        for k, v in check.items()
    )
    summary_rows = [
        ("total PnL", amount(Decimal(str(summary.get("total_pnl", "0"))), coin)),
        ("realised PnL", amount(Decimal(str(summary.get("realised_pnl", "0"))), coin)),
        ("unrealised PnL", amount(Decimal(str(summary.get("unrealised_pnl", "0"))), coin)),
        ("fees", amount(Decimal(str(summary.get("fees", "0"))), coin, colour=False)),
        ("funding", amount(Decimal(str(summary.get("funding", "0"))), coin)),
        ("turnover", esc(f"{summary.get('turnover', '')} {coin}")),
        (
            "final position",
            esc(", ".join(f"{k} {v}" for k, v in summary.get("final_position", {}).items())),
        ),
        ("market-data events", esc(f"{len_or(summary, 'events'):,}")),
        ("callback errors", esc(f"{len_or(summary, 'callback_errors'):,}")),
        ("accounting check (strategy / exchange)", esc(check_text or "n/a")),
    ]
    risk_text = ""
    if risk:
        summary_rows += [
            ("risk refusals by limit", esc(refused_by_text(summary))),
            ("final trading state", esc(summary.get("risk_state", "Active"))),
        ]
        refusals = len_or(summary, "risk_refusals")
        risk_text = (
            f" &middot; risk: {refusals:,} refusals, "
            f"final state {esc(summary.get('risk_state', 'Active'))}"
        )
    trips = round_trip_rows(s.trips)
    days = daily_rows(s.daily)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{REPORT_CSS}</style>
{head_js}
</head><body><main>
<h1>{esc(title)}</h1>
<p class="sub">{esc(window)} &middot; {esc(kind.get(s.kind, "no fills"))} &middot;
amounts in {esc(coin)} &middot; mlthon {esc(run.mlthon_version if run is not None else "")}{
        risk_text
    }</p>
<h2 id="run">What ran</h2>
{_kv_table(_run_rows(run, summary), "run")}
<h2 id="figures">Key figures</h2>
{_cards(s, summary, coin, risk)}
<h2 id="charts">Charts</h2>
{charts}
<h2 id="statistics">Statistics</h2>
{_stats_tables(s, coin)}
<h3>Summary and accounting</h3>
{_kv_table(summary_rows)}
<h3>Daily breakdown (UTC days, amounts in {esc(coin)})</h3>
{_rows_table(days, [(c, c.replace("_", " ")) for c in days[0]] if days else [], file="daily")}
{_risk_section(summary, tables, marks) if risk else ""}
<h2 id="round-trips">Round trips (FIFO, amounts in {esc(coin)})</h2>
{
        _rows_table(
            trips,
            [
                ("entry_ts", "entry (UTC)"),
                ("exit_ts", "exit (UTC)"),
                ("direction", "direction"),
                ("qty", "qty"),
                ("entry_price", "entry price"),
                ("exit_price", "exit price"),
                ("holding_s", "held (s)"),
                ("gross", "gross"),
                ("fees", "fees"),
                ("net", "net"),
                ("entry_cl_id", "entry order"),
                ("exit_cl_ids", "exit orders"),
            ],
            times=("entry_ts", "exit_ts"),
            file="round_trips",
        )
    }
<h2 id="fills">Fills</h2>
{
        _rows_table(
            tables.text_rows("fills"),
            [
                ("ts", "time (UTC)"),
                ("cl_id", "order id"),
                ("side", "side"),
                ("price", "price"),
                ("qty", "qty"),
                ("fee", f"fee ({coin})"),
                ("maker", "maker"),
                ("mid", "mid at fill"),
                ("position", "position after"),
                ("realised", f"realised ({coin})"),
                ("recv_ts", "received (UTC)"),
            ],
            times=("ts", "recv_ts"),
            file="fills",
        )
    }
<h2 id="order-events">Order events</h2>
{
        _rows_table(
            tables.text_rows("order_events"),
            [
                ("ts", "time (UTC)"),
                ("event", "event"),
                ("cl_id", "order id"),
                ("side", "side"),
                ("price", "price"),
                ("qty", "qty"),
                ("leaves_qty", "leaves"),
                ("exch_ts", "exchange time (UTC)"),
                ("detail", "detail"),
            ],
            times=("ts", "exch_ts"),
            file="order_events",
        )
    }
<p class="note">Each order's final state: <code>orders.csv</code>; the equity curve:
<code>equity.csv</code>; every statistic: <code>stats.json</code>; the inputs:
<code>run.json</code>. Definitions: <code>docs/reports.md</code>.</p>
</main></body></html>
"""
