"""The portfolio view: what a strategy holds, read at once (an extension of the MLThon API,
``docs/portfolio.md``).

``env.portfolio`` (:attr:`~mlthon.api.istrat_env.IStratEnv.portfolio`) is kept by the env from
the strategy's own fills and the gateways' answers, in backtests, paper and live alike; reading
it sends nothing and waits for nothing. Figures are :class:`~decimal.Decimal` (a position is
signed: + long, - short).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal

import attrs

from mlthon.basics.mlt_enum import Exchange, Side


@attrs.frozen
class OpenOrder:
    """One open order of the strategy, as the env knows it.

    Attributes:
        cl_id: its client id.
        side: buy or sell (None: not known, an order adopted without it).
        price: its limit price after the last acknowledged modify (0: a market order).
        qty: its size.
        leaves: what is left to fill.
        adopted: placed by an earlier life of the strategy.
    """

    cl_id: str
    side: Side | None
    price: Decimal
    qty: Decimal
    leaves: Decimal
    adopted: bool = False


@attrs.frozen
class PositionView:
    """One instrument's position, read at once (:meth:`Portfolio.position`).

    Attributes:
        exchange: the venue.
        instrument_id: the instrument.
        name: its name.
        qty: the position (+ long, - short), from the strategy's fills (and the gateway's first
            answer, the opening position).
        avg_price: its average entry price (0 when flat or not known).
        realised_pnl: PnL realised since the env started, in the settlement coin.
        unrealised_pnl: the open position's PnL at ``mark`` (0 without a price).
        fees: fees paid since the env started (negative: rebates).
        mark: the mid of the env's book of the instrument, else the last fill's price (None:
            neither).
        settle_coin: the coin of the PnL and fees.
        open_orders: the strategy's open orders on the instrument.
        gateway_qty: the gateway's last answer (None: never asked).
        fills: fills counted since the env started.
    """

    exchange: Exchange
    instrument_id: int
    name: str
    qty: Decimal
    avg_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees: Decimal
    mark: Decimal | None
    settle_coin: str
    open_orders: tuple[OpenOrder, ...] = ()
    gateway_qty: Decimal | None = None
    fills: int = 0

    @property
    def total_pnl(self) -> Decimal:
        """Realised + unrealised - fees."""
        return self.realised_pnl + self.unrealised_pnl - self.fees


class PortfolioView(ABC):
    """What ``env.portfolio`` answers."""

    @abstractmethod
    def position(self, exchange: Exchange, instrument_id: int) -> PositionView | None:
        """The position of one instrument (flat if never traded; None: not an instrument of
        the strategy)."""

    @abstractmethod
    def positions(self) -> list[PositionView]:
        """Every instrument traded, with an open order or a gateway's answer."""

    @abstractmethod
    def open_orders(self, exchange: Exchange, instrument_id: int | None = None) -> list[OpenOrder]:
        """The strategy's open orders on ``exchange`` (one instrument's, if given)."""

    @abstractmethod
    def balance(self, exchange: Exchange, coin: str) -> Decimal | None:
        """The balance of ``coin``: the gateway's last ``WalletInfo`` answer, moved by the fills
        since (None: never answered; ``fetch_wallet_info`` asks)."""

    @abstractmethod
    def equity(self) -> Decimal:
        """Realised + unrealised - fees over every instrument since the env started (in the
        settlement coins, summed as they are)."""
