"""The CLI's views of a board: the status table, the servers list, kill's target lookup."""

from __future__ import annotations

from rich.console import Console

from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.cli import find_targets, server_rows, status_table
from mlthon.infra.ops.heartbeat import Heartbeat


def _board(sim):
    board = StatusBoard(sim.bus, sim.sched, sim.topics)
    board.start()
    Heartbeat(sim.bus, sim.sched, sim.topics, name="Sim", kind="gateway", pid=11).start()
    hb = Heartbeat(sim.bus, sim.sched, sim.topics, name="demo", kind="strategy", pid=12)
    hb.start()
    hb.stop()
    sim.run_for(0)
    return board


def test_status_table_lists_every_component(sim):
    console = Console(width=140, record=True)
    console.print(status_table(_board(sim)))
    text = console.export_text()
    assert "gateway" in text and "Sim" in text and "demo" in text and "down" in text


def test_servers_lists_live_ones_and_kill_finds_by_name_or_pid(sim):
    board = _board(sim)
    assert [(r["name"], r["pid"], r["state"]) for r in server_rows(board)] == [("Sim", 11, "up")]
    assert [v.name for v in find_targets(board, "gateway/Sim")] == ["Sim"]
    assert [v.name for v in find_targets(board, "11")] == ["Sim"]
    assert find_targets(board, "demo") == []  # already down
