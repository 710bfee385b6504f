"""The order state machine: legal transitions only, no status going back, fills before a close."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlthon.basics.mlt_enum import OrderStatus
from mlthon.basics.order_state import (
    IllegalTransition,
    OrderLifecycle,
    can_move,
    is_final,
    later_status,
)

S = OrderStatus


def test_order_state_happy_path_fills_to_the_end():
    o = OrderLifecycle.new(Decimal("3"))
    assert o.status is S.PendingNew and o.leaves == 3
    assert o.ack() is True
    assert o.ack() is False  # a repeat
    assert o.fill(Decimal("1")) is False
    assert o.status is S.PartiallyFilled and o.leaves == 2
    assert o.fill(Decimal("2")) is True
    assert o.status is S.Filled and o.leaves == 0 and not o.is_open


def test_order_state_fill_before_ack_implies_the_ack():
    o = OrderLifecycle.new(5)
    assert o.fill(2) is False
    assert o.status is S.PartiallyFilled
    assert o.ack() is False


def test_order_state_fill_on_a_cancelled_order_is_refused():
    o = OrderLifecycle.new(5)
    o.ack()
    assert o.cancel() is True
    with pytest.raises(IllegalTransition, match="closed"):
        o.fill(1)
    assert o.cancel() is False  # already final


def test_order_state_overfill_is_refused_and_changes_nothing():
    o = OrderLifecycle.new(5)
    o.ack()
    with pytest.raises(IllegalTransition, match="exceed"):
        o.fill(6)
    assert o.filled == 0 and o.status is S.New
    with pytest.raises(IllegalTransition, match="not positive"):
        o.fill(0)


def test_order_state_cancel_with_fills_in_flight_waits_for_them():
    o = OrderLifecycle.new(Decimal("10"))
    o.ack()
    # the venue's cancel answer says 4 filled; the execution reports have not come yet
    assert o.cancel(Decimal("4")) is False
    assert o.is_open and o.cancel_waits == 4
    assert o.fill(Decimal("3")) is False
    assert o.is_open
    assert o.fill(Decimal("1")) is True  # the last fill closes it
    assert o.status is S.Cancelled and o.filled == 4 and o.leaves == 0


def test_order_state_waiting_cancel_can_be_forced_closed():
    o = OrderLifecycle.new(10)
    o.ack()
    assert o.cancel(2) is False
    assert o.force_close() is True
    assert o.status is S.Cancelled
    assert o.force_close() is False


def test_order_state_reject_only_before_acceptance():
    o = OrderLifecycle.new(1)
    o.reject()
    assert o.status is S.Rejected
    with pytest.raises(IllegalTransition):
        o.ack()
    p = OrderLifecycle.new(1)
    p.ack()
    with pytest.raises(IllegalTransition):
        p.reject()


def test_order_state_stop_order_triggers_then_works():
    o = OrderLifecycle.new(2)
    o.ack(untriggered=True)
    assert o.status is S.Untriggered
    o.trigger()
    assert o.status is S.New
    o.trigger()  # no-op
    assert o.status is S.New


def test_order_state_modify_changes_size_not_below_filled():
    o = OrderLifecycle.new(5)
    o.ack()
    o.fill(2)
    o.modify(3)
    assert o.leaves == 1
    with pytest.raises(IllegalTransition, match="not above"):
        o.modify(2)


def test_later_status_never_goes_back():
    assert later_status(S.Cancelled, S.PartiallyFilled) is S.Cancelled
    assert later_status(S.PartiallyFilled, S.New) is S.PartiallyFilled
    assert later_status(S.New, S.Filled) is S.Filled
    assert later_status(S.PendingNew, S.New) is S.New


_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("ack"), st.booleans()),
        st.tuples(st.just("fill"), st.integers(-1, 6)),
        st.tuples(st.just("cancel"), st.one_of(st.none(), st.integers(0, 12))),
        st.tuples(st.just("reject"), st.none()),
        st.tuples(st.just("modify"), st.integers(0, 12)),
        st.tuples(st.just("trigger"), st.none()),
        st.tuples(st.just("force"), st.none()),
    ),
    max_size=30,
)


@given(qty=st.integers(1, 10), events=_EVENTS)
def test_order_state_any_event_sequence_keeps_the_invariants(qty, events):
    o = OrderLifecycle.new(qty)
    for name, arg in events:
        before = o.status
        try:
            if name == "ack":
                o.ack(untriggered=bool(arg))
            elif name == "fill":
                o.fill(arg)
            elif name == "cancel":
                o.cancel(arg)
            elif name == "reject":
                o.reject()
            elif name == "modify":
                o.modify(arg)
            elif name == "trigger":
                o.trigger()
            else:
                o.force_close()
        except IllegalTransition:
            assert o.status is before  # a refused event changes nothing visible
        assert o.status is before or can_move(before, o.status)
        if is_final(before):
            assert o.status is before
        assert 0 <= o.filled <= o.qty
        assert o.leaves == (0 if is_final(o.status) else o.qty - o.filled)
        if o.status is S.Filled:
            assert o.filled == o.qty
