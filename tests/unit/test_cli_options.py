"""The mlthon command line: global options anywhere, help text on every option, --version,
doctor's skipped checks, tables that fit 80 columns (issue 18, "One CLI")."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from mlthon import cli
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimScheduler
from mlthon.infra.ops import doctor as dr
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.cli import status_table
from mlthon.infra.ops.heartbeat import Heartbeat

pytestmark = pytest.mark.timeout(60)

COMMANDS = [*cli._DELEGATED, "control", "strategy", "cmd", "params", "broker"]
# Every command's parser, those of mlthon/app/cli.py and instruments_cli.py included.
NOT_HERE: set[str] = set()
# An option line of argparse's help: "  -q, --quiet   help" or "  --port PORT" alone.
_OPTION = re.compile(r"^  (-\S+(?: \S+)?(?:, -\S+(?: \S+)?)*)(?:\s{2,}(\S.*))?$")


def _help_of(command: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        rc = cli.main([*command, "--help"])
    except SystemExit as exc:  # argparse's help exits
        rc = exc.code or 0
    assert rc == 0
    return capsys.readouterr().out


def _options_without_help(text: str) -> list[str]:
    lines = text.splitlines()
    bare = []
    for i, line in enumerate(lines):
        match = _OPTION.match(line)
        if match is None or match.group(2):
            continue
        follows = lines[i + 1] if i + 1 < len(lines) else ""
        # A long option puts its help on the next line, indented further.
        if not (follows.startswith(" " * 8) and follows.strip()):
            bare.append(match.group(1))
    return bare


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in NOT_HERE])
def test_help_every_command_no_markup_and_every_option_explained(command, capsys):
    text = _help_of([command], capsys)
    assert "`" not in text, text
    assert _options_without_help(text) == [], text
    assert "example:" in text, text


def test_help_top_level_lists_global_options_without_markup(capsys):
    text = _help_of([], capsys)
    assert "`" not in text
    assert "--log-level" in text and "--quiet" in text and "--version" in text
    assert _options_without_help(text) == []


def test_version_prints_package_version_and_core(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    out = capsys.readouterr().out
    assert re.match(r"mlthon \S+; mlthon core: (compiled|pure Python)", out), out


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "DEBUG", "--port", "1884", "servers", "--json"],
        ["servers", "--json", "--log-level", "DEBUG", "--port", "1884"],
        ["--port=1884", "servers", "--log-level=DEBUG", "--json"],
    ],
)
def test_split_global_options_before_or_after_command_same_command(argv):
    globals_, rest = cli.split_global_options(argv, COMMANDS)
    assert [w.replace("=", " ") for w in globals_] in (
        ["--log-level DEBUG"],
        ["--log-level", "DEBUG"],
    )
    assert rest[0] == "servers"
    assert " ".join(rest).replace("=", " ").count("--port 1884") == 1
    assert "--json" in rest


def test_split_global_options_after_double_dash_left_alone():
    globals_, rest = cli.split_global_options(["cmd", "s", "x", "--", "-q"], COMMANDS)
    assert globals_ == [] and rest == ["cmd", "s", "x", "--", "-q"]


@pytest.mark.parametrize(
    ("command", "given", "quiet", "level"),
    [
        ("status", None, False, "WARNING"),
        ("cmd", None, False, "WARNING"),
        ("kill", "INFO", False, "INFO"),
        ("run", None, False, "INFO"),
        ("run", None, True, "ERROR"),
        ("servers", "DEBUG", True, "DEBUG"),
    ],
)
def test_log_level_of_clients_quiet_by_default_level_given_wins(
    command, given, quiet, level, monkeypatch
):
    monkeypatch.delenv(cli.LOG_LEVEL_ENV, raising=False)
    assert cli.log_level_of(command, given, quiet) == level


def test_log_level_of_started_process_inherits_parent_level(monkeypatch):
    monkeypatch.setenv(cli.LOG_LEVEL_ENV, "WARNING")
    assert cli.log_level_of("feed", None, False) == "WARNING"


def test_web_address_port_alone_binds_loopback():
    assert cli.web_address("8787") == ("127.0.0.1", 8787)
    assert cli.web_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(Exception, match="PORT"):
        cli.web_address("nine")


def test_doctor_without_strategy_config_reports_skip_not_ok():
    (check,) = dr.check_config([])
    assert check.verdict == dr.SKIP
    assert check.line().startswith("[SKIP] config: no strategy config given")
    (secrets,) = dr.check_secrets(None, [])
    assert secrets.verdict == dr.SKIP
    assert dr.verdict([check, secrets]) == 0


def _board_with_long_names() -> StatusBoard:
    sched = SimScheduler()
    sched.clock.advance_to(1_700_000_000 * NS_PER_S)
    bus = InProcBus(sched)
    topics = Topics("t")
    board = StatusBoard(bus, sched, topics)
    board.start()
    for kind, name in (("gateway", "BinanceUsdm"), ("strategy", "demo_market_maker")):
        hb = Heartbeat(bus, sched, topics, name=name, kind=kind, pid=1234567, host="trading-host")
        hb.start()
    sched.run_until(sched.now_ns() + NS_PER_S)
    return board


def test_status_table_80_columns_fits_and_keeps_pid_at_host_whole():
    console = Console(width=80, record=True, color_system=None)
    console.print(status_table(_board_with_long_names(), console.width))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "1234567@trading-host" in text, text
    assert "pid@host" in text  # the header on one line too


def test_status_table_wide_console_shows_every_column():
    console = Console(width=160, record=True, color_system=None)
    console.print(status_table(_board_with_long_names(), console.width))
    text = console.export_text()
    assert "restarts" in text and "events/s" in text and "lag ms" in text


def test_telegram_mqtt_port_alias_still_parsed_with_one_deprecation_warning(tmp_path, caplog):
    from mlthon.infra.telegram.cli import telegram_main

    missing = str(tmp_path / "telegram.toml")
    assert telegram_main(["--config", missing, "--mqtt-port", "1884"]) == 2  # no such file
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warnings == ["mlthon telegram: --mqtt-port is deprecated, use --port"]
