"""Local rate budgets: a request the venue would refuse for its rate limits is refused here first.

Each venue documents budgets (Binance USD-M: request weight per minute per IP, orders per 10 s and
per minute per account; Bybit v5: requests per second per endpoint and account, and per 5 s per
IP). A venue's REST client holds one :class:`TokenBucket` per budget in a :class:`RateBudgets` and
takes a request's cost from every budget it counts against *before* sending it; when one budget is
short, the request is not sent and :class:`BudgetExhausted` names the budget. The gateway answers
it ``RateLimitExceeded`` with that reason, and other budgets (cancels, queries) keep working.

A bucket holds ``limit`` tokens and each spent token comes back one ``window`` after it was spent,
so no window of that length, anywhere in time, holds more than ``limit``: the venue's rolling
windows (Bybit) and fixed ones (Binance's minutes) are both respected. (A bucket refilled at the
constant rate ``limit / window`` would let up to twice the budget through across a window edge.)

The venue's own count wins when it is higher (:meth:`RateBudgets.observe`, from the answers'
headers): another process on the same IP or account spends the same budgets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

import attrs

from mlthon.basics.errors import ConfigError, RateLimited
from mlthon.basics.token_bucket import Budget, TokenBucket

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class BudgetExhausted(RateLimited):
    """A local budget is spent: the request was not sent.

    Attributes:
        budget: the budget (name, limit, window).
        retry_after_s: when enough of it comes back for this request.
        reason: the refusal's text, naming the budget.
    """

    def __init__(self, budget: Budget, retry_after_s: float) -> None:
        super().__init__(retry_after_s)
        self.budget = budget
        self.reason = (
            f"local rate budget {budget.name} ({budget.text()}) is spent: not sent to the "
            f"venue; retry in {retry_after_s:.2f} s"
        )

    def __str__(self) -> str:
        return self.reason


class RateBudgets:
    """Every local budget of one venue connection.

    Args:
        budgets: the budgets (those with ``limit`` 0 are not enforced).
        now_ns: the clock (the scheduler's).
        pinned: names whose limit the configuration set (the venue's word does not change it).
    """

    def __init__(
        self,
        budgets: Iterable[Budget],
        now_ns: Callable[[], int],
        pinned: Iterable[str] = (),
    ) -> None:
        self._now_ns = now_ns
        self.buckets: dict[str, TokenBucket] = {b.name: TokenBucket(b) for b in budgets}
        self._pinned = frozenset(pinned)
        self.refused = 0  # requests refused locally

    @classmethod
    def from_config(
        cls,
        defaults: Iterable[Budget],
        overrides: Mapping[str, int],
        now_ns: Callable[[], int],
        source: str = "",
    ) -> RateBudgets:
        """The venue's documented ``defaults`` with the limits of ``[gateway.rate_limits]``.

        Raises:
            ConfigError: a name the venue has no budget of, or a limit that is not an int >= 0
                (file, key and value named).
        """
        known = {b.name: b for b in defaults}
        for name, limit in overrides.items():
            key = f"gateway.rate_limits.{name}"
            if name not in known:
                raise ConfigError(
                    f"{name!r} is not a rate budget of this venue; known: {sorted(known)}",
                    source=source or None,
                    key=key,
                )
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ConfigError(
                    f"must be an integer >= 0 (0 = not enforced), got {limit!r}",
                    source=source or None,
                    key=key,
                )
        budgets = [
            attrs.evolve(b, limit=overrides[b.name]) if b.name in overrides else b
            for b in known.values()
        ]
        return cls(budgets, now_ns, pinned=overrides)

    def budget(self, name: str) -> Budget:
        """The budget called ``name`` (KeyError if none)."""
        return self.buckets[name].budget

    def take(self, costs: Mapping[str, int]) -> None:
        """Spend ``costs`` (budget name -> cost) at once, or nothing.

        Raises:
            BudgetExhausted: a budget is short (the first one, with the longest wait).
        """
        now = self._now_ns()
        worst: tuple[float, Budget] | None = None
        for name, cost in costs.items():
            bucket = self.buckets.get(name)
            if bucket is None or not bucket.budget.limit or cost <= 0:
                continue
            wait = bucket.wait_s(cost, now)
            if wait > 0 and (worst is None or wait > worst[0]):
                worst = (wait, bucket.budget)
        if worst is not None:
            self.refused += 1
            raise BudgetExhausted(worst[1], worst[0])
        for name, cost in costs.items():
            bucket = self.buckets.get(name)
            if bucket is not None and bucket.budget.limit:
                bucket.spend(cost, now)

    def observe(self, name: str, used: int, limit: int | None = None) -> None:
        """The venue reported ``used`` of budget ``name`` (and its ``limit``, which is taken
        unless the configuration set it)."""
        bucket = self.buckets.get(name)
        if bucket is None:
            return
        if limit is not None and limit > 0 and name not in self._pinned:
            self.set_limit(name, limit)
        if bucket.budget.limit:
            bucket.observe(used, self._now_ns())

    def set_limit(self, name: str, limit: int) -> None:
        """The venue's own figure for a budget (``exchangeInfo``, a header), unless pinned."""
        bucket = self.buckets.get(name)
        if bucket is None or name in self._pinned or limit <= 0:
            return
        if bucket.budget.limit != limit:
            bucket.budget = attrs.evolve(bucket.budget, limit=limit)


def check_budget_names(names: Iterable[str]) -> list[str]:
    """The names that are not budget names (``[a-z0-9-]``, at most 40 characters)."""
    return [n for n in names if not isinstance(n, str) or _NAME.fullmatch(n) is None]
