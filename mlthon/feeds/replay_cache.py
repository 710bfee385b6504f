"""Decoded once: a cache of the venue events read from each recorded file.

The first replay of a file decodes it (:func:`mlthon.feeds.readers.read_source`) and writes what
came out, the venue events and the bad-data reports in their order, to one cache file; a later
replay of the same bytes reads that file instead of the JSON. What is cached does not depend on
the instruments, the replay window or the engine's settings, so every backtest of a sweep shares it.

Key: the sha256 of the file's bytes and :func:`decoder_version` (a hash of
:func:`decoder_files` and of the format, marshal, Python and msgspec versions), so a changed file
or a changed decoder never reads stale events.

File (``<dir>/<sha256>-<decoder>.mlrc``): ``MAGIC``, then frames of ``<length u32><crc32 u32>
<marshal payload>``: a header, chunks of up to ``CHUNK_EVENTS`` events as columns (one per
constructor argument of each event class), a trailer (complete, or a prefix: a replay stopped
early caches what it read), then ``FOOTER`` (items, complete) readable without the rest. A
replay reading a cache that turns out corrupt or truncated, or holds only a prefix, decodes the
file from its start, drops what it already gave, and writes a new cache: never a crash or wrong
data. Writers write a temporary name and rename it (atomic), so many processes may read and write
one directory at once; a directory that cannot be written only logs a warning.

Why marshal: a cached read costs the making of the objects the engine receives, not parsing.
marshal (C, the format of ``__pycache__``) writes an object seen twice once and reads it back
shared, so each chunk's distinct ``(price, size)`` pairs and texts are made once, not once per
level (half the levels of a Binance capture repeat a pair): 0.27-0.34 of the JSON decode's time
against 0.45-0.9 for msgpack column arrays (``bench/bench_decode_cache.py``).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import inspect
import logging
import marshal
import os
import struct
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from itertools import accumulate, chain, pairwise, repeat
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.events import (
    DepthDiff,
    DepthSnapshot,
    Disconnect,
    Funding,
    Ignored,
    OrderSnapshot,
    OrderUpdate,
    SourceEvent,
    Trades,
)
from mlthon.feeds.readers import Report, read_source

log = logging.getLogger(__name__)

FORMAT: Final = 2
MAGIC: Final = b"MLRC\x00\x02"
SUFFIX: Final = ".mlrc"
CHUNK_EVENTS: Final = 4096
_FRAME = struct.Struct("<II")  # payload length, crc32 of the payload
FOOTER = struct.Struct("<QI4s")  # items (events + reports), complete (0/1), b"MLRC"
_FOOTER_MAGIC = b"MLRC"
_MAX_FRAME = 1 << 30

# The decoders' sources: the reader, the events and every venue package (wire + parse).
_FEEDS = Path(__file__).resolve().parent
_DECODER_FILES = ("readers.py", "events.py", "levels.py", "timefmt.py", "replay_cache.py")
_NOT_DECODERS = frozenset({"_template", "__pycache__"})

# The event classes, and the attributes that are their constructor's arguments, in order: a
# chunk holds one column per argument, and ``map(cls, *columns)`` makes the events again.
_KINDS: Final = (
    DepthDiff,
    DepthSnapshot,
    Trades,
    OrderSnapshot,
    OrderUpdate,
    Funding,
    Disconnect,
    Ignored,
)
_KIND_OF: Final = {t: k for k, t in enumerate(_KINDS)}
_FIELDS: Final = tuple(tuple(inspect.signature(t).parameters) for t in _KINDS)
# Book sides, whose (price, size) pairs are written once per chunk and shared (see _Shared).
_SIDES: Final = frozenset({"bids", "asks"})
ReportRow = tuple[int, str, str | None, int | None]  # event index in chunk, why, source, line
_warned: set[str] = set()
_MARSHAL: Final = 4


class CacheCorrupt(Exception):
    """A cache file that cannot be trusted (bad magic, length, checksum or content)."""


def _warn_once(key: str, msg: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(msg, *args)


def default_cache_dir() -> Path:
    """``$MLTHON_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlthon/replay``, else
    ``~/.cache/mlthon/replay``."""
    env = os.environ.get("MLTHON_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mlthon" / "replay"


_version: str | None = None


def decoder_files() -> list[Path]:
    """The sources that decide what a recording decodes to: the reader, the events, this module,
    every venue package (all its modules) and the enums the events name."""
    files = [_FEEDS / n for n in _DECODER_FILES]
    for pkg in sorted(_FEEDS.iterdir()):
        if pkg.is_dir() and pkg.name not in _NOT_DECODERS and (pkg / "__init__.py").exists():
            files.extend(sorted(pkg.glob("*.py")))
    files.append(_FEEDS / "__init__.py")
    files.append(_FEEDS.parent / "basics" / "mlt_enum.py")
    return files


def decoder_version() -> str:
    """A hash of :func:`decoder_files` and of the format, marshal, Python and msgspec versions
    (computed once per process): part of every cache file's name."""
    global _version
    if _version is None:
        h = hashlib.sha256(
            f"format {FORMAT} marshal {_MARSHAL} python {sys.version_info[:2]} "
            f"msgspec {msgspec.__version__}\n".encode()
        )
        for f in decoder_files():
            h.update(f.relative_to(_FEEDS.parent).as_posix().encode() + b"\n")
            try:
                h.update(f.read_bytes())
            except OSError:
                h.update(b"<missing>")
        _version = h.hexdigest()[:16]
    return _version


