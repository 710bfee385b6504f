"""The replay cache: a recording decoded once gives the same events and bad-data reports when read
back, survives corrupt, truncated and partial files, and is shared safely by many processes."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlthon.feeds import replay_cache as rc
from mlthon.feeds.readers import read_source
from mlthon.feeds.replay import replay_file
from mlthon.feeds.replay_cache import ReplayCache, decoder_files, read_footer
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO

SAMPLE = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"

# One recording of every format the readers know (see docs/market-data.md).
FORMATS = [
    "hftbacktest/binance_usdm_futures/btcusdt_20240808.gz",
    "hftbacktest/binance_spot/btcusdt_20240808.gz",
    "hftbacktest/hyperliquid/btcusd_20250126.gz",
    "nautilus_trader/bitfinex_l3/bitfinex_tBTCUSD_raw_book_R0.json",
    "nautilus_trader/bybit_v5/historical_ob500/xrpusdt-ob500.data.zip",
    "nautilus_trader/tardis_csv/deribit_incremental_book_L2_BTC-PERPETUAL.csv",
    "nautilus_trader/tardis_csv/binance-futures_book_snapshot_5_BTCUSDT.csv",
    "nautilus_trader/tardis_csv/bitmex_trades_XBTUSD.csv",
    "nautilus_trader/tardis_machine_json/book_snapshot.json",
    "nautilus_trader/tardis_machine_json/derivative_ticker.json",
    "nautilus_trader/databento_mbo_l3/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.csv.gz",
    "cryptofeed/sample_data/BINANCE_FUTURES.ws.1.0",
    "cryptofeed/sample_data/BINANCE_FUTURES.http.0.0",
    "cryptofeed/sample_data/BITMEX.ws.1.0",
    "cryptofeed/sample_data/DERIBIT.ws.1.0",
    "cryptofeed/sample_data/COINBASE.ws.28.0",
]


def _value(v: Any) -> Any:
    """A value with the types of everything in it (a str must stay a str, a tuple a tuple)."""
    if isinstance(v, list | tuple):
        return (type(v).__name__, tuple(_value(x) for x in v))
    return (type(v).__name__, v)


def _event(se: Any) -> tuple[Any, ...]:
    ev = se.event
    fields = tuple((name, _value(getattr(ev, name))) for name in type(ev).__slots__)
    return (se.ts, se.exchange, se.source, se.line, type(ev).__name__, fields)


def _read(events: Iterator[Any], reports: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Events and reports in the order they were made (a report before the event it precedes)."""
    out: list[tuple[Any, ...]] = []
    seen = 0
    for se in events:
        out.extend(("report", *r) for r in reports[seen:])
        seen = len(reports)
        out.append(_event(se))
    out.extend(("report", *r) for r in reports[seen:])
    return out


def _decoded(path: Path) -> list[tuple[Any, ...]]:
    reports: list[tuple[Any, ...]] = []
    return _read(read_source(path, lambda *r: reports.append(r)), reports)


def _cached(cache: ReplayCache, path: Path) -> list[tuple[Any, ...]]:
    reports: list[tuple[Any, ...]] = []
    return _read(cache.events(path, lambda *r: reports.append(r)), reports)


def _only_entry(cache: ReplayCache) -> Path:
    entries = cache.entries()
    assert len(entries) == 1, entries
    return entries[0]


def _bad_capture(path: Path) -> None:
    """The sample's first 300 lines with bad ones among them, and one at the very end."""
    with gzip.open(SAMPLE, "rb") as f:
        lines = f.read().splitlines()[:300]
    lines.insert(40, b"not a timestamp")
    lines.insert(80, lines[79].split(b" ", 1)[0] + b' {"stream": "btcusdt@depth", "data": [}')
    ts = int(lines[120].split(b" ", 1)[0])
    lines.insert(121, str(ts - 10**9).encode() + b" " + lines[120].split(b" ", 1)[1])
    lines.append(b"garbage at the end")
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_replay_cache_sample_cold_then_warm_gives_decoded_events(tmp_path):
    cache = ReplayCache(tmp_path / "cache")
    want = _decoded(SAMPLE)
    assert len(want) > 700
    assert _cached(cache, SAMPLE) == want  # cold: decoded and written on the way
    entry = _only_entry(cache)
    assert entry.name.endswith(f"-{rc.decoder_version()}.mlrc")
    assert read_footer(entry) == (len(want), True)
    before = entry.stat().st_mtime_ns
    assert _cached(cache, SAMPLE) == want  # warm: read from the cache, not written again
    assert entry.stat().st_mtime_ns == before


@pytest.mark.parametrize("name", FORMATS)
def test_replay_cache_every_format_reads_back_identical_events(name, shared_data, tmp_path):
    path = shared_data / name
    cache = ReplayCache(tmp_path)
    want = _decoded(path)
    assert want
    assert _cached(cache, path) == want
    assert read_footer(_only_entry(cache)) == (len(want), True)
    assert _cached(cache, path) == want


