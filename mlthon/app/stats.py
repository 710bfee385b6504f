"""The statistics of a backtest, computed in one place from its tables.

Every figure the report, the CLI's summary and a notebook show comes from here, each with its
definition (and tested against hand-computed cases in ``tests/unit/app/test_stats*.py``):

* **Returns** are sampled on a stated grid (one minute by default): the equity (PnL) is read at
  ``start + k * period`` (its last value at or before that instant) and each whole period's change
  is a return on the backtest's ``capital``. Annualised figures assume markets that trade around
  the clock (365 days a year: 525,600 one-minute periods). Sharpe is ``mean / stdev * sqrt(N)``
  (sample standard deviation, ``N`` periods a year), Sortino ``mean / downside * sqrt(N)`` with
  ``downside = sqrt(mean(min(r, 0)^2))`` over every period, and Calmar the annualised return
  (``mean * N``: returns on fixed capital add up) over the maximum drawdown as a fraction of
  capital. With fewer than :data:`MIN_PERIODS` returns (a window under half an hour at the
  default sampling) they are ``None``, shown as *n/a*, with the reason in ``why_na``.
* **Drawdown** is read on every point of the equity curve: the deepest fall below a running peak,
  when it peaked, bottomed and recovered, how long it lasted (peak to recovery, or to the end
  when it never recovered) and the longest time spent under a previous peak.
* **Round trips** match fills first in, first out per instrument: a fill that adds to the
  position (or opens one) opens a lot; a fill against the position closes the oldest lots first
  (and a remainder opens a lot the other way). A round trip is one opening fill, closed in full:
  its gross PnL is the sum of its closed pieces (contract arithmetic of
  :func:`mlthon.gateways.sim.contract.pnl`), its fees its share of the opening fill's fee plus the
  closing fills' shares, and its holding time runs to the last closing piece. A win has a net
  PnL above zero, a loss below. Lots still open at the end are not round trips.
* **Fees** are split by the fills' liquidity: maker and taker fees paid, rebates (negative fees)
  received, and funding paid and received.
* **Latency** is measured in simulated time as the strategy saw it: from a request's send time to
  its answer's arrival (new order to ack or reject, modify to its answer, cancel to the order's
  end), and from a fill at the exchange to its report's arrival. Percentiles are nearest-rank.
* **Market change** is the first instrument's mid at the window's start and end (buy and hold).
* **Daily** rows are UTC days.

Amounts are exact decimals in the instruments' settlement coin; ratios are floats.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.gateways.sim.contract import pnl, settle_notional

ZERO = Decimal(0)
NS_PER_S = 1_000_000_000
MIN_PERIODS = 30
"""Fewer returns than this and the ratios built on them (Sharpe, Sortino, Calmar) are n/a."""
DEFAULT_PERIOD_S = 60
YEAR_S = 365 * 24 * 3600
MAKER_KIND_SHARE = 0.5
"""A run whose fills are at least this share maker (by count) is a market maker's."""

_MONEY = Decimal("1e-12")


def money(d: Decimal) -> str:
    """A figure for people: at most 12 decimals, no trailing zeros, never an exponent."""
    q = d.quantize(_MONEY).normalize()
    return format(q, "f") if q else "0"


# --- inputs ------------------------------------------------------------------------------------


class Fill(NamedTuple):
    """One of our fills, as the statistics read it (a named tuple: a run has thousands).

    Attributes:
        ts: the exchange's execution time (ns).
        recv_ts: when the strategy received the report (ns; ``ts`` when unknown).
        cl_id: the order's client id.
        instrument_id: the instrument.
        buy: True for a buy.
        price: the fill price.
        qty: the filled quantity (> 0).
        fee: the fee paid (negative: a rebate), in the settlement coin.
        maker: True for a passive (maker) fill.
        mid: the exchange's mid price at the fill, if it had one.
    """

    ts: int
    recv_ts: int
    cl_id: str
    instrument_id: int
    buy: bool
    price: Decimal
    qty: Decimal
    fee: Decimal
    maker: bool
    mid: Decimal | None = None


class OrderEvent(NamedTuple):
    """One line of the order event log: ``ts`` is when the strategy sent or received it (a named
    tuple: a run has tens of thousands)."""

    ts: int
    event: str
    cl_id: str


@attrs.frozen
class Funding:
    """One funding payment: ``amount`` > 0 was received by the strategy, < 0 paid."""

    ts: int
    amount: Decimal


