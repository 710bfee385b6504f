"""Latency models: how long an order takes to reach the exchange, an answer to come back, and
market data to travel from the exchange to us.

Each leg is a :class:`Delay`: fixed, or drawn from a seeded distribution. Order entry and response
legs can differ per command kind (``new``, ``modify``, ``cancel``, ``cancel_all``, ``fetch``); a
kind without its own delay uses the ``default`` one.

Timing convention of the simulated gateway (see ``docs/simulation.md``):

* a request sent at ``t`` reaches the matching engine at ``t_ex = t + entry``;
* it is matched against the book as the exchange saw it at ``t_ex``, i.e. the market data whose
  local receive time is at most ``t_ex + market_data``;
* its answer reaches the strategy at ``t_ex + response``.
"""

from __future__ import annotations

import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping

import attrs

COMMAND_KINDS = ("new", "modify", "cancel", "cancel_all", "fetch")
MAX_SIGMA = 5.0
"""The widest log-normal shape: exp(5 sigma) is already a 10^10 spread (and a larger one can
overflow a float on a rare draw)."""

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s)?\s*$")


def parse_duration_ns(value: object) -> int:
    """Read a duration: an int (ns) or a string such as ``"250us"``, ``"1.5ms"``, ``"2s"``.

    Raises:
        TypeError: the value is neither an int nor a string.
        ValueError: the value is negative or not a duration.
    """
    if isinstance(value, bool):
        raise TypeError(f"not a duration: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration must be >= 0, got {value}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"duration must be an int (ns) or a string like '1.5ms', got {value!r}")
    m = _DURATION_RE.match(value)
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. '250us', '1.5ms', '2s' or ns)")
    number, unit = m.group(1), m.group(2) or "ns"
    whole, _, frac = number.partition(".")
    scale = _UNITS[unit]
    ns = int(whole) * scale
    if frac:
        ns += int(frac) * scale // (10 ** len(frac))
    return ns


class Delay(ABC):
    """One latency leg."""

    @abstractmethod
    def sample(self, rng: random.Random) -> int:
        """A delay in ns (>= 0)."""

    @property
    def is_zero(self) -> bool:
        """True if every sample is 0."""
        return False


@attrs.frozen
class FixedDelay(Delay):
    """Always ``ns``."""

    ns: int = 0

    def sample(self, rng: random.Random) -> int:
        return self.ns

    @property
    def is_zero(self) -> bool:
        return self.ns == 0


@attrs.frozen
class UniformDelay(Delay):
    """Uniform on ``[low_ns, high_ns]``."""

    low_ns: int
    high_ns: int

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low_ns, self.high_ns)


@attrs.frozen
class LogNormalDelay(Delay):
    """``floor_ns`` plus a log-normal draw with median ``median_ns`` and shape ``sigma``.

    Network latencies have a long right tail; this reproduces it with two parameters.
    """

    median_ns: int
    sigma: float
    floor_ns: int = 0

    def sample(self, rng: random.Random) -> int:
        return self.floor_ns + int(self.median_ns * math.exp(rng.gauss(0.0, self.sigma)))


ZERO = FixedDelay(0)


@attrs.frozen
class LatencyConfig:
    """Every latency leg of the simulated gateway.

    Attributes:
        entry: order-entry delay per command kind (key ``default`` for the rest).
        response: exchange-to-strategy delay of answers per command kind (and of fills).
        market_data: exchange-to-us delay of market data (the feed's own delay).
        seed: seed of the random draws.
    """

    entry: Mapping[str, Delay] = attrs.field(factory=dict)
    response: Mapping[str, Delay] = attrs.field(factory=dict)
    market_data: Delay = ZERO
    seed: int = 0


class LatencyModel:
    """Draws delays from a :class:`LatencyConfig` with one seeded generator."""

    def __init__(self, config: LatencyConfig | None = None) -> None:
        self.config = config or LatencyConfig()
        self._rng = random.Random(self.config.seed)

    @staticmethod
    def _pick(table: Mapping[str, Delay], kind: str) -> Delay:
        found = table.get(kind)
        if found is None:
            found = table.get("default", ZERO)
        return found

    def entry_ns(self, kind: str) -> int:
        """Delay from the strategy to the matching engine for a command of ``kind``."""
        return self._pick(self.config.entry, kind).sample(self._rng)

    def response_ns(self, kind: str) -> int:
        """Delay from the matching engine back to the strategy for an answer to ``kind``."""
        return self._pick(self.config.response, kind).sample(self._rng)

    def market_data_ns(self) -> int:
        """Delay from the exchange to us of one market-data event."""
        return self.config.market_data.sample(self._rng)


def delay_from_config(value: object) -> Delay:
    """Build a :class:`Delay` from a TOML value.

    Accepted: a duration (``"1ms"`` or int ns) for a fixed delay;
    ``{dist = "uniform", low = "1ms", high = "3ms"}``;
    ``{dist = "lognormal", median = "2ms", sigma = 0.5, floor = "500us"}``;
    ``{dist = "fixed", value = "1ms"}``.

    Raises:
        ValueError: the value does not describe a delay.
    """
    if not isinstance(value, Mapping):
        return FixedDelay(parse_duration_ns(value))
    known = {"dist", "value", "low", "high", "median", "sigma", "floor"}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"unknown delay keys {sorted(unknown)}")
    dist = value.get("dist", "fixed")
    if dist == "fixed":
        return FixedDelay(parse_duration_ns(value.get("value", 0)))
    if dist == "uniform":
        low = parse_duration_ns(value.get("low", 0))
        high = parse_duration_ns(value.get("high", low))
        if high < low:
            raise ValueError(f"uniform delay needs low <= high, got {low} > {high}")
        return UniformDelay(low, high)
    if dist == "lognormal":
        sigma = value.get("sigma", 0.5)
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, int | float)
            or not 0 <= sigma <= MAX_SIGMA  # NaN fails both comparisons
        ):
            raise ValueError(
                f"lognormal sigma must be a number from 0 to {MAX_SIGMA}, got {sigma!r}"
            )
        return LogNormalDelay(
            parse_duration_ns(value.get("median", 0)),
            float(sigma),
            parse_duration_ns(value.get("floor", 0)),
        )
    raise ValueError(f"unknown delay dist {dist!r}; use fixed, uniform or lognormal")
