"""Venue-neutral parsed events: what every venue's ``parse.py`` produces and the engine consumes.

They sit between a venue's wire structs and our bus messages. Prices and sizes stay the venue's
decimal strings (or exact strings made from Decimals); the engine turns them into integer ticks and
lots of the instrument (:mod:`mlthon.feeds.grid`) and into book updates.

Sequencing of depth diffs is described by a rule per diff:

* ``SEQ_NONE``: no sequence numbers (Tardis, full-book streams); no gap detection.
* ``SEQ_PREV``: each diff names the last id of the previous one (Binance futures ``pu``).
* ``SEQ_NEXT``: each diff starts at the previous last id + 1 (Binance spot ``U``, Bybit ``u``).
"""

from __future__ import annotations

from mlthon.basics.mlt_enum import Exchange

SEQ_NONE = 0
SEQ_PREV = 1
SEQ_NEXT = 2

StrLevel = tuple[str, str]
# A venue trade: (taker side, price, size, exec ns, trade id), price and size as text.
StrTrade = tuple[int, str, str, int, str]


class DepthDiff:
    """Absolute sizes of some price levels (0 removes the level) from one venue message.

    Attributes:
        symbol: the venue's symbol.
        ets: exchange time, ns (0 if none).
        first_id / last_id: the venue update ids the message covers (``U`` / ``u``).
        prev_id: the previous message's last id when the venue gives it (``pu``), else -1.
        rule: one of ``SEQ_NONE`` / ``SEQ_PREV`` / ``SEQ_NEXT``.
        bids / asks: ``(price, size)`` strings, or the raw bytes of the venue's JSON array of
            such pairs, shape checked (:mod:`mlthon.feeds.levels`: parsed by the engine straight
            to ticks; :func:`~mlthon.feeds.levels.text_levels` gives the pairs).
    """

    __slots__ = ("asks", "bids", "ets", "first_id", "last_id", "prev_id", "rule", "symbol")

    def __init__(
        self,
        symbol: str,
        ets: int,
        first_id: int,
        last_id: int,
        prev_id: int,
        rule: int,
        bids: list[StrLevel] | bytes,
        asks: list[StrLevel] | bytes,
    ) -> None:
        self.symbol = symbol
        self.ets = ets
        self.first_id = first_id
        self.last_id = last_id
        self.prev_id = prev_id
        self.rule = rule
        self.bids = bids
        self.asks = asks


class DepthSnapshot:
    """A full price-level book.

    Attributes:
        symbol: the venue's symbol.
        ets: exchange time, ns (0 if none).
        last_id: the last update id included (Binance ``lastUpdateId``, Bybit ``u``), -1 if none.
        rule: the sequencing rule of the diffs that follow it.
        in_stream: True if the snapshot is at the current point of the stream (Bybit, Tardis,
            full-book channels): it replaces the book at once. False for an out-of-band REST
            snapshot, which must be bridged to the buffered diffs by ``last_id``.
        bids / asks: ``(price, size)`` strings.
    """

    __slots__ = ("asks", "bids", "ets", "in_stream", "last_id", "rule", "symbol")

    def __init__(
        self,
        symbol: str,
        ets: int,
        last_id: int,
        rule: int,
        in_stream: bool,
        bids: list[StrLevel],
        asks: list[StrLevel],
    ) -> None:
        self.symbol = symbol
        self.ets = ets
        self.last_id = last_id
        self.rule = rule
        self.in_stream = in_stream
        self.bids = bids
        self.asks = asks


class OrderSnapshot:
    """A full order-level book: ``(order_id, side, price, size)`` per resting order."""

    __slots__ = ("ets", "orders", "symbol")

    def __init__(self, symbol: str, ets: int, orders: list[tuple[int, int, str, str]]) -> None:
        self.symbol = symbol
        self.ets = ets
        self.orders = orders


class OrderUpdate:
    """Add, replace (``size`` > 0) or remove (``remove`` True) one order of an order-level book.

    ``last`` says where the update stands in the venue's event (a match or an auction's
    uncrossing is several updates): True for the last one (the book is consistent after it:
    Databento's ``F_LAST``), False for the others (the book may be crossed in between), None when
    the venue marks no events (the engine then tolerates a short crossing, ``l3_cross_grace``).
    """

    __slots__ = ("ets", "last", "order_id", "price", "remove", "side", "size", "symbol")

    def __init__(
        self,
        symbol: str,
        ets: int,
        order_id: int,
        side: int,
        price: str,
        size: str,
        remove: bool,
        last: bool | None = None,
    ) -> None:
        self.symbol = symbol
        self.ets = ets
        self.order_id = order_id
        self.side = side
        self.price = price
        self.size = size
        self.remove = remove
        self.last = last


class Trades:
    """Public trades of one venue message: ``(taker side, price, size, exec ns, trade id)``."""

    __slots__ = ("symbol", "trades")

    def __init__(self, symbol: str, trades: list[StrTrade]) -> None:
        self.symbol = symbol
        self.trades = trades


class Funding:
    """Funding state of a perpetual: rate, next funding time (ns) and mark price."""

    __slots__ = ("ets", "mark", "next_ts", "rate", "symbol")

    def __init__(self, symbol: str, ets: int, rate: str, next_ts: int, mark: str) -> None:
        self.symbol = symbol
        self.ets = ets
        self.rate = rate
        self.next_ts = next_ts
        self.mark = mark


class Disconnect:
    """The venue connection dropped or was re-established: every book of the venue is void."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Ignored:
    """A message the feed does not use (BBO tickers, klines, acks); counted, not an error."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


Event = (
    DepthDiff
    | DepthSnapshot
    | OrderSnapshot
    | OrderUpdate
    | Trades
    | Funding
    | Disconnect
    | Ignored
)


class SourceEvent:
    """An event as read from a source: receive time, origin and the venue it belongs to.

    Attributes:
        ts: receive time, ns.
        exchange: the venue.
        event: the parsed event.
        source: file name (or stream name).
        line: 1-based line (or message) number in the source.
    """

    __slots__ = ("event", "exchange", "line", "source", "ts")

    def __init__(self, ts: int, exchange: Exchange, event: Event, source: str, line: int) -> None:
        self.ts = ts
        self.exchange = exchange
        self.event = event
        self.source = source
        self.line = line


class PartialDecode(ValueError):
    """A message of which only some parts could be decoded (e.g. a BitMEX update row naming a
    level id that was never inserted). The reader reports the message and uses ``events``.

    Attributes:
        events: the events of the usable parts, in message order.
    """

    def __init__(self, why: str, events: list[Event]) -> None:
        super().__init__(why)
        self.events = events
