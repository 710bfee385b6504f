"""A part restarted by `mlthon run` says how often in every heartbeat (``MLTHON_RESTARTS``), and
`mlthon status` shows it per part; a process nobody supervises shows none."""

from __future__ import annotations

from rich.console import Console

from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimClock, SimScheduler
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.cli import status_table
from mlthon.infra.ops.wiring import RESTARTS_ENV, ProcessOps

T0 = 1_700_000_000 * NS_PER_S


def test_run_status_shows_restarts_per_part(monkeypatch):
    sched = SimScheduler(SimClock(T0))
    bus = InProcBus(sched)
    topics = Topics("t")
    board = StatusBoard(bus, sched, topics)
    board.start()
    monkeypatch.setenv(RESTARTS_ENV, "3")
    ProcessOps(bus, sched, topics, kind="gateway", name="Sim").start()
    monkeypatch.delenv(RESTARTS_ENV)
    ProcessOps(bus, sched, topics, kind="feed", name="Sim").start()
    sched.run_until(T0 + NS_PER_S)
    rows = {(c["kind"], c["name"]): c for c in board.snapshot()["components"]}
    assert rows[("gateway", "Sim")]["restarts"] == 3
    assert rows[("gateway", "Sim")]["extra"]["restarts"] == 3
    assert rows[("feed", "Sim")]["restarts"] is None
    console = Console(width=160, record=True)
    console.print(status_table(board))
    text = console.export_text()
    assert "restarts" in text
    gateway_line = next(ln for ln in text.splitlines() if "gateway" in ln)
    assert " 3 " in gateway_line
