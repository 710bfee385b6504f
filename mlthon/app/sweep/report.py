"""A sweep's page, ``sweep.html``: one self-contained file (plotly.js embedded once, opens
offline), with what ran, the ranked table (each permutation linked to its own page), a slice
plot of the ranked figure against each parameter, a heat map of two parameters (the best over
the others), parallel coordinates for three or more, and the trials in order for a search.

Each permutation's folder gets ``summary.html`` (its parameters and every figure of its
summary, no script) unless it has the full ``report.html`` (``--reports``): the table links to
whichever it has. The pages are written here, by the sweep's process, from the summaries the
runs sent back, so the links work even when the runs' folders are on other machines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from mlthon.app.report_html import PLOTLY_CONFIG, REPORT_CSS, esc, na, plotly_module
from mlthon.app.sweep.space import Space

_EXTRA_CSS = (
    "td a{color:#1558b0}tr.best td{background:#eef7ee}tr.pruned td{color:#777;font-style:italic}"
)


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(Decimal(str(v)))
    except (InvalidOperation, ValueError):
        return None
    return x if math.isfinite(x) else None


def _page(title: str, head_js: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{REPORT_CSS}{_EXTRA_CSS}</style>
{head_js}
</head><body><main>
{body}
</main></body></html>
"""


def _link_of(base: Path, row: dict[str, Any]) -> str | None:
    """The permutation's page, relative to the sweep's folder (None: it has none)."""
    folder = Path(row["folder"])
    for name in ("report.html", "summary.html"):
        if (folder / name).exists():
            try:
                return (folder / name).resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                return (folder / name).resolve().as_uri()
    return None


def write_permutation_page(row: dict[str, Any], summary: dict[str, Any]) -> Path | None:
    """``summary.html`` in the permutation's folder (unless its report.html is there)."""
    folder = Path(row["folder"])
    if (folder / "report.html").exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    params = [(k.removeprefix("param."), v) for k, v in row.items() if k.startswith("param.")]
    figures = [(k, json.dumps(v) if isinstance(v, dict | list) else v) for k, v in summary.items()]
    body = (
        f"<h1>{esc(row['permutation_id'])}</h1>"
        f'<p class="sub">trial {esc(row["trial"])} of a sweep of '
        f"{esc(summary.get('strategy', ''))}; rank {na(row['rank'] or None)} "
        f"&middot; {esc(row['note'] or 'ranked')} &middot; "
        '<a href="../sweep.html">the sweep</a></p>'
        "<h2>Parameters</h2>" + _kv(params) + "<h2>Summary</h2>" + _kv(figures) + '<p class="note">'
        "The tables of the run are in this folder (CSV; summary.json, stats.json, run.json); "
        "<code>mlthon sweep --reports</code> writes each run's full report.html.</p>"
    )
    page = folder / "summary.html"
    page.write_text(_page(row["permutation_id"], "", body), encoding="utf-8")
    return page


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{na(v)}</td></tr>" for k, v in pairs)
    return f'<table class="run">{cells}</table>'


