"""Fuzzing the simulated gateway's request handling (issue 16): requests of every kind with
arbitrary field values, through the bus codec as over MQTT, each get exactly one answer (ack xor
reject; info or ``RequestReject`` for a fetch), and no exception escapes the gateway."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mlthon.gateways.sim.latency import FixedDelay, LatencyConfig
from tests.unit.gateways.helpers import book
from tests.unit.gateways.request_fuzz import Ledger, as_request, requests
from tests.unit.gateways.test_sim_gateway import MS, T0, Rig
from tests.unit.reliability.fuzzing import FUZZ

REQUESTS = requests(
    "s1",
    iids=[1, 2],
    prices=["99.0", "100.0", "100.1", "101.5", "1.00"],
    qtys=["0.001", "0.100", "1.000", "0.01"],
    cl_ids=["o1", "o2", "o3"],
)


@FUZZ
@given(fields=st.lists(REQUESTS, min_size=1, max_size=12), latency_ms=st.sampled_from([0, 3]))
def test_fuzz_sim_every_request_answered_exactly_once(
    fields: list[dict[str, Any]], latency_ms: int
) -> None:
    lat = LatencyConfig(
        entry={"default": FixedDelay(latency_ms * MS)},
        response={"default": FixedDelay(latency_ms * MS)},
    )
    rig = Rig(latency=lat, request_ttl_ns=0, overload_lag_ns=0)
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "1.000")]), T0 + MS)
    ledger = Ledger()
    for f in fields:
        req = as_request(f)
        if req is None:
            continue  # refused by the codec: the bus drops it, as over MQTT
        ledger.expect(req)
        rig.req(req)
    rig.at(rig.now + 100 * MS)  # every latency has elapsed
    for msg in rig.msgs():
        ledger.see(msg)
    ledger.check()
    # no exception escaped a handler (the bus counts them) nor reached the last line of defence
    assert rig.bus.handler_errors == 0 and rig.gw.faults == 0
