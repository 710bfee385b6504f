"""The statistics against small cases worked out by hand (mlthon.app.stats)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from mlthon.app import stats as st
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind

S = 1_000_000_000
MIN = 60 * S
T0 = 1_723_075_200 * S  # 2024-08-08 00:00:00 UTC
D = Decimal

LINEAR = Instrument(
    9001, "SIMUSDT", Exchange.Sim, "SIM", "USDT", InstrumentKind.Linear, "0.1", "0.001"
)
INVERSE = Instrument(
    9101,
    "BTCUSD",
    Exchange.Sim,
    "BTC",
    "USD",
    InstrumentKind.Inverse,
    "0.5",
    "1",
    contract_multiplier="100",
)
INSTS = {i.instrument_id: i for i in (LINEAR, INVERSE)}


def fill(ts_s, side, price, qty, fee="0", *, maker=False, iid=9001, cl="c", mid=None, recv_s=None):
    return st.Fill(
        ts=T0 + int(ts_s * S),
        recv_ts=T0 + int((recv_s if recv_s is not None else ts_s) * S),
        cl_id=cl,
        instrument_id=iid,
        buy=side == "buy",
        price=D(price),
        qty=D(qty),
        fee=D(fee),
        maker=maker,
        mid=None if mid is None else D(mid),
    )


def minute_curve(changes):
    """An equity curve sampled every 10 s whose value moves by ``changes[k]`` in minute k."""
    curve = [(T0, D(0))]
    eq = D(0)
    for k, c in enumerate(changes):
        for j in range(1, 6):
            curve.append((T0 + k * MIN + j * 10 * S, eq))
        eq += D(c)
        curve.append((T0 + (k + 1) * MIN, eq))
    return curve


def test_sharpe_of_a_known_series_matches_the_closed_form():
    # 30 one-minute returns on 1000 of capital: +0.002, 0, +0.002, 0, ...: mean 0.001, sample
    # stdev 0.001 * sqrt(30/29), so Sharpe = sqrt(29/30) * sqrt(525,600) = sqrt(508,080).
    r = st.returns_of(minute_curve(["2", "0"] * 15), D(1000), D(0))
    assert r.periods == 30 and r.period_s == 60 and r.periods_per_year == 525_600
    assert r.mean == pytest.approx(0.001)
    assert r.stdev == pytest.approx(0.001 * math.sqrt(30 / 29))
    assert r.sharpe == pytest.approx(math.sqrt(508_080))
    assert r.sortino is None  # no minute lost money
    assert r.calmar is None  # no drawdown
    assert r.total_return == pytest.approx(0.03)
    assert r.why_na == ""


def test_sortino_and_calmar_of_a_known_series():
    # +0.002, -0.001 alternating on 1000: mean 0.0005, downside sqrt((0 + 1e-6) / 2), so
    # Sortino = 0.0005 / sqrt(0.5e-6) * sqrt(525,600) = sqrt(262,800); the deepest fall is 1
    # (0.001 of capital) and the annual return 0.0005 * 525,600 = 262.8, so Calmar = 262,800.
    curve = minute_curve(["2", "-1"] * 15)
    dd = st.drawdown(curve)
    assert dd.max_amount == D(1)
    r = st.returns_of(curve, D(1000), dd.max_amount)
    assert r.sortino == pytest.approx(math.sqrt(262_800))
    assert r.annual_return == pytest.approx(262.8)
    assert r.calmar == pytest.approx(262_800)
    # mean 0.0005, deviations +-0.0015: Sharpe = (1/3) * sqrt(29/30) * sqrt(525,600)
    assert r.sharpe == pytest.approx(math.sqrt(508_080) / 3)


def test_ratios_on_a_short_window_are_na_with_the_reason():
    # 15 minutes: the run the old summary gave a Sharpe of 277 from 1-second samples.
    r = st.returns_of(minute_curve(["2", "-1", "3"] * 5), D(1000), D(1))
    assert r.periods == 15
    assert r.sharpe is None and r.sortino is None and r.calmar is None
    assert "15 whole 1 min returns; 30 are needed" in r.why_na
    assert r.total_return == pytest.approx(0.02)  # still shown


def test_ratios_without_any_change_are_na():
    r = st.returns_of(minute_curve(["0"] * 40), D(1000), D(0))
    assert r.sharpe is None and r.why_na == "the equity did not change between samples"


def test_resample_takes_the_last_value_at_or_before_each_instant():
    curve = [(0, D(0)), (30 * S, D(5)), (60 * S, D(7)), (61 * S, D(9)), (150 * S, D(1))]
    assert st.resample(curve, 60 * S) == [D(0), D(7), D(9)]


def test_drawdown_depth_times_duration_and_longest_time_under_water():
    pts = [0, 5, 2, 4, 6, 1, 3]
    curve = [(T0 + k * S, D(v)) for k, v in enumerate(pts)]
    dd = st.drawdown(curve)
    assert dd.max_amount == D(5)  # 6 -> 1
    assert dd.peak_ts == T0 + 4 * S and dd.trough_ts == T0 + 5 * S
    assert dd.recovery_ts is None  # never back to 6
    assert dd.duration_ns == 2 * S  # peak at 4 s to the end at 6 s
    assert dd.longest_ns == 3 * S  # under 5 from 1 s until 6 at 4 s


def test_drawdown_that_recovers_lasts_peak_to_recovery():
    curve = [(T0 + k * S, D(v)) for k, v in enumerate([0, 4, 1, 3, 4, 5])]
    dd = st.drawdown(curve)
    assert dd.max_amount == D(3) and dd.recovery_ts == T0 + 4 * S
    assert dd.duration_ns == 3 * S and dd.longest_ns == 3 * S


def test_round_trips_match_fills_first_in_first_out():
    fills = [
        fill(0, "buy", "100", "1", "0.1", cl="a"),
        fill(10, "buy", "101", "2", "0.2", cl="b"),
        fill(20, "sell", "103", "2", "0.4", cl="c"),
        fill(50, "sell", "99", "1", "0.1", cl="d"),
    ]
    trips, still = st.round_trips(fills, INSTS)
    assert still == []
    first, second = trips
    # a: 1 @ 100 closed by half of c @ 103: gross 3, fees 0.1 + 0.4 / 2 = 0.3
    assert (first.entry_cl_id, first.exit_cl_ids) == ("a", ("c",))
    assert (first.gross, first.fees, first.net) == (D(3), D("0.3"), D("2.7"))
    assert first.holding_ns == 20 * S and first.long
    # b: 2 @ 101, half closed by c @ 103 (+2), half by d @ 99 (-2): fees 0.2 + 0.2 + 0.1
    assert (second.entry_cl_id, second.exit_cl_ids) == ("b", ("c", "d"))
    assert (second.gross, second.fees, second.net) == (D(0), D("0.5"), D("-0.5"))
    assert second.exit_price == D(101) and second.holding_ns == 40 * S
    t = st.trip_stats(trips)
    assert (t.count, t.wins, t.losses, t.win_rate) == (2, 1, 1, 0.5)
    assert (t.avg_win, t.avg_loss) == (D("2.7"), D("-0.5"))
    assert t.profit_factor == pytest.approx(5.4)
    assert t.expectancy == D("1.1")
    assert t.avg_holding_s == 30 and t.median_holding_s == 30 and t.max_holding_s == 40


def test_a_fill_through_the_position_closes_and_opens_a_lot_the_other_way():
    fills = [
        fill(0, "buy", "100", "1", "0.1", cl="a"),
        fill(5, "sell", "102", "3", "0.3", cl="b"),  # closes 1, opens a short of 2
        fill(9, "buy", "101", "2", "0.2", cl="c"),
    ]
    trips, still = st.round_trips(fills, INSTS)
    assert still == []
    long_, short = trips
    assert (long_.gross, long_.fees) == (D(2), D("0.2"))
    assert not short.long and short.qty == D(2) and short.entry_cl_id == "b"
    assert (short.gross, short.fees, short.net) == (D(2), D("0.4"), D("1.6"))


def test_lots_left_open_at_the_end_are_not_round_trips():
    trips, still = st.round_trips([fill(0, "buy", "100", "2"), fill(1, "sell", "101", "1")], INSTS)
    assert len(trips) == 0
    assert [(lot.qty, lot.entry_price) for lot in still] == [(D(1), D(100))]
    assert st.trip_stats(trips).win_rate is None


def test_round_trip_of_an_inverse_contract_is_in_the_base_coin():
    # 1 contract of 100 USD bought at 50,000, sold at 40,000: 100 * (1/50000 - 1/40000) BTC
    fills = [fill(0, "buy", "50000", "1", iid=9101), fill(1, "sell", "40000", "1", iid=9101)]
    (trip,), _ = st.round_trips(fills, INSTS)
    assert trip.gross == D("-0.0005")


def test_fees_split_into_maker_taker_rebates_and_funding():
    fills = [
        fill(0, "buy", "100", "1", "0.2", maker=True),
        fill(1, "sell", "100", "1", "-0.05", maker=True),  # a maker rebate
        fill(2, "buy", "100", "1", "0.5"),
        fill(3, "sell", "100", "1", "-0.01"),  # a taker rebate
    ]
    funding = [st.Funding(T0, D("0.3")), st.Funding(T0 + S, D("-0.1"))]
    f = st.fee_split(fills, funding)
    assert (f.maker, f.taker, f.rebates) == (D("0.2"), D("0.5"), D("0.06"))
    assert f.net == D("0.64") == sum(x.fee for x in fills)
    assert (f.funding_paid, f.funding_received) == (D("0.1"), D("0.3"))
    assert (f.maker_fills, f.taker_fills, f.maker_share) == (2, 2, 0.5)
    assert st.strategy_kind(f) == "maker"
    assert st.strategy_kind(st.fee_split(fills[2:])) == "taker"
    assert st.strategy_kind(st.fee_split([])) == "none"


def test_spread_captured_is_the_pnl_against_the_mid_at_each_fill():
    fills = [fill(0, "buy", "99.9", "2", mid="100"), fill(1, "sell", "100.3", "1", mid="100.1")]
    assert st.spread_captured(fills, INSTS) == D("0.2") + D("0.2")


def test_percentiles_are_nearest_rank():
    assert st.percentile(list(range(1, 101)), 50) == 50
    assert st.percentile(list(range(1, 101)), 99) == 99
    assert st.percentile([4, 1, 3, 2], 50) == 2
    assert st.percentile([4, 1, 3, 2], 99) == 4
    assert st.percentile([7], 99) == 7
    assert st.percentile([], 50) is None


def test_request_latency_pairs_each_answer_with_the_oldest_request_of_its_order():
    ev = [
        st.OrderEvent(0, "new", "a"),
        st.OrderEvent(4, "ack", "a"),
        st.OrderEvent(10, "modify", "a"),
        st.OrderEvent(11, "modify", "a"),
        st.OrderEvent(14, "modify_ack", "a"),
        st.OrderEvent(16, "modify_reject", "a"),
        st.OrderEvent(20, "cancel", "a"),
        st.OrderEvent(27, "cancelled", "a"),
        st.OrderEvent(30, "new", "b"),
        st.OrderEvent(33, "reject", "b"),
        st.OrderEvent(40, "fill", "a"),
    ]
    assert st.request_latencies(ev) == {"new": [4, 3], "modify": [4, 5], "cancel": [7]}


def test_daily_rows_split_the_run_by_utc_day():
    day2 = T0 + 86400 * S
    curve = [(T0, D(0)), (T0 + 3600 * S, D(5)), (day2 + 60 * S, D(2)), (day2 + 120 * S, D(4))]
    fills = [
        fill(10, "buy", "100", "1", "0.1", maker=True),
        fill(86400 + 30, "sell", "101", "1", "0.2"),
    ]
    trips, _ = st.round_trips(fills, INSTS)
    days = st.daily(curve, fills, trips, INSTS, [st.Funding(day2, D("-0.5"))])
    assert [d.day for d in days] == ["2024-08-08", "2024-08-09"]
    one, two = days
    assert (one.pnl, one.fills, one.maker_fills, one.volume, one.fees) == (
        D(5),
        1,
        1,
        D(100),
        D("0.1"),
    )
    assert (two.pnl, two.fills, two.volume, two.funding, two.round_trips) == (
        D(-1),
        1,
        D(101),
        D("-0.5"),
        1,
    )
    assert two.round_trip_net == D("0.7") and two.equity_end == D(4)


def test_market_change_is_first_to_last_mid():
    m = st.market_change("SIMUSDT", [(0, None), (1, D(100)), (2, None), (3, D(110))])
    assert (m.first_mid, m.last_mid, m.first_ts, m.last_ts) == (D(100), D(110), 1, 3)
    assert m.change == pytest.approx(0.1)
    assert st.market_change("X", [(0, None)]).change is None


def test_statistics_headline_says_na_as_none_and_amounts_as_text():
    s = st.compute(
        curve=minute_curve(["1"] * 5),
        mids=[(T0, D(100))],
        fills=[fill(0, "buy", "100", "1", "0.1", maker=True, recv_s=0.002)],
        events=[st.OrderEvent(T0, "new", "c"), st.OrderEvent(T0 + 4_000_000, "ack", "c")],
        instruments=[LINEAR],
        capital=D(1000),
        orders=st.OrderCounts(1, 0, 0, 0, 1, 1.0),
    )
    h = s.headline()
    assert h["sharpe"] is None and h["return_pct"] == pytest.approx(0.5)
    assert h["max_drawdown"] == "0" and h["round_trips"] == 0 and h["win_rate"] is None
    assert h["maker_share"] == 1.0 and h["ack_latency_p50_ms"] == 4.0
    assert s.latency["fill_report"].p50_ns == 2_000_000
    d = s.to_dict()
    assert d["fees"]["maker"] == "0.1" and d["returns"]["sharpe"] is None
    assert d["strategy_kind"] == "maker" and d["settle_coin"] == "USDT"


def test_money_never_has_an_exponent():
    assert st.money(D("1E-7")) == "0.0000001"
    assert st.money(D("100.500")) == "100.5"
    assert st.money(D("0E-12")) == "0"
