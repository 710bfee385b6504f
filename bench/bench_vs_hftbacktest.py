"""Fidelity and speed: mlthon's backtest beside hftbacktest's, one passive strategy, one capture.

The same fixed passive strategy is written twice: for hftbacktest as a numba ``njit`` loop
(``bench/hftbacktest_strategy.py``: ``elapse``, ``depth``, ``submit_buy_order`` /
``submit_sell_order`` GTX, ``cancel``) and for mlthon as an ``IStrategy`` (:class:`PassiveQuoter`)
run by :class:`mlthon.app.backtest.Backtest` with the simulated exchange. Every ``interval`` from
the strategy's start, after a warm-up, each keeps one bid ``depth`` ticks below the best bid and
one ask ``depth`` ticks above the best ask, post-only, one lot each; an order whose price is no
longer the target is cancelled once acknowledged and a new one is sent when no other live order of
that side is waiting; no bid once ``cap`` lots long, no ask once ``cap`` lots short.

The two exchanges are set up alike, as far as both allow:

* queue: hftbacktest's ``RiskAdverseQueueModel`` = mlthon's ``conservative`` model (we advance
  only by trades at our price, or when the level shrinks below what is ahead of us);
* exchange: one-lot orders, so nothing fills in part (hftbacktest fills a crossed order whole
  where mlthon takes the crossing level's size, and its local position follows complete fills
  only); hftbacktest's ``NoPartialFillExchange`` (its ``PartialFillExchange`` in 2.4.4 leaves an
  order filled exactly to its size by a trade at its price in its book, and stops the run with
  ``InvalidOrderStatus`` at the next event there);
* latency: constant, both ways (order entry and response), the same in both; market data:
  hftbacktest's events get ``exch_ts = local_ts`` (mlthon's sim has one timeline, the receive
  time, with ``[latency] market_data`` 0);
* book: hftbacktest's converter reads a copy of the capture arranged as the Binance
  snapshot-and-diff sync applies it (mlthon's feed engine does that sync itself);
* fees: the instrument's maker and taker rates in both; no minimum notional (hftbacktest has
  none): the instrument is given ``min_notional = 0``.

One model difference remains, and shows only with orders at the touch re-placed often: when the
book crosses a resting order (a bid appears above our ask), both fill it at its own price, but
mlthon also takes the filled lots off the crossing level until the venue next reports it (the
sim's ``taken`` overlay, ``docs/simulation.md`` section 2) and hftbacktest leaves the level whole;
an order of ours joining that level meanwhile has fewer lots ahead of it in mlthon.

Printed: each side's fills (count; the first difference, if any: time, side, price, qty) and
whether they are identical to the nanosecond of the exchange timestamp; the wall and CPU time of
each run and the ratio mlthon / hftbacktest (goal: at most 3x). hftbacktest's numba code is
compiled before the timing, on a small slice of the same events; its run reads the events
pre-converted (an npz, written on the first run); mlthon's run is timed twice: cold (decoding the
capture's JSON and writing its replay cache) and cached (reading the replay cache, the steady
state of a sweep).

``--data`` takes a Binance USD-M capture of hftbacktest's form with its REST snapshot line (the
instrument linear; ``--instrument`` its mlthon id).

Run: python bench/bench_vs_hftbacktest.py [--data FILE] [--instrument 1001] [--seconds N]
     [--interval-ms 100] [--depth-ticks 1] [--cap 5] [--entry-ms 5] [--response-ms 5]
     [--warmup-s 20] [--repeat 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import TIF, ExecInstructions, GtwRejectCode, Instrument, OrderType, Side
from mlthon.basics.mlt_enum import CancelCode, InstrumentKind
from mlthon.basics.tickbook import TickBook
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.latency import FixedDelay, LatencyConfig
from mlthon.infra.instruments import load_instruments

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "hftbacktest"
DEFAULT_DATA = SHARED / "binance_usdm_futures" / "btcusdt_20240808.gz"
MS = 1_000_000
S = 1_000_000_000

Fill = tuple[int, int, int, int, int]  # exch_ts, side (1 buy, -1 sell), price tick, lots, order id


@dataclass(frozen=True)
class Setup:
    """What both runs share."""

    interval_ns: int = 100 * MS
    warmup_ns: int = 20 * S
    depth_ticks: int = 1
    lots: int = 1
    cap: int = 5
    entry_ns: int = 5 * MS
    response_ns: int = 5 * MS
    end_ns: int | None = None  # replay only up to this receive time (None: the whole file)


# Order states, as hftbacktest's (status, and req: the request in flight).
NONE, NEW, EXPIRED, FILLED, CANCELED = 0, 1, 2, 3, 4


class PassiveQuoter(Strategy):
    """The mlthon twin of ``hftbacktest_strategy.passive_quoter`` (same rules, same ids)."""

    def __init__(self, inst: Instrument, setup: Setup) -> None:
        super().__init__("passive")
        self.inst = inst
        self.ex = inst.exchange
        self.iid = inst.instrument_id
        self.setup = setup
        self.tick = inst.tick_size
        self.qty = inst.lot_size * setup.lots
        self.anchor = 0  # when the timer was set up: its ticks are anchor + k * interval
        self.begin = 0
        self.next_id = 1
        self.pos = 0  # lots
        # client id -> [side (1 buy, -1 sell), price tick, status, req], in sending order
        self.orders: dict[str, list[int]] = {}
        self.fills: list[Fill] = []

    def on_start(self, params: str) -> None:
        env = self.env
        env.subscribe(self.ex, self.iid, MDSub.PriceLevelBook)  # for get_book; no callbacks
        self.anchor = env.get_time_ns()
        self.begin = self.anchor + self.setup.warmup_ns
        env.setup_timer(self.setup.interval_ns // MS, self.on_timer)

    def on_stop(self, params: str) -> None:
        self.env.send_stop_ack()

    def on_timer(self) -> bool:
        orders = self.orders
        for cid in [c for c, o in orders.items() if o[2] in (EXPIRED, FILLED, CANCELED)]:
            del orders[cid]
        env = self.env
        if env.get_time_ns() < self.begin:
            return True
        book = env.get_book(self.ex, self.iid)
        if book is None:
            return True
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid is None or best_ask is None:
            return True
        bb = int(best_bid[0].value / self.tick)
        ba = int(best_ask[0].value / self.tick)
        if bb >= ba:
            return True
        setup = self.setup
        for side in (1, -1):
            target = bb - setup.depth_ticks if side == 1 else ba + setup.depth_ticks
            allowed = self.pos < setup.cap if side == 1 else self.pos > -setup.cap
            waiting = False
            for cid, o in list(orders.items()):
                if o[0] != side or o[3] == CANCELED:
                    continue
                if allowed and o[1] == target:
                    waiting = True
                elif o[3] == NONE and o[2] == NEW:
                    o[3] = CANCELED
                    env.send_cancel_order(self.ex, self.iid, cid)
                else:
                    waiting = True
            if allowed and not waiting:
                cid = str(self.next_id)
                self.next_id += 1
                orders[cid] = [side, target, NONE, NEW]
                env.send_new_order(
                    int(cid),
                    self.ex,
                    self.iid,
                    Side.Buy if side == 1 else Side.Sell,
                    target * self.tick,
                    self.qty,
                    ExecInstructions.PostOnly,
                    OrderType.Limit,
                    TIF.GTC,
                )
        return True

    def on_new_order_ack(self, exchange: Any, client_id: str, *args: Any) -> None:
        o = self.orders[client_id]
        o[2], o[3] = NEW, NONE

    def on_new_order_reject(
        self, exchange: Any, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        o = self.orders[client_id]
        o[2], o[3] = EXPIRED, NONE  # hftbacktest's GTX that would cross: expired

    def on_order_execution(
        self,
        exchange: Any,
        client_id: str,
        side: Side,
        price: Any,
        fill_qty: Any,
        leaves_qty: Any,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        o = self.orders[client_id]
        lots = int(fill_qty.value / self.inst.lot_size)
        self.fills.append((exec_ts, o[0], int(price.value / self.tick), lots, int(client_id)))
        if leaves_qty.value == 0:
            o[2] = FILLED
        self.pos += o[0] * lots

    def on_order_cancelled(
        self,
        exchange: Any,
        client_id: str,
        unsolicited: bool,
        engine_ts: int,
        recv_ts: int,
        cancel_code: CancelCode,
        cancel_reason: str,
    ) -> None:
        o = self.orders[client_id]
        o[2], o[3] = CANCELED, NONE

    def on_cancel_order_reject(
        self,
        exchange: Any,
        nullable_client_id: str | None,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        if nullable_client_id in self.orders:
            self.orders[nullable_client_id][3] = NONE  # filled before the cancel arrived


def bench_instrument(iid: int) -> Instrument:
    """The instrument, with no minimum notional (hftbacktest has none)."""
    for inst in load_instruments():
        if inst.instrument_id == iid:
            return attrs.evolve(inst, min_notional=Decimal(0))
    raise SystemExit(f"instrument {iid} is not in the bundled instruments file")


def gateway_config(inst: Instrument, setup: Setup) -> SimGatewayConfig:
    """mlthon's sim set up as hftbacktest's exchange (see the module docstring)."""
    return SimGatewayConfig(
        exchange=inst.exchange,
        queue_model="conservative",
        balances={inst.settlement: Decimal("1e9")},
        leverage=Decimal(10),
        latency=LatencyConfig(
            entry={"default": FixedDelay(setup.entry_ns)},
            response={"default": FixedDelay(setup.response_ns)},
        ),
        request_ttl_ns=0,
        overload_lag_ns=0,
    )


@dataclass
class Run:
    fills: list[Fill]
    wall_s: float
    cpu_s: float
    anchor: int = 0
    events: int = 0
    load_s: float = 0.0


def run_mlthon(data: Path, inst: Instrument, setup: Setup) -> Run:
    """One mlthon backtest of :class:`PassiveQuoter`; its replay cache is the env's
    ``MLTHON_CACHE_DIR`` (the default directory when unset)."""
    strat = PassiveQuoter(inst, setup)
    bt = Backtest(
        strat,
        data=[str(data)],
        instruments=[inst],
        name="passive",
        gateway=gateway_config(inst, setup),
        end_ns=setup.end_ns,
    )
    w0, c0 = time.perf_counter(), time.process_time()
    bt.run()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return Run(strat.fills, wall, cpu, strat.anchor, bt.events)


class Hftbacktest:
    """hftbacktest's side: its events (converted once, kept as npz) and its runs."""

    def __init__(self, data: Path, inst: Instrument, setup: Setup, work: Path) -> None:
        import hftbacktest_strategy as hs
        import numpy as np

        self.np, self.hs = np, hs
        self.inst, self.setup = inst, setup
        stat = data.stat()
        self.npz = work / f"{data.name.removesuffix('.gz')}-{stat.st_size}-hbt.npz"
        self.convert_s = 0.0
        if not self.npz.exists():
            t0 = time.perf_counter()
            events = hs.convert(data, work)
            np.savez_compressed(self.npz, data=events)
            self.convert_s = time.perf_counter() - t0
        if setup.end_ns is not None:
            events = np.load(self.npz)["data"]
            events = events[events["local_ts"] <= setup.end_ns]
            self.npz = work / f"{self.npz.stem}-to-{setup.end_ns}.npz"
            np.savez_compressed(self.npz, data=events)

    def _backtest(self, data: Any) -> Any:
        inst = self.inst
        return self.hs.make_backtest(
            data,
            tick=float(inst.tick_size),
            lot=float(inst.lot_size),
            entry_ns=self.setup.entry_ns,
            response_ns=self.setup.response_ns,
            maker_fee=float(inst.maker_fee),
            taker_fee=float(inst.taker_fee),
        )

    def _loop(self, hbt: Any, anchor: int) -> list[Fill]:
        s = self.setup
        fills = self.np.zeros((self.hs.MAX_FILLS, self.hs.FILL_COLUMNS), self.np.int64)
        n, code = self.hs.passive_quoter(
            hbt,
            fills,
            anchor,
            s.interval_ns,
            s.warmup_ns,
            s.depth_ticks,
            s.lots,
            s.cap,
            float(self.inst.lot_size),
            float(self.inst.tick_size),
        )
        hbt.close()
        if code != self.hs.END_OF_DATA:
            why = self.hs.ELAPSE_ERRORS.get(code, "unknown")
            raise RuntimeError(f"hftbacktest stopped before the end of the data: code {code} {why}")
        return sorted((int(a), int(b), int(c), int(d), int(e)) for a, b, c, d, e in fills[:n])

    def warm_up(self) -> float:
        """Compile the numba code on the first 20,000 events; returns the seconds it took."""
        t0 = time.perf_counter()
        head = self.np.load(self.npz)["data"][:20_000]
        self._loop(self._backtest(head), int(head["local_ts"][0]))
        return time.perf_counter() - t0

    def run(self, anchor: int) -> Run:
        """The timed run: load the npz (``load_s``; hftbacktest reads its data lazily, so it is
        loaded here first, apart), then the replay with the strategy's loop (compiled already)."""
        w0, c0 = time.perf_counter(), time.process_time()
        events = self.np.load(self.npz)["data"]
        load = time.perf_counter() - w0
        fills = self._loop(self._backtest(events), anchor)
        run = Run(fills, time.perf_counter() - w0, time.process_time() - c0, anchor)
        run.load_s = load
        return run


