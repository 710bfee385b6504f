"""The strategy-side ledger of a backtest: orders, fills, position, PnL and the equity curve.

It listens to the same bus as the strategy (requests and reports), so its figures are built from
the messages alone, independently of the simulated exchange's own accounts; the backtest compares
the two at the end (an accounting check).

PnL conventions (all exact decimals, in the instrument's settlement coin):

* linear and spot: ``qty * (exit - entry)`` times the contract multiplier;
* inverse: ``qty * multiplier * (1/entry - 1/exit)`` (in the base coin);
* fees are paid (negative maker fees are rebates), funding as the exchange settles it;
* spread captured by a fill: ``mid - price`` for a buy, ``price - mid`` for a sell, times the
  quantity, with the mid of the simulated exchange's book at the fill.
"""

from __future__ import annotations

import itertools
import statistics
from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind, Side
from mlthon.infra.bus import messages as m

ZERO = Decimal(0)

# Columns of the result tables (orders.csv, fills.csv, equity.csv), in order.
ORDER_COLUMNS = [
    "ts",
    "cl_id",
    "instrument_id",
    "side",
    "ord_type",
    "tif",
    "price",
    "qty",
    "status",
    "filled_qty",
    "avg_price",
    "reject",
]
FILL_COLUMNS = [
    "ts",
    "cl_id",
    "exec_id",
    "instrument_id",
    "side",
    "price",
    "qty",
    "fee",
    "maker",
    "mid",
    "position",
    "realised",
]
CURVE_COLUMNS = ["ts", "equity", "position", "mid"]

# The figures a person looks at first, in the order the CLI and the report show them.
HEADLINE_FIGURES = (
    "total_pnl",
    "realised_pnl",
    "unrealised_pnl",
    "fees",
    "funding",
    "turnover",
    "max_drawdown",
    "sharpe",
    "fills",
    "orders",
    "rejects",
    "fill_ratio",
    "spread_captured",
    "events",
    "duration_s",
)


def pnl_of(inst: Instrument, qty: Decimal, entry: Decimal, exit_: Decimal) -> Decimal:
    """PnL of closing ``qty`` (signed: + long) opened at ``entry`` at ``exit_``."""
    mult = inst.contract_multiplier
    if inst.kind is InstrumentKind.Inverse:
        if not entry or not exit_:
            return ZERO
        return qty * mult * (1 / entry - 1 / exit_)
    return qty * mult * (exit_ - entry)


@attrs.define
class OrderRow:
    ts: int
    cl_id: str
    instrument_id: int
    side: str
    ord_type: str
    tif: str
    price: str
    qty: str
    status: str = "sent"
    filled_qty: Decimal = ZERO
    notional: Decimal = ZERO
    reject: str = ""

    def avg_price(self) -> str:
        return str(self.notional / self.filled_qty) if self.filled_qty else ""


@attrs.define
class FillRow:
    ts: int
    cl_id: str
    exec_id: str
    instrument_id: int
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    maker: bool
    mid: Decimal | None
    position: Decimal
    realised: Decimal


@attrs.define
class _Pos:
    qty: Decimal = ZERO
    entry: Decimal = ZERO
    realised: Decimal = ZERO


