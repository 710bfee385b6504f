"""The risk limits of one strategy: the ``[risk]`` table of its TOML file, read and checked.

Every limit is off unless written (``docs/risk.md``)::

    [risk]
    max_order_qty = "0.5"            # per order, in the instrument's quantity (every instrument)
    max_order_notional = "50000"     # per order: qty x price x contract multiplier (quote coin)
    price_band_pct = 5               # a limit price at most 5 % away from the book's mid
    max_position = "2"               # |position + open orders on the order's side + the order|
    max_gross_exposure = "200000"    # sum of |position x mark| + open orders' notional
    max_open_orders = 50             # orders sent and not ended
    max_order_rate = 20              # new orders and modifies per second (rolling)
    max_cancel_rate = 50             # cancels per second (rolling)
    max_daily_loss = "1000"          # equity since the day's start (UTC): Halted past it
    max_drawdown = "1500"            # equity below the day's peak: Halted past it
    flatten_on_halt = false          # on a halt, also close every position at market
    loss_check_s = 1                 # how often the loss limits are checked between fills

    [risk.instruments.BTCUSDT]       # by name, or by id ([risk.instruments.1001])
    max_order_qty = "0.1"            # overrides the [risk] value for this instrument
    max_position = "1"

The four limits of one order and one instrument (``max_order_qty``, ``max_order_notional``,
``price_band_pct``, ``max_position``) may be given in ``[risk]`` (for every instrument) and in
``[risk.instruments.<id or name>]`` (that instrument; a key it leaves out keeps the ``[risk]``
value). The others are the strategy's as a whole.

An unknown key, a float where a decimal is wanted (write ``"0.5"``), a value out of bounds: a
:class:`~mlthon.basics.errors.ConfigError` naming the file, the key (``risk.max_order_qty``) and
the value, as for every other table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import attrs

from mlthon.basics.instrument import Instrument
from mlthon.infra.config_schema import Table, read_toml

_T = TypeVar("_T")

#: The limits that apply per instrument (in ``[risk]`` and in ``[risk.instruments.<x>]``).
INSTRUMENT_KEYS = ("max_order_qty", "max_order_notional", "price_band_pct", "max_position")
#: The keys of the ``[risk]`` table itself.
RISK_KEYS = (
    *INSTRUMENT_KEYS,
    "max_gross_exposure",
    "max_open_orders",
    "max_order_rate",
    "max_cancel_rate",
    "max_daily_loss",
    "max_drawdown",
    "flatten_on_halt",
    "loss_check_s",
    "instruments",
)
# An instrument's key: its id, or its name.
_INSTRUMENT_KEY = re.compile(r"[A-Za-z0-9_.\-/]{1,64}")


@attrs.frozen
class InstrumentLimits:
    """The limits of one order and one instrument (None: off).

    Attributes:
        max_order_qty: the largest quantity of one order (new, or a modify's new size).
        max_order_notional: the largest ``qty x price x contract multiplier`` of one order (an
            inverse instrument's: ``qty x contract multiplier``), in the quote coin.
        price_band_pct: how far from the book's mid a limit price may be, in percent.
        max_position: the largest ``|position|`` an order may lead to, counting the open orders
            on its side as filled.
    """

    max_order_qty: Decimal | None = None
    max_order_notional: Decimal | None = None
    price_band_pct: Decimal | None = None
    max_position: Decimal | None = None

    def merged(self, over: InstrumentLimits) -> InstrumentLimits:
        """These limits with those ``over`` sets replacing them."""
        return InstrumentLimits(
            *(
                getattr(over, f.name)
                if getattr(over, f.name) is not None
                else getattr(self, f.name)
                for f in attrs.fields(InstrumentLimits)
            )
        )


@attrs.frozen
class RiskConfig:
    """A strategy's ``[risk]`` table (see the module docstring; None fields are off).

    Attributes:
        every: the per-instrument limits written in ``[risk]`` (every instrument).
        instruments: ``[risk.instruments.<key>]`` by key (an instrument's id as text, or name).
        max_gross_exposure: the largest sum of ``|position x mark|`` over the instruments plus
            the notional of every open order and of the order checked (quote coin).
        max_open_orders: how many orders may be open (sent and not ended) at once.
        max_order_rate: new orders and modifies per rolling second.
        max_cancel_rate: cancels (``send_cancel_order``) per rolling second; a cancel-all is
            never refused.
        max_daily_loss: the loss since the start of the UTC day (realised + unrealised at the
            mark - fees, from the strategy's fills) that halts the strategy.
        max_drawdown: the fall from the day's peak of the same equity that halts it.
        flatten_on_halt: a halt also closes every position with a market order.
        loss_check_s: the loss limits are checked after every fill and this often between.
    """

    every: InstrumentLimits = InstrumentLimits()
    instruments: Mapping[str, InstrumentLimits] = attrs.field(factory=dict)
    max_gross_exposure: Decimal | None = None
    max_open_orders: int | None = None
    max_order_rate: int | None = None
    max_cancel_rate: int | None = None
    max_daily_loss: Decimal | None = None
    max_drawdown: Decimal | None = None
    flatten_on_halt: bool = False
    loss_check_s: float = 1.0

    def for_instrument(self, inst: Instrument) -> InstrumentLimits:
        """The limits of ``inst``: ``[risk]``'s, with those of its own table (by id, else by
        name) over them."""
        own = self.instruments.get(str(inst.instrument_id)) or self.instruments.get(inst.name)
        return self.every if own is None else self.every.merged(own)

    def unmatched(self, instruments: Iterable[Instrument]) -> list[str]:
        """The keys of ``[risk.instruments]`` that name none of ``instruments``."""
        names = {k for i in instruments for k in (str(i.instrument_id), i.name)}
        return sorted(k for k in self.instruments if k not in names)

    def with_defaults(self, desk: RiskConfig) -> RiskConfig:
        """These limits over the desk's (``mlthon control --desk``): a limit this table leaves
        off takes the desk's; an instrument's table merges the desk's one of the same key under
        it; a halt flattens if either says so; the loss limits are checked at the shorter
        period."""
        instruments = dict(desk.instruments)
        for key, own in self.instruments.items():
            under = instruments.get(key)
            instruments[key] = own if under is None else under.merged(own)

        def pick(mine: _T | None, theirs: _T | None) -> _T | None:
            return mine if mine is not None else theirs

        return RiskConfig(
            every=desk.every.merged(self.every),
            instruments=instruments,
            max_gross_exposure=pick(self.max_gross_exposure, desk.max_gross_exposure),
            max_open_orders=pick(self.max_open_orders, desk.max_open_orders),
            max_order_rate=pick(self.max_order_rate, desk.max_order_rate),
            max_cancel_rate=pick(self.max_cancel_rate, desk.max_cancel_rate),
            max_daily_loss=pick(self.max_daily_loss, desk.max_daily_loss),
            max_drawdown=pick(self.max_drawdown, desk.max_drawdown),
            flatten_on_halt=self.flatten_on_halt or desk.flatten_on_halt,
            loss_check_s=min(self.loss_check_s, desk.loss_check_s),
        )

    @property
    def watches_loss(self) -> bool:
        """A daily-loss or drawdown limit is set (the equity is watched)."""
        return self.max_daily_loss is not None or self.max_drawdown is not None


def _instrument_limits(table: Table) -> InstrumentLimits:
    band = table.number("price_band_pct", None, low=0, low_open=True, high=1000)
    return InstrumentLimits(
        max_order_qty=table.decimal("max_order_qty", None, positive=True),
        max_order_notional=table.decimal("max_order_notional", None, positive=True),
        price_band_pct=None if band is None else Decimal(str(band)),
        max_position=table.decimal("max_position", None, signed=False),
    )


def parse_risk_table(table: Table) -> RiskConfig | None:
    """Read ``[risk]`` (``table``, opened by the caller). None when it sets nothing: the env then
    has no risk layer at all (it costs nothing).

    Raises:
        ConfigError: an unknown key (in ``[risk]`` or an instrument's table), a wrong type, a
            value out of bounds, an instrument key that is not an id or a name (the file, the
            dotted key and the value are named).
    """
    table.check_keys(RISK_KEYS)
    if not table.data:
        return None
    per = table.table("instruments")
    instruments: dict[str, InstrumentLimits] = {}
    for key in per.data:
        name = str(key)
        if _INSTRUMENT_KEY.fullmatch(name) is None:
            raise per.error(name, "must be an instrument's id or name")
        instruments[name] = _instrument_limits(per.table(name, keys=INSTRUMENT_KEYS))
    return RiskConfig(
        every=_instrument_limits(table),
        instruments=instruments,
        max_gross_exposure=table.decimal("max_gross_exposure", None, positive=True),
        max_open_orders=table.integer("max_open_orders", None, low=1, high=10**9),
        max_order_rate=table.integer("max_order_rate", None, low=1, high=10**9),
        max_cancel_rate=table.integer("max_cancel_rate", None, low=1, high=10**9),
        max_daily_loss=table.decimal("max_daily_loss", None, positive=True),
        max_drawdown=table.decimal("max_drawdown", None, positive=True),
        flatten_on_halt=table.flag("flatten_on_halt", False),
        loss_check_s=table.number("loss_check_s", 1.0, low=0.001, high=86400),
    )


def read_risk_table(table: Mapping[str, Any], source: str) -> RiskConfig | None:
    """A ``[risk]`` table given as data (a desk file's, or the copy the control service sends to
    a strategy); None when it sets nothing.

    Raises:
        ConfigError: as :func:`parse_risk_table` (``source`` names where it came from).
    """
    return parse_risk_table(Table.root({"risk": dict(table)}, source).table("risk"))


def load_desk_file(path: str | Path) -> dict[str, Any]:
    """The ``[risk]`` table of a desk file (``mlthon control --desk desk.toml``): the defaults
    of every strategy's limits, checked here (the file's other tables are refused).

    Raises:
        ConfigError: unreadable, not TOML, an unknown table or key, a bad value (named).
    """
    doc = Table.root(read_toml(path), str(path), keys=("risk",), what="tables")
    table = doc.table("risk")
    parse_risk_table(table)
    return dict(table.data)
