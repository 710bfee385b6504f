"""Reconnect back-off: capped, exponential, jittered, reset."""

from __future__ import annotations

import random

from mlthon.venues.backoff import Backoff


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(base_s=0.5, cap_s=4.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    bounds = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(bd / 2 <= d <= bd for d, bd in zip(delays, bounds, strict=True))
    assert len(set(delays)) == len(delays)
    b.reset()
    assert b.next_delay() <= 0.5
