"""Capped exponential back-off with full jitter, reset after each successful connect."""

from __future__ import annotations

import random


class Backoff:
    """Delays for successive reconnect attempts.

    Args:
        base_s: the first delay's upper bound.
        cap_s: the largest delay.
        rng: the random source of the jitter (seed it in tests).
    """

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None):
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt: uniform in [bound/2, bound], the bound doubling
        per attempt up to the cap."""
        bound = min(self.cap_s, self.base_s * float(1 << min(self.attempt, 30)))
        self.attempt += 1
        jitter: float = self._rng.random()
        return bound / 2 + jitter * bound / 2

    def reset(self) -> None:
        """Start again from the base delay (after a successful connect)."""
        self.attempt = 0
