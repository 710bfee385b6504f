"""The hftbacktest half of ``bench/bench_vs_hftbacktest.py``: its input events and its strategy.

hftbacktest (``pip install hftbacktest``, with numba) is an optional bench dependency; this module
imports it at the top, so import it only where it is installed.

**Input.** hftbacktest's own converter (``hftbacktest.data.utils.binancefutures.convert``) reads
the capture, after two adjustments that make hftbacktest's exchange see the market mlthon's sim
sees (both are bench configuration, not changes to either model):

* **The Binance book sync.** The converter applies every depth diff in file order, the REST
  snapshot included where it was received (clearing the levels it covers). The documented
  procedure, which mlthon's feed engine follows, drops the diffs older than the snapshot
  (``u < lastUpdateId``) and applies the buffered newer ones *after* it. The converter is given a
  copy of the capture arranged that way (:func:`synced_copy`): old diffs left out, buffered
  newer diffs moved just behind the snapshot line with its receive time.
* **One timeline.** hftbacktest's exchange runs on the venue's timestamps (``exch_ts``, ms on
  Binance) and the strategy on the receive times (``local_ts``); mlthon's sim has one timeline,
  the receive time, and models the feed's delay with a constant (``[latency] market_data``, 0
  here). The events get ``exch_ts = local_ts`` (:func:`one_timeline`): a feed latency of 0 on
  both sides, and an order reaching the exchange at ``t + entry`` meets the same book in both.

**Strategy** (:func:`passive_quoter`, numba ``njit``; the same rules as ``PassiveQuoter`` in the
bench): every ``interval`` ns from ``anchor``, after ``warmup`` ns, keep one bid ``depth`` ticks
below the best bid and one ask ``depth`` ticks above the best ask, post-only (GTX), ``lots``
lots each; an order whose price is no longer the target is cancelled (once acknowledged) and a
new one sent at the target when no other live order of that side is waiting; no bid once the
position is ``cap`` lots long, no ask once it is ``cap`` short. Fills are read from the orders
before the inactive ones are cleared and returned as rows ``(exch_ts, side, price_tick,
exec_lots, order_id)``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
from hftbacktest import (
    BUY,
    CANCELED,
    EXCH_EVENT,
    FILLED,
    GTX,
    LIMIT,
    LOCAL_EVENT,
    NEW,
    NONE,
    SELL,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from hftbacktest.data.utils import binancefutures
from hftbacktest.data.validation import validate_event_order
from hftbacktest.order import PARTIALLY_FILLED
from numba import njit

FILL_COLUMNS = 5  # exch_ts, side (1 buy, -1 sell), price tick, executed lots, order id
MAX_FILLS = 1_000_000
END_OF_DATA = 1  # what elapse returns at the end of the data
ELAPSE_ERRORS = {
    10: "OrderIdExist",
    11: "OrderRequestInProcess",
    12: "OrderNotFound",
    13: "InvalidOrderRequest",
    14: "InvalidOrderStatus",
    15: "EndOfData",
}


def synced_copy(src: Path, dst: Path) -> dict[str, int]:
    """Write ``dst``, a gzip copy of the Binance capture ``src`` arranged as the Binance
    snapshot-and-diff procedure applies it (see the module docstring). Returns counts."""
    with gzip.open(src, "rb") as f:
        lines = [(int(raw[:19]), raw) for raw in f]
    snap_at = -1
    last_id = 0
    for i, (_ts, raw) in enumerate(lines):
        if b'"stream"' not in raw[:64] and b"lastUpdateId" in raw:
            snap_at = i
            last_id = json.loads(raw[20:])["lastUpdateId"]
            break
    if snap_at < 0:
        raise ValueError(f"{src}: no REST depth snapshot line (an *_20240808 capture has one)")
    snap_ts = lines[snap_at][0]
    out: list[bytes] = []
    moved: list[bytes] = []
    dropped = 0
    for i, (_ts, raw) in enumerate(lines):
        if i == snap_at:
            out.append(raw)
            out.extend(moved)
            continue
        if b"depthUpdate" in raw[:120]:
            data = json.loads(raw[20:])["data"]
            if data["u"] < last_id:
                dropped += 1
                continue
            if i < snap_at:
                # received before the snapshot, newer than it: applied right after it
                moved.append(b"%d %s" % (snap_ts, raw[20:]))
                continue
        out.append(raw)
    # the receive time of the first line the converter reads (a bookTicker is not read)
    first_ts = next(int(raw[:19]) for raw in out if b"@bookTicker" not in raw[:80])
    with gzip.open(dst, "wb", compresslevel=1) as g:
        g.writelines(out)
    return {"dropped_old_diffs": dropped, "moved_diffs": len(moved), "first_ts": first_ts}


def one_timeline(data: np.ndarray, first_ts: int) -> np.ndarray:
    """hftbacktest events with the exchange timestamp set to the receive time (feed latency 0),
    each event seen by the exchange and the strategy at once. The converter shifts every receive
    time by one constant when some are earlier than their exchange time (the capture's clock was
    behind Binance's); the shift is undone, so that the first event is at ``first_ts`` again and
    every time is the capture's, as mlthon replays it."""
    local = data[(data["ev"] & LOCAL_EVENT) != 0].copy()
    local["local_ts"] -= int(local["local_ts"].min()) - first_ts
    local["exch_ts"] = local["local_ts"]
    local["ev"] |= EXCH_EVENT | LOCAL_EVENT
    validate_event_order(local)
    return local


def convert(src: Path, work: Path) -> np.ndarray:
    """The capture as hftbacktest events, ready for the bench (see the module docstring)."""
    synced = work / (src.name.removesuffix(".gz") + ".synced.gz")
    counts = synced_copy(src, synced)
    data = binancefutures.convert(str(synced), combined_stream=True)
    synced.unlink()
    return one_timeline(data, counts["first_ts"])


def make_backtest(
    data: str | np.ndarray,
    *,
    tick: float,
    lot: float,
    entry_ns: int,
    response_ns: int,
    maker_fee: float,
    taker_fee: float,
):
    """hftbacktest's HashMap backtest of one linear asset: constant order latency, the
    risk-averse (conservative) queue model, the no-partial-fill exchange (the orders are one lot:
    nothing can fill in part; 2.4.4's partial-fill exchange keeps an order that a trade at its
    price fills exactly to its size in its book, and the next event at that price stops the run
    with ``InvalidOrderStatus``, ``elapse`` code 14), fees on traded value."""
    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(entry_ns, response_ns)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(maker_fee, taker_fee)
        .tick_size(tick)
        .lot_size(lot)
    )
    return HashMapMarketDepthBacktest([asset])


