"""Recording venue messages in the raw capture format: ``<recv_ns> <json>`` per line, gzip.

The same format as the hftbacktest captures, so :func:`~mlthon.feeds.replay.replay_file` reads a
recording back through the same decoders. A live handler feeds :class:`RawRecorder` with each
received WebSocket message (and REST depth answer); :func:`iter_raw_messages` extracts the raw
messages of an existing recording (capture, Bybit NDJSON, cryptofeed log) so it can be re-recorded.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

import msgspec

from mlthon.basics.errors import BadMarketData
from mlthon.feeds.readers import (
    CF_CONNECT_RE,
    CF_RECV_RE,
    CF_REST_RE,
    MS,
    detect_format,
    open_lines,
    ts_from_seconds,
)

log = logging.getLogger(__name__)

_json = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()


class RawRecorder:
    """Writes ``<recv_ns> <json>`` lines to a gzip file; use it as a context manager.

    Args:
        path: the output file (created or truncated).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._f: gzip.GzipFile | None = None
        self.count = 0

    def __enter__(self) -> RawRecorder:
        self._f = gzip.GzipFile(self.path, "wb")
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, recv_ns: int, payload: bytes) -> None:
        """Append one message received at ``recv_ns``; the payload must be one line of JSON.

        Raises:
            ValueError: the payload holds a line break, or the recorder is not open.
        """
        if self._f is None:
            raise ValueError("recorder is not open")
        if b"\n" in payload:
            payload = _enc.encode(_json.decode(payload))
        self._f.write(b"%d %s\n" % (recv_ns, payload))
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        if self._f is not None:
            self._f.close()
            self._f = None


def record(messages: Iterable[tuple[int, bytes]], path: str | Path) -> int:
    """Write ``(recv_ns, json bytes)`` messages to ``path``; return how many were written."""
    with RawRecorder(path) as rec:
        for ts, payload in messages:
            rec.write(ts, payload)
        return rec.count


def _with_symbol(body: str, url: str) -> bytes:
    symbol = parse_qs(urlparse(url).query).get("symbol", [""])[0]
    obj: Any = _json.decode(body)
    if isinstance(obj, dict) and symbol and "symbol" not in obj:
        obj["symbol"] = symbol
    return _enc.encode(obj)


def iter_raw_messages(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """The raw venue messages of a recording, as ``(recv_ns, json bytes)``.

    Captures are passed through; Bybit NDJSON gets the message's ``ts`` as receive time;
    cryptofeed logs give their received WebSocket messages and their REST depth answers (with the
    symbol of the request URL added, so that the snapshot stays attributable).

    Raises:
        BadMarketData: the format has no raw messages to extract (Tardis CSV, Bitfinex array).
    """
    lines = open_lines(path)
    first = next(lines, b"")
    fmt = detect_format(first)
    all_lines = [first, *lines]
    if fmt == "capture":
        for raw in all_lines:
            sp = raw.find(b" ")
            if sp > 0:
                yield int(raw[:sp]), raw[sp + 1 :]
    elif fmt == "ndjson":
        for raw in all_lines:
            if raw.strip():
                obj: Any = _json.decode(raw)
                ts = obj.get("ts", 0) if isinstance(obj, dict) else 0
                yield int(ts) * MS, raw
    elif fmt == "cryptofeed":
        for raw in all_lines:
            text = raw.decode("utf-8", "replace")
            m = CF_RECV_RE.match(text)
            if m is not None:
                yield ts_from_seconds(m.group(1)), m.group(2).encode()
                continue
            m = CF_REST_RE.match(text)
            if m is not None and urlparse(m.group(1)).path.endswith("/depth"):
                yield ts_from_seconds(m.group(2)), _with_symbol(m.group(3), m.group(1))
                continue
            if CF_CONNECT_RE.match(text):
                continue
    else:
        raise BadMarketData(f"format {fmt} holds no raw venue messages to record", source=str(path))
