"""Supervision of ``mlthon run``'s processes: a part that dies is started again.

Each part (control, gateway, feed, telegram, strategy) runs as ``python -m mlthon <args>``. When
one exits on its own:

* exit code 0: it finished on purpose (a replay at its end, ``mlthon kill``): the run stops, as
  it always did;
* any other exit (an error, a signal such as ``kill -9``): its policy (``[run] restart``) says
  ``restart`` or ``stop``. ``stop`` ends the run with an error. ``restart`` starts it again after
  a capped exponential back-off with jitter (``restart_delay_s`` doubling up to
  ``restart_delay_max_s``, from the start again once a part ran ``restart_reset_after_s``), up to
  ``max_restarts`` restarts within ``restart_window_s``; one more death ends the run with an
  error naming the part.

A restarted part gets ``MLTHON_RESTARTS=<n>`` in its environment and reports it in its heartbeat
(``mlthon status`` shows it). The strategy hears of a dead gateway or feed through its status
callback (the dead process's last will), and of its return through the fresh status the new
process publishes.

:meth:`Supervisor.stop_all` stops the parts in the reverse order of their start; a part waiting
for its restart is not started, and one being started at that moment is stopped as soon as it
exists.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable

import attrs

from mlthon.infra.broker import die_with_parent
from mlthon.infra.config import RESTART, RunConfig
from mlthon.infra.ops.wiring import RESTARTS_ENV
from mlthon.venues.backoff import Backoff

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class Part:
    """One supervised process.

    Attributes:
        name: control, gateway, feed, telegram or strategy.
        args: its ``mlthon`` command line (after ``python -m mlthon``).
        env: its environment.
        policy: ``restart`` or ``stop`` (what to do when it dies).
        stop_timeout_s: how long it has to stop after SIGTERM before it is killed.
        proc: the process running now (None before the first start).
        started_at: when ``proc`` was started (monotonic seconds).
        restarts: how many times it was started again.
        deaths: when it died, within the restart window (monotonic seconds).
    """

    name: str
    args: list[str]
    env: dict[str, str] | None
    policy: str
    stop_timeout_s: float
    backoff: Backoff
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    deaths: collections.deque[float] = attrs.field(factory=collections.deque)
    watcher: asyncio.Task[None] | None = None
    spawning: asyncio.Task[asyncio.subprocess.Process] | None = None


def exit_text(rc: int | None) -> str:
    """``exit code 3``, ``killed by SIGKILL``."""
    if rc is None:
        return "running"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


class Supervisor:
    """Starts the parts of a run and keeps them running.

    Args:
        cfg: the run's supervision settings (``[run]``).
        rng: the back-off's jitter source.
        clock: monotonic seconds (for the back-off reset and the restart window).
    """

    def __init__(
        self,
        cfg: RunConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.rng = rng or random.Random()
        self.clock = clock
        self.parts: dict[str, Part] = {}
        # Why the run must stop ("" while it may go on), and whether that is an error.
        self.ended = asyncio.Event()
        self.reason = ""
        self.failed = False
        self._stopping = False

    async def start(
        self, name: str, args: list[str], env: dict[str, str] | None, *, stop_timeout_s: float
    ) -> Part:
        """Start part ``name`` and keep it running (see the module docstring)."""
        part = Part(
            name=name,
            args=args,
            env=env,
            policy=self.cfg.restart.get(name, RESTART),
            stop_timeout_s=stop_timeout_s,
            backoff=Backoff(
                base_s=self.cfg.restart_delay_s, cap_s=self.cfg.restart_delay_max_s, rng=self.rng
            ),
        )
        self.parts[name] = part
        await self._spawn(part)
        part.watcher = asyncio.get_running_loop().create_task(
            self._watch(part), name=f"run.watch[{name}]"
        )
        return part

    def restarts(self) -> dict[str, int]:
        """Restarts per part."""
        return {name: part.restarts for name, part in self.parts.items()}

    async def _spawn(self, part: Part) -> None:
        # The part reports its restarts in its heartbeat (0 on its first start).
        env = {**(part.env if part.env is not None else os.environ)}
        env[RESTARTS_ENV] = str(part.restarts)
        # Shielded: a stop arriving while the process is being created still finds it (in
        # ``spawning``) and stops it.
        part.spawning = asyncio.get_running_loop().create_task(
            asyncio.create_subprocess_exec(
                sys.executable, "-m", "mlthon", *part.args, env=env,
                stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent,
            ),
            name=f"run.spawn[{part.name}]",
        )  # fmt: skip
        proc = await asyncio.shield(part.spawning)
        part.proc = proc
        part.spawning = None
        part.started_at = self.clock()
        log.info(
            "run: started %s (pid %d)%s",
            part.name,
            proc.pid,
            f", restart {part.restarts}" if part.restarts else "",
        )

    def _end(self, reason: str, *, failed: bool) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.failed = failed
            (log.error if failed else log.info)("run: %s", reason)
            self.ended.set()

    async def _watch(self, part: Part) -> None:
        cfg = self.cfg
        while True:
            assert part.proc is not None
            rc = await part.proc.wait()
            if self._stopping or self.ended.is_set():
                return
            now = self.clock()
            ran = now - part.started_at
            how = exit_text(rc)
            if rc == 0:
                self._end(f"{part.name} exited on its own ({how}); stopping the run", failed=False)
                return
            if part.policy != RESTART:
                self._end(
                    f"{part.name} exited unexpectedly ({how}); [run] restart.{part.name} = "
                    f'"{part.policy}": stopping the run',
                    failed=True,
                )
                return
            while part.deaths and now - part.deaths[0] > cfg.restart_window_s:
                part.deaths.popleft()
            if len(part.deaths) >= cfg.max_restarts:
                self._end(
                    f"{part.name} died {len(part.deaths) + 1} times within "
                    f"{cfg.restart_window_s:g}s (last: {how}); [run] max_restarts = "
                    f"{cfg.max_restarts}: stopping the run",
                    failed=True,
                )
                return
            part.deaths.append(now)
            if ran >= cfg.restart_reset_after_s:
                part.backoff.reset()
            delay = part.backoff.next_delay()
            log.warning(
                "run: %s exited unexpectedly (%s) after %.1fs; restarting it in %.2fs "
                "(%d of at most %d within %gs)",
                part.name,
                how,
                ran,
                delay,
                len(part.deaths),
                cfg.max_restarts,
                cfg.restart_window_s,
            )
            await asyncio.sleep(delay)  # a stop cancels this task: no restart
            part.restarts += 1
            try:
                await self._spawn(part)
            except OSError as exc:
                self._end(f"{part.name} could not be started again: {exc}", failed=True)
                return

    async def stop_all(self) -> None:
        """Stop every part, in the reverse order of their start; no restart from now on."""
        self._stopping = True
        for part in self.parts.values():
            if part.watcher is not None:
                part.watcher.cancel()
        for part in reversed(list(self.parts.values())):
            if part.watcher is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await part.watcher
            if part.spawning is not None:
                # Being started when the stop came: let it exist, then stop it.
                with contextlib.suppress(OSError):
                    part.proc = await part.spawning
                part.spawning = None
            if part.proc is not None:
                await stop_process(part.name, part.proc, part.stop_timeout_s)

    def returncodes(self) -> dict[str, int | None]:
        """The exit code of each part's last process."""
        return {n: (p.proc.returncode if p.proc else None) for n, p in self.parts.items()}


async def stop_process(name: str, proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; reaps it."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        log.warning("run: %s (pid %d) did not stop in %.0fs; killed", name, proc.pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    log.info("run: %s exited (%s)", name, proc.returncode)
