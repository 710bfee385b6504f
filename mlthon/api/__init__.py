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

__all__ = [
    "BookAction",
    "BookChange",
    "BookView",
    "IStratEnv",
    "IStrategy",
    "MDSub",
    "ParamBounds",
    "Strategy",
    "param",
]
