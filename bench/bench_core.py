"""The compiled core against the pure-Python one: the TickBook on a real stream of book changes.

The stream is the Binance USD-M BTCUSDT capture's depth updates and its REST snapshot (the excerpt
bundled in ``mlthon/data`` unless ``--data`` names another capture), converted to integer ticks
and lots (0.1 and 0.001) once before timing. Each implementation applies the whole stream to a new
book, two ways:

* ``set``: one Python call per change, ``book.set(side, tick, lots)`` (what a per-level consumer
  pays);
* ``apply``: one call per venue message, ``book.apply(changes)``.

Printed side by side: CPU time per change (best of ``--repeat`` runs) and, with ``--instructions``
(valgrind installed), instructions per change counted by callgrind, as the difference between a
run that applies the stream ``--passes`` times and one that only loads it, divided by the changes
applied. The baseline of the same run is a Python call per change to a method that does nothing
(``noop``): the floor of any per-change call from Python.

Usage: ``python bench/bench_core.py [--data FILE] [--repeat 5] [--instructions]``.
The compiled core must be built (``pip install -e .`` or ``make core``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
BID, ASK, MODIFY, DELETE = 1, 2, 1, 2

Change = tuple[int, int, int, int]


def load_stream(path: Path, tick_size: str, lot_size: str) -> list[list[Change]]:
    """Depth updates and snapshots of a Binance capture as lists of (action, side, tick, lots)."""
    tick, lot = Decimal(tick_size), Decimal(lot_size)
    msgs: list[list[Change]] = []
    with gzip.open(path, "rt") as f:
        for line in f:
            _, _, raw = line.partition(" ")
            doc = json.loads(raw)
            if "stream" in doc:
                if "@depth" not in doc["stream"]:
                    continue
                bids, asks = doc["data"]["b"], doc["data"]["a"]
            elif "bids" in doc:
                bids, asks = doc["bids"], doc["asks"]
            else:
                continue
            ch: list[Change] = []
            for side, levels in ((BID, bids), (ASK, asks)):
                for px, qty in levels:
                    lots = int(Decimal(qty) / lot)
                    ch.append((MODIFY if lots else DELETE, side, int(Decimal(px) / tick), lots))
            msgs.append(ch)
    return msgs


class Noop:
    """The baseline: a method with the book's ``set`` signature that does nothing."""

    def set(self, side: int, tick: int, lots: int) -> int:
        return 0


def implementations() -> dict[str, Callable[[], object]]:
    from mlthon.basics import tickbook

    out: dict[str, Callable[[], object]] = {"noop": Noop, "pure": tickbook.PyTickBook}
    try:
        from mlthon._core.tickbook import TickBook as Compiled
    except ImportError as exc:
        sys.exit(f"the compiled core is not built ({exc}): pip install -e . or make core")
    out["compiled"] = Compiled
    return out


def run_set(factory: Callable[[], object], flat: list[tuple[int, int, int]]) -> None:
    book = factory()
    set_ = book.set  # type: ignore[attr-defined]
    for side, tick, lots in flat:
        set_(side, tick, lots)


def run_apply(factory: Callable[[], object], msgs: list[list[Change]]) -> None:
    book = factory()
    apply = book.apply  # type: ignore[attr-defined]
    for ch in msgs:
        apply(ch)


