"""Reading a config file's tables against their schema: one helper for every config file.

A loader opens each table of its file with the keys that table may hold, and reads each key with
the type, default and bounds it must have::

    doc = Table.root(data, "s.toml", keys=("strategy", "params", "bus"))
    strat = doc.table("strategy", keys=("name", "stop_ack_timeout_s"), required=True)
    name = strat.text("name", pattern=NAME)                         # required: no default
    timeout = strat.number("stop_ack_timeout_s", 10.0, low=0, low_open=True, high=1e9)
    bus = doc.table("bus", keys=("host", "port"))
    port = bus.integer("port", 1883, low=1, high=65535)

Whatever is wrong raises :class:`~mlthon.basics.errors.ConfigError` naming the file
(``source``), the key as a dotted path (``key``: ``strategy.stop_ack_timeout_s``) and the value
received:

* a key the table does not declare ("unknown key 'treshold'; known: [...]"), a table that is not
  a table;
* a value of the wrong type (``true`` for a number, a number for a text, ...);
* a number that is not finite (``nan``, ``inf``) or out of its bounds;
* a decimal (prices, quantities, balances written as text) that breaks the one rule of
  :mod:`mlthon.basics.sanity` (:func:`~mlthon.basics.sanity.decimal_problem`);
* a text that is empty (unless allowed), holds a NUL, or does not match its pattern or choices;
* a list that is empty (unless allowed) or holds a bad element (its index is named).

Why a reader and not msgspec Structs: a Struct gives the types and the unknown-key check, but not
bounds on decimals nor the value in its error (whose text would have to be parsed to name the key);
attrs validators see one field at a time. The reader keeps each key's type, default and bounds in
one line of the loader, refuses NaN and infinities in one place, and says what was received.
"""

from __future__ import annotations

import argparse
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.basics.sanity import decimal_problem

#: A text shown in an error is cut to this many characters.
SHOW_CHARS = 60


