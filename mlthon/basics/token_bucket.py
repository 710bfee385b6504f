"""Token buckets: at most ``limit`` in any window of ``window_s``, anywhere in time.

The one copy of the concept, used by the env's risk layer (order and cancel rates,
:mod:`mlthon.infra.risk.guard`) and by the live gateways' local rate budgets
(:mod:`mlthon.gateways.live.budget`). Pure: time is given by the caller.

A bucket holds ``limit`` tokens and each spent token comes back one ``window`` after it was spent,
so no window of that length, anywhere in time, holds more than ``limit``: rolling windows and
fixed ones (a venue's minutes) are both respected. (A bucket refilled at the constant rate
``limit / window`` would let up to twice the budget through across a window edge.) Time is
given by the caller (int nanoseconds of the scheduler's clock): nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque

import attrs

NS = 1_000_000_000


@attrs.frozen
class Budget:
    """One rate limit (a venue's documented budget, or a risk limit).

    Attributes:
        name: what it is called in a refusal and in config (``orders-10s``, ``max_order_rate``).
        limit: how much may be spent per window (0: not enforced).
        window_s: the window.
        unit: what is counted (``orders``, ``weight``, ``requests``).
        scope: whose budget it is, for the reason of a refusal (``per account``...).
    """

    name: str
    limit: int
    window_s: float
    unit: str = "requests"
    scope: str = ""

    def text(self) -> str:
        """``300 orders per 10 s per account``."""
        window = f"{self.window_s:g} s" if self.window_s != 1 else "second"
        scope = f" {self.scope}" if self.scope else ""
        return f"{self.limit} {self.unit} per {window}{scope}"


class TokenBucket:
    """``limit`` tokens; a token spent at ``t`` is available again at ``t + window``.

    Args:
        budget: the budget it enforces.
    """

    __slots__ = ("_spent", "_used", "budget", "window_ns")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.window_ns = int(budget.window_s * NS)
        self._spent: deque[tuple[int, int]] = deque()  # (when, cost), oldest first
        self._used = 0

    def _expire(self, now: int) -> None:
        spent = self._spent
        horizon = now - self.window_ns
        while spent and spent[0][0] <= horizon:
            self._used -= spent.popleft()[1]

    def available(self, now: int) -> int:
        """Tokens left at ``now``."""
        self._expire(now)
        return max(self.budget.limit - self._used, 0)

    def wait_s(self, cost: int, now: int) -> float:
        """How long until ``cost`` tokens are available (0: now)."""
        self._expire(now)
        short = self._used + cost - self.budget.limit
        if short <= 0:
            return 0.0
        for when, c in self._spent:
            short -= c
            if short <= 0:
                return max(when + self.window_ns - now, 0) / NS
        return self.budget.window_s  # more than the whole budget: never, really

    def spend(self, cost: int, now: int) -> None:
        """Spend ``cost`` tokens at ``now`` (the caller checked :meth:`available`)."""
        if cost > 0:
            self._spent.append((now, cost))
            self._used += cost

    def observe(self, used: int, now: int) -> None:
        """The venue says ``used`` is spent in its current window: count what we did not spend
        ourselves (another process) as spent now."""
        self._expire(now)
        if used > self._used:
            self.spend(used - self._used, now)
