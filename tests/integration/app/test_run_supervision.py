"""`mlthon run` keeps its parts running: a part killed -9 comes back (capped back-off), the run
goes on and the strategy trades again, `mlthon status` counts the restart, and Ctrl-C still
stops everything; with `[run] restart.<part> = "stop"` a death stops the run; a part that keeps
dying stops the run with an error naming it. The strategy is started only once the gateway and
the feed said they are up."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from mlthon.app.supervisor import Supervisor
from mlthon.infra.broker import free_port
from mlthon.infra.config import RunConfig
from tests.conftest import REPO, wait_until
from tests.integration.app.test_run import children_of, fast_mm_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FILL = "-> position"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


class Run:
    """An `mlthon run` process and its merged output."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._pump())

    @classmethod
    async def start(cls, cfg: Path, *extra: str) -> Run:
        args = [sys.executable, "-m", "mlthon", "--log-level", "INFO", "run", str(cfg)]
        proc = await asyncio.create_subprocess_exec(
            *args, "--speed", "20", *extra, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(proc)

    async def _pump(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def text(self) -> str:
        return "\n".join(self.lines)

    def count(self, needle: str) -> int:
        return sum(needle in ln for ln in self.lines)

    async def until(self, needle: str, timeout: float = 60, count: int = 1) -> None:
        try:
            await wait_until(lambda: self.count(needle) >= count, timeout, f"{needle!r} x{count}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the run said:\n" + "\n".join(self.lines[-60:])) from None

    def part(self, name: str) -> int:
        """The pid of one part (`python -m mlthon <name> ...`)."""
        pids = [
            pid for pid in children_of(self.proc.pid)
            if _cmdline(pid)[3:4] == [name] and _alive(pid)
        ]  # fmt: skip
        assert len(pids) == 1, (name, pids)
        return pids[0]

    def port(self) -> int:
        found = re.search(r"broker 127\.0\.0\.1:(\d+)", self.text())
        assert found, self.text()[-2000:]
        return int(found.group(1))

    async def finish(self, timeout: float = 60) -> int:
        await asyncio.wait_for(self.proc.wait(), timeout)
        await self.reader
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def close(self) -> None:
        """Ctrl-C if still running (a failed test), then kill after a while."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 40)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if not self.reader.done():
            self.reader.cancel()


async def _status_json(port: int, root: str) -> list[dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mlthon", "--log-level", "WARNING", "status", "--json",
        "--port", str(port), "--root", root, "--settle", "1", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return list(json.loads(out)["components"])


async def test_run_gateway_killed_comes_back_and_the_strategy_trades_again(tmp_path):
    cfg = fast_mm_config(tmp_path, free_port())
    # A journal keeps the gateway's orders and execution ids across its restart.
    run = await Run.start(cfg, "--journal", str(tmp_path / "gw.db"))
    try:
        await run.until(FILL, 90)
        kids = children_of(run.proc.pid)
        gateway = run.part("gateway")
        os.kill(gateway, signal.SIGKILL)
        await run.until("gateway exited unexpectedly (killed by SIGKILL)", 30)
        await run.until("started gateway", 30, count=2)
        assert run.part("gateway") != gateway
        # The strategy heard the gateway go (its last will) and come back, and trades again.
        fills_before = run.count(FILL)
        await run.until("gateway process lost", 30)
        await run.until(FILL, 90, count=fills_before + 1)
        rows = await _status_json(run.port(), "runtest")
        restarts = {(r["kind"], r["name"]): r.get("restarts") for r in rows}
        assert restarts[("gateway", "Sim")] == 1, rows
        assert restarts[("strategy", "demo_mm")] == 0, rows
        kids |= children_of(run.proc.pid)
        run.proc.send_signal(signal.SIGINT)
        rc = await run.finish()
    finally:
        await run.close()
    text = run.text()
    assert rc == 0, text[-4000:]
    assert "stopping the run" not in text
    # Ctrl-C stops the parts in the same order as ever: the strategy first, control last.
    order = [m.group(1) for m in re.finditer(r"run: (\w+) exited \(", text)]
    assert order == ["strategy", "feed", "gateway", "control"], order
    assert not [pid for pid in kids if _alive(pid)], "a part left running"


async def test_run_policy_stop_ends_the_run_when_the_gateway_dies(tmp_path):
    cfg = fast_mm_config(tmp_path, free_port())
    run = await Run.start(cfg, "--set", "run.restart.gateway=stop")
    try:
        await run.until("started strategy", 90)
        kids = children_of(run.proc.pid)
        os.kill(run.part("gateway"), signal.SIGKILL)
        rc = await run.finish()
    finally:
        await run.close()
    text = run.text()
    assert rc == 1, text[-4000:]
    assert 'restart.gateway = "stop": stopping the run' in text
    assert run.count("started gateway") == 1
    assert not [pid for pid in kids if _alive(pid)], "a part left running"


async def test_run_starts_the_strategy_only_once_gateway_and_feed_are_up(tmp_path):
    """The gateway takes 3 s to be ready: the strategy is started after it said so."""
    cfg = fast_mm_config(tmp_path, free_port())
    run = await Run.start(cfg, "--set", 'sim.gateway.connect_delay="3s"')
    try:
        await run.until(FILL, 90)
        run.proc.send_signal(signal.SIGINT)
        rc = await run.finish()
    finally:
        await run.close()
    lines = run.lines
    assert rc == 0, run.text()[-4000:]
    ready = next(i for i, ln in enumerate(lines) if "gateway Sim: ReadyToTrade" in ln)
    streaming = next(i for i, ln in enumerate(lines) if "feed: Sim streaming" in ln)
    started = next(i for i, ln in enumerate(lines) if "run: started strategy" in ln)
    assert ready < started and streaming < started
    assert "GtwNotReady" not in run.text()


async def test_run_a_part_that_keeps_dying_stops_the_run_with_an_error(tmp_path):
    """Supervisor alone: a part whose config is broken dies at once, is restarted at most
    max_restarts times, and the run ends with an error naming it."""
    cfg = RunConfig(restart_delay_s=0.05, restart_delay_max_s=0.1, max_restarts=2)
    sup = Supervisor(cfg)
    broken = tmp_path / "missing.toml"
    await sup.start("feed", ["feed", "--config", str(broken)], None, stop_timeout_s=5)
    await asyncio.wait_for(sup.ended.wait(), 120)
    await sup.stop_all()
    assert sup.failed
    assert sup.reason.startswith("feed died 3 times within 300s (last: exit code 2)"), sup.reason
    assert sup.restarts() == {"feed": 2}


async def test_run_stop_during_a_back_off_starts_nothing(tmp_path):
    cfg = RunConfig(restart_delay_s=30, restart_delay_max_s=30)
    sup = Supervisor(cfg)
    await sup.start("feed", ["feed", "--config", str(tmp_path / "missing.toml")], None,
                    stop_timeout_s=5)  # fmt: skip
    part = sup.parts["feed"]
    assert part.proc is not None
    await asyncio.wait_for(part.proc.wait(), 60)
    await wait_until(lambda: len(part.deaths) == 1, 30, "the restart decided")
    await sup.stop_all()
    assert sup.restarts() == {"feed": 0} and not sup.ended.is_set()
    assert part.proc.returncode == 2


async def test_run_launcher_killed_leaves_no_part_running(tmp_path):
    """The parts get SIGTERM when the launcher dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    cfg = fast_mm_config(tmp_path, free_port())
    run = await Run.start(cfg)
    kids: set[int] = set()
    try:
        await run.until("started strategy", 90)
        kids = children_of(run.proc.pid)
        parts = {pid for pid in kids if _cmdline(pid)[1:3] == ["-m", "mlthon"]}
        assert len(parts) == 4, [_cmdline(p) for p in kids]
        run.proc.kill()
        await run.finish()
        await wait_until(lambda: not [p for p in parts if _alive(p)], 60, "the parts to exit")
    finally:
        await run.close()
        # The broker is started by MosquittoBroker (no parent-death signal): stop it here.
        for pid in children_of(run.proc.pid) | kids:
            if _alive(pid) and "mosquitto" in " ".join(_cmdline(pid)):
                os.kill(pid, signal.SIGTERM)


async def _cmd(port: int, *words: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mlthon", "--log-level", "WARNING", "cmd", "demo_mm", *words,
        "--port", str(port), "--root", "runtest", "--timeout", "30", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode().strip()


async def test_run_stopped_strategy_stays_stopped_when_control_and_strategy_restart(tmp_path):
    """The operator's stop survives a kill -9 of the control service (its state file is in the
    run's folder) and of the strategy: the restarted strategy logs in and stays idle; a start
    starts it and it trades again."""
    cfg = fast_mm_config(tmp_path, free_port())
    run = await Run.start(cfg)
    try:
        await run.until(FILL, 90)
        port = run.port()
        rc, out = await _cmd(port, "stop", "by-test")
        assert rc == 0 and "stopped" in out, out
        for part in ("control", "strategy"):
            pid = run.part(part)
            os.kill(pid, signal.SIGKILL)
            await run.until(f"run: started {part}", 30, count=2)
        await run.until("the operator wants it stopped", 30)
        await run.until("demo_mm stays stopped", 30)
        starts = run.count("env: start (")
        fills = run.count(FILL)
        rc, out = await _cmd(port, "start", "again")
        assert rc == 0, out
        await run.until("env: start ('again')", 30, count=1)
        assert starts == 1  # the first life's start only: none at the restarted strategy's login
        await run.until(FILL, 60, count=fills + 1)
        run.proc.send_signal(signal.SIGINT)
        assert await run.finish() == 0, run.text()[-4000:]
    finally:
        await run.close()


async def test_run_gateway_never_ready_stops_the_run_with_a_clear_error(tmp_path):
    cfg = fast_mm_config(tmp_path, free_port())
    run = await Run.start(cfg, "--set", 'sim.gateway.connect_delay="60s"', "run.ready_timeout_s=3")
    try:
        rc = await run.finish(90)
    finally:
        await run.close()
    text = run.text()
    assert rc == 1, text[-3000:]
    assert (
        "mlthon run: not starting demo_mm: after 3s ([run] ready_timeout_s), the Sim gateway has "
        "not said ReadyToTrade (last: Connecting 'starting')"
    ) in text, text[-3000:]
    assert "run: started strategy" not in text
