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
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from mlthon.basics.errors import ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind

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


def instrument_from_dict(d: dict[str, Any], source: str = "<dict>") -> Instrument:
    """Build one Instrument from a table of the instruments file.

    Raises:
        ConfigError: a key is missing, unknown or has a bad value.
    """
    where = f"instrument {d.get('name', '?')!r}"
    for key in _REQUIRED:
        if key not in d:
            raise ConfigError(f"{where}: missing key", source=source, key=key)
    unknown = set(d) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}", source=source)
    try:
        exchange = Exchange.from_name(str(d["exchange"]))
        kind = InstrumentKind.from_name(str(d["kind"]))
        iid = d["instrument_id"]
        if not isinstance(iid, int) or isinstance(iid, bool) or iid <= 0:
            raise ValueError(f"instrument_id must be a positive integer, got {iid!r}")
        extra = {k: d[k] for k in _OPTIONAL if k in d}
        return Instrument(
            instrument_id=iid,
            name=str(d["name"]),
            exchange=exchange,
            base=str(d["base"]),
            quote=str(d["quote"]),
            kind=kind,
            tick_size=d["tick_size"],
            lot_size=d["lot_size"],
            **extra,
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}", source=source) from exc


def load_instruments(path: str | Path | None = None) -> list[Instrument]:
    """Read an instruments file (the packaged default when ``path`` is None).

    Raises:
        ConfigError: unreadable file, bad TOML, bad table, or a duplicated instrument id.
    """
    p = Path(path) if path is not None else default_instruments_path()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read instruments file: {exc}", source=str(p)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(p)) from exc
    tables = data.get("instrument")
    if not isinstance(tables, list) or not tables:
        raise ConfigError("no [[instrument]] tables", source=str(p))
    out: list[Instrument] = []
    seen: set[int] = set()
    for t in tables:
        inst = instrument_from_dict(t, str(p))
        if inst.instrument_id in seen:
            raise ConfigError(f"duplicate instrument_id {inst.instrument_id}", source=str(p))
        seen.add(inst.instrument_id)
        out.append(inst)
    return out
