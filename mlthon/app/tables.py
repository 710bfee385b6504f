"""A backtest's tables, typed: for notebooks (pandas), Parquet files and the statistics.

The result keeps its tables as rows of text (exact decimals, times in ns), the form the CSV files
have. Here each table's columns have a type, and the rows are read back as Python values
(:meth:`ResultTables.rows`: ``int`` ns, ``Decimal``, ``bool``, ``None`` for an empty cell), as
pandas DataFrames (:meth:`ResultTables.frame`: times as UTC ``datetime64[ns]``, amounts as
floats) or written as Parquet (:func:`write_parquet`, with pyarrow: the same types as the frame).

The tables (the files ``<name>.csv`` and ``<name>.parquet`` of a results folder):

* ``orders``: one row per order, its final state;
* ``order_events``: the order event log (requests as sent, answers as received);
* ``fills``: our fills;
* ``equity``: the equity curve;
* ``round_trips``: fills matched first in, first out (:mod:`mlthon.app.stats`);
* ``daily``: one row per UTC day;
* ``funding``: the funding payments (amount > 0 received);
* ``risk_events``: the risk layer's refusals and trading-state changes (``docs/risk.md``; no
  row without a ``[risk]`` table).

In a notebook::

    result.tables.fills()        # a DataFrame with pandas installed, else a list of dicts
    result.tables.names          # the table names
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlthon.app import stats as st
from mlthon.app.ledger import CURVE_COLUMNS, FILL_COLUMNS, ORDER_COLUMNS, ORDER_EVENT_COLUMNS

if TYPE_CHECKING:
    from mlthon.app.run_info import RunInfo
    from mlthon.gateways.sim.accounting import FundingPayment
    from mlthon.infra.risk.guard import RiskEvent

# Column kinds: ns (a time), dec (an exact amount), int, float, bool, str.
_NS, _DEC, _INT, _FLOAT, _BOOL, _STR = "ns", "dec", "int", "float", "bool", "str"

ROUND_TRIP_COLUMNS = [
    "instrument_id",
    "direction",
    "qty",
    "entry_ts",
    "exit_ts",
    "holding_s",
    "entry_price",
    "exit_price",
    "gross",
    "fees",
    "net",
    "entry_cl_id",
    "exit_cl_ids",
]
DAILY_COLUMNS = [
    "day",
    "pnl",
    "fills",
    "maker_fills",
    "volume",
    "fees",
    "funding",
    "round_trips",
    "round_trip_net",
    "equity_end",
]
FUNDING_COLUMNS = ["ts", "instrument_id", "rate", "mark", "qty", "amount", "coin"]
RISK_EVENT_COLUMNS = [
    "ts",
    "kind",
    "key",
    "instrument_id",
    "instrument",
    "side",
    "price",
    "qty",
    "cl_id",
    "detail",
]

_KINDS: dict[str, dict[str, str]] = {
    "orders": {
        "ts": _NS,
        "instrument_id": _INT,
        "price": _DEC,
        "qty": _DEC,
        "final_price": _DEC,
        "final_qty": _DEC,
        "modifies": _INT,
        "filled_qty": _DEC,
        "ack_ts": _NS,
        "done_ts": _NS,
        "avg_price": _DEC,
    },
    "order_events": {
        "ts": _NS,
        "instrument_id": _INT,
        "price": _DEC,
        "qty": _DEC,
        "leaves_qty": _DEC,
        "exch_ts": _NS,
    },
    "fills": {
        "ts": _NS,
        "instrument_id": _INT,
        "price": _DEC,
        "qty": _DEC,
        "fee": _DEC,
        "maker": _BOOL,
        "mid": _DEC,
        "position": _DEC,
        "realised": _DEC,
        "recv_ts": _NS,
    },
    "equity": {"ts": _NS, "equity": _DEC, "position": _DEC, "mid": _DEC},
    "round_trips": {
        "instrument_id": _INT,
        "qty": _DEC,
        "entry_ts": _NS,
        "exit_ts": _NS,
        "holding_s": _FLOAT,
        "entry_price": _DEC,
        "exit_price": _DEC,
        "gross": _DEC,
        "fees": _DEC,
        "net": _DEC,
    },
    "daily": {
        "pnl": _DEC,
        "fills": _INT,
        "maker_fills": _INT,
        "volume": _DEC,
        "fees": _DEC,
        "funding": _DEC,
        "round_trips": _INT,
        "round_trip_net": _DEC,
        "equity_end": _DEC,
    },
    "funding": {
        "ts": _NS,
        "instrument_id": _INT,
        "rate": _DEC,
        "mark": _DEC,
        "qty": _DEC,
        "amount": _DEC,
    },
    "risk_events": {"ts": _NS, "instrument_id": _INT, "price": _DEC, "qty": _DEC},
}

COLUMNS: dict[str, list[str]] = {
    "orders": ORDER_COLUMNS,
    "order_events": ORDER_EVENT_COLUMNS,
    "fills": FILL_COLUMNS,
    "equity": CURVE_COLUMNS,
    "round_trips": ROUND_TRIP_COLUMNS,
    "daily": DAILY_COLUMNS,
    "funding": FUNDING_COLUMNS,
    "risk_events": RISK_EVENT_COLUMNS,
}
"""Every table's columns, in file order."""


