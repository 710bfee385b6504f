"""The trading state as an operator types it (``mlthon cmd s risk halted``, ``/risk s halted``):
one reading for the env, the control service and the Telegram bridge."""

from __future__ import annotations

from mlthon.basics.mlt_enum import TradingState

#: The words an operator may type, lower case.
STATE_WORDS = tuple(s.name.lower() for s in TradingState)


def parse_state(word: str) -> TradingState:
    """``halted``, ``Halted``, ``reduce-only``, ``reduce_only``, ``reduceonly``...

    Raises:
        ValueError: not a state (the message lists them).
    """
    key = word.strip().lower().replace("_", "").replace("-", "")
    for state in TradingState:
        if state.name.lower() == key:
            return state
    raise ValueError(f"{word[:40]!r} is not a trading state; one of {', '.join(STATE_WORDS)}")


def stricter(a: TradingState, b: TradingState) -> TradingState:
    """The state that lets less through: a strategy's own state against the desk's."""
    return b if b.value > a.value else a
