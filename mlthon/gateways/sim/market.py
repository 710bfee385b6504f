"""The matching engine's view of one instrument: the market's book, our resting orders, stops.

Prices are integer ticks and quantities integer lots of the instrument, so the hot path does
integer arithmetic only; values are converted back to exact decimals for reports.

The book is the instrument's one :class:`~mlthon.basics.tickbook.TickBook`: in a backtest the
feed engine's (or the backtest's book keeper's), shared and never written here; in a paper
gateway the sim's own, applied from each message. Liquidity our orders take is an overlay,
``taken[(side, tick)] -> lots``, dropped when the venue next changes that level: the displayed
book stays the venue's, and what the sim sees (:meth:`MarketState.visible`, the best levels, the
walks) is the venue's minus what it took.

The exchange works only where our orders rest: resting prices are kept sorted per side
(:attr:`MarketState.bid_ticks` / :attr:`MarketState.ask_ticks`), so a message that reaches none
of them is answered in O(1) whatever their number, and queue positions (the lots seen at a
resting price, :attr:`MarketState.seen`) are followed at those prices only.

A venue's book that is crossed (its best bid at or above its best ask: an order-level book in an
auction or a pre-open, reported ``BookCrossed`` by the feed, or a match the venue sends in several
messages) is not a market that trades continuously: while it is crossed the sim does not match
against it (:meth:`MarketState.venue_crossed`; see :mod:`.matching`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from decimal import Decimal

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import (
    TIF,
    ExecInstructions,
    OrderStatus,
    OrderType,
    Side,
    TriggerDirection,
)
from mlthon.basics.order_state import OrderLifecycle
from mlthon.basics.tickbook import ASK, BID, NO_ASK, NO_BID, TickBook


class SimOrder(OrderLifecycle[int]):
    """One order's live state inside the simulated exchange (owned by the matching engine).

    Prices are in ticks, quantities in lots of the order's instrument. Its status, size and filled
    lots are those of :class:`~mlthon.basics.order_state.OrderLifecycle`: the engine changes them
    only through its transitions (``ack``, ``trigger``, ``fill``, ``cancel``, ``modify``), the one
    set of rules shared with the env and the live gateways.
    """

    __slots__ = (
        "ahead",
        "cl_id",
        "created_ts",
        "exch_id",
        "exec_instr",
        "iid",
        "is_buy",
        "l3_seq",
        "ord_type",
        "reduce_only",
        "side",
        "stop_tick",
        "strat",
        "tick",
        "tif",
        "trigger_dir",
    )
    # identity, not the field-wise equality of the attrs base: queues and stop lists hold orders
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__  # type: ignore[assignment]  # the attrs base is unhashable

    def __init__(
        self,
        strat: str,
        cl_id: str,
        exch_id: str,
        iid: int,
        side: Side,
        tick: int | None,
        qty: int,
        ord_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
        reduce_only: bool,
        stop_tick: int | None,
        trigger_dir: TriggerDirection,
        created_ts: int,
    ) -> None:
        self.strat = strat
        self.cl_id = cl_id
        self.exch_id = exch_id
        self.iid = iid
        self.side = side
        self.is_buy = side is Side.Buy
        self.tick = tick
        self.qty = qty
        self.filled = 0
        self.cancel_waits = None
        self.ord_type = ord_type
        self.tif = tif
        self.exec_instr = exec_instr
        self.reduce_only = reduce_only
        self.stop_tick = stop_tick
        self.trigger_dir = trigger_dir
        self.status = OrderStatus.PendingNew
        self.created_ts = created_ts
        self.ahead = 0  # displayed lots ahead of us in the queue at our price
        self.l3_seq = 0  # time priority against level ids (order-level data)

    @property
    def leaves(self) -> int:
        """Lots still open."""
        return self.qty - self.filled

    @property
    def key(self) -> tuple[str, str]:
        """(strategy, client order id)."""
        return (self.strat, self.cl_id)

    def __repr__(self) -> str:
        return (
            f"SimOrder({self.strat}/{self.cl_id} {self.side.name} {self.leaves}/{self.qty} lots"
            f" @ {self.tick} ticks, ahead={self.ahead}, {self.status.name})"
        )


class StepTexts(dict[int, str]):
    """``texts[n]`` is ``n`` steps as a report carries it, ``format(n * step, "f")``, made once
    per value (a gateway's reports name the same prices again and again)."""

    __slots__ = ("step",)

    def __init__(self, step: Decimal) -> None:
        super().__init__()
        self.step = step

    def __missing__(self, n: int) -> str:
        if len(self) >= _TEXTS_MAX:
            self.clear()
        text = self[n] = format(n * self.step, "f")
        return text


#: Report texts kept per instrument and kind (prices, quantities) before starting afresh.
_TEXTS_MAX = 100_000


class MarketState:
    """Book, resting orders and reference prices of one instrument.

    Args:
        inst: the instrument.
        book: the instrument's shared book, kept up to date by someone else before each message
            reaches the engine (None: the engine keeps its own, :attr:`own_book`).
    """

    def __init__(self, inst: Instrument, book: TickBook | None = None) -> None:
        self.inst = inst
        self.tick_size: Decimal = inst.tick_size
        self.lot_size: Decimal = inst.lot_size
        self.own_book = book is None
        self.book: TickBook = TickBook() if book is None else book
        # lots taken by our orders at (side, tick) since the venue last changed that level
        self.taken: dict[tuple[int, int], int] = {}
        # a shared book between a clearing status and the next book message: it already holds
        # what comes next, but the venue's book is empty until then (as an own one would be)
        self.hidden = False
        # the venue's book was seen crossed since our orders were last checked against it
        self.was_crossed = False
        self.resting_bids: dict[int, list[SimOrder]] = {}
        self.resting_asks: dict[int, list[SimOrder]] = {}
        self.bid_ticks: list[int] = []  # the keys of resting_bids, sorted
        self.ask_ticks: list[int] = []  # the keys of resting_asks, sorted
        # the visible lots at each (side, tick) holding our orders, as last seen
        self.seen: dict[tuple[int, int], int] = {}
        # lots traded at a level holding our orders since its last depth change: (side, tick)
        self.traded: dict[tuple[int, int], int] = {}
        self.stops: list[SimOrder] = []
        self.last_trade_tick: int | None = None
        self.funding_rate = Decimal(0)
        self.next_funding_ts = 0
        self.funding_mark: Decimal | None = None
        self.settled_funding_ts = 0
        # order-level data: level id -> [side, tick, lots, seq]; per (side, tick) ids in order
        self.l3 = False
        self.l3_levels: dict[int, list[int]] = {}
        self.l3_queues: dict[tuple[int, int], dict[int, None]] = {}
        self.l3_seq = 0
        # after a clearing status of an order-level book: the next image re-anchors our orders
        self.l3_reanchor = False
        # the texts of reports' prices and quantities, made once per tick and lot count
        self.price_texts = StepTexts(self.tick_size)
        self.qty_texts = StepTexts(self.lot_size)

    # --- conversions ---------------------------------------------------------------------------
    def price_of(self, ticks: int) -> Decimal:
        """Ticks -> exact price."""
        return ticks * self.tick_size

    def qty_of(self, lots: int) -> Decimal:
        """Lots -> exact quantity."""
        return lots * self.lot_size

    # --- the book as the sim sees it -----------------------------------------------------------
    def venue_crossed(self) -> bool:
        """True if the venue's book is crossed (best bid at or above best ask): an auction or a
        pre-open, where nothing trades continuously, or a match sent in several messages."""
        if self.hidden:
            return False
        book = self.book
        return book.bid >= book.ask  # NO_BID is below and NO_ASK above every tick

    def visible(self, side: int, tick: int) -> int:
        """Lots at one price: the venue's, minus what our orders took there since."""
        if self.hidden:
            return 0
        n = self.book.lots(side, tick)
        taken = self.taken
        return n - taken.get((side, tick), 0) if taken else n

    def best_bid(self) -> int | None:
        """Best bid in ticks (the sim's view), or None."""
        if self.hidden:
            return None
        book = self.book
        t = book.bid
        taken = self.taken
        if taken:
            while t != NO_BID and taken.get((BID, t), 0) >= book.lots(BID, t):
                t = book.bid_below(t)
        return None if t == NO_BID else t

    def best_ask(self) -> int | None:
        """Best ask in ticks (the sim's view), or None."""
        if self.hidden:
            return None
        book = self.book
        t = book.ask
        taken = self.taken
        if taken:
            while t != NO_ASK and taken.get((ASK, t), 0) >= book.lots(ASK, t):
                t = book.ask_above(t)
        return None if t == NO_ASK else t

    def best(self, side: int) -> int | None:
        """The best tick of ``side`` (the sim's view), or None."""
        return self.best_bid() if side == BID else self.best_ask()

    def walk(self, side: int, limit: int | None = None) -> Iterator[tuple[int, int]]:
        """The levels of ``side`` best first as ``(tick, visible lots)``, down to ``limit``
        included (None: all); levels our orders took entirely are skipped."""
        if self.hidden:
            return
        book = self.book
        taken = self.taken
        if side == BID:
            t = book.bid
            while t != NO_BID and (limit is None or t >= limit):
                n = book.lots(BID, t) - taken.get((BID, t), 0)
                if n > 0:
                    yield t, n
                t = book.bid_below(t)
        else:
            t = book.ask
            while t != NO_ASK and (limit is None or t <= limit):
                n = book.lots(ASK, t) - taken.get((ASK, t), 0)
                if n > 0:
                    yield t, n
                t = book.ask_above(t)

    def take(self, side: int, tick: int, lots: int) -> None:
        """Our order took ``lots`` at ``tick`` of ``side``: hidden from the sim's view until the
        venue next changes that level."""
        key = (side, tick)
        taken = self.taken
        taken[key] = taken.get(key, 0) + lots
        seen = self.seen
        if key in seen:
            seen[key] -= lots

    def mid2(self) -> int | None:
        """Twice the mid price in ticks (exact), or None if a side is empty."""
        b = self.best_bid()
        if b is None:
            return None
        a = self.best_ask()
        return None if a is None else b + a

    def reference_price(self) -> Decimal | None:
        """Mark for unrealised PnL: mid, else last trade, else the last funding mark."""
        m2 = self.mid2()
        if m2 is not None:
            return m2 * self.tick_size / 2
        if self.last_trade_tick is not None:
            return self.price_of(self.last_trade_tick)
        return self.funding_mark

    def level(self, is_bid: bool, tick: int) -> int:
        """Visible lots at one price."""
        return self.visible(BID if is_bid else ASK, tick)

    def clear_book(self) -> None:
        """The venue's book was cleared (snapshot start, invalid book, disconnection)."""
        if self.own_book:
            self.book.clear()
        else:
            self.hidden = True
        self.taken.clear()
        self.traded.clear()
        self.was_crossed = False
        seen = self.seen
        for key in seen:
            seen[key] = 0
        if self.l3_levels:
            self.l3_levels.clear()
            self.l3_queues.clear()
            self.l3_reanchor = True

    # --- our resting orders --------------------------------------------------------------------
    def resting(self, is_bid: bool) -> dict[int, list[SimOrder]]:
        """Our resting orders of one side, by price."""
        return self.resting_bids if is_bid else self.resting_asks

    def add_resting(self, order: SimOrder) -> list[SimOrder]:
        """Put ``order`` at the back of our queue at its price; returns that queue."""
        tick = order.tick
        assert tick is not None
        is_bid = order.is_buy
        resting = self.resting_bids if is_bid else self.resting_asks
        queue = resting.get(tick)
        if queue is None:
            queue = resting[tick] = []
            insort(self.bid_ticks if is_bid else self.ask_ticks, tick)
            side = BID if is_bid else ASK
            self.seen[(side, tick)] = self.visible(side, tick)
        queue.append(order)
        return queue

    def remove_resting(self, order: SimOrder) -> bool:
        """Take ``order`` out of our queue at its price; False if it was not there."""
        tick = order.tick
        if tick is None:
            return False
        is_bid = order.is_buy
        resting = self.resting_bids if is_bid else self.resting_asks
        queue = resting.get(tick)
        if not queue or order not in queue:
            return False
        queue.remove(order)
        if not queue:
            del resting[tick]
            ticks = self.bid_ticks if is_bid else self.ask_ticks
            del ticks[bisect_left(ticks, tick)]
            key = (BID if is_bid else ASK, tick)
            self.seen.pop(key, None)
            self.traded.pop(key, None)
        return True

    def l3_ahead(self, order: SimOrder) -> int:
        """Exact displayed lots ahead of ``order`` from order-level data."""
        assert order.tick is not None
        ids = self.l3_queues.get((BID if order.is_buy else ASK, order.tick))
        if not ids:
            return 0
        levels = self.l3_levels
        seq = order.l3_seq
        total = 0
        for lid in ids:
            entry = levels[lid]
            if entry[3] < seq:
                total += entry[2]
        return total

    def l3_anchor(self, order: SimOrder) -> None:
        """Place ``order`` in the order-level queue at its price after a fresh image: behind
        as many lots as were ahead of it before (at most the whole queue)."""
        assert order.tick is not None
        ids = self.l3_queues.get((BID if order.is_buy else ASK, order.tick), {})
        levels = self.l3_levels
        total = 0
        anchor = 0
        for lid in ids:
            if total >= order.ahead:
                break
            entry = levels[lid]
            total += entry[2]
            anchor = entry[3]
        order.l3_seq = anchor + 1 if total else 0
        order.ahead = min(order.ahead, total)
