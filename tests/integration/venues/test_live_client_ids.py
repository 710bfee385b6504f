"""The client order id sent to a venue is always legal there (issue 16, item 4): Bybit's
``orderLinkId`` takes letters, digits, ``-`` and ``_`` (at most 36), Binance's
``newClientOrderId`` a superset; the fakes refuse anything else as the venues do. A strategy
name with a ``.`` or a long pair gets a deterministic short form that the gateway maps back to
(strategy, client id), across a restart through its journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlthon.basics.mlt_enum import Exchange, GtwStatus
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.live.gateway import VENUE_CID, venue_client_id
from mlthon.infra.bus.messages import NewOrderAck, NewOrderReject, OrderExecution
from tests.conftest import wait_until
from tests.fakes.venues.clock import BINANCE_CID, BYBIT_LINK_ID
from tests.integration.venues.kits import KIT_IDS, KITS, Kit
from tests.integration.venues.support import STRAT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CASES = [
    (STRAT, "a1"),  # readable: s1-a1
    ("desk.alpha", "7"),  # a '.' in the strategy's name: short form
    ("momentum_long_name", "x" * 36),  # too long together: short form
    ("my-strat", "1"),  # a '-' in the name would make the readable form ambiguous
]


@pytest.mark.parametrize(("strat", "cl_id"), CASES)
def test_venue_client_id_is_legal_on_both_venues_and_deterministic(strat: str, cl_id: str):
    vid = venue_client_id(strat, cl_id)
    assert VENUE_CID.fullmatch(vid) and BYBIT_LINK_ID.fullmatch(vid) and BINANCE_CID.match(vid)
    assert vid == venue_client_id(strat, cl_id)
    readable = (strat, cl_id) == (STRAT, "a1")
    assert (vid == f"{strat}-{cl_id}") is readable


def test_venue_client_ids_of_different_pairs_differ():
    pairs = [("a", "b-c"), ("a-b", "c"), ("a", "b_c"), ("a_b", "c"), ("s", "x"), ("t", "x")]
    ids = {venue_client_id(s, c) for s, c in pairs}
    assert len(ids) == len(pairs)


@pytest.mark.parametrize("kit", KITS, ids=KIT_IDS)
async def test_every_client_id_is_accepted_and_its_fills_reach_the_strategy(kit: Kit) -> None:
    async with kit.venue() as fx, kit.gateway(fx) as h:
        await h.ready(timeout=10)
        for strat, cl_id in CASES:
            h.send(kit.new(cl_id, strat=strat))
        acks = await h.wait(NewOrderAck, len(CASES), timeout=10)
        assert not h.of(NewOrderReject)
        assert sorted(a.cl_id for a in acks) == sorted(c for _, c in CASES)
        for strat, cl_id in CASES:
            await fx.fill(venue_client_id(strat, cl_id))
        fills = await h.wait(OrderExecution, len(CASES), timeout=10)
        assert sorted(f.cl_id for f in fills) == sorted(c for _, c in CASES)
        assert set(fx.orders) == {venue_client_id(s, c) for s, c in CASES}


async def test_short_venue_id_maps_back_to_the_strategy_after_a_restart(tmp_path: Path) -> None:
    kit = KITS[1]  # Bybit: the venue that refuses a '.'
    db = tmp_path / "journal.db"
    strat, cl_id = "desk.alpha", "long-client-id-0123456789"
    vid = venue_client_id(strat, cl_id)
    async with kit.venue() as fx:
        journal = OrderJournal(db)
        async with kit.gateway(fx, cancel_on_stop=False) as h:
            h.gw.journal = journal  # before run() reads it
            await h.ready(timeout=10)
            h.send(kit.new(cl_id, strat=strat))
            await h.wait(NewOrderAck, timeout=10)
            assert vid in fx.orders
        journal.close()
        fx.hold_pushes = True  # down: the venue fills it meanwhile, nobody hears
        await fx.fill(vid)
        fx.hold_pushes = False
        journal = OrderJournal(db)
        async with kit.gateway(fx, cancel_on_stop=False) as h2:
            h2.gw.journal = journal
            await wait_until(lambda: h2.gw.status is GtwStatus.ReadyToTrade, 30, "ready")
            (fill,) = await h2.wait(OrderExecution, timeout=10)
            assert fill.cl_id == cl_id and h2.gw.exchange is Exchange.Bybit
            assert h2.gw.reconciled_fills == 1
        journal.close()
