"""The strategy API: :class:`IStrategy` (callbacks), :class:`Strategy` (no-op base) and
:class:`IStratEnv` (what a strategy can do)."""

from mlthon.api.istrat_env import BookView, IStratEnv, MDSub
from mlthon.api.istrategy import (
    BookAction,
    BookChange,
    IStrategy,
    ParamBounds,
    Strategy,
    param,
)
from mlthon.api.portfolio import OpenOrder, PortfolioView, PositionView

__all__ = [
    "BookAction",
    "BookChange",
    "BookView",
    "IStratEnv",
    "IStrategy",
    "MDSub",
    "OpenOrder",
    "ParamBounds",
    "PortfolioView",
    "PositionView",
    "Strategy",
    "param",
]
