"""Fuzzing the live gateways' request handling against the fake venues (issue 16): requests of
every kind with arbitrary field values, through the bus codec as over MQTT, each get exactly one
answer (ack xor reject; info or ``RequestReject`` for a fetch) and no task fails. One venue and
one gateway per test, shared by its examples; the count is checked after every request and once
more after the gateway stopped (so that a late second answer is caught too)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import wait_until
from tests.integration.venues.kits import KIT_IDS, KITS, Kit
from tests.integration.venues.support import STRAT, Harness
from tests.unit.gateways.request_fuzz import Ledger, as_request, requests
from tests.unit.reliability.fuzzing import FUZZ

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class Session:
    """A fake venue, its gateway and the ledger of requests and answers."""

    def __init__(self, kit: Kit, h: Harness) -> None:
        self.kit = kit
        self.h = h
        self.ledger = Ledger()
        self.requests = requests(
            STRAT,
            iids=[kit.iid],
            prices=["49000.0", "49000.1", "50000.1", "48000.5"],
            qtys=["0.010", "0.001", "0.020", "0.5"],
            cl_ids=[f"o{i}" for i in range(500)],
        )

        self._counted = 0

    def answers(self) -> Ledger:
        """The ledger, with the reports received since the last call counted."""
        reports = self.h.reports
        for msg in reports[self._counted :]:
            self.ledger.see(msg)
        self._counted = len(reports)
        return self.ledger


@pytest.fixture(params=KITS, ids=KIT_IDS)
async def session(request: pytest.FixtureRequest) -> AsyncIterator[Session]:
    kit: Kit = request.param
    async with contextlib.AsyncExitStack() as stack:
        fx = await stack.enter_async_context(kit.venue())
        h = await stack.enter_async_context(kit.gateway(fx, request_ttl_ns=2_000_000_000))
        await h.ready(timeout=10)
        s = Session(kit, h)
        yield s
        # the gateway stops at the end of this block; then no request may have two answers
    assert s.h.gw.faults == 0, "a request task failed"
    s.answers().check()


@settings(
    FUZZ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz_live_every_request_answered_exactly_once(
    session: Session, data: st.DataObject
) -> None:
    fields: list[dict[str, Any]] = data.draw(st.lists(session.requests, min_size=1, max_size=8))
    for f in fields:
        req = as_request(f)
        if req is None:
            continue  # refused by the codec: the bus drops it, as over MQTT
        kind = session.ledger.expect(req)
        want = session.ledger.expected[kind]
        session.h.send(req)
        await wait_until(
            lambda kind=kind, want=want: session.answers().answers[kind] >= want,
            10,
            f"the answer to {type(req).__name__} {f!r:.300}",
        )
    session.answers().check()
