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
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
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


def request_key(req: Msg, kind: str) -> str:
    """The identity of a request: its kind and a digest of its exact bytes.

    A QoS 1 redelivery repeats the bytes; a new request differs at least in its ``ts``.
    """
    return f"{kind}:{hashlib.sha256(encode(req)).hexdigest()}"


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
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a committed transaction survives a process crash (kill -9); only a power
            # cut or an OS crash may lose the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
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
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the journal: {exc}", source=self.path) from exc

    def close(self) -> None:
        """Commit what is pending and close the file."""
        self.commit()
        self._db.close()

    # --- transactions ----------------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        """Make everything written since the last commit durable."""
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    # --- meta ------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value of the meta table."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the meta table (in the current transaction)."""
        self._begin()
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta_int(self, key: str) -> int:
        """An integer of the meta table (0 if missing)."""
        value = self.meta(key)
        return int(value) if value is not None else 0

    # --- requests --------------------------------------------------------------------------------
    def has_request(self, req_key: str) -> bool:
        """Whether a request with this identity was already journaled."""
        row = self._db.execute("SELECT 1 FROM requests WHERE req_key = ?", (req_key,)).fetchone()
        return row is not None

    def add_request(self, req_key: str, strat: str, kind: str, msg: Msg, ts: int) -> int | None:
        """Journal an arriving request (in the current transaction: commit it before the
        broker is told the request was received); None if its key was already there."""
        self._begin()
        cur = self._db.execute(
            "INSERT OR IGNORE INTO requests (ts, strat, kind, cl_id, req_key, payload)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (ts, strat, kind, getattr(msg, "cl_id", None), req_key, encode(msg)),
        )
        return cur.lastrowid if cur.rowcount else None

    def request_done(self, seq: int) -> None:
        """Mark a request handled (in the current transaction)."""
        self._begin()
        self._db.execute("UPDATE requests SET done = 1 WHERE seq = ?", (seq,))

    def pending_requests(self) -> list[JournaledRequest]:
        """Requests journaled but never handled, in arrival order."""
        rows = self._db.execute(
            "SELECT seq, strat, kind, payload FROM requests WHERE done = 0 ORDER BY seq"
        ).fetchall()
        return [JournaledRequest(r[0], r[1], r[2], decode(_TOPIC, r[3])) for r in rows]

    # --- reports ---------------------------------------------------------------------------------
    def add_report(self, strat: str, msg: Msg, ts: int) -> int | None:
        """Journal a report (in the current transaction); None for an execution already there."""
        self._begin()
        cur = self._db.execute(
            "INSERT OR IGNORE INTO reports (ts, strat, kind, cl_id, exec_id, payload)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                ts,
                strat,
                type(msg).__name__,
                getattr(msg, "cl_id", None),
                getattr(msg, "exec_id", None),
                encode(msg),
            ),
        )
        return cur.lastrowid if cur.rowcount else None

    def reports(self, after: int = 0, kind: str | None = None) -> Iterator[JournaledReport]:
        """Reports with ``seq > after`` (of one message type if ``kind``), in order."""
        sql = "SELECT seq, strat, payload FROM reports WHERE seq > ?"
        args: tuple[Any, ...] = (after,)
        if kind is not None:
            sql += " AND kind = ?"
            args = (after, kind)
        for seq, strat, payload in self._db.execute(sql + " ORDER BY seq", args):
            yield JournaledReport(seq, strat, decode(_TOPIC, payload))

    def last_report_seq(self) -> int:
        """The highest report sequence number (0 if none)."""
        row = self._db.execute("SELECT MAX(seq) FROM reports").fetchone()
        return int(row[0] or 0)

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
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO orders (strat, cl_id, state) VALUES (?, ?, ?)",
            (strat, cl_id, _json(state)),
        )

    def save_account(self, strat: str, state: Mapping[str, Any]) -> None:
        """Store an account's state (in the current transaction)."""
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO accounts (strat, state) VALUES (?, ?)",
            (strat, _json(state)),
        )

    def drop_order(self, strat: str, cl_id: str) -> None:
        """Forget an order (one rejected before it existed; in the current transaction)."""
        self._begin()
        self._db.execute("DELETE FROM orders WHERE strat = ? AND cl_id = ?", (strat, cl_id))

    def has_order(self, strat: str, cl_id: str) -> bool:
        """Whether ``(strat, cl_id)`` was ever stored (client order ids stay used)."""
        row = self._db.execute(
            "SELECT 1 FROM orders WHERE strat = ? AND cl_id = ?", (strat, cl_id)
        ).fetchone()
        return row is not None

    def exec_ids(self) -> set[str]:
        """Every execution id reported so far."""
        rows = self._db.execute("SELECT exec_id FROM reports WHERE exec_id IS NOT NULL")
        return {str(r[0]) for r in rows}

    def orders(self) -> list[dict[str, Any]]:
        """Every stored order state, in creation order."""
        rows = self._db.execute("SELECT state FROM orders ORDER BY rowid").fetchall()
        return [json.loads(r[0]) for r in rows]

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every stored account state by strategy."""
        rows = self._db.execute("SELECT strat, state FROM accounts").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}
