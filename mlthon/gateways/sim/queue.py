"""Queue-position models: where a resting order stands in the queue at its price.

The replayed market shows, at each price, the total displayed quantity but (on price-level data)
not the orders that make it up. A simulated order joins at the back: everything displayed at its
price when it arrives is *ahead* of it. From then on:

* a trade printing at its price consumes the front of the queue, so it takes quantity ahead of
  the order first, then the order itself (handled by the matching engine, exactly);
* a level that shrinks by more than the trades at it lost quantity to cancellations. Whether a
  cancelled lot was ahead of or behind the order is unknown: that is the model's choice,
  :meth:`QueueModel.cancels_ahead`.

Models:

* :class:`ConservativeQueue`: cancels come from behind the order; the quantity ahead only shrinks by
  trades, or when the level becomes smaller than it.
* :class:`ProbabilisticQueue`: cancels are shared between the front and the back of the queue
  in proportion to ``f(ahead) / (f(ahead) + f(behind))``; ``f(x) = x**n`` (:func:`power_queue`,
  ``n = 1`` spreads cancels evenly over the queue) or ``f(x) = log(1 + x)`` (:func:`log_queue`).
  Fractions of a lot are rounded stochastically with a seeded generator, so the expected position
  is unbiased and runs are reproducible.

With order-level (L3) data the engine knows the exact FIFO and no model is needed.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable


class QueueModel(ABC):
    """Decides how much of a level's cancelled quantity was ahead of a resting order."""

    name: str = "?"

    @abstractmethod
    def cancels_ahead(self, ahead: int, behind: int, cancelled: int) -> int:
        """The part of ``cancelled`` lots that was ahead of the order.

        Args:
            ahead: lots displayed ahead of the order before the cancellations.
            behind: lots displayed behind it.
            cancelled: lots that left the level other than by trading (> 0).

        Returns:
            A number in ``[max(0, cancelled - behind), min(ahead, cancelled)]``.
        """


class ConservativeQueue(QueueModel):
    """Cancels come from behind us: our position improves only through trades."""

    name = "conservative"

    def cancels_ahead(self, ahead: int, behind: int, cancelled: int) -> int:
        return min(ahead, max(0, cancelled - behind))


class ProbabilisticQueue(QueueModel):
    """Cancels are spread over the queue with weight ``f`` on each side of the order.

    Args:
        weight: ``f`` in ``f(ahead) / (f(ahead) + f(behind))``; must be increasing, ``f(0) = 0``.
        seed: seed of the stochastic rounding of fractional lots.
        name: a label for reports.
    """

    def __init__(self, weight: Callable[[float], float], seed: int = 0, name: str = "prob") -> None:
        self._f = weight
        self._rng = random.Random(seed)
        self.name = name

    def cancels_ahead(self, ahead: int, behind: int, cancelled: int) -> int:
        low = min(ahead, max(0, cancelled - behind))
        high = min(ahead, cancelled)
        if low >= high:
            return low
        fa = self._f(float(ahead))
        fb = self._f(float(behind))
        total = fa + fb
        share = fa / total if total > 0 else 0.0
        expected = cancelled * share
        whole = int(expected)
        if self._rng.random() < expected - whole:
            whole += 1
        return max(low, min(high, whole))


def power_queue(n: float = 2.0, seed: int = 0) -> ProbabilisticQueue:
    """Probabilistic model with ``f(x) = x**n`` (``n = 1``: cancels uniform over the queue)."""
    if n <= 0:
        raise ValueError(f"power queue exponent must be > 0, got {n}")
    return ProbabilisticQueue(lambda x: x**n, seed, name=f"power{n:g}")


def log_queue(seed: int = 0) -> ProbabilisticQueue:
    """Probabilistic model with ``f(x) = log(1 + x)``."""
    return ProbabilisticQueue(math.log1p, seed, name="log")


def queue_model_from_name(name: str, *, power: float = 2.0, seed: int = 0) -> QueueModel:
    """Build a model from its config name: ``conservative``, ``power``, ``uniform`` or ``log``.

    Raises:
        ValueError: unknown name.
    """
    key = name.strip().lower()
    if key == "conservative":
        return ConservativeQueue()
    if key == "power":
        return power_queue(power, seed)
    if key == "uniform":
        return power_queue(1.0, seed)
    if key == "log":
        return log_queue(seed)
    raise ValueError(f"unknown queue model {name!r}; use conservative, power, uniform or log")
