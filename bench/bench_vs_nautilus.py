"""mlthon's backtest beside nautilus_trader's BacktestEngine, on the same synthetic L2 data.

One seeded synthetic dataset (a random-walk BTCUSDT book about 20 levels deep per side, price-level
deltas that add, modify and delete at and near the top, and public trades) is generated once as
plain records ``(ts, side, price, size, action)``, then turned into

* mlthon messages (``FeedStatus`` framing the snapshot, one ``BookUpdate`` per venue message, one
  ``TradeUpdate`` per trade), replayed by :class:`mlthon.app.backtest.Backtest` with the simulated
  exchange to a do-nothing strategy subscribed to ``PriceLevelBook`` and ``PublicTrades`` (called
  once per delta and per trade: the equivalent of the nautilus strategy below, and the headline);
  for information, the same without the exchange, and with ``LevelBook`` and ``BBO`` added (each
  delta then gives two calls, one keyed by price, one by level id, plus the BBO changes);
* nautilus_trader objects (``OrderBookDelta`` objects with ``F_LAST`` on the last delta of each
  venue message, a ``CLEAR`` plus ``F_SNAPSHOT`` adds for the snapshot; one ``TradeTick`` per
  trade), run by nautilus' ``BacktestEngine`` (an L2_MBP simulated venue, trade execution on) to a
  do-nothing strategy subscribed to order-book deltas (managed book, the default) and trade ticks.
  It runs twice: with one ``OrderBookDelta`` per delta (as nautilus' catalogs and wranglers store
  L2 data; the strategy is called per delta, as mlthon's is), and with one ``OrderBookDeltas`` per
  venue message (as nautilus' own Binance adapter publishes depth updates; one call per message,
  the faster of the two). The headline ratio is against the faster one.

The unit is the same on both sides: one event is one book delta or one trade (a record of the
dataset). Building the messages/objects is timed and printed, but not part of the rates; the rates
are records / wall time of the run call (``Backtest.run()``, ``BacktestEngine.run()``), and the
same by the process's CPU time (steadier on a shared machine). Each strategy counts its callbacks,
and the bench checks that both saw every record.

nautilus_trader is an optional bench dependency: ``pip install nautilus_trader``.

The default of 20 deltas per venue message (variable, exponential) is below the Binance USD-M
capture's BTCUSDT depth stream (median about 30, mean about 68 over the full depth) because the
synthetic book is only about 20 levels deep; fewer deltas per message cost mlthon more (it pays
per message), so the figure is not flattering. The machine's load moves these figures by up to 50%:
use ``--repeat`` (best of N, interleaved) and give ``uptime`` beside them.

``--risk`` adds the sim case with a risk layer, every limit set (none reached; the strategy sends
no order, so this is what the layer costs the event path: its loss-limit timer and checks), and
prints its cost; ``bench_events.py --case demo --risk`` gives the cost for a trading strategy.

Run: python bench/bench_vs_nautilus.py [--events 1000000] [--seed 7] [--deltas-per-msg 20]
     [--repeat 1] [--risk]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange
from mlthon.basics.mlt_enum import FeedHandlerStatus
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.bus import messages as m
from mlthon.infra.instruments import load_instruments

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_events import risk_config  # the same limits as bench_events.py --risk

BTC = 1001
EX = Exchange.BinanceUsdm
T0 = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC, in ns
ADD, MODIFY, DELETE, TRADE = 0, 1, 2, 3  # record actions (mlthon's book actions, plus trades)
BID, ASK = 1, 2  # book side; for trades, the taker's side (1 buy, 2 sell)
DEPTH = 20  # levels per side in the snapshot; kept between MIN_DEPTH and MAX_DEPTH
MIN_DEPTH, MAX_DEPTH = 15, 25

Record = tuple[int, int, str, str, int]  # (ts ns, side, price, size, action)


# ------------------------------------------------------------------------------------------------
# The dataset
# ------------------------------------------------------------------------------------------------


def _px(ticks: int) -> str:
    """Price in ticks of 0.1 as a decimal string."""
    return f"{ticks // 10}.{ticks % 10}"


def _qty(lots: int) -> str:
    """Size in lots of 0.001 as a decimal string."""
    return f"{lots // 1000}.{lots % 1000:03d}"


def generate(
    n_events: int, seed: int, deltas_per_msg: int, trade_share: float = 0.05
) -> list[Record]:
    """``n_events`` records in time order: a 2 x DEPTH level snapshot at T0, then venue messages
    of price-level deltas (a variable number per message, mean ``deltas_per_msg``; all deltas of
    one message share its timestamp) and single trades (``trade_share`` of the records). Trades
    hit the best level, whose new size follows in the next book message, as on Binance."""
    rng = random.Random(seed)
    rand = rng.random
    randint = rng.randint
    expo = rng.expovariate
    books: dict[int, dict[int, int]] = {BID: {}, ASK: {}}  # side -> {price ticks: lots}
    bids, asks = books[BID], books[ASK]
    best_bid = 600_000  # 60000.0
    for i in range(DEPTH):
        bids[best_bid - i] = randint(1, 5000)
        asks[best_bid + 1 + i] = randint(1, 5000)
    out: list[Record] = [(T0, BID, _px(t), _qty(q), ADD) for t, q in bids.items()]
    out += [(T0, ASK, _px(t), _qty(q), ADD) for t, q in asks.items()]
    # Odds of a trade message rather than a book message, for trade_share of the records.
    odds = trade_share * deltas_per_msg / (1.0 - trade_share)
    p_trade = odds / (1.0 + odds)
    pending: list[tuple[int, int, int]] = []  # (side, ticks, lots) left by trades
    ts = T0
    trade_id = 0

    def delta() -> tuple[int, int, int, int]:
        """One consistent change of the book: (action, side, ticks, lots)."""
        side = BID if rand() < 0.5 else ASK
        book = books[side]
        levels = sorted(book, reverse=side == BID)  # best first
        n = len(levels)
        step = -1 if side == BID else 1  # away from the top
        if n < MIN_DEPTH:
            t = levels[-1] + step * randint(1, 3)
            q = book[t] = randint(1, 5000)
            return ADD, side, t, q
        if n > MAX_DEPTH:
            del book[levels[-1]]
            return DELETE, side, levels[-1], 0
        r = rand()
        if r < 0.55:  # size change, mostly at the top
            t = levels[min(int(expo(0.35)), n - 1)]
            q = book[t] = randint(1, 5000)
            return MODIFY, side, t, q
        if r < 0.70:  # a level leaves; at the top, the spread widens
            t = levels[min(int(expo(0.5)), n - 1)]
            del book[t]
            return DELETE, side, t, 0
        # A level appears: inside the spread when there is room (the mid walks), else in a gap.
        best_bid, best_ask = max(bids), min(asks)
        j = 0 if best_ask - best_bid > 1 and rand() < 0.7 else int(expo(0.4))
        if side == BID:
            t = min(best_bid + 1 - j, best_ask - 1)
        else:
            t = max(best_ask - 1 + j, best_bid + 1)
        q = randint(1, 5000)
        action = MODIFY if t in book else ADD
        book[t] = q
        return action, side, t, q

    while len(out) < n_events:
        ts += randint(200_000, 10_000_000)  # 0.2 to 10 ms apart
        if rand() < p_trade:
            taker = BID if rand() < 0.5 else ASK
            book = asks if taker == BID else bids
            t = min(asks) if taker == BID else max(bids)
            q = min(book[t], 1 + int(expo(1 / 150)))
            trade_id += 1
            out.append((ts, taker, _px(t), _qty(q), TRADE))
            left = book[t] - q
            if left:
                book[t] = left
            else:
                del book[t]
            pending.append((ASK if taker == BID else BID, t, left))
            continue
        k = min(1 + int(expo(1 / max(deltas_per_msg - 1, 1e-9))), 4 * deltas_per_msg)
        for side, t, q in pending:
            out.append((ts, side, _px(t), _qty(q), MODIFY if q else DELETE))
        pending.clear()
        for _ in range(k):
            action, side, t, q = delta()
            out.append((ts, side, _px(t), _qty(q) if q else "0", action))
    del out[n_events:]
    return out


def messages_of(records: list[Record]) -> list[tuple[int, list[Record]]]:
    """Venue messages: (kind, records) with kind TRADE or ADD (a book message), records grouped by
    timestamp; the first book message is the snapshot."""
    out: list[tuple[int, list[Record]]] = []
    last_ts = -1
    for rec in records:
        if rec[4] == TRADE:
            out.append((TRADE, [rec]))
            last_ts = -1
        elif rec[0] == last_ts:
            out[-1][1].append(rec)
        else:
            out.append((ADD, [rec]))
            last_ts = rec[0]
    return out


# ------------------------------------------------------------------------------------------------
# mlthon
# ------------------------------------------------------------------------------------------------


def _ticks(px: str) -> int:
    """A price of the dataset (one decimal) in BTCUSDT's ticks of 0.10."""
    return int(px.replace(".", ""))