def test_replay_cache_bad_lines_reports_same_lines_and_order(tmp_path):
    path = tmp_path / "bad.capture"
    _bad_capture(path)
    want = _decoded(path)
    reports = [x for x in want if x[0] == "report"]
    assert [r[3] for r in reports] == [41, 81, 122, 304]
    assert want[-1][0] == "report"  # a report after the last event is kept too
    cache = ReplayCache(tmp_path / "cache")
    assert _cached(cache, path) == want
    assert _cached(cache, path) == want


def test_replay_cache_same_bytes_elsewhere_share_one_entry_with_own_source(tmp_path):
    cache = ReplayCache(tmp_path / "cache")
    other = tmp_path / "copy.gz"
    other.write_bytes(SAMPLE.read_bytes())
    _cached(cache, SAMPLE)
    assert _cached(cache, other) == _decoded(other)  # events name the file read, not the first
    _only_entry(cache)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_replay_cache_damaged_file_logged_decoded_and_rewritten(damage, tmp_path, caplog):
    path = tmp_path / "bad.capture"
    _bad_capture(path)
    want = _decoded(path)
    cache = ReplayCache(tmp_path / "cache")
    _cached(cache, path)
    entry = _only_entry(cache)
    data = entry.read_bytes()
    if damage == "flip":
        mid = len(data) // 2
        entry.write_bytes(data[:mid] + bytes([data[mid] ^ 0x55]) + data[mid + 1 :])
    elif damage == "truncate":
        entry.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        entry.write_bytes(os.urandom(len(data)))
    with caplog.at_level(logging.WARNING, logger="mlthon.feeds.replay_cache"):
        assert _cached(cache, path) == want
    warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert read_footer(_only_entry(cache)) == (len(want), True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlthon.feeds.replay_cache"):
        assert _cached(cache, path) == want
    assert not caplog.records


def test_replay_cache_stopped_early_keeps_prefix_then_completes(tmp_path):
    path = tmp_path / "bad.capture"
    _bad_capture(path)
    want = _decoded(path)
    cache = ReplayCache(tmp_path / "cache")
    reports: list[tuple[Any, ...]] = []
    it = cache.events(path, lambda *r: reports.append(r))
    first = [_event(next(it)) for _ in range(30)]
    it.close()  # type: ignore[attr-defined]
    assert first == [x for x in want if x[0] != "report"][:30]
    assert len(reports) == 2  # the lines before the 30th event
    items, complete = read_footer(_only_entry(cache)) or (0, True)
    assert not complete and items == 32
    # A shorter run is served from the prefix alone; a longer one decodes the rest.
    reports.clear()
    it = cache.events(path, lambda *r: reports.append(r))
    assert [_event(next(it)) for _ in range(20)] == first[:20]
    it.close()  # type: ignore[attr-defined]
    assert read_footer(_only_entry(cache)) == (items, False)
    assert _cached(cache, path) == want
    assert read_footer(_only_entry(cache)) == (len(want), True)
    assert _cached(cache, path) == want


def test_replay_cache_unwritable_dir_warns_once_and_replays(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    cache = ReplayCache(blocker / "cache")
    want = _decoded(SAMPLE)
    rc._warned.clear()
    with caplog.at_level(logging.WARNING, logger="mlthon.feeds.replay_cache"):
        assert _cached(cache, SAMPLE) == want
        assert _cached(cache, SAMPLE) == want
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1
    assert cache.entries() == []


def test_replay_cache_stale_decoder_version_replaced(tmp_path, monkeypatch):
    cache = ReplayCache(tmp_path)
    _cached(cache, SAMPLE)
    old = _only_entry(cache)
    monkeypatch.setattr(rc, "_version", "0123456789abcdef")  # as if a decoder had changed
    assert _cached(cache, SAMPLE) == _decoded(SAMPLE)
    new = _only_entry(cache)
    assert new != old and new.name.endswith("-0123456789abcdef.mlrc")


def test_replay_cache_decoder_version_covers_every_decoder_module():
    # Every module that reading a recording imports (in a fresh interpreter) is hashed into the
    # key, so an edit to any of them makes the cache decode again instead of serving stale events.
    code = (
        "import sys, mlthon.feeds.readers\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
        " if n.startswith('mlthon.feeds.') and getattr(m, '__file__', None)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    hashed = {p.resolve() for p in decoder_files()}
    missing = [p for p in out if Path(p).resolve() not in hashed]
    assert not missing
    assert (REPO / "mlthon" / "feeds" / "replay_cache.py").resolve() in hashed


def test_replay_cache_processes_at_once_write_one_valid_entry(tmp_path):
    # Cold cache, several processes replaying the same recording at the same time (a sweep):
    # each gets every event, and one complete entry is left, with no temporary file.
    cache_dir = tmp_path / "cache"
    code = (
        "import hashlib, sys\n"
        "from mlthon.feeds.replay_cache import ReplayCache\n"
        "h = hashlib.sha256()\n"
        "for se in ReplayCache(sys.argv[1]).events(sys.argv[2], lambda *r: None):\n"
        "    h.update(repr((se.ts, se.line, type(se.event).__name__)).encode())\n"
        "print(h.hexdigest())\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cache_dir), str(SAMPLE)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    digests = {p.communicate(timeout=100)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(digests) == 1
    entry = _only_entry(ReplayCache(cache_dir))
    assert read_footer(entry) == (len(_decoded(SAMPLE)), True)
    assert sorted(p.name for p in cache_dir.iterdir()) == [entry.name, "digests"]
    # The source's digest, kept by its stat (one file: no temporary left either).
    assert [p.suffix for p in (cache_dir / "digests").iterdir()] == [".txt"]


def test_replay_cache_clear_removes_entries(tmp_path):
    cache = ReplayCache(tmp_path)
    _cached(cache, SAMPLE)
    (tmp_path / ".left.123.tmp").write_bytes(b"x")
    assert cache.clear() == 2
    assert list(tmp_path.iterdir()) == []


def test_replay_stopped_at_end_caches_prefix_and_replays_identically(tmp_path):
    insts = load_instruments()
    full = list(replay_file(SAMPLE, insts, cache=False))
    end = full[len(full) // 3].ts
    want = [m for m in full if m.ts <= end]
    cache = ReplayCache(tmp_path)
    got = list(replay_file(SAMPLE, insts, end_ns=end, cache=cache))
    assert got == want
    items, complete = read_footer(_only_entry(cache)) or (0, True)
    assert not complete and items > 0
    assert list(replay_file(SAMPLE, insts, end_ns=end, cache=cache)) == want
    assert list(replay_file(SAMPLE, insts, cache=cache)) == full
    assert read_footer(_only_entry(cache)) == (len(_decoded(SAMPLE)), True)
    assert list(replay_file(SAMPLE, insts, cache=cache)) == full


def test_replay_default_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTHON_CACHE_DIR", str(tmp_path / "mine"))
    assert ReplayCache().dir == tmp_path / "mine"
    monkeypatch.delenv("MLTHON_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ReplayCache().dir == tmp_path / "xdg" / "mlthon" / "replay"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ReplayCache().dir == tmp_path / "home" / ".cache" / "mlthon" / "replay"


def test_replay_cache_file_changed_while_decoded_not_cached(tmp_path):
    path = tmp_path / "growing.capture"
    _bad_capture(path)
    cache = ReplayCache(tmp_path / "cache")
    it = cache.events(path, lambda *r: None)
    next(it)
    with path.open("ab") as f:  # a recording still being written
        f.write(b"more\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    for _ in it:
        pass
    assert cache.entries() == []
    assert _cached(cache, path) == _decoded(path)  # the bytes as they are now are cached
    assert read_footer(_only_entry(cache)) == (len(_decoded(path)), True)


def test_source_digest_is_kept_by_stat_and_a_changed_file_is_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hashing a recording costs about what reading its cache does: the digest is kept with the
    # file's stat and reused while it is unchanged; any change of the file (its ctime moves even
    # when its size and mtime are put back) hashes it again and reads a new entry.
    src = tmp_path / "rec.gz"
    src.write_bytes(SAMPLE.read_bytes())
    old = time.time_ns() - 10_000_000_000
    os.utime(src, ns=(old, old))
    calls: list[str] = []
    real = rc.file_sha256

    def counting(path: str | Path) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(rc, "file_sha256", counting)
    monkeypatch.setattr(rc, "_RACY_NS", 0)  # its ctime is now: recorded all the same here
    monkeypatch.setattr(rc, "_digests", {})
    cache = ReplayCache(tmp_path / "cache")
    first = list(cache.events(src, lambda *r: None))
    assert len(calls) == 1
    assert [p.suffix for p in (tmp_path / "cache" / "digests").iterdir()] == [".txt"]
    monkeypatch.setattr(rc, "_digests", {})  # a new process: the digest comes from the file
    assert [se.ts for se in cache.events(src, lambda *r: None)] == [se.ts for se in first]
    assert len(calls) == 1
    # Written again with its size and mtime put back: its ctime gives it away, so it is hashed
    # again (the same bytes here: the same entry).
    src.write_bytes(src.read_bytes())
    os.utime(src, ns=(old, old))
    list(cache.events(src, lambda *r: None))
    assert len(calls) == 2
    assert len(cache.entries()) == 1
    # A bad index file is ignored, not trusted.
    for p in (tmp_path / "cache" / "digests").iterdir():
        p.write_text("garbage")
    monkeypatch.setattr(rc, "_digests", {})
    list(cache.events(src, lambda *r: None))
    assert len(calls) == 3
    # clear() removes the digests with the entries.
    cache.clear()
    assert not (tmp_path / "cache" / "digests").exists()
