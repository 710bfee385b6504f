"""The instruments file: every instrument the system knows, with its real grid and fees.

Format (TOML)::

    [[instrument]]
    instrument_id = 1001          # unique across exchanges
    name = "BTCUSDT"              # the venue's symbol
    exchange = "BinanceUsdm"      # an Exchange member name
    base = "BTC"
    quote = "USDT"
    kind = "Linear"               # Spot | Linear | Inverse
    tick_size = "0.10"            # decimals as strings
    lot_size = "0.001"
    min_qty = "0.001"             # optional, default 0
    min_notional = "100"          # optional, default 0
    contract_multiplier = "1"     # optional, default 1
    maker_fee = "0.0002"          # optional, default 0; negative = rebate
    taker_fee = "0.0005"          # optional, default 0

The default file shipped with mlthon (``mlthon/data/instruments.toml``) holds the instruments of the
recorded data, with their exchanges' real values.

Every table is read against this schema (:mod:`mlthon.infra.config_schema`): a missing or unknown
key, a value of the wrong type, a decimal the one rule of :mod:`mlthon.basics.sanity` refuses
(``"NaN"``, ``"1e30"``, a tick of 0, a fee of 100 % or more), an id used twice, is a
:class:`~mlthon.basics.errors.ConfigError` naming the file, the key (``instrument[3].tick_size``)
and the value.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from mlthon.basics.errors import ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.infra.config_schema import REQUIRED, Table

_REQUIRED = ("instrument_id", "name", "exchange", "base", "quote", "kind", "tick_size", "lot_size")
_OPTIONAL = (
    "min_qty",
    "min_notional",
    "contract_multiplier",
    "settle_coin",
    "maker_fee",
    "taker_fee",
)


def default_instruments_path() -> Path:
    """The instruments file shipped inside the package."""
    return Path(str(resources.files("mlthon") / "data" / "instruments.toml"))


_SYMBOL = re.compile(r"[A-Za-z0-9_.:/@-]{1,64}")
_COIN = re.compile(r"[A-Za-z0-9]{1,32}")


def instrument_from_dict(
    d: object, source: str = "<dict>", where: str = "instrument"
) -> Instrument:
    """Build one Instrument from a table of the instruments file (``where`` is its path in the
    file, such as ``instrument[3]``).

    Raises:
        ConfigError: a key is missing or unknown, or a value is bad (the key is named).
    """
    t = Table.root({where: d}, source).table(where, keys=_REQUIRED + _OPTIONAL)
    iid = t.integer("instrument_id", REQUIRED, low=1, high=2**63 - 1)
    name = t.text("name", REQUIRED, pattern=_SYMBOL)
    try:
        exchange = Exchange.from_name(t.text("exchange", REQUIRED, most=64))
    except ValueError as exc:
        raise t.error("exchange", str(exc)) from None
    try:
        kind = InstrumentKind.from_name(t.text("kind", REQUIRED, most=32))
    except ValueError as exc:
        raise t.error("kind", str(exc)) from None
    extra: dict[str, Any] = {}
    for key in ("min_qty", "min_notional"):
        if key in t:
            extra[key] = t.decimal(key)
    if "contract_multiplier" in t:
        extra["contract_multiplier"] = t.decimal("contract_multiplier", positive=True)
    if "settle_coin" in t:
        extra["settle_coin"] = t.text("settle_coin", pattern=_COIN)
    for key in ("maker_fee", "taker_fee"):
        if key in t:
            fee = t.decimal(key, signed=True)
            if abs(fee) >= 1:
                raise t.error(key, f"{fee} is a fee of 100 % or more (rates are fractions)")
            extra[key] = fee
    try:
        return Instrument(
            instrument_id=iid,
            name=name,
            exchange=exchange,
            base=t.text("base", REQUIRED, pattern=_COIN),
            quote=t.text("quote", REQUIRED, pattern=_COIN),
            kind=kind,
            tick_size=t.decimal("tick_size", REQUIRED, positive=True),
            lot_size=t.decimal("lot_size", REQUIRED, positive=True),
            **extra,
        )
    except (ValueError, TypeError) as exc:
        raise t.error(None, f"instrument {name!r}: {exc}") from exc


def load_instruments(path: str | Path | None = None) -> list[Instrument]:
    """Read an instruments file (the packaged default when ``path`` is None).

    Raises:
        ConfigError: unreadable file, bad TOML, bad table, or a duplicated instrument id.
    """
    p = Path(path) if path is not None else default_instruments_path()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read instruments file: {exc}", source=str(p)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(p)) from exc
    return parse_instruments(data, str(p))


def parse_instruments(data: object, source: str = "<instruments>") -> list[Instrument]:
    """The instruments of a parsed instruments file.

    Raises:
        ConfigError: no ``[[instrument]]`` table, another top-level key, a bad table, or an id
            used twice (file, key and value named).
    """
    doc = Table.root(data, source, keys=("instrument",))
    tables = doc.data.get("instrument")
    if not isinstance(tables, list) or not tables:
        raise doc.error("instrument", "no [[instrument]] tables")
    out: list[Instrument] = []
    seen: set[int] = set()
    for k, t in enumerate(tables):
        inst = instrument_from_dict(t, source, f"instrument[{k}]")
        if inst.instrument_id in seen:
            raise doc.error(
                f"instrument[{k}].instrument_id", f"duplicate instrument_id {inst.instrument_id}"
            )
        seen.add(inst.instrument_id)
        out.append(inst)
    return out
