"""A real ``mlthon strategy`` process runs on the loop mlthon.infra.loop chooses (uvloop when
installed, asyncio under MLTHON_LOOP=asyncio), says so once in its log, and stops on SIGTERM
(loop.add_signal_handler) on either loop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from mlthon.api import Strategy
from mlthon.infra.loop import LOOP_ENV
from tests.conftest import REPO, wait_until

pytestmark = pytest.mark.integration

PROBE_ENV = "MLTHON_TEST_LOOP_PROBE"
PROBE_CLASS = "tests.integration.infra.test_loop_processes:LoopProbe"  # imported by the process


class LoopProbe(Strategy):
    """Writes the module of the running loop's class to $MLTHON_TEST_LOOP_PROBE when built
    (the strategy process builds it on its loop)."""

    def __init__(self) -> None:
        super().__init__("loopy")
        kind = type(asyncio.get_running_loop())
        Path(os.environ[PROBE_ENV]).write_text(kind.__module__)


def write_cfg(tmp_path: Path, port: int, root: str) -> Path:
    cfg = tmp_path / "loopy.toml"
    cfg.write_text(
        "[strategy]\n"
        'name = "loopy"\n'
        f'class = "{PROBE_CLASS}"\n'
        "[instruments]\nuse = [9001]\n"
        f'[bus]\nhost = "127.0.0.1"\nport = {port}\nroot = "{root}"\n'
    )
    return cfg


def process_env(setting: str | None, probe: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != LOOP_ENV}
    env[PROBE_ENV] = str(probe)
    if setting is not None:
        env[LOOP_ENV] = setting
    return env


@pytest.mark.parametrize(
    ("setting", "line", "loop_module"),
    [
        (None, f"event loop: uvloop {uvloop.__version__}", "uvloop"),
        ("asyncio", "event loop: asyncio (MLTHON_LOOP=asyncio)", "asyncio.unix_events"),
    ],
)
async def test_strategy_process_runs_on_chosen_loop_logs_it_and_stops_on_sigterm(
    mosquitto, topic_root, tmp_path, setting, line, loop_module
):
    cfg = write_cfg(tmp_path, mosquitto.port, topic_root)
    probe = tmp_path / "loop.txt"
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mlthon",
            "--log-level",
            "INFO",
            "strategy",
            str(cfg),
            cwd=REPO,
            env=process_env(setting, probe),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        await wait_until(probe.exists, 60, "the strategy built on the process's loop")
        # Up on the bus and logging in, so SIGTERM finds a running process.
        await wait_until(lambda: "logging in as loopy" in log.read_text(), 60, "the bus connected")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rc = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = log.read_text()
    assert rc == 0, text
    assert probe.read_text() == loop_module
    assert [ln.split(": ", 1)[1] for ln in text.splitlines() if "event loop:" in ln] == [line]


def test_strategy_process_with_unknown_loop_setting_exits_2_naming_it(tmp_path):
    cfg = write_cfg(tmp_path, 1, "t/unused")
    probe = tmp_path / "loop.txt"
    res = subprocess.run(
        [sys.executable, "-m", "mlthon", "strategy", str(cfg)],
        cwd=REPO,
        env=process_env("trio", probe),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "MLTHON_LOOP='trio': expected one of auto, uvloop, asyncio" in res.stderr
    assert not probe.exists()  # refused before anything ran