# --- returns -----------------------------------------------------------------------------------


def resample(curve: Sequence[tuple[int, Decimal]], period_ns: int) -> list[Decimal]:
    """The equity at ``t0 + k * period_ns`` for every whole period of the curve's span (its last
    value at or before each instant), ``t0`` being the first point's time."""
    if not curve or period_ns <= 0:
        return []
    times = [t for t, _ in curve]
    t0, t1 = times[0], times[-1]
    out = []
    for k in range((t1 - t0) // period_ns + 1):
        i = bisect.bisect_right(times, t0 + k * period_ns) - 1
        out.append(curve[i][1])
    return out


def period_returns(values: Sequence[Decimal], capital: Decimal) -> list[float]:
    """The change of each period as a fraction of ``capital``."""
    if not capital:
        return []
    return [float((b - a) / capital) for a, b in itertools.pairwise(values)]


def sharpe_ratio(returns: Sequence[float], periods_per_year: float) -> float | None:
    """``mean / stdev * sqrt(periods_per_year)`` (sample stdev); None without variation or with
    fewer than two returns."""
    if len(returns) < 2:
        return None
    sd = statistics.stdev(returns)
    if sd == 0 or not math.isfinite(sd):
        return None
    return statistics.fmean(returns) / sd * math.sqrt(periods_per_year)


def sortino_ratio(returns: Sequence[float], periods_per_year: float) -> float | None:
    """``mean / downside * sqrt(periods_per_year)``, ``downside = sqrt(mean(min(r, 0)^2))`` over
    every period; None when no period lost money."""
    if len(returns) < 2:
        return None
    downside = math.sqrt(statistics.fmean([min(r, 0.0) ** 2 for r in returns]))
    if downside == 0:
        return None
    return statistics.fmean(returns) / downside * math.sqrt(periods_per_year)


@attrs.frozen
class Returns:
    """Returns on the stated sampling and the ratios built on them (None: n/a, see ``why_na``).

    Attributes:
        period_s: the sampling (s).
        periods: the number of whole-period returns in the window.
        periods_per_year: the annualisation factor.
        total_return: the window's PnL over capital (a fraction).
        mean, stdev: of the period returns (fractions).
        annual_return: ``mean * periods_per_year``.
        annual_volatility: ``stdev * sqrt(periods_per_year)``.
        sharpe, sortino, calmar: the ratios.
        why_na: why the ratios are n/a ('' when they are not).
    """

    period_s: float
    periods: int
    periods_per_year: float
    total_return: float | None
    mean: float | None
    stdev: float | None
    annual_return: float | None
    annual_volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    why_na: str


def returns_of(
    curve: Sequence[tuple[int, Decimal]],
    capital: Decimal,
    max_drawdown: Decimal,
    *,
    period_s: float = DEFAULT_PERIOD_S,
    min_periods: int = MIN_PERIODS,
) -> Returns:
    """The returns of an equity curve (PnL, starting at the window's start) on ``capital``."""
    period_ns = max(1, int(period_s * NS_PER_S))
    ppy = YEAR_S / period_s
    rets = period_returns(resample(curve, period_ns), capital)
    total = float(curve[-1][1] / capital) if curve and capital else None
    why = ""
    if not capital:
        why = "no capital to measure returns on"
    elif len(rets) < min_periods:
        span = (curve[-1][0] - curve[0][0]) / NS_PER_S if curve else 0.0
        why = (
            f"the window ({_span_text(span)}) has {len(rets)} whole {_span_text(period_s)} "
            f"returns; {min_periods} are needed"
        )
    mean = statistics.fmean(rets) if rets else None
    sd = statistics.stdev(rets) if len(rets) >= 2 else None
    if not why and not sd:
        why = "the equity did not change between samples"
    if why or mean is None or sd is None:
        return Returns(period_s, len(rets), ppy, total, mean, sd, None, None, None, None, None, why)
    annual = mean * ppy
    dd_frac = float(max_drawdown / capital)
    return Returns(
        period_s,
        len(rets),
        ppy,
        total,
        mean,
        sd,
        annual,
        sd * math.sqrt(ppy),
        sharpe_ratio(rets, ppy),
        sortino_ratio(rets, ppy),
        annual / dd_frac if dd_frac > 0 else None,
        "",
    )


def _span_text(seconds: float) -> str:
    """``90`` -> ``1 min 30 s``; ``60`` -> ``1 min``; ``0.25`` -> ``0.25 s``."""
    if seconds < 60:
        return f"{seconds:g} s"
    whole = round(seconds)
    d, rest = divmod(whole, 86400)
    h, rest = divmod(rest, 3600)
    mi, s = divmod(rest, 60)
    parts = [f"{v} {u}" for v, u in ((d, "d"), (h, "h"), (mi, "min"), (s, "s")) if v]
    return " ".join(parts)


def duration_text(ns: int | None) -> str:
    """A duration for people: ``1 h 2 min 5 s``, ``350 ms``, ``12 µs``."""
    if ns is None:
        return "n/a"
    if ns >= 60 * NS_PER_S:
        return _span_text(ns / NS_PER_S)
    if ns >= NS_PER_S:
        return f"{ns / NS_PER_S:.3g} s"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.3g} ms"
    if ns >= 1_000:
        return f"{ns / 1_000:.3g} µs"
    return f"{ns} ns"


