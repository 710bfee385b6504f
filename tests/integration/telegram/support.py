"""Helpers of the Telegram bridge tests: a fake control service, an adjustable clock, configs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveClock
from mlthon.infra.telegram.access import Role
from mlthon.infra.telegram.bridge import TelegramBridge
from mlthon.infra.telegram.config import DeliveryConfig, TelegramConfig
from tests.fakes.bot_api import FakeBotApi
from tests.integration.telegram.updates import ADMIN, GROUP, TRADER, VIEWER

ALPHA_CHAT = 5001
OPS_CHAT = -100555

HOOKS = [
    m.HookInfo(name="Quote", help="set the quote width in ticks"),
    m.HookInfo(name="flatten", help="close every position now", dangerous=True),
    m.HookInfo(name="slow", help="never answered (tests the time-out)"),
]


class OffsetClock(LiveClock):
    """The wall clock, moved forward on demand (confirmation expiry, long outages)."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def now_ns(self) -> int:
        return super().now_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        self.offset_ns += int(seconds * 1e9)


class FakeControl:
    """Answers CmdRequest with CmdResult as the control service does (see the brief)."""

    def __init__(self, bus: InProcBus, topics: Topics) -> None:
        self.bus = bus
        self.topics = topics
        self.requests: list[m.CmdRequest] = []
        self.held_stops: list[m.CmdRequest] = []
        self.params: dict[str, dict[str, str]] = {}
        bus.subscribe(topics.cmd(), self._on_cmd)

    def advertise(
        self, strat: str = "alpha", hooks: list[m.HookInfo] | None = None, **kw: Any
    ) -> None:
        status = m.StratStatus(
            strat=strat, state=kw.pop("state", "running"), hooks=hooks or [], **kw
        )
        self.bus.publish(self.topics.strat_status(strat), status, retain=True)

    def names(self) -> list[str]:
        return [r.name for r in self.requests]

    def _answer(self, req: m.CmdRequest, ok: bool, detail: str = "") -> None:
        self.bus.publish(
            req.reply_to, m.CmdResult(cmd_id=req.cmd_id, strat=req.strat, ok=ok, detail=detail)
        )

    def _on_cmd(self, topic: str, req: Any) -> None:
        assert isinstance(req, m.CmdRequest)
        self.requests.append(req)
        if req.name == "start":
            self._answer(req, True, "on_start ran")
        elif req.name == "stop":
            self.held_stops.append(req)  # answered by ack_stop(), as after send_stop_ack
        elif req.name == "params":
            self.params[req.strat] = dict(a.split("=", 1) for a in req.args)
            self._answer(req, True)
        elif req.name == "status":
            detail = {
                "state": "running",
                "position": {"BTCUSDT": "0.5"},
                "open_orders": 2,
                "pnl": "12.5",
                "gateways": {"Sim": "ReadyToTrade"},
            }
            self._answer(req, True, json.dumps(detail))
        elif req.name == "strategies":
            self._answer(
                req,
                True,
                json.dumps(
                    [{"name": "alpha", "state": "running"}, {"name": "beta", "state": "stopped"}]
                ),
            )
        elif req.name == "slow":
            pass
        elif req.name in ("Quote", "flatten"):
            self._answer(req, True, f"{req.name} {' '.join(req.args)}".strip())
        else:
            self._answer(req, False, "unknown command")

    def ack_stop(self) -> None:
        for req in self.held_stops:
            self._answer(req, True, "stop acknowledged")
        self.held_stops.clear()


def make_config(api: FakeBotApi, tmp_path: Path, **over: Any) -> TelegramConfig:
    delivery = DeliveryConfig(
        per_chat_interval_s=0.0,
        per_group_interval_s=0.0,
        global_rate_per_s=1000.0,
        delay_mark_after_s=10.0,
        retry_min_s=0.05,
        retry_max_s=0.2,
    )
    if "delivery" in over:
        delivery = DeliveryConfig(**{**_fields(delivery), **over.pop("delivery")})
    values: dict[str, Any] = {
        "token": api.token,
        "base_url": api.base_url,
        "client_id": "tg-test",
        "poll_timeout_s": 1.0,
        "confirm_timeout_s": 30.0,
        "cmd_timeout_s": 5.0,
        "audit_log": tmp_path / "audit.jsonl",
        "ops_chat": OPS_CHAT,
        "strategy_chats": {"alpha": ALPHA_CHAT},
        "control_chats": frozenset({GROUP}),
        "users": {ADMIN: Role.ADMIN, TRADER: Role.TRADER, VIEWER: Role.VIEWER},
        "delivery": delivery,
    }
    values.update(over)
    return TelegramConfig(**values)


def _fields(d: DeliveryConfig) -> dict[str, Any]:
    return attrs.asdict(d)


BridgeFactory = Callable[..., Awaitable[TelegramBridge]]


async def wait_for(aw: Awaitable[Any], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        await aw


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