def _lots(qty: str) -> int:
    """A size of the dataset (three decimals, or "0") in lots of 0.001."""
    return int(qty.replace(".", ""))


def mlthon_messages(msgs: list[tuple[int, list[Record]]]) -> list[m.Msg]:
    """The dataset as mlthon's bus messages: integer ticks and lots (wire version 2), as a
    feed sends them after converting the venue's text once."""
    ex = int(EX.value)
    out: list[m.Msg] = [m.FeedStatus(ex=ex, iid=BTC, status=FeedHandlerStatus.SnapshotStart, ts=T0)]
    for seq, (kind, recs) in enumerate(msgs, 1):
        ts = recs[0][0]
        if kind == TRADE:
            _, taker, px, qty, _ = recs[0]
            tr = [(taker, _ticks(px), _lots(qty), ts, str(seq))]
            out.append(m.TradeUpdate(ex=ex, iid=BTC, ts=ts, seq=seq, tr=tr))
        else:
            ch = [(a, s, _ticks(px), _lots(qty)) for _, s, px, qty, a in recs]
            out.append(m.BookUpdate(ex=ex, iid=BTC, ts=ts, ets=ts, seq=seq, ch=ch))
        if seq == 1:
            out.append(m.FeedStatus(ex=ex, iid=BTC, status=FeedHandlerStatus.SnapshotEnd, ts=T0))
    return out


