"""Topic names of the order path, made once per key and read back per topic, are the same as the
names built afresh, under any root."""

from __future__ import annotations

from mlthon.basics import Exchange
from mlthon.infra.bus.topics import Topics


def test_order_topics_and_their_exchange_are_stable_per_root():
    a, b = Topics("bt"), Topics("desk/one")
    for t in (a, b):
        for ex in (Exchange.Sim, Exchange.BinanceUsdm):
            req, rpt = t.gtw_req(ex, "mm"), t.gtw_rpt(ex, "mm")
            assert req == f"{t.root}/gtw/{ex.name}/req/mm"
            assert rpt == f"{t.root}/gtw/{ex.name}/rpt/mm"
            assert t.gtw_req(ex, "mm") is req and t.gtw_rpt(ex, "mm") is rpt
            assert t.exchange_of(req) is ex and t.exchange_of(rpt) is ex
            assert t.req_strat(req) == "mm"
        assert t.exchange_of(f"{t.root}/gtw/Nowhere/rpt/mm") is None
        assert t.exchange_of(f"{t.root}/ctl/login/mm") is None
    # a topic of one root read under another names no exchange
    assert b.exchange_of(a.gtw_rpt(Exchange.Sim, "mm")) is None