def show(value: object) -> str:
    """``repr(value)``, cut to :data:`SHOW_CHARS` characters for an error message."""
    text = repr(value)
    return text if len(text) <= SHOW_CHARS else text[: SHOW_CHARS - 3] + "..."


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A config file's tables as parsed, before :meth:`Table.root` checks them.

    Raises:
        ConfigError: unreadable (``cannot read: ...``) or not TOML (``not valid TOML: ...``),
            naming the file.
    """
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(p)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(p)) from exc


@attrs.frozen
class Table:
    """One table of a config file and where it is (the file, its dotted path).

    Build the top one with :meth:`root`; open sub-tables with :meth:`table`.

    Attributes:
        data: the table's content as parsed.
        source: the file (named in every error).
        path: the table's dotted path (``""`` for the document itself).
    """

    data: Mapping[str, Any]
    source: str
    path: str = ""

    @classmethod
    def root(
        cls, data: object, source: str, *, keys: Iterable[str] | None = None, what: str = "keys"
    ) -> Table:
        """The document itself, with the top-level ``keys`` it may hold (None: any).

        Raises:
            ConfigError: not a table, or a key it does not declare.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"must be a table, got {show(data)}", source=source)
        table = cls(data, source)
        if keys is not None:
            table.check_keys(keys, what)
        return table

    # --- where -----------------------------------------------------------------------------------

    def key(self, name: str) -> str:
        """The dotted path of ``name`` in this table."""
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str | None, why: str) -> ConfigError:
        """A ConfigError naming the file and ``name`` (this table itself when None)."""
        return ConfigError(
            why, source=self.source, key=self.key(name) if name is not None else self.path or None
        )

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def check_keys(self, keys: Iterable[str], what: str = "keys") -> None:
        """Refuse any key not in ``keys``: the error names the (first) unknown key as its
        ``key`` and lists the known ones.

        Raises:
            ConfigError: an unknown key.
        """
        known = set(keys)
        unknown = sorted(str(k) for k in self.data if k not in known)
        if unknown:
            one = what
            if len(unknown) == 1:
                one = what.replace("keys", "key", 1).replace("sections", "section", 1)
            names = repr(unknown[0]) if len(unknown) == 1 else str(unknown)
            raise self.error(unknown[0], f"unknown {one} {names}; known: {sorted(known)}")

    def table(
        self, name: str, *, keys: Iterable[str] | None = None, required: bool = False
    ) -> Table:
        """The sub-table ``name`` (empty when absent), holding only ``keys`` (None: any).

        Raises:
            ConfigError: missing while ``required``, not a table, or an unknown key.
        """
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(name, "missing table")
            value = {}
        if not isinstance(value, Mapping):
            raise self.error(name, f"must be a table, got {show(value)}")
        sub = Table(value, self.source, self.key(name))
        if keys is not None:
            sub.check_keys(keys)
        return sub

    # --- values ----------------------------------------------------------------------------------

    def _absent(self, name: str, default: Any) -> bool:
        """True if ``name`` is not in the table (then its default applies)."""
        if name in self.data:
            return False
        if default is _REQUIRED:
            raise self.error(name, "missing")
        return True

    def number(
        self,
        name: str,
        default: Any = None,
        *,
        low: float = 0.0,
        high: float = 1e9,
        low_open: bool = False,
    ) -> Any:
        """A finite number (an int or a float) from ``low`` (excluded if ``low_open``) to
        ``high``; ``default`` when absent (:data:`REQUIRED`: it must be there).

        Raises:
            ConfigError: not a number (``true`` is not one), not finite, or out of bounds.
        """
        if self._absent(name, default):
            return default
        value = self.data[name]
        if not _is_number(value):
            raise self.error(name, f"must be a number, got {show(value)}")
        if not math.isfinite(value):
            raise self.error(name, f"must be a finite number, got {show(value)}")
        if value < low or (low_open and value == low) or value > high:
            lower = f"> {low:g}" if low_open else f">= {low:g}"
            raise self.error(name, f"must be {lower} and <= {high:g}, got {show(value)}")
        return float(value)

    def integer(
        self,
        name: str,
        default: Any = None,
        *,
        low: int = 0,
        high: int = 2**63 - 1,
    ) -> Any:
        """An integer from ``low`` to ``high``; ``default`` when absent.

        Raises:
            ConfigError: not an integer (``1.5`` and ``true`` are not), or out of bounds.
        """
        if self._absent(name, default):
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be an integer, got {show(value)}")
        if not low <= value <= high:
            raise self.error(name, f"must be an integer >= {low} and <= {high}, got {value!r}")
        return value

    def flag(self, name: str, default: Any = None) -> Any:
        """``true`` or ``false``; ``default`` when absent.

        Raises:
            ConfigError: anything else.
        """
        if self._absent(name, default):
            return default
        value = self.data[name]
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {show(value)}")
        return value

    def text(
        self,
        name: str,
        default: Any = None,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: Sequence[str] | None = None,
        empty: bool = False,
        most: int = 4096,
    ) -> Any:
        """A text (at most ``most`` characters, no NUL), matching ``pattern`` or one of
        ``choices`` if given; ``default`` when absent.

        Raises:
            ConfigError: not a text, empty (unless ``empty``), too long, or not allowed.
        """
        if self._absent(name, default):
            return default
        value = self.data[name]
        return self.check_text(
            name, value, pattern=pattern, choices=choices, empty=empty, most=most
        )

    def check_text(
        self,
        name: str,
        value: object,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: Sequence[str] | None = None,
        empty: bool = False,
        most: int = 4096,
    ) -> str:
        """``value`` if it is a text as :meth:`text` wants it.

        Raises:
            ConfigError: as :meth:`text`.
        """
        if not isinstance(value, str):
            raise self.error(name, f"must be a text, got {show(value)}")
        if not value and not empty:
            raise self.error(name, "must not be empty")
        if "\0" in value or len(value) > most:
            raise self.error(
                name, f"must be a text of at most {most} characters, got {show(value)}"
            )
        if choices is not None and value not in choices:
            raise self.error(name, f"must be one of {list(choices)}, got {show(value)}")
        if pattern is not None and value and pattern.fullmatch(value) is None:
            raise self.error(name, f"{show(value)} must match {pattern.pattern}")
        return value

    def decimal(
        self,
        name: str,
        default: Any = None,
        *,
        positive: bool = False,
        signed: bool = False,
    ) -> Any:
        """A decimal written as text (``"0.010"``) or an integer, under the one rule of
        :mod:`mlthon.basics.sanity` (finite, in range; ``>= 0`` unless ``signed``, ``> 0`` if
        ``positive``); ``default`` when absent.

        Raises:
            ConfigError: a float (write it as text: floats are not exact), or a value the rule
                refuses.
        """
        if self._absent(name, default):
            return None if default is None else Decimal(str(default))
        value = self.data[name]
        return self.check_decimal(name, value, positive=positive, signed=signed)

    def check_decimal(
        self, name: str, value: object, *, positive: bool = False, signed: bool = False
    ) -> Decimal:
        """``value`` as a Decimal if :meth:`decimal` accepts it.

        Raises:
            ConfigError: as :meth:`decimal`.
        """
        if isinstance(value, float):
            raise self.error(
                name, f'must be a decimal written as text such as "0.01", got the float {value!r}'
            )
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(
                name, f'must be a decimal written as text such as "0.01", got {show(value)}'
            )
        why = decimal_problem(value, positive=positive, signed=signed)
        if why is not None:
            raise self.error(name, why)
        return Decimal(value)

    def int_list(
        self,
        name: str,
        default: Any = None,
        *,
        low: int = 1,
        high: int = 2**63 - 1,
        empty: bool = False,
        most: int = 100_000,
    ) -> Any:
        """A list of integers from ``low`` to ``high``; ``default`` when absent.

        Raises:
            ConfigError: not a list, empty (unless ``empty``), too long, or a bad element
                (its index is named: ``instruments.use[2]``).
        """
        if self._absent(name, default):
            return default
        value = self.data[name]
        items = self._list(name, value, empty, most)
        out = []
        for i, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
                raise self.error(
                    f"{name}[{i}]", f"must be an integer >= {low} and <= {high}, got {show(item)}"
                )
            out.append(item)
        return out

    def text_list(
        self,
        name: str,
        default: Any = None,
        *,
        empty: bool = True,
        most: int = 100_000,
    ) -> Any:
        """A list of non-empty texts; ``default`` when absent.

        Raises:
            ConfigError: not a list, empty (unless ``empty``), or an element that is not a
                non-empty text (its index is named).
        """
        if self._absent(name, default):
            return default
        value = self.data[name]
        items = self._list(name, value, empty, most)
        return [self.check_text(f"{name}[{i}]", item) for i, item in enumerate(items)]

    def _list(self, name: str, value: object, empty: bool, most: int) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(name, f"must be a list, got {show(value)}")
        if not value and not empty:
            raise self.error(name, "must not be empty")
        if len(value) > most:
            raise self.error(name, f"must hold at most {most} items, got {len(value)}")
        return value

    def path_of(self, name: str, base_dir: Path | None, default: str | None = None) -> Any:
        """A file path (a non-empty text), made absolute against ``base_dir`` (the config
        file's folder) when relative; ``default`` when absent.

        Raises:
            ConfigError: as :meth:`text`.
        """
        if self._absent(name, default):
            return default
        path = Path(self.text(name))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return str(path)


def cli_number(
    low: float = 0.0, high: float = 1e9, *, low_open: bool = True
) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number from ``low`` (excluded if ``low_open``) to ``high``;
    ``nan``, ``inf`` and values out of bounds are refused with the value named."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            lower = f"> {low:g}" if low_open else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {lower} and <= {high:g}")
        return value

    return parse


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


_REQUIRED: Any = _Required()
#: The ``default`` of a key that must be there.
REQUIRED: Any = _REQUIRED
