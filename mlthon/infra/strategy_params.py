"""A strategy's parameters, checked against its schema (``Params``) or, without one, free-form.

:func:`param_rules` gives the rules of a strategy class: a :class:`ParamSchema` when the class
declares ``Params`` (the mlthon extension of the API, :mod:`mlthon.api.istrategy`), else
:class:`FreeParams`. Both offer the same two checks, used by every door parameters come through:

* :meth:`~ParamSchema.check` -- a whole ``[params]`` table (the strategy file; ``mlthon
  strategy``, ``mlthon backtest``, ``mlthon run``, the control service at start);
* :meth:`~ParamSchema.assign` -- ``key=value`` words (``--set``, each ``--grid`` combination, the
  ``params`` command of ``mlthon params`` and Telegram) against the current values.

With a schema, an unknown name is an error naming it and listing the known ones
(``unknown parameter 'treshold'; known: spread_ticks (int, 1..1000, default 4), ...``); a value
of the wrong type, not finite, not a sane decimal (:mod:`mlthon.basics.sanity`), out of bounds or
refused by the class's own validators is an error naming the parameter; the result holds every
parameter (defaults filled in), decimals as their text (the wire form). Free-form parameters keep
today's rule: a value keeps the type it has (an int may become a float), and no number may be
NaN or infinite.

Errors are :class:`~mlthon.basics.errors.ConfigError` with ``key = "params.<name>"``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from mlthon.api.istrategy import PARAM_META, ParamBounds
from mlthon.basics.errors import ConfigError
from mlthon.infra.config import check_free_values, parse_param_assignments
from mlthon.infra.config_schema import Table, show

#: The types a ``Params`` field may have.
SUPPORTED_TYPES: tuple[type, ...] = (bool, int, float, str, Decimal)
_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", Decimal: "Decimal"}


@attrs.frozen
class ParamField:
    """One declared parameter.

    Attributes:
        name: its name.
        kind: its type (one of :data:`SUPPORTED_TYPES`).
        default: its default (``attrs.NOTHING``: it must be given).
        bounds: its bounds, choices and help (:func:`mlthon.api.istrategy.param`).
    """

    name: str
    kind: type
    default: Any
    bounds: ParamBounds

    @property
    def required(self) -> bool:
        """True if it has no default."""
        return self.default is attrs.NOTHING

    def describe(self) -> str:
        """``spread_ticks (int, 1..1000, default 4)``."""
        parts = [_TYPE_NAMES[self.kind]]
        b = self.bounds
        if b.choices is not None:
            parts.append("|".join(b.choices))
        elif b.low is not None or b.high is not None:
            parts.append(f"{'' if b.low is None else b.low}..{'' if b.high is None else b.high}")
        parts.append("required" if self.required else f"default {_wire(self.default)!r}")
        return f"{self.name} ({', '.join(parts)})"


def _wire(value: Any) -> Any:
    """A parameter's value as the strategy and the bus see it (decimals as text)."""
    return str(value) if isinstance(value, Decimal) else value


