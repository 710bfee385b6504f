"""Throughput of the simulated exchange's matching core: new + cancel pairs on a 50-level book.

Prints orders per second through :class:`~mlthon.gateways.sim.matching.MatchingEngine` (each pair
is one passive limit order placed at a random depth of a 50-level book, acknowledged, queued behind
the displayed size, then cancelled) beside a same-run baseline of bare ``dict`` insert/delete of the
same keys, and the ratio between the two.

Usage: ``python bench/bench_matching.py [pairs]`` (default 100000).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from decimal import Decimal

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind, Side
from mlthon.gateways.sim.matching import MatchingEngine
from mlthon.infra.bus.messages import ADD, ASK, BID, BookUpdate, CancelOrder, Msg, NewOrder

LEVELS = 50
INST = Instrument(
    instrument_id=1,
    name="BENCHUSDT",
    exchange=Exchange.Sim,
    base="BENCH",
    quote="USDT",
    kind=InstrumentKind.Linear,
    tick_size="0.1",
    lot_size="0.001",
    min_qty="0.001",
    maker_fee="0.0002",
    taker_fee="0.0005",
)


def _book() -> BookUpdate:
    """50 levels a side around 1000.0, 2.500 each, in ticks of 0.1 and lots of 0.001."""
    ch = []
    for i in range(LEVELS):
        ch.append((ADD, BID, 10_000 - i, 2_500))
        ch.append((ADD, ASK, 10_001 + i, 2_500))
    return BookUpdate(ex=Exchange.Sim.value, iid=1, ts=1, ch=ch)


def _requests(n: int) -> list[tuple[NewOrder, CancelOrder]]:
    rng = random.Random(42)
    out = []
    for i in range(n):
        buy = rng.random() < 0.5
        depth = rng.randrange(LEVELS)
        price = f"{1000 - depth * 0.1:.1f}" if buy else f"{1000.1 + depth * 0.1:.1f}"
        cl_id = str(i)
        out.append(
            (
                NewOrder(
                    strat="bench",
                    cl_id=cl_id,
                    instrument_id=1,
                    side=Side.Buy if buy else Side.Sell,
                    price=price,
                    qty="0.010",
                ),
                CancelOrder(strat="bench", cl_id=cl_id, instrument_id=1),
            )
        )
    return out


def bench_engine(pairs: list[tuple[NewOrder, CancelOrder]]) -> float:
    reports = 0

    def sink(_strat: str, _msg: Msg, _kind: str) -> None:
        nonlocal reports
        reports += 1

    eng = MatchingEngine([INST], sink, balances={"USDT": Decimal("1e12")})
    eng.on_book_update(_book(), 1)
    t0 = time.perf_counter()
    ts = 2
    for new, cancel in pairs:
        eng.new_order(new, ts)
        eng.cancel_order(cancel, ts + 1)
        ts += 2
    dt = time.perf_counter() - t0
    # ack + (cancel ack + cancelled) per pair
    assert reports == 3 * len(pairs), reports
    return dt


def bench_dict(pairs: list[tuple[NewOrder, CancelOrder]]) -> float:
    d: dict[tuple[str, str], NewOrder] = {}
    t0 = time.perf_counter()
    for new, cancel in pairs:
        d[(new.strat, new.cl_id)] = new
        del d[(cancel.strat, cancel.cl_id)]
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("pairs", nargs="?", type=int, default=100_000, help="new + cancel pairs")
    n = ap.parse_args(argv).pairs
    pairs = _requests(n)
    bench_engine(pairs[: min(n, 2000)])  # warm-up
    t_eng = bench_engine(pairs)
    t_dict = bench_dict(pairs)
    eng_rate = 2 * n / t_eng
    dict_rate = 2 * n / t_dict
    print(f"matching core : {n} new+cancel pairs on a {LEVELS}-level book in {t_eng:.3f} s")
    print(f"                {eng_rate:,.0f} orders/s ({n / t_eng:,.0f} pairs/s)")
    print(f"dict baseline : {dict_rate:,.0f} ops/s (insert + delete of the same keys)")
    print(f"ratio         : matching core is {dict_rate / eng_rate:,.1f}x slower than a bare dict")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
