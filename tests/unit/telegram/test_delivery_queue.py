"""The pure delivery core: lanes, pacing, splitting, coalescing, bounds, marks."""

from __future__ import annotations

import attrs

from mlthon.infra.telegram.config import DeliveryConfig
from mlthon.infra.telegram.delivery import DeliveryQueue, format_delay, split_text

S = 1_000_000_000


def queue(**over: object) -> DeliveryQueue:
    return DeliveryQueue(attrs.evolve(DeliveryConfig(), **over))  # type: ignore[arg-type]


def drain(q: DeliveryQueue, now: int) -> list[str]:
    out: list[str] = []
    while True:
        msg, _ = q.next_ready(now)
        if msg is None:
            return out
        out.append(msg.text)


def test_next_ready_lanes_in_priority_order_fifo_within() -> None:
    q = queue(per_chat_interval_s=0.0, global_rate_per_s=1e9)
    for text, prio in [("s1", 2), ("f1", 1), ("e1", 0), ("s2", 2), ("e2", 0)]:
        q.put(1, text, prio, 0)
    assert drain(q, 0) == ["e1", "e2", "f1", "s1", "s2"]


def test_pacing_per_chat_lets_other_chats_go_first() -> None:
    q = queue(per_chat_interval_s=1.0, global_rate_per_s=1e9)
    q.put(1, "a1", 0, 0)
    q.put(1, "a2", 0, 0)
    q.put(2, "b1", 2, 0)
    msg, _ = q.next_ready(0)
    assert msg is not None
    q.sent(msg, 0)
    msg2, _ = q.next_ready(1)
    assert msg2 is not None
    assert msg2.text == "b1"  # chat 1 must wait; chat 2 may go
    q.sent(msg2, 1)
    assert q.next_ready(2) == (None, S - 2)
    msg3, _ = q.next_ready(S)
    assert msg3 is not None
    assert msg3.text == "a2"


def test_groups_have_their_own_interval() -> None:
    q = queue(per_chat_interval_s=1.0, per_group_interval_s=3.0, global_rate_per_s=1e9)
    q.put(-100, "g1", 0, 0)
    q.put(-100, "g2", 0, 0)
    msg, _ = q.next_ready(0)
    assert msg is not None
    q.sent(msg, 0)
    assert q.next_ready(1) == (None, 3 * S - 1)


def test_global_rate_spaces_all_sends() -> None:
    q = queue(per_chat_interval_s=0.0, global_rate_per_s=30.0)
    q.put(1, "a", 2, 0)
    q.put(2, "b", 2, 0)
    msg, _ = q.next_ready(0)
    assert msg is not None
    q.sent(msg, 0)
    none, wait = q.next_ready(0)
    assert none is None
    assert wait == S // 30


def test_pause_holds_everything_until_it_ends() -> None:
    q = queue(per_chat_interval_s=0.0)
    q.put(1, "a", 0, 0)
    q.pause(14 * S)
    assert q.next_ready(S) == (None, 13 * S)
    msg, _ = q.next_ready(14 * S)
    assert msg is not None


def test_repeats_coalesce_while_waiting_and_render_the_count() -> None:
    q = queue()
    for _ in range(5):
        q.put(1, "spread too wide", 2, 0)
    q.put(1, "spread too wide", 1, 0)  # another lane is another message
    assert len(q) == 2
    msg, _ = q.next_ready(0)
    assert msg is not None
    assert q.render(msg, 0) == "spread too wide"
    msg, _ = q.next_ready(0)
    assert msg is not None
    assert q.render(msg, 0) == "spread too wide (\u00d75)"


def test_requeue_folds_a_newer_identical_message() -> None:
    q = queue()
    q.put(1, "x", 2, 0)
    msg, _ = q.next_ready(0)
    assert msg is not None
    q.put(1, "x", 2, 1)
    q.put(1, "x", 2, 2)
    q.requeue(msg)
    assert len(q) == 1
    assert msg.count == 3
    assert msg.queued_ns == 0


def test_bound_drops_oldest_of_the_lowest_lane_first() -> None:
    q = queue(max_pending=3)
    q.put(1, "kill", 0, 0)
    q.put(1, "fill", 1, 0)
    q.put(1, "s1", 2, 0)
    dropped = q.put(1, "s2", 2, 0)
    assert [m.text for m in dropped] == ["s1"]
    dropped = q.put(1, "kill2", 0, 0)
    assert [m.text for m in dropped] == ["s2"]
    dropped = q.put(1, "kill3", 0, 0)
    assert [m.text for m in dropped] == ["fill"]
    assert q.dropped == [0, 1, 2]
    assert drain(q, 0) == ["kill", "kill2", "kill3"]


def test_unbounded_put_keeps_everything() -> None:
    q = queue(max_pending=1)
    q.put(1, "a", 2, 0)
    assert q.put(1, "notice", 0, 0, bounded=False) == []
    assert len(q) == 2


def test_delay_mark_after_the_threshold() -> None:
    q = queue(delay_mark_after_s=10.0)
    q.put(1, "late", 1, 0)
    msg, _ = q.next_ready(0)
    assert msg is not None
    assert q.render(msg, 9 * S) == "late"
    assert q.render(msg, 312 * S) == "(delayed 5m12s) late"


def test_split_text_keeps_every_part_under_the_limit_and_labels_them() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 50 for i in range(200))
    parts = split_text(text, 1000)
    assert len(parts) > 1
    assert all(len(p) <= 1000 for p in parts)
    assert parts[0].startswith(f"(1/{len(parts)}) line 0000")
    body = "\n".join(p.split(" ", 1)[1] for p in parts)
    assert body == text


def test_split_text_cuts_a_text_without_spaces() -> None:
    parts = split_text("y" * 2500, 1000)
    assert all(len(p) <= 1000 for p in parts)
    assert "".join(p.split(" ", 1)[1] for p in parts) == "y" * 2500


def test_short_text_is_not_split() -> None:
    assert split_text("hello", 4096) == ["hello"]


def test_format_delay() -> None:
    assert format_delay(3 * S) == "3s"
    assert format_delay(312 * S) == "5m12s"
    assert format_delay(7380 * S) == "2h03m"
