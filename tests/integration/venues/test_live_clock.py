"""The live gateways keep each venue's clock offset (issue 16, item 4): measured against the
venue's time endpoint at start and after a timestamp reject, signed requests stamped with local
time + offset; a timestamp reject is answered ``ClockOffset`` naming the offset, and takes the
gateway out of ``ReadyToTrade`` until the offset is measured again. The fake venues serve a
clock far from the host's and check every signed timestamp as the real ones do."""

from __future__ import annotations

import re

import pytest

from mlthon.basics.mlt_enum import GtwRejectCode, GtwStatus
from mlthon.infra.bus.messages import NewOrderAck, NewOrderReject
from tests.conftest import wait_until
from tests.integration.venues.kits import KIT_IDS, KITS, Kit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOUR_MS = 3_600_000


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
@pytest.mark.parametrize("offset_ms", [HOUR_MS, -HOUR_MS], ids=["ahead", "behind"])
async def test_venue_clock_far_from_the_hosts_trades_with_the_measured_offset(
    kit: Kit, offset_ms: int
) -> None:
    async with kit.venue() as fx:
        fx.clock.offset_ms = offset_ms
        async with kit.gateway(fx) as h:
            await h.ready(timeout=10)
            h.send(kit.new("c1"))
            (ack,) = await h.wait(NewOrderAck, timeout=10)
            assert ack.cl_id == "c1"
            clock = h.gw.api.clock
            assert abs(clock.offset_ms - offset_ms) < 1_000 and clock.syncs >= 1
            assert fx.clock.refused == 0 and not h.of(NewOrderReject)


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
async def test_venue_clock_jump_rejects_with_a_clear_reason_leaves_ready_then_resyncs(
    kit: Kit,
) -> None:
    async with kit.venue() as fx, kit.gateway(fx) as h:
        await h.ready(timeout=10)
        fx.clock.offset_ms = -10 * 60_000  # the venue's clock is now 10 min behind ours
        h.send(kit.new("t1"))
        (rej,) = await h.wait(NewOrderReject, timeout=10)
        assert rej.code is GtwRejectCode.ClockOffset
        assert "timestamp" in rej.reason
        assert re.search(r"measured offset [+-]\d ms is outside its 5000 ms", rej.reason)
        off = [s for s in h.statuses if s.status is GtwStatus.Connecting and "clock" in s.detail]
        assert off and "offset" in off[0].detail
        await h.ready(n=2, timeout=10)  # ReadyToTrade again once the offset is measured
        back = [s for s in h.statuses if s.status is GtwStatus.ReadyToTrade][-1]
        assert "offset" in back.detail and h.gw.clock_rejects >= 1
        assert abs(h.gw.api.clock.offset_ms + 600_000) < 1_000
        h.send(kit.new("t2"))
        (ack,) = await h.wait(NewOrderAck, timeout=10)
        assert ack.cl_id == "t2"


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
async def test_requests_while_the_clock_is_off_refused_not_ready(kit: Kit) -> None:
    async with kit.venue() as fx, kit.gateway(fx) as h:
        await h.ready(timeout=10)
        fx.clock.offset_ms = -10 * 60_000
        # the time endpoint fails for a while: the offset cannot be measured yet
        if kit is KITS[0]:
            fx.fail("GET", "/fapi/v1/time", 503, -1001, "Internal error.", times=1000)
        else:
            fx.fail("/v5/market/time", 10016, "Server error.", times=1000)
        h.send(kit.new("t1"))
        await h.wait(NewOrderReject, timeout=10)
        await wait_until(lambda: h.gw.status is GtwStatus.Connecting, 30, "Connecting")
        n = len(fx.requests)
        h.send(kit.new("t2"))
        rej = await h.wait(NewOrderReject, 2, timeout=10)
        assert rej[0].code is GtwRejectCode.ClockOffset
        assert rej[1].code is GtwRejectCode.GtwNotReady and "clock offset" in rej[1].reason
        assert not [r for r in fx.requests[n:] if "order" in r[1]]  # t2 never sent
        fx.faults.clear()
        await h.ready(n=2, timeout=10)
