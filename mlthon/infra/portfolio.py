"""What a strategy holds, read at once: positions, PnL, fees, open orders and balances, kept in
the env from the strategy's own fills and the gateways' answers (an extension of the MLThon API,
``docs/portfolio.md``).

* :class:`Holding`, per (exchange, instrument): the position (signed: + long), its average entry,
  the realised PnL, the fees and the last fill price; the arithmetic is
  :mod:`mlthon.basics.pnl`'s (an inverse contract's entry is the harmonic mean of its prices, a
  flip opens the remainder at the fill's price). The risk layer reads the same holdings
  (:mod:`mlthon.infra.risk.guard`): one copy of the strategy's positions.
* :class:`Portfolio`: the holdings, the balances per (exchange, coin), and the reconciliation
  with the gateways. A ``PositionInfo`` answer (the strategy's ``fetch_position_info``, or the
  accounting check's) is compared with the holding: the first one of an instrument sets the
  opening position (a strategy that starts with one, or restarts), a later one that differs is
  a mismatch, reported as the accounting check reports one (log at ERROR, ``on_mismatch``: the
  env puts it in the status and sends a priority-0 Telegram message), and the gateway's figure is
  taken. A ``WalletInfo`` answer sets the coin's balance; fills move it from then on (realised
  PnL less fees in the settlement coin; both coins of a spot pair), and the next answer's
  difference (funding, interest, transfers) is logged and counted, not alerted.
* what a strategy reads (:class:`~mlthon.api.portfolio.PositionView`,
  :class:`~mlthon.api.portfolio.OpenOrder`) is in the API (:mod:`mlthon.api.portfolio`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from mlthon.api.portfolio import OpenOrder, PortfolioView, PositionView
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind, Side
from mlthon.basics.pnl import pnl_of
from mlthon.infra.bus import messages as m

log = logging.getLogger(__name__)

ZERO = Decimal(0)
Key = tuple[Exchange, int]
InstrumentOf = Callable[[Exchange, int], Instrument | None]
MarkOf = Callable[[Exchange, int], Decimal | None]


@attrs.define(slots=True)
class Holding:
    """One instrument's position and what it earned (see the module docstring).

    Attributes:
        inst: the instrument.
        qty: the position (+ long, - short).
        entry: its average entry price (0 when flat).
        realised: PnL realised by closing fills, in the settlement coin.
        fees: fees paid (what the gateway reported; negative for rebates).
        last_price: the price of the last fill (0: none yet).
        fills: fills counted.
        working_buy: quantity of the open buy orders the risk layer let through.
        working_sell: quantity of the open sell orders the risk layer let through.
        working_notional: notional of those orders.
    """

    inst: Instrument
    qty: Decimal = ZERO
    entry: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    last_price: Decimal = ZERO
    fills: int = 0
    working_buy: Decimal = ZERO
    working_sell: Decimal = ZERO
    working_notional: Decimal = ZERO

    def fill(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> Decimal:
        """A fill of ``qty`` at ``price`` on ``side``, with its ``fee``; returns the PnL it
        realised."""
        signed = qty if side is Side.Buy else -qty
        pos = self.qty
        realised = ZERO
        if pos == 0 or (pos > 0) == (signed > 0):
            total = pos + signed
            if self.inst.kind is InstrumentKind.Inverse:
                # The average entry of an inverse contract is the harmonic mean of the prices.
                self.entry = abs(total) / (abs(pos) / self.entry + qty / price) if pos else price
            else:
                self.entry = (abs(pos) * self.entry + qty * price) / abs(total)
            self.qty = total
        else:
            closed = min(qty, abs(pos))
            realised = pnl_of(self.inst, closed if pos > 0 else -closed, self.entry, price)
            self.realised += realised
            self.qty = pos + signed
            if self.qty == 0:
                self.entry = ZERO
            elif (self.qty > 0) == (signed > 0):
                self.entry = price  # flipped: the remainder opened at this price
        self.fees += fee
        self.last_price = price
        self.fills += 1
        return realised

    def unrealised(self, mark: Decimal | None) -> Decimal:
        """The open position's PnL at ``mark`` (None: the last fill's price)."""
        if not self.qty:
            return ZERO
        price = mark if mark is not None else self.last_price
        return pnl_of(self.inst, self.qty, self.entry, price) if price and self.entry else ZERO

    def working(self, side: Side) -> Decimal:
        """The quantity working on ``side`` (orders the risk layer let through)."""
        return self.working_buy if side is Side.Buy else self.working_sell


@attrs.frozen
class PositionMismatch:
    """A gateway's position answer that differed from the strategy's fills.

    Attributes:
        exchange: the venue.
        instrument_id: the instrument.
        expected: the position the fills gave.
        actual: the gateway's.
        ts: when it was found (the env's clock).
    """

    exchange: Exchange
    instrument_id: int
    expected: Decimal
    actual: Decimal
    ts: int


class Portfolio(PortfolioView):
    """The strategy's positions, balances and open orders (see the module docstring).

    Args:
        instrument_of: the instrument of (exchange, id), None if unknown.
        mark_of: the reference price of (exchange, id): the book's mid, None without one.
        open_orders: the env's open orders (``OrderTracker.open``: (exchange, client id) ->
            order record with ``instrument_id``, ``side``, ``price``, ``life``, ``adopted``).
        now: the env's clock (ns).
        on_mismatch: told every position mismatch.
    """

    def __init__(
        self,
        instrument_of: InstrumentOf,
        mark_of: MarkOf,
        open_orders: dict[tuple[Exchange, str], Any],
        now: Callable[[], int],
        on_mismatch: Callable[[PositionMismatch], None] | None = None,
    ) -> None:
        self._instrument_of = instrument_of
        self._mark_of = mark_of
        self._open = open_orders
        self._now = now
        self._on_mismatch = on_mismatch
        #: Holdings by (exchange, instrument id): the risk layer's too.
        self.holdings: dict[Key, Holding] = {}
        #: Balances by (exchange, coin): the last wallet answer, moved by fills since.
        self.balances: dict[tuple[Exchange, str], Decimal] = {}
        #: The gateway's last position answer by (exchange, instrument id).
        self.gateway_positions: dict[Key, Decimal] = {}
        #: Position answers that differed from the fills.
        self.mismatches: list[PositionMismatch] = []
        #: Wallet answers that differed from the balance the fills gave (funding, interest,
        #: transfers), and their sum by (exchange, coin).
        self.wallet_adjustments = 0
        self.wallet_drift: dict[tuple[Exchange, str], Decimal] = {}

    # --- reading -------------------------------------------------------------------------------

    def holding(self, ex: Exchange, inst: Instrument) -> Holding:
        """The holding of ``inst`` (created flat)."""
        key = (ex, inst.instrument_id)
        h = self.holdings.get(key)
        if h is None:
            h = self.holdings[key] = Holding(inst)
        return h

    def mark(self, h: Holding) -> Decimal | None:
        """The price a holding is valued at: the book's mid, else its last fill's."""
        inst = h.inst
        mark = self._mark_of(inst.exchange, inst.instrument_id)
        if mark is not None:
            return mark
        return h.last_price or None

    def position(self, exchange: Exchange, instrument_id: int) -> PositionView | None:
        """The position of one instrument (None: not an instrument of the strategy)."""
        h = self.holdings.get((exchange, instrument_id))
        if h is None:
            inst = self._instrument_of(exchange, instrument_id)
            if inst is None:
                return None
            h = Holding(inst)
        return self._view(exchange, h)

    def positions(self) -> list[PositionView]:
        """Every instrument traded (or with an open order or a gateway answer), by exchange and
        id."""
        keys = set(self.holdings) | set(self.gateway_positions)
        keys |= {(rec.exchange, rec.instrument_id) for rec in self._open.values()}
        out = []
        for ex, iid in sorted(keys, key=lambda k: (k[0].value, k[1])):
            view = self.position(ex, iid)
            if view is not None:
                out.append(view)
        return out

    def open_orders(self, exchange: Exchange, instrument_id: int | None = None) -> list[OpenOrder]:
        """The open orders on ``exchange`` (of one instrument, if given), oldest first."""
        return [
            OpenOrder(
                rec.cl_id,
                rec.side,
                rec.price,
                rec.life.qty,
                rec.life.leaves,
                rec.adopted,
            )
            for (ex, _cl), rec in self._open.items()
            if ex is exchange
            and (instrument_id is None or rec.instrument_id == instrument_id)
            and rec.life.is_open
        ]

    def balance(self, exchange: Exchange, coin: str) -> Decimal | None:
        """The balance of ``coin`` (None: no wallet answer for it yet)."""
        return self.balances.get((exchange, coin))

    def equity(self) -> Decimal:
        """Realised + unrealised - fees over every instrument (settlement coins summed as they
        are: meaningful for strategies that settle in one coin)."""
        total = ZERO
        for h in self.holdings.values():
            total += h.realised - h.fees
            if h.qty:
                total += h.unrealised(self.mark(h))
        return total

    def _view(self, ex: Exchange, h: Holding) -> PositionView:
        inst = h.inst
        mark = self.mark(h)
        return PositionView(
            exchange=ex,
            instrument_id=inst.instrument_id,
            name=inst.name,
            qty=h.qty,
            avg_price=h.entry,
            realised_pnl=h.realised,
            unrealised_pnl=h.unrealised(mark),
            fees=h.fees,
            mark=mark,
            settle_coin=inst.settlement,
            open_orders=tuple(self.open_orders(ex, inst.instrument_id)),
            gateway_qty=self.gateway_positions.get((ex, inst.instrument_id)),
            fills=h.fills,
        )

    # --- reports -------------------------------------------------------------------------------

    def on_report(self, ex: Exchange, msg: Any) -> None:
        """A report the env delivers (fills once) or an answer to one of its own questions."""
        kind = type(msg)
        if kind is m.OrderExecution:
            self._on_fill(ex, msg)
        elif kind is m.PositionInfo:
            self._on_position(ex, msg)
        elif kind is m.WalletInfo:
            self._on_wallet(ex, msg)

    def _on_fill(self, ex: Exchange, msg: m.OrderExecution) -> None:
        inst = self._instrument_of(ex, msg.instrument_id)
        if inst is None:
            log.warning(
                "portfolio: fill %s of unknown instrument %d on %s not counted",
                msg.exec_id,
                msg.instrument_id,
                ex.name,
            )
            return
        qty = Decimal(msg.fill_qty)
        price = Decimal(msg.price)
        fee = Decimal(msg.fee)
        realised = self.holding(ex, inst).fill(msg.side, qty, price, fee)
        balances = self.balances
        if not balances:
            return
        fee_coin = msg.fee_coin or inst.settlement
        if inst.kind is InstrumentKind.Spot:
            signed = qty if msg.side is Side.Buy else -qty
            self._move(ex, inst.base, signed)
            self._move(ex, inst.quote, -signed * price)
        else:
            self._move(ex, inst.settlement, realised)
        self._move(ex, fee_coin, -fee)

    def _move(self, ex: Exchange, coin: str, amount: Decimal) -> None:
        key = (ex, coin)
        if amount and key in self.balances:
            self.balances[key] += amount

    def _on_position(self, ex: Exchange, msg: m.PositionInfo) -> None:
        key = (ex, msg.instrument_id)
        actual = Decimal(msg.position)
        first = key not in self.gateway_positions
        self.gateway_positions[key] = actual
        inst = self._instrument_of(ex, msg.instrument_id)
        if inst is None:
            return
        h = self.holding(ex, inst)
        if h.qty == actual:
            return
        if first:
            # The opening position (a start with one, a restart): the fills count from it. Its
            # entry is not known: the mark's, until fills average it.
            log.info(
                "portfolio: %s opening position %s from the gateway (fills counted: %s)",
                inst.name,
                actual,
                h.qty,
            )
            self._set_qty(h, actual)
            return
        mm = PositionMismatch(ex, msg.instrument_id, h.qty, actual, self._now())
        self.mismatches.append(mm)
        log.error(
            "portfolio: ACCOUNTING MISMATCH on %s %s: the gateway says %s, the fills say %s; "
            "the gateway's figure is taken",
            ex.name,
            inst.name,
            actual,
            h.qty,
        )
        self._set_qty(h, actual)
        if self._on_mismatch is not None:
            self._on_mismatch(mm)

    def _set_qty(self, h: Holding, qty: Decimal) -> None:
        if not qty:
            h.entry = ZERO
        elif not h.qty or (h.qty > 0) != (qty > 0):
            mark = self.mark(h)
            h.entry = mark if mark is not None else ZERO
        h.qty = qty

    def _on_wallet(self, ex: Exchange, msg: m.WalletInfo) -> None:
        key = (ex, msg.coin)
        total = Decimal(msg.total)
        kept = self.balances.get(key)
        if kept is not None and kept != total:
            diff = total - kept
            self.wallet_adjustments += 1
            self.wallet_drift[key] = self.wallet_drift.get(key, ZERO) + diff
            log.warning(
                "portfolio: %s %s balance: the gateway says %s, the fills gave %s (%+f: funding, "
                "interest or transfers); the gateway's figure is taken",
                ex.name,
                msg.coin,
                total,
                kept,
                diff,
            )
        self.balances[key] = total
