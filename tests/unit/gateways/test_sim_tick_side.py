"""The sim's displayed-book side (dict plus lazy heap) against a sorted reference model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.gateways.sim.market import TickSide

ops = st.lists(
    st.tuples(st.sampled_from(["set", "take", "del"]), st.integers(90, 110), st.integers(0, 5)),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(is_bid=st.booleans(), seq=ops)
def test_best_worst_and_order_follow_a_sorted_model(is_bid, seq):
    side = TickSide(is_bid)
    model: dict[int, int] = {}
    for op, tick, lots in seq:
        if op == "set":
            side.set_level(tick, lots)
            if lots > 0:
                model[tick] = lots
            else:
                model.pop(tick, None)
        elif op == "take" and tick in model:
            # the matching engine's hot path: existing ticks change in place or go
            left = model[tick] - lots
            if left > 0:
                side[tick] = model[tick] = left
            else:
                del side[tick]
                del model[tick]
        elif op == "del" and tick in model:
            del side[tick]
            del model[tick]
        ordered = sorted(model, reverse=is_bid)
        assert side.best() == (ordered[0] if ordered else None)
        assert side.worst() == (ordered[-1] if ordered else None)
        assert side.best_first() == ordered
        assert side.best_first(100) == [t for t in ordered if (t >= 100 if is_bid else t <= 100)]
        assert dict(side) == model
    # stale heap entries stay bounded
    assert len(side.heap) <= 2 * len(side) + 65
