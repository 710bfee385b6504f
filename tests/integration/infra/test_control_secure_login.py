"""On a secured mosquitto (passwords, ACLs, no anonymous access, as `mlthon run --secure` makes
it) a strategy cannot log in as another: the broker drops its login on another strategy's login
topic, and the control service drops a login whose payload names another strategy than the
topic it came on. Neither is answered (an answer would start the other strategy)."""

from __future__ import annotations

from typing import Any

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.security import ADMIN_USER, acl_text, strategy_user
from tests.conftest import wait_until
from tests.harness import strategy_config

pytestmark = pytest.mark.integration
PASSWORDS = {strategy_user("s1"): "pw-s1-5d2c", strategy_user("s2"): "pw-s2-a7e1"}


async def test_control_secure_strategy_cannot_log_in_as_another(topic_root, tmp_path, caplog):
    topics = Topics(topic_root)
    acl = acl_text(topic_root, ["s1", "s2"], ["Sim"])
    with MosquittoBroker(workdir=tmp_path, secure=True, users=PASSWORDS, acl=acl) as broker:
        async with (
            MqttBus(
                broker.host, broker.port, username=ADMIN_USER, password=broker.admin_password
            ) as admin,
            MqttBus(
                broker.host,
                broker.port,
                username=strategy_user("s1"),
                password=PASSWORDS[strategy_user("s1")],
            ) as s1,
        ):
            await admin.wait_connected()
            await s1.wait_connected()
            control = ControlService(
                admin,
                LiveScheduler(),
                topics,
                [strategy_config("s1"), strategy_config("s2")],
            )
            control.start()
            to_s1: list[Any] = []
            to_s2: list[Any] = []
            admin.subscribe(topics.strat_ctl("s1"), lambda _t, x: to_s1.append(x), qos=1)
            admin.subscribe(topics.strat_ctl("s2"), lambda _t, x: to_s2.append(x), qos=1)
            await admin.flush()
            # s1 on s2's login topic: refused by the broker's ACL.
            s1.publish(topics.login("s2"), m.Login(strat="s2", pid=1, host="h"), qos=1)
            # s1 on its own topic, in s2's name: dropped by the control service.
            s1.publish(topics.login("s1"), m.Login(strat="s2", pid=1, host="h"), qos=1)
            # s1 as itself, after the others on the same connection: a barrier.
            s1.publish(topics.login("s1"), m.Login(strat="s1", pid=1, host="h"), qos=1)
            await wait_until(
                lambda: any(isinstance(x, m.StratParams) for x in to_s1), 30, "s1's login answer"
            )
            await admin.flush()
            assert [type(x) for x in to_s1] == [m.Instruments, m.Start, m.StratParams]
            assert to_s2 == []
            assert not control.strats["s2"].logged_in
            assert "login naming 's2' sent on 's1'" in caplog.text
            control.stop()
