"""Instruments: what a strategy may trade, with the grid its prices and quantities must lie on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.basics.values import Price, Qty, to_decimal

# Read on every fill (``settlement``), bound once: reading it off its Enum class goes through
# EnumType's Python-level __getattr__ hook on Python 3.11 (about 800 instructions).
_INVERSE = InstrumentKind.Inverse


def _positive(_inst: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if value <= 0:
        raise ValueError(f"Instrument.{attribute.name} must be > 0, got {value}")


def _non_negative(_inst: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if value < 0:
        raise ValueError(f"Instrument.{attribute.name} must be >= 0, got {value}")


def _dec(value: object) -> Decimal:
    return to_decimal(value, "instrument field")


@attrs.frozen
class Instrument:
    """A tradable instrument on one exchange.

    Attributes:
        instrument_id: mlthon's numeric id, unique across exchanges.
        name: the venue's symbol, e.g. ``BTCUSDT``.
        exchange: the venue.
        base: base asset (``BTC``).
        quote: quote asset (``USDT``).
        kind: spot, linear or inverse.
        tick_size: price grid; every price is a multiple of it.
        lot_size: quantity grid; every quantity is a multiple of it.
        min_qty: smallest quantity accepted.
        contract_multiplier: value of one contract (1 for spot and most linear perpetuals; the USD
            face value of a contract for inverse ones).
        min_notional: smallest price * qty accepted (0 for none).
        settle_coin: the asset PnL and margin are in (quote for linear, base for inverse).
        maker_fee: fee rate for passive fills (negative for a rebate).
        taker_fee: fee rate for aggressive fills.
    """

    instrument_id: int
    name: str
    exchange: Exchange
    base: str
    quote: str
    kind: InstrumentKind
    tick_size: Decimal = attrs.field(converter=_dec, validator=_positive)
    lot_size: Decimal = attrs.field(converter=_dec, validator=_positive)
    min_qty: Decimal = attrs.field(default=Decimal(0), converter=_dec, validator=_non_negative)
    contract_multiplier: Decimal = attrs.field(
        default=Decimal(1), converter=_dec, validator=_positive
    )
    min_notional: Decimal = attrs.field(default=Decimal(0), converter=_dec, validator=_non_negative)
    settle_coin: str = ""
    maker_fee: Decimal = attrs.field(default=Decimal(0), converter=_dec)
    taker_fee: Decimal = attrs.field(default=Decimal(0), converter=_dec)

    def get_instrument_name(self) -> str:
        """The venue's symbol."""
        return self.name

    def get_instrument_id(self) -> int:
        """mlthon's numeric id."""
        return self.instrument_id

    @property
    def settlement(self) -> str:
        """The settle coin: as configured, else quote for spot/linear and base for inverse."""
        if self.settle_coin:
            return self.settle_coin
        return self.base if self.kind is _INVERSE else self.quote

    def price(self, value: object) -> Price:
        """A Price on this instrument's tick grid; raises ValueError if off the grid."""
        p = Price(value)
        if not p.is_multiple_of(self.tick_size):
            raise ValueError(f"price {p} is not a multiple of {self.name}'s tick {self.tick_size}")
        return p

    def qty(self, value: object) -> Qty:
        """A Qty on this instrument's lot grid; raises ValueError if off the grid."""
        q = Qty(value)
        if not q.is_multiple_of(self.lot_size):
            raise ValueError(f"qty {q} is not a multiple of {self.name}'s lot {self.lot_size}")
        return q

    def round_price(self, value: object) -> Price:
        """The nearest price on the tick grid."""
        return Price(value).round_to(self.tick_size)

    def round_qty(self, value: object) -> Qty:
        """The largest quantity on the lot grid not above ``value``."""
        return Qty(value).round_to(self.lot_size, "ROUND_DOWN")
