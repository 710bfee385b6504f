"""What the operator last asked of each strategy (running or stopped), kept in a small file.

The control service answers every login with the state the operator wants, so a strategy an
operator stopped stays stopped across re-logins, broker restarts and restarts of the control
service itself. The file is JSON, rewritten whole on every change (a temporary file beside it,
flushed, then renamed over it: a crash leaves the old or the new version, never half of one)::

    {"version": 1,
     "strategies": {"demo_mm": {"intent": "stopped", "params": "", "by": "cli:alice",
                                "ts": 1700000000000000000}},
     "risk": {"desk": {"state": "Halted", "reason": "desk stop", "by": "tg:42", "ts": ...},
              "strategies": {"demo_mm": {"state": "ReduceOnly", ...}}}}

A strategy the file does not name follows its config (``auto_start``). The ``risk`` part holds
the trading states (``docs/risk.md``) the operator set, or a strategy's risk layer moved to by
itself (a loss limit: ``by`` is ``risk layer``), for the desk and per strategy; a file without it
(an older one) holds none: every strategy is ``Active``.
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
from mlthon.basics.mlt_enum import TradingState

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


@attrs.frozen
class RiskIntent:
    """A trading state set for a strategy or the desk.

    Attributes:
        state: the state.
        reason: why (``operator: desk stop``, the limit that halted it).
        by: who (``cli:alice``, ``tg:123``, ``risk layer``).
        ts: when (ns since the epoch).
    """

    state: TradingState
    reason: str = ""
    by: str = ""
    ts: int = 0

    def to_json(self) -> dict[str, Any]:
        """The file's form (the state by name)."""
        return {"state": self.state.name, "reason": self.reason, "by": self.by, "ts": self.ts}

    @classmethod
    def from_json(cls, entry: Any) -> RiskIntent:
        """Read the file's form.

        Raises:
            TypeError: not an object with a state name.
            ValueError: not a valid state.
        """
        if not isinstance(entry, dict) or not isinstance(entry.get("state"), str):
            raise TypeError("want an object with a state name")
        return cls(
            state=TradingState.from_name(entry["state"]),
            reason=str(entry.get("reason", "")),
            by=str(entry.get("by", "")),
            ts=int(entry.get("ts", 0)),
        )


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
        #: The trading state of the desk (None: never set).
        self.desk_risk: RiskIntent | None = None
        #: The trading states by strategy.
        self.risk: dict[str, RiskIntent] = {}
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
        self._load_risk(data.get("risk", {}), src)
        return out

    def _load_risk(self, risk: Any, src: str) -> None:
        if not isinstance(risk, dict):
            raise ConfigError("risk must be an object", source=src, key="risk")
        try:
            if risk.get("desk") is not None:
                self.desk_risk = RiskIntent.from_json(risk["desk"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad entry: {exc}", source=src, key="risk.desk") from exc
        table = risk.get("strategies", {})
        if not isinstance(table, dict):
            raise ConfigError("must be an object", source=src, key="risk.strategies")
        for name, entry in table.items():
            try:
                self.risk[name] = RiskIntent.from_json(entry)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"bad entry {entry!r}: {exc}", source=src, key=f"risk.strategies.{name}"
                ) from exc

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

    def set_risk(self, strat: str | None, intent: RiskIntent) -> None:
        """Record the trading state of ``strat`` (None: the desk's) and write the file.

        Raises:
            OSError: the file could not be written (the state is kept in memory all the same).
        """
        if strat is None:
            self.desk_risk = intent
        else:
            self.risk[strat] = intent
        if self.path is not None:
            self._write()

    def _write(self) -> None:
        assert self.path is not None
        doc: dict[str, Any] = {
            "version": FILE_VERSION,
            "strategies": {name: attrs.asdict(i) for name, i in sorted(self.intents.items())},
        }
        if self.desk_risk is not None or self.risk:
            doc["risk"] = {
                "desk": None if self.desk_risk is None else self.desk_risk.to_json(),
                "strategies": {name: r.to_json() for name, r in sorted(self.risk.items())},
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
