"""Databento's binary format (DBN), zstd-compressed or not: the file, its records, its MBO rows.

One reading of DBN serves the market-data reader (``read_mbo_dbn``: MBO records become the rows
that :func:`~mlthon.feeds.databento.parse.read_mbo_records` turns into events, as the CSV
transcode's rows are) and ``mlthon instruments`` (the ``definition`` records, in
``mlthon.app.instrument_drafts``).

The decoding itself is Databento's own ``databento-dbn`` package and zstd is ``zstandard``, both
in the ``databento`` extra (``pip install 'mlthon[databento]'``); without them a DBN file is
refused with that command, nothing else is affected. A file is read a megabyte at a time:
memory does not grow with its length.

DBN facts used here (Databento's DBN specification): the stream starts with ``DBN`` and a
version byte, then the metadata (dataset, schema, the symbol mappings of a historical request)
and the records; prices are integers in units of 1e-9, :data:`UNDEF_PRICE` (2**63 - 1) when a
record has none (a clear, ``R``); a live stream maps instrument ids to symbols with
``SymbolMappingMsg`` records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from mlthon.basics.errors import BadMarketData
from mlthon.feeds.databento.wire import MBO_OPTIONAL, MBO_REQUIRED

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"
INSTALL = "pip install 'mlthon[databento]' (databento-dbn and zstandard)"
UNDEF_PRICE = 2**63 - 1
_NANO = 1_000_000_000
_CHUNK = 1 << 20

#: The row layout :func:`mbo_rows` gives (the names of the CSV transcode's columns).
ROW_COLUMNS = [*MBO_REQUIRED, *MBO_OPTIONAL]

Report = Callable[[str, str, int], None]


class Readable(Protocol):
    """A binary stream, as far as the readers use one."""

    def read(self, size: int = -1, /) -> bytes: ...


@contextlib.contextmanager
def open_decompressed(path: str | Path) -> Iterator[Readable]:
    """The file's bytes as a binary stream: as they are, or decompressed when the file is zstd
    (its magic number, whatever its name); a read of bad zstd data raises BadMarketData.

    Raises:
        BadMarketData: the file is zstd and ``zstandard`` is not installed.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        if magic != ZSTD_MAGIC:
            yield f
            return
        try:
            import zstandard  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise BadMarketData(
                f"a zstd-compressed file: reading it needs zstandard: {INSTALL}", source=str(path)
            ) from None
        with zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True) as z:
            yield CheckedReader(z, str(path))


class CheckedReader:
    """A binary stream whose read errors, whatever their type (zstandard's are not OSError),
    are :class:`BadMarketData` naming the source."""

    def __init__(self, stream: Readable, source: str) -> None:
        self._stream = stream
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._stream.read(size)
        except Exception as exc:
            raise BadMarketData(f"unreadable data: {exc}", source=self._source) from exc


def is_dbn(path: str | Path) -> bool:
    """True if the file (decompressed) starts as DBN does.

    Raises:
        BadMarketData: the file is zstd and ``zstandard`` is not installed.
        OSError: the file cannot be read.
    """
    with open_decompressed(path) as f:
        return f.read(len(DBN_MAGIC)) == DBN_MAGIC


def dbn_records(stream: Readable, source: str, report: Report | None = None) -> Iterator[Any]:
    """The metadata, then every record of a DBN stream, decoded a megabyte at a time. Bytes
    left after the last whole record (a file cut short) go to ``report(why, source, n)``, ``n``
    the number the next record would have had (the metadata is 0).

    Raises:
        BadMarketData: ``databento-dbn`` is not installed or the bytes are not DBN; or, with no
            ``report``, they end inside a record (the records before it were given).
    """
    try:
        import databento_dbn as dbn  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise BadMarketData(
            f"a Databento DBN file: reading it needs databento-dbn: {INSTALL}", source=source
        ) from None
    dec = dbn.DBNDecoder()
    started = False
    count = 0  # records given, the metadata included
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        try:
            dec.write(chunk)
            records = dec.decode()
        except dbn.DBNError as exc:
            raise BadMarketData(f"not a readable DBN file: {exc}", source=source) from exc
        if records:
            started = True
            count += len(records)
            yield from records
    if not started:
        raise BadMarketData("not a readable DBN file (no metadata)", source=source)
    left = len(dec.buffer())
    if left:
        why = f"the DBN data ends inside a record ({left} bytes left)"
        if report is None:
            raise BadMarketData(why, source=source)
        report(why, source, count)


def schema_name(metadata: Any) -> str:
    """The schema a DBN file's metadata names, lower case (``mbo``, ``definition``)."""
    schema = str(getattr(metadata, "schema", "") or "")
    return schema.rsplit(".", 1)[-1].lower()


def price_text(units: int) -> str:
    """A DBN price (units of 1e-9) as exact decimal text; empty for :data:`UNDEF_PRICE`."""
    if units == UNDEF_PRICE:
        return ""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), _NANO)
    return f"{sign}{whole}.{frac:09d}"


def _char(value: object) -> str:
    """An action or side: an enum of ``databento-dbn`` (its value) or the character itself."""
    v = getattr(value, "value", value)
    return chr(v) if isinstance(v, int) else str(v)


def mbo_rows(stream: Readable, source: str, report: Report) -> Iterator[tuple[int, list[str]]]:
    """``(record number, row)`` for each MBO record of a DBN stream, the row laid out as
    :data:`ROW_COLUMNS` (the CSV transcode's text: prices exact, times in ns), the symbol from
    the metadata's mappings or the stream's ``SymbolMappingMsg`` records (empty if neither
    names the instrument). Other records are reported once per kind and left out.

    Raises:
        BadMarketData: see :func:`dbn_records`; and a DBN file of another schema than MBO.
    """
    records = dbn_records(stream, source, report)
    metadata = next(records)
    schema = schema_name(metadata)
    if schema != "mbo":
        raise BadMarketData(
            f"a Databento DBN file of schema {schema or '?'}: market data are read from MBO "
            "(order-level) files; `mlthon instruments --data` reads definition files",
            source=source,
        )
    symbols = _mapped_symbols(metadata)
    seen_kinds: set[str] = set()
    for n, r in enumerate(records, 1):
        kind = type(r).__name__
        if kind == "MBOMsg":
            iid = int(r.instrument_id)
            yield (
                n,
                [
                    str(r.ts_recv),
                    str(r.ts_event),
                    str(int(r.publisher_id)),
                    str(iid),
                    _char(r.action),
                    _char(r.side),
                    price_text(int(r.price)),
                    str(r.size),
                    str(r.order_id),
                    str(int(r.flags)),
                    symbols.get(iid, ""),
                ],
            )
        elif kind.startswith("SymbolMappingMsg"):
            name = str(getattr(r, "stype_in_symbol", "") or "")
            if name:
                symbols[int(r.instrument_id)] = name
        elif kind not in seen_kinds:
            seen_kinds.add(kind)
            report(f"Databento {kind} record left out (not MBO)", source, n)


def _mapped_symbols(metadata: Any) -> dict[int, str]:
    """Instrument id -> symbol, from a historical file's metadata (requested by symbol, mapped
    to instrument ids)."""
    out: dict[int, str] = {}
    mappings = getattr(metadata, "mappings", None) or {}
    for name, spans in mappings.items():
        for span in spans:
            iid = span.get("symbol") if isinstance(span, dict) else None
            if isinstance(iid, str) and iid.isdigit():
                out[int(iid)] = str(name)
    return out