# --- drawdown ----------------------------------------------------------------------------------


@attrs.frozen
class Drawdown:
    """The deepest fall of the equity below a running peak.

    Attributes:
        max_amount: its depth (>= 0), in the settlement coin.
        peak_ts, trough_ts: when it peaked and bottomed (None: no drawdown).
        recovery_ts: when the equity first got back to the peak (None: not by the end).
        duration_ns: peak to recovery, or to the end when it never recovered.
        longest_ns: the longest time the equity spent below a previous peak.
    """

    max_amount: Decimal
    peak_ts: int | None
    trough_ts: int | None
    recovery_ts: int | None
    duration_ns: int
    longest_ns: int


def drawdown(curve: Sequence[tuple[int, Decimal]]) -> Drawdown:
    """The drawdown of an equity curve of ``(ts, equity)`` points in time order."""
    if not curve:
        return Drawdown(ZERO, None, None, None, 0, 0)
    end = curve[-1][0]
    peak, peak_ts = curve[0][1], curve[0][0]
    worst = ZERO
    worst_peak = peak
    worst_peak_ts: int | None = None
    trough_ts: int | None = None
    under_since: int | None = None
    longest = 0
    for ts, eq in curve:
        if eq >= peak:
            if under_since is not None:
                longest = max(longest, ts - under_since)
                under_since = None
            peak, peak_ts = eq, ts
            continue
        if under_since is None:
            under_since = peak_ts
        if peak - eq > worst:
            worst, worst_peak, worst_peak_ts, trough_ts = peak - eq, peak, peak_ts, ts
    if under_since is not None:
        longest = max(longest, end - under_since)
    if worst_peak_ts is None or trough_ts is None:
        return Drawdown(ZERO, None, None, None, 0, longest)
    recovery = next((ts for ts, eq in curve if ts > trough_ts and eq >= worst_peak), None)
    duration = (recovery if recovery is not None else end) - worst_peak_ts
    return Drawdown(worst, worst_peak_ts, trough_ts, recovery, duration, longest)


# --- round trips -------------------------------------------------------------------------------


@attrs.frozen
class RoundTrip:
    """One opening fill, closed in full by later fills (FIFO).

    Attributes:
        instrument_id: the instrument.
        long: True when the opening fill bought.
        qty: the opening fill's quantity (the part of it that opened a lot).
        entry_ts: the opening fill's time.
        exit_ts: the time of the last piece that closed it.
        entry_price: the opening fill's price.
        exit_price: the closing pieces' quantity-weighted mean price.
        gross: PnL before fees.
        fees: its share of the opening and closing fills' fees (negative: net rebates).
        net: ``gross - fees``.
        entry_cl_id: the opening order's client id.
        exit_cl_ids: the closing orders' client ids, in order, without repeats.
    """

    instrument_id: int
    long: bool
    qty: Decimal
    entry_ts: int
    exit_ts: int
    entry_price: Decimal
    exit_price: Decimal
    gross: Decimal
    fees: Decimal
    net: Decimal
    entry_cl_id: str
    exit_cl_ids: tuple[str, ...]

    @property
    def holding_ns(self) -> int:
        """From the opening fill to the last closing piece."""
        return self.exit_ts - self.entry_ts


@attrs.define
class _Lot:
    fill: Fill
    qty: Decimal  # left open
    opened: Decimal  # the part of the fill that opened this lot
    gross: Decimal = ZERO
    fees: Decimal = ZERO
    exit_value: Decimal = ZERO  # sum of closing price * qty
    exit_ts: int = 0
    exit_ids: list[str] = attrs.field(factory=list)


