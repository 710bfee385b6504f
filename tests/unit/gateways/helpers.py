"""Shared builders for the simulated-exchange tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind, Side
from mlthon.feeds.grid import Grid
from mlthon.feeds.mirror import BookKeeper
from mlthon.gateways.sim.market import SimOrder
from mlthon.gateways.sim.matching import MatchingEngine
from mlthon.infra.bus.messages import (
    ADD,
    ASK,
    BID,
    DELETE,
    BookUpdate,
    FeedStatus,
    LevelUpdate,
    Msg,
    NewOrder,
    TradeUpdate,
)

LIN = Instrument(
    instrument_id=1,
    name="BTCUSDT",
    exchange=Exchange.Sim,
    base="BTC",
    quote="USDT",
    kind=InstrumentKind.Linear,
    tick_size="0.1",
    lot_size="0.001",
    min_qty="0.001",
    min_notional="5",
    maker_fee="0.0002",
    taker_fee="0.0005",
)
SPOT = Instrument(
    instrument_id=2,
    name="ETHUSDT",
    exchange=Exchange.Sim,
    base="ETH",
    quote="USDT",
    kind=InstrumentKind.Spot,
    tick_size="0.01",
    lot_size="0.01",
    min_qty="0.01",
    maker_fee="0.001",
    taker_fee="0.001",
)
INV = Instrument(
    instrument_id=3,
    name="BTCUSD",
    exchange=Exchange.Sim,
    base="BTC",
    quote="USD",
    kind=InstrumentKind.Inverse,
    tick_size="0.5",
    lot_size="1",
    min_qty="1",
    contract_multiplier="100",
    maker_fee="-0.00025",
    taker_fee="0.00075",
)

BALANCES = {"USDT": Decimal("1000000"), "BTC": Decimal("10"), "ETH": Decimal("100")}


class Recorder:
    """Collects the engine's reports: (strat, msg, kind)."""

    def __init__(self) -> None:
        self.out: list[tuple[str, Msg, str]] = []

    def __call__(self, strat: str, msg: Msg, kind: str) -> None:
        self.out.append((strat, msg, kind))

    def msgs(self, strat: str | None = None) -> list[Msg]:
        return [m for s, m, _ in self.out if strat is None or s == strat]

    def of(self, cls: type[Any], strat: str | None = None) -> list[Any]:
        return [m for m in self.msgs(strat) if isinstance(m, cls)]

    def kinds(self) -> list[str]:
        return [type(m).__name__ for m in self.msgs()]

    def clear(self) -> None:
        self.out.clear()


class SharedBookEngine(MatchingEngine):
    """A matching engine reading books it does not keep, as in a backtest: a
    :class:`~mlthon.feeds.mirror.BookKeeper` applies each market-data message before the engine
    sees it (the engine never writes those books)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.keeper = BookKeeper()
        super().__init__(*args, books=lambda iid: self.keeper.book(Exchange.Sim, iid), **kw)

    def on_book_update(self, msg: BookUpdate, ts: int) -> None:
        self.keeper.apply(msg)
        super().on_book_update(msg, ts)

    def on_level_update(self, msg: LevelUpdate, ts: int) -> None:
        self.keeper.apply(msg)
        super().on_level_update(msg, ts)

    def on_feed_status(self, msg: FeedStatus, ts: int) -> None:
        self.keeper.apply(msg)
        super().on_feed_status(msg, ts)


# Whether engine() makes engines on shared books (the ``shared_books`` fixture of conftest.py).
SHARED = [False]


def engine(**kw: Any) -> tuple[MatchingEngine, Recorder]:
    rec = Recorder()
    kw.setdefault("balances", BALANCES)
    cls = SharedBookEngine if SHARED[0] else MatchingEngine
    eng = cls([LIN, SPOT, INV], rec, **kw)
    return eng, rec


GRIDS = {i.instrument_id: Grid(i) for i in (LIN, SPOT, INV)}


def ticks(iid: int, price: str) -> int:
    """A price text of instrument ``iid`` in its ticks (as the feed sends it)."""
    return GRIDS[iid].tick_of(price)


def lots(iid: int, qty: str) -> int:
    """A size text of instrument ``iid`` in its lots."""
    return GRIDS[iid].lots_of(qty)


def book(
    iid: int,
    bids: list[tuple[str, str]] = (),  # type: ignore[assignment]
    asks: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ts: int = 1,
    deletes: list[tuple[int, str]] = (),  # type: ignore[assignment]
) -> BookUpdate:
    """A book message of levels given as text (converted to ticks and lots, as the feed does)."""
    ch = [(ADD, BID, ticks(iid, p), lots(iid, q)) for p, q in bids]
    ch += [(ADD, ASK, ticks(iid, p), lots(iid, q)) for p, q in asks]
    ch += [(DELETE, side, ticks(iid, p), 0) for side, p in deletes]
    return BookUpdate(ex=Exchange.Sim.value, iid=iid, ts=ts, ch=ch)


def trade(iid: int, taker: Side, price: str, qty: str, ts: int = 1) -> TradeUpdate:
    """A trade message of a price and size given as text."""
    return TradeUpdate(
        ex=Exchange.Sim.value,
        iid=iid,
        ts=ts,
        tr=[(taker.value, ticks(iid, price), lots(iid, qty), ts, "t")],
    )


def new(
    cl_id: str, side: Side, price: str, qty: str, iid: int = 1, strat: str = "s1", **kw: Any
) -> NewOrder:
    return NewOrder(
        strat=strat, cl_id=cl_id, instrument_id=iid, side=side, price=price, qty=qty, **kw
    )


def get(e: MatchingEngine, cl_id: str, strat: str = "s1") -> SimOrder:
    """The order ``cl_id`` of ``strat`` (it must exist)."""
    o = e.order(strat, cl_id)
    assert o is not None, cl_id
    return o
