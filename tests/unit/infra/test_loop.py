"""The event loop of long-running processes (mlthon.infra.loop): uvloop when installed and
allowed, asyncio otherwise, said once at start; MLTHON_LOOP chooses."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import os
import signal
import sys

import pytest
import uvloop  # the `test` extra installs it, as `fast` does
from freezegun import freeze_time

from mlthon.basics.errors import ConfigError
from mlthon.infra.loop import INSTALL_HINT, LOOP_ENV, choose_loop, run_process

LOOPS = {"uvloop": uvloop.Loop, "asyncio": asyncio.BaseEventLoop}


@pytest.fixture
def no_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop cannot be imported (as on a machine without the `fast` extra)."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


async def loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_choose_loop_default_with_uvloop_installed_picks_uvloop():
    choice = choose_loop({})
    assert choice.name == "uvloop"
    assert choice.version == uvloop.__version__
    assert choice.factory is uvloop.new_event_loop
    assert choice.describe() == f"event loop: uvloop {uvloop.__version__}"


@pytest.mark.parametrize("value", ["auto", "", "  AUTO ", "uvloop", "UVLOOP"])
def test_choose_loop_auto_or_uvloop_spelled_any_way_picks_uvloop(value):
    assert choose_loop({LOOP_ENV: value}).name == "uvloop"


@pytest.mark.parametrize("value", ["asyncio", "Asyncio"])
def test_choose_loop_asyncio_switch_picks_asyncio_and_says_why(value):
    choice = choose_loop({LOOP_ENV: value})
    assert choice.name == "asyncio"
    assert choice.factory is None
    assert choice.describe() == "event loop: asyncio (MLTHON_LOOP=asyncio)"


@pytest.mark.usefixtures("no_uvloop")
def test_choose_loop_uvloop_not_installed_falls_back_with_install_hint():
    choice = choose_loop({})
    assert choice.name == "asyncio"
    assert choice.factory is None
    assert choice.describe() == f"event loop: asyncio (uvloop not installed; {INSTALL_HINT})"
    assert INSTALL_HINT == "pip install 'mlthon[fast]'"


@pytest.mark.usefixtures("no_uvloop")
def test_choose_loop_uvloop_required_but_not_installed_raises_config_error():
    with pytest.raises(ConfigError, match=r"MLTHON_LOOP=uvloop but uvloop is not installed"):
        choose_loop({LOOP_ENV: "uvloop"})


def test_choose_loop_unknown_value_raises_config_error_naming_variable_and_value():
    with pytest.raises(ConfigError, match=r"MLTHON_LOOP='trio': expected one of auto, uvloop"):
        choose_loop({LOOP_ENV: "trio"})


def test_choose_loop_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    assert choose_loop().name == "asyncio"
    monkeypatch.delenv(LOOP_ENV)
    assert choose_loop().name == "uvloop"


def test_run_process_by_default_runs_on_uvloop_and_logs_it_once(caplog):
    caplog.set_level(logging.INFO, logger="mlthon.infra.loop")
    assert issubclass(run_process(loop_type(), environ={}), uvloop.Loop)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event loop")]
    assert lines == [f"event loop: uvloop {uvloop.__version__}"]


def test_run_process_asyncio_switch_runs_on_the_standard_loop(caplog):
    caplog.set_level(logging.INFO)
    kind = run_process(loop_type(), environ={LOOP_ENV: "asyncio"})
    assert issubclass(kind, asyncio.BaseEventLoop)
    assert not issubclass(kind, uvloop.Loop)
    assert "event loop: asyncio (MLTHON_LOOP=asyncio)" in caplog.messages


@pytest.mark.usefixtures("no_uvloop")
def test_run_process_without_uvloop_runs_on_the_standard_loop(caplog):
    caplog.set_level(logging.INFO)
    assert issubclass(run_process(loop_type(), environ={}), asyncio.BaseEventLoop)
    assert f"event loop: asyncio (uvloop not installed; {INSTALL_HINT})" in caplog.messages


def test_run_process_logs_on_the_given_logger(caplog):
    caplog.set_level(logging.INFO)
    run_process(loop_type(), logger=logging.getLogger("mlthon.feeds.cli"), environ={})
    assert [r.name for r in caplog.records if r.getMessage().startswith("event loop")] == [
        "mlthon.feeds.cli"
    ]


def test_run_process_bad_setting_raises_before_running_and_closes_the_coroutine():
    ran = []

    async def main() -> None:
        ran.append(1)

    coro = main()
    with pytest.raises(ConfigError, match="MLTHON_LOOP"):
        run_process(coro, environ={LOOP_ENV: "nope"})
    assert ran == []
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # no "never awaited" warning


@pytest.mark.parametrize("kind", LOOPS)
def test_run_process_returns_the_result_and_propagates_errors(kind):
    async def ok() -> int:
        await asyncio.sleep(0)
        return 42

    async def bad() -> None:
        raise ValueError("boom")

    assert run_process(ok(), environ={LOOP_ENV: kind}) == 42
    with pytest.raises(ValueError, match="boom"):
        run_process(bad(), environ={LOOP_ENV: kind})


@pytest.mark.parametrize("kind", LOOPS)
def test_run_process_signal_handler_sets_the_shutdown_event(kind):
    # The processes' shutdown trigger: loop.add_signal_handler(SIGTERM/SIGINT, stop.set).
    async def main() -> type:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, stop.set)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            async with asyncio.timeout(30):
                await stop.wait()
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        return type(loop)

    assert issubclass(run_process(main(), environ={LOOP_ENV: kind}), LOOPS[kind])


@pytest.mark.parametrize("kind", LOOPS)
@pytest.mark.parametrize("flag", ["1", ""])
def test_run_process_debug_mode_follows_pythonasynciodebug(kind, flag, monkeypatch):
    if sys.flags.dev_mode:
        pytest.skip("-X dev turns debug mode on whatever the variable says")
    monkeypatch.setenv("PYTHONASYNCIODEBUG", flag)

    async def debug() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert run_process(debug(), environ={LOOP_ENV: kind}) is bool(flag)


@pytest.mark.parametrize("kind", LOOPS)
def test_run_process_under_freezegun_sleeps_and_sees_the_frozen_date(kind):
    async def main() -> dt.datetime:
        await asyncio.sleep(0.01)
        return dt.datetime.now(dt.UTC)

    with freeze_time("2026-01-05 15:59:59", real_asyncio=True):
        now = run_process(main(), environ={LOOP_ENV: kind})
    assert now == dt.datetime(2026, 1, 5, 15, 59, 59, tzinfo=dt.UTC)
