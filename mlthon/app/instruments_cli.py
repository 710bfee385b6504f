"""``mlthon instruments``: the instruments mlthon knows, and those a recording holds.

Without ``--data`` it lists the instruments file (the bundled one, or ``--file``). With ``--data``
it reads the recordings through the production readers and lists each (venue, symbol) they hold:
its instrument id when the file has it, otherwise a draft ``[[instrument]]`` table to add to an
instruments file. When the recordings carry the venue's definitions (Binance ``exchangeInfo``
answers in a cryptofeed log or an ``exchangeInfo`` file, Databento ``definition`` files: give
them with ``--data`` too), the draft takes base and quote coins, kind, tick, lot, minimums and
the contract multiplier from them (:mod:`mlthon.app.instrument_drafts`). Otherwise its grid is
inferred from the data (the largest step every price and every size of the recording is a
multiple of), which a short recording can overstate: check it against the venue's instrument
list before trading on it. A known instrument whose tick or lot the data contradict is flagged.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import attrs

from mlthon.app.instrument_drafts import (
    Definition,
    grid_conflicts,
    is_definition_file,
    read_definitions,
)
from mlthon.basics.errors import ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.events import (
    DepthDiff,
    DepthSnapshot,
    Event,
    OrderSnapshot,
    OrderUpdate,
    Trades,
)
from mlthon.feeds.levels import text_levels
from mlthon.feeds.readers import read_source
from mlthon.infra.instruments import load_instruments

# Quote coins recognised at the end of a symbol, longest first (BTCUSDT -> BTC / USDT).
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "GBP", "BTC", "ETH", "BNB")
_KIND_BY_VENUE = {
    Exchange.BinanceSpot: "Spot",
    Exchange.Coinbase: "Spot",
    Exchange.BinanceCoinm: "Inverse",
}
_SAMPLE = 200_000  # values kept per symbol and kind (enough for the grid, bounded memory)
_DELIVERY = re.compile(r"_\d{6}$")  # a dated future's suffix (BCHUSD_210924)


@attrs.define
class SymbolStats:
    """What a recording says of one (venue, symbol): how much, and the grids it implies."""

    exchange: Exchange
    symbol: str
    events: int = 0
    price_step: Decimal | None = None
    size_step: Decimal | None = None
    prices: int = 0
    sizes: int = 0
    _price_exp: int = 0
    _price_gcd: int = 0
    _size_exp: int = 0
    _size_gcd: int = 0

    def add_price(self, text: str) -> None:
        if self.prices < _SAMPLE:
            self._price_exp, self._price_gcd = _fold(text, self._price_exp, self._price_gcd)
            self.prices += 1

    def add_size(self, text: str) -> None:
        if self.sizes < _SAMPLE:
            self._size_exp, self._size_gcd = _fold(text, self._size_exp, self._size_gcd)
            self.sizes += 1

    def finish(self) -> None:
        self.price_step = _step(self._price_exp, self._price_gcd)
        self.size_step = _step(self._size_exp, self._size_gcd)


def _fold(text: str, exp: int, gcd: int) -> tuple[int, int]:
    """Fold one decimal into a running (exponent, gcd of the values scaled by 10**-exponent)."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        return exp, gcd
    if not d.is_finite() or d <= 0:
        return exp, gcd
    d = d.normalize()
    e = int(d.as_tuple().exponent)
    if e < exp:
        gcd *= 10 ** (exp - e)
        exp = e
    return exp, math.gcd(gcd, int(d.scaleb(-exp)))


def _step(exp: int, gcd: int) -> Decimal | None:
    return Decimal(gcd).scaleb(exp).normalize() if gcd else None


def _levels(ev: Event) -> Iterable[tuple[str, str]]:
    if isinstance(ev, DepthDiff | DepthSnapshot):
        yield from text_levels(ev.bids)
        yield from text_levels(ev.asks)
    elif isinstance(ev, OrderSnapshot):
        for _oid, _side, price, size in ev.orders:
            yield price, size
    elif isinstance(ev, OrderUpdate):
        yield ev.price, ev.size
    elif isinstance(ev, Trades):
        for _side, price, size, *_rest in ev.trades:
            yield price, size


def scan(paths: list[str], *, max_events: int | None = None) -> tuple[list[SymbolStats], int]:
    """Every (venue, symbol) of the recordings with its grids; and the number of bad lines.
    ``max_events``: stop after that many events of each file (None: read them all)."""
    bad = 0

    def report(why: str, source: str, line: int) -> None:
        nonlocal bad
        bad += 1

    found: dict[tuple[Exchange, str], SymbolStats] = {}
    for path in paths:
        for n, se in enumerate(read_source(path, report)):
            if max_events is not None and n >= max_events:
                break
            symbol = getattr(se.event, "symbol", None)
            if not symbol:
                continue
            st = found.get((se.exchange, symbol))
            if st is None:
                st = found[(se.exchange, symbol)] = SymbolStats(se.exchange, symbol)
            st.events += 1
            for price, size in _levels(se.event):
                st.add_price(price)
                if size and size != "0":
                    st.add_size(size)
    for st in found.values():
        st.finish()
    return sorted(found.values(), key=lambda s: (s.exchange.value, s.symbol)), bad


def _split(symbol: str) -> tuple[str, str]:
    s = _DELIVERY.sub("", symbol.upper()).replace("-", "").replace("_PERP", "").replace("/", "")
    for q in _QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return s[: -len(q)], q
    return s, "USD"


