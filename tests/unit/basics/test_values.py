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


def test_text_values_give_what_the_class_gives_once_per_text():
    from mlthon.basics.values import TextValues

    prices = TextValues(Price)
    p = prices["60000.10"]
    assert p == Price("60000.10") and type(p) is Price and str(p) == "60000.10"
    assert prices["60000.10"] is p  # made once
    assert prices["60000.1"] == p and prices["60000.1"] is not p  # another text, its own entry
    with pytest.raises(ValueError):
        prices["NaN"]
    assert "NaN" not in prices  # a bad text is not kept
    assert TextValues(Qty)["0.002"] == Qty("0.002")


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["0.1", "0.001", "5", "1E-8"]))
def test_sim_report_texts_are_the_decimals_formatted(n, step):
    # The simulated exchange's report texts, kept per tick and lot count, are what formatting
    # the exact price or quantity gives.
    from mlthon.basics import Exchange, Instrument, InstrumentKind
    from mlthon.gateways.sim.market import MarketState

    inst = Instrument(
        instrument_id=1, name="X", exchange=Exchange.Sim, base="X", quote="USDT",
        kind=InstrumentKind.Linear, tick_size=Decimal(step), lot_size=Decimal(step),
    )  # fmt: skip
    mkt = MarketState(inst)
    assert mkt.price_texts[n] == format(mkt.price_of(n), "f")
    assert mkt.qty_texts[n] == format(mkt.qty_of(n), "f")
    assert mkt.price_texts[n] is mkt.price_texts[n]
