"""The order journal of a gateway: an SQLite database (WAL) of every request and report.

Used by the simulated gateway (``mlthon.gateways.sim``) and the live venue gateways
(``mlthon.gateways.live``). The gateway writes a request when it arrives (before it is handled) and
every report it produces (ack, reject, execution, cancel, info) together with the new state of the
orders and accounts the report changed, in one transaction committed **before** the report is
published. A process killed at any instant therefore leaves a journal from which a restarted gateway
finds:

* its open and closed orders (client ids stay used: ``DuplicateClientId`` after a restart);
* its accounts (positions, balances) and id counters (execution ids are never reused);
* requests that arrived but were never handled (answered on restart);
* reports committed but perhaps never published (``seq`` above the ``sent`` watermark, which the
  process advances once the broker has acknowledged them): published again on restart.

Execution ids are unique in the ``reports`` table, so a fill is recorded once (idempotent).

Tables (``docs/reliability.md`` has the long form)::

    meta(key PRIMARY KEY, value)                     schema, sent watermark, id counters
    requests(seq, ts, strat, kind, cl_id, req_key UNIQUE, payload, done)
    reports(seq, ts, strat, kind, cl_id, exec_id UNIQUE, payload)
    orders(strat, cl_id, state JSON, PRIMARY KEY (strat, cl_id))
    accounts(strat PRIMARY KEY, state JSON)

``payload`` is the bus encoding of the message (``mlthon.infra.bus.codec``).

Writes are grouped: the rows of a transaction wait in memory and reach SQLite at :meth:`commit`,
each table in one ``executemany`` (an order or account saved several times in a transaction is
written once, with its last state; a request handled in the transaction that journaled it is
written ``done`` at once). Sequence numbers are given by the journal as the rows are added, so
callers see no difference; any read flushes what waits first. An execution is the exception: it
is inserted at once, so that a repeated ``exec_id`` is known when :meth:`OrderJournal.add_report`
returns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import msgspec

from mlthon.basics.errors import ConfigError
from mlthon.infra.bus.codec import decode, encode
from mlthon.infra.bus.messages import Msg

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: The WAL is copied back into the database by :meth:`OrderJournal.checkpoint` (off the loop's
#: thread); SQLite does it itself, in the committing thread, only past this many pages.
AUTO_CHECKPOINT_PAGES = 10_000
_ENC = msgspec.json.Encoder()
_TOPIC = "journal"  # codec.decode wants a topic; it is only used in error messages

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS requests (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER,"
    " strat TEXT NOT NULL, kind TEXT NOT NULL, cl_id TEXT, req_key TEXT NOT NULL UNIQUE,"
    " payload BLOB NOT NULL, done INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER,"
    " strat TEXT NOT NULL, kind TEXT NOT NULL, cl_id TEXT, exec_id TEXT UNIQUE,"
    " payload BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (strat TEXT NOT NULL, cl_id TEXT NOT NULL,"
    " state TEXT NOT NULL, PRIMARY KEY (strat, cl_id))",
    "CREATE TABLE IF NOT EXISTS accounts (strat TEXT PRIMARY KEY, state TEXT NOT NULL)",
)


def _json(state: Mapping[str, Any]) -> str:
    return _ENC.encode(state).decode()


def request_key(req: Msg, kind: str, payload: bytes | None = None) -> str:
    """The identity of a request: its send time, its kind and a digest of its exact bytes
    (``payload``: its encoding, if the caller has it already).

    A QoS 1 redelivery repeats the bytes; a new request differs at least in its ``ts``. The
    send time leads (hexadecimal, fixed width) so that the journal's index of keys grows at its
    end: a random key would touch a random page of the index per request.
    """
    raw = encode(req) if payload is None else payload
    ts = max(getattr(req, "ts", 0), 0)
    return f"{ts:016x}:{kind}:{hashlib.blake2b(raw, digest_size=16).hexdigest()}"


def legacy_request_key(req: Msg, kind: str, payload: bytes | None = None) -> str:
    """The identity journals written before the send time led the key gave a request (its kind
    and a SHA-256 of its bytes); looked up for requests sent before the gateway started."""
    raw = encode(req) if payload is None else payload
    return f"{kind}:{hashlib.sha256(raw).hexdigest()}"


@attrs.frozen
class JournaledRequest:
    """A request read back from the journal."""

    seq: int
    strat: str
    kind: str
    msg: Msg


@attrs.frozen
class JournaledReport:
    """A report read back from the journal."""

    seq: int
    strat: str
    msg: Msg


class OrderJournal:
    """One gateway's journal file.

    Args:
        path: the SQLite file (created with its tables if missing).

    Raises:
        ConfigError: the file cannot be opened, is not a journal, or has another schema version.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._in_tx = False
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        # rows of the transaction in progress, written at commit (see the module docstring)
        self._req_rows: list[list[Any]] = []  # [seq, ts, strat, kind, cl_id, key, payload, done]
        self._req_buffered: dict[int, list[Any]] = {}  # seq -> its row, while buffered
        self._req_keys: set[str] = set()  # keys of the buffered rows
        self._done: list[tuple[int]] = []  # requests written earlier, handled now
        self._rep_rows: list[tuple[Any, ...]] = []
        self._orders: dict[tuple[str, str], str | None] = {}  # None: drop the order
        self._accounts: dict[str, str] = {}
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a committed transaction survives a process crash (kill -9); only a power
            # cut or an OS crash may lose the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
            # A checkpoint copies the WAL into the database and syncs it (milliseconds): left to
            # SQLite (every 1,000 pages) it lands in a commit, on the event loop, several times a
            # second under load. The gateway runs it in a worker thread (checkpoint()).
            self._db.execute(f"PRAGMA wal_autocheckpoint={AUTO_CHECKPOINT_PAGES}")
            self._db.execute("PRAGMA journal_size_limit=67108864")
            for stmt in _DDL:
                self._db.execute(stmt)
            version = self.meta("schema")
            if version is None:
                self.set_meta("schema", str(SCHEMA_VERSION))
                self.commit()
            elif version != str(SCHEMA_VERSION):
                raise ConfigError(
                    f"journal schema {version}, this mlthon writes {SCHEMA_VERSION}",
                    source=self.path,
                )
            self._req_seq = self._last_seq("requests")
            self._rep_seq = self._last_seq("reports")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the journal: {exc}", source=self.path) from exc

    def close(self) -> None:
        """Commit what is pending and close the file."""
        self.commit()
        self._db.close()
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None

    def checkpoint(self) -> None:
        """Copy the committed WAL pages into the database file (SQLite's passive checkpoint:
        it waits for no reader or writer).

        Safe to call from a worker thread while the journal is written (it uses a connection of
        its own; calls are serialised), which keeps the file sync off the event loop.

        Raises:
            sqlite3.Error: the file cannot be checkpointed (logged by the caller).
        """
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    # --- transactions ----------------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        """Make everything written since the last commit durable."""
        self._write_rows()
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    def _last_seq(self, table: str) -> int:
        # AUTOINCREMENT's counter: a sequence number is never given twice, even after a delete
        row = self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
        ).fetchone()
        last = self._db.execute(f"SELECT MAX(seq) FROM {table}").fetchone()  # noqa: S608
        return max(int(row[0]) if row else 0, int(last[0] or 0))

    def _write_rows(self) -> None:
        """Hand the rows that wait to SQLite (in the current transaction)."""
        db = self._db
        if self._req_rows:
            self._begin()
            db.executemany(
                "INSERT OR IGNORE INTO requests (seq, ts, strat, kind, cl_id, req_key, payload,"
                " done) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._req_rows,
            )
            self._req_rows = []
            self._req_buffered.clear()
            self._req_keys.clear()
        if self._done:
            self._begin()
            db.executemany("UPDATE requests SET done = 1 WHERE seq = ?", self._done)
            self._done = []
        if self._rep_rows:
            self._begin()
            db.executemany(
                "INSERT INTO reports (seq, ts, strat, kind, cl_id, exec_id, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                self._rep_rows,
            )
            self._rep_rows = []
        if self._orders:
            self._begin()
            orders = self._orders
            self._orders = {}
            # upserts change a row where it is (REPLACE would delete it and append it again,
            # touching the table and its index twice)
            db.executemany(
                "INSERT INTO orders (strat, cl_id, state) VALUES (?, ?, ?)"
                " ON CONFLICT (strat, cl_id) DO UPDATE SET state = excluded.state",
                [(strat, cl_id, state) for (strat, cl_id), state in orders.items() if state],
            )
            dropped = [key for key, state in orders.items() if state is None]
            if dropped:
                db.executemany("DELETE FROM orders WHERE strat = ? AND cl_id = ?", dropped)
        if self._accounts:
            self._begin()
            db.executemany(
                "INSERT INTO accounts (strat, state) VALUES (?, ?)"
                " ON CONFLICT (strat) DO UPDATE SET state = excluded.state",
                list(self._accounts.items()),
            )
            self._accounts = {}

    # --- meta ------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value of the meta table."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the meta table (in the current transaction)."""
        self.set_meta_many({key: value})

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        """Set values of the meta table (in the current transaction), in one statement."""
        self._begin()
        self._db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def meta_int(self, key: str) -> int:
        """An integer of the meta table (0 if missing)."""
        value = self.meta(key)
        return int(value) if value is not None else 0

    # --- requests --------------------------------------------------------------------------------
    def has_request(self, req_key: str, legacy_key: str = "") -> bool:
        """Whether a request with this identity (or, from an older journal, ``legacy_key``) was
        already journaled."""
        if req_key in self._req_keys:
            return True
        sql = "SELECT 1 FROM requests WHERE req_key = ?"
        if self._db.execute(sql, (req_key,)).fetchone() is not None:
            return True
        return bool(legacy_key) and self._db.execute(sql, (legacy_key,)).fetchone() is not None

    def add_request(
        self, req_key: str, strat: str, kind: str, msg: Msg, ts: int, payload: bytes | None = None
    ) -> int | None:
        """Journal an arriving request (``payload``: its encoding, if the caller has it) in the
        current transaction: commit it before the broker is told the request was received.
        Returns its sequence number; None if a request with this key waits in this transaction
        already (the caller checks :meth:`has_request` for requests that may be older)."""
        if req_key in self._req_keys:
            return None
        self._req_seq += 1
        seq = self._req_seq
        row = [
            seq,
            ts,
            strat,
            kind,
            getattr(msg, "cl_id", None),
            req_key,
            encode(msg) if payload is None else payload,
            0,
        ]
        self._req_rows.append(row)
        self._req_buffered[seq] = row
        self._req_keys.add(req_key)
        return seq

    def request_done(self, seq: int) -> None:
        """Mark a request handled (in the current transaction)."""
        row = self._req_buffered.get(seq)
        if row is not None:
            row[7] = 1
        else:
            self._done.append((seq,))

    def pending_requests(self) -> list[JournaledRequest]:
        """Requests journaled but never handled, in arrival order."""
        self._write_rows()
        rows = self._db.execute(
            "SELECT seq, strat, kind, payload FROM requests WHERE done = 0 ORDER BY seq"
        ).fetchall()
        return [JournaledRequest(r[0], r[1], r[2], decode(_TOPIC, r[3])) for r in rows]

    # --- reports ---------------------------------------------------------------------------------
    def add_report(self, strat: str, msg: Msg, ts: int) -> int | None:
        """Journal a report (in the current transaction); None for an execution already there."""
        exec_id = getattr(msg, "exec_id", None)
        row = (
            self._rep_seq + 1,
            ts,
            strat,
            type(msg).__name__,
            getattr(msg, "cl_id", None),
            exec_id,
            encode(msg),
        )
        if exec_id is not None:  # at once: a repeated execution must be known now
            self._begin()
            cur = self._db.execute(
                "INSERT OR IGNORE INTO reports (seq, ts, strat, kind, cl_id, exec_id, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if not cur.rowcount:
                return None
        else:
            self._rep_rows.append(row)
        self._rep_seq += 1
        return self._rep_seq

    def reports(self, after: int = 0, kind: str | None = None) -> Iterator[JournaledReport]:
        """Reports with ``seq > after`` (of one message type if ``kind``), in order."""
        self._write_rows()
        sql = "SELECT seq, strat, payload FROM reports WHERE seq > ?"
        args: tuple[Any, ...] = (after,)
        if kind is not None:
            sql += " AND kind = ?"
            args = (after, kind)
        for seq, strat, payload in self._db.execute(sql + " ORDER BY seq", args):
            yield JournaledReport(seq, strat, decode(_TOPIC, payload))

    def last_report_seq(self) -> int:
        """The highest report sequence number (0 if none)."""
        return self._rep_seq

    @property
    def sent_seq(self) -> int:
        """Reports up to this sequence number are known to have reached the broker."""
        return self.meta_int("sent")

    def mark_sent(self, seq: int) -> None:
        """Advance the sent watermark to ``seq`` and commit."""
        if seq > self.sent_seq:
            self.set_meta("sent", str(seq))
            self.commit()

    # --- state -----------------------------------------------------------------------------------
    def save_order(self, strat: str, cl_id: str, state: Mapping[str, Any]) -> None:
        """Store an order's state (in the current transaction)."""
        self._orders[(strat, cl_id)] = _json(state)

    def save_account(self, strat: str, state: Mapping[str, Any]) -> None:
        """Store an account's state (in the current transaction)."""
        self._accounts[strat] = _json(state)

    def drop_order(self, strat: str, cl_id: str) -> None:
        """Forget an order (one rejected before it existed; in the current transaction)."""
        self._orders[(strat, cl_id)] = None

    def has_order(self, strat: str, cl_id: str) -> bool:
        """Whether ``(strat, cl_id)`` was ever stored (client order ids stay used)."""
        waiting = self._orders.get((strat, cl_id), "")
        if waiting != "":
            return waiting is not None
        row = self._db.execute(
            "SELECT 1 FROM orders WHERE strat = ? AND cl_id = ?", (strat, cl_id)
        ).fetchone()
        return row is not None

    def exec_ids(self) -> set[str]:
        """Every execution id reported so far."""
        self._write_rows()
        rows = self._db.execute("SELECT exec_id FROM reports WHERE exec_id IS NOT NULL")
        return {str(r[0]) for r in rows}

    def orders(self) -> list[dict[str, Any]]:
        """Every stored order state, in creation order."""
        self._write_rows()
        rows = self._db.execute("SELECT state FROM orders ORDER BY rowid").fetchall()
        return [json.loads(r[0]) for r in rows]

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every stored account state by strategy."""
        self._write_rows()
        rows = self._db.execute("SELECT strat, state FROM accounts").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}