class ResultLike(Protocol):
    """What the tables are read from (a :class:`~mlthon.app.backtest.BacktestResult`)."""

    summary: dict[str, Any]
    orders: list[dict[str, str]]
    fills: list[dict[str, str]]
    curve: list[dict[str, str]]
    run: RunInfo | None
    order_events: list[dict[str, str]]
    funding: list[dict[str, str]]
    risk_events: list[dict[str, str]]
    stats: st.Statistics | None


def kind_of(table: str, column: str) -> str:
    """The type of a column: ns, dec, int, float, bool or str."""
    return _KINDS.get(table, {}).get(column, _STR)


def value_of(kind: str, text: str) -> Any:
    """A cell's text as a Python value of its column's kind (None when empty)."""
    if text == "":
        return None
    if kind in (_NS, _INT):
        return int(text)
    if kind == _DEC:
        return Decimal(text)
    if kind == _FLOAT:
        return float(text)
    if kind == _BOOL:
        return text == "true"
    return text


# --- derived tables as text rows ---------------------------------------------------------------


def round_trip_rows(trips: Iterable[st.RoundTrip]) -> list[dict[str, str]]:
    """The round trips as text rows (``round_trips.csv``)."""
    return [
        {
            "instrument_id": str(t.instrument_id),
            "direction": "long" if t.long else "short",
            "qty": str(t.qty),
            "entry_ts": str(t.entry_ts),
            "exit_ts": str(t.exit_ts),
            "holding_s": f"{t.holding_ns / st.NS_PER_S:.9f}".rstrip("0").rstrip("."),
            "entry_price": str(t.entry_price),
            "exit_price": st.money(t.exit_price),
            "gross": st.money(t.gross),
            "fees": st.money(t.fees),
            "net": st.money(t.net),
            "entry_cl_id": t.entry_cl_id,
            "exit_cl_ids": " ".join(t.exit_cl_ids),
        }
        for t in trips
    ]


def daily_rows(days: Iterable[st.Day]) -> list[dict[str, str]]:
    """The daily breakdown as text rows (``daily.csv``)."""
    return [
        {
            "day": d.day,
            "pnl": st.money(d.pnl),
            "fills": str(d.fills),
            "maker_fills": str(d.maker_fills),
            "volume": st.money(d.volume),
            "fees": st.money(d.fees),
            "funding": st.money(d.funding),
            "round_trips": str(d.round_trips),
            "round_trip_net": st.money(d.round_trip_net),
            "equity_end": st.money(d.equity_end),
        }
        for d in days
    ]


