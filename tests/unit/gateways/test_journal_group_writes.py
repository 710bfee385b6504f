"""The order journal groups its writes: rows wait in memory and reach SQLite at commit (one
``executemany`` per table), yet every caller sees what it wrote; request keys lead with the send
time; a checkpoint can run in a worker thread while the journal is written."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from mlthon.basics.mlt_enum import CancelCode, Side
from mlthon.gateways.journal import OrderJournal, legacy_request_key, request_key
from mlthon.infra.bus.codec import encode
from mlthon.infra.bus.messages import CancelOrderAck, NewOrder, OrderCancelled, OrderExecution
from tests.unit.gateways.helpers import book, new
from tests.unit.reliability.test_sim_journal import T0, Rig


def _new(cl_id: str, ts: int = 1) -> NewOrder:
    return NewOrder(
        strat="s1", cl_id=cl_id, instrument_id=1, side=Side.Buy, price="1", qty="1", ts=ts
    )


def _fill(cl_id: str, exec_id: str) -> OrderExecution:
    return OrderExecution(
        cl_id=cl_id,
        exec_id=exec_id,
        instrument_id=1,
        side=Side.Buy,
        price="1",
        fill_qty="1",
        leaves_qty="0",
        exec_ts=1,
        fee="0",
        fee_coin="USDT",
        maker=True,
    )


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:  # another connection: only what was committed
        return db.execute(sql).fetchall()


def test_journal_rows_reach_the_file_at_commit_and_a_request_handled_at_once_is_written_done(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    j = OrderJournal(path)
    req = _new("a")
    seq = j.add_request(request_key(req, "new"), "s1", "new", req, 5)
    assert seq == 1
    j.add_report("s1", CancelOrderAck(cl_id="a"), 5)
    j.save_order("s1", "a", {"v": 1})
    j.save_order("s1", "a", {"v": 2})  # saved twice in the transaction: written once, last
    j.request_done(seq)
    assert _rows(path, "SELECT COUNT(*) FROM requests") == [(0,)]
    j.commit()
    assert _rows(path, "SELECT seq, done FROM requests") == [(1, 1)]
    assert _rows(path, "SELECT seq, kind FROM reports") == [(1, "CancelOrderAck")]
    assert _rows(path, "SELECT state FROM orders") == [('{"v":2}',)]
    # handled in a later transaction: an update
    seq2 = j.add_request(request_key(_new("b"), "new"), "s1", "new", _new("b"), 6)
    j.commit()
    assert seq2 is not None
    j.request_done(seq2)
    j.commit()
    assert _rows(path, "SELECT seq, done FROM requests") == [(1, 1), (2, 1)]
    j.close()


def test_journal_reads_see_rows_not_yet_committed(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path / "j.db")
    req = _new("a")
    key = request_key(req, "new")
    j.add_request(key, "s1", "new", req, 5)
    assert j.has_request(key)
    assert j.add_request(key, "s1", "new", req, 5) is None  # the same key in the transaction
    assert [r.msg for r in j.pending_requests()] == [req]
    j.add_report("s1", CancelOrderAck(cl_id="a"), 5)
    assert [r.msg for r in j.reports()] == [CancelOrderAck(cl_id="a")]
    assert j.last_report_seq() == 1
    j.save_order("s1", "a", {"v": 1})
    assert j.has_order("s1", "a") and j.orders() == [{"v": 1}]
    j.drop_order("s1", "a")
    assert not j.has_order("s1", "a")
    j.commit()
    assert j.orders() == []
    j.save_account("s1", {"w": 1})
    assert j.accounts() == {"s1": {"w": 1}}
    j.close()


def test_journal_repeated_execution_is_refused_at_once_and_sequence_numbers_stay_in_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    j = OrderJournal(path)
    assert j.add_report("s1", CancelOrderAck(cl_id="a"), 1) == 1  # waits for the commit
    assert j.add_report("s1", _fill("a", "x1"), 1) == 2  # written at once
    assert j.add_report("s1", _fill("a", "x1"), 1) is None  # the same execution id
    cancelled = OrderCancelled(cl_id="a", unsolicited=False, engine_ts=1, cancel_code=CancelCode(1))
    assert j.add_report("s1", cancelled, 1) == 3
    j.commit()
    assert _rows(path, "SELECT seq, kind FROM reports ORDER BY seq") == [
        (1, "CancelOrderAck"),
        (2, "OrderExecution"),
        (3, "OrderCancelled"),
    ]
    assert j.exec_ids() == {"x1"}
    j.close()


def test_journal_sequence_numbers_continue_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = OrderJournal(path)
    for i in range(3):
        j.add_request(request_key(_new(f"o{i}"), "new"), "s1", "new", _new(f"o{i}"), i)
        j.add_report("s1", CancelOrderAck(cl_id=f"o{i}"), i)
    j.close()
    j = OrderJournal(path)
    assert j.add_request(request_key(_new("z"), "new"), "s1", "new", _new("z"), 9) == 4
    assert j.add_report("s1", CancelOrderAck(cl_id="z"), 9) == 4
    assert j.last_report_seq() == 4
    j.close()


def test_request_key_leads_with_the_send_time_and_names_the_exact_bytes() -> None:
    a, b = _new("a", ts=0x1234), _new("a", ts=0x1235)
    assert request_key(a, "new").startswith("0000000000001234:new:")
    assert request_key(a, "new") == request_key(a, "new", encode(a))
    assert request_key(a, "new") != request_key(b, "new")
    assert request_key(a, "new") < request_key(b, "new")  # keys grow with the send time
    assert legacy_request_key(a, "new") == f"new:{hashlib.sha256(encode(a)).hexdigest()}"


def test_gateway_restarted_drops_a_redelivery_journaled_under_the_older_key(tmp_path: Path):
    """A journal written before the send time led the key still recognises its requests."""
    db = tmp_path / "sim.db"
    a = Rig(db)
    a.md(book(1, bids=[("100.0", "1")], asks=[("100.1", "1")]))
    order = new("o1", Side.Buy, "99.0", "0.100", ts=5)
    a.req(order)
    a.journal.close()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE requests SET req_key = ?", (legacy_request_key(order, "new"),))
    b = Rig(db, t0=T0 + 10)
    before = len(b.got)
    b.req(order)  # the broker delivers it again after the restart
    assert b.gw.duplicate_requests == 1 and len(b.got) == before


def test_journal_checkpoint_in_a_thread_while_the_journal_is_written(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = OrderJournal(path)
    stop = threading.Event()
    errors: list[BaseException] = []

    def checkpoints() -> None:
        try:
            while not stop.is_set():
                j.checkpoint()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=checkpoints)
    worker.start()
    try:
        for i in range(300):
            req = _new(f"o{i}", ts=i + 1)
            seq = j.add_request(request_key(req, "new"), "s1", "new", req, i)
            assert seq is not None
            j.add_report("s1", CancelOrderAck(cl_id=f"o{i}"), i)
            j.save_order("s1", f"o{i}", {"i": i})
            j.request_done(seq)
            j.commit()
    finally:
        stop.set()
        worker.join(30)
    assert not errors
    j.checkpoint()
    j.close()
    assert _rows(path, "SELECT COUNT(*) FROM requests WHERE done = 1") == [(300,)]