# What the mlthon strategy subscribes to. ``deltas``: every price-level book event and the trades,
# the equivalent of the nautilus strategy (order-book deltas and trade ticks; the headline).
# ``all``: also the same events keyed by level id and the BBO, so every delta gives two calls.
SUBSCRIPTIONS = {
    "deltas": (MDSub.PriceLevelBook, MDSub.PublicTrades),
    "all": (MDSub.PriceLevelBook, MDSub.LevelBook, MDSub.BBO, MDSub.PublicTrades),
}


class EveryBookEvent(Strategy):
    """Subscribes to the book events and the trades of BTCUSDT; only counts them."""

    def __init__(self, subs: tuple[MDSub, ...]) -> None:
        super().__init__("bench")
        self.subs = subs
        self.levels = 0
        self.level_ids = 0
        self.bbo = 0
        self.trades = 0

    def on_start(self, params: str) -> None:
        for sub in self.subs:
            self.env.subscribe(EX, BTC, sub)

    def on_add_price_level(self, exchange, instrument_id, side, price, qty, recv_ts):
        self.levels += 1

    def on_modify_price_level(self, exchange, instrument_id, side, price, new_qty, recv_ts):
        self.levels += 1

    def on_delete_price_level(self, exchange, instrument_id, side, price, recv_ts):
        self.levels += 1

    def on_add_level(self, exchange, instrument_id, side, level_id, price, qty, recv_ts):
        self.level_ids += 1

    def on_modify_level(self, exchange, instrument_id, side, level_id, new_qty, recv_ts):
        self.level_ids += 1

    def on_delete_level(self, exchange, instrument_id, side, level_id, recv_ts):
        self.level_ids += 1

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.bbo += 1

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.bbo += 1

    def on_public_trade(self, exchange, instrument_id, side, price, qty, exec_ts, recv_ts):
        self.trades += 1


