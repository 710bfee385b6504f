"""Accounts of the simulated exchange: spot wallets, perpetual positions, margin and funding.

Each strategy trades from its own account (a sub-account), created on first use with the
configured opening balances.

* **Spot**: a wallet per coin, ``total`` and ``locked``; an open buy locks ``price * leaves * (1 +
  taker rate)`` quote coin, an open sell locks ``leaves`` base coin. Fees are charged in the quote
  coin.
* **Linear / inverse perpetuals**: a position per instrument (one-way mode) or per leg (hedge
  mode: a ``close_position`` sell closes the long leg, a ``close_position`` buy the short leg, any
  other order opens or adds to the leg of its side). Average entry price, realised PnL (paid into
  the settlement-coin wallet at each closing fill) and unrealised PnL against a mark price. Inverse
  PnL is in the base coin: ``qty * mult * (1/entry - 1/exit)`` for a long.
* **Margin**: ``available = wallet + unrealised - position margin - order margin``, where margins
  are notional / leverage; an order must not need more initial margin than is available. Orders
  that only reduce a position need none.
* **Funding**: at each funding time, ``payment = qty * mult * mark * rate`` (linear, quote coin) or
  ``qty * mult / mark * rate`` (inverse, base coin) with a signed quantity: longs pay a positive
  rate, shorts receive it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from enum import Enum

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import InstrumentKind, Side
from mlthon.gateways.sim.contract import average_entry, pnl, settle_notional

# Members read on every order and fill, bound once: reading one off its Enum class (``Side.Buy``)
# goes through EnumType's Python-level __getattr__ hook on Python 3.11 (about 800 instructions).
_BUY, _SELL = Side.Buy, Side.Sell
_SPOT = InstrumentKind.Spot

ZERO = Decimal(0)

MarkSource = Callable[[int], Decimal | None]


class Leg(Enum):
    """Which position an order or fill acts on."""

    Net = 0  # one-way mode
    Long = 1  # hedge mode
    Short = 2


_NET, _LONG, _SHORT = Leg.Net, Leg.Long, Leg.Short


@attrs.define
class Position:
    """A position: ``qty`` is signed (long > 0) in one-way mode, non-negative on a hedge leg.

    Attributes:
        qty: contracts held.
        entry: average entry price (0 when flat).
        realised: PnL realised so far, in the settlement coin, fees excluded.
        funding: funding paid so far (positive = paid), in the settlement coin.
    """

    qty: Decimal = ZERO
    entry: Decimal = ZERO
    realised: Decimal = ZERO
    funding: Decimal = ZERO


@attrs.define
class Wallet:
    """A coin balance; ``total`` includes realised PnL, fees and funding."""

    total: Decimal = ZERO


@attrs.frozen
class FundingPayment:
    """One funding payment of one account (positive ``amount`` = paid by the account)."""

    strat: str
    instrument_id: int
    ts: int
    rate: Decimal
    mark: Decimal
    qty: Decimal
    amount: Decimal
    coin: str


def leg_of(hedge_mode: bool, side: Side, reduce_only: bool) -> Leg:
    """The position an order acts on (see the module docstring)."""
    if not hedge_mode:
        return _NET
    is_buy = side is _BUY
    if reduce_only:
        return _SHORT if is_buy else _LONG
    return _LONG if is_buy else _SHORT


class Account:
    """One strategy's balances and positions on the simulated exchange.

    Args:
        name: the owner (strategy name).
        balances: opening wallet totals per coin.
        leverage: initial-margin leverage of derivative positions and orders.
        hedge_mode: two legs per instrument instead of one net position.
        marks: gives the mark price of an instrument id (None when unknown).
    """

    def __init__(
        self,
        name: str,
        balances: Mapping[str, Decimal],
        *,
        leverage: Decimal = Decimal(1),
        hedge_mode: bool = False,
        marks: MarkSource | None = None,
    ) -> None:
        self.name = name
        self.leverage = leverage
        self.hedge_mode = hedge_mode
        self._marks: MarkSource = marks or (lambda _iid: None)
        self.wallets: dict[str, Wallet] = {c: Wallet(Decimal(v)) for c, v in balances.items()}
        self.opening: dict[str, Decimal] = {c: Decimal(v) for c, v in balances.items()}
        self.positions: dict[tuple[int, Leg], Position] = {}
        self._instruments: dict[int, Instrument] = {}
        # order key -> (coin, amount) locked (spot) or reserved as initial margin (derivatives)
        self._locks: dict[object, tuple[str, Decimal]] = {}
        self._locked: dict[str, Decimal] = {}

    # --- queries -------------------------------------------------------------------------------
    def wallet(self, coin: str) -> Wallet:
        """The wallet of ``coin`` (created empty)."""
        w = self.wallets.get(coin)
        if w is None:
            w = self.wallets[coin] = Wallet()
        return w

    def locked(self, coin: str) -> Decimal:
        """Amount of ``coin`` locked (or reserved as margin) by open orders."""
        return self._locked.get(coin, ZERO)

    def position(self, inst: Instrument, leg: Leg = Leg.Net) -> Position:
        """The position of one leg (created flat)."""
        self._instruments[inst.instrument_id] = inst
        key = (inst.instrument_id, leg)
        p = self.positions.get(key)
        if p is None:
            p = self.positions[key] = Position()
        return p

    def net_position(self, inst: Instrument) -> Decimal:
        """Signed net quantity: one-way position, or long leg minus short leg."""
        if self.hedge_mode:
            return self.position(inst, Leg.Long).qty - self.position(inst, Leg.Short).qty
        return self.position(inst).qty

    def holding_change(self, coin: str) -> Decimal:
        """How much the wallet total of ``coin`` moved since the account opened: what spot
        trading in that coin as the base added up to (fees are charged in the quote coin)."""
        return self.wallet(coin).total - self.opening.get(coin, ZERO)

    def _settled_positions(self, coin: str) -> Iterator[tuple[Instrument, Leg, Position]]:
        for (iid, leg), p in self.positions.items():
            inst = self._instruments[iid]
            if p.qty and inst.kind is not _SPOT and inst.settlement == coin:
                yield inst, leg, p

    def unrealised(self, inst: Instrument, leg: Leg = Leg.Net) -> Decimal:
        """Unrealised PnL of one leg at the current mark (0 if flat or no mark)."""
        p = self.position(inst, leg)
        mark = self._marks(inst.instrument_id)
        if not p.qty or mark is None or mark <= 0:
            return ZERO
        long = leg is _LONG or (leg is _NET and p.qty > 0)
        return pnl(inst, long, abs(p.qty), p.entry, mark)

    def available(self, coin: str) -> Decimal:
        """What new orders may use: total + unrealised - position margin - locked."""
        avail = self.wallet(coin).total - self.locked(coin)
        for inst, leg, p in self._settled_positions(coin):
            avail += self.unrealised(inst, leg)
            avail -= settle_notional(inst, p.entry, abs(p.qty)) / self.leverage
        return avail

    # --- order reservations --------------------------------------------------------------------
    def reduce_room(self, inst: Instrument, side: Side) -> Decimal:
        """The quantity a reduce-only order on ``side`` may still close."""
        if self.hedge_mode:
            leg = leg_of(True, side, True)
            return self.position(inst, leg).qty
        q = self.position(inst).qty
        if side is Side.Buy:
            return -q if q < 0 else ZERO
        return q if q > 0 else ZERO

    def requirement(
        self,
        inst: Instrument,
        side: Side,
        price: Decimal,
        qty: Decimal,
        reduce_only: bool,
        taker_rate: Decimal,
    ) -> tuple[str, Decimal]:
        """The coin and amount an order of ``qty`` at ``price`` must lock or reserve."""
        if inst.kind is _SPOT:
            if side is _BUY:
                notional = price * qty * inst.contract_multiplier
                return inst.quote, notional * (1 + max(taker_rate, ZERO))
            return inst.base, qty
        coin = inst.settlement
        if reduce_only:
            return coin, ZERO
        opening = qty
        if not self.hedge_mode:
            q = self.position(inst).qty
            if (side is _BUY and q < 0) or (side is _SELL and q > 0):
                opening = max(ZERO, qty - abs(q))
        return coin, settle_notional(inst, price, opening) / self.leverage

    def lock(self, key: object, coin: str, amount: Decimal) -> None:
        """Set the amount locked by order ``key`` (replacing its previous lock)."""
        self.unlock(key)
        if amount > 0:
            self._locks[key] = (coin, amount)
            self._locked[coin] = self._locked.get(coin, ZERO) + amount

    def unlock(self, key: object) -> None:
        """Release what order ``key`` locked."""
        old = self._locks.pop(key, None)
        if old is not None:
            self._locked[old[0]] -= old[1]

    def lock_of(self, key: object) -> tuple[str, Decimal] | None:
        """What order ``key`` currently locks."""
        return self._locks.get(key)

    # --- fills and funding ---------------------------------------------------------------------
    def on_fill(
        self,
        inst: Instrument,
        side: Side,
        price: Decimal,
        qty: Decimal,
        fee: Decimal,
        reduce_only: bool = False,
    ) -> Decimal:
        """Book one fill; returns the PnL it realised (0 for spot and opening fills)."""
        if inst.kind is _SPOT:
            notional = price * qty * inst.contract_multiplier
            base, quote = self.wallet(inst.base), self.wallet(inst.quote)
            if side is _BUY:
                base.total += qty
                quote.total -= notional + fee
            else:
                base.total -= qty
                quote.total += notional - fee
            return ZERO
        leg = leg_of(self.hedge_mode, side, reduce_only)
        p = self.position(inst, leg)
        signed = qty if side is _BUY else -qty
        if leg is not _NET:
            # a hedge leg holds a magnitude: adding to it or taking from it
            adding = (leg is _LONG) == (side is _BUY)
            realised = self._apply(inst, p, qty if adding else -qty, price, leg is _LONG)
        else:
            realised = self._apply(inst, p, signed, price, None)
        w = self.wallet(inst.settlement)
        w.total += realised - fee
        return realised

    @staticmethod
    def _apply(
        inst: Instrument, p: Position, delta: Decimal, price: Decimal, leg_long: bool | None
    ) -> Decimal:
        """Add ``delta`` to ``p.qty``; realise PnL on the part that closes."""
        q = p.qty
        if q == 0 or (q > 0) == (delta > 0):
            p.entry = average_entry(inst, abs(q), p.entry, abs(delta), price)
            p.qty = q + delta
            return ZERO
        closing = min(abs(delta), abs(q))
        long = (q > 0) if leg_long is None else leg_long
        realised = pnl(inst, long, closing, p.entry, price)
        p.realised += realised
        p.qty = q + delta
        if p.qty == 0:
            p.entry = ZERO
        elif (p.qty > 0) != (q > 0):
            p.entry = price  # flipped through zero: the rest opens at the fill price
        return realised

    def pay_funding(
        self, inst: Instrument, rate: Decimal, mark: Decimal, ts: int
    ) -> list[FundingPayment]:
        """Charge (or credit) funding on every leg of ``inst``; returns the payments made."""
        out: list[FundingPayment] = []
        if inst.kind is InstrumentKind.Spot or mark <= 0:
            return out
        legs = (Leg.Long, Leg.Short) if self.hedge_mode else (Leg.Net,)
        for leg in legs:
            p = self.position(inst, leg)
            if not p.qty:
                continue
            signed = -p.qty if leg is Leg.Short else p.qty
            amount = settle_notional(inst, mark, abs(signed)) * rate
            if signed < 0:
                amount = -amount
            p.funding += amount
            self.wallet(inst.settlement).total -= amount
            out.append(
                FundingPayment(
                    self.name, inst.instrument_id, ts, rate, mark, signed, amount, inst.settlement
                )
            )
        return out