def cpu_per_change(fn: Callable[[], None], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best / n * 1e9


def worker(args: argparse.Namespace) -> None:
    """One callgrind subject: load, then apply the stream ``passes`` times."""
    msgs = load_stream(Path(args.data), args.tick_size, args.lot_size)
    flat = [(s, t, 0 if a == DELETE else q) for ch in msgs for a, s, t, q in ch]
    factory = implementations()[args.impl]
    for _ in range(args.worker_passes):
        if args.mode == "set":
            run_set(factory, flat)
        else:
            run_apply(factory, msgs)


def callgrind(args: argparse.Namespace, impl: str, mode: str, passes: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/cg.out",
            sys.executable,
            __file__,
            "--data",
            str(args.data),
            "--tick-size",
            args.tick_size,
            "--lot-size",
            args.lot_size,
            "--worker-passes",
            str(passes),
            "--impl",
            impl,
            "--mode",
            mode,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        m = re.search(r"Collected : (\d+)", res.stderr)
        if not m:
            sys.exit(f"callgrind printed no total:\n{res.stderr[-2000:]}")
        return int(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="a Binance capture (.gz)")
    p.add_argument("--tick-size", default="0.1")
    p.add_argument("--lot-size", default="0.001")
    p.add_argument("--repeat", type=int, default=5, help="CPU time: best of this many runs")
    p.add_argument("--instructions", action="store_true", help="also count with callgrind")
    p.add_argument("--passes", type=int, default=3, help="callgrind: stream passes counted")
    p.add_argument("--worker-passes", type=int, default=-1, help=argparse.SUPPRESS)
    p.add_argument("--impl", default="", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker_passes >= 0:
        worker(args)
        return

    msgs = load_stream(Path(args.data), args.tick_size, args.lot_size)
    flat = [(s, t, 0 if a == DELETE else q) for ch in msgs for a, s, t, q in ch]
    n = len(flat)
    impls = implementations()
    print(f"stream: {Path(args.data).name}: {len(msgs):,} messages, {n:,} changes")

    # the two implementations must agree before their speed means anything
    books = {name: impls[name]() for name in ("pure", "compiled")}
    for ch in msgs:
        for b in books.values():
            b.apply(ch)  # type: ignore[attr-defined]
    pure, comp = books["pure"], books["compiled"]
    assert (pure.bid, pure.ask) == (comp.bid, comp.ask)  # type: ignore[attr-defined]
    assert pure.depth(BID) == comp.depth(BID)  # type: ignore[attr-defined]
    assert pure.depth(ASK) == comp.depth(ASK)  # type: ignore[attr-defined]

    rows = []
    for mode in ("set", "apply"):
        ns = {}
        for name, factory in impls.items():
            if mode == "apply" and name == "noop":
                continue
            if mode == "set":
                ns[name] = cpu_per_change(lambda f=factory: run_set(f, flat), n, args.repeat)
            else:
                ns[name] = cpu_per_change(lambda f=factory: run_apply(f, msgs), n, args.repeat)
        rows.append((mode, ns))

    print(f"\nCPU time per change, ns (best of {args.repeat}):")
    print(f"{'mode':<7}{'pure':>10}{'compiled':>10}{'ratio':>8}{'noop call':>11}")
    for mode, ns in rows:
        noop = f"{ns['noop']:>11.0f}" if "noop" in ns else f"{'':>11}"
        ratio = ns["pure"] / ns["compiled"]
        print(f"{mode:<7}{ns['pure']:>10.0f}{ns['compiled']:>10.0f}{ratio:>7.1f}x{noop}")

    if not args.instructions:
        return
    if not shutil.which("valgrind"):
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    print(f"\ninstructions per change (callgrind, {args.passes} passes minus 0):")
    print(f"{'mode':<7}{'pure':>10}{'compiled':>10}{'ratio':>8}{'noop call':>11}")
    for mode in ("set", "apply"):
        names = ("noop", "pure", "compiled") if mode == "set" else ("pure", "compiled")
        ir = {}
        for name in names:
            base = callgrind(args, name, mode, 0)
            ir[name] = (callgrind(args, name, mode, args.passes) - base) / (args.passes * n)
        noop = f"{ir['noop']:>11.0f}" if "noop" in ir else f"{'':>11}"
        ratio = ir["pure"] / ir["compiled"]
        print(f"{mode:<7}{ir['pure']:>10.0f}{ir['compiled']:>10.0f}{ratio:>7.1f}x{noop}")


if __name__ == "__main__":
    main()
