"""A results folder: the order event log beside the final-state table, round trips that add up,
Parquet beside CSV, notebook tables, a Sharpe that is n/a on a short run, and the same bytes
from the same inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from decimal import Decimal

import pytest

from tests.conftest import REPO
from tests.integration.app.test_backtest import hand_backtest
from tests.integration.app.test_report_browser import maker_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FILES = {
    "orders.csv",
    "order_events.csv",
    "fills.csv",
    "equity.csv",
    "round_trips.csv",
    "daily.csv",
    "funding.csv",
    "summary.json",
    "stats.json",
    "run.json",
    "perf.json",
    "report.html",
}


def read(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def maker(tmp_path_factory):
    r = maker_run(seconds=300)
    return r, r.write(tmp_path_factory.mktemp("maker") / "out")


def test_folder_has_every_table_and_record(maker):
    _, out = maker
    names = {p.name for p in out.iterdir()}
    assert names >= FILES
    pytest.importorskip("pyarrow")
    assert {f"{n.removesuffix('.csv')}.parquet" for n in FILES if n.endswith(".csv")} <= names


def test_orders_keep_their_sent_price_and_the_event_log_has_each_modify(maker):
    r, out = maker
    orders = read(out / "orders.csv")
    events = read(out / "order_events.csv")
    modified = [o for o in orders if int(o["modifies"]) > 0]
    assert modified, "the market maker modifies its quotes"
    o = modified[0]
    mine = [e for e in events if e["cl_id"] == o["cl_id"]]
    kinds = [e["event"] for e in mine]
    assert kinds[0] == "new" and kinds[1] == "ack" and "modify" in kinds and "modify_ack" in kinds
    # The row's price is the one sent at its time; the final one is the last modify's.
    assert Decimal(mine[0]["price"]) == Decimal(o["price"]) and mine[0]["ts"] == o["ts"]
    last_modify = [e for e in mine if e["event"] == "modify_ack"][-1]
    assert Decimal(o["final_price"]) == Decimal(last_modify["price"])
    assert o["ack_ts"] == mine[1]["ts"]
    # Every line has a time, and the log is in time order.
    times = [int(e["ts"]) for e in events]
    assert times == sorted(times)
    assert {"new", "ack", "modify", "modify_ack", "fill", "cancel", "cancelled"} <= {
        e["event"] for e in events
    }
    assert sum(1 for e in events if e["event"] == "fill") == len(r.fills)


def test_round_trips_add_up_to_the_realised_pnl(maker):
    r, out = maker
    trips = read(out / "round_trips.csv")
    stats = json.loads((out / "stats.json").read_text())
    assert len(trips) == stats["round_trips"]["count"] == r.summary["round_trips"] > 10
    assert sum(int(t["instrument_id"]) == 9001 for t in trips) == len(trips)
    fees = stats["fees"]
    assert Decimal(fees["net"]) == Decimal(r.summary["fees"])
    assert Decimal(fees["maker"]) + Decimal(fees["taker"]) - Decimal(fees["rebates"]) == Decimal(
        r.summary["fees"]
    )
    day = read(out / "daily.csv")
    assert len(day) == 1 and Decimal(day[0]["pnl"]) == Decimal(r.curve[-1]["equity"])


def test_round_trips_of_a_run_that_ends_flat_realise_what_the_ledger_realised():
    # FIFO and the ledger's average price agree once every lot is closed.
    r = hand_backtest().run()
    (trip,) = r.stats.trips
    assert trip.gross == Decimal(r.summary["realised_pnl"]) == Decimal("0.003")
    assert trip.net == Decimal("0.003") - Decimal("0.0010035")
    assert r.summary["round_trips"] == 1 and r.summary["win_rate"] == 1.0


def test_sharpe_of_a_short_run_is_na_not_annualised_from_sub_second_samples(maker):
    _, out = maker
    s = json.loads((out / "summary.json").read_text())
    # The old summary annualised 1-second samples: a 5-minute run gave Sharpe in the hundreds.
    assert s["sharpe"] is None and s["sortino"] is None
    assert s["returns_sampling_s"] == 60
    stats = json.loads((out / "stats.json").read_text())
    assert "30 are needed" in stats["returns"]["why_na"]
    assert s["ack_latency_p50_ms"] == 4.0  # entry 2 ms + response 2 ms


def test_run_record_names_what_ran(maker):
    _, out = maker
    run = json.loads((out / "run.json").read_text())
    assert run["strategy_class"] == "demo_strat.market_maker:MarketMaker"
    assert run["params"]["spread_ticks"] == 4 and run["seeds"]["data"] == 7
    assert run["data"] == ["synthetic market, 300 s"] and not run["data_files"]
    assert run["latency_model"] == "entry 2 ms; response 2 ms; market data 1 ms"
    assert run["fee_model"] == ["SIMUSDT: maker 0.02 %, taker 0.05 % (the instrument's own)"]
    assert run["start_utc"].startswith("2023-11-14 22:13:20")
    assert run["mlthon_version"]


def test_parquet_holds_the_csv_rows_typed(maker):
    pq = pytest.importorskip("pyarrow.parquet")
    r, out = maker
    table = pq.read_table(out / "fills.parquet")
    assert table.num_rows == len(r.fills)
    assert str(table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    assert str(table.schema.field("price").type) == "double"
    first = table.slice(0, 1).to_pylist()[0]
    assert first["cl_id"] == r.fills[0]["cl_id"]
    assert first["price"] == float(r.fills[0]["price"])


def test_notebook_tables_are_dataframes_with_pandas(maker):
    pd = pytest.importorskip("pandas")
    r, _ = maker
    fills = r.tables.fills()
    assert isinstance(fills, pd.DataFrame) and len(fills) == len(r.fills)
    assert str(fills["ts"].dtype) == "datetime64[ns, UTC]"
    assert fills["price"].iloc[0] == float(r.fills[0]["price"])
    trips = r.tables.round_trips()
    assert len(trips) == r.stats.trip_stats.count
    assert set(r.tables.names) >= {"orders", "order_events", "fills", "equity", "round_trips"}
    events = r.tables.order_events()
    assert events["event"].iloc[0] == "new"


def test_notebook_tables_are_plain_rows_without_pandas(tmp_path):
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "from decimal import Decimal\n"
        "from tests.integration.app.test_backtest import hand_backtest\n"
        "r = hand_backtest().run()\n"
        "fills = r.tables.fills()\n"
        "assert isinstance(fills, list) and len(fills) == 2, fills\n"
        "f = fills[0]\n"
        "assert f['price'] == Decimal('100.20') and f['maker'] is False, f\n"
        "assert f['ts'] == 1_700_000_000 * 10**9, f\n"
        "print('plain rows', len(r.tables.round_trips()))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "plain rows 1" in p.stdout


def test_same_inputs_write_the_same_bytes(tmp_path):
    outs = [hand_backtest().run().write(tmp_path / f"run{k}") for k in range(2)]
    names = sorted(p.name for p in outs[0].iterdir())
    assert "report.html" in names and "stats.json" in names
    for name in names:
        if name == "perf.json":
            continue
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
