"""Parsing, resolving and rendering commands."""

from __future__ import annotations

import json

from mlthon.infra.bus.messages import CmdResult, HookInfo, StratStatus
from mlthon.infra.telegram.commands import (
    Directory,
    Request,
    format_help,
    format_result,
    parse_command,
    resolve,
)


def directory() -> Directory:
    d = Directory()
    d.update(
        StratStatus(
            strat="alpha",
            state="running",
            hooks=[
                HookInfo(name="Widen", help="widen quotes"),
                HookInfo(name="flatten", help="close all", dangerous=True),
            ],
        )
    )
    d.update(StratStatus(strat="Beta", state="stopped", hooks=[HookInfo(name="flatten")]))
    return d


def res(text: str, d: Directory | None = None) -> Request | str:
    parsed = parse_command(text, "desk_bot")
    assert parsed is not None
    return resolve(parsed, d or directory())


def test_parse_command_names_tags_and_args() -> None:
    p = parse_command("/Start@Desk_Bot alpha  a=1\tb=2", "desk_bot")
    assert p is not None
    assert (p.name, p.args) == ("start", ["alpha", "a=1", "b=2"])
    assert parse_command("/start@other_bot alpha", "desk_bot") is None
    assert parse_command("aa /start", "desk_bot") is None
    assert parse_command("/", "desk_bot") is None


def test_builtins_resolve() -> None:
    assert res("/start alpha x y") == Request("start", "alpha", "start", ["x", "y"])
    assert res("/stop alpha") == Request("stop", "alpha", "stop", [], dangerous=True)
    assert res("/params alpha a=1") == Request("params", "alpha", "params", ["a=1"])
    assert res("/status beta") == Request("status", "Beta", "status", [])
    assert res("/strategies") == Request("strategies", "", "strategies", [])


def test_status_without_strategy_lists_them_unless_there_is_one() -> None:
    assert res("/status") == Request("strategies", "", "strategies", [])
    one = Directory()
    one.update(StratStatus(strat="solo", state="running"))
    assert res("/status", one) == Request("status", "solo", "status", [])


def test_usage_errors() -> None:
    assert res("/start") == "Usage: /start <strategy> [params…]"
    assert str(res("/params alpha")).startswith("Usage: /params")
    assert str(res("/params alpha =1")).startswith("Usage: /params")
    assert res("/stop alpha now") == "Usage: /stop <strategy>"
    assert "not a strategy name" in str(res("/start a/b"))


def test_hooks_resolve_case_insensitively_with_or_without_strategy() -> None:
    assert res("/WIDEN alpha 2") == Request("widen", "alpha", "Widen", ["2"], is_hook=True)
    assert res("/widen 2") == Request("widen", "alpha", "Widen", ["2"], is_hook=True)
    assert res("/flatten beta") == Request("flatten", "Beta", "flatten", [], is_hook=True)
    flat = res("/flatten alpha")
    assert isinstance(flat, Request)
    assert flat.dangerous
    assert "Several strategies have /flatten" in str(res("/flatten"))
    assert res("/nope alpha") == "Unknown command /nope. See /help."


def test_extra_dangerous_names_from_the_config() -> None:
    parsed = parse_command("/widen alpha", None)
    assert parsed is not None
    req = resolve(parsed, directory(), {"widen"})
    assert isinstance(req, Request)
    assert req.dangerous


def test_help_lists_hooks_with_their_help() -> None:
    text = format_help(directory())
    assert "• /widen alpha — widen quotes" in text
    assert "• /flatten alpha — close all ⚠ confirm" in text
    assert "• /flatten Beta" in text


def test_results_render_json_details() -> None:
    req = Request("status", "alpha", "status", [])
    detail = json.dumps({"state": "running", "position": {"BTC": "1"}})
    text = format_result(req, CmdResult(cmd_id="1", strat="alpha", ok=True, detail=detail))
    assert text == '✅ /status alpha\nstate: running\nposition: {"BTC": "1"}'
    bad = format_result(
        Request("start", "x", "start", []),
        CmdResult(cmd_id="2", strat="x", ok=False, detail="unknown strategy"),
    )
    assert bad == "❌ /start x: failed\nunknown strategy"
    listing = format_result(
        Request("strategies", "", "strategies", []),
        CmdResult(cmd_id="3", strat="", ok=True, detail="[]"),
    )
    assert listing == "✅ /strategies\n(none)"


def test_risk_shows_freely_and_setting_a_state_needs_confirmation() -> None:
    assert res("/risk alpha") == Request("risk", "alpha", "risk", [], dangerous=False)
    assert res("/risk alpha halted fat finger") == Request(
        "risk", "alpha", "risk", ["halted", "fat", "finger"], dangerous=True
    )
    # "desk" addresses every strategy (none is called that here).
    assert res("/risk desk reduce-only") == Request(
        "risk", "desk", "risk", ["reduce-only"], dangerous=True
    )
    bad = res("/risk alpha paused")
    assert isinstance(bad, str) and "'paused' is not a trading state" in bad
    assert isinstance(res("/risk"), str) and res("/risk").startswith("Usage: /risk")
    assert "/risk <strategy|desk>" in format_help(directory())
