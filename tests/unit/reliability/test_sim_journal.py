"""The sim gateway's order journal: restart, reconciliation, re-sending and request dedupe.

A "crash" here is dropping a gateway without ``stop()`` (nothing is cancelled or flushed), which is
what a kill -9 leaves behind; the journal file is then opened again by a fresh gateway.
"""

from __future__ import annotations

import logging
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest

from mlthon.basics.mlt_enum import CancelCode, GtwRejectCode, GtwStatus, Side
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.gateways.sim.journal import OrderJournal
from mlthon.gateways.sim.latency import FixedDelay, LatencyConfig
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import (
    CancelOrder,
    FetchOrders,
    FetchPosition,
    GatewayStatus,
    NewOrderAck,
    NewOrderReject,
    OrderCancelled,
    OrderExecution,
    OrdersInfo,
    PositionInfo,
    TelegramPublish,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from tests.unit.gateways.helpers import BALANCES, LIN, SPOT, book, new, trade

MS = 1_000_000
T0 = 1_000 * MS


class Rig:
    """A journaled gateway on an in-process bus; records what s1 and Telegram receive."""

    def __init__(self, path: Path, t0: int = T0, **cfg) -> None:
        cfg.setdefault("balances", BALANCES)
        self.config = SimGatewayConfig(**cfg)
        self.sched = SimScheduler(SimClock(t0))
        self.bus = InProcBus(self.sched)
        self.topics = Topics("t")
        self.journal = OrderJournal(path)
        self.gw = SimGateway(
            self.bus, self.sched, self.topics, self.config, [LIN, SPOT], journal=self.journal
        )
        self.got: list[object] = []
        self.tg: list[TelegramPublish] = []
        self.status: list[GatewayStatus] = []
        ex = self.config.exchange
        self.bus.subscribe(self.topics.gtw_rpt(ex, "s1"), lambda _t, m: self.got.append(m))
        self.bus.subscribe(self.topics.telegram("s1"), lambda _t, m: self.tg.append(m))
        self.bus.subscribe(self.topics.gtw_status(ex), lambda _t, m: self.status.append(m))
        self.gw.start()
        self.sched.run_until(t0)

    def md(self, msg) -> None:
        self.bus.publish(self.topics.md(self.config.exchange, msg.iid), msg)
        self.sched.run_until(self.sched.now_ns())

    def req(self, msg) -> None:
        self.bus.publish(self.topics.gtw_req(self.config.exchange, msg.strat), msg)
        self.sched.run_until(self.sched.now_ns())

    def msgs(self, cls):
        return [m for m in self.got if isinstance(m, cls)]


def _trade_some(rig: Rig) -> None:
    """A resting buy (open), a taker buy filled 0.300 in two executions."""
    rig.md(book(1, bids=[("100.0", "1")], asks=[("100.1", "0.2"), ("100.2", "5")]))
    rig.req(new("rest", Side.Buy, "99.0", "0.100", ts=1))
    rig.req(new("take", Side.Buy, "100.2", "0.300", ts=2))


def test_journal_restart_restores_open_orders_positions_and_ids(tmp_path):
    db = tmp_path / "sim.db"
    a = Rig(db)
    _trade_some(a)
    fills_a = a.msgs(OrderExecution)
    assert [f.fill_qty for f in fills_a] == ["0.200", "0.100"]
    # kill -9: no stop(), nothing cancelled
    b = Rig(db, t0=T0 + 10 * MS)
    rec = b.gw.reconciliation
    assert rec is not None and rec.clean, rec.differences
    assert rec.open_orders == {"s1": ["rest"]}
    assert rec.fills == 2
    b.req(FetchOrders(strat="s1"))
    assert [o.cl_id for o in b.msgs(OrdersInfo)[-1].orders] == ["rest"]
    b.req(FetchPosition(strat="s1", instrument_id=1))
    assert D(b.msgs(PositionInfo)[-1].position) == D("0.3")
    # a client id stays used across the restart
    b.req(new("take", Side.Buy, "100.2", "0.100", ts=3))
    assert b.msgs(NewOrderReject)[-1].code is GtwRejectCode.DuplicateClientId
    # the restored order still fills, with an execution id never used before
    b.md(book(1, bids=[("99.0", "0.5")]))
    b.md(trade(1, Side.Sell, "98.5", "1"))
    fill = b.msgs(OrderExecution)[-1]
    assert fill.cl_id == "rest"
    assert fill.exec_id not in {f.exec_id for f in fills_a}


def test_journal_restart_publishes_unsent_reports_again(tmp_path):
    db = tmp_path / "sim.db"
    a = Rig(db)
    _trade_some(a)
    a.journal.mark_sent(2)  # the broker acknowledged the first two reports only
    sent = list(a.got)
    b = Rig(db, t0=T0 + 10 * MS)
    assert b.got[: len(sent) - 2] == sent[2:]
    rec = b.gw.reconciliation
    assert rec is not None and len(rec.unsent) == len(sent) - 2


def test_repeated_request_is_dropped_even_after_restart(tmp_path):
    db = tmp_path / "sim.db"
    a = Rig(db)
    a.md(book(1, bids=[("100.0", "1")], asks=[("100.1", "1")]))
    order = new("o1", Side.Buy, "99.0", "0.100", ts=5)
    a.req(order)
    a.req(order)  # QoS 1 redelivery: same bytes
    assert len(a.msgs(NewOrderAck)) == 1
    assert a.gw.duplicate_requests == 1
    a.journal.mark_sent(a.gw.published_seq)
    b = Rig(db, t0=T0 + 10 * MS)
    b.req(order)
    assert b.got == []
    assert b.gw.duplicate_requests == 1


def test_request_arrived_but_not_handled_is_answered_on_restart(tmp_path):
    db = tmp_path / "sim.db"
    lat = LatencyConfig(entry={"default": FixedDelay(5 * MS)})
    a = Rig(db, latency=lat)
    a.bus.publish(
        a.topics.gtw_req(a.config.exchange, "s1"), new("late", Side.Buy, "99.0", "0.1", ts=7)
    )
    a.sched.run_until(T0 + MS)  # journaled on arrival; the engine would see it at +5 ms: crash
    assert a.got == []
    b = Rig(db, t0=T0 + 10 * MS)
    rej = b.msgs(NewOrderReject)
    assert [(r.cl_id, r.code) for r in rej] == [("late", GtwRejectCode.GtwNotReady)]
    assert "restarted" in rej[0].reason


def test_reconciliation_reported_on_status_and_telegram(tmp_path):
    db = tmp_path / "sim.db"
    a = Rig(db)
    _trade_some(a)
    b = Rig(db, t0=T0 + 10 * MS)
    assert any("reconciled" in s.detail for s in b.status)
    assert b.status[-1].status is GtwStatus.ReadyToTrade
    assert len(b.tg) == 1 and b.tg[0].priority == 0
    assert "open orders of s1: rest" in b.tg[0].text


def test_reconciliation_mismatch_is_an_error_and_reported(tmp_path, caplog):
    db = tmp_path / "sim.db"
    a = Rig(db)
    _trade_some(a)
    with sqlite3.connect(db) as con:  # somebody edited the exchange state
        con.execute("DELETE FROM accounts")
    with caplog.at_level(logging.ERROR):
        b = Rig(db, t0=T0 + 10 * MS)
    rec = b.gw.reconciliation
    assert rec is not None and not rec.clean
    assert any("sum of journaled fills 0.3" in d for d in rec.differences)
    assert any("DIFFERENCE" in r.getMessage() for r in caplog.records)
    assert "DIFFERENCE" in b.tg[0].text


def test_requests_refused_until_ready_after_restart(tmp_path):
    db = tmp_path / "sim.db"
    a = Rig(db)
    _trade_some(a)
    b = Rig(db, t0=T0 + 10 * MS, connect_delay_ns=5 * MS)
    b.req(CancelOrder(strat="s1", cl_id="rest", instrument_id=1, ts=9))
    assert b.got[-1].code is GtwRejectCode.GtwNotReady
    b.sched.run_until(T0 + 20 * MS)
    b.req(CancelOrder(strat="s1", cl_id="rest", instrument_id=1, ts=10))
    assert b.msgs(OrderCancelled)[-1].cancel_code is CancelCode.CanceledByUser


def test_clean_stop_cancels_and_journals_the_cancels(tmp_path):
    db = tmp_path / "sim.db"
    a = Rig(db)
    _trade_some(a)
    a.gw.stop()
    b = Rig(db, t0=T0 + 10 * MS)
    rec = b.gw.reconciliation
    assert rec is not None and rec.clean and rec.open_orders == {}


def test_execution_id_is_journaled_once(tmp_path):
    j = OrderJournal(tmp_path / "j.db")
    fill = OrderExecution(
        cl_id="a",
        exec_id="x1",
        instrument_id=1,
        side=Side.Buy,
        price="1",
        fill_qty="1",
        leaves_qty="0",
        exec_ts=1,
        fee="0",
        fee_coin="USDT",
        maker=False,
    )
    assert j.add_report("s1", fill, 1) == 1
    assert j.add_report("s1", fill, 1) is None
    j.commit()
    assert [r.msg for r in j.reports()] == [fill]
    j.close()


def test_journal_of_another_schema_is_refused(tmp_path):
    from mlthon.basics.errors import ConfigError

    db = tmp_path / "j.db"
    j = OrderJournal(db)
    j.set_meta("schema", "99")
    j.close()
    with pytest.raises(ConfigError, match="schema 99"):
        OrderJournal(db)
