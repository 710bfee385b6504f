"""A strategy's open orders, positions and PnL for its heartbeat (``mlthon status``, the status
page): read from the env's portfolio (:mod:`mlthon.infra.portfolio`), the one account of the
strategy's fills, with contract multipliers and inverse contracts counted as in backtests.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlthon.api.portfolio import PortfolioView
from mlthon.infra.ops.figures import plain


def portfolio_wire(portfolio: PortfolioView) -> dict[str, Any]:
    """``{"open_orders": n, "positions": {"Ex:iid": {...}}, "pnl": total}``: decimals as exact
    text (no exponent, no trailing zeros); ``realized`` and ``unrealized`` (at the book's mid,
    else the last fill) in the settlement coin."""
    views = portfolio.positions()
    total = sum((v.total_pnl for v in views), Decimal(0))
    return {
        "open_orders": sum(len(v.open_orders) for v in views),
        "positions": {
            f"{v.exchange.name}:{v.instrument_id}": {
                "qty": plain(v.qty),
                "avg_price": plain(v.avg_price),
                "realized": plain(v.realised_pnl),
                "unrealized": plain(v.unrealised_pnl),
                "fees": plain(v.fees),
                "fills": v.fills,
            }
            for v in views
        },
        "pnl": plain(total),
    }
