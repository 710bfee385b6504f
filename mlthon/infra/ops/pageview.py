"""What the status page shows: the board's snapshot and the activity log, formatted for people.

:func:`page_view` turns a :meth:`StatusBoard.snapshot` (raw: nanoseconds, decimal text as the
processes sent it) and an :meth:`ActivityLog.to_json` into the page's model, every figure and
time already text (:mod:`mlthon.infra.ops.figures`), so the page's script only places strings.
``/api/status`` keeps the raw snapshot for programs.

PnL over time is an inline SVG sparkline (:func:`sparkline`) drawn here: a few kilobytes, no
script library. A charting library (plotly.js is 3.5 MB minified) would have to be served by
the control process, loaded on a phone over an SSH tunnel and kept up to date, for one line per
strategy that needs neither zoom nor hover; the backtest report, which does need them, uses
plotly.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

from mlthon.infra.ops.figures import PNL_DIGITS, PRICE_DIGITS, exact, fig, to_decimal, utc

#: The sparkline's size in CSS pixels.
SPARK_W = 320
SPARK_H = 60
#: The most points drawn (the series is thinned evenly, its last point always kept).
SPARK_POINTS = 240


def _price(v: object) -> str:
    return fig(v, PRICE_DIGITS)


def _amount(v: object) -> str:
    return fig(v, PNL_DIGITS)


def sparkline(points: list[tuple[int, Decimal]]) -> str:
    """An inline SVG of ``points`` ((ns, value), oldest first): the line, a zero line when zero
    is in range, and a title with the window and the last value. Empty text for no points."""
    if not points:
        return ""
    if len(points) > SPARK_POINTS:
        step = len(points) / SPARK_POINTS
        points = [points[int(i * step)] for i in range(SPARK_POINTS - 1)] + [points[-1]]
    t0, t1 = points[0][0], points[-1][0]
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    span_t = (t1 - t0) or 1
    span_v = (hi - lo) or Decimal(1)
    pad = 3.0

    def x(ts: int) -> float:
        return pad + (SPARK_W - 2 * pad) * (ts - t0) / span_t

    def y(v: Decimal) -> float:
        return pad + (SPARK_H - 2 * pad) * float((hi - v) / span_v)

    if len(points) == 1:
        coords = f"{pad:.1f},{y(values[0]):.1f} {SPARK_W - pad:.1f},{y(values[0]):.1f}"
    else:
        coords = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in points)
    zero = ""
    if lo < 0 < hi:
        zy = y(Decimal(0))
        zero = (
            f'<line class="zero" x1="0" y1="{zy:.1f}" x2="{SPARK_W}" y2="{zy:.1f}" '
            'stroke="#6e7681" stroke-dasharray="3,3" stroke-width="1"/>'
        )
    last = values[-1]
    colour = "#2ea043" if last >= 0 else "#f85149"
    title = escape(
        f"PnL {_amount(last)} at {utc(t1)}; from {utc(t0)}; min {_amount(lo)}, max {_amount(hi)}"
    )
    return (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{SPARK_W}" '
        f'height="{SPARK_H}" viewBox="0 0 {SPARK_W} {SPARK_H}" role="img" '
        f'aria-label="{title}"><title>{title}</title>{zero}'
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/></svg>'
    )


def _positions(raw: object) -> list[dict[str, str]]:
    if not isinstance(raw, dict):
        return []
    rows = []
    for inst, p in sorted(raw.items()):
        if not isinstance(p, dict):
            continue
        rows.append(
            {
                "instrument": str(inst),
                "qty": exact(p.get("qty")),
                "avg_price": _price(p.get("avg_price")),
                "realized": _amount(p.get("realized")),
                "unrealized": _amount(p.get("unrealized")),
                "fees": _amount(p.get("fees")),
            }
        )
    return rows


def _orders(raw: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "time": utc(o["ts"]),
            "cl_id": str(o["cl_id"]),
            "instrument": f"{o['exchange']}:{o['instrument_id']}" if o["instrument_id"] else "",
            "side": o["side"],
            "price": _price(o["price"]) if o["price"] else "",
            "qty": exact(o["qty"]) if o["qty"] else "",
            "leaves": exact(o["leaves_qty"]) if o["leaves_qty"] else "",
            "status": o["status"],
            "detail": o["detail"],
        }
        for o in raw
    ]


def _fills(raw: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "time": utc(f["ts"]),
            "cl_id": str(f["cl_id"]),
            "instrument": f"{f['exchange']}:{f['instrument_id']}",
            "side": f["side"],
            "price": _price(f["price"]),
            "qty": exact(f["qty"]),
            "fee": f"{_amount(f['fee'])} {f['fee_coin']}".strip(),
            "liquidity": "maker" if f["maker"] else "taker",
        }
        for f in raw
    ]


def _strategy(name: str, comp: dict[str, Any] | None, act: dict[str, Any] | None) -> dict[str, Any]:
    extra = (comp or {}).get("extra") or {}
    s = extra.get("strategy") if isinstance(extra, dict) else None
    s = s if isinstance(s, dict) else {}
    pnl_points = []
    for ts, v in (act or {}).get("pnl", []):
        d = to_decimal(v)
        if d is not None:
            pnl_points.append((int(ts), d))
    return {
        "name": name,
        "state": (comp or {}).get("state", ""),
        "run_state": str(s.get("state", "")),
        "open_orders": str(s.get("open_orders", "-")),
        "pnl": _amount(s.get("pnl")),
        "callbacks": str(s.get("callbacks", "-")),
        "callback_errors": str(s.get("callback_errors", "-")),
        "risk_state": str(s.get("risk_state", "Active")),
        "risk_reason": str(s.get("risk_reason", "")),
        "positions": _positions(s.get("positions")),
        "pnl_chart": sparkline(pnl_points),
        "pnl_window": f"{utc(pnl_points[0][0])} to {utc(pnl_points[-1][0])}" if pnl_points else "",
        "orders": _orders((act or {}).get("orders", [])),
        "fills": _fills((act or {}).get("fills", [])),
    }


def page_view(snapshot: dict[str, Any], activity: dict[str, Any]) -> dict[str, Any]:
    """The page's model of ``snapshot`` and ``activity`` (see the module docstring)."""
    components = [
        {
            **c,
            "since": utc(c.get("since")),
            "rates": {k: f"{float(v):.1f}" for k, v in (c.get("rates") or {}).items()},
        }
        for c in snapshot["components"]
    ]
    by_name = {c["name"]: c for c in snapshot["components"] if c["kind"] == "strategy"}
    names = sorted(set(by_name) | set(activity))
    return {
        "ts": snapshot["ts"],
        "updated": utc(snapshot["ts"]),
        "components": components,
        "strategies": [_strategy(n, by_name.get(n), activity.get(n)) for n in names],
        "transitions": [{**x, "time": utc(x["ts"])} for x in snapshot["transitions"]],
        "errors": [{**x, "time": utc(x["ts"])} for x in snapshot["errors"]],
    }
