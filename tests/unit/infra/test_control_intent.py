"""The control service remembers what the operator last asked of each strategy (running or
stopped), across re-logins and restarts of the control service (a file written atomically), and
answers every login with it: never a fresh Start for a stopped strategy; a start on a running
strategy is a no-op that says so."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import TradingState
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.operator_intent import IntentFile, OperatorIntent
from tests.harness import strategy_config

T0 = 1_700_000_000 * NS_PER_S
NAME = "s1"
CTL_KINDS = (m.Instruments, m.Start, m.Idle, m.StratParams, m.Stop, m.CmdHook, m.LoginReject)


class World:
    """A control service on an in-process bus in simulated time, and what it sent."""

    def __init__(self, state: Path | None, *, bus: InProcBus | None = None, **cfg: Any) -> None:
        if bus is None:
            self.sched = SimScheduler()
            self.sched.clock.advance_to(T0)
            self.bus = InProcBus(self.sched)
        else:
            self.bus = bus
            self.sched = bus._scheduler  # type: ignore[assignment]
        self.topics = Topics("t")
        self.cfg = strategy_config(NAME, **cfg)
        self.control = ControlService(
            self.bus, self.sched, self.topics, [self.cfg], state_path=state
        )
        self.control.start()
        self.ctl: list[Any] = []
        self.answers: dict[str, m.CmdResult] = {}
        self.bus.subscribe(self.topics.strat_ctl(NAME), lambda _t, x: self.ctl.append(x))
        self.bus.subscribe(self.topics.reply("cli"), self._on_answer)
        self.run()

    def _on_answer(self, _topic: str, msg: Any) -> None:
        self.answers[msg.cmd_id] = msg

    def run(self) -> None:
        self.sched.run_until(self.sched.now_ns() + NS_PER_S)

    def login(self, pid: int = 4242) -> list[type]:
        """Log in as the strategy; returns the kinds of the answer, in order."""
        before = len(self.ctl)
        self.bus.publish(self.topics.login(NAME), m.Login(strat=NAME, pid=pid, host="h"), qos=1)
        self.run()
        return [type(x) for x in self.ctl[before:]]

    def cmd(self, name: str, *args: str) -> m.CmdResult | None:
        cmd_id = f"c{len(self.answers)}-{name}-{self.sched.now_ns()}"
        self.bus.publish(
            self.topics.cmd(),
            m.CmdRequest(
                cmd_id=cmd_id,
                strat=NAME,
                name=name,
                args=list(args),
                reply_to=self.topics.reply("cli"),
                sender="cli:alice",
            ),
            qos=1,
        )
        self.run()
        return self.answers.get(cmd_id)

    def ack_stop(self) -> None:
        self.bus.publish(self.topics.strat_up(NAME), m.StopAck(strat=NAME), qos=1)
        self.run()

    def sent(self, kind: type) -> list[Any]:
        return [x for x in self.ctl if isinstance(x, kind)]


def test_control_relogin_after_stop_answers_idle_and_never_start():
    w = World(None)
    assert w.login() == [m.Instruments, m.Start, m.StratParams]
    w.cmd("stop", "eod")
    assert w.sent(m.Stop)
    w.ack_stop()
    starts = len(w.sent(m.Start))
    # A broker blip: the env logs in again (several times while control was away).
    for _ in range(3):
        assert w.login() == [m.Instruments, m.Idle, m.StratParams]
    assert len(w.sent(m.Start)) == starts
    idle = w.sent(m.Idle)[-1]
    assert "stopped as the operator asked (by cli:alice" in idle.detail
    assert w.control.strategies()[0]["intent"] == "stopped"


def test_control_start_on_a_running_strategy_is_a_no_op_that_says_so():
    w = World(None)
    w.login()
    starts = len(w.sent(m.Start))
    res = w.cmd("start", "level=2")
    assert res is not None and (res.ok, res.detail) == (True, "already running")
    assert len(w.sent(m.Start)) == starts


def test_control_start_after_stop_sends_start_and_the_next_login_starts_with_its_params(
    tmp_path,
):
    state = tmp_path / "intent.json"
    w = World(state)
    w.login()
    w.cmd("stop")
    w.ack_stop()
    assert w.login() == [m.Instruments, m.Idle, m.StratParams]
    assert w.cmd("start", "level=2") is None  # the strategy answers once on_start ran
    start = w.sent(m.Start)[-1]
    # answered through the control service: on the strategy's own topic, relayed to the asker
    assert (start.params, start.reply_to) == ("level=2", w.topics.strat_up(NAME))
    w.bus.publish(start.reply_to, m.CmdResult(cmd_id=start.cmd_id, strat=NAME, ok=True), qos=1)
    w.run()
    assert w.answers[start.cmd_id].ok
    assert json.loads(state.read_text())["strategies"][NAME]["intent"] == "running"
    # A restarted strategy process logs in: it starts, with the operator's parameters.
    assert w.login(pid=5151) == [m.Instruments, m.Start, m.StratParams]
    assert w.sent(m.Start)[-1].params == "level=2"


def test_control_stop_is_saved_before_the_stop_is_sent(tmp_path):
    state = tmp_path / "intent.json"
    w = World(state)
    w.login()
    on_disk: list[str] = []

    def on_ctl(_topic: str, msg: Any) -> None:
        if isinstance(msg, m.Stop):
            on_disk.append(json.loads(state.read_text())["strategies"][NAME]["intent"])

    w.bus.subscribe(w.topics.strat_ctl(NAME), on_ctl)
    w.cmd("stop")
    assert on_disk == ["stopped"]


def test_control_restart_keeps_the_operators_stop(tmp_path, caplog):
    state = tmp_path / "intent.json"
    w = World(state)
    w.login()
    w.cmd("stop")
    w.ack_stop()
    w.control.stop()
    # A new control service (its process restarted) on the same file.
    w2 = World(state)
    assert "s1 stays stopped as the operator asked" in caplog.text
    assert w2.login() == [m.Instruments, m.Idle, m.StratParams]
    assert not w2.sent(m.Start)
    # auto_start = false with no operator action: idle too, and it says why.
    w3 = World(tmp_path / "other.json", auto_start=False)
    assert w3.login() == [m.Instruments, m.Idle, m.StratParams]
    assert "auto_start is false" in w3.sent(m.Idle)[-1].detail


def test_control_restart_knows_a_running_strategy_from_its_retained_status(tmp_path):
    """After a restart of the control service a strategy still running does not log in
    again: its retained status says it is, so a stop reaches it and a start is a no-op."""
    w = World(tmp_path / "intent.json")
    w.bus.publish(
        w.topics.strat_status(NAME),
        m.StratStatus(strat=NAME, state="running", pid=777),
        qos=1,
        retain=True,
    )
    w.control.stop()
    w2 = World(tmp_path / "intent.json", bus=w.bus)
    res = w2.cmd("start")
    assert res is not None and (res.ok, res.detail) == (True, "already running")
    w2.cmd("stop")
    assert w2.sent(m.Stop)


def test_control_does_not_count_a_dead_process_as_logged_in(tmp_path):
    """The retained status of a process whose last will says it is gone is not a login; a stop
    is then recorded for when it logs in again."""
    w = World(tmp_path / "intent.json")
    w.login(pid=777)
    w.bus.publish(
        w.topics.strat_status(NAME),
        m.StratStatus(strat=NAME, state="running", pid=777),
        qos=1,
        retain=True,
    )
    w.bus.publish(
        w.topics.component_status("strategy", NAME),
        m.ComponentStatus(name=NAME, kind="strategy", state="stale", pid=777),
        qos=1,
        retain=True,
    )
    w.run()
    assert not w.control.strats[NAME].logged_in
    # Its successor's heartbeat is not a login either (it logs in itself).
    w.bus.publish(
        w.topics.component_status("strategy", NAME),
        m.ComponentStatus(name=NAME, kind="strategy", state="degraded", pid=888),
        qos=1,
        retain=True,
    )
    w.run()
    assert not w.control.strats[NAME].logged_in
    res = w.cmd("stop")
    assert res is not None and res.ok and "stays stopped when it logs in" in res.detail
    assert not w.sent(m.Stop)
    assert w.login(pid=888) == [m.Instruments, m.Idle, m.StratParams]


def test_control_start_of_a_strategy_not_connected_starts_it_at_login(tmp_path):
    w = World(tmp_path / "intent.json", auto_start=False)
    res = w.cmd("start", "x")
    assert res is not None and res.ok and "starts when it logs in" in res.detail
    assert w.login() == [m.Instruments, m.Start, m.StratParams]
    assert w.sent(m.Start)[-1].params == "x"


def test_control_refuses_an_unreadable_intent_file(tmp_path):
    state = tmp_path / "intent.json"
    state.write_text('{"version": 1, "strategies": {"s1": {"intent": "paused"}}}')
    with pytest.raises(ConfigError) as err:
        World(state)
    assert str(state) in str(err.value) and "paused" in str(err.value)
    state.write_text("{not json")
    with pytest.raises(ConfigError):
        World(state)


def test_intent_file_write_is_atomic(tmp_path, monkeypatch):
    """A write that fails half-way leaves the previous file whole and no temporary file."""
    path = tmp_path / "intent.json"
    store = IntentFile(path)
    store.set("a", OperatorIntent(intent="stopped", by="cli:bob", ts=1))
    before = path.read_text()

    def fail(*_a: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.set("a", OperatorIntent(intent="running", by="cli:bob", ts=2))
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intent.json"]
    monkeypatch.undo()
    assert IntentFile(path).get("a") == OperatorIntent(intent="stopped", by="cli:bob", ts=1)


def test_control_stop_still_stops_when_the_intent_cannot_be_saved(tmp_path, caplog):
    w = World(tmp_path / "intent.json")
    w.login()
    w.control.intents.path = tmp_path / "no" / "such" / "dir" / "x.json"
    (tmp_path / "no").write_text("a file where a folder should be")
    w.cmd("stop")
    assert w.sent(m.Stop)
    assert "not saved" in caplog.text


# --- trading states (docs/risk.md) ----------------------------------------------------------------


def test_control_risk_state_is_saved_and_sent_before_start_at_every_login(tmp_path):
    state = tmp_path / "state.json"
    w = World(state)
    res = w.cmd("risk", "reduce-only", "inventory", "too", "big")
    assert res is not None and res.ok and "not connected" in res.detail
    assert "ReduceOnly when it logs in" in res.detail
    kinds = w.login()
    assert kinds == [m.Instruments, m.RiskStateSet, m.Start, m.StratParams]
    sent = w.sent(m.RiskStateSet)[-1]
    assert (sent.scope, sent.state, sent.reason, sent.by, sent.cmd_id) == (
        "strategy",
        TradingState.ReduceOnly,
        "operator: inventory too big",
        "cli:alice",
        "",  # a restore: no answer expected, no alert
    )
    # A restart of the control service reads it back from the file.
    w2 = World(state, bus=w.bus)
    assert w2.control.intents.risk[NAME].state is TradingState.ReduceOnly
    assert w2.login()[:2] == [m.Instruments, m.RiskStateSet]
    doc = json.loads(state.read_text())
    assert doc["risk"]["strategies"][NAME]["state"] == "ReduceOnly"


def test_control_risk_state_of_a_connected_strategy_goes_to_it_with_an_answer_path(tmp_path):
    w = World(tmp_path / "state.json")
    w.login()
    w.cmd("risk", "halted")
    sent = w.sent(m.RiskStateSet)[-1]
    assert sent.state is TradingState.Halted and sent.reason == "operator"
    assert sent.cmd_id and sent.reply_to == w.topics.strat_up(NAME)
    # A bad state is refused here, naming the states; nothing is saved or sent.
    before = len(w.sent(m.RiskStateSet))
    res = w.cmd("risk", "paused")
    assert res is not None and not res.ok
    assert res.detail == "'paused' is not a trading state; one of active, reduceonly, halted"
    assert len(w.sent(m.RiskStateSet)) == before
    # "risk" alone is the strategy's to answer (its figures): forwarded as a hook.
    w.cmd("risk")
    assert w.sent(m.CmdHook)[-1].name == "risk"


def test_control_records_a_halt_the_strategys_risk_layer_reports(tmp_path):
    state = tmp_path / "state.json"
    w = World(state)
    w.login()
    w.bus.publish(
        w.topics.strat_up(NAME),
        m.RiskStateSet(scope="strategy", state=TradingState.Halted, reason="max_drawdown 9 < 10"),
        qos=1,
    )
    w.run()
    saved = IntentFile(state).risk[NAME]
    assert (saved.state, saved.reason, saved.by) == (
        TradingState.Halted,
        "max_drawdown 9 < 10",
        "risk layer",
    )
    # Only its own state, on its own topic: a "desk" scope from a strategy is dropped.
    w.bus.publish(
        w.topics.strat_up(NAME),
        m.RiskStateSet(scope="desk", state=TradingState.Active),
        qos=1,
    )
    w.run()
    assert IntentFile(state).desk_risk is None


def test_intent_file_without_risk_part_reads_and_a_bad_risk_entry_is_named(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "strategies": {}}))
    f = IntentFile(path)
    assert f.risk == {} and f.desk_risk is None
    path.write_text(
        json.dumps(
            {"version": 1, "strategies": {}, "risk": {"strategies": {"s1": {"state": "Paused"}}}}
        )
    )
    with pytest.raises(ConfigError, match=r"risk\.strategies\.s1"):
        IntentFile(path)
