"""Pure Tardis CSV parsers: rows -> venue-neutral events, grouped as the venue sent them.

Rules (Tardis docs and FAQ): timestamps are integer microseconds; rows sharing one
``local_timestamp`` came from one venue message and become one event; ``incremental_book_L2``
amounts are absolute sizes (0 deletes); a run of ``is_snapshot`` rows is a full book that
replaces the previous one; rows before the first snapshot are skipped (by the engine, which
drops unsequenced diffs until it has a snapshot). ``quotes`` and ``book_snapshot_N`` rows are full
top-of-book images; ``derivative_ticker`` rows give funding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.events import (
    SEQ_NONE,
    DepthDiff,
    DepthSnapshot,
    Event,
    Funding,
    SourceEvent,
    StrLevel,
    StrTrade,
    Trades,
)
from mlthon.feeds.tardis.wire import (
    DERIVATIVE_TICKER,
    EXCHANGES,
    INCREMENTAL_L2,
    QUOTES,
    TRADES,
)

US = 1_000
_TAKER = {"buy": Side.Buy.value, "sell": Side.Sell.value}

Report = Callable[[str, str, int], None]


def kind_of_header(header: str) -> str | None:
    """The Tardis data type of a CSV header line, or None if it is not a Tardis header."""
    cols = tuple(c.strip() for c in header.strip().split(","))
    if cols == INCREMENTAL_L2:
        return "incremental_book_L2"
    if cols == TRADES:
        return "trades"
    if cols == QUOTES:
        return "quotes"
    if cols[:4] == DERIVATIVE_TICKER[:4] and "funding_rate" in cols:
        return "derivative_ticker"
    if len(cols) > 4 and cols[4] == "asks[0].price" and (len(cols) - 4) % 4 == 0:
        return "book_snapshot"
    return None


def _exchange(name: str) -> Exchange:
    ex = EXCHANGES.get(name)
    if ex is None:
        raise ValueError(f"unknown Tardis exchange {name!r}")
    return ex


def _snapshot_row(cols: list[str]) -> tuple[list[StrLevel], list[StrLevel]]:
    bids: list[StrLevel] = []
    asks: list[StrLevel] = []
    for i in range(4, len(cols) - 3, 4):
        ap, aa, bp, ba = cols[i], cols[i + 1], cols[i + 2], cols[i + 3]
        if ap and aa:
            asks.append((ap, aa))
        if bp and ba:
            bids.append((bp, ba))
    return bids, asks


def read_rows(
    kind: str, rows: Iterable[tuple[int, str]], source: str, report: Report
) -> Iterator[SourceEvent]:
    """Events of the data rows (``(line number, text)``, header excluded) of one Tardis file.

    Unparsable rows are given to ``report(why, source, line)`` and skipped.
    """
    if kind == "incremental_book_L2":
        yield from _read_l2(rows, source, report)
        return
    if kind in ("trades", "liquidations"):
        yield from _read_trades(rows, source, report)
        return
    for line, text in rows:
        cols = text.rstrip("\r\n").split(",")
        try:
            ex = _exchange(cols[0])
            ts = int(cols[3]) * US
            ets = int(cols[2]) * US
            ev: Event | None
            if kind == "quotes":
                a_amt, a_px, b_px, b_amt = cols[4], cols[5], cols[6], cols[7]
                bids = [(b_px, b_amt)] if b_px and b_amt else []
                asks = [(a_px, a_amt)] if a_px and a_amt else []
                ev = DepthSnapshot(cols[1], ets, -1, SEQ_NONE, True, bids, asks)
            elif kind == "book_snapshot":
                bids, asks = _snapshot_row(cols)
                ev = DepthSnapshot(cols[1], ets, -1, SEQ_NONE, True, bids, asks)
            else:  # derivative_ticker
                rate, fts, mark = cols[5], cols[4], cols[10]
                ev = Funding(cols[1], ets, rate, int(fts) * US, mark) if rate and fts else None
        except (ValueError, IndexError) as exc:
            report(f"bad Tardis {kind} row: {exc}", source, line)
            continue
        if ev is not None:
            yield SourceEvent(ts, ex, ev, source, line)


def _read_trades(
    rows: Iterable[tuple[int, str]], source: str, report: Report
) -> Iterator[SourceEvent]:
    group: list[StrTrade] = []
    key: tuple[str, str, int] | None = None
    first_line = 0
    for line, text in rows:
        cols = text.rstrip("\r\n").split(",")
        try:
            _exchange(cols[0])
            k = (cols[0], cols[1], int(cols[3]))
            tr = (_TAKER.get(cols[5], 0), cols[6], cols[7], int(cols[2]) * US, cols[4])
        except (ValueError, IndexError) as exc:
            report(f"bad Tardis trades row: {exc}", source, line)
            continue
        if k != key and group and key is not None:
            yield SourceEvent(
                key[2] * US, EXCHANGES[key[0]], Trades(key[1], group), source, first_line
            )
            group = []
        if not group:
            first_line = line
        key = k
        group.append(tr)
    if group and key is not None:
        yield SourceEvent(key[2] * US, EXCHANGES[key[0]], Trades(key[1], group), source, first_line)


def _read_l2(rows: Iterable[tuple[int, str]], source: str, report: Report) -> Iterator[SourceEvent]:
    # A group is consecutive rows of one symbol with one local_timestamp (diffs) or one run of
    # snapshot rows (a snapshot may span several local timestamps).
    bids: list[StrLevel] = []
    asks: list[StrLevel] = []
    cur: tuple[str, str, bool, int] | None = None
    ets = 0
    group_ts = 0
    first_line = 0

    def flush() -> SourceEvent:
        assert cur is not None
        ex_name, sym, snap, _ = cur
        ev: Event
        if snap:
            ev = DepthSnapshot(sym, ets, -1, SEQ_NONE, True, bids, asks)
        else:
            ev = DepthDiff(sym, ets, -1, -1, -1, SEQ_NONE, bids, asks)
        return SourceEvent(group_ts * US, EXCHANGES[ex_name], ev, source, first_line)

    for line, text in rows:
        cols = text.rstrip("\r\n").split(",")
        try:
            _exchange(cols[0])
            lts = int(cols[3])
            snap = cols[4] == "true"
            side = cols[5]
            if side not in ("bid", "ask"):
                raise ValueError(f"side {side!r}")
            level = (cols[6], cols[7])
            row_ets = int(cols[2]) * US
        except (ValueError, IndexError) as exc:
            report(f"bad Tardis incremental_book_L2 row: {exc}", source, line)
            continue
        if cur is not None:
            same = cur[0] == cols[0] and cur[1] == cols[1] and cur[2] == snap
            if not (same and (snap or cur[3] == lts)):
                yield flush()
                bids, asks = [], []
                cur = None
        if cur is None:
            cur = (cols[0], cols[1], snap, lts)
            first_line = line
        ets = row_ets
        group_ts = lts
        (bids if side == "bid" else asks).append(level)
    if cur is not None:
        yield flush()