def file_sha256(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class ReplayCache:
    """A directory of decoded recordings, keyed by content and decoder version.

    Args:
        directory: where the cache files are (default :func:`default_cache_dir`); created when
            the first file is written.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory is not None else default_cache_dir()

    def path_for(self, sha256: str) -> Path:
        """The cache file of a source of this content, for the running decoders."""
        return self.dir / f"{sha256}-{decoder_version()}{SUFFIX}"

    def events(self, path: str | Path, report: Report) -> Iterator[SourceEvent]:
        """Every event of one recorded file, as :func:`read_source` gives them (same events, same
        reports in the same order), from the cache when it holds the file, else decoded and
        written to the cache on the way. Close the iterator when stopping early: the events read
        so far are then cached as a prefix.

        Raises:
            BadMarketData: the file cannot be read or its format is not recognised.
        """
        source = str(path)
        try:
            st = os.stat(source)
            stamp = (st.st_size, st.st_mtime_ns)
            sha = self._known_digest(source, st)
            if sha is None:
                sha = file_sha256(path)
                after = os.stat(source)
                changing = _stat_key(after) != _stat_key(st)
                if not changing:
                    self._remember_digest(source, st, sha)
            else:
                changing = False
        except OSError:
            return read_source(path, report)  # it raises the reader's error
        if changing:  # still being written (a recording in progress): its bytes have no key yet
            log.info("feed: %s changes while read; replayed without the cache", source)
            return read_source(path, report)
        return self._events(source, sha, stamp, report)

    # --- the digests of sources, kept by their stat -----------------------------------------------
    # Hashing a recording costs about as much as reading it from the cache (a few instructions a
    # byte). As git does for its index, the digest of a file is kept with the file's stat (size,
    # mtime, ctime, inode, device) and reused while the stat is unchanged: in this process, and in
    # ``<dir>/digests/`` for the next one. ctime cannot be set back by a user (utime sets only
    # atime and mtime), and a file modified within a second of being hashed is not recorded
    # (``_RACY_NS``: a write in the same clock tick would leave the stat as it was).

    def _digest_file(self, source: str) -> Path:
        name = hashlib.sha256(os.path.abspath(source).encode("utf-8", "surrogateescape"))
        return self.dir / "digests" / f"{name.hexdigest()[:32]}.txt"

    def _known_digest(self, source: str, st: os.stat_result) -> str | None:
        key = (os.path.abspath(source), _stat_key(st))
        sha = _digests.get(key)
        if sha is not None:
            return sha
        try:
            text = self._digest_file(source).read_text(encoding="ascii")
        except (OSError, ValueError):
            return None
        fields = text.split()
        if len(fields) != 6 or tuple(fields[:5]) != tuple(map(str, _stat_key(st))):
            return None
        sha = fields[5]
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            return None
        _digests[key] = sha
        return sha

    def _remember_digest(self, source: str, st: os.stat_result, sha: str) -> None:
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _RACY_NS:
            return  # modified just now: another write in the same tick would go unseen
        _digests[(os.path.abspath(source), _stat_key(st))] = sha
        target = self._digest_file(source)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(" ".join(map(str, _stat_key(st))) + f" {sha}\n", encoding="ascii")
            os.replace(tmp, target)
        except OSError as exc:
            log.debug("feed: digest of %s not kept in %s: %s", source, target, exc)
            _unlink(tmp)

    def _events(
        self, source: str, sha: str, stamp: tuple[int, int], report: Report
    ) -> Iterator[SourceEvent]:
        size = stamp[0]
        target = self.path_for(sha)
        given_events = given_reports = 0
        try:
            f = open(target, "rb")  # noqa: SIM115 (closed below; a generator holds it)
        except FileNotFoundError:
            f = None
        except OSError as exc:
            _warn_once(
                f"open {target}", "feed: replay cache %s unreadable (%s); decoding", target, exc
            )
            f = None
        if f is not None:
            reader = _CacheReader(f, sha, size, source, report)
            try:
                log.info("feed: replaying %s from the decode cache %s", source, target)
                for ses in reader.chunks():
                    yield from ses
                if reader.complete:
                    return
                log.info(
                    "feed: the cache of %s holds its first %d events; decoding the rest",
                    source,
                    reader.events,
                )
            except (CacheCorrupt, OSError) as exc:
                log.warning(
                    "feed: replay cache %s is corrupt (%s); decoding %s again", target, exc, source
                )
                _unlink(target)
            finally:
                f.close()
            given_events, given_reports = reader.events, reader.reports
        yield from self._decode(source, sha, stamp, report, given_events, given_reports)

    def _decode(
        self,
        source: str,
        sha: str,
        stamp: tuple[int, int],
        report: Report,
        skip_events: int,
        skip_reports: int,
    ) -> Iterator[SourceEvent]:
        """Decode the file, leave out the first events and reports (given from a cache already),
        and write everything to a new cache file."""
        writer = _CacheWriter(self.dir, self.path_for(sha), sha, stamp, source)
        suppressed = 0

        def rep(why: str, src: str, line: int | None) -> None:
            nonlocal suppressed
            writer.report(why, src, line)
            if suppressed < skip_reports:
                suppressed += 1
            else:
                report(why, src, line)  # type: ignore[arg-type]

        events = read_source(source, rep)  # type: ignore[arg-type]
        add = writer.add
        try:
            for _ in range(skip_events):
                se = next(events, None)
                if se is None:
                    break
                add(se)
            for se in events:
                add(se)
                yield se
        except GeneratorExit:
            writer.finish(complete=False)
            raise
        except BaseException:
            writer.abort()
            raise
        writer.finish(complete=True)

    def entries(self) -> list[Path]:
        """The cache files in the directory (every decoder version)."""
        try:
            return sorted(p for p in self.dir.iterdir() if p.suffix == SUFFIX)
        except OSError:
            return []

    def clear(self) -> int:
        """Remove every cache file and leftover temporary file; return how many were removed."""
        n = 0
        try:
            items = list(self.dir.iterdir())
        except OSError:
            return 0
        for p in items:
            ours = p.suffix == SUFFIX or (p.name.startswith(".") and p.name.endswith(".tmp"))
            if ours and _unlink(p):
                n += 1
        digests = self.dir / "digests"
        with contextlib.suppress(OSError):
            for p in list(digests.iterdir()):
                _unlink(p)
            digests.rmdir()
        return n


#: Digests of sources known in this process: (absolute path, stat key) -> sha256.
_digests: dict[tuple[str, tuple[int, ...]], str] = {}
#: A file whose mtime or ctime is this recent is hashed again next time (see _remember_digest).
_RACY_NS = 2_000_000_000


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def read_footer(path: Path) -> tuple[int, bool] | None:
    """(items, complete) of a cache file from its footer, None if it has none."""
    try:
        with open(path, "rb") as f:
            f.seek(-FOOTER.size, os.SEEK_END)
            items, complete, magic = FOOTER.unpack(f.read(FOOTER.size))
    except (OSError, struct.error):
        return None
    if magic != _FOOTER_MAGIC:
        return None
    return items, bool(complete)


def _unlink(p: Path) -> bool:
    try:
        p.unlink()
    except OSError:
        return False
    return True


def _read_frame(f: IO[bytes]) -> bytes:
    head = f.read(_FRAME.size)
    if len(head) != _FRAME.size:
        raise CacheCorrupt("truncated (no trailer)")
    n, crc = _FRAME.unpack(head)
    if n > _MAX_FRAME:
        raise CacheCorrupt(f"frame length {n} out of range")
    payload = f.read(n)
    if len(payload) != n:
        raise CacheCorrupt("truncated frame")
    if zlib.crc32(payload) != crc:
        raise CacheCorrupt("checksum mismatch")
    return payload


class _CacheReader:
    """Iterates the events of a cache file, making the reports as it goes; raises
    :class:`CacheCorrupt` on any inconsistency (possibly after giving some events: they are
    correct, each frame being checked before use)."""

    def __init__(self, f: IO[bytes], sha: str, size: int, source: str, report: Report) -> None:
        self.f = f
        self.sha = sha
        self.size = size
        self.source = source
        self.report = report
        self.events = 0
        self.reports = 0
        self.complete = False

    def chunks(self) -> Iterator[list[SourceEvent]]:
        """The events a chunk at a time (a replay iterates the lists: no Python frame per event);
        a chunk's bad-data reports are made at their place, between the parts of the chunk."""
        f = self.f
        if f.read(len(MAGIC)) != MAGIC:
            raise CacheCorrupt("not a replay cache file of this format")
        head = _load(_read_frame(f))
        if head != ("header", FORMAT, decoder_version(), self.sha, self.size):
            raise CacheCorrupt("header does not match the source file or the decoders")
        while True:
            payload = _read_frame(f)
            try:
                with _collector_paused():
                    frame = _load(payload)
                    if type(frame) is not tuple or not frame:
                        raise CacheCorrupt("not a frame")
                    if frame[0] == "end" and len(frame) == 4:
                        if frame[2:] != (self.events, self.reports):
                            raise CacheCorrupt("trailer counts do not match the chunks")
                        self.complete = frame[1] is True
                        return
                    ses, reports = _source_events(frame, self.source)
            except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
                raise CacheCorrupt(f"inconsistent chunk: {exc!r}") from None
            del frame, payload
            if not reports:
                self.events += len(ses)
                yield ses
                continue
            yield from self._with_reports(ses, reports)

    def _with_reports(
        self, ses: list[SourceEvent], reports: list[ReportRow]
    ) -> Iterator[list[SourceEvent]]:
        """The parts of a chunk between its reports, each report made before the event it
        precedes (those after the last event at the end)."""
        source = self.source
        report = self.report
        start = 0
        for row in reports:
            at = min(row[0], len(ses))
            if at > start:
                self.events += at - start
                yield ses[start:at]
                start = at
            self.reports += 1
            report(row[1], source if row[2] is None else row[2], row[3])  # type: ignore[arg-type]
        if start < len(ses):
            self.events += len(ses) - start
            yield ses[start:]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while. Reading or writing a chunk makes a few
    hundred thousand containers and no cycle: the collector, were it on, would scan them (and
    everything else alive) again and again while they are made; it catches up afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _dump(obj: Any) -> bytes:
    return marshal.dumps(obj, _MARSHAL)


def _load(payload: bytes) -> Any:
    try:
        # The user's own cache, like Python's __pycache__ (marshal too); checksummed before.
        return marshal.loads(payload)  # noqa: S302
    except (EOFError, TypeError, ValueError) as exc:
        raise CacheCorrupt(f"unreadable frame: {exc}") from None


def _source_events(frame: tuple[Any, ...], source: str) -> tuple[list[SourceEvent], list[Any]]:
    """The SourceEvents of one chunk, made column-wise, and the chunk's reports."""
    tag, names, ex_col, ts, lines, kinds, columns, reports = frame
    if tag != "chunk" or len(columns) != len(_KINDS):
        raise ValueError("not a chunk")
    its: list[Iterator[Any]] = []
    for cls, fields, cols in zip(_KINDS, _FIELDS, columns, strict=True):
        if cols is None:
            its.append(iter(()))
        elif len(cols) != len(fields) or len({len(c) for c in cols}) != 1:
            raise ValueError(f"bad columns of {cls.__name__}")
        else:
            its.append(map(cls, *cols))
    nexts = [it.__next__ for it in its]
    try:
        evs = [nexts[k]() for k in kinds]
    except StopIteration:
        raise ValueError("fewer events in the columns than kinds") from None
    for it in its:
        if next(it, None) is not None:
            raise ValueError("more events in the columns than kinds")
    n = len(evs)
    if len(ts) != n or len(lines) != n:
        raise ValueError("column lengths differ")
    exs = [Exchange[name] for name in names]
    ex: Any = repeat(exs[0], n) if not ex_col else [exs[i] for i in ex_col]
    ses = list(map(SourceEvent, accumulate(ts), ex, evs, repeat(source, n), accumulate(lines)))
    return ses, reports


def _deltas(values: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *values[:-1]], values, strict=True)]


