"""A sweep's search space: what ``--grid`` says each parameter may take, checked against the
strategy's declared parameters before any backtest runs.

Each word is ``key=v1,v2,...`` (a list: those values) or ``key=low:high[:step]`` (a range of a
number parameter, both ends included). An int range moves by 1 without a step; a decimal range
by its last digit (``size=0.010:0.050`` by 0.001); a float range without a step is continuous
(random and optuna searches draw from it; a grid needs a step). Every value a search can give is
a word ``key=value`` that :func:`mlthon.infra.strategy_params.param_rules`'s ``assign`` accepts:
the ends of a range and every listed value are checked here, naming the key when refused.

One space serves every search (grid, random, optuna) and every engine (local, ray): a point of
the space is a ``{key: value text}`` dict, the same words ``--set`` takes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.infra.strategy_params import ParamRules, ParamSchema

#: The most values one dimension (or a whole grid) may have.
MAX_VALUES = 100_000

Point = dict[str, str]
"""A point of the space: parameter -> its value as text (a ``--set`` word's right side)."""


@attrs.frozen
class Dimension:
    """One parameter of the space.

    Attributes:
        key: the parameter.
        kind: its type (int, float, Decimal, str or bool).
        values: its values as text, in order (empty: a continuous float range).
        low: the low end of a range (None for a list).
        high: the high end of a range (None for a list).
        ordered: a numeric range (its values are ordered), not a list.
    """

    key: str
    kind: type
    values: tuple[str, ...]
    low: float | None = None
    high: float | None = None
    ordered: bool = False

    @property
    def continuous(self) -> bool:
        """A float range without a step: any value between its ends."""
        return not self.values

    def sample(self, rng: random.Random) -> str:
        """A value drawn uniformly."""
        if self.continuous:
            assert self.low is not None
            assert self.high is not None
            return repr(rng.uniform(self.low, self.high))
        return self.values[rng.randrange(len(self.values))]

    def suggest(self, trial: Any) -> str:
        """The value an optuna trial suggests (an index into an ordered range, so that the
        sampler sees the order; a category for a list)."""
        if self.continuous:
            return repr(trial.suggest_float(self.key, self.low, self.high))
        if self.ordered:
            index: int = trial.suggest_int(self.key, 0, len(self.values) - 1)
        return self.values[index]
        return str(trial.suggest_categorical(self.key, list(self.values)))


@attrs.frozen
class Space:
    """The dimensions of a sweep, in the order given."""

    dims: tuple[Dimension, ...]

    @property
    def keys(self) -> list[str]:
        """The parameters, in order."""
        return [d.key for d in self.dims]

    def size(self) -> int | None:
        """How many points (None: a dimension is continuous)."""
        if any(d.continuous for d in self.dims):
            return None
        return math.prod(len(d.values) for d in self.dims)

    def grid(self) -> Iterator[Point]:
        """Every point, the last dimension moving fastest.

        Raises:
            ConfigError: a continuous dimension (named): a grid needs a step.
        """
        for d in self.dims:
            if d.continuous:
                raise ConfigError(
                    f"--grid: a grid needs a step for a float range: {d.key}=low:high:step",
                    key=f"params.{d.key}",
                )
        for combo in itertools.product(*(d.values for d in self.dims)):
            yield dict(zip(self.keys, combo, strict=True))

    def sample(self, rng: random.Random) -> Point:
        """A point drawn uniformly, dimension by dimension."""
        return {d.key: d.sample(rng) for d in self.dims}

    def suggest(self, trial: Any) -> Point:
        """The point an optuna trial suggests."""
        return {d.key: d.suggest(trial) for d in self.dims}


def words(point: Mapping[str, str]) -> list[str]:
    """``key=value`` words of a point (as ``--set`` takes them)."""
    return [f"{k}={v}" for k, v in point.items()]


def permutation_id(point: Mapping[str, str]) -> str:
    """``spread_ticks=2-size=0.010``: a point's name in the table and its folder's."""
    return "-".join(words(point))


def folder_name(perm_id: str) -> str:
    """A permutation's folder name: its id with characters other than ``=-_.`` and letters and
    digits replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "=-_." else "_" for c in perm_id)


def parse_space(
    specs: Sequence[str], rules: ParamRules, current: Mapping[str, Any], source: str = ""
) -> Space:
    """The space of ``--grid`` words, every value checked against the strategy's parameters.

    Raises:
        ConfigError: a word that is neither a list nor a range, a key given twice, an unknown
            parameter, a value refused by the parameter's rules, a range of a text or bool
            parameter, ``low > high``, a step that is not positive, too many values: each names
            the key.
    """
    dims: list[Dimension] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(f"--grid takes key=v1,v2,... or key=low:high[:step]; got {spec!r}")
        if key in {d.key for d in dims}:
            raise ConfigError(f"--grid: {key} is given twice", key=f"params.{key}", source=source)
        dims.append(_dimension(key, text.strip(), rules, current, source))
    space = Space(tuple(dims))
    size = space.size()
    if size is not None and size > MAX_VALUES:
        raise ConfigError(f"--grid: {size:,} combinations; at most {MAX_VALUES:,}")
    return space


def assign(
    rules: ParamRules, point: Mapping[str, str], current: Mapping[str, Any], source: str = ""
) -> dict[str, Any]:
    """The parameters a point sets, as the strategy's rules read them (``--set``'s check).

    Raises:
        ConfigError: ``--grid: ...`` naming the key the rules refuse.
    """
    from mlthon.app.cli import config_reason

    try:
        return dict(rules.assign(words(point), current, source))
    except ConfigError as exc:
        raise ConfigError(f"--grid: {config_reason(exc)}", source=exc.source, key=exc.key) from None


def _check(key: str, value: str, rules: ParamRules, current: Mapping[str, Any], source: str) -> Any:
    """``value`` as the parameter's rules read it, or ConfigError ``--grid: ...`` naming it."""
    return assign(rules, {key: value}, current, source)[key]


