"""A minimal strategy process for the chaos tests: a persistent MQTT session that sends orders
and appends every report it receives to a file (one JSON line each, flushed at once).

    python -m tests.integration.reliability.strat_client PORT ROOT STRAT OUT N_ORDERS FIRST
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import BinaryIO

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.bus.codec import encode
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.integration.reliability.chaos import order


async def main(port: int, root: str, strat: str, fh: BinaryIO, n_orders: int, first: int) -> None:
    topics = Topics(root)

    def on_report(_topic: str, msg: object) -> None:
        fh.write(encode(msg) + b"\n")  # type: ignore[arg-type]

    bus = MqttBus("127.0.0.1", port, client_id=f"strat-{strat}", clean_session=False)
    bus.subscribe(topics.gtw_rpt(Exchange.Sim, strat), on_report, qos=1)
    async with bus:
        await bus.wait_connected()
        fh.write(b"CONNECTED\n")
        for n in range(first, first + n_orders):
            req = order(n, strat, time.time_ns())
            fh.write(f"SENT {req.cl_id}\n".encode())
            bus.publish(topics.gtw_req(Exchange.Sim), req, qos=1)
            await asyncio.sleep(0.005)
        await bus.flush()
        fh.write(b"ALL SENT\n")
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    a = sys.argv[1:]
    with open(a[3], "ab", buffering=0) as out:
        asyncio.run(main(int(a[0]), a[1], a[2], out, int(a[4]), int(a[5])))
