"""Instructions per market-data event of whole backtests, counted by callgrind (or CPU time).

The machine is shared and its speed swings, so this bench counts instructions: each case runs in a
child process under ``valgrind --tool=callgrind`` that collects only inside the measured call
(``--toggle-collect`` on a C function the code under test never calls, ``functools.reduce``,
through which the bench calls ``Backtest.run()``). Building the data and importing are not counted.

Each case runs twice, over the whole data and over its first half, and prints

* ``per event``: the instructions of the whole run divided by its market-data events (one event
  is one book level change or one trade, as in ``bench_vs_nautilus.py``), and
* ``marginal``: the difference between the two runs divided by the difference of their events:
  the cost of one more event, without the one-off costs (start, placing resting orders, the end).

The cases:

* ``demo``: the demo market maker (``demo_strat/market_maker.py``) on the Binance USD-M BTCUSDT
  capture (``shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz``, 94k lines, as
  ``bench_pipeline.py``; the bundled 3,000-line sample ``mlthon/data/`` when it is absent), sim
  exchange in the loop, with ``bench_pipeline.py``'s parameters;
* ``resting0`` / ``resting1000``: a strategy subscribed to price levels, BBO and trades that
  places 0 or 1,000 resting orders (500 a side, each at its own price, far from the market) on a
  seeded synthetic market of one instrument; the goal is at most +10 % per event for 1,000;
* ``inst1`` / ``inst16``: the same strategy with no orders, over one instrument or over 16 (the
  same number of venue messages in all, merged by time); the goal is at most +15 % for 16.

Without valgrind (``--cpu``) it prints CPU seconds per event instead (noisier).

``--risk`` gives the ``demo`` case's strategy a risk layer with every limit set (:data:`RISK`:
wide enough that nothing is refused, so every check runs on every order, and the loss limits are
watched), to measure what the risk layer costs (``docs/risk.md``).

Run: python bench/bench_events.py [--case demo,resting0,...] [--events N] [--cpu] [--risk]
"""

from __future__ import annotations

import argparse
import functools
import heapq
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange, Instrument, InstrumentKind, Side
from mlthon.feeds.synthetic import synthetic_market
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.instruments import load_instruments

SAMPLE = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
# The whole capture the sample was cut from (94k lines, 12 minutes), when the shared data are here.
CAPTURE = (
    REPO.parent / "shared" / "data" / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
)
BTC = 1001
T0 = 1_700_000_000_000_000_000
CASES = ("demo", "resting0", "resting1000", "inst1", "inst16")


def _synthetic_instrument(k: int) -> Instrument:
    return Instrument(
        instrument_id=9101 + k,
        name=f"SYN{k}USDT",
        exchange=Exchange.Sim,
        base=f"SYN{k}",
        quote="USDT",
        kind=InstrumentKind.Linear,
        tick_size="0.1",
        lot_size="0.001",
        min_qty="0.001",
        maker_fee="0.0002",
        taker_fee="0.0005",
    )


