"""Pure BitMEX parsers: realtime WebSocket table messages -> venue-neutral events.

* ``orderBookL2`` (and ``orderBookL2_25``) is a **level-keyed** L2 book: every price level has an
  ``id``, so it is published like an order-level book (``OrderSnapshot`` / ``OrderUpdate``, the
  level id standing for the order id; one "order" per price level).

  * ``partial``: the symbol's whole book; it (re)starts the symbol.
  * ``insert``: a new level ``id`` with ``side``, ``price`` and ``size``.
  * ``update``: a new ``size`` for a level; ``price`` may be absent and is then the id's price,
    remembered from the partial or the insert (the decoder keeps an ``id -> (side, price)`` map).
  * ``delete``: the level ``id`` is gone (``price`` usually absent).
  * Nothing is applied for a symbol before its ``partial``: such rows are dropped (BitMEX may send
    deltas of a table before the partial of a new subscription).

  An ``update`` naming an id the decoder never saw cannot be placed: its row is reported (the
  rest of the message is kept) through :class:`~mlthon.feeds.events.PartialDecode`.
* ``trade``: ``partial`` (the last trades before the subscription, as cryptofeed also publishes
  them) and ``insert`` rows are public trades; ``side`` is the taker side.
* Other tables (``quote``, ``instrument``, ...) and replies are ignored.

BitMEX sends no sequence numbers: a lost message cannot be detected, only a reconnect (the reader
emits ``Disconnect`` and a new decoder then waits for the new partials).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.bitmex.wire import L2Row, Message, TradeRow
from mlthon.feeds.events import (
    Event,
    Ignored,
    OrderSnapshot,
    OrderUpdate,
    PartialDecode,
    StrTrade,
    Trades,
)
from mlthon.feeds.timefmt import iso_to_ns

EXCHANGE = Exchange.Bitmex
BID = Side.Buy.value
ASK = Side.Sell.value

L2_TABLES = frozenset({"orderBookL2", "orderBookL2_25"})

_message = msgspec.json.Decoder(Message)
_l2_rows = msgspec.json.Decoder(list[L2Row])
_trade_rows = msgspec.json.Decoder(list[TradeRow])
_SIDES = {"Buy": BID, "Sell": ASK}

Known = dict[int, tuple[int, Decimal]]


def is_ws_url(url: str) -> bool:
    """True for a BitMEX realtime WebSocket URL (``wss://www.bitmex.com/realtime``, testnet)."""
    return "bitmex.com" in url.lower()


def _s(d: Decimal) -> str:
    return format(d, "f")


def _side(text: str) -> int:
    side = _SIDES.get(text)
    if side is None:
        raise ValueError(f"unknown side {text!r}")
    return side


def _ets(row: L2Row) -> int:
    return iso_to_ns(row.timestamp) if row.timestamp else 0


def partial_to_snapshot(symbol: str, rows: list[L2Row]) -> tuple[OrderSnapshot, Known]:
    """The whole book of ``symbol`` from its partial rows, and its ``id -> (side, price)`` map.

    Raises:
        ValueError: a row lacks its side, price or size.
    """
    known: Known = {}
    orders = []
    ets = 0
    for r in rows:
        if r.price is None or r.size is None:
            raise ValueError(f"partial level {r.id} of {symbol} without price or size")
        side = _side(r.side)
        known[r.id] = (side, r.price)
        orders.append((r.id, side, _s(r.price), _s(r.size)))
        ets = max(ets, _ets(r))
    return OrderSnapshot(symbol, ets, orders), known


def l2_row_to_update(action: str, r: L2Row, known: Known) -> OrderUpdate:
    """One ``insert`` / ``update`` / ``delete`` row as a level update; keeps ``known`` in step.

    Raises:
        ValueError: the action is unknown, an insert lacks a field, or an update without a price
            names a level id never seen.
    """
    if action == "delete":
        gone = known.pop(r.id, None)
        if gone is None:  # unknown level: the engine counts it as an absent delete
            gone = (_SIDES.get(r.side, 0), r.price if r.price is not None else Decimal(0))
        return OrderUpdate(r.symbol, _ets(r), r.id, gone[0], _s(gone[1]), "0", True)
    if action == "insert":
        if r.price is None or r.size is None:
            raise ValueError(f"insert of level {r.id} of {r.symbol} without price or size")
        side = _side(r.side)
        known[r.id] = (side, r.price)
        return OrderUpdate(r.symbol, _ets(r), r.id, side, _s(r.price), _s(r.size), False)
    if action == "update":
        prev = known.get(r.id)
        if r.price is not None:
            price = r.price
        elif prev is not None:
            price = prev[1]
        else:
            raise ValueError(f"update of unknown level {r.id} of {r.symbol} without a price")
        if r.size is None:
            raise ValueError(f"update of level {r.id} of {r.symbol} without a size")
        side = _side(r.side) if r.side else (prev[0] if prev is not None else 0)
        if side == 0:
            raise ValueError(f"update of unknown level {r.id} of {r.symbol} without a side")
        known[r.id] = (side, price)
        return OrderUpdate(r.symbol, _ets(r), r.id, side, _s(price), _s(r.size), False)
    raise ValueError(f"unknown orderBookL2 action {action!r}")


def trade_rows_to_trades(rows: list[TradeRow]) -> list[Trades]:
    """Public trades of one message, one :class:`Trades` per symbol (in first-seen order).

    Raises:
        ValueError: an unknown side or a bad timestamp.
    """
    by_symbol: dict[str, list[StrTrade]] = {}
    for t in rows:
        tup = (_side(t.side), _s(t.price), _s(t.size), iso_to_ns(t.timestamp), t.trdMatchID)
        by_symbol.setdefault(t.symbol, []).append(tup)
    return [Trades(sym, trades) for sym, trades in by_symbol.items()]


class BitmexDecoder:
    """Decodes BitMEX realtime messages of one connection; keeps each symbol's level-id map.

    A symbol is applied only once its ``orderBookL2`` partial has arrived.
    """

    exchange = EXCHANGE

    def __init__(self) -> None:
        self._known: dict[str, Known] = {}

    def has_partial(self, symbol: str) -> bool:
        """True once the symbol's book partial has arrived on this connection."""
        return symbol in self._known

    def _book(self, m: Message) -> list[Event]:
        rows = _l2_rows.decode(m.data)
        if m.action == "partial":
            groups: dict[str, list[L2Row]] = {}
            if m.filter is not None and m.filter.symbol:
                groups[m.filter.symbol] = []
            for r in rows:
                groups.setdefault(r.symbol, []).append(r)
            out: list[Event] = []
            for sym, sym_rows in groups.items():
                snap, known = partial_to_snapshot(sym, sym_rows)
                self._known[sym] = known
                out.append(snap)
            return out
        events: list[Event] = []
        problems: list[str] = []
        before_partial = 0
        for r in rows:
            sym_known = self._known.get(r.symbol)
            if sym_known is None:
                before_partial += 1
                continue
            try:
                events.append(l2_row_to_update(m.action, r, sym_known))
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise PartialDecode("; ".join(problems), events)
        if not events and before_partial:
            return [Ignored(f"bitmex {m.table} {m.action} before the partial")]
        return events

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message.

        Raises:
            msgspec.DecodeError / msgspec.ValidationError: malformed message.
            PartialDecode: some book rows could not be placed (the others are in ``events``).
            ValueError: an unknown action, side or timestamp.
        """
        m = _message.decode(raw)
        if not m.table:
            what = "error" if m.error is not None else "reply"
            return [Ignored(f"bitmex {what}")]
        if m.table in L2_TABLES:
            return self._book(m)
        if m.table == "trade":
            if m.action not in ("partial", "insert"):
                return [Ignored(f"bitmex trade {m.action}")]
            return [*trade_rows_to_trades(_trade_rows.decode(m.data))]
        return [Ignored(f"bitmex {m.table}")]
