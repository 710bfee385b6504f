"""Writing a backtest's results folder.

Files (``docs/reports.md`` describes every column):

* ``orders.csv`` (one row per order, its final state), ``order_events.csv`` (the order event
  log), ``fills.csv``, ``equity.csv``, ``round_trips.csv``, ``daily.csv``, ``funding.csv``,
  ``risk_events.csv`` (the risk layer's refusals and trading-state changes; a header only
  without a ``[risk]`` table); with pyarrow installed (``pip install 'mlthon[tables]'``) each
  also as ``.parquet``;
* ``summary.json`` (the headline figures), ``stats.json`` (every statistic of
  :mod:`mlthon.app.stats`), ``run.json`` (what ran: :mod:`mlthon.app.run_info`);
* ``report.html``: the interactive report (plotly, ``pip install 'mlthon[report]'``), one file
  that opens offline;
* ``perf.json``: wall time and events per second.

Every file except ``perf.json`` depends only on the inputs, so two runs of the same backtest give
byte-identical folders otherwise.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlthon.app import stats as st
from mlthon.app.run_info import RunInfo
from mlthon.app.tables import COLUMNS, ResultTables, statistics_of, write_parquet

if TYPE_CHECKING:
    from mlthon.app.backtest import BacktestResult

log = logging.getLogger(__name__)


@attrs.define
class ResultView:
    """A result's parts, whether or not the result carries every one of them (the run record,
    the event log, funding, statistics and risk events came later than its first tables)."""

    summary: dict[str, Any]
    orders: list[dict[str, str]]
    fills: list[dict[str, str]]
    curve: list[dict[str, str]]
    perf: dict[str, float]
    run: RunInfo | None
    order_events: list[dict[str, str]]
    funding: list[dict[str, str]]
    stats: st.Statistics | None
    risk_events: list[dict[str, str]] = attrs.field(factory=list)

    @classmethod
    def of(cls, result: BacktestResult | ResultView) -> ResultView:
        """The view of ``result``, its statistics computed if it has none."""
        view = cls(
            result.summary,
            result.orders,
            result.fills,
            result.curve,
            result.perf,
            getattr(result, "run", None),
            list(getattr(result, "order_events", None) or []),
            list(getattr(result, "funding", None) or []),
            getattr(result, "stats", None),
            list(getattr(result, "risk_events", None) or []),
        )
        view.stats = view.stats or statistics_of(view)
        return view


def _write_csv(path: Path, rows: list[dict[str, str]], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_results(
    result: BacktestResult | ResultView, folder: Path, *, report: bool = True
) -> Path:
    """Write the result's files into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    view = ResultView.of(result)
    stats = view.stats or statistics_of(view)
    tables = ResultTables(view)
    for name in tables.names:
        _write_csv(folder / f"{name}.csv", tables.text_rows(name), COLUMNS[name])
    written = write_parquet(tables, folder)
    if not written:
        log.debug("report: pyarrow is not installed; CSV only (pip install 'mlthon[tables]')")
    _write_json(folder / "summary.json", view.summary)
    _write_json(folder / "stats.json", stats.to_dict())
    if view.run is not None:
        _write_json(folder / "run.json", view.run.to_dict())
    _write_json(folder / "perf.json", view.perf)
    if report:
        from mlthon.app.report_html import render

        (folder / "report.html").write_text(
            render(view.summary, tables, stats, view.run), encoding="utf-8"
        )
    return folder