def draft(st: SymbolStats, instrument_id: int, definition: Definition | None = None) -> str:
    """A ``[[instrument]]`` table for a symbol the instruments file lacks: from the recording's
    ``definition`` when it has one, otherwise inferred from the data."""
    d = definition
    base, quote = (d.base, d.quote) if d is not None else _split(st.symbol)
    tick = (d.tick if d else None) or st.price_step or Decimal(1)
    lot = (d.lot if d else None) or st.size_step or Decimal(1)
    min_qty = (d.min_qty if d else None) or lot
    kind = d.kind if d is not None else _KIND_BY_VENUE.get(st.exchange, "Linear")
    if d is not None:
        head = [f"# from the recording's definition ({d.source}): check fees before trading"]
        if st.price_step is not None and st.price_step % tick:
            head.append(
                f"# WARNING: the recorded prices are on a {st.price_step:f} grid, not {tick:f}"
            )
    else:
        head = [
            f"# inferred by `mlthon instruments --data` from {st.prices:,} prices and "
            f"{st.sizes:,} sizes: check the grid,",
            "# kind, coins, multiplier and fees against the venue's instrument list before "
            "trading on them",
        ]
    lines = [
        *head,
        "[[instrument]]",
        f"instrument_id = {instrument_id}",
        f'name = "{st.symbol}"',
        f'exchange = "{st.exchange.name}"',
        f'base = "{base}"',
        f'quote = "{quote}"',
        f'kind = "{kind}"',
        f'tick_size = "{tick:f}"',
        f'lot_size = "{lot:f}"',
        f'min_qty = "{min_qty:f}"',
    ]
    if d is not None and d.min_notional is not None:
        lines.append(f'min_notional = "{d.min_notional:f}"')
    if d is not None and d.multiplier is not None:
        lines.append(f'contract_multiplier = "{d.multiplier:f}"')
    if d is not None and d.settle_coin:
        lines.append(f'settle_coin = "{d.settle_coin}"')
    return "\n".join([*lines, ""])


def _table(insts: list[Instrument], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in ("id", "exchange", "name", "kind", "tick", "lot", "min qty"):
        t.add_column(col, justify="right" if col in ("id", "tick", "lot", "min qty") else "left")
    for i in insts:
        t.add_row(
            str(i.instrument_id),
            i.exchange.name,
            i.name,
            i.kind.name,
            f"{i.tick_size:f}",
            f"{i.lot_size:f}",
            f"{i.min_qty:f}",
        )
    Console(file=sys.stdout, width=120).print(t)


def instruments_main(argv: list[str]) -> int:
    """Entry point of ``mlthon instruments``."""
    p = argparse.ArgumentParser(
        prog="mlthon instruments",
        description="The instruments mlthon knows (the bundled instruments file, or --file), and "
        "with --data those a recording holds: the id of each known one, a draft [[instrument]] "
        "table for each other (its grid from the recording's definitions, else inferred from "
        "the data), and the known instruments whose tick or lot the recording contradicts.",
        epilog="example:\n  mlthon instruments --exchange BinanceUsdm\n"
        "  mlthon instruments --data "
        "../shared/data/hftbacktest/binance_usdm_futures/btcusdt_20240808.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--file", help="an instruments file (default: the bundled one)")
    p.add_argument("--exchange", help="only this venue (an Exchange name, e.g. BinanceUsdm)")
    p.add_argument(
        "--data",
        nargs="+",
        help="recordings (and their definition or exchangeInfo files): list the instruments "
        "they hold",
    )
    a = p.parse_args(argv)
    insts = all_insts = load_instruments(a.file)
    if a.exchange:
        try:
            ex = Exchange[a.exchange]
        except KeyError:
            names = ", ".join(e.name for e in Exchange if e is not Exchange.Unset)
            raise ConfigError(f"--exchange {a.exchange!r} is not one of {names}") from None
        insts = [i for i in insts if i.exchange is ex]
    source = a.file or "the bundled instruments file"
    if not a.data:
        _table(insts, f"{len(insts)} instruments in {source}")
        return 0
    for path in a.data:
        if not Path(path).is_file():
            raise ConfigError(f"--data: no such file {path!r}")
    definitions = read_definitions(a.data)
    found, bad = scan([p for p in a.data if not is_definition_file(p)])
    by_key = {(i.exchange, i.name.upper()): i for i in insts}
    known = [
        by_key[(s.exchange, s.symbol.upper())]
        for s in found
        if (s.exchange, s.symbol.upper()) in by_key
    ]
    missing = [s for s in found if (s.exchange, s.symbol.upper()) not in by_key]
    print(f"{len(found)} instruments in {', '.join(a.data)} ({bad} unreadable lines)")
    if known:
        _table(
            known, f"known to {source}: use their ids (--instruments, or use = in \\[instruments])"
        )
    conflicts = grid_conflicts(found, known, definitions)
    if conflicts:
        print(f"\nWARNING: {len(conflicts)} grid(s) the recording contradicts:")
        for c in conflicts:
            print(f"  {c.message()}")
    if missing:
        next_id = max((i.instrument_id for i in all_insts), default=0) + 1
        print(
            f"\n{len(missing)} not in {source}: add these tables to an instruments file and "
            "name it in the strategy config ([instruments] file = ...)\n"
        )
        for k, st in enumerate(missing):
            print(draft(st, next_id + k, definitions.get((st.exchange, st.symbol.upper()))))
    if not found:
        print("no instrument found: is it a supported recording? (docs/market-data.md)")
    return 0
