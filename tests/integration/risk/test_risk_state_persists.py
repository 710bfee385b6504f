"""The trading state outlives the processes: set from Telegram (a local Bot API server, the real
bridge, the real control service, over mosquitto), saved in the control service's state file, and
applied again when the strategy restarts, before its ``on_start``; the desk-wide state; a halt
of the risk layer itself recorded for the strategy's next life."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side
from mlthon.basics.mlt_enum import GtwRejectCode, TradingState
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.reactor import Reactor
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig
from mlthon.infra.telegram.bridge import TelegramBridge
from tests.conftest import wait_until
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.recorder import Recorder
from tests.harness import System, inproc_system, strategy_config
from tests.integration.telegram.support import audit_lines, make_config
from tests.integration.telegram.updates import ADMIN, command, press

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SIM = Exchange.Sim
REC_CHAT = 7001


def _buy(env: StratEnv, price: str = "100") -> int:
    return env.send_new_order(
        None,
        SIM,
        9001,
        Side.Buy,
        price,
        "0.5",
        ExecInstructions.Unset,
        OrderType.Limit,
        TIF.GTC,
        False,
    )


async def _confirmed(api: FakeBotApi, text: str, answers: int) -> str:
    """Send ``text`` as the admin, press Confirm, return the answer (the admin's
    ``answers``-th message)."""
    asked = len(api.texts(ADMIN))
    api.push(command(text, sender=ADMIN))
    await api.wait_for(lambda: len(api.texts(ADMIN)) > asked, timeout=20)
    prompt = api.sent(ADMIN)[-1]
    assert prompt["text"].startswith(f"⚠ Confirm {text}?"), prompt["text"]
    data = prompt["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    message_id = 1000 + len(api.sent())  # the fake server numbers its messages from 1001
    api.push(press(data, sender=ADMIN, chat=ADMIN, message_id=message_id))
    await api.wait_for(lambda: len(api.texts(ADMIN)) >= answers, timeout=20)
    return str(api.texts(ADMIN)[answers - 1])


async def test_a_halt_set_from_telegram_survives_a_strategy_restart(
    broker: Any, topic_root: str, tmp_path: Path
) -> None:
    state_file = tmp_path / "control-state.json"
    topics = Topics(topic_root)
    sched = LiveScheduler()
    cfg = strategy_config("rec")
    strat = Recorder("rec")
    async with (
        FakeBotApi() as api,
        MqttBus(broker.host, broker.port) as sys_bus,
        MqttBus(broker.host, broker.port) as strat_bus,
    ):
        await sys_bus.wait_connected()
        s = System(sys_bus, strat_bus, topics, strat, cfg, sched)
        s.control = ControlService(sys_bus, sched, topics, [cfg], state_path=state_file)
        s.env_kwargs = {"start_wait_s": 0.0}
        s.start_system()
        await sys_bus.flush()
        s.start_strategy()
        await s.until("on_start", timeout=30)
        env = s.env
        assert env is not None and env.risk is None  # no [risk] table
        bridge = TelegramBridge(
            make_config(api, tmp_path, strategy_chats={"rec": REC_CHAT}), sys_bus, topics=topics
        )
        await bridge.start()
        try:
            await wait_until(lambda: bridge.ready.is_set(), 30, "bridge ready")
            await wait_until(lambda: "rec" in bridge.known_hooks(), 30, "the strategy's status")

            # The admin halts the strategy from Telegram: confirmed, audited, applied.
            answer = await _confirmed(api, "/risk rec halted runaway quotes", 2)
            assert answer.startswith("✅ /risk rec halted runaway quotes"), answer
            assert "Halted (operator: runaway quotes)" in answer
            assert env.risk_state is TradingState.Halted
            await wait_until(
                lambda: any(isinstance(r, m.CancelAll) for r in s.gateway.requests),
                30,
                "the halt's cancel-all at the gateway",
            )
            await api.wait_for(lambda: any("HALTED" in t for t in api.texts(REC_CHAT)), timeout=20)
            assert "rec: HALTED: operator: runaway quotes" in api.texts(REC_CHAT)
            outcomes = [
                (line["command"], line["outcome"]) for line in audit_lines(tmp_path / "audit.jsonl")
            ]
            assert outcomes[-2:] == [("risk", "confirm_asked"), ("risk", "ok")]
            saved = json.loads(state_file.read_text())["risk"]["strategies"]["rec"]
            assert (saved["state"], saved["reason"]) == ("Halted", "operator: runaway quotes")
            assert saved["by"] == f"telegram:{ADMIN}:@user{ADMIN}"

            # The strategy process dies and a new one starts (a new connection, a new env);
            # the control service restarts too, from its file. The new env is halted before its
            # on_start: an order sent there is refused, and never reaches the gateway.
            env.close()
            await strat_bus.__aexit__(None, None, None)
            s.control.stop()
            s.control = ControlService(sys_bus, sched, topics, [cfg], state_path=state_file)
            s.control.start()
            await sys_bus.flush()
            new_orders = sum(isinstance(r, m.NewOrder) for r in s.gateway.requests)
            strat2 = Recorder("rec")
            seen: dict[str, Any] = {}

            def on_start(_params: str) -> None:
                assert strat2.env is not None
                seen["state"] = strat2.env.risk_state
                seen["cid"] = _buy(strat2.env)

            strat2.hooks["on_start"] = on_start
            async with MqttBus(broker.host, broker.port) as bus2:
                env2 = StratEnv(
                    strat2, bus2, Reactor(sched, name="strategy[rec]"), topics, start_wait_s=0.0
                )
                await wait_until(lambda: strat2.of("on_new_order_reject"), 30, "the refusal")
                assert seen["state"] is TradingState.Halted
                _, cl, code, reason = strat2.of("on_new_order_reject")[0]
                assert (cl, code) == (str(seen["cid"]), GtwRejectCode.RiskLimit)
                assert reason == "trading_state Halted (operator: runaway quotes)"
                assert sum(isinstance(r, m.NewOrder) for r in s.gateway.requests) == new_orders

                # Back to Active from Telegram: saved, and orders pass again.
                answer = await _confirmed(api, "/risk rec active", 4)
                assert answer.startswith("✅ /risk rec active"), answer
                assert env2.risk_state is TradingState.Active
                saved = json.loads(state_file.read_text())["risk"]["strategies"]["rec"]
                assert saved["state"] == "Active"
                env2.close()
        finally:
            await bridge.stop()
            s.control.stop()


async def _new_life(s: System, **env_kwargs: Any) -> StratEnv:
    """A new strategy life on the system's bus; returns its env once on_start ran, after
    checking that the state on_start saw is the state now."""
    strat = Recorder("rec")
    states: list[TradingState] = []
    strat.hooks["on_start"] = lambda _p: states.append(env.risk_state)
    env = StratEnv(
        strat, s.strat_bus, Reactor(s.scheduler), s.topics, start_wait_s=0.0, **env_kwargs
    )
    await wait_until(lambda: states, 30, "on_start of the new life")
    assert states == [env.risk_state]
    return env


async def test_the_desk_state_reaches_every_strategy_and_outlives_a_restart(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "control-state.json"
    async with inproc_system() as s:
        s.control.stop()
        s.control = ControlService(s.sys_bus, s.scheduler, s.topics, [s.cfg], state_path=state_file)
        s.control.start()
        s.start_strategy()
        await s.until("on_start")
        env = s.env
        assert env is not None

        async def desk(*args: str) -> m.CmdResult:
            cmd_id = f"desk-{len(s.results)}"
            s.sys_bus.publish(
                s.topics.cmd(),
                m.CmdRequest(
                    cmd_id=cmd_id,
                    strat="desk",
                    name="risk",
                    args=list(args),
                    reply_to=s.topics.reply(s.client),
                    sender="cli:ops",
                ),
                qos=1,
            )
            await wait_until(lambda: cmd_id in s.results, 30, "the desk's answer")
            return s.results[cmd_id]

        res = await desk("halted", "exchange", "incident")
        assert res.ok and res.detail.startswith("desk Halted: sent to rec"), res.detail
        await wait_until(lambda: env.risk_state is TradingState.Halted, 30, "the desk halt")
        assert env.risk is not None
        assert env.risk.effective_reason == "desk: operator: exchange incident"
        assert env.risk.state is TradingState.Active  # the strategy's own state is untouched
        # A strategy-level "active" does not lift the desk's halt.
        res = await s.cmd("risk", "active")
        assert res.ok and "desk Halted" in res.detail, res.detail
        assert env.risk_state is TradingState.Halted
        _buy(env)
        await s.until("on_new_order_reject")
        assert s.strat.of("on_new_order_reject")[0][3] == (
            "trading_state Halted (desk: operator: exchange incident)"
        )
        assert (await desk()).detail == "desk Halted (operator: exchange incident)"
        assert json.loads(state_file.read_text())["risk"]["desk"]["state"] == "Halted"
        assert s.control.status()["desk_risk"] == "Halted"
        assert s.control.strategies()[0]["risk"] == "Halted (desk)"

        # A new strategy life logs in: the desk's halt is applied before on_start.
        env.close()
        env2 = await _new_life(s)
        assert env2.risk_state is TradingState.Halted
        res = await desk("active")
        assert res.ok
        await wait_until(lambda: env2.risk_state is TradingState.Active, 30, "the desk resumed")
        bad = await desk("paused")
        assert not bad.ok and "'paused' is not a trading state" in bad.detail
        env2.close()


async def test_a_halt_of_the_risk_layer_is_recorded_for_the_next_life(tmp_path: Path) -> None:
    state_file = tmp_path / "control-state.json"
    risk = RiskConfig(every=InstrumentLimits(max_order_qty=Decimal("1")))
    async with inproc_system(env_kwargs={"risk": risk}) as s:
        s.control.stop()
        s.control = ControlService(s.sys_bus, s.scheduler, s.topics, [s.cfg], state_path=state_file)
        s.control.start()
        s.start_strategy()
        await s.until("on_start")
        env = s.env
        assert env is not None and env.risk is not None
        # What a breached loss limit does (RiskGuard.check_loss): the layer halts by itself.
        env.risk.set_state(TradingState.Halted, "max_daily_loss 5 < 7.5 (equity -7.5)")

        def saved() -> dict[str, Any] | None:
            if not state_file.exists():
                return None
            doc = json.loads(state_file.read_text())
            return doc.get("risk", {}).get("strategies", {}).get("rec")

        await wait_until(saved, 30, "the halt saved by the control service")
        entry = saved()
        assert entry is not None
        assert (entry["state"], entry["by"]) == ("Halted", "risk layer")
        assert entry["reason"] == "max_daily_loss 5 < 7.5 (equity -7.5)"
        # The next life starts halted.
        env.close()
        env2 = await _new_life(s, risk=risk)
        assert env2.risk_state is TradingState.Halted and env2.risk is not None
        assert env2.risk.state_reason == "max_daily_loss 5 < 7.5 (equity -7.5)"
        env2.close()
