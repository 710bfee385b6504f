"""Bad values are refused at the gateway's door, and every request gets exactly one answer
(issue 16, item 1): ``GatewayBase._dispatch`` answers a request whose values decode but make no
sense with its reject (``InvalidRequest``, the field named); the simulated exchange's own parsers
never raise on a value; an exception while handling a request (a bug) still answers it."""

from __future__ import annotations

import logging
from decimal import Decimal
from unittest import mock

import attrs
import pytest

from mlthon.basics.mlt_enum import GtwRejectCode, Side
from mlthon.gateways.sim.matching import MatchingEngine
from mlthon.infra.bus.messages import (
    BookUpdate,
    CancelOrder,
    CancelOrderReject,
    FetchWallet,
    ModifyOrder,
    ModifyOrderReject,
    NewOrderAck,
    NewOrderReject,
    OrderExecution,
    RequestReject,
)
from tests.unit.gateways.helpers import LIN, Recorder, book, new
from tests.unit.gateways.test_sim_gateway import MS, T0, Rig


def _rig() -> Rig:
    rig = Rig()
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "1.000")]), T0 + MS)
    return rig


@pytest.mark.parametrize(
    ("price", "qty", "field", "why"),
    [
        ("99.0", "1e30", "NewOrder.qty", "out of range"),
        ("99.0", "1e-30", "NewOrder.qty", "decimals"),
        ("99.0", "NaN", "NewOrder.qty", "not finite"),
        ("99.0", "-1", "NewOrder.qty", "> 0"),
        ("NaN", "0.100", "NewOrder.price", "not finite"),
        ("Infinity", "0.100", "NewOrder.price", "not finite"),
        ("1E+400", "0.100", "NewOrder.price", "out of range"),
        ("9" * 5000, "0.100", "NewOrder.price", "characters long"),
    ],
    ids=["qty-1e30", "qty-1e-30", "qty-nan", "qty-neg", "px-nan", "px-inf", "px-1e400", "px-5kB"],
)
def test_new_order_insane_value_rejected_invalid_request_naming_the_field(price, qty, field, why):
    rig = _rig()
    rig.req(new("bad", Side.Buy, price, qty))
    (rej,) = rig.msgs()
    assert isinstance(rej, NewOrderReject) and rej.code is GtwRejectCode.InvalidRequest
    assert rej.reason.startswith(field) and why in rej.reason
    assert rig.gw.engine.order("s1", "bad") is None
    assert rig.bus.handler_errors == 0 and rig.gw.invalid_requests == 1


@pytest.mark.parametrize(
    ("cl_id", "why"),
    [("", "is empty"), ("x" * 10_000, "10000 characters"), ("a.b", "may hold only")],
    ids=["empty", "10kB", "dot"],
)
def test_new_order_insane_client_id_rejected_not_acked(cl_id, why):
    rig = _rig()
    rig.req(new(cl_id, Side.Buy, "100.1", "0.100"))  # would fill at once
    (rej,) = rig.msgs()
    assert isinstance(rej, NewOrderReject) and rej.code is GtwRejectCode.InvalidRequest
    assert rej.reason.startswith("NewOrder.cl_id") and why in rej.reason
    assert not rig.msgs(NewOrderAck) and not rig.msgs(OrderExecution)


def test_modify_cancel_and_fetch_with_insane_values_each_answered_once():
    rig = _rig()
    rig.req(new("o1", Side.Buy, "99.0", "0.100"))
    rig.req(ModifyOrder(strat="s1", cl_id="o1", new_price="NaN"))
    rig.req(ModifyOrder(strat="s1", cl_id="o1", new_qty="1e30"))
    rig.req(CancelOrder(strat="s1", cl_id="1" * 71, instrument_id=1))  # client_id=10**70
    rig.req(FetchWallet(strat="s1", coin="", req_id="r1"))
    assert rig.names() == [
        "NewOrderAck",
        "ModifyOrderReject",
        "ModifyOrderReject",
        "CancelOrderReject",
        "RequestReject",
    ]
    m1, m2 = rig.msgs(ModifyOrderReject)
    assert "ModifyOrder.new_price" in m1.reason and "ModifyOrder.new_qty" in m2.reason
    (c,) = rig.msgs(CancelOrderReject)
    assert c.code is GtwRejectCode.InvalidRequest and "71 characters" in c.reason
    (f,) = rig.msgs(RequestReject)
    assert f.req_id == "r1" and "FetchWallet.coin" in f.detail