class Ledger:
    """Collects a backtest's orders and fills and keeps the PnL."""

    def __init__(self, instruments: list[Instrument], mid_of: Any) -> None:
        self.instruments = {i.instrument_id: i for i in instruments}
        self._mid_of = mid_of
        self.orders: dict[str, OrderRow] = {}
        self.order_list: list[OrderRow] = []
        self.fills: list[FillRow] = []
        self.pos: dict[int, _Pos] = {i: _Pos() for i in self.instruments}
        self.fees = ZERO
        self.funding = ZERO
        self.turnover = ZERO
        self.spread_captured = ZERO
        self.curve: list[tuple[int, Decimal, Decimal, Decimal | None]] = []  # ts, equity, pos, mid
        self.rejects = 0
        self.modifies = 0
        self.cancels = 0

    # --- bus handlers ----------------------------------------------------------------------------

    def on_request(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.NewOrder):
            row = OrderRow(
                msg.ts,
                msg.cl_id,
                msg.instrument_id,
                msg.side.name,
                msg.ord_type.name,
                msg.tif.name,
                msg.price,
                msg.qty,
            )
            self.orders[msg.cl_id] = row
            self.order_list.append(row)
        elif isinstance(msg, m.ModifyOrder):
            self.modifies += 1
        elif isinstance(msg, m.CancelOrder | m.CancelAll):
            self.cancels += 1

    def on_report(self, topic: str, msg: Any) -> None:
        if isinstance(msg, m.OrderExecution):
            self._on_fill(msg)
        elif isinstance(msg, m.NewOrderAck):
            row = self.orders.get(msg.cl_id)
            if row is not None and row.status == "sent":
                row.status = "open"
        elif isinstance(msg, m.NewOrderReject):
            self.rejects += 1
            row = self.orders.get(msg.cl_id)
            if row is not None:
                row.status = "rejected"
                row.reject = f"{msg.code.name}: {msg.reason}"
        elif isinstance(msg, m.OrderCancelled):
            row = self.orders.get(msg.cl_id)
            if row is not None:
                row.status = "partially_filled_cancelled" if row.filled_qty else "cancelled"
        elif isinstance(msg, m.ModifyOrderAck):
            row = self.orders.get(msg.cl_id)
            if row is not None:
                row.price = msg.new_price

    def _on_fill(self, msg: m.OrderExecution) -> None:
        inst = self.instruments.get(msg.instrument_id)
        if inst is None:
            return
        price = Decimal(msg.price)
        qty = Decimal(msg.fill_qty)
        fee = Decimal(msg.fee)
        signed = qty if msg.side is Side.Buy else -qty
        p = self.pos[msg.instrument_id]
        if p.qty == 0 or (p.qty > 0) == (signed > 0):
            total = p.qty + signed
            if inst.kind is InstrumentKind.Inverse:
                # The average entry of an inverse contract is the harmonic mean of the prices.
                p.entry = abs(total) / (abs(p.qty) / p.entry + qty / price) if p.qty else price
            else:
                p.entry = (abs(p.qty) * p.entry + qty * price) / abs(total)
            p.qty = total
        else:
            closed = min(abs(signed), abs(p.qty))
            p.realised += pnl_of(inst, closed if p.qty > 0 else -closed, p.entry, price)
            p.qty += signed
            if p.qty == 0:
                p.entry = ZERO
            elif (p.qty > 0) == (signed > 0):
                p.entry = price  # flipped: the remainder opened at this price
        self.fees += fee
        self.turnover += qty * price * inst.contract_multiplier
        mid = self._mid_of(msg.instrument_id)
        if mid is not None:
            self.spread_captured += (mid - price if signed > 0 else price - mid) * qty
        row = self.orders.get(msg.cl_id)
        if row is not None:
            row.filled_qty += qty
            row.notional += qty * price
            row.status = "filled" if Decimal(msg.leaves_qty) == 0 else "partially_filled"
        self.fills.append(
            FillRow(
                msg.exec_ts,
                msg.cl_id,
                msg.exec_id,
                msg.instrument_id,
                msg.side.name,
                price,
                qty,
                fee,
                msg.maker,
                mid,
                p.qty,
                p.realised,
            )
        )
        self.sample(msg.exec_ts)

    # --- marks -----------------------------------------------------------------------------------

    def realised(self) -> Decimal:
        return sum((p.realised for p in self.pos.values()), ZERO)

    def unrealised(self) -> Decimal:
        total = ZERO
        for iid, p in self.pos.items():
            if p.qty:
                mid = self._mid_of(iid)
                if mid is not None:
                    total += pnl_of(self.instruments[iid], p.qty, p.entry, mid)
        return total

    def equity(self) -> Decimal:
        """Realised + unrealised - fees + funding."""
        return self.realised() + self.unrealised() - self.fees + self.funding

    def sample(self, ts: int) -> None:
        """Add a point to the equity curve (position and mid of the first instrument)."""
        iid = next(iter(self.pos))
        self.curve.append((ts, self.equity(), self.pos[iid].qty, self._mid_of(iid)))

    # --- figures ---------------------------------------------------------------------------------

    def max_drawdown(self) -> Decimal:
        peak: Decimal | None = None
        worst = ZERO
        for _, eq, _, _ in self.curve:
            peak = eq if peak is None or eq > peak else peak
            worst = max(worst, peak - eq)
        return worst

    def sharpe(self, capital: Decimal, periods_per_year: float) -> float:
        """Annualised Sharpe ratio of the equity changes between samples, as returns on
        ``capital`` (0 when there are fewer than 3 samples or no variation)."""
        eqs = [float(e) for _, e, _, _ in self.curve]
        if len(eqs) < 3 or not capital:
            return 0.0
        rets = [(b - a) / float(capital) for a, b in itertools.pairwise(eqs)]
        sd = statistics.pstdev(rets)
        if sd == 0:
            return 0.0
        return float(statistics.fmean(rets) / sd * periods_per_year**0.5)

    def fill_ratio(self) -> float:
        """Share of the orders sent that got at least one fill."""
        sent = len(self.order_list)
        return sum(1 for o in self.order_list if o.filled_qty) / sent if sent else 0.0
