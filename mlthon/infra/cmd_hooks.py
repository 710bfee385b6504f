"""Command hooks: names a strategy registers with ``add_cmd_hook``, run by commands from the CLI
(``mlthon cmd``) or Telegram. Names are case-insensitive; parameters are a list of strings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from mlthon.basics.errors import InvalidArgument, InvalidArgumentType

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")

# Names the control service handles itself; a strategy cannot register them.
RESERVED = frozenset({"start", "stop", "params", "status", "strategies", "help"})


@attrs.frozen
class CmdHookEntry:
    """A registered hook."""

    name: str
    callback: Callable[[list[str]], Any]
    help: str
    dangerous: bool


def _help_of(fn: Callable[..., Any]) -> str:
    doc = getattr(fn, "__doc__", None) or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class CmdHookRegistry:
    """The hooks of one strategy."""

    def __init__(self) -> None:
        self._hooks: dict[str, CmdHookEntry] = {}

    def add(
        self,
        name: object,
        callback: object,
        *,
        help: str | None = None,
        dangerous: bool = False,
    ) -> CmdHookEntry:
        """Register ``callback`` under ``name`` (case-insensitive), replacing any earlier one.

        Raises:
            InvalidArgument: the name is not a word of letters, digits and '_' starting with a
                letter (at most 32), or is a built-in command; the callback is not callable.
        """
        if not isinstance(name, str):
            raise InvalidArgumentType("cmd_name_str", name, "must be a str")
        if not _NAME_RE.match(name):
            raise InvalidArgument(
                "cmd_name_str", name, "must be a letter then letters, digits or '_' (max 32)"
            )
        key = name.lower()
        if key in RESERVED:
            raise InvalidArgument(
                "cmd_name_str", name, f"is a built-in command ({sorted(RESERVED)})"
            )
        if not callable(callback):
            raise InvalidArgumentType("callback_func", callback, "must be callable")
        entry = CmdHookEntry(
            key, callback, help if help is not None else _help_of(callback), dangerous
        )
        self._hooks[key] = entry
        return entry

    def get(self, name: str) -> CmdHookEntry | None:
        """The hook registered under ``name`` (any case), if any."""
        return self._hooks.get(name.lower())

    def entries(self) -> list[CmdHookEntry]:
        """Every hook, by name."""
        return [self._hooks[k] for k in sorted(self._hooks)]

    def __len__(self) -> int:
        return len(self._hooks)
