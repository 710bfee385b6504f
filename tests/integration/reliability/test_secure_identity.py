"""Identity on a secured broker: ``mlthon status``, ``doctor`` and ``cmd`` log in with the admin's
credentials (a password file, as every other client) and say "not authorized" when the broker
refuses them; a strategy cannot write on any reply topic, and its answers reach the asker only
through the control service, for commands it was sent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.security import ADMIN_USER, acl_text
from tests.conftest import REPO, wait_until
from tests.harness import strategy_config

pytestmark = pytest.mark.integration
PASSWORDS = {"strat-s1": "pw-s1-83hd", "strat-s2": "pw-s2-1kq0", ADMIN_USER: "pw-admin-x7"}


def _secure(root: str, tmp_path: Path) -> MosquittoBroker:
    acl = acl_text(root, ["s1", "s2"], ["Sim"])
    tmp_path.mkdir(exist_ok=True)
    return MosquittoBroker(workdir=tmp_path, secure=True, users=PASSWORDS, acl=acl)


def _mlthon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLTHON_BUS_")}
    return subprocess.run(
        [sys.executable, "-m", "mlthon", "--log-level", "WARNING", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


def write_secret_file(path: Path, secret: str) -> Path:
    path.write_text(secret)
    path.chmod(0o600)
    return path


async def _announce(broker: MosquittoBroker, topics: Topics) -> None:
    """A retained gateway heartbeat, published as the admin, for status to show."""
    async with MqttBus(
        broker.host, broker.port, username=ADMIN_USER, password=PASSWORDS[ADMIN_USER]
    ) as bus:
        await bus.wait_connected(10)
        status = m.ComponentStatus(name="Sim", kind="gateway", state="up", pid=1, host="h")
        bus.publish(topics.component_status("gateway", "Sim"), status, qos=1, retain=True)
        assert await bus.flush(10)


async def test_status_doctor_and_cmd_on_a_secure_broker_log_in_with_the_admin_credentials(
    topic_root, tmp_path
):
    secret = write_secret_file(tmp_path / "admin.pass", PASSWORDS[ADMIN_USER])
    with _secure(topic_root, tmp_path / "broker") as broker:
        await _announce(broker, Topics(topic_root))
        bus = ["--port", str(broker.port), "--root", topic_root]

        def status(*extra: str, env: dict[str, str] | None = None) -> Any:
            return _mlthon("status", "--json", *bus, *extra, env=env)

        # without credentials: refused, and said so (not "no broker", not "start one")
        run = await asyncio.to_thread(status)
        assert run.returncode == 3, run.stderr
        assert "refused the connection without credentials: Not authorized" in run.stderr
        assert "mlthon broker" not in run.stderr and "--password-file" in run.stderr
        # with the admin's password file, on the command line or in the environment
        for extra, env in (
            (("--password-file", str(secret)), None),
            ((), {"MLTHON_BUS_PASSWORD_FILE": str(secret)}),
            ((), {"MLTHON_BUS_USERNAME": ADMIN_USER, "MLTHON_BUS_PASSWORD": "pw-admin-x7"}),
        ):
            run = await asyncio.to_thread(status, *extra, env=env)
            assert run.returncode == 0, run.stderr
            names = [(c["kind"], c["name"]) for c in json.loads(run.stdout)["components"]]
            assert ("gateway", "Sim") in names
        # a wrong password: refused as that user
        wrong = write_secret_file(tmp_path / "wrong.pass", "nope")
        run = await asyncio.to_thread(status, "--password-file", str(wrong))
        assert run.returncode == 3 and f"as '{ADMIN_USER}'" in run.stderr, run.stderr

        doctor = ["doctor", *bus, "--connect-timeout", "2", "--dir", str(tmp_path)]
        run = await asyncio.to_thread(_mlthon, *doctor)
        line = next(x for x in run.stdout.splitlines() if "broker:" in x)
        assert line.startswith("[FAIL] broker: not authorized:"), run.stdout
        assert "mlthon broker" not in line
        run = await asyncio.to_thread(_mlthon, *doctor, "--password-file", str(secret))
        line = next(x for x in run.stdout.splitlines() if "broker:" in x)
        assert line.startswith("[OK  ] broker:") and f"as {ADMIN_USER}" in line, run.stdout

        run = await asyncio.to_thread(_mlthon, "cmd", "s1", "status", *bus, "--timeout", "5")
        assert run.returncode == 3 and "Not authorized" in run.stderr, run.stderr


async def test_a_strategy_cannot_write_replies_its_answers_go_through_control(topic_root, tmp_path):
    topics = Topics(topic_root)
    answers: list[m.CmdResult] = []
    hooks: list[m.CmdHook] = []
    barrier: list[Any] = []
    with _secure(topic_root, tmp_path) as broker:

        def login(user: str) -> MqttBus:
            return MqttBus(broker.host, broker.port, username=user, password=PASSWORDS[user])

        async with login(ADMIN_USER) as sys_bus, login("strat-s1") as s1, login("strat-s2") as s2:
            control = ControlService(
                sys_bus, LiveScheduler(), topics, [strategy_config("s1"), strategy_config("s2")]
            )
            control.start()
            sys_bus.subscribe(topics.reply("cli"), lambda _t, x: answers.append(x), qos=1)
            sys_bus.subscribe(topics.strat_status("s2"), lambda _t, x: barrier.append(x), qos=1)
            s1.subscribe(
                topics.strat_ctl("s1"),
                lambda _t, x: hooks.append(x) if isinstance(x, m.CmdHook) else None,
                qos=1,
            )
            await sys_bus.wait_connected(10)
            for _ in range(100):  # as the env does: log in again until answered
                for bus, name in ((s1, "s1"), (s2, "s2")):
                    bus.publish(topics.login(name), m.Login(strat=name, pid=1, host="h"), qos=1)
                if all(st.logged_in for st in control.strats.values()):
                    break
                await asyncio.sleep(0.2)
            assert all(st.logged_in for st in control.strats.values())
            request = m.CmdRequest(
                cmd_id="c1", strat="s1", name="flatten", reply_to=topics.reply("cli"), sender="t"
            )
            sys_bus.publish(topics.cmd(), request, qos=1)
            await wait_until(lambda: hooks, 30, "the hook at s1")
            # s2 answers s1's command: on the asker's reply topic (the broker drops it), and on
            # its own topic (the control service drops it: c1 was not sent to s2)
            forged = m.CmdResult(cmd_id="c1", strat="s1", ok=True, detail="forged by s2")
            s2.publish(topics.reply("cli"), forged, qos=1)
            s2.publish(topics.strat_up("s2"), forged, qos=1)
            # a barrier: what s2 published before reaches the readers before this
            s2.publish(topics.strat_status("s2"), m.StratStatus(strat="s2", state="x"), qos=1)
            await wait_until(lambda: barrier, 30, "s2's barrier")
            assert answers == []
            (hook,) = hooks
            s1.publish(
                hook.reply_to, m.CmdResult(cmd_id="c1", strat="s1", ok=True, detail="s1"), qos=1
            )
            await wait_until(lambda: answers, 30, "s1's answer")
            assert [(a.cmd_id, a.strat, a.detail) for a in answers] == [("c1", "s1", "s1")]
            control.stop()