def _table(base: Path, rows: list[dict[str, Any]], figure: str) -> str:
    params = [k for k in rows[0] if k.startswith("param.")]
    cols = [
        "rank",
        "permutation_id",
        *params,
        *dict.fromkeys((figure, "total_pnl", "sharpe", "max_drawdown", "fills", "fees")),
        "note",
        "attempts",
        "run_s",
        "node",
    ]
    head = "".join(f"<th>{esc(c.removeprefix('param.'))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            text = na(v)
            if c == "permutation_id":
                link = _link_of(base, r)
                text = f'<a href="{esc(link)}">{esc(v)}</a>' if link else esc(v)
            cls = ' class="n"' if _number(v) is not None and c != "permutation_id" else ""
            cells.append(f"<td{cls}>{text}</td>")
        best = ' class="best"' if r["rank"] == 1 else ""
        if r.get("pruned_at") is not None:  # its figures are those of a shorter window
            best = ' class="pruned"'
        body.append(f"<tr{best}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _axis(values: list[Any]) -> tuple[list[Any], bool]:
    """The distinct values of a parameter, sorted (numerically when they are numbers)."""
    distinct = list(dict.fromkeys(values))
    if all(_number(v) is not None for v in distinct):
        return sorted(distinct, key=lambda v: _number(v) or 0.0), True
    return sorted(distinct, key=str), False


@attrs.frozen
class _Scored:
    """The ranked runs' points: each run's parameters (by key) and its figure."""

    keys: list[str]
    runs: list[dict[str, Any]]
    z: list[float]
    figure: str
    better: bool

    def values(self, key: str) -> list[Any]:
        return [r[f"param.{key}"] for r in self.runs]

    def best(self, a: float, b: float) -> float:
        return max(a, b) if self.better else min(a, b)


def _figures(
    rows: list[dict[str, Any]], space: Space, figure: str, better: bool, search: str
) -> list[tuple[str, Any]]:
    """The page's charts (plotly figures) with their div ids."""
    runs = [
        r
        for r in rows
        if r.get("fills") and _number(r.get(figure)) is not None and r.get("pruned_at") is None
    ]
    if not runs:
        return []
    z = [_number(r[figure]) or 0.0 for r in runs]
    s = _Scored(space.keys, runs, z, figure, better)
    figs = [("fig-slices", _slices(s))]
    if len(s.keys) >= 2:
        figs.append(("fig-heatmap", _heatmap(s)))
    if len(s.keys) >= 3:
        figs.append(("fig-parallel", _parallel(s)))
    if search != "grid":
        figs.append(("fig-trials", _by_trial(s, search)))
    return figs


def _slices(s: _Scored) -> Any:
    """The figure of every run against each parameter's value (a panel per parameter)."""
    import plotly.graph_objects as go  # type: ignore[import-untyped,import-not-found]
    from plotly.subplots import make_subplots  # type: ignore[import-untyped,import-not-found]

    fig = make_subplots(rows=1, cols=len(s.keys), shared_yaxes=True, subplot_titles=s.keys)
    for i, k in enumerate(s.keys, start=1):
        xs = s.values(k)
        numeric = all(_number(x) is not None for x in xs)
        fig.add_trace(
            go.Scatter(
                x=[_number(x) if numeric else str(x) for x in xs],
                y=s.z,
                mode="markers",
                text=[r["permutation_id"] for r in s.runs],
                hovertemplate="%{text}<br>" + s.figure + " %{y}<extra></extra>",
                marker={"size": 8, "color": "#1f77b4"},
                showlegend=False,
            ),
            row=1,
            col=i,
        )
    fig.update_layout(height=360, title=f"{s.figure} against each parameter", margin={"t": 60})
    fig.update_yaxes(title_text=s.figure, row=1, col=1)
    return fig


def _heatmap(s: _Scored) -> Any:
    """The figure by the first two parameters (the best over the others)."""
    import plotly.graph_objects as go  # type: ignore[import-untyped,import-not-found]

    kx, ky = s.keys[0], s.keys[1]
    xs, _ = _axis(s.values(kx))
    ys, _ = _axis(s.values(ky))
    cell: dict[tuple[str, str], float] = {}
    for x, y, v in zip(s.values(kx), s.values(ky), s.z, strict=True):
        c = (str(x), str(y))
        cell[c] = s.best(cell[c], v) if c in cell else v
    other = f" (the best over {', '.join(s.keys[2:])})" if len(s.keys) > 2 else ""
    fig = go.Figure(
        go.Heatmap(
            x=[str(x) for x in xs],
            y=[str(y) for y in ys],
            z=[[cell.get((str(x), str(y))) for x in xs] for y in ys],
            colorscale="Viridis",
            reversescale=not s.better,
            colorbar={"title": s.figure},
            hovertemplate=f"{kx} %{{x}}<br>{ky} %{{y}}<br>{s.figure} %{{z}}<extra></extra>",
        )
    )
    fig.update_layout(
        height=460,
        title=f"{s.figure} by {kx} and {ky}{other}",
        xaxis={"title": kx, "type": "category"},
        yaxis={"title": ky, "type": "category"},
    )
    return fig


def _parallel(s: _Scored) -> Any:
    """Parallel coordinates: every parameter and the figure, a line per run."""
    import plotly.graph_objects as go  # type: ignore[import-untyped,import-not-found]

    dims = []
    for k in s.keys:
        vals = s.values(k)
        axis, numeric = _axis(vals)
        if numeric:
            dims.append({"label": k, "values": [_number(v) for v in vals]})
            continue
        index = {str(v): i for i, v in enumerate(axis)}
        dims.append(
            {
                "label": k,
                "values": [index[str(v)] for v in vals],
                "tickvals": list(range(len(axis))),
                "ticktext": [str(v) for v in axis],
            }
        )
    dims.append({"label": s.figure, "values": s.z})
    line = {"color": s.z, "colorscale": "Viridis", "reversescale": not s.better, "showscale": True}
    fig = go.Figure(go.Parcoords(line=line, dimensions=dims))
    fig.update_layout(height=460, title=f"parameters and {s.figure}")
    return fig


def _by_trial(s: _Scored, search: str) -> Any:
    """A search's figure by trial, with the best so far."""
    import plotly.graph_objects as go  # type: ignore[import-untyped,import-not-found]

    order = sorted(range(len(s.runs)), key=lambda i: int(s.runs[i]["trial"]))
    trials = [s.runs[i]["trial"] for i in order]
    zs = [s.z[i] for i in order]
    best: list[float] = []
    for v in zs:
        best.append(s.best(best[-1], v) if best else v)
    fig = go.Figure()
    names = [s.runs[i]["permutation_id"] for i in order]
    fig.add_trace(go.Scatter(x=trials, y=zs, mode="markers", name="trial", text=names))
    fig.add_trace(
        go.Scatter(x=trials, y=best, mode="lines", name="best so far", line={"shape": "hv"})
    )
    fig.update_layout(
        height=360,
        title=f"{s.figure} by trial ({search} search)",
        xaxis={"title": "trial"},
        yaxis={"title": s.figure},
    )
    return fig


def _chart(pio: Any, div: str, fig: Any) -> str:
    """One chart's div (the page embeds plotly.js once, in its head)."""
    inner = pio.to_html(
        fig, full_html=False, include_plotlyjs=False, div_id=div, config=PLOTLY_CONFIG
    )
    return f'<div class="chart" data-chart="{esc(div)}">{inner}</div>'


def write_sweep_report(
    base: Path,
    rows: list[dict[str, Any]],
    summaries: dict[str, dict[str, Any]],
    space: Space,
    info: dict[str, Any],
) -> Path:
    """Write each permutation's page and ``sweep.html`` (rows ranked); returns its path."""
    for r in rows:
        summary = summaries.get(r["permutation_id"])
        if summary is not None:
            write_permutation_page(r, summary)
    figure = info["rank"]
    better = bool(info["higher_is_better"])
    plotly = plotly_module()
    head_js, charts = "", ""
    if plotly is not None:
        pio, js = plotly
        head_js = f'<script type="text/javascript">{js}</script>'
        figs = _figures(rows, space, figure, better, info["search"])
        charts = "".join(_chart(pio, div, fig) for div, fig in figs)
    else:
        charts = (
            '<p class="note">No charts: plotly is not installed '
            "(<code>pip install 'mlthon[report]'</code>).</p>"
        )
    order = "more" if better else "less"
    what = [
        ("strategy", info["strategy"]),
        (
            "search",
            f"{info['search']}, {info['runs']} runs"
            + (f", seed {info['search_seed']}" if info["search_seed"] is not None else "")
            + (f", batch {info['batch']}" if info["batch"] else "")
            + (", stopped early (patience)" if info["stopped_early"] else ""),
        ),
        ("space", " ".join(info["space"])),
        ("ranked by", f"{figure} ({order} is better)"),
        ("engine", info["engine"] + (f" at {info['address']}" if info["address"] else "")),
        (
            "time",
            f"{info['wall_s']:.1f} s, of which {info['warm_up_s']:.1f} s warming the replay cache",
        ),
        ("data", info["decode"] or "a synthetic market (nothing to decode)"),
        ("retried", ", ".join(info["retried"]) or "none"),
    ]
    if info.get("prune_note"):
        what.append(
            (
                "pruned",
                f"{info['prune_note']} (fractions {', '.join(info['prune'])} of the data window, "
                f"keeping {info['prune_keep']} at each; pruned runs are listed last, in grey, "
                "with their figures at the fraction they stopped at, and left out of the charts)",
            )
        )
    body = (
        f"<h1>Sweep of {esc(info['strategy'])}</h1>"
        f'<p class="sub">{len(rows)} runs by {esc(figure)} ({order} is better); each '
        "permutation links to its own page</p>"
        f'<h2 id="run">What ran</h2>{_kv(what)}'
        f'<h2 id="table">Ranked</h2>{_table(base, rows, figure)}'
        f'<h2 id="charts">Charts</h2>{charts}'
        '<p class="note">The table as CSV and JSON: <code>sweep.csv</code>, '
        "<code>sweep.json</code>; the sweep's settings: <code>sweep_run.json</code>.</p>"
    )
    page = base / "sweep.html"
    page.write_text(_page(f"Sweep of {info['strategy']}", head_js, body), encoding="utf-8")
    return page
