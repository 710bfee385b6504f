"""A strategy is started once per start, and once only while it runs.

While the control service is away the env sends its login again every few seconds; the broker
keeps them all for the control service's persistent session and delivers them at once when it
comes back, and the control service answers each with a start. The env runs ``on_start`` for the
first only. A start command (the CLI's, Telegram's) on a running strategy is a no-op that says
so ("already running"; it used to run ``on_start`` a second time in the same process), no start
undoes a stop in progress, and after the stop a start command starts it again.
"""

from __future__ import annotations

from mlthon.infra.bus import messages as m
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.harness import inproc_system


async def test_repeated_starts_run_on_start_once_and_do_not_undo_a_stop():
    async with inproc_system(Recorder(auto_ack_stop=False)) as s:
        await s.until("on_start")
        env = s.env
        assert env is not None
        ctl = s.topics.strat_ctl(s.cfg.name)
        answers: list[m.CmdResult] = []
        s.sys_bus.subscribe("answers/t", lambda _t, x: answers.append(x), qos=1)
        # The answers to three more logins (no command id): on_start is not run again.
        for _ in range(3):
            s.sys_bus.publish(ctl, m.Start(), qos=1)
        # Nor by a start command on the running strategy: it answers that it runs already.
        s.sys_bus.publish(ctl, m.Start(params="level=2", cmd_id="s1", reply_to="answers/t"), qos=1)
        await wait_until(lambda: len(answers) == 1, what="the command's answer")
        assert [a for (a,) in s.strat.of("on_start")] == [""]
        assert (answers[0].ok, answers[0].detail) == (True, "already running")
        assert env.state == "running"
        # A stop, then a late start: the stop goes on and is acknowledged.
        s.sys_bus.publish(ctl, m.Stop(params="bye"), qos=1)
        await s.until("on_stop")
        assert env.state == "stopping"
        s.sys_bus.publish(ctl, m.Start(cmd_id="late", reply_to="answers/t"), qos=1)
        s.sys_bus.publish(ctl, m.Start(), qos=1)
        await wait_until(lambda: len(answers) == 2, what="the late start's answer")
        assert (answers[-1].ok, answers[-1].detail) == (False, "stopping")
        assert env.state == "stopping" and len(s.strat.of("on_start")) == 1
        env.send_stop_ack()
        assert env.state == "stopped"
        # After the stop, a start command starts it again, with its parameters.
        s.sys_bus.publish(ctl, m.Start(params="level=3", cmd_id="again", reply_to="answers/t"))
        await s.until("on_start", 2)
        assert env.state == "running"
        assert [a for (a,) in s.strat.of("on_start")] == ["", "level=3"]
        await wait_until(lambda: len(answers) == 3, what="the start's answer")
        assert (answers[-1].ok, answers[-1].detail) == (True, "started")
