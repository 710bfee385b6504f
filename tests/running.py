"""A whole `python -m mlthon ...` process in a test: started in the repository, its output
collected line by line while it runs, stopped with Ctrl-C, and killed if the test leaves it
running (its last lines are then printed: pytest shows them with the failure)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator

from tests.conftest import REPO


class Running:
    """The process and the lines it printed so far (stdout and stderr together)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C; wait for the exit and the last line; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(timeout_s):
            await self.proc.wait()
        await self._reader
        assert self.proc.returncode is not None
        return self.proc.returncode


async def start(
    *args: str, stderr: int = asyncio.subprocess.PIPE, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """``python -m mlthon *args`` in the repository, its stdout piped (and its stderr, or
    ``asyncio.subprocess.STDOUT`` for both in one)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mlthon",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=env,
    )


@contextlib.asynccontextmanager
async def mlthon(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """``python -m mlthon *args``; killed on the way out if still running."""
    proc = await start(*args, stderr=asyncio.subprocess.STDOUT, env=env)
    run = Running(proc)
    try:
        yield run
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
            print("\n".join(run.lines[-150:]))  # the run's own account, shown on a failure
