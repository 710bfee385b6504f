"""The matching engine's view of one instrument: the replayed book, our resting orders, stops.

Prices are kept as integer ticks and quantities as integer lots of the instrument, so the hot path
does integer arithmetic only; values are converted back to exact decimals for reports.
"""

from __future__ import annotations

import heapq
from decimal import Decimal, InvalidOperation

from mlthon.basics.book import lazy_best
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
from mlthon.basics.sanity import checked_decimal

_CACHE_MAX = 200_000


class TickSide(dict[int, int]):
    """One side of the sim's displayed book: tick -> lots, plus a lazily pruned heap that gives
    the best tick in O(1) amortised (a plain dict costs a fraction of a sorted container per book
    event, and book events vastly outnumber the walks that need the side in price order).

    Reads and updates of existing ticks are plain dict operations. A tick that is new must be
    added with :meth:`set_level`, or set directly and then announced with :meth:`push` (the hot
    path of the matching engine); removing one needs nothing more.
    """

    __slots__ = ("heap", "is_bid")

    def __init__(self, is_bid: bool) -> None:
        super().__init__()
        self.is_bid = is_bid
        self.heap: list[int] = []  # ticks, negated for bids so that the top is the best

    def push(self, tick: int) -> None:
        """Record a tick just added to the dict."""
        heap = self.heap
        heapq.heappush(heap, -tick if self.is_bid else tick)
        if len(heap) > 2 * len(self) + 64:
            self.heap = [-t for t in self] if self.is_bid else list(self)
            heapq.heapify(self.heap)

    def set_level(self, tick: int, lots: int) -> None:
        """Set the displayed lots at ``tick``; zero or less removes the level."""
        if lots <= 0:
            self.pop(tick, None)
            return
        if tick not in self:
            self.push(tick)
        self[tick] = lots

    def best(self) -> int | None:
        """The best tick (highest bid, lowest ask), or None if the side is empty."""
        return lazy_best(self.heap, self, self.is_bid)

    def worst(self) -> int | None:
        """The deepest tick (lowest bid, highest ask), or None if the side is empty."""
        if not self:
            return None
        return min(self) if self.is_bid else max(self)

    def best_first(self, limit: int | None = None) -> list[int]:
        """The ticks best first, down to ``limit`` included (None: all)."""
        if self.is_bid:
            ticks = sorted(self, reverse=True)
            return ticks if limit is None else [t for t in ticks if t >= limit]
        ticks = sorted(self)
        return ticks if limit is None else [t for t in ticks if t <= limit]

    def clear(self) -> None:
        super().clear()
        self.heap.clear()


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


class MarketState:
    """Book, resting orders and reference prices of one instrument."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.tick_size: Decimal = inst.tick_size
        self.lot_size: Decimal = inst.lot_size
        self.bids = TickSide(True)  # tick -> lots
        self.asks = TickSide(False)
        self.resting_bids: dict[int, list[SimOrder]] = {}
        self.resting_asks: dict[int, list[SimOrder]] = {}
        self.stops: list[SimOrder] = []
        # lots traded at a level holding our orders since its last depth change: (side, tick)
        self.traded: dict[tuple[bool, int], int] = {}
        self.last_trade_tick: int | None = None
        self.funding_rate = Decimal(0)
        self.next_funding_ts = 0
        self.funding_mark: Decimal | None = None
        self.settled_funding_ts = 0
        # order-level data: level id -> [is_bid, tick, lots, seq]; per (is_bid, tick) ids in order
        self.l3 = False
        self.l3_levels: dict[int, list[int]] = {}
        self.l3_queues: dict[tuple[bool, int], dict[int, None]] = {}
        self.l3_seq = 0
        self._px_cache: dict[str, int] = {}
        self._qty_cache: dict[str, int] = {}

    # --- conversions ---------------------------------------------------------------------------
    def ticks_of(self, text: str) -> int:
        """Price string -> ticks; raises ValueError if it is not a sane decimal (finite, in range:
        :func:`~mlthon.basics.sanity.decimal_problem`) on the tick grid."""
        found = self._px_cache.get(text)
        if found is not None:
            return found
        d = checked_decimal("price", text)
        try:
            n, rem = divmod(d, self.tick_size)
        except InvalidOperation:  # DivisionImpossible: more ticks than the context's digits
            raise ValueError(
                f"price {text!r} is out of range for the tick {self.tick_size}"
            ) from None
        if rem:
            raise ValueError(f"price {text} is not a multiple of the tick {self.tick_size}")
        if len(self._px_cache) > _CACHE_MAX:
            self._px_cache.clear()
        self._px_cache[text] = t = int(n)
        return t

    def lots_of(self, text: str) -> int:
        """Market-data quantity string -> lots (rounded down onto the lot grid); raises
        ValueError if it is not a sane decimal >= 0."""
        found = self._qty_cache.get(text)
        if found is not None:
            return found
        d = checked_decimal("size", text)
        try:
            n = int(d // self.lot_size)
        except InvalidOperation:
            raise ValueError(f"size {text!r} is out of range for the lot {self.lot_size}") from None
        if len(self._qty_cache) > _CACHE_MAX:
            self._qty_cache.clear()
        self._qty_cache[text] = n
        return n

    def tick_cache(self) -> dict[str, int]:
        """The price string -> ticks cache behind :meth:`ticks_of`, for hot loops to read."""
        return self._px_cache

    def lots_cache(self) -> dict[str, int]:
        """The size string -> lots cache behind :meth:`lots_of`, for hot loops to read."""
        return self._qty_cache

    def price_of(self, ticks: int) -> Decimal:
        """Ticks -> exact price."""
        return ticks * self.tick_size

    def qty_of(self, lots: int) -> Decimal:
        """Lots -> exact quantity."""
        return lots * self.lot_size

    # --- book ----------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        """Best bid in ticks (the sim's view), or None."""
        return self.bids.best()

    def best_ask(self) -> int | None:
        """Best ask in ticks (the sim's view), or None."""
        return self.asks.best()

    def mid2(self) -> int | None:
        """Twice the mid price in ticks (exact), or None if a side is empty."""
        b = self.bids.best()
        if b is None:
            return None
        a = self.asks.best()
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
        """Displayed lots at one price."""
        book = self.bids if is_bid else self.asks
        return int(book.get(tick, 0))

    def resting(self, is_bid: bool) -> dict[int, list[SimOrder]]:
        """Our resting orders of one side, by price."""
        return self.resting_bids if is_bid else self.resting_asks

    def clear_book(self) -> None:
        """Forget the displayed book (snapshot start, invalid book)."""
        self.bids.clear()
        self.asks.clear()
        self.traded.clear()
        self.l3_levels.clear()
        self.l3_queues.clear()

    def l3_ahead(self, order: SimOrder) -> int:
        """Exact displayed lots ahead of ``order`` from order-level data."""
        assert order.tick is not None
        ids = self.l3_queues.get((order.is_buy, order.tick))
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