def funding_rows(payments: Iterable[FundingPayment]) -> list[dict[str, str]]:
    """A strategy's funding payments as text rows; ``amount`` is what it received (a payment it
    made is negative), the opposite sign of the exchange's record."""
    return [
        {
            "ts": str(p.ts),
            "instrument_id": str(p.instrument_id),
            "rate": str(p.rate),
            "mark": str(p.mark),
            "qty": str(p.qty),
            "amount": st.money(-p.amount),
            "coin": p.coin,
        }
        for p in payments
    ]


def risk_event_rows(events: Iterable[RiskEvent]) -> list[dict[str, str]]:
    """The risk layer's refusals and trading-state changes as text rows (``risk_events.csv``),
    oldest first: ``kind`` ``new``, ``modify`` or ``cancel`` (a refused request, ``key`` the limit
    that refused it) or ``state`` (``key`` the new state's name)."""
    return [
        {
            "ts": str(e.ts),
            "kind": e.kind,
            "key": e.key,
            "instrument_id": str(e.instrument_id) if e.instrument_id else "",
            "instrument": e.instrument,
            "side": e.side.name if e.side is not None else "",
            "price": e.price,
            "qty": e.qty,
            "cl_id": e.cl_id,
            "detail": e.detail,
        }
        for e in events
    ]


# --- statistics from the tables ----------------------------------------------------------------


def statistics_of(result: ResultLike, *, period_s: float = st.DEFAULT_PERIOD_S) -> st.Statistics:
    """Every statistic of a result, from its tables and its :class:`RunInfo` (the instruments
    and the capital; without it, no instrument is known and round trips are empty)."""
    run = result.run
    instruments = list(run.instruments) if run is not None else []
    capital = run.capital if run is not None else Decimal(0)
    curve = [(int(r["ts"]), Decimal(r["equity"])) for r in result.curve]
    mids = [(int(r["ts"]), Decimal(r["mid"]) if r["mid"] else None) for r in result.curve]
    fills = [
        st.Fill(
            ts=int(r["ts"]),
            recv_ts=int(r.get("recv_ts") or r["ts"]),
            cl_id=r["cl_id"],
            instrument_id=int(r["instrument_id"]),
            buy=r["side"] == "Buy",
            price=Decimal(r["price"]),
            qty=Decimal(r["qty"]),
            fee=Decimal(r["fee"]),
            maker=r["maker"] == "true",
            mid=Decimal(r["mid"]) if r["mid"] else None,
        )
        for r in result.fills
    ]
    events = [st.OrderEvent(int(r["ts"]), r["event"], r["cl_id"]) for r in result.order_events]
    funding = [st.Funding(int(r["ts"]), Decimal(r["amount"])) for r in result.funding]
    s = result.summary
    counts = st.OrderCounts(
        orders=len(result.orders),
        modifies=int(s.get("modifies", 0)),
        cancels=int(s.get("cancels", 0)),
        rejects=int(s.get("rejects", 0)),
        filled_orders=sum(1 for o in result.orders if o["filled_qty"] not in ("", "0")),
        fill_ratio=0.0,
    )
    if counts.orders:
        counts = st.OrderCounts(
            counts.orders,
            counts.modifies,
            counts.cancels,
            counts.rejects,
            counts.filled_orders,
            counts.filled_orders / counts.orders,
        )
    return st.compute(
        curve=curve,
        mids=mids,
        fills=fills,
        events=events,
        instruments=instruments,
        capital=capital,
        orders=counts,
        funding=funding,
        period_s=period_s,
    )


# --- typed access ------------------------------------------------------------------------------


