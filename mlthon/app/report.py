"""Writing a backtest's results: CSV tables, JSON, and an HTML report with PNG plots.

Every file except ``perf.json`` (wall time, events per second) depends only on the inputs, so two
runs of the same backtest give byte-identical folders otherwise. PNGs are written without the
time-stamped metadata matplotlib would add. Plots need matplotlib (``pip install mlthon[report]``);
without it the HTML report lists the figures and says how to get the plots.
"""

from __future__ import annotations

import csv
import html
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlthon.app.ledger import CURVE_COLUMNS, FILL_COLUMNS, HEADLINE_FIGURES, ORDER_COLUMNS

if TYPE_CHECKING:
    from mlthon.app.backtest import BacktestResult

log = logging.getLogger(__name__)

NS = 1_000_000_000


def _write_csv(path: Path, rows: list[dict[str, str]], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def write_results(result: BacktestResult, folder: Path, *, report: bool = True) -> Path:
    """Write the result's files into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(folder / "orders.csv", result.orders, ORDER_COLUMNS)
    _write_csv(folder / "fills.csv", result.fills, FILL_COLUMNS)
    _write_csv(folder / "equity.csv", result.curve, CURVE_COLUMNS)
    (folder / "summary.json").write_text(
        json.dumps(result.summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (folder / "perf.json").write_text(
        json.dumps(result.perf, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    if report:
        pngs = _plots(result, folder)
        (folder / "report.html").write_text(_html(result, pngs), encoding="utf-8")
    return folder


def _plots(result: BacktestResult, folder: Path) -> list[tuple[str, str]]:
    """Render the PNGs; returns (file name, title) pairs (empty without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("report: matplotlib is not installed; no plots (pip install mlthon[report])")
        return []
    plt.rcParams["svg.hashsalt"] = "mlthon"
    curve = result.curve
    t0 = int(curve[0]["ts"]) if curve else 0

    def secs(ts: str) -> float:
        return (int(ts) - t0) / NS

    xs = [secs(r["ts"]) for r in curve]
    eq = [float(Decimal(r["equity"])) for r in curve]
    pos = [float(Decimal(r["position"])) for r in curve]
    mids = [(secs(r["ts"]), float(Decimal(r["mid"]))) for r in curve if r["mid"]]
    peak = float("-inf")
    dd = []
    for e in eq:
        peak = max(peak, e)
        dd.append(e - peak)
    out: list[tuple[str, str]] = []

    def save(fig: Any, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90, metadata={"Software": None})
        plt.close(fig)
        out.append((name, title))

    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    a1.plot(xs, eq, color="#1f77b4", lw=1.2)
    a1.set_ylabel("equity (PnL)")
    a1.grid(alpha=0.3)
    a2.fill_between(xs, dd, 0, color="#d62728", alpha=0.4, step="post")
    a2.set_ylabel("drawdown")
    a2.set_xlabel("seconds since start")
    a2.grid(alpha=0.3)
    save(fig, "equity.png", "Equity and drawdown")

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.step(xs, pos, where="post", color="#2ca02c", lw=1.2)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("position")
    ax.set_xlabel("seconds since start")
    ax.grid(alpha=0.3)
    save(fig, "position.png", "Position")

    fig, ax = plt.subplots(figsize=(10, 4))
    if mids:
        ax.plot([x for x, _ in mids], [y for _, y in mids], color="#7f7f7f", lw=1, label="mid")
    buys = [(secs(f["ts"]), float(Decimal(f["price"]))) for f in result.fills if f["side"] == "Buy"]
    sells = [
        (secs(f["ts"]), float(Decimal(f["price"]))) for f in result.fills if f["side"] == "Sell"
    ]
    if buys:
        ax.scatter(
            [x for x, _ in buys],
            [y for _, y in buys],
            marker="^",
            color="#2ca02c",
            s=18,
            label="our buys",
        )
    if sells:
        ax.scatter(
            [x for x, _ in sells],
            [y for _, y in sells],
            marker="v",
            color="#d62728",
            s=18,
            label="our sells",
        )
    ax.set_ylabel("price")
    ax.set_xlabel("seconds since start")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    save(fig, "fills.png", "Mid price with our fills")

    fig, ax = plt.subplots(figsize=(10, 3))
    captured = []
    total = 0.0
    for f in result.fills:
        if f["mid"]:
            px, mid, q = (float(Decimal(f[k])) for k in ("price", "mid", "qty"))
            total += (mid - px if f["side"] == "Buy" else px - mid) * q
            captured.append((secs(f["ts"]), total))
    if captured:
        ax.plot([x for x, _ in captured], [y for _, y in captured], color="#9467bd", lw=1.2)
    ax.set_ylabel("cumulative spread captured")
    ax.set_xlabel("seconds since start")
    ax.grid(alpha=0.3)
    save(fig, "spread.png", "Spread captured (vs mid at fill)")
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#222;
max-width:1100px}
h1{font-size:1.4rem}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4;text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.note{color:#666}
"""


def _html(result: BacktestResult, pngs: list[tuple[str, str]]) -> str:
    s = result.summary
    keys = HEADLINE_FIGURES
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(s.get(k, '')))}</td></tr>" for k in keys
    )
    figs = "".join(
        f'<h2>{html.escape(title)}</h2><img src="{html.escape(name)}" alt="{html.escape(title)}">'
        for name, title in pngs
    ) or (
        '<p class="note">No plots: matplotlib is not installed '
        "(<code>pip install mlthon[report]</code>).</p>"
    )
    fills = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(f[k])}</td>"
            for k in ("ts", "side", "price", "qty", "fee", "position")
        )
        + "</tr>"
        for f in result.fills[:50]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlthon backtest: {html.escape(str(s.get("strategy")))}</title>
<style>{_CSS}</style></head><body>
<h1>Backtest of {html.escape(str(s.get("strategy")))} on
{html.escape(", ".join(s.get("instruments", [])))}</h1>
<table>{rows}</table>
{figs}
<h2>First fills</h2>
<table><tr><th>ts</th><th>side</th><th>price</th><th>qty</th><th>fee</th><th>position</th></tr>
{fills}</table>
<p class="note">Full tables: orders.csv, fills.csv, equity.csv; figures: summary.json.</p>
</body></html>
"""