@attrs.frozen
class OpenLot:
    """A lot still open at the end: ``qty`` left of an opening fill."""

    instrument_id: int
    long: bool
    qty: Decimal
    entry_ts: int
    entry_price: Decimal


def round_trips(
    fills: Iterable[Fill], instruments: Mapping[int, Instrument]
) -> tuple[list[RoundTrip], list[OpenLot]]:
    """FIFO round trips of ``fills`` (in time order), by the time they closed, and the lots still
    open. Fills of an instrument not in ``instruments`` are left out."""
    lots: dict[int, deque[_Lot]] = {}
    done: list[RoundTrip] = []
    for f in fills:
        inst = instruments.get(f.instrument_id)
        if inst is None or f.qty <= 0:
            continue
        book = lots.setdefault(f.instrument_id, deque())
        left = f.qty
        while left > 0 and book and book[0].fill.buy != f.buy:
            lot = book[0]
            piece = min(left, lot.qty)
            lot.gross += pnl(inst, lot.fill.buy, piece, lot.fill.price, f.price)
            lot.fees += f.fee * piece / f.qty
            lot.exit_value += f.price * piece
            lot.exit_ts = f.ts
            if f.cl_id not in lot.exit_ids:
                lot.exit_ids.append(f.cl_id)
            lot.qty -= piece
            left -= piece
            if lot.qty == 0:
                book.popleft()
                done.append(_closed(lot))
        if left > 0:
            book.append(_Lot(f, left, left, fees=f.fee * left / f.qty))
    still = [
        OpenLot(iid, lot.fill.buy, lot.qty, lot.fill.ts, lot.fill.price)
        for iid, book in lots.items()
        for lot in book
    ]
    return done, still


def _closed(lot: _Lot) -> RoundTrip:
    f = lot.fill
    return RoundTrip(
        f.instrument_id,
        f.buy,
        lot.opened,
        f.ts,
        lot.exit_ts,
        f.price,
        lot.exit_value / lot.opened,
        lot.gross,
        lot.fees,
        lot.gross - lot.fees,
        f.cl_id,
        tuple(lot.exit_ids),
    )


@attrs.frozen
class TripStats:
    """Figures of a list of round trips (None: n/a, e.g. an average of nothing).

    Attributes:
        count, wins, losses: round trips, those with a net PnL above and below zero.
        win_rate: wins / count.
        avg_win, avg_loss: mean net PnL of the wins and of the losses (a loss is negative).
        largest_win, largest_loss: the best and the worst net PnL.
        profit_factor: the wins' net PnL over the losses' (absolute); None without a loss.
        expectancy: the mean net PnL of a round trip.
        gross, fees, net: totals.
        avg_holding_s, median_holding_s, max_holding_s: holding times.
        long_count, short_count: round trips opened by a buy and by a sell.
    """

    count: int
    wins: int
    losses: int
    win_rate: float | None
    avg_win: Decimal | None
    avg_loss: Decimal | None
    largest_win: Decimal | None
    largest_loss: Decimal | None
    profit_factor: float | None
    expectancy: Decimal | None
    gross: Decimal
    fees: Decimal
    net: Decimal
    avg_holding_s: float | None
    median_holding_s: float | None
    max_holding_s: float | None
    long_count: int
    short_count: int


def trip_stats(trips: Sequence[RoundTrip]) -> TripStats:
    """The figures of ``trips``."""
    wins = [t.net for t in trips if t.net > 0]
    losses = [t.net for t in trips if t.net < 0]
    nets = [t.net for t in trips]
    holds = [t.holding_ns / NS_PER_S for t in trips]
    n = len(trips)
    won = sum(wins, ZERO)
    lost = sum(losses, ZERO)
    return TripStats(
        count=n,
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / n if n else None,
        avg_win=won / len(wins) if wins else None,
        avg_loss=lost / len(losses) if losses else None,
        largest_win=max(wins) if wins else None,
        largest_loss=min(losses) if losses else None,
        profit_factor=float(won / -lost) if losses else None,
        expectancy=sum(nets, ZERO) / n if n else None,
        gross=sum((t.gross for t in trips), ZERO),
        fees=sum((t.fees for t in trips), ZERO),
        net=sum(nets, ZERO),
        avg_holding_s=statistics.fmean(holds) if holds else None,
        median_holding_s=statistics.median(holds) if holds else None,
        max_holding_s=max(holds) if holds else None,
        long_count=sum(1 for t in trips if t.long),
        short_count=sum(1 for t in trips if not t.long),
    )