@attrs.frozen
class ParamSchema:
    """The parameters a strategy declares (its ``Params`` class).

    Attributes:
        cls: the ``Params`` class.
        fields: name -> declared parameter, in declaration order.
    """

    cls: type
    fields: dict[str, ParamField]

    @classmethod
    def of(cls, params_cls: type, owner: str = "") -> ParamSchema:
        """Read the schema of a ``Params`` class.

        Raises:
            ConfigError: not an attrs class, a field of a type that is not supported, or a
                default out of its own bounds (a mistake of the strategy's author).
        """
        where = f"{owner}.Params" if owner else "Params"
        if not attrs.has(params_cls):
            raise ConfigError(f"{where} must be an @attrs.frozen class, got {params_cls!r}")
        try:
            attrs.resolve_types(params_cls)
        except NameError as exc:
            raise ConfigError(f"{where}: cannot resolve a field's type: {exc}") from None
        fields: dict[str, ParamField] = {}
        for f in attrs.fields(params_cls):
            if f.type not in SUPPORTED_TYPES:
                raise ConfigError(
                    f"{where}.{f.name}: type {f.type!r} is not one of "
                    f"{[_TYPE_NAMES[t] for t in SUPPORTED_TYPES]}"
                )
            bounds = f.metadata.get(PARAM_META) or ParamBounds()
            field = ParamField(f.name, f.type, f.default, bounds)
            if not field.required:
                why = bounds.problem(f.default)
                if why is not None:
                    raise ConfigError(f"{where}.{f.name}: its default {why}")
            fields[f.name] = field
        return cls(params_cls, fields)

    def known(self) -> str:
        """Every parameter, described (for error messages and listings)."""
        return ", ".join(f.describe() for f in self.fields.values())

    def _field(self, name: str, source: str) -> ParamField:
        field = self.fields.get(name)
        if field is None:
            raise ConfigError(
                f"unknown parameter {name!r}; known: {self.known()}",
                source=source,
                key=f"params.{name}",
            )
        return field

    def value(self, field: ParamField, raw: object, source: str) -> Any:
        """``raw`` as a value of ``field`` (typed), or ConfigError naming it."""
        t = Table({field.name: raw}, source, "params")
        name = field.name
        value: Any
        if field.kind is bool:
            value = t.flag(name)
        elif field.kind is int:
            value = t.integer(name, low=-(2**63), high=2**63 - 1)
        elif field.kind is float:
            value = t.number(name, low=-math.inf, high=math.inf)
        elif field.kind is Decimal:
            value = t.check_decimal(name, raw, signed=True)
        else:
            value = t.text(name, empty=True)
        why = field.bounds.problem(value)
        if why is not None:
            raise t.error(name, why)
        return value

    def check(self, values: Mapping[str, Any], source: str = "") -> dict[str, Any]:
        """Every parameter, from ``values`` or its default, checked (the wire form).

        Raises:
            ConfigError: an unknown or missing parameter, a bad value (the key is named), or the
                ``Params`` class refused the whole (its own validators).
        """
        typed: dict[str, Any] = {}
        for name, raw in values.items():
            typed[name] = self.value(self._field(str(name), source), raw, source)
        for name, field in self.fields.items():
            if name not in typed:
                if field.required:
                    raise ConfigError(
                        f"missing; it has no default ({field.describe()})",
                        source=source,
                        key=f"params.{name}",
                    )
                typed[name] = field.default
        try:
            self.cls(**typed)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"refused by {self.cls.__name__}: {exc}", source=source) from None
        return {name: _wire(typed[name]) for name in self.fields}

    def assign(
        self, words: Sequence[str], current: Mapping[str, Any], source: str = ""
    ) -> dict[str, Any]:
        """The parameters ``key=value`` words change, checked with ``current`` as the rest.

        A ``str`` or ``Decimal`` parameter takes the text as given (``size=0.010`` stays
        ``"0.010"``); the others read it as a TOML value (``3``, ``0.5``, ``true``).

        Raises:
            ConfigError: a word that is not key=value, an unknown parameter, a bad value.
        """
        out: dict[str, Any] = {}
        for word in words:
            key, text = _split(word, source)
            field = self._field(key, source)
            raw: Any = _unquote(text) if field.kind in (str, Decimal) else _toml_value(text)
            out[key] = _wire(self.value(field, raw, source))
        self.check({**current, **out}, source)
        return out


@attrs.frozen
class FreeParams:
    """The rules of a strategy without a schema: any key, each value keeping its type."""

    def check(self, values: Mapping[str, Any], source: str = "") -> dict[str, Any]:
        """``values`` as given, if every key is a name and every number finite.

        Raises:
            ConfigError: a bad key or a number that is not finite (named).
        """
        check_free_values(Table(values, source, "params"))
        return dict(values)

    def assign(
        self, words: Sequence[str], current: Mapping[str, Any], source: str = ""
    ) -> dict[str, Any]:
        """The parameters ``key=value`` words change; a value keeps the type of the current one
        (:func:`~mlthon.infra.config.parse_param_assignments`).

        Raises:
            ConfigError: a word that is not key=value, a value of another type than the current
                one, or a number that is not finite.
        """
        try:
            out = parse_param_assignments(list(words), dict(current))
        except ValueError as exc:
            raise ConfigError(str(exc), source=source, key="params") from None
        check_free_values(Table(out, source, "params"))
        return out


ParamRules = ParamSchema | FreeParams


def param_rules(strategy_cls: type | None) -> ParamRules:
    """The rules of ``strategy_cls``'s parameters: its schema if it declares ``Params``.

    Raises:
        ConfigError: ``Params`` is there but not a valid schema.
    """
    params_cls = getattr(strategy_cls, "Params", None) if strategy_cls is not None else None
    if params_cls is None:
        return FreeParams()
    if not isinstance(params_cls, type):
        raise ConfigError(f"{strategy_cls!r}.Params must be a class, got {params_cls!r}")
    return ParamSchema.of(params_cls, getattr(strategy_cls, "__name__", ""))


def _split(word: str, source: str) -> tuple[str, str]:
    key, sep, text = word.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{show(word)} is not key=value", source=source, key="params")
    return key, text


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