def best(runs: list[Run]) -> Run:
    """The fastest wall time and the smallest CPU time among ``runs`` (each may come from
    another run: the machine's load moves them apart)."""
    r = min(runs, key=lambda r: r.wall_s)
    out = Run(r.fills, r.wall_s, min(x.cpu_s for x in runs), r.anchor, r.events)
    out.load_s = min(x.load_s for x in runs)
    return out


def first_difference(a: list[Fill], b: list[Fill]) -> tuple[int, Fill | None, Fill | None] | None:
    """The index of the first row that differs, with each side's row (None past its end)."""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            return i, x, y
    return None


def describe(f: Fill | None, tick: Decimal, lot: Decimal) -> str:
    if f is None:
        return "(none)"
    ts, side, t, lots, oid = f
    return f"ts {ts} {'buy' if side == 1 else 'sell'} {t * tick} x {lots * lot} (order {oid})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a Binance futures capture")
    ap.add_argument("--instrument", type=int, default=1001, help="its mlthon instrument id")
    ap.add_argument("--seconds", type=float, default=None, help="replay only the first N s")
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--depth-ticks", type=int, default=1)
    ap.add_argument("--cap", type=int, default=5, help="position cap in lots")
    ap.add_argument("--entry-ms", type=float, default=5.0)
    ap.add_argument("--response-ms", type=float, default=5.0)
    ap.add_argument("--warmup-s", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (best is kept)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the npz (default: temp)")
    args = ap.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    inst = bench_instrument(args.instrument)
    if inst.kind is not InstrumentKind.Linear:
        raise SystemExit("the bench sets hftbacktest up for a linear instrument (USD-M)")
    first_ts = int(first_line_ts(args.data))
    setup = Setup(
        interval_ns=args.interval_ms * MS,
        warmup_ns=int(args.warmup_s * S),
        depth_ticks=args.depth_ticks,
        cap=args.cap,
        entry_ns=int(args.entry_ms * MS),
        response_ns=int(args.response_ms * MS),
        end_ns=None if args.seconds is None else first_ts + int(args.seconds * S),
    )
    tmp = tempfile.TemporaryDirectory(prefix="bench-hbt-")
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MLTHON_CACHE_DIR"] = str(Path(tmp.name) / "replay-cache")  # a cold cache

    print(f"data: {args.data} (instrument {inst.instrument_id} {inst.name})")
    print(
        f"strategy: every {args.interval_ms} ms after {args.warmup_s:g} s, one bid and one ask "
        f"{setup.depth_ticks} tick(s) behind the best, post-only, {inst.lot_size} each, cap "
        f"{setup.cap} lots; latency {args.entry_ms:g} ms in, {args.response_ms:g} ms back"
    )
    load1, load5, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load {load1:.2f} (1 min) {load5:.2f} (5 min)")
    print(f"mlthon core: {TickBook.__module__}.{TickBook.__name__}; hftbacktest {_version()}")

    cold = run_mlthon(args.data, inst, setup)
    hbt = Hftbacktest(args.data, inst, setup, work)
    if hbt.convert_s:
        print(f"hftbacktest: events converted once in {hbt.convert_s:.1f} s -> {hbt.npz.name}")
    print(
        f"hftbacktest: numba compile + warm-up on 20,000 events: {hbt.warm_up():.1f} s (not timed)"
    )
    cached: list[Run] = []
    runs: list[Run] = []
    for _ in range(args.repeat):  # interleaved: the machine's load moves both alike
        cached.append(run_mlthon(args.data, inst, setup))
        runs.append(hbt.run(cold.anchor))
    h = best(runs)
    m = best(cached)

    print()
    print(f"fills: mlthon {len(cold.fills)}, hftbacktest {len(h.fills)}")
    same = cold.fills == h.fills and all(r.fills == cold.fills for r in cached + runs)
    diff = first_difference(cold.fills, h.fills)
    if diff is None:
        print("identical: yes (time to the ns of the exchange timestamp, side, price, qty, id)")
    else:
        i, a, b = diff
        print(f"identical: no; first difference at fill #{i}:")
        print(f"  mlthon      {describe(a, inst.tick_size, inst.lot_size)}")
        print(f"  hftbacktest {describe(b, inst.tick_size, inst.lot_size)}")
    if not same and diff is None:
        print("  (the repeated runs differ from the first one)")
    print()
    print(f"{'run':34s} {'wall s':>8s} {'cpu s':>8s} {'x hbt wall':>10s} {'x hbt cpu':>10s}")
    rows = [
        ("hftbacktest (npz, compiled)", h),
        ("mlthon cold (decode + cache write)", cold),
        ("mlthon cached (replay cache)", m),
    ]
    for name, r in rows:
        print(
            f"{name:34s} {r.wall_s:8.3f} {r.cpu_s:8.3f} "
            f"{r.wall_s / h.wall_s:10.1f} {r.cpu_s / h.cpu_s:10.1f}"
        )
    print(
        f"best of {args.repeat} (cold: one run); hftbacktest's includes loading its npz "
        f"({h.load_s:.3f} s wall), without it {h.wall_s - h.load_s:.3f} s; mlthon: "
        f"{cold.events:,} messages; goal: mlthon at most 3x"
    )
    tmp.cleanup()


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("hftbacktest")


def first_line_ts(path: Path) -> int:
    import gzip

    with gzip.open(path, "rb") as f:
        return int(f.readline()[:19])


if __name__ == "__main__":
    main()