# --- fees --------------------------------------------------------------------------------------


@attrs.frozen
class FeeSplit:
    """Fees by liquidity, rebates and funding; amounts paid or received are all >= 0.

    Attributes:
        maker: fees paid on maker fills.
        taker: fees paid on taker fills.
        rebates: rebates received (fills with a negative fee).
        net: ``maker + taker - rebates`` (the fees of the summary).
        funding_paid, funding_received: funding payments out and in.
        maker_fills, taker_fills: fill counts by liquidity.
        maker_share: maker fills over all fills (None without fills).
    """

    maker: Decimal
    taker: Decimal
    rebates: Decimal
    net: Decimal
    funding_paid: Decimal
    funding_received: Decimal
    maker_fills: int
    taker_fills: int
    maker_share: float | None


def fee_split(fills: Sequence[Fill], funding: Sequence[Funding] = ()) -> FeeSplit:
    """Split the fees of ``fills`` and the ``funding`` payments."""
    maker = sum((f.fee for f in fills if f.maker and f.fee > 0), ZERO)
    taker = sum((f.fee for f in fills if not f.maker and f.fee > 0), ZERO)
    rebates = -sum((f.fee for f in fills if f.fee < 0), ZERO)
    n_maker = sum(1 for f in fills if f.maker)
    return FeeSplit(
        maker=maker,
        taker=taker,
        rebates=rebates,
        net=maker + taker - rebates,
        funding_paid=-sum((p.amount for p in funding if p.amount < 0), ZERO),
        funding_received=sum((p.amount for p in funding if p.amount > 0), ZERO),
        maker_fills=n_maker,
        taker_fills=len(fills) - n_maker,
        maker_share=n_maker / len(fills) if fills else None,
    )


def strategy_kind(fees: FeeSplit) -> str:
    """``maker`` when at least :data:`MAKER_KIND_SHARE` of the fills were passive, ``taker``
    otherwise, ``none`` without fills."""
    if fees.maker_share is None:
        return "none"
    return "maker" if fees.maker_share >= MAKER_KIND_SHARE else "taker"


def spread_captured(fills: Iterable[Fill], instruments: Mapping[int, Instrument]) -> Decimal:
    """What the fills earned against the mid at each fill: the PnL of buying (selling) at the
    fill price and marking at the mid (``(mid - price) * qty`` for a buy of a linear contract of
    multiplier 1), over the fills that had a mid, in the settlement coin."""
    total = ZERO
    for f in fills:
        inst = instruments.get(f.instrument_id)
        if f.mid is not None and inst is not None:
            total += pnl(inst, f.buy, f.qty, f.price, f.mid)
    return total


# --- latency -----------------------------------------------------------------------------------


