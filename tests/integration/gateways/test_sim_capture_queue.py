"""Queue position at work on a real Binance USD-M capture (hftbacktest, BTCUSDT 2024-08-08).

The same passive orders are replayed under the conservative and the probabilistic queue models.
Every order must fill no earlier under the conservative model (its quantity ahead is never smaller),
at least one must fill strictly later (or not at all), and no order may fill before the displayed
quantity ahead of it on arrival has traded or left the level.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlthon.basics.mlt_enum import Side
from mlthon.feeds.replay import replay_file
from mlthon.gateways.sim.matching import MatchingEngine
from mlthon.gateways.sim.queue import ConservativeQueue, QueueModel, power_queue
from mlthon.infra.bus.messages import BID, DELETE, BookUpdate, NewOrder, OrderExecution, TradeUpdate
from mlthon.infra.instruments import load_instruments

pytestmark = pytest.mark.integration

CAPTURE = Path("hftbacktest/binance_usdm_futures/btcusdt_20240808.gz")
IID = 1001
NS = 1_000_000_000
WINDOW_S = 150  # replay the first two and a half minutes
EVERY_S = 8  # place a new pair of passive orders every 8 s


@pytest.fixture(scope="module")
def messages(shared_data):
    inst = [i for i in load_instruments() if i.instrument_id == IID]
    msgs: list[Any] = []
    start = None
    for m in replay_file(shared_data / CAPTURE, inst):
        ts: int = getattr(m, "ts", 0)
        start = start or ts
        if ts - start > WINDOW_S * NS:
            break
        msgs.append(m)
    return inst, msgs


class Witness:
    """Follows, for one order, how much of the level at its price has traded or left.

    A trade printing *through* the price, or an opposite quote appearing at or through it, proves
    the whole level has left at the exchange (nothing trades beyond a non-empty level, and a book
    does not cross), even if the depth stream, which lags the trade stream, still shows it.
    Prices are ticks and sizes lots, as the messages carry them.
    """

    def __init__(self, is_bid: bool, tick: int, level: int) -> None:
        self.is_bid, self.tick, self.level = is_bid, tick, level
        self.ahead0 = level  # lots displayed ahead on arrival
        self.gone = 0  # lots traded at the price + decreases of the level (or all, if crossed)
        self.live = True

    def on_book(self, m: BookUpdate) -> None:
        for action, side, t, n in m.ch:
            if (side == BID) == self.is_bid:
                if t == self.tick:
                    new = 0 if action == DELETE else n
                    self.gone += max(0, self.level - new)
                    self.level = new
            elif action != DELETE and (t <= self.tick if self.is_bid else t >= self.tick):
                self.gone = max(self.gone, self.ahead0)

    def on_trade(self, m: TradeUpdate) -> None:
        for taker, t, n, _ets, _id in m.tr:
            if (taker == BID) == self.is_bid:
                continue  # a buyer lifting offers does not touch bids, and vice versa
            if t == self.tick:
                self.gone += n
            elif t < self.tick if self.is_bid else t > self.tick:
                self.gone = max(self.gone, self.ahead0)


def run(
    model: QueueModel, inst, msgs
) -> tuple[dict[str, int], dict[str, Witness], dict[str, Decimal]]:
    """Replay ``msgs`` placing a bid and an ask at the touch every EVERY_S; first-fill times."""
    first_fill: dict[str, int] = {}
    filled: dict[str, Decimal] = {}

    def sink(strat, msg, _kind):
        if isinstance(msg, OrderExecution):
            first_fill.setdefault(msg.cl_id, msg.exec_ts)
            filled[msg.cl_id] = filled.get(msg.cl_id, Decimal(0)) + Decimal(msg.fill_qty)
            w = witnesses[msg.cl_id]
            # never before the displayed quantity ahead on arrival has traded or left
            assert w.gone >= w.ahead0, (msg.cl_id, w.gone, w.ahead0)
            if msg.leaves_qty == "0.000":
                w.live = False

    eng = MatchingEngine(inst, sink, queue_model=model, balances={"USDT": Decimal("1e9")})
    mkt = eng.market(IID)
    witnesses: dict[str, Witness] = {}
    start = msgs[0].ts
    next_place = start + 20 * NS
    n = 0
    for m in msgs:
        if m.ts >= next_place and mkt.best_bid() is not None and mkt.best_ask() is not None:
            next_place += EVERY_S * NS
            for is_bid in (True, False):
                tick = mkt.best_bid() if is_bid else mkt.best_ask()
                assert tick is not None
                price = mkt.price_of(tick)
                cl_id = f"{'b' if is_bid else 'a'}{n}"
                witnesses[cl_id] = Witness(is_bid, tick, mkt.level(is_bid, tick))
                eng.new_order(
                    NewOrder(
                        strat=cl_id,  # one strategy per order: they never interact
                        cl_id=cl_id,
                        instrument_id=IID,
                        side=Side.Buy if is_bid else Side.Sell,
                        price=str(price),
                        qty="0.010",
                        ts=m.ts,
                    ),
                    m.ts,
                )
            n += 1
        for w in witnesses.values():
            if not w.live:
                continue
            if isinstance(m, BookUpdate):
                w.on_book(m)
            elif isinstance(m, TradeUpdate):
                w.on_trade(m)
        eng.on_market_data(m, m.ts)
    return first_fill, witnesses, filled


def test_conservative_queue_fills_later_than_probabilistic(messages):
    inst, msgs = messages
    cons, witnesses, _ = run(ConservativeQueue(), inst, msgs)
    prob, _, _ = run(power_queue(2.0, seed=1), inst, msgs)
    orders = sorted(witnesses)
    assert len(orders) >= 20
    never = 10**30
    later = 0
    for cl_id in orders:
        c, p = cons.get(cl_id, never), prob.get(cl_id, never)
        assert p <= c, f"{cl_id}: probabilistic fill at {p} after conservative fill at {c}"
        later += c > p
    # the queue model matters on real data: some orders wait longer (or forever) when
    # cancellations are assumed to come from behind
    assert later >= 1
    assert len(prob) >= len(cons)
    # and some orders do fill: the scenario is not vacuous
    assert len(cons) >= 1