def run_mlthon(
    data: list[m.Msg], *, exchange: bool, subs: str = "deltas", risk: bool = False
) -> tuple[float, float, EveryBookEvent, Any]:
    insts = [i for i in load_instruments() if i.instrument_id == BTC]
    gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "1000000"}}})
    strat = EveryBookEvent(SUBSCRIPTIONS[subs])
    bt = Backtest(
        strat,
        data=data,
        instruments=insts,
        name="bench",
        gateway=gw,
        simulate_exchange=exchange,
        risk=risk_config() if risk else None,
    )
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = bt.run()
    wall = time.perf_counter() - t0
    return wall, time.process_time() - c0, strat, result


# ------------------------------------------------------------------------------------------------
# nautilus_trader
# ------------------------------------------------------------------------------------------------


def import_nautilus() -> str:
    try:
        import nautilus_trader  # noqa: F401
    except ImportError:
        sys.exit(
            "bench_vs_nautilus: nautilus_trader is not installed; it is an optional bench "
            "dependency: pip install nautilus_trader"
        )
    return importlib.metadata.version("nautilus_trader")


def nautilus_data(
    msgs: list[tuple[int, list[Record]]], instrument_id: Any, *, batched: bool
) -> list[Any]:
    """One TradeTick per trade; per book message, its OrderBookDelta objects (``F_LAST`` on the
    last), or, ``batched``, one OrderBookDeltas holding them (as nautilus' own Binance adapter
    publishes depth updates)."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price, Quantity

    actions = {ADD: BookAction.ADD, MODIFY: BookAction.UPDATE, DELETE: BookAction.DELETE}
    sides = {BID: OrderSide.BUY, ASK: OrderSide.SELL}
    aggressor = {BID: AggressorSide.BUYER, ASK: AggressorSide.SELLER}
    f_last = int(RecordFlag.F_LAST)
    f_snap = int(RecordFlag.F_SNAPSHOT)
    prices: dict[str, Any] = {}
    sizes: dict[str, Any] = {}

    def price(s: str) -> Any:
        p = prices.get(s)
        if p is None:
            p = prices[s] = Price.from_str(s)
        return p

    def size(s: str) -> Any:
        q = sizes.get(s)
        if q is None:
            q = sizes[s] = Quantity.from_str(s if s != "0" else "0.000")
        return q

    out: list[Any] = []
    append = out.append
    for seq, (kind, recs) in enumerate(msgs, 1):
        ts = recs[0][0]
        if kind == TRADE:
            _, taker, px, qty, _ = recs[0]
            append(
                TradeTick(
                    instrument_id, price(px), size(qty), aggressor[taker], TradeId(str(seq)), ts, ts
                )
            )
            continue
        flags = 0
        deltas = []
        if seq == 1:  # the snapshot
            flags = f_snap
            deltas.append(OrderBookDelta.clear(instrument_id, seq, ts, ts))
        last = len(recs) - 1
        for i, (_, side, px, qty, action) in enumerate(recs):
            order = BookOrder(sides[side], price(px), size(qty), 0)
            deltas.append(
                OrderBookDelta(
                    instrument_id,
                    actions[action],
                    order,
                    flags | f_last if i == last else flags,
                    seq,
                    ts,
                    ts,
                )
            )
        if batched:
            append(OrderBookDeltas(instrument_id, deltas))
        else:
            out += deltas
    return out


def run_nautilus(msgs: list[tuple[int, list[Record]]], *, batched: bool) -> dict[str, Any]:
    """Build an engine and its data (timed apart from the run), run it once, dispose of it."""
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.identifiers import TraderId, Venue
    from nautilus_trader.model.objects import Money
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.trading.strategy import Strategy as NtStrategy

    class NoopBook(NtStrategy):
        """Subscribes to the order-book deltas and the trade ticks; only counts them."""

        def __init__(self, instrument_id: Any) -> None:
            super().__init__()
            self.iid = instrument_id
            self.book_calls = 0
            self.trades = 0

        def on_start(self) -> None:
            # managed=True (the default): the data engine keeps the book, as mlthon's env does.
            self.subscribe_order_book_deltas(self.iid, book_type=BookType.L2_MBP)
            self.subscribe_trade_ticks(self.iid)

        def on_order_book_deltas(self, deltas: Any) -> None:
            self.book_calls += 1

        def on_trade_tick(self, tick: Any) -> None:
            self.trades += 1

    t0 = time.perf_counter()
    instrument = TestInstrumentProvider.btcusdt_perp_binance()  # tick 0.1, lot 0.001
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR")
        )
    )
    engine.add_venue(
        venue=Venue("BINANCE"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=None,
        starting_balances=[Money(1_000_000, USDT)],
        book_type=BookType.L2_MBP,
        trade_execution=True,  # the matching engine sees the trades too, as mlthon's sim does
    )
    engine.add_instrument(instrument)
    data = nautilus_data(msgs, instrument.id, batched=batched)
    items = len(data)
    engine.add_data(data)
    del data
    strat = NoopBook(instrument.id)
    engine.add_strategy(strat)
    build = time.perf_counter() - t0
    gc.collect()
    c1 = time.process_time()
    t1 = time.perf_counter()
    engine.run()
    wall = time.perf_counter() - t1
    cpu = time.process_time() - c1
    engine.dispose()
    return {
        "build": build,
        "wall": wall,
        "cpu": cpu,
        "items": items,
        "book": strat.book_calls,
        "trades": strat.trades,
    }


# ------------------------------------------------------------------------------------------------


def _best(walls: list[float]) -> str:
    """The best wall time, and all of them when there are several."""
    best = min(walls)
    if len(walls) == 1:
        return f"wall {best:.2f} s"
    return f"best wall {best:.2f} s of " + ", ".join(f"{w:.2f}" for w in walls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="book deltas + trades")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--deltas-per-msg",
        type=int,
        default=20,
        help="mean book deltas per venue message (variable, exponential; default 20)",
    )
    ap.add_argument(
        "--risk",
        action="store_true",
        help="also run the sim case with a risk layer, every limit set (bench_events.py's "
        "--risk limits), and print its cost",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the four runs (interleaved); the best wall time of each is reported",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    nt_version = import_nautilus()

    t0 = time.perf_counter()
    records = generate(args.events, args.seed, args.deltas_per_msg)
    msgs = messages_of(records)
    gen_s = time.perf_counter() - t0
    n = len(records)
    n_trades = sum(1 for _, _, _, _, a in records if a == TRADE)
    n_deltas = n - n_trades
    n_book = sum(1 for kind, _ in msgs if kind != TRADE)
    del records
    print(
        f"dataset: {n:,} events ({n_deltas:,} deltas in {n_book:,} messages, "
        f"mean {n_deltas / n_book:.1f} deltas/message; {n_trades:,} trades), "
        f"seed {args.seed}, built in {gen_s:.2f} s"
    )
    t0 = time.perf_counter()
    data = mlthon_messages(msgs)
    build_ml = time.perf_counter() - t0

    # mlthon runs: (subscriptions, simulated exchange or not).
    ml_runs = {
        "sim": ("deltas", True, False),
        "replay": ("deltas", False, False),
        "sim_all": ("all", True, False),
    }
    if args.risk:
        ml_runs["sim_risk"] = ("deltas", True, True)
    walls: dict[str, list[float]] = {k: [] for k in (*ml_runs, "delta", "batch")}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    problems: list[str] = []
    ml_msgs = 0
    builds: dict[str, float] = {}
    for _ in range(max(1, args.repeat)):
        for key, (subs, exchange, risk) in ml_runs.items():
            wall, cpu, strat, result = run_mlthon(data, exchange=exchange, subs=subs, risk=risk)
            walls[key].append(wall)
            cpus[key].append(cpu)
            ml_msgs = result.summary["events"]
            want = (n_deltas, n_deltas if subs == "all" else 0, n_trades)
            got = (strat.levels, strat.level_ids, strat.trades)
            if got != want:
                problems.append(f"mlthon {key}: saw {got} (deltas, level ids, trades), want {want}")
            if subs == "all" and not strat.bbo:
                problems.append(f"mlthon {key}: no BBO callback")
            del strat, result
        gc.collect()
        for key, batched in (("delta", False), ("batch", True)):
            r = run_nautilus(msgs, batched=batched)
            walls[key].append(r["wall"])
            cpus[key].append(r["cpu"])
            builds[key] = r["build"]
            # Per delta, nautilus gets one more: the CLEAR that opens its snapshot.
            want_book = n_book if batched else n_deltas + 1
            if (r["book"], r["trades"]) != (want_book, n_trades):
                problems.append(
                    f"nautilus {key}: {r['book']} book callbacks (want {want_book}), "
                    f"{r['trades']} trades"
                )
    print(
        f"  built: mlthon {ml_msgs:,} messages in {build_ml:.2f} s; nautilus "
        f"{n_deltas + 1 + n_trades:,} OrderBookDelta/TradeTick in {builds['delta']:.2f} s, "
        f"{n_book + n_trades:,} OrderBookDeltas/TradeTick in {builds['batch']:.2f} s "
        f"(engine set-up and add_data included)"
    )
    rate = {k: n / min(v) for k, v in walls.items()}
    print(
        f"mlthon backtest (sim exchange), price-level deltas + trades: {rate['sim']:,.0f} "
        f"events/s ({_best(walls['sim'])}; {ml_msgs / min(walls['sim']):,.0f} venue messages/s)"
    )
    print(
        f"mlthon replay only (no exchange), price-level deltas + trades: {rate['replay']:,.0f} "
        f"events/s ({_best(walls['replay'])})"
    )
    print(
        f"mlthon backtest (sim exchange), price levels + level ids + BBO + trades (two calls "
        f"per delta): {rate['sim_all']:,.0f} events/s ({_best(walls['sim_all'])})"
    )
    print(
        f"nautilus_trader {nt_version} BacktestEngine, one OrderBookDelta per delta: "
        f"{rate['delta']:,.0f} events/s ({_best(walls['delta'])})"
    )
    print(
        f"nautilus_trader {nt_version} BacktestEngine, one OrderBookDeltas per venue message: "
        f"{rate['batch']:,.0f} events/s ({_best(walls['batch'])})"
    )
    print(
        f"ratio mlthon/nautilus: {rate['sim']:,.0f}/{rate['batch']:,.0f} = "
        f"{rate['sim'] / rate['batch']:.2f} x against batched deltas, "
        f"{rate['sim'] / rate['delta']:.2f} x against single deltas (goal >= 4x); "
        f"with every subscription {rate['sim_all'] / rate['batch']:.2f} x and "
        f"{rate['sim_all'] / rate['delta']:.2f} x"
    )
    cpu = {k: n / min(v) for k, v in cpus.items()}
    print(
        "by CPU time (this process's, best of each): "
        + ", ".join(f"{k} {n / cpu[k]:.2f} s" for k in cpus)
        + f"; ratio mlthon/nautilus {cpu['sim'] / cpu['batch']:.2f} x against batched deltas, "
        f"{cpu['sim'] / cpu['delta']:.2f} x against single deltas; with every subscription "
        f"{cpu['sim_all'] / cpu['batch']:.2f} x"
    )
    print(f"  (events = book deltas + trades, the same {n:,} records on both sides)")
    if args.risk:
        print(
            f"risk layer (every limit set): {rate['sim_risk']:,.0f} events/s against "
            f"{rate['sim']:,.0f} without ({rate['sim'] / rate['sim_risk'] - 1:+.1%} time by wall, "
            f"{cpu['sim'] / cpu['sim_risk'] - 1:+.1%} by CPU; goal under +5%); "
            f"{rate['sim_risk'] / rate['batch']:.2f} x nautilus batched"
        )
    for p in problems:
        print(f"CHECK FAILED: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
