"""Helpers of the chaos tests: a gateway process to kill, and a strategy-side ledger of reports."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mlthon.basics.mlt_enum import TIF, Side
from mlthon.infra.bus import messages as m
from tests import md
from tests.conftest import REPO

IID = 9001


class GatewayProc:
    """``mlthon gateway`` as a child process that a test can kill -9 and start again."""

    def __init__(self, config: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mlthon",
                "gateway",
                "--config",
                str(self.config),
                cwd=REPO,
                stdout=log,
                stderr=log,
                env={**os.environ, **(self.env or {})},
            )

    async def kill9(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        self.proc = None

    async def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self.proc = None
        return proc.returncode


def gateway_toml(root: str, port: int, journal: Path, extra: str = "") -> str:
    return (
        f'[gateway]\nexchange = "Sim"\ninstruments = [{IID}]\nroot = "{root}"\n'
        f'journal = "{journal}"\n'
        f"[bus]\nport = {port}\n{extra}"
        '[account]\nbalances = { USDT = "1000000000" }\nleverage = "100"\n'
    )


BOOK = md.book(
    ex=1, iid=IID, ts=1, ch=[(m.ADD, m.BID, "99.9", "1000"), (m.ADD, m.ASK, "100.1", "1000")]
)


@attrs.define
class Ledger:
    """What a strategy learns from its reports, with at-least-once repeats counted, not applied."""

    sent: dict[str, m.NewOrder] = attrs.field(factory=dict)
    acked: set[str] = attrs.field(factory=set)
    rejected: dict[str, int] = attrs.field(factory=dict)
    cancelled: set[str] = attrs.field(factory=set)
    fills: dict[str, m.OrderExecution] = attrs.field(factory=dict)
    filled: dict[str, Decimal] = attrs.field(factory=dict)
    repeats: int = 0
    infos: list[Any] = attrs.field(factory=list)

    def on_report(self, _topic: str, msg: Any) -> None:
        if isinstance(msg, m.OrderExecution):
            old = self.fills.get(msg.exec_id)
            if old is not None:
                assert old == msg, f"execution {msg.exec_id} repeated with other content"
                self.repeats += 1
                return
            self.fills[msg.exec_id] = msg
            self.filled[msg.cl_id] = self.filled.get(msg.cl_id, Decimal(0)) + Decimal(msg.fill_qty)
        elif isinstance(msg, m.NewOrderAck):
            self.repeats += msg.cl_id in self.acked
            self.acked.add(msg.cl_id)
        elif isinstance(msg, m.NewOrderReject):
            self.rejected[msg.cl_id] = msg.code
        elif isinstance(msg, m.OrderCancelled):
            self.repeats += msg.cl_id in self.cancelled
            self.cancelled.add(msg.cl_id)
        elif isinstance(msg, m.OrdersInfo | m.PositionInfo):
            self.infos.append(msg)

    def answered(self) -> bool:
        return all(c in self.acked or c in self.rejected for c in self.sent)

    def settled(self) -> bool:
        """Every order answered, and every IOC filled or cancelled."""
        return self.answered() and all(
            c in self.rejected
            or c in self.cancelled
            or self.filled.get(c, Decimal(0)) == Decimal(o.qty)
            for c, o in self.sent.items()
            if o.tif is TIF.IOC
        )

    def position(self) -> Decimal:
        return sum(
            (Decimal(f.fill_qty) * (1 if f.side is Side.Buy else -1) for f in self.fills.values()),
            Decimal(0),
        )

    def open_orders(self) -> set[str]:
        return {
            c
            for c, o in self.sent.items()
            if c in self.acked
            and c not in self.cancelled
            and self.filled.get(c, Decimal(0)) < Decimal(o.qty)
        }


def order(n: int, strat: str, ts: int) -> m.NewOrder:
    """The n-th order of the stream: mostly IOC takers both ways, every 5th a resting bid."""
    if n % 5 == 4:
        return m.NewOrder(
            strat=strat, cl_id=f"c{n}", instrument_id=IID, side=Side.Buy, price="90.0",
            qty="0.010", ts=ts,
        )  # fmt: skip
    buy = n % 2 == 0
    return m.NewOrder(
        strat=strat,
        cl_id=f"c{n}",
        instrument_id=IID,
        side=Side.Buy if buy else Side.Sell,
        price="100.1" if buy else "99.9",
        qty="0.001" if buy else "0.002",
        tif=TIF.IOC,
        ts=ts,
    )
