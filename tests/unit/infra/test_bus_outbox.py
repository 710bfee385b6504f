"""The MQTT bus's one outbox: a QoS 1 message leaves only when acknowledged; after a lost
connection the unacknowledged ones go first, in order."""

from __future__ import annotations

import pytest

from mlthon.infra.bus.outbox import PUB, SUB, Entry, Outbox


class Receipt:
    """Stands for the link's Receipt."""

    def __init__(self) -> None:
        self.acked = False

    def is_published(self) -> bool:
        return self.acked


def _pub(i: int, qos: int = 1, retain: bool = False) -> Entry:
    return Entry(PUB, f"t/{i}", str(i).encode(), qos, retain)


def _send_all(ob: Outbox) -> list[tuple[Entry, Receipt]]:
    """Hand the queue to a 'connection' as far as the window allows."""
    out = []
    while ob.queue and not (ob.queue[0].qos and ob.window_full):
        entry = ob.queue[0]
        receipt = Receipt()
        ob.sent(entry, receipt if entry.qos else None)
        out.append((entry, receipt))
    return out


def _topics(entries) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.topic for e in entries]


def test_outbox_qos1_message_leaves_only_after_its_ack():
    ob = Outbox()
    ob.put(_pub(1))
    [(entry, receipt)] = _send_all(ob)
    assert len(ob) == 1 and entry.pending
    assert ob.take_acked() == 0 and len(ob) == 1
    receipt.acked = True
    assert ob.take_acked() == 1
    assert len(ob) == 0 and not entry.pending


def test_outbox_qos0_message_leaves_when_handed_over():
    ob = Outbox()
    ob.put(_pub(1, qos=0))
    [(entry, _)] = _send_all(ob)
    assert len(ob) == 0 and not entry.pending


def test_outbox_rewind_sends_unacked_first_in_order_and_drops_qos0():
    ob = Outbox()
    for i in range(6):
        ob.put(_pub(i))
    sent = _send_all(ob)
    sent[0][1].acked = True
    sent[2][1].acked = True  # acknowledged behind an unacknowledged one: not sent again
    ob.take_acked()
    ob.put(_pub(6))
    ob.put(_pub(7, qos=0))  # QoS 0, not retained: not kept across a lost connection
    ob.put(_pub(8, qos=0, retain=True))
    ob.put(Entry(SUB, "t/#", b"", 1))  # the bus subscribes to everything on connect
    qos0, dropped = ob.rewind()
    assert (qos0, dropped) == (1, 0)
    assert _topics(ob.queue) == ["t/1", "t/3", "t/4", "t/5", "t/6", "t/8"]
    assert not ob.inflight
    assert sent[2][0].pending is False and sent[2][0].delivery is None


def test_outbox_window_holds_back_the_rest():
    ob = Outbox(max_inflight=2)
    for i in range(4):
        ob.put(_pub(i))
    sent = _send_all(ob)
    assert len(sent) == 2 and ob.window_full and len(ob.queue) == 2
    for _, receipt in sent:
        receipt.acked = True
    assert ob.take_acked() == 2 and not ob.window_full
    assert _topics(e for e, _ in _send_all(ob)) == ["t/2", "t/3"]


def test_outbox_bound_drops_the_oldest_and_counts():
    ob = Outbox(bound=3)
    entries = [_pub(i) for i in range(5)]
    for e in entries:
        ob.put(e)
    assert _topics(ob.queue) == ["t/2", "t/3", "t/4"] and ob.dropped == 2
    assert not entries[0].pending and entries[4].pending


def test_outbox_bound_applies_after_rewind():
    ob = Outbox(bound=3, max_inflight=10)
    for i in range(3):
        ob.put(_pub(i))
    _send_all(ob)
    for i in range(3, 6):
        ob.put(_pub(i))
    assert ob.rewind() == (0, 3)
    assert _topics(ob.queue) == ["t/3", "t/4", "t/5"]


def test_outbox_rejects_a_silly_bound():
    with pytest.raises(ValueError, match="bound"):
        Outbox(bound=0)


def test_outbox_message_sent_at_once_waits_for_its_ack_and_goes_again_after_a_loss():
    """A QoS 1 publish handed to the connection without queueing (the bus's fast path) is in
    flight like any other: it leaves at its PUBACK, and goes back first after a lost link."""
    ob = Outbox()
    first, r1 = _pub(1), Receipt()
    ob.sent_at_once(first, r1)
    ob.put(_pub(2))
    assert len(ob) == 2 and first.pending
    qos0, dropped = ob.rewind()
    assert (qos0, dropped) == (0, 0)
    assert _topics(ob.queue) == ["t/1", "t/2"]
    [(again, r2), _] = _send_all(ob)
    assert again is first
    r2.acked = True
    assert ob.take_acked() == 1 and not first.pending
