"""A whole system in one test: control service, scripted gateway, a feed stand-in and one
strategy, on the in-process bus or on a real mosquitto."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

from mlthon.basics import Exchange
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.config import StrategyConfig, parse_strategy_config
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.reactor import Reactor
from tests.conftest import wait_until
from tests.fakes.recorder import Recorder
from tests.fakes.scripted_gateway import ScriptedGateway

_ids = itertools.count()


def strategy_config(name: str = "rec", **over: Any) -> StrategyConfig:
    data: dict[str, Any] = {
        "strategy": {
            "name": name,
            "class": "tests.fakes.recorder:Recorder",
            "stop_ack_timeout_s": over.pop("stop_ack_timeout_s", 5),
        },
        "params": over.pop("params", {"spread": 2, "size": "0.001", "active": True}),
        "instruments": {"use": over.pop("use", [9001, 1001])},
    }
    data["strategy"].update(over)
    return parse_strategy_config(data, "<test>")


class System:
    """The parts, and a client to send commands as the CLI would."""

    def __init__(
        self,
        sys_bus: BusBase,
        strat_bus: BusBase,
        topics: Topics,
        strat: Recorder,
        cfg: StrategyConfig,
        scheduler: LiveScheduler,
    ) -> None:
        self.sys_bus = sys_bus
        self.strat_bus = strat_bus
        self.topics = topics
        self.strat = strat
        self.cfg = cfg
        self.scheduler = scheduler
        self.control = ControlService(sys_bus, scheduler, topics, [cfg])
        self.gateway = ScriptedGateway(sys_bus, topics)
        self.reactor = Reactor(scheduler, name=f"strategy[{cfg.name}]")
        self.env: StratEnv | None = None
        self.env_kwargs: dict[str, Any] = {}
        self.results: dict[str, m.CmdResult] = {}
        self.client = f"cli{next(_ids)}"

    def start_system(self) -> None:
        self.control.start()
        self.gateway.start()
        self.sys_bus.subscribe(self.topics.reply(self.client), self._on_result, qos=1)

    def start_strategy(self, **env_kwargs: Any) -> None:
        """Build the env (``StratEnv`` keyword arguments: ``env_kwargs``, else the system's)."""
        kwargs = {**self.env_kwargs, **env_kwargs}
        self.env = StratEnv(self.strat, self.strat_bus, self.reactor, self.topics, **kwargs)

    def _on_result(self, topic: str, msg: Any) -> None:
        self.results[msg.cmd_id] = msg

    async def cmd(self, name: str, *args: str, timeout: float = 30.0) -> m.CmdResult:
        cmd_id = f"c{next(_ids)}"
        self.sys_bus.publish(
            self.topics.cmd(),
            m.CmdRequest(
                cmd_id=cmd_id,
                strat=self.cfg.name,
                name=name,
                args=list(args),
                reply_to=self.topics.reply(self.client),
                sender="test",
            ),
            qos=1,
        )
        await wait_until(lambda: cmd_id in self.results, timeout, f"answer to {name}")
        return self.results[cmd_id]

    def feed(self, msg: m.Msg, exchange: Exchange = Exchange.Sim, iid: int = 9001) -> None:
        self.sys_bus.publish(self.topics.md(exchange, iid), msg)

    async def until(self, name: str, count: int = 1, timeout: float = 30.0) -> None:
        await wait_until(lambda: len(self.strat.of(name)) >= count, timeout, name)


@contextlib.asynccontextmanager
async def inproc_system(
    strat: Recorder | None = None, *, env_kwargs: dict[str, Any] | None = None, **cfg_over: Any
) -> AsyncIterator[System]:
    """The system on the in-process bus; ``env_kwargs`` go to ``StratEnv``, ``cfg_over`` to the
    strategy's config."""
    sched = LiveScheduler()
    bus = InProcBus(sched)
    strat = strat or Recorder()
    s = System(bus, bus, Topics("mlt"), strat, strategy_config(strat.name, **cfg_over), sched)
    s.env_kwargs = dict(env_kwargs or {})
    s.start_system()
    s.start_strategy()
    yield s


@contextlib.asynccontextmanager
async def mqtt_system(
    port: int,
    root: str,
    strat: Recorder | None = None,
    *,
    env_kwargs: dict[str, Any] | None = None,
    **cfg_over: Any,
) -> AsyncIterator[System]:
    """The system over a real broker, each side on its own connection.

    The harness has a gateway for Sim only and no feed process, so the env's wait for every
    gateway and feed status before ``on_start`` (``start_wait_s``) is off unless ``env_kwargs``
    sets it (``tests/integration/infra/test_env_start_gate.py`` does)."""
    sched = LiveScheduler()
    strat = strat or Recorder()
    async with MqttBus("127.0.0.1", port) as sys_bus, MqttBus("127.0.0.1", port) as strat_bus:
        await sys_bus.wait_connected()
        s = System(
            sys_bus, strat_bus, Topics(root), strat, strategy_config(strat.name, **cfg_over), sched
        )
        s.env_kwargs = {"start_wait_s": 0.0, **(env_kwargs or {})}
        s.start_system()
        await sys_bus.flush()
        s.start_strategy()
        yield s