INVALID_MIN = -9223372036854775808  # hftbacktest's best bid tick of an empty side
INVALID_MAX = 9223372036854775807  # and best ask tick


@njit
def _take_fills(hbt, fills, n: int, lot: float) -> int:
    """Append the filled orders (before ``clear_inactive_orders`` drops them) to ``fills``."""
    values = hbt.orders(0).values()
    while values.has_next():
        order = values.get()
        if order.status == FILLED and n < fills.shape[0]:
            fills[n, 0] = order.exch_timestamp
            fills[n, 1] = 1 if order.side == BUY else -1
            fills[n, 2] = order.price_tick
            fills[n, 3] = round(order.qty / lot)
            fills[n, 4] = order.order_id
            n += 1
    return n


@njit
def passive_quoter(
    hbt,
    fills,
    anchor: int,
    interval: int,
    warmup: int,
    depth: int,
    lots: int,
    cap: int,
    lot: float,
    tick: float,
) -> int:
    """Run the strategy to the end of the data; returns the number of fill rows in ``fills``
    and the code ``elapse`` ended with (1: the end of the data; :data:`ELAPSE_ERRORS`).
    Every order is filled whole or not at all (``lots`` is 1 in the bench, and hftbacktest's
    local position follows complete fills only), so a filled order is one fill row."""
    n = 0
    next_id = 1
    qty = lots * lot
    # the strategy's clock: anchor + k * interval, as the mlthon twin's timer (the first
    # elapse sets the clock to the first event's time; until then it reads int64's maximum)
    code = hbt.elapse(0)
    if code == 0:
        code = hbt.elapse(max(0, anchor - hbt.current_timestamp))
    if code != 0:
        return n, code
    begin = anchor + warmup
    while True:
        code = hbt.elapse(interval)
        if code != 0:
            break
        n = _take_fills(hbt, fills, n, lot)
        hbt.clear_inactive_orders(0)
        if hbt.current_timestamp < begin:
            continue
        d = hbt.depth(0)
        bb = d.best_bid_tick
        ba = d.best_ask_tick
        if bb == INVALID_MIN or ba == INVALID_MAX or bb >= ba:
            continue
        pos = round(hbt.position(0) / lot)
        for s in range(2):
            side = BUY if s == 0 else SELL
            target = bb - depth if s == 0 else ba + depth
            allowed = pos < cap if s == 0 else pos > -cap
            waiting = False  # a live order of this side that stays (or is not acknowledged yet)
            values = hbt.orders(0).values()
            while values.has_next():
                order = values.get()
                if order.side != side or order.req == CANCELED:
                    continue  # the other side, or on its way out
                if allowed and order.price_tick == target:
                    waiting = True
                elif order.req == NONE and (
                    order.status == NEW or order.status == PARTIALLY_FILLED
                ):
                    hbt.cancel(0, order.order_id, False)
                else:
                    waiting = True  # not acknowledged yet: wait for its answer
            if allowed and not waiting:
                if s == 0:
                    hbt.submit_buy_order(0, next_id, target * tick, qty, GTX, LIMIT, False)
                else:
                    hbt.submit_sell_order(0, next_id, target * tick, qty, GTX, LIMIT, False)
                next_id += 1
    return _take_fills(hbt, fills, n, lot), code