def percentile(values: Sequence[int], p: float) -> int | None:
    """The nearest-rank ``p``-th percentile: the smallest value with at least ``p`` % of the
    values at or below it (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@attrs.frozen
class Latency:
    """Delays in simulated time (ns): count, p50, p99, mean and max (None without samples)."""

    count: int
    p50_ns: int | None
    p99_ns: int | None
    mean_ns: float | None
    max_ns: int | None


def latency_of(samples: Sequence[int]) -> Latency:
    """The figures of ``samples`` (ns)."""
    return Latency(
        len(samples),
        percentile(samples, 50),
        percentile(samples, 99),
        statistics.fmean(samples) if samples else None,
        max(samples) if samples else None,
    )


# A request, the events that answer it, and the events that end it without an answer of its own.
_ANSWERS = {
    "new": ("ack", "reject"),
    "modify": ("modify_ack", "modify_reject"),
    "cancel": ("cancelled", "cancel_reject"),
}


def request_latencies(events: Iterable[OrderEvent]) -> dict[str, list[int]]:
    """Send-to-answer delays by request kind (``new``, ``modify``, ``cancel``): each answer is
    matched with the oldest unanswered request of its kind for the same order."""
    waiting: dict[tuple[str, str], deque[int]] = {}
    answer_of = {a: k for k, answers in _ANSWERS.items() for a in answers}
    out: dict[str, list[int]] = {k: [] for k in _ANSWERS}
    for e in events:
        if e.event in _ANSWERS:
            waiting.setdefault((e.event, e.cl_id), deque()).append(e.ts)
            continue
        kind = answer_of.get(e.event)
        if kind is None:
            continue
        queue = waiting.get((kind, e.cl_id))
        if queue:
            out[kind].append(e.ts - queue.popleft())
    return out


# --- daily and market --------------------------------------------------------------------------


def utc_day(ts: int) -> str:
    """The UTC date of ``ts`` (ns), ``2024-08-08``."""
    return dt.datetime.fromtimestamp(ts // NS_PER_S, dt.UTC).strftime("%Y-%m-%d")


@attrs.frozen
class Day:
    """One UTC day of the run.

    Attributes:
        day: the date, ``YYYY-MM-DD``.
        pnl: the equity's change over the day (from the last point before it).
        fills, maker_fills: fills that day.
        volume: the fills' notional in the settlement coin.
        fees: net fees paid (negative: rebates received).
        funding: funding received (negative: paid).
        round_trips: round trips closed that day, and their net PnL.
        round_trip_net: their net PnL.
        equity_end: the equity at the day's last point.
    """

    day: str
    pnl: Decimal
    fills: int
    maker_fills: int
    volume: Decimal
    fees: Decimal
    funding: Decimal
    round_trips: int
    round_trip_net: Decimal
    equity_end: Decimal


def daily(
    curve: Sequence[tuple[int, Decimal]],
    fills: Sequence[Fill],
    trips: Sequence[RoundTrip],
    instruments: Mapping[int, Instrument],
    funding: Sequence[Funding] = (),
) -> list[Day]:
    """One row per UTC day the equity curve covers."""
    if not curve:
        return []
    day_of = _DayNames()
    last_eq: dict[str, Decimal] = {}
    for ts, eq in curve:
        last_eq[day_of(ts)] = eq
    # Per day: fills, maker fills, volume, fees, funding, round trips, their net (summed here,
    # the rows made once at the end).
    acc: dict[str, list[Any]] = {day: [0, 0, ZERO, ZERO, ZERO, 0, ZERO] for day in last_eq}
    for f in fills:
        a = acc.get(day_of(f.ts))
        if a is None:
            continue
        inst = instruments.get(f.instrument_id)
        a[0] += 1
        a[1] += f.maker
        if inst is not None:
            a[2] += settle_notional(inst, f.price, f.qty)
        a[3] += f.fee
    for t in trips:
        a = acc.get(day_of(t.exit_ts))
        if a is not None:
            a[5] += 1
            a[6] += t.net
    for p in funding:
        a = acc.get(day_of(p.ts))
        if a is not None:
            a[4] += p.amount
    out = []
    before = curve[0][1]
    for day, end in last_eq.items():
        n, maker, volume, fees, paid, trips_n, trips_net = acc[day]
        out.append(Day(day, end - before, n, maker, volume, fees, paid, trips_n, trips_net, end))
        before = end
    return out


class _DayNames:
    """``utc_day`` with one date conversion per day, not per call."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def __call__(self, ts: int) -> str:
        key = ts // (86400 * NS_PER_S)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = utc_day(ts)
        return name


@attrs.frozen
class MarketChange:
    """Buy and hold of the first instrument over the window: its mid at the first and last
    points that had one, and the change as a fraction (None without two mids)."""

    instrument: str
    first_ts: int | None
    last_ts: int | None
    first_mid: Decimal | None
    last_mid: Decimal | None
    change: float | None


def market_change(name: str, mids: Sequence[tuple[int, Decimal | None]]) -> MarketChange:
    """From ``(ts, mid)`` points in time order (mid None where there was no book)."""
    known = [(t, p) for t, p in mids if p is not None and p > 0]
    if not known:
        return MarketChange(name, None, None, None, None, None)
    (t0, p0), (t1, p1) = known[0], known[-1]
    return MarketChange(name, t0, t1, p0, p1, float(p1 / p0 - 1))


# --- everything --------------------------------------------------------------------------------


@attrs.frozen
class OrderCounts:
    """Orders sent, modifies and cancels asked, rejects, and the share of orders filled."""

    orders: int
    modifies: int
    cancels: int
    rejects: int
    filled_orders: int
    fill_ratio: float