class ResultTables:
    """The tables of a result, typed: ``result.tables.fills()`` and so on.

    Each accessor returns a pandas DataFrame when pandas is installed (times as UTC
    ``datetime64[ns]``, amounts as float64), else a list of dicts of Python values (``int`` ns,
    exact ``Decimal``, ``bool``, ``None`` for an empty cell), as :meth:`rows` gives.
    """

    names = tuple(COLUMNS)

    def __init__(self, result: ResultLike) -> None:
        self._result = result

    def text_rows(self, name: str) -> list[dict[str, str]]:
        """The table as text rows, as written to ``<name>.csv``."""
        r = self._result
        stats = r.stats
        if name == "orders":
            return r.orders
        if name == "order_events":
            return r.order_events
        if name == "fills":
            return r.fills
        if name == "equity":
            return r.curve
        if name == "round_trips":
            return round_trip_rows(stats.trips) if stats is not None else []
        if name == "daily":
            return daily_rows(stats.daily) if stats is not None else []
        if name == "funding":
            return r.funding
        if name == "risk_events":
            return r.risk_events
        raise KeyError(f"no table {name!r}; the tables are {', '.join(self.names)}")

    def rows(self, name: str) -> list[dict[str, Any]]:
        """The table as dicts of Python values (exact decimals)."""
        kinds = [(c, kind_of(name, c)) for c in COLUMNS[name]]
        return [{c: value_of(k, r.get(c, "")) for c, k in kinds} for r in self.text_rows(name)]

    def frame(self, name: str) -> Any:
        """The table as a pandas DataFrame.

        Raises:
            ImportError: pandas is not installed (``pip install 'mlthon[tables]'``).
        """
        import pandas as pd  # type: ignore[import-untyped,import-not-found]

        data: dict[str, Any] = {}
        rows = self.text_rows(name)
        for col in COLUMNS[name]:
            kind = kind_of(name, col)
            cells = [r.get(col, "") for r in rows]
            if kind == _NS:
                ints = [int(c) if c else None for c in cells]
                data[col] = pd.to_datetime(pd.array(ints, dtype="Int64"), unit="ns", utc=True)
            elif kind in (_DEC, _FLOAT):
                data[col] = pd.array([float(c) if c else None for c in cells], dtype="Float64")
            elif kind == _INT:
                data[col] = pd.array([int(c) if c else None for c in cells], dtype="Int64")
            elif kind == _BOOL:
                data[col] = pd.array([c == "true" for c in cells], dtype="bool")
            else:
                data[col] = pd.array(cells, dtype="string")
        return pd.DataFrame(data, columns=COLUMNS[name])

    def get(self, name: str) -> Any:
        """A DataFrame with pandas, else :meth:`rows`."""
        try:
            import pandas  # noqa: F401 (only whether it is there)
        except ImportError:
            return self.rows(name)
        return self.frame(name)

    def orders(self) -> Any:
        """One row per order, its final state."""
        return self.get("orders")

    def order_events(self) -> Any:
        """The order event log."""
        return self.get("order_events")

    def fills(self) -> Any:
        """Our fills."""
        return self.get("fills")

    def equity(self) -> Any:
        """The equity curve."""
        return self.get("equity")

    def round_trips(self) -> Any:
        """Fills matched into round trips (FIFO)."""
        return self.get("round_trips")

    def daily(self) -> Any:
        """One row per UTC day."""
        return self.get("daily")

    def funding(self) -> Any:
        """The funding payments (amount > 0 received)."""
        return self.get("funding")

    def risk_events(self) -> Any:
        """The risk layer's refusals and trading-state changes (empty without one)."""
        return self.get("risk_events")


def write_parquet(tables: ResultTables, folder: Path) -> list[Path]:
    """Write ``<name>.parquet`` for every table with pyarrow (nothing without it); returns the
    files written. Times are UTC timestamps (ns), amounts float64, ids int64."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found]
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found]
    except ImportError:
        return []
    types = {
        _NS: pa.timestamp("ns", tz="UTC"),
        _DEC: pa.float64(),
        _FLOAT: pa.float64(),
        _INT: pa.int64(),
        _BOOL: pa.bool_(),
        _STR: pa.string(),
    }
    out = []
    for name in tables.names:
        rows = tables.rows(name)
        cols: dict[str, Sequence[Any]] = {}
        fields = []
        for col in COLUMNS[name]:
            kind = kind_of(name, col)
            values = [r[col] for r in rows]
            if kind == _DEC:
                values = [None if v is None else float(v) for v in values]
            cols[col] = values
            fields.append(pa.field(col, types[kind]))
        table = pa.Table.from_pydict(dict(cols), schema=pa.schema(fields))
        path = folder / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        out.append(path)
    return out