class Rester(Strategy):
    """Subscribes to price levels, BBO and trades of its instruments (counting the callbacks);
    on the first best bid of the first one, places ``orders`` resting orders, half a side, one
    per price, 500 to 1,000 ticks away from the touch (never filled)."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__("bench")
        self.orders = int(params["orders"])
        self.iids = [int(i) for i in params["iids"]]
        self.placed = False
        self.calls = 0
        self.acks = 0

    def on_start(self, params: str) -> None:
        for iid in self.iids:
            for sub in (MDSub.PriceLevelBook, MDSub.BBO, MDSub.PublicTrades):
                self.env.subscribe(Exchange.Sim, iid, sub)

    def on_add_price_level(self, exchange, instrument_id, side, price, qty, recv_ts):
        self.calls += 1

    def on_modify_price_level(self, exchange, instrument_id, side, price, new_qty, recv_ts):
        self.calls += 1

    def on_delete_price_level(self, exchange, instrument_id, side, price, recv_ts):
        self.calls += 1

    def on_public_trade(self, exchange, instrument_id, side, price, qty, exec_ts, recv_ts):
        self.calls += 1

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.calls += 1

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        self.calls += 1
        if self.placed or instrument_id != self.iids[0]:
            return
        self.placed = True
        tick = Decimal("0.1")
        for i in range(self.orders // 2):
            bid = price.value - (500 + i) * tick
            ask = price.value + (500 + i) * tick
            self.env.send_new_order(None, exchange, instrument_id, Side.Buy, str(bid), "0.001")
            self.env.send_new_order(None, exchange, instrument_id, Side.Sell, str(ask), "0.001")

    def on_new_order_ack(self, exchange, client_id, *args: Any) -> None:
        self.acks += 1


def _synthetic(n_msgs: int, n_inst: int) -> list[Any]:
    insts = [_synthetic_instrument(k) for k in range(n_inst)]
    markets = [
        synthetic_market(
            inst, seed=11 + k, start_ns=T0, n_events=n_msgs // n_inst, start_price="1000"
        )
        for k, inst in enumerate(insts)
    ]
    return list(heapq.merge(*markets, key=attrgetter("ts")))


def capture() -> Path:
    """The Binance USD-M BTCUSDT capture: the whole one if present, else the bundled sample."""
    return CAPTURE if CAPTURE.exists() else SAMPLE


def build(case: str, n_msgs: int, half: bool) -> tuple[Backtest, Any]:
    """The backtest of ``case`` (over the first half of its data if ``half``) and its strategy
    (None when the backtest makes it)."""
    if case == "demo":
        from demo_strat.market_maker import MarketMaker

        insts = [i for i in load_instruments() if i.instrument_id == BTC]
        end = None
        path = capture()
        if half:
            import gzip

            with gzip.open(path, "rb") as f:
                stamps = [int(line.split(b" ", 1)[0]) for line in f]
            end = stamps[len(stamps) // 2]
        gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "100000"}}})
        params = {
            "exchange": "BinanceUsdm",
            "instrument_id": BTC,
            "spread_ticks": 2,
            "size": "0.002",
            "max_position": "0.010",
            "requote_ms": 500,
        }
        strat_cls: type = MarketMaker
        if os.environ.get(RISK_ENV) == "on":

            class RiskyMarketMaker(MarketMaker):  # type: ignore[misc]
                """The demo with the risk layer in front of its gateway."""

                def on_framework_connected(self, env: Any) -> None:
                    env.set_risk_config(risk_config())  # as StratEnv(risk=...) does
                    RISK_ENVS.append(env)
                    super().on_framework_connected(env)

            strat_cls = RiskyMarketMaker
        bt = Backtest(
            strat_cls,
            cache=os.environ.get(CACHE_ENV, "off") != "off",
            data=[path],
            instruments=insts,
            params=params,
            name="bench",
            gateway=gw,
            end_ns=end,
        )
        return bt, None
    n_inst = 16 if case == "inst16" else 1
    orders = 1000 if case == "resting1000" else 0
    n = n_msgs // 2 if half else n_msgs
    data = _synthetic(n, n_inst)
    insts = [_synthetic_instrument(k) for k in range(n_inst)]
    strat = Rester({"orders": orders, "iids": [i.instrument_id for i in insts]})
    gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "1000000000"}}})
    bt = Backtest(strat, data=data, instruments=insts, name="bench", gateway=gw)
    return bt, strat


#: Set for the children: "off" decodes the capture's JSON on every run (no cache read or written);
#: otherwise the replay cache directory (``MLTHON_CACHE_DIR``), warmed before the measured runs.
CACHE_ENV = "BENCH_EVENTS_CACHE"
#: Set to "on" for the children of ``--risk``.
RISK_ENV = "BENCH_EVENTS_RISK"
#: The ``--risk`` envs built (their refusals are reported: 0 when the limits are wide enough).
RISK_ENVS: list[Any] = []


def risk_config() -> Any:
    """The ``--risk`` limits: every one set, none reached by the demo."""
    from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig

    return RiskConfig(
        every=InstrumentLimits(
            max_order_qty=Decimal("1"),
            max_order_notional=Decimal("1000000"),
            price_band_pct=Decimal("5"),
            max_position=Decimal("1"),
        ),
        max_gross_exposure=Decimal("10000000"),
        max_open_orders=1000,
        max_order_rate=10000,
        max_cancel_rate=10000,
        max_daily_loss=Decimal("1000000"),
        max_drawdown=Decimal("1000000"),
    )


def child(case: str, n_msgs: int, half: bool, out: Path) -> None:
    """Build, then run the backtest inside ``functools.reduce`` (the callgrind toggle)."""
    logging.basicConfig(level=logging.ERROR)
    bt, strat = build(case, n_msgs, half)
    holder: list[Any] = []
    c0 = time.process_time()
    functools.reduce(lambda a, b: holder.append(bt.run()), [0, 0])
    cpu = time.process_time() - c0
    result = holder[0]
    info = {
        "messages": result.summary["events"],
        "fills": result.summary["fills"],
        "orders": result.summary["orders"],
        "cpu": cpu,
    }
    if RISK_ENVS:
        info["risk_refusals"] = sum(e.risk_refusals for e in RISK_ENVS)
    if strat is not None:
        info["acks"] = strat.acks
        info["calls"] = strat.calls
    out.write_text(json.dumps(info))


def count_events(case: str, n_msgs: int, half: bool) -> int:
    """The events of a case's data: book level changes plus trades (as bench_vs_nautilus.py
    counts them), counted in this process, outside the measured run."""
    bt, _ = build(case, n_msgs, half)
    data = bt._data
    if case == "demo":
        from mlthon.feeds.replay import replay_files

        data = replay_files(data, bt.instruments, end_ns=bt.end_ns, cache=False)  # type: ignore[arg-type]
    n = 0
    for msg in data:  # type: ignore[union-attr]
        kind = type(msg).__name__
        if kind in ("BookUpdate", "LevelUpdate"):
            n += len(msg.ch)
        elif kind == "TradeUpdate":
            n += len(msg.tr)
    return n


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    cache = env.get(CACHE_ENV, "off")
    if cache != "off":
        env["MLTHON_CACHE_DIR"] = cache
    return env


def measure(case: str, n_msgs: int, half: bool, cpu_only: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "info.json"
        cmd = [
            sys.executable,
            __file__,
            "--child",
            case,
            "--events",
            str(n_msgs),
            "--out",
            str(out),
        ]
        if half:
            cmd.append("--half")
        if not cpu_only:
            cg = Path(tmp) / "cg.out"
            cmd = [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={cg}",
                *cmd,
            ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=child_env())
        if proc.returncode or not out.exists():
            sys.exit(f"bench_events: {case} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        info: dict[str, Any] = json.loads(out.read_text())
        info["events"] = count_events(case, n_msgs, half)
        if not cpu_only:
            found = re.search(r"Collected : (\d+)", proc.stderr)
            if found is None:
                sys.exit(f"bench_events: no callgrind total for {case}:\n{proc.stderr[-2000:]}")
            info["ir"] = int(found.group(1))
        return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default=",".join(CASES), help=f"comma-separated of {CASES}")
    ap.add_argument(
        "--events",
        type=int,
        default=8000,
        help="venue messages of the synthetic cases (default 8000; half for the half run)",
    )
    ap.add_argument("--cpu", action="store_true", help="CPU time instead of callgrind")
    ap.add_argument(
        "--cache",
        choices=("off", "warm"),
        default="off",
        help="the demo's capture: decoded from its JSON on each run (off, the default), or read "
        "from a warm replay cache (a fresh directory, filled by one unmeasured run first)",
    )
    ap.add_argument(
        "--risk",
        action="store_true",
        help="demo case only: the strategy runs behind a risk layer with every limit set",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--half", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.events, a.half, Path(a.out))
        return 0
    unit = "CPU ns" if a.cpu else "instructions"
    os.environ[RISK_ENV] = "on" if a.risk else "off"
    if a.risk:
        print("risk layer: on (demo case), every limit set")
    print(f"demo data: {capture()} (replay cache {a.cache})")
    tmp_cache = None
    if a.cache == "warm":
        tmp_cache = tempfile.TemporaryDirectory()
        os.environ[CACHE_ENV] = tmp_cache.name
        with tempfile.TemporaryDirectory() as warm:
            subprocess.run(
                [sys.executable, __file__, "--child", "demo", "--out", f"{warm}/i.json"],
                check=True,
                env=child_env(),
                capture_output=True,
            )
    else:
        os.environ[CACHE_ENV] = "off"
    results: dict[str, float] = {}
    for case in a.case.split(","):
        if case not in CASES:
            sys.exit(f"bench_events: unknown case {case!r} (one of {CASES})")
        full = measure(case, a.events, False, a.cpu)
        half = measure(case, a.events, True, a.cpu)
        key = "cpu" if a.cpu else "ir"
        scale = 1e9 if a.cpu else 1
        per = full[key] * scale / full["events"]
        marginal = (full[key] - half[key]) * scale / max(1, full["events"] - half["events"])
        results[case] = marginal
        extra = "".join(
            f", {k} {full[k]:,}"
            for k in ("orders", "fills", "acks", "calls", "risk_refusals")
            if k in full
        )
        print(
            f"{case}: {per:,.0f} {unit} per event ({full['events']:,} events in "
            f"{full['messages']:,} messages{extra}); "
            f"marginal {marginal:,.0f} per event (half run: {half['events']:,} events)"
        )
    if "resting0" in results and "resting1000" in results:
        r = results["resting1000"] / results["resting0"] - 1
        print(f"1,000 resting orders vs none: {r * 100:+.1f} % per event (goal <= +10 %)")
    if "inst1" in results and "inst16" in results:
        r = results["inst16"] / results["inst1"] - 1
        print(f"16 instruments vs one: {r * 100:+.1f} % per event (goal <= +15 %)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
