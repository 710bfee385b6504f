"""What a recording says of its instruments: recorded definitions, and grids that contradict them.

* :func:`read_definitions` reads the instrument definitions a recording carries: Binance
  ``exchangeInfo`` answers (a cryptofeed log's REST lines, or an ``exchangeInfo`` JSON file:
  ``PRICE_FILTER.tickSize``, ``LOT_SIZE.stepSize`` / ``minQty``, ``MIN_NOTIONAL``, base, quote
  and margin coins, COIN-M ``contractSize``) and Databento ``definition`` files (DBN,
  zstd-compressed or not: ``min_price_increment``, ``unit_of_measure_qty`` as the multiplier,
  ``asset`` and ``currency``; read with the ``databento-dbn`` and ``zstandard`` packages).
* :func:`grid_conflicts` compares the instruments file with what the data show: an instrument
  whose tick (or lot) the recorded prices (or sizes) are not multiples of, or whose tick differs
  from the recording's own definition. Such a replay drops the levels off the tick grid
  ("unusable book level") and rounds sizes off the lot grid, so this is said before the run:
  by ``mlthon instruments --data`` and, through :func:`warn_grid_conflicts`, at the start of a
  backtest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import BadMarketData, ConfigError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.binance_usdm.parse import market_from_url
from mlthon.feeds.databento.dbn import (
    INSTALL,
    dbn_records,
    is_dbn,
    open_decompressed,
    schema_name,
)
from mlthon.feeds.databento.parse import PUBLISHERS
from mlthon.feeds.readers import CF_REST_RE, open_lines

log = logging.getLogger(__name__)

_FIXED_SCALE = Decimal("1e-9")  # Databento fixed-point prices and quantities
_DBN_UNDEF_I32 = 2**31 - 1
_FUTURES_TYPES = {"U_MARGINED": Exchange.BinanceUsdm, "COIN_MARGINED": Exchange.BinanceCoinm}
_KINDS = {
    Exchange.BinanceUsdm: "Linear",
    Exchange.BinanceCoinm: "Inverse",
    Exchange.BinanceSpot: "Spot",
}


@attrs.frozen
class Definition:
    """One instrument as the recording's venue defined it (None: not stated there).

    Attributes:
        exchange: the venue.
        symbol: the venue's symbol (as the recording's market data name it).
        base: the base coin or asset (``BCH``, ``ES``).
        quote: the quote coin or currency.
        kind: ``Spot``, ``Linear`` or ``Inverse``.
        tick: the price grid.
        lot: the size grid.
        min_qty: the smallest order size.
        min_notional: the smallest order value.
        multiplier: the contract multiplier (COIN-M ``contractSize``, Databento's
            ``unit_of_measure_qty``).
        settle_coin: the margin or settlement coin when it differs from the quote.
        source: the file it came from.
    """

    exchange: Exchange
    symbol: str
    base: str
    quote: str
    kind: str
    tick: Decimal | None = None
    lot: Decimal | None = None
    min_qty: Decimal | None = None
    min_notional: Decimal | None = None
    multiplier: Decimal | None = None
    settle_coin: str | None = None
    source: str = ""


def _dec(value: object) -> Decimal | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d.normalize() if d.is_finite() and d > 0 else None


def binance_exchange_info(
    body: str | bytes, market: Exchange | None, source: str = ""
) -> list[Definition]:
    """The definitions of a Binance ``exchangeInfo`` answer (USD-M, COIN-M or spot).

    ``market`` is the venue the answer came from when known (from its URL); otherwise it is
    read from the answer (``futuresType``; spot answers have ``isSpotTradingAllowed``).
    Symbols without a price filter are skipped.
    """
    doc = json.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), list):
        return []
    ex = market or _FUTURES_TYPES.get(str(doc.get("futuresType", "")))
    out = []
    for s in doc["symbols"]:
        if not isinstance(s, dict) or not s.get("symbol"):
            continue
        venue = ex or (Exchange.BinanceSpot if "isSpotTradingAllowed" in s else None)
        if venue is None:
            continue
        filters = {f.get("filterType"): f for f in s.get("filters", []) if isinstance(f, dict)}
        price, lot = filters.get("PRICE_FILTER", {}), filters.get("LOT_SIZE", {})
        notional = filters.get("MIN_NOTIONAL") or filters.get("NOTIONAL") or {}
        tick = _dec(price.get("tickSize"))
        if tick is None:
            continue
        quote = str(s.get("quoteAsset", ""))
        margin = str(s.get("marginAsset", "")) or None
        out.append(
            Definition(
                exchange=venue,
                symbol=str(s["symbol"]).upper(),
                base=str(s.get("baseAsset", "")),
                quote=quote,
                kind=_KINDS.get(venue, "Linear"),
                tick=tick,
                lot=_dec(lot.get("stepSize")),
                min_qty=_dec(lot.get("minQty")),
                min_notional=_dec(notional.get("notional", notional.get("minNotional"))),
                multiplier=_dec(s.get("contractSize")),
                settle_coin=margin if margin and margin != quote else None,
                source=source,
            )
        )
    return out


def databento_definitions(path: str | Path) -> list[Definition]:
    """The ``InstrumentDefMsg`` records of a DBN file (zstd-compressed or not), read a megabyte
    at a time.

    Raises:
        ConfigError: ``databento-dbn`` (or, for a compressed file, ``zstandard``) is not
            installed, or the file is not readable DBN.
    """
    source = str(path)
    try:
        import databento_dbn as dbn  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError(
            f"{source}: reading Databento definitions needs databento-dbn: {INSTALL}"
        ) from None
    out = []
    kinds = (dbn.InstrumentDefMsg, dbn.InstrumentDefMsgV1, dbn.InstrumentDefMsgV2)
    try:
        with open_decompressed(path) as stream:
            for r in dbn_records(stream, source):
                if not isinstance(r, kinds):
                    continue
                venue = PUBLISHERS.get(str(r.publisher_id))
                if venue is None:
                    continue
                out.append(_databento_definition(r, venue, source))
    except (BadMarketData, OSError) as exc:
        raise ConfigError(str(exc)) from None
    return out


def _fixed(value: int) -> Decimal | None:
    if value <= 0 or value >= 2**63 - 1:
        return None
    return (Decimal(value) * _FIXED_SCALE).normalize()


def _databento_definition(r: Any, venue: Exchange, source: str) -> Definition:
    lot_count = r.min_lot_size_round_lot or r.min_trade_vol or 1
    multiplier = _fixed(int(r.unit_of_measure_qty))
    if multiplier is None and 0 < int(r.contract_multiplier) < _DBN_UNDEF_I32:
        multiplier = Decimal(int(r.contract_multiplier))
    return Definition(
        exchange=venue,
        symbol=str(r.raw_symbol).upper(),
        base=str(r.asset) or str(r.raw_symbol),
        quote=str(r.currency) or "USD",
        kind="Linear",
        tick=_fixed(int(r.min_price_increment)),
        lot=Decimal(int(lot_count)),
        min_qty=Decimal(int(r.min_trade_vol or lot_count)),
        multiplier=multiplier,
        settle_coin=str(r.settl_currency)
        if r.settl_currency and r.settl_currency != r.currency
        else None,
        source=source,
    )


def _exchange_info_lines(path: str, lines: Iterator[bytes]) -> Iterator[Definition]:
    first = True
    for raw in lines:
        if first and (raw.strip() == b"{" or (raw.startswith(b"{") and b'"symbols"' in raw)):
            # a bare exchangeInfo document: pretty-printed, or on one line (an NDJSON
            # recording's first line is a whole message, never a lone brace)
            body = raw + b"".join(lines)
            try:
                yield from binance_exchange_info(body, None, path)
            except ValueError as exc:
                log.debug("instruments: %s is not an exchangeInfo document: %s", path, exc)
            return
        if raw.strip():
            first = False
        if not raw.startswith(b"http") or b"exchangeInfo" not in raw[:200]:
            continue
        m = CF_REST_RE.match(raw.decode("utf-8", "replace"))
        if m is None:
            continue
        try:
            yield from binance_exchange_info(m.group(3), market_from_url(m.group(1)), path)
        except ValueError as exc:
            log.warning("instruments: unreadable exchangeInfo in %s: %s", path, exc)


def is_definition_file(path: str | Path) -> bool:
    """True for a DBN file of instrument definitions (not market data ``mlthon`` replays).

    Raises:
        ConfigError: a DBN file that cannot be read (``zstandard`` or ``databento-dbn`` is not
            installed, or the bytes are not DBN).
    """
    try:
        if not is_dbn(path):
            return False
        with open_decompressed(path) as stream:
            metadata = next(dbn_records(stream, str(path)))
    except (BadMarketData, OSError) as exc:
        raise ConfigError(str(exc)) from None
    return schema_name(metadata) == "definition"


def read_definitions(paths: Iterable[str | Path]) -> dict[tuple[Exchange, str], Definition]:
    """Every definition the recordings hold, by (venue, upper-case symbol); a later file's
    definition of a symbol replaces an earlier one's.

    Raises:
        ConfigError: a DBN file cannot be read (see :func:`databento_definitions`).
    """
    out: dict[tuple[Exchange, str], Definition] = {}
    for path in paths:
        source = str(path)
        if is_definition_file(path):
            defs: Iterable[Definition] = databento_definitions(path)
        else:
            defs = _exchange_info_lines(source, open_lines(path))
        for d in defs:
            out[(d.exchange, d.symbol)] = d
    return out


# --- grids the data contradict -----------------------------------------------------------------


@attrs.frozen
class GridConflict:
    """An instrument whose grid the recording contradicts.

    Attributes:
        instrument: the instruments file's instrument.
        what: ``tick_size`` or ``lot_size``.
        configured: its value in the instruments file.
        recorded: the recording's grid (the data's step, or its definition's value).
        by_definition: True when ``recorded`` is the recording's own definition.
    """

    instrument: Instrument
    what: str
    configured: Decimal
    recorded: Decimal
    by_definition: bool = False

    def message(self) -> str:
        """One line saying what is wrong and what to do."""
        i = self.instrument
        name = f"{i.name} ({i.exchange.name}, id {i.instrument_id})"
        values = "prices" if self.what == "tick_size" else "sizes"
        if self.by_definition:
            said = f"the recording's definition gives {self.what} {self.recorded:f}"
        else:
            said = f"the recording's {values} are on a {self.recorded:f} grid, not multiples of it"
        effect = (
            "levels off its grid are dropped ('unusable book level')"
            if self.what == "tick_size"
            else "sizes off its grid are rounded down to whole lots"
        )
        return (
            f"{name}: {self.what} is {self.configured:f} in the instruments file but {said}; "
            f"{effect}: use an instruments file "
            f'with {self.what} = "{self.recorded:f}" (mlthon instruments --data prints one)'
        )


def grid_conflicts(
    stats: Iterable[Any],
    instruments: Iterable[Instrument],
    definitions: dict[tuple[Exchange, str], Definition] | None = None,
) -> list[GridConflict]:
    """The instruments whose tick or lot the data contradict.

    ``stats`` are the recordings' per-symbol grids (``exchange``, ``symbol``, ``price_step``,
    ``size_step``: :class:`~mlthon.app.instruments_cli.SymbolStats`).
    """
    by_key = {(i.exchange, i.name.upper()): i for i in instruments}
    out: list[GridConflict] = []
    for st in stats:
        key = (st.exchange, st.symbol.upper())
        inst = by_key.get(key)
        if inst is None:
            continue
        d = (definitions or {}).get(key)
        for what, configured, step, defined in (
            ("tick_size", inst.tick_size, st.price_step, d.tick if d else None),
            ("lot_size", inst.lot_size, st.size_step, d.lot if d else None),
        ):
            if defined is not None and defined != configured:
                out.append(GridConflict(inst, what, configured, defined, by_definition=True))
            elif step is not None and step % configured != 0:
                out.append(GridConflict(inst, what, configured, step))
    return out


def warn_grid_conflicts(
    paths: Sequence[object],
    instruments: Iterable[Instrument],
    *,
    max_events: int = 200_000,
    logger: logging.Logger | None = None,
) -> list[str]:
    """Before a backtest: log (WARNING) and return one line per instrument whose grid the
    first ``max_events`` events of the recordings ``paths`` contradict. Entries of ``paths``
    that are not file paths (message objects) are skipped."""
    # here, not at the top: the CLI module imports this one
    from mlthon.app.instruments_cli import scan

    files = [str(p) for p in paths if isinstance(p, str | Path) and Path(p).is_file()]
    if not files:
        return []
    data = [p for p in files if not is_definition_file(p)]
    found, _bad = scan(data, max_events=max_events)
    try:
        definitions = read_definitions(files)
    except ConfigError as exc:
        (logger or log).warning("backtest: recorded definitions not read: %s", exc)
        definitions = {}
    lines = [c.message() for c in grid_conflicts(found, instruments, definitions)]
    for line in lines:
        (logger or log).warning("backtest: %s", line)
    return lines
