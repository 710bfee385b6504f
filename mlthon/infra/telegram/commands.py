"""Commands: parsing a message's text, resolving it to a request, rendering results. Pure.

Built-ins: ``/start <strategy> [params…]``, ``/stop <strategy>``, ``/params <strategy> key=value…``,
``/status [strategy]``, ``/strategies``, ``/risk <strategy|desk> [state] [why…]`` (the trading
state: ``docs/risk.md``; setting one asks for a confirmation) and ``/help``. Every hook a
strategy registered is ``/<hook> <strategy> [args…]``, or ``/<hook> [args…]`` when exactly one
strategy has it. Command
names are case-insensitive; strategy names match exactly, or case-insensitively when that is
unambiguous.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from mlthon.infra.bus.messages import CmdResult, HookInfo, StratStatus
from mlthon.infra.bus.topics import check_name
from mlthon.infra.risk.states import parse_state

BUILTINS: dict[str, str] = {
    "start": "/start <strategy> [params…] — start a strategy",
    "stop": "/stop <strategy> — stop a strategy (asks for confirmation)",
    "params": "/params <strategy> key=value… — update a strategy's parameters",
    "status": "/status [strategy] — state, gateways, feeds, position, orders, PnL",
    "strategies": "/strategies — every strategy and its state",
    "risk": "/risk <strategy|desk> [active|reduceonly|halted] [why…] — show or set the trading "
    "state (setting asks for confirmation)",
    "help": "/help — this list",
}
DANGEROUS_BUILTINS = frozenset({"stop"})
#: The name that addresses every strategy in ``/risk`` (unless a strategy has it).
DESK = "desk"
_MAX_VALUE = 300


@attrs.frozen
class ParsedCommand:
    """A command as typed.

    Attributes:
        name: the lower-case command name, without ``/`` and ``@bot``.
        args: the whitespace-separated arguments.
    """

    name: str
    args: list[str]


@attrs.frozen
class Request:
    """A command resolved against the known strategies, ready to check and send.

    Attributes:
        command: lower-case command name (permissions and audit use it).
        strat: the strategy addressed ("" for ``/strategies``).
        name: the request name sent to the control service (a hook's registered spelling).
        args: the arguments sent.
        is_hook: the command is a strategy hook.
        dangerous: it needs a confirmation.
    """

    command: str
    strat: str
    name: str
    args: list[str]
    is_hook: bool = False
    dangerous: bool = False

    def describe(self) -> str:
        """``/stop alpha`` or ``/flatten alpha BTCUSDT``, for prompts and replies."""
        return " ".join(["/" + self.command, self.strat, *self.args]).strip()


def parse_command(text: str, bot_username: str | None) -> ParsedCommand | None:
    """Parse ``/cmd[@bot] args…``; None when it is not a command or is meant for another bot."""
    words = text.split()
    if not words or not words[0].startswith("/") or len(words[0]) < 2:
        return None
    name, _, tag = words[0][1:].partition("@")
    if tag and bot_username and tag.lower() != bot_username.lower():
        return None
    return ParsedCommand(name.lower(), words[1:])


class Directory:
    """What the bridge knows about the strategies, from their retained :class:`StratStatus`."""

    def __init__(self) -> None:
        self._status: dict[str, StratStatus] = {}

    def update(self, status: StratStatus) -> bool:
        """Record a status; True when the set of hooks changed."""
        old = self._status.get(status.strat)
        self._status[status.strat] = status
        return old is None or old.hooks != status.hooks

    def strategies(self) -> list[str]:
        """Known strategy names, sorted."""
        return sorted(self._status)

    def status(self, strat: str) -> StratStatus | None:
        """The last status of ``strat``."""
        return self._status.get(strat)

    def find_strategy(self, name: str) -> str | None:
        """The known strategy called ``name`` (exactly, or case-insensitively if unique)."""
        if name in self._status:
            return name
        matches = [s for s in self._status if s.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    def holders(self, hook: str) -> dict[str, HookInfo]:
        """Strategy -> its hook called ``hook`` (case-insensitive)."""
        out: dict[str, HookInfo] = {}
        for strat, status in self._status.items():
            for info in status.hooks:
                if info.name.lower() == hook:
                    out[strat] = info
        return out

    def hook_names(self) -> list[str]:
        """Every hook name (lower case), sorted, without those hidden by built-ins."""
        names = {h.name.lower() for s in self._status.values() for h in s.hooks}
        return sorted(names - set(BUILTINS))


def resolve(
    parsed: ParsedCommand, directory: Directory, extra_dangerous: Iterable[str] = ()
) -> Request | str:
    """Turn a parsed command into a :class:`Request`, or return a short usage/error text."""
    name, args = parsed.name, parsed.args
    dangerous_names = set(extra_dangerous)
    if name == "help":
        return Request("help", "", "help", [])
    if name == "strategies":
        return Request("strategies", "", "strategies", [])
    if name == "status":
        if args:
            strat = _strategy_arg(args[0], directory)
            return strat if strat.startswith("Usage") else Request("status", strat, "status", [])
        known = directory.strategies()
        if len(known) == 1:
            return Request("status", known[0], "status", [])
        return Request("strategies", "", "strategies", [])
    if name in ("start", "stop", "params"):
        if not args:
            return f"Usage: {BUILTINS[name].split(' — ')[0]}"
        strat = _strategy_arg(args[0], directory)
        if strat.startswith("Usage"):
            return strat
        rest = args[1:]
        if name == "params":
            bad = [a for a in rest if "=" not in a or a.startswith("=")]
            if not rest or bad:
                return "Usage: /params <strategy> key=value… (each argument is key=value)"
        if name == "stop" and rest:
            return "Usage: /stop <strategy>"
        dangerous = name in DANGEROUS_BUILTINS or name in dangerous_names
        return Request(name, strat, name, rest, dangerous=dangerous)
    if name == "risk":
        return _resolve_risk(args, directory)
    holders = directory.holders(name)
    if not holders:
        return f"Unknown command /{name}. See /help."
    target: str | None = None
    if args:
        found = directory.find_strategy(args[0])
        if found in holders:
            target, args = found, args[1:]
    if target is None:
        if len(holders) > 1:
            return f"Several strategies have /{name} ({', '.join(sorted(holders))}): " + (
                f"use /{name} <strategy> …"
            )
        target = next(iter(holders))
    info = holders[target]
    dangerous = info.dangerous or name in dangerous_names
    return Request(name, target, info.name, list(args), is_hook=True, dangerous=dangerous)


def _resolve_risk(args: list[str], directory: Directory) -> Request | str:
    """``/risk <strategy|desk> [state] [why…]``: showing is harmless, setting is dangerous."""
    if not args:
        return f"Usage: {BUILTINS['risk'].split(' — ')[0]}"
    found = directory.find_strategy(args[0])
    if found is None and args[0].lower() == DESK:
        strat = DESK
    else:
        strat = _strategy_arg(args[0], directory)
        if strat.startswith("Usage"):
            return strat
    rest = args[1:]
    if rest:
        try:
            parse_state(rest[0])
        except ValueError as exc:
            return f"Usage: {BUILTINS['risk'].split(' — ')[0]} ({exc})"
    return Request("risk", strat, "risk", rest, dangerous=bool(rest))


def _strategy_arg(arg: str, directory: Directory) -> str:
    found = directory.find_strategy(arg)
    if found is not None:
        return found
    try:
        return check_name(arg, "strategy")
    except ValueError:
        return f"Usage: {arg!r} is not a strategy name. See /strategies."


def format_help(directory: Directory) -> str:
    """The ``/help`` text: built-ins, then each strategy's hooks with their help."""
    lines = ["Commands:", *(f"• {u}" for u in BUILTINS.values())]
    for strat in directory.strategies():
        status = directory.status(strat)
        hooks = [h for h in status.hooks if h.name.lower() not in BUILTINS] if status else []
        if not hooks:
            continue
        lines.append(f"\n{strat}:")
        for h in sorted(hooks, key=lambda h: h.name.lower()):
            mark = " ⚠ confirm" if h.dangerous else ""
            text = f" — {h.help}" if h.help else ""
            lines.append(f"• /{h.name.lower()} {strat}{text}{mark}")
    return "\n".join(lines)


def format_result(req: Request, result: CmdResult) -> str:
    """The reply for ``req``'s result: a headline, then its detail (JSON rendered as lines)."""
    mark = "✅" if result.ok else "❌"
    head = f"{mark} {req.describe()}"
    if result.ok and req.command == "stop":
        head += ": stopped"
    elif not result.ok:
        head += ": failed"
    detail = render_detail(result.detail, strategies=req.command == "strategies")
    return f"{head}\n{detail}" if detail else head


def render_detail(detail: str, *, strategies: bool = False) -> str:
    """A result's detail for humans: JSON objects as ``key: value`` lines, lists as bullets."""
    if not detail:
        return ""
    try:
        value: Any = json.loads(detail)
    except ValueError:
        return detail
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "(none)" if strategies else "[]"
        return "\n".join(f"• {_item(v)}" for v in value)
    return str(value)


def _item(value: Any) -> str:
    if isinstance(value, dict):
        name = value.get("name") or value.get("strat")
        rest = {k: v for k, v in value.items() if k not in ("name", "strat")}
        if name is not None:
            extra = ", ".join(f"{k}={_short(v)}" for k, v in rest.items())
            return f"{name} — {extra}" if extra else str(name)
    return _short(value)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"