def _kind(key: str, rules: ParamRules, current: Mapping[str, Any], sample: str) -> type:
    if isinstance(rules, ParamSchema):
        return rules.fields[key].kind
    if key in current:
        return type(current[key])
    try:
        int(sample)
    except ValueError:
        return float
    return int


def _dimension(
    key: str, text: str, rules: ParamRules, current: Mapping[str, Any], source: str
) -> Dimension:
    where = f"params.{key}"
    is_range = ":" in text and "," not in text
    first = text.split(":" if is_range else ",")[0].strip()
    if isinstance(rules, ParamSchema) and key not in rules.fields:
        _check(key, first, rules, current, source)  # unknown: the error lists the known ones
    kind = _kind(key, rules, current, first)
    if not is_range:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        for v in values:
            _check(key, v, rules, current, source)
        if len(set(values)) != len(values):
            raise ConfigError(
                f"--grid: {key} lists a value twice: {text}", key=where, source=source
            )
        return Dimension(key, kind, values)
    if kind not in (int, float, Decimal):
        raise ConfigError(
            f"--grid: {key} is a {kind.__name__} parameter: list its values "
            f"({key}=a,b,c), a range low:high is for numbers",
            key=where,
            source=source,
        )
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f"--grid: {key}={text}: a range is low:high or low:high:step", key=where, source=source
        )
    try:
        low, high = Decimal(parts[0]), Decimal(parts[1])
        step = Decimal(parts[2]) if len(parts) == 3 else None
    except InvalidOperation:
        raise ConfigError(
            f"--grid: {key}={text}: the ends and step must be numbers", key=where, source=source
        ) from None
    if not all(x.is_finite() for x in (low, high, *(() if step is None else (step,)))):
        raise ConfigError(
            f"--grid: {key}={text}: the ends and step must be finite", key=where, source=source
        )
    if low > high:
        raise ConfigError(
            f"--grid: {key}: low {parts[0]} > high {parts[1]}", key=where, source=source
        )
    if step is not None and step <= 0:
        raise ConfigError(
            f"--grid: {key}: the step {parts[2]} must be > 0", key=where, source=source
        )
    if kind is int and any(x != x.to_integral_value() for x in (low, high, step or Decimal(1))):
        raise ConfigError(
            f"--grid: {key} is an int parameter: {text} is not whole", key=where, source=source
        )
    _check(key, parts[0], rules, current, source)
    _check(key, parts[1], rules, current, source)
    if kind is float and step is None:
        return Dimension(key, kind, (), float(low), float(high), ordered=True)
    if step is None:
        step = Decimal(1) if kind is int else Decimal(1).scaleb(min(_exp(low), _exp(high)))
    count = int((high - low) / step) + 1
    if count > MAX_VALUES:
        raise ConfigError(
            f"--grid: {key}={text} has {count:,} values; at most {MAX_VALUES:,}",
            key=where,
            source=source,
        )
    exp = min(_exp(low), _exp(high), _exp(step))
    values = tuple(_text(low + i * step, kind, exp) for i in range(count))
    return Dimension(key, kind, values, float(low), float(high), ordered=True)


def _exp(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return exp if isinstance(exp, int) else 0


def _text(d: Decimal, kind: type, exp: int) -> str:
    if kind is int:
        return str(int(d))
    return str(d.quantize(Decimal(1).scaleb(exp))) if exp < 0 else str(d)
