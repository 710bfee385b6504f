"""Where a sweep's runs execute: local processes, or the tasks of a Ray cluster.

An engine runs a function of one argument (a module-level function: it is sent by reference)
and reports each call's :class:`Outcome`: its value, or why it failed (the function raised, or
its process died). It never retries: the driver (:mod:`mlthon.app.sweep.run`) does, the same
way on every engine.

* :class:`LocalEngine`: ``jobs`` worker processes, each running one call at a time and kept for
  the next; a worker that dies (killed, out of memory) fails only the call it was running, the
  others keep going, and a new worker takes its place.
* :class:`RayEngine`: each call a Ray task (one CPU, no retry of Ray's own), on a local Ray
  instance started for the sweep or on the cluster at ``--address``; :meth:`RayEngine.nodes` and
  ``node=`` pin a call to a node (the replay cache's warm-up).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

import attrs

from mlthon.basics.errors import ConfigError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


@attrs.frozen
class Outcome:
    """What one call gave: its value, or (``error`` not None) why it failed."""

    value: Any = None
    error: str | None = None


class Engine(Protocol):
    """What the sweep's driver needs of an engine."""

    name: str

    def slots(self) -> int:
        """How many calls may run at once."""
        ...

    def nodes(self) -> list[str]:
        """The nodes that run calls (one per machine)."""
        ...

    def submit(self, fn: Callable[[Any], Any], arg: Any, node: str | None = None) -> int:
        """Start ``fn(arg)`` (on ``node`` if given); returns its handle."""
        ...

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        """The calls that ended (at least one unless ``timeout`` seconds passed)."""
        ...

    def cancel(self) -> None:
        """Stop every call still running."""
        ...

    def close(self) -> None:
        """Release the engine (its processes, its Ray connection)."""
        ...


def _serve(conn: Connection) -> None:
    """A local worker process: calls ``fn(arg)`` for each ``(fn, arg)`` it receives, answers
    with the :class:`Outcome`, until told None or its pipe closes. Ctrl-C is the parent's to
    handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, arg = msg
        try:
            out = Outcome(fn(arg))
        except BaseException as exc:  # even SystemExit: reported, the parent decides
            out = Outcome(error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
        conn.send(out)


def death(exitcode: int | None) -> str:
    """Why a process ended without an answer: ``killed by SIGKILL`` or ``exit code 3``."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"its process was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"its process was killed by signal {-exitcode}"
    return f"its process exited with code {exitcode} before answering"


class LocalEngine:
    """Calls in ``jobs`` local worker processes (default: the cores), each running one call at
    a time and kept for the next (their imports and caches stay warm). A worker that dies fails
    only the call it was running; a new one takes its place."""

    name = "local"

    def __init__(self, jobs: int | None = None) -> None:
        self._jobs = jobs or os.cpu_count() or 1
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[tuple[Any, Connection]] = []
        self._busy: dict[int, tuple[Any, Connection]] = {}
        self._queue: list[tuple[int, Callable[[Any], Any], Any]] = []
        self._next = 0

    def slots(self) -> int:
        return self._jobs

    def nodes(self) -> list[str]:
        return ["local"]

    def submit(self, fn: Callable[[Any], Any], arg: Any, node: str | None = None) -> int:
        handle = self._next
        self._next += 1
        self._queue.append((handle, fn, arg))
        self._dispatch()
        return handle

    def _dispatch(self) -> None:
        while self._queue and (self._idle or len(self._busy) < self._jobs):
            if self._idle:
                worker = self._idle.pop()
            else:
                conn, child = self._ctx.Pipe()
                proc = self._ctx.Process(target=_serve, args=(child,), daemon=True)
                proc.start()
                child.close()
                worker = (proc, conn)
            handle, fn, arg = self._queue.pop(0)
            worker[1].send((fn, arg))
            self._busy[handle] = worker

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        by_conn: dict[Any, int] = {conn: h for h, (_p, conn) in self._busy.items()}
        ready: list[Any] = wait(list(by_conn), timeout) if by_conn else []
        done = []
        for conn in ready:
            h = by_conn[conn]
            proc, _ = self._busy.pop(h)
            out: Outcome
            try:
                out = conn.recv()
            except (EOFError, OSError):
                proc.join()
                conn.close()
                out = Outcome(error=death(proc.exitcode))
            else:
                self._idle.append((proc, conn))
            done.append((h, out))
        self._dispatch()
        return done

    def cancel(self) -> None:
        self._queue.clear()
        workers = [*self._busy.values(), *self._idle]
        self._busy.clear()
        self._idle.clear()
        for proc, _ in workers:
            proc.terminate()
        for proc, conn in workers:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()

    def close(self) -> None:
        for _proc, conn in self._idle:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc, _ in self._idle:
            proc.join(10)
        self.cancel()


class RayEngine:
    """Calls as Ray tasks: on the cluster at ``address``, else on a Ray instance started here
    (on loopback, ``jobs`` CPUs: default the cores) and stopped at :meth:`close`.

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
    """

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        if address is None:
            # A local instance is this machine's only: its services on loopback, not on the
            # address other machines would reach.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            raise ConfigError("--engine ray needs Ray: pip install 'mlthon[cluster]'") from None
        self._ray: Any = ray
        try:
            ray.init(
                address=address,
                num_cpus=None if address else (jobs or os.cpu_count() or 1),
                include_dashboard=False if address is None else None,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise ConfigError(f"--engine ray: cannot start or reach {where}: {exc}") from None
        self._jobs = jobs
        self._task = ray.remote(num_cpus=1, max_retries=0)(_call)
        self._running: dict[Any, int] = {}
        self._next = 0
        log.info("sweep: Ray cluster with %s CPUs on %d nodes", self.slots(), len(self.nodes()))

    def slots(self) -> int:
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        return min(cpus, self._jobs) if self._jobs else max(cpus, 1)

    def nodes(self) -> list[str]:
        return [
            n["NodeID"]
            for n in self._ray.nodes()
            if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0
        ]

    def submit(self, fn: Callable[[Any], Any], arg: Any, node: str | None = None) -> int:
        task = self._task
        if node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            task = task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)
            )
        ref = task.remote(fn, arg)
        handle = self._next
        self._next += 1
        self._running[ref] = handle
        return handle

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        ray = self._ray
        if not self._running:
            return []
        refs = list(self._running)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # everything else that is ready too, without waiting
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = []
        for ref in ready:
            h = self._running.pop(ref)
            try:
                out = Outcome(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if exc.cause is not None else exc
                out = Outcome(error=f"{type(cause).__name__}: {cause}")
            except ray.exceptions.RayError as exc:  # the worker or its node died
                out = Outcome(error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            done.append((h, out))
        return done

    def cancel(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()

    def close(self) -> None:
        self.cancel()
        self._ray.shutdown()


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    """A Ray task: ``fn(arg)``."""
    return fn(arg)


def make_engine(name: str, address: str | None, jobs: int | None) -> Engine:
    """The engine ``--engine`` names (``ray`` when an address is given)."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if name == "ray" or address:
        return RayEngine(address, jobs)
    return LocalEngine(jobs)
