from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlthon.basics import Price, Qty

decimals = st.decimals(
    min_value=Decimal("-1e9"),
    max_value=Decimal("1e9"),
    allow_nan=False,
    allow_infinity=False,
    places=8,
)


def test_price_repr_matches_reference_style():
    assert repr(Price("9226.5")) == "Price('9226.50000000')"
    assert repr(Qty("13952")) == "Qty('13952.00000000')"
    assert str(Price("9226.50")) == "9226.50"


@pytest.mark.parametrize("bad", [1.5, float("nan"), True])
def test_price_rejects_floats_and_bools(bad):
    with pytest.raises(TypeError):
        Price(bad)


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "abc", ""])
def test_price_rejects_non_finite_and_garbage(bad):
    with pytest.raises(ValueError):
        Price(bad)


def test_price_is_immutable():
    p = Price("1")
    with pytest.raises(AttributeError):
        p._v = Decimal(2)  # type: ignore[misc]


def test_price_and_qty_do_not_mix():
    assert Price("1") != Qty("1")
    with pytest.raises(TypeError):
        Price("1") + Qty("1")  # type: ignore[operator]
    assert Price("2") * Qty("3").value == Price("6")


@given(decimals, decimals)
def test_arithmetic_is_exact_and_keeps_the_class(a, b):
    pa, pb = Price(a), Price(b)
    assert (pa + pb).value == a + b and isinstance(pa + pb, Price)
    assert (pa - pb).value == a - b
    assert (pa * 3).value == a * 3
    assert (pa < pb) == (a < b) and (pa == pb) == (a == b)
    assert hash(Price(a)) == hash(Price(str(a)))


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_ticks_round_trip(n):
    tick = Decimal("0.10")
    p = Price.from_ticks(n, tick)
    assert p.to_ticks(tick) == n and p.is_multiple_of(tick)


def test_round_to_tick():
    assert Price("100.07").round_to(Decimal("0.05")) == Price("100.05")
    assert Qty("0.0019").round_to(Decimal("0.001"), "ROUND_DOWN") == Qty("0.001")
    with pytest.raises(ValueError):
        Price("100.07").to_ticks(Decimal("0.1"))


# --- one Price / Qty per tick / lot value (market data in ticks and lots) -----------------------
_STEPS = st.sampled_from(["0.10", "0.5", "1", "25", "0.00001", "1E-18", "1E-19"]).map(Decimal)


@given(step=_STEPS, tick=st.integers(min_value=-(10**21), max_value=10**21))
def test_tick_prices_follow_the_sanity_rule_and_make_one_object_per_tick(step, tick):
    from mlthon.basics.sanity import decimal_problem
    from mlthon.basics.values import LotQtys, TickPrices

    prices, qtys = TickPrices(step), LotQtys(step)
    for cache, rule in ((prices, {"positive": True}), (qtys, {})):
        why = decimal_problem(tick * step, **rule)
        if why is None:
            v = cache[tick]
            assert v.value == tick * step and cache[tick] is v
            assert type(v) is (Price if cache is prices else Qty)
        else:
            with pytest.raises(ValueError, match="market-data"):
                cache[tick]
            assert tick not in cache