def test_values_beyond_decimal_precision_on_a_tiny_grid_are_rejects_not_tracebacks():
    # 1e14 lots (ticks) of 1e-18: more digits than Decimal's context holds (DivisionImpossible)
    tiny = attrs.evolve(LIN, tick_size="1e-18", lot_size="1e-18", min_qty="0", min_notional="0")
    rec = Recorder()
    eng = MatchingEngine([tiny], rec, balances={"USDT": Decimal("1e14")})
    eng.new_order(new("q", Side.Buy, "100", "99999999999999"), 1)
    eng.new_order(new("p", Side.Buy, "99999999999999", "1"), 1)
    q, p = rec.msgs()
    assert isinstance(q, NewOrderReject) and q.code is GtwRejectCode.InvalidQty
    assert "out of range for the lot" in q.reason
    assert isinstance(p, NewOrderReject) and p.code is GtwRejectCode.InvalidPrice
    assert "out of range for the tick" in p.reason


@pytest.mark.parametrize(
    "change",
    [(0, 1, -5, 1000), (0, 1, 0, 1000), (0, 1, 1000, -1), (0, 3, 1000, 1), (0, 1, 2**70, 1)],
)
def test_insane_book_level_skipped_without_an_exception(change):
    rig = _rig()
    rig.md(BookUpdate(ex=1, iid=1, ts=T0 + 2 * MS, ch=[(0, 1, 1000, 5), change]))
    assert rig.bus.handler_errors == 0
    mkt = rig.gw.engine.market(1)
    assert (mkt.best_bid(), mkt.visible(1, 1000)) == (1000, 1000)  # the message was not applied


def test_engine_fault_answers_the_request_exchange_error_once(caplog):
    rig = _rig()
    caplog.set_level(logging.ERROR)
    with mock.patch.object(rig.gw.engine, "new_order", side_effect=RuntimeError("boom")):
        rig.req(new("f1", Side.Buy, "99.0", "0.100"))
        rig.req(new("f2", Side.Buy, "99.0", "0.100"))
    r1, r2 = rig.msgs(NewOrderReject)
    assert (r1.cl_id, r2.cl_id) == ("f1", "f2")
    assert r1.code is GtwRejectCode.ExchangeError and "RuntimeError: boom" in r1.reason
    assert rig.gw.faults == 2 and rig.bus.handler_errors == 0
    assert sum("Traceback" in (r.exc_text or "") for r in caplog.records) <= 1
    rig.req(new("ok", Side.Buy, "99.0", "0.100"))  # the gateway keeps working
    assert rig.names()[-1] == "NewOrderAck"


def test_engine_fault_after_the_ack_adds_no_second_answer():
    rig = _rig()
    with mock.patch.object(rig.gw.engine, "_execute", side_effect=RuntimeError("after the ack")):
        rig.req(new("f1", Side.Buy, "99.0", "0.100"))
    assert rig.names() == ["NewOrderAck"] and rig.gw.faults == 1


def test_fault_in_an_on_method_answered_by_the_base_exchange_error():
    rig = _rig()
    with mock.patch.object(rig.gw, "_arrive", side_effect=KeyError("oops")):
        rig.req(CancelOrder(strat="s1", cl_id="c1", instrument_id=1))
    (rej,) = rig.msgs()
    assert isinstance(rej, CancelOrderReject) and rej.code is GtwRejectCode.ExchangeError
    assert "KeyError" in rej.reason and rig.bus.handler_errors == 0


def test_journaled_request_whose_handling_raised_is_answered_and_marked_handled(tmp_path):
    from tests.unit.reliability.test_sim_journal import Rig as JournaledRig

    rig = JournaledRig(tmp_path / "sim.db", request_ttl_ns=0)
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "1.000")]))
    with mock.patch.object(rig.gw, "_arrive", side_effect=RuntimeError("bug")):
        rig.req(new("j1", Side.Buy, "99.0", "0.100", ts=5))
    rig.sched.run_until(rig.sched.now_ns())  # the group commit of this turn
    (rej,) = rig.msgs(NewOrderReject)
    assert rej.code is GtwRejectCode.ExchangeError and rig.gw.faults == 1
    assert rig.journal.pending_requests() == []  # not answered again after a restart
    assert [r.msg for r in rig.journal.reports()] == [rej]