class _Shared:
    """One (price, size) pair object per value, made of one string object per text: marshal
    writes a repeated object once and reads it back shared, so a cached chunk makes each pair
    once, not once per level. They are immutable: sharing them changes no result."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.pairs: dict[tuple[str, str], tuple[str, str]] = {}

    def sides(
        self, sides: list[list[tuple[str, str]] | bytes]
    ) -> list[list[tuple[str, str]] | bytes]:
        """The same book sides made of shared pairs (all in C loops: this runs on every level).
        Sides held as raw JSON bytes (``mlthon.feeds.levels``) are kept as they are."""
        if any(type(side) is bytes for side in sides):
            return [side if type(side) is bytes else self.sides([side])[0] for side in sides]
        flat: list[str] = list(chain.from_iterable(chain.from_iterable(sides)))  # type: ignore[arg-type]
        if len(flat) != 2 * sum(map(len, sides)):
            raise ValueError("a book level is not a (price, size) pair")
        texts = self.texts
        it = iter(list(map(texts.setdefault, flat, flat)))
        made = list(zip(it, it, strict=True))
        pairs = self.pairs
        levels = list(map(pairs.setdefault, made, made))
        ends = list(accumulate(map(len, sides), initial=0))
        return [levels[a:b] for a, b in pairwise(ends)]


def _chunk(ses: Sequence[SourceEvent], reports: list[ReportRow]) -> tuple[Any, ...]:
    """A chunk of some source events (the inverse of :func:`_source_events`)."""
    evs = [se.event for se in ses]
    kinds = [_KIND_OF[type(e)] for e in evs]
    by: list[list[Any]] = [[] for _ in _KINDS]
    for e, k in zip(evs, kinds, strict=True):
        by[k].append(e)
    shared = _Shared()
    columns: list[list[list[Any]] | None] = []
    for fields, group in zip(_FIELDS, by, strict=True):
        if not group:
            columns.append(None)
            continue
        cols = []
        for name in fields:
            col = [getattr(e, name) for e in group]
            if name in _SIDES:
                col = shared.sides(col)
            elif set(map(type, col)) == {str}:  # symbols, texts: one object per value too
                col = list(map(shared.texts.setdefault, col, col))
            cols.append(col)
        columns.append(cols)
    names: dict[Exchange, int] = {}
    ex = [names.setdefault(se.exchange, len(names)) for se in ses]
    return (
        "chunk",
        [e.name for e in names],
        ex if len(names) > 1 else [],
        _deltas([se.ts for se in ses]),
        _deltas([se.line for se in ses]),
        kinds,
        columns,
        reports,
    )


class _CacheWriter:
    """Writes one cache file while a source is decoded: chunks go to a temporary file as they
    fill; :meth:`finish` adds the trailer and footer and renames it into place. Any failure
    (read-only or full directory, a value msgpack cannot hold) logs a warning and stops writing;
    the replay itself never fails for it."""

    def __init__(
        self, directory: Path, target: Path, sha: str, stamp: tuple[int, int], source: str
    ) -> None:
        self.target = target
        self.source = source
        self.sha = sha
        self.stamp = stamp
        size = stamp[0]
        self.buf: list[SourceEvent] = []
        self.reports: list[ReportRow] = []
        self.events = 0
        self.nreports = 0
        self.tmp: Path | None = None
        self.f: IO[bytes] | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.tmp = directory / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            self.f = open(self.tmp, "xb")  # noqa: SIM115 (closed by finish / abort)
            self.f.write(MAGIC)
            self._frame(_dump(("header", FORMAT, decoder_version(), sha, size)))
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        _warn_once(
            f"write {self.target.parent}",
            "feed: cannot write the replay cache in %s (%s); replays decode their files every time",
            self.target.parent,
            exc,
        )
        self.abort()

    def _frame(self, payload: bytes) -> None:
        assert self.f is not None
        self.f.write(_FRAME.pack(len(payload), zlib.crc32(payload)))
        self.f.write(payload)

    def add(self, se: SourceEvent) -> None:
        buf = self.buf
        buf.append(se)
        if len(buf) >= CHUNK_EVENTS:
            self._flush()

    def report(self, why: str, src: str, line: int | None) -> None:
        self.reports.append((len(self.buf), why, None if src == self.source else src, line))

    def _flush(self) -> None:
        if self.f is not None:
            try:
                with _collector_paused():
                    payload = _dump(_chunk(self.buf, self.reports))
                self._frame(payload)
            except OSError as exc:
                self._fail(exc)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # A value marshal cannot hold (a decoder's bug: events hold text and ints).
                log.warning("feed: the events of %s cannot be cached: %r", self.source, exc)
                self.abort()
        self.events += len(self.buf)
        self.nreports += len(self.reports)
        self.buf = []
        self.reports = []

    def finish(self, *, complete: bool) -> None:
        """Write the rest, the trailer and the footer, and rename the file into place (unless a
        cache already there holds as much)."""
        if self.f is None:
            return
        if self.buf or self.reports:
            self._flush()
        if self.f is None or self.tmp is None:
            return
        items = self.events + self.nreports
        if not complete and items == 0:
            self.abort()
            return
        try:
            self._frame(_dump(("end", complete, self.events, self.nreports)))
            self.f.write(FOOTER.pack(items, int(complete), _FOOTER_MAGIC))
            self.f.close()
            self.f = None
            if _stamp(self.source) != self.stamp:
                log.warning(
                    "feed: %s changed while decoded; its events are not cached", self.source
                )
                self.abort()
                return
            there = read_footer(self.target)
            if there is not None and (there[1] or (there[0] >= items and not complete)):
                self.abort()  # another writer cached as much already
                return
            os.replace(self.tmp, self.target)
            self.tmp = None
            # The same content decoded by other versions of the decoders is stale.
            for old in self.target.parent.glob(f"{self.sha}-*{SUFFIX}"):
                if old != self.target:
                    _unlink(old)
            log.info(
                "feed: cached the decoded events of %s (%d events%s) in %s",
                self.source,
                self.events,
                "" if complete else ", a prefix",
                self.target,
            )
        except OSError as exc:
            self._fail(exc)

    def abort(self) -> None:
        """Stop writing and remove the temporary file."""
        if self.f is not None:
            with contextlib.suppress(OSError):
                self.f.close()
            self.f = None
        if self.tmp is not None:
            _unlink(self.tmp)
            self.tmp = None
