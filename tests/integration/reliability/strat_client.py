"""A minimal strategy process for the chaos tests: a persistent MQTT session that sends orders
and appends every report it receives to a file (one JSON line each, flushed at once).

    python -m tests.integration.reliability.strat_client PORT ROOT STRAT OUT N_ORDERS FIRST [env]

With ``env`` (a restarted strategy) it sends no orders of its own: it runs a real strategy
(:class:`Adopter`, ``run_strategy`` with its env and accounting check) on the same session, which
logs in to the control service, and writes ``ADOPTED <cl_id>`` for every open order its env
adopted, cancels each, and writes ``CANCELLED <cl_id>`` when the gateway confirms.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, BinaryIO

from mlthon.api import Strategy
from mlthon.basics.mlt_enum import CancelCode, Exchange
from mlthon.basics.order import Order
from mlthon.infra.bus.codec import encode
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.runner import run_strategy
from tests.integration.reliability.chaos import IID, order


class Adopter(Strategy):
    """Cancels every order its env adopted; notes both in ``fh``."""

    def __init__(self, name: str, fh: BinaryIO) -> None:
        super().__init__(name)
        self.fh = fh

    def on_orders_info(self, exchange: Exchange, orders: list[Order]) -> None:
        for o in orders:
            if o.adopted:
                self.fh.write(f"ADOPTED {o.client_ord_id}\n".encode())
                self.env.send_cancel_order(exchange, o.instrument_id, o.client_ord_id)

    def on_order_cancelled(
        self,
        exchange: Exchange,
        client_id: str,
        unsolicited: bool,
        engine_ts: int,
        recv_ts: int,
        cancel_code: CancelCode,
        cancel_reason: str,
    ) -> None:
        self.fh.write(f"CANCELLED {client_id}\n".encode())


async def run_env(port: int, root: str, strat: str, fh: BinaryIO, bus: MqttBus) -> None:
    cfg = parse_strategy_config(
        {
            "strategy": {"name": strat, "class": "x:X"},
            "instruments": {"use": [IID]},
            "bus": {"port": port, "root": root},
        },
        "<chaos>",
    )
    await run_strategy(cfg, asyncio.Event(), bus=bus, strategy=Adopter(strat, fh))


async def main(
    port: int, root: str, strat: str, fh: BinaryIO, n_orders: int, first: int, env: bool = False
) -> None:
    topics = Topics(root)

    def on_report(_topic: str, msg: Any) -> None:
        fh.write(encode(msg) + b"\n")

    bus = MqttBus("127.0.0.1", port, client_id=f"strat-{strat}", clean_session=False)
    bus.subscribe(topics.gtw_rpt(Exchange.Sim, strat), on_report, qos=1)
    async with bus:
        await bus.wait_connected()
        fh.write(b"CONNECTED\n")
        if env:
            await run_env(port, root, strat, fh, bus)  # until killed
        for n in range(first, first + n_orders):
            req = order(n, strat, time.time_ns())
            fh.write(f"SENT {req.cl_id}\n".encode())
            bus.publish(topics.gtw_req(Exchange.Sim, strat), req, qos=1)
            await asyncio.sleep(0.005)
        await bus.flush()
        fh.write(b"ALL SENT\n")
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    a = sys.argv[1:]
    with open(a[3], "ab", buffering=0) as out:
        asyncio.run(main(int(a[0]), a[1], a[2], out, int(a[4]), int(a[5]), a[6:] == ["env"]))
