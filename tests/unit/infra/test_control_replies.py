"""Answers to commands go through the control service: a hook (or a start) forwarded to strategy
``s`` carries ``reply_to = strat/s/up``, the strategy's own topic, and the control service relays
an answer from there to the asker only if it answers a command sent to ``s`` and not answered
yet. So a strategy cannot answer, nor forge an answer to, another strategy's command; a command
whose ``reply_to`` is not a reply topic is dropped; a stop ack in another strategy's name is
not taken."""

from __future__ import annotations

from typing import Any

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimScheduler
from mlthon.infra.control import ControlService
from tests.harness import strategy_config


class World:
    """A control service for s1 and s2 (both logged in) on an in-process bus, simulated time."""

    def __init__(self) -> None:
        self.sched = SimScheduler()
        self.sched.clock.advance_to(1_700_000_000 * NS_PER_S)
        self.bus = InProcBus(self.sched)
        self.topics = Topics("r")
        cfgs = [strategy_config("s1", stop_ack_timeout_s=2), strategy_config("s2")]
        self.control = ControlService(self.bus, self.sched, self.topics, cfgs)
        self.control.start()
        self.answers: list[m.CmdResult] = []
        self.ctl: dict[str, list[Any]] = {"s1": [], "s2": []}
        self.bus.subscribe(self.topics.reply("cli"), lambda _t, x: self.answers.append(x))
        for s in ("s1", "s2"):
            self.bus.subscribe(self.topics.strat_ctl(s), lambda _t, x, s=s: self.ctl[s].append(x))
            self.bus.publish(self.topics.login(s), m.Login(strat=s, pid=1, host="h"), qos=1)
        self.run()

    def run(self, seconds: float = 1.0) -> None:
        self.sched.run_until(self.sched.now_ns() + int(seconds * NS_PER_S))

    def cmd(self, strat: str, name: str, cmd_id: str, reply_to: str | None = None) -> None:
        req = m.CmdRequest(
            cmd_id=cmd_id,
            strat=strat,
            name=name,
            reply_to=self.topics.reply("cli") if reply_to is None else reply_to,
            sender="test",
        )
        self.bus.publish(self.topics.cmd(), req, qos=1)
        self.run()

    def answer(self, on: str, cmd_id: str, detail: str, strat: str | None = None) -> None:
        result = m.CmdResult(cmd_id=cmd_id, strat=strat or on, ok=True, detail=detail)
        self.bus.publish(self.topics.strat_up(on), result, qos=1)
        self.run()

    def hooks(self, strat: str) -> list[m.CmdHook]:
        return [x for x in self.ctl[strat] if isinstance(x, m.CmdHook)]


def test_hook_answer_is_relayed_once_from_the_strategy_own_topic():
    w = World()
    w.cmd("s1", "flatten", "c1")
    (hook,) = w.hooks("s1")
    assert hook.reply_to == w.topics.strat_up("s1")
    w.answer("s1", "c1", "flat", strat="s2")  # the payload's name is not trusted: the topic is
    assert [(a.cmd_id, a.strat, a.detail) for a in w.answers] == [("c1", "s1", "flat")]
    w.answer("s1", "c1", "again")  # a second answer to the same command
    assert len(w.answers) == 1 and w.control.relayed == 1 and w.control.forged == 1


def test_a_strategy_cannot_answer_another_strategy_command_nor_one_never_sent():
    w = World()
    w.cmd("s1", "flatten", "c1")
    w.answer("s2", "c1", "forged by s2")  # s2 answers s1's command on its own topic
    w.answer("s2", "made-up", "forged by s2")  # a command never sent to anyone
    assert w.answers == [] and w.control.forged == 2
    w.answer("s1", "c1", "flat")  # the real answer still goes through
    assert [a.detail for a in w.answers] == ["flat"]


def test_start_answer_is_relayed_from_the_strategy_topic():
    w = World()
    w.cmd("s1", "stop", "c-stop")
    w.bus.publish(w.topics.strat_up("s1"), m.StopAck(strat="s1"), qos=1)
    w.run()
    w.answers.clear()
    w.cmd("s1", "start", "c-start")
    start = [x for x in w.ctl["s1"] if isinstance(x, m.Start)][-1]
    assert (start.cmd_id, start.reply_to) == ("c-start", w.topics.strat_up("s1"))
    w.answer("s1", "c-start", "started")
    assert [(a.cmd_id, a.detail) for a in w.answers] == [("c-start", "started")]


def test_command_whose_reply_to_is_not_a_reply_topic_is_dropped():
    w = World()
    for cmd_id, reply_to in (("c1", "r/strat/s2/ctl"), ("c2", "r/reply/+"), ("c3", "r/reply/")):
        w.cmd("s1", "flatten", cmd_id, reply_to=reply_to)
        w.cmd("s1", "status", f"{cmd_id}-status", reply_to=reply_to)
    assert w.hooks("s1") == [] and w.answers == []
    assert not [x for x in w.ctl["s2"] if isinstance(x, m.CmdResult)]


def test_stop_ack_in_another_strategy_name_is_not_taken():
    w = World()
    w.cmd("s1", "stop", "c-stop")
    w.bus.publish(w.topics.strat_up("s2"), m.StopAck(strat="s1"), qos=1)  # forged by s2
    w.run(3.0)  # past s1's stop_ack_timeout_s
    (answer,) = w.answers
    assert "stop escalated" in answer.detail and w.control.escalations == 1
