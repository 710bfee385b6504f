"""Local rate budgets (:mod:`mlthon.gateways.live.budget`): one token-bucket implementation for
both venues, defaults from the venues' documentation, the venue's count taken when higher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlthon.gateways.binance_usdm import parse as binance
from mlthon.gateways.bybit_v5 import parse as bybit
from mlthon.gateways.live.budget import Budget, BudgetExhausted, RateBudgets, TokenBucket
from tests.unit.reliability.fuzzing import FUZZ

S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 1_000 * S

    def __call__(self) -> int:
        return self.t


def test_budgets_default_to_the_venues_documented_limits():
    b = {x.name: (x.limit, x.window_s) for x in binance.BUDGETS}
    assert b == {"weight-1m": (2400, 60.0), "orders-1m": (1200, 60.0), "orders-10s": (300, 10.0)}
    y = {x.name: (x.limit, x.window_s) for x in bybit.BUDGETS}
    assert y["ip-5s"] == (600, 5.0)
    assert y["order-create"] == y["order-amend"] == y["order-cancel"] == (10, 1.0)
    assert y["order-realtime"] == y["execution-list"] == (50, 1.0)


def test_request_costs_per_venue():
    assert binance.request_costs("POST", "/fapi/v1/order", "") == {
        "weight-1m": 1,
        "orders-1m": 1,
        "orders-10s": 1,
    }
    assert binance.request_costs("DELETE", "/fapi/v1/order", "") == {"weight-1m": 1}
    assert binance.request_costs("GET", "/fapi/v1/openOrders", "timestamp=1") == {"weight-1m": 40}
    assert binance.request_costs("GET", "/fapi/v2/balance", "") == {"weight-1m": 5}
    assert bybit.request_costs("POST", "/v5/order/create", "") == {"ip-5s": 1, "order-create": 1}
    assert bybit.request_costs("GET", "/v5/user/query-api", "") == {"ip-5s": 1}


def test_bucket_refuses_the_request_the_venue_would_and_names_the_budget():
    clock = Clock()
    budgets = RateBudgets([Budget("orders-10s", 3, 10.0, "orders", "per account")], clock)
    for _ in range(3):
        budgets.take({"orders-10s": 1})
        clock.t += S // 10
    with pytest.raises(BudgetExhausted) as info:
        budgets.take({"orders-10s": 1})
    exc = info.value
    assert exc.budget.name == "orders-10s"
    assert "orders-10s (3 orders per 10 s per account)" in exc.reason
    assert abs(exc.retry_after_s - 9.7) < 1e-6  # the first token comes back at 10 s
    clock.t += int(9.7 * S)
    budgets.take({"orders-10s": 1})  # one token back
    assert budgets.refused == 1


def test_take_is_all_or_nothing_across_budgets():
    clock = Clock()
    budgets = RateBudgets([Budget("a", 5, 1.0), Budget("b", 1, 1.0)], clock)
    budgets.take({"a": 1, "b": 1})
    with pytest.raises(BudgetExhausted) as info:
        budgets.take({"a": 1, "b": 1})
    assert info.value.budget.name == "b"
    assert budgets.buckets["a"].available(clock.t) == 4  # nothing taken from a


def test_zero_limit_is_not_enforced_and_config_pins_over_the_venues_word():
    clock = Clock()
    budgets = RateBudgets.from_config(
        binance.BUDGETS, {"orders-10s": 0, "weight-1m": 100}, clock, "x.toml"
    )
    for _ in range(1000):
        budgets.take({"orders-10s": 1})
    budgets.set_limit("weight-1m", 6000)  # exchangeInfo: the configuration wins
    assert budgets.budget("weight-1m").limit == 100
    budgets.set_limit("orders-1m", 50)
    assert budgets.budget("orders-1m").limit == 50


def test_the_venues_higher_count_is_taken():
    clock = Clock()
    budgets = RateBudgets([Budget("weight-1m", 100, 60.0, "weight")], clock)
    budgets.take({"weight-1m": 10})
    budgets.observe("weight-1m", 95)  # another process on the IP spent 85
    assert budgets.buckets["weight-1m"].available(clock.t) == 5
    budgets.observe("weight-1m", 3)  # a lower count (a window reset) changes nothing
    assert budgets.buckets["weight-1m"].available(clock.t) == 5
    clock.t += 60 * S
    assert budgets.buckets["weight-1m"].available(clock.t) == 100


@FUZZ
@given(
    st.integers(1, 20),
    st.lists(st.tuples(st.integers(0, 400), st.integers(1, 3)), min_size=1, max_size=200),
)
def test_no_window_ever_holds_more_than_the_limit(limit: int, steps: list[tuple[int, int]]):
    window_ns = S
    bucket = TokenBucket(Budget("x", limit, 1.0))
    now = 0
    spent: list[tuple[int, int]] = []
    for gap_ms, cost in steps:
        now += gap_ms * 1_000_000
        if bucket.wait_s(cost, now) == 0:
            bucket.spend(cost, now)
            spent.append((now, cost))
        # every window of one second ending now holds at most ``limit``
        assert sum(c for t, c in spent if t > now - window_ns) <= limit
    for t0, _ in spent:  # and every window starting at a spend
        assert sum(c for t, c in spent if t0 <= t < t0 + window_ns) <= limit