@attrs.frozen
class Statistics:
    """Every statistic of a backtest (see the module's docstring for the definitions)."""

    capital: Decimal
    settle_coin: str
    returns: Returns
    drawdown: Drawdown
    trips: tuple[RoundTrip, ...]
    open_lots: tuple[OpenLot, ...]
    trip_stats: TripStats
    fees: FeeSplit
    kind: str
    spread_captured: Decimal
    daily: tuple[Day, ...]
    market: MarketChange
    latency: Mapping[str, Latency]
    orders: OrderCounts

    def headline(self) -> dict[str, Any]:
        """The figures the summary (``summary.json``, the CLI) carries; None is n/a."""
        r, t = self.returns, self.trip_stats
        return {
            "return_pct": _pct(r.total_return),
            "returns_sampling_s": r.period_s,
            "sharpe": _round(r.sharpe),
            "sortino": _round(r.sortino),
            "calmar": _round(r.calmar),
            "max_drawdown": money(self.drawdown.max_amount),
            "max_drawdown_duration_s": round(self.drawdown.duration_ns / NS_PER_S, 3),
            "round_trips": t.count,
            "win_rate": _round(t.win_rate),
            "profit_factor": _round(t.profit_factor),
            "expectancy": None if t.expectancy is None else money(t.expectancy),
            "maker_share": _round(self.fees.maker_share),
            "market_change_pct": _pct(self.market.change),
            "fill_ratio": round(self.orders.fill_ratio, 6),
            "ack_latency_p50_ms": _ms(self.latency["order_ack"].p50_ns),
            "ack_latency_p99_ms": _ms(self.latency["order_ack"].p99_ns),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: amounts as exact text, None for n/a (``stats.json``)."""
        return {
            "definitions": "see mlthon/app/stats.py and docs/reports.md",
            "capital": money(self.capital),
            "settle_coin": self.settle_coin,
            "strategy_kind": self.kind,
            "returns": _plain(self.returns),
            "drawdown": _plain(self.drawdown),
            "round_trips": _plain(self.trip_stats),
            "open_lots": len(self.open_lots),
            "fees": _plain(self.fees),
            "spread_captured": money(self.spread_captured),
            "market": _plain(self.market),
            "latency": {k: _plain(v) for k, v in self.latency.items()},
            "orders": _plain(self.orders),
            "daily": [_plain(d) for d in self.daily],
        }


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 6)


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 6)


def _plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in attrs.fields(type(obj)):
        v = getattr(obj, f.name)
        if isinstance(v, Decimal):
            v = money(v)
        elif isinstance(v, float):
            v = round(v, 9)
        out[f.name] = v
    return out


def compute(
    *,
    curve: Sequence[tuple[int, Decimal]],
    mids: Sequence[tuple[int, Decimal | None]],
    fills: Sequence[Fill],
    events: Sequence[OrderEvent],
    instruments: Sequence[Instrument],
    capital: Decimal,
    orders: OrderCounts,
    funding: Sequence[Funding] = (),
    period_s: float = DEFAULT_PERIOD_S,
) -> Statistics:
    """Every statistic of a run.

    Args:
        curve: the equity (PnL) curve, ``(ts, equity)`` in time order.
        mids: the first instrument's mid at the curve's points.
        fills: our fills in time order.
        events: the order event log (for request latencies).
        instruments: the run's instruments (the first one is the market benchmark).
        capital: the capital returns are measured on.
        orders: the order counts.
        funding: the funding payments.
        period_s: the returns' sampling.
    """
    by_id = {i.instrument_id: i for i in instruments}
    dd = drawdown(curve)
    trips, still = round_trips(fills, by_id)
    fees = fee_split(fills, funding)
    lat = request_latencies(events)
    first = instruments[0] if instruments else None
    return Statistics(
        capital=capital,
        settle_coin=first.settlement if first is not None else "",
        returns=returns_of(curve, capital, dd.max_amount, period_s=period_s),
        drawdown=dd,
        trips=tuple(trips),
        open_lots=tuple(still),
        trip_stats=trip_stats(trips),
        fees=fees,
        kind=strategy_kind(fees),
        spread_captured=spread_captured(fills, by_id),
        daily=tuple(daily(curve, fills, trips, by_id, funding)),
        market=market_change(first.name if first is not None else "", mids),
        latency={
            "order_ack": latency_of(lat["new"]),
            "modify_ack": latency_of(lat["modify"]),
            "cancel": latency_of(lat["cancel"]),
            "fill_report": latency_of([f.recv_ts - f.ts for f in fills]),
        },
        orders=orders,
    )
