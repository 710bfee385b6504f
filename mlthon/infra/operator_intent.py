"""What the operator last asked of each strategy (running or stopped), kept in a small file.

The control service answers every login with the state the operator wants, so a strategy an
operator stopped stays stopped across re-logins, broker restarts and restarts of the control
service itself. The file is JSON, rewritten whole on every change (a temporary file beside it,
flushed, then renamed over it: a crash leaves the old or the new version, never half of one)::

    {"version": 1,
     "strategies": {"demo_mm": {"intent": "stopped", "params": "", "by": "cli:alice",
                                "ts": 1700000000000000000}}}

A strategy the file does not name follows its config (``auto_start``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.errors import ConfigError

log = logging.getLogger(__name__)

RUNNING = "running"
STOPPED = "stopped"
INTENTS = (RUNNING, STOPPED)
FILE_VERSION = 1


@attrs.frozen
class OperatorIntent:
    """One strategy's wanted state.

    Attributes:
        intent: ``running`` or ``stopped``.
        params: the text of the last ``start`` (given to ``on_start`` when it logs in again).
        by: who asked (``cli:alice``, ``tg:123``; ``config`` for the config's default).
        ts: when (ns since the epoch; 0 for the config's default).
    """

    intent: str
    params: str = ""
    by: str = ""
    ts: int = 0

    def __attrs_post_init__(self) -> None:
        if self.intent not in INTENTS:
            raise ValueError(f"intent must be one of {INTENTS}, got {self.intent!r}")

    @property
    def running(self) -> bool:
        """True when the operator wants the strategy to run."""
        return self.intent == RUNNING


class IntentFile:
    """The operator's intents, persisted in ``path`` (None: kept in memory only).

    Args:
        path: the JSON file (created on the first change; its folder too).

    Raises:
        ConfigError: the file exists but is not a valid intent file (it names the file; fix or
            remove it: the control service does not guess what the operator wanted).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.intents: dict[str, OperatorIntent] = self._load()

    def _load(self) -> dict[str, OperatorIntent]:
        if self.path is None or not self.path.exists():
            return {}
        src = str(self.path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the operator's intents: {exc}", source=src) from exc
        table = data.get("strategies") if isinstance(data, dict) else None
        if not isinstance(table, dict) or data.get("version") != FILE_VERSION:
            raise ConfigError(
                f'not an intent file (want {{"version": {FILE_VERSION}, "strategies": {{...}}}})',
                source=src,
            )
        out = {}
        for name, entry in table.items():
            try:
                out[name] = OperatorIntent(
                    intent=entry["intent"],
                    params=str(entry.get("params", "")),
                    by=str(entry.get("by", "")),
                    ts=int(entry.get("ts", 0)),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ConfigError(f"bad entry {entry!r}: {exc}", source=src, key=name) from exc
        return out

    def get(self, strat: str) -> OperatorIntent | None:
        """The recorded intent of ``strat`` (None: never recorded)."""
        return self.intents.get(strat)

    def set(self, strat: str, intent: OperatorIntent) -> None:
        """Record ``intent`` for ``strat`` and write the file.

        Raises:
            OSError: the file could not be written (the intent is kept in memory all the same).
        """
        self.intents[strat] = intent
        if self.path is not None:
            self._write()

    def _write(self) -> None:
        assert self.path is not None
        doc: dict[str, Any] = {
            "version": FILE_VERSION,
            "strategies": {name: attrs.asdict(i) for name, i in sorted(self.intents.items())},
        }
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename itself is durable once the folder is synced (POSIX; elsewhere a no-op).
        with contextlib.suppress(OSError):
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
