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

import msgspec

from mlthon.basics.mlt_enum import Exchange

SEQ_NONE = 0
SEQ_PREV = 1
SEQ_NEXT = 2

StrLevel = tuple[str, str]
# A venue trade: (taker side, price, size, exec ns, trade id), price and size as text.
StrTrade = tuple[int, str, str, int, str]


class DepthDiff(msgspec.Struct, gc=False):
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

    symbol: str
    ets: int
    first_id: int
    last_id: int
    prev_id: int
    rule: int
    bids: list[StrLevel] | bytes
    asks: list[StrLevel] | bytes


class DepthSnapshot(msgspec.Struct, gc=False):
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

    symbol: str
    ets: int
    last_id: int
    rule: int
    in_stream: bool
    bids: list[StrLevel]
    asks: list[StrLevel]


class OrderSnapshot(msgspec.Struct, gc=False):
    """A full order-level book: ``(order_id, side, price, size)`` per resting order."""

    symbol: str
    ets: int
    orders: list[tuple[int, int, str, str]]


class OrderUpdate(msgspec.Struct, gc=False):
    """Add, replace (``size`` > 0) or remove (``remove`` True) one order of an order-level book.

    ``last`` says where the update stands in the venue's event (a match or an auction's
    uncrossing is several updates): True for the last one (the book is consistent after it:
    Databento's ``F_LAST``), False for the others (the book may be crossed in between), None when
    the venue marks no events (the engine then tolerates a short crossing, ``l3_cross_grace``).
    """

    symbol: str
    ets: int
    order_id: int
    side: int
    price: str
    size: str
    remove: bool
    last: bool | None = None


class Trades(msgspec.Struct, gc=False):
    """Public trades of one venue message: ``(taker side, price, size, exec ns, trade id)``."""

    symbol: str
    trades: list[StrTrade]


class Funding(msgspec.Struct, gc=False):
    """Funding state of a perpetual: rate, next funding time (ns) and mark price."""

    symbol: str
    ets: int
    rate: str
    next_ts: int
    mark: str


class Disconnect(msgspec.Struct, gc=False):
    """The venue connection dropped or was re-established: every book of the venue is void."""

    reason: str


class Ignored(msgspec.Struct, gc=False):
    """A message the feed does not use (BBO tickers, klines, acks); counted, not an error."""

    what: str


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


class SourceEvent(msgspec.Struct, gc=False):
    """An event as read from a source: receive time, origin and the venue it belongs to.

    Attributes:
        ts: receive time, ns.
        exchange: the venue.
        event: the parsed event.
        source: file name (or stream name).
        line: 1-based line (or message) number in the source.
    """

    ts: int
    exchange: Exchange
    event: Event
    source: str
    line: int


class PartialDecode(ValueError):
    """A message of which only some parts could be decoded (e.g. a BitMEX update row naming a
    level id that was never inserted). The reader reports the message and uses ``events``.

    Attributes:
        events: the events of the usable parts, in message order.
    """

    def __init__(self, why: str, events: list[Event]) -> None:
        super().__init__(why)
        self.events = events
