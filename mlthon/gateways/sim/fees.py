"""Maker/taker fees per exchange and instrument.

The rate applied to a fill is looked up in this order: an override for the instrument id, an
override for the exchange, then the instrument's own ``maker_fee`` / ``taker_fee``. A negative rate
is a rebate: the fee reported on the fill is negative and the wallet is credited.

The fee is ``rate * notional`` in the settlement coin (see :mod:`mlthon.gateways.sim.contract`):
quote coin for spot and linear instruments, base coin for inverse ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.gateways.sim.contract import settle_notional


@attrs.frozen
class FeeRates:
    """A maker and a taker rate (fractions: ``Decimal("0.0002")`` is 2 bp)."""

    maker: Decimal
    taker: Decimal


class FeeModel:
    """Computes the fee of each fill.

    Args:
        by_exchange: rates replacing the instruments' own for every instrument of an exchange.
        by_instrument: rates for one instrument id; they win over ``by_exchange``.
    """

    def __init__(
        self,
        by_exchange: Mapping[Exchange, FeeRates] | None = None,
        by_instrument: Mapping[int, FeeRates] | None = None,
    ) -> None:
        self._by_exchange = dict(by_exchange or {})
        self._by_instrument = dict(by_instrument or {})
        self._cache: dict[int, FeeRates] = {}

    def rates(self, inst: Instrument) -> FeeRates:
        """The rates that apply to ``inst``."""
        found = self._cache.get(inst.instrument_id)
        if found is not None:
            return found
        found = self._by_instrument.get(inst.instrument_id)
        if found is None:
            found = self._by_exchange.get(inst.exchange)
        if found is None:
            found = FeeRates(inst.maker_fee, inst.taker_fee)
        self._cache[inst.instrument_id] = found
        return found

    def fee_coin(self, inst: Instrument) -> str:
        """The coin fees are charged in: the settlement coin (quote for spot)."""
        if inst.kind is InstrumentKind.Spot:
            return inst.quote
        return inst.settlement

    def fee(self, inst: Instrument, price: Decimal, qty: Decimal, maker: bool) -> Decimal:
        """The fee of one fill of ``qty`` at ``price`` (negative for a rebate)."""
        r = self.rates(inst)
        return settle_notional(inst, price, qty) * (r.maker if maker else r.taker)
