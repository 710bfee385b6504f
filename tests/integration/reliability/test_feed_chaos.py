"""Chaos on the market-data path: a real Binance capture replayed through the production parser
and feed engine to a strategy's env, while depth updates are dropped (a sequence gap) and the
venue connection is cut at seeded random points.

After every fault the env's book must be marked invalid until the feed resynchronised, and once
valid again it must equal, to the last level, the book of a second feed engine that saw the clean
stream up to the same update id (a fresh snapshot). The REST snapshots the resync needs are made
from that clean book, as the venue would answer, after a random delay in events.
"""

from __future__ import annotations

import gzip
import random
from decimal import Decimal

import pytest

from mlthon.api import MDSub
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import DepthDiff, DepthSnapshot, Disconnect
from mlthon.feeds.readers import read_source
from mlthon.infra.bus import messages as m
from mlthon.infra.instruments import load_instruments
from tests import md
from tests.harness import inproc_system

pytestmark = pytest.mark.integration

EX = Exchange.BinanceUsdm
IID = 1001
BTC = next(i for i in load_instruments() if i.instrument_id == IID)
LINES = 40_000
ALL = 1_000_000


def _dec(levels: list) -> list[tuple[Decimal, Decimal]]:
    return [(p.as_decimal(), q.as_decimal()) for p, q in levels]


@pytest.mark.parametrize("seed", [11, 12])
async def test_feed_gaps_and_disconnects_end_in_a_book_equal_to_a_fresh_snapshot(
    shared_data, tmp_path, seed
):
    capture = shared_data / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
    excerpt = tmp_path / "excerpt.gz"
    with gzip.open(capture, "rb") as src, gzip.open(excerpt, "wb") as dst:
        for i, line in enumerate(src):
            if i >= LINES:
                break
            dst.write(line)
    insts = [i for i in load_instruments() if i.instrument_id == IID]
    bad: list[str] = []
    events = list(read_source(excerpt, lambda why, *_: bad.append(why)))
    assert not bad
    rest = next(se.event for se in events if isinstance(se.event, DepthSnapshot))
    rnd = random.Random(seed)
    clean = FeedEngine(insts, lambda _msg: None)  # the reference: every event, no fault
    out: list[m.Msg] = []
    feed = FeedEngine(insts, out.append)  # the one the strategy listens to
    async with inproc_system() as s:
        await s.until("on_strat_params_update")
        env = s.env
        assert env is not None
        env.subscribe(EX, IID, MDSub.PriceLevelBook)
        bus, topics = s.sys_bus, s.topics
        bus.drain()

        def publish() -> None:
            # as the feed process does: the feed-wide status on its topic and the book's
            for msg in out:
                if isinstance(msg, m.FeedStatus) and msg.iid == 0:
                    bus.publish(topics.feed_status(EX), msg, qos=1, retain=True)
                bus.publish(topics.md(EX, IID), msg)
            out.clear()
            bus.drain()

        faults = drops = cuts = checks = resyncs = snapshots = 0
        clean_id = -1
        next_fault = rnd.randint(50, 400)
        snapshot_at: int | None = None
        lost = 0  # events still to lose after a cut (the outage)
        unseen_gap = False  # a dropped update is only noticed with the next one
        was_live = False
        for step, se in enumerate(events):
            ev = se.event
            clean.on_source_event(se)
            if isinstance(ev, DepthDiff) and clean.is_live(IID):
                clean_id = ev.last_id
            live = feed.is_live(IID)
            if lost:
                lost -= 1
            elif live and step >= next_fault and isinstance(ev, DepthDiff):
                faults += 1
                next_fault = step + rnd.randint(100, 700)
                snapshot_at = step + rnd.randint(1, 60)
                if rnd.random() < 0.5:
                    drops += 1  # this depth update never arrives: a sequence gap
                    unseen_gap = True
                else:
                    cuts += 1
                    feed.on_event(se.ts, EX, Disconnect("chaos: connection cut"))
                    lost = rnd.randint(0, 30)
                    feed.on_source_event(se)
            else:
                feed.on_source_event(se)
            if not (feed.is_live(IID) or lost) and snapshot_at is not None and step >= snapshot_at:
                # the REST snapshot: the clean book at the clean stream's last update id
                bids, asks = md.decimal_top(clean.book(IID), BTC, ALL)  # type: ignore[arg-type]
                snap = DepthSnapshot(
                    rest.symbol,
                    0,
                    clean_id,
                    rest.rule,
                    False,
                    [(format(p, "f"), format(q, "f")) for p, q in bids],
                    [(format(p, "f"), format(q, "f")) for p, q in asks],
                )
                feed.on_event(se.ts, EX, snap, "rest", 0)
                snapshots += 1
                snapshot_at = step + rnd.randint(5, 60)  # again later if still not synced
            publish()
            live = feed.is_live(IID)
            book = env.get_book(EX, IID)
            assert book is not None
            if not live:
                unseen_gap = False
                # the strategy is told: its book is not valid while the feed is resyncing
                assert not book.valid, f"step {step}: env book valid while the feed is not"
            elif not was_live or (not unseen_gap and rnd.random() < 0.005):
                resyncs += not was_live
                assert book.valid
                bids, asks = book.top(ALL)
                ref, got = clean.book(IID), feed.book(IID)
                assert ref is not None and got is not None
                fresh = md.decimal_top(ref, BTC, ALL)  # type: ignore[arg-type]
                assert md.decimal_top(got, BTC, ALL) == fresh, (  # type: ignore[arg-type]
                    f"step {step}: the feed resynced wrong"
                )
                assert (_dec(bids), _dec(asks)) == fresh, f"step {step}: the env's book differs"
                checks += 1
            if live and not was_live:
                snapshot_at = None  # synced: no more snapshots owed
            was_live = live
    assert faults >= 5 and drops and cuts
    # the first sync, then a resync after every fault (the last may be pending at the end)
    assert faults - 1 <= resyncs - 1 <= faults
    assert feed.stats.gaps >= drops
    print(
        f"seed {seed}: {faults} faults injected ({drops} dropped depth updates, {cuts} "
        f"connection cuts), {snapshots} REST snapshots served, {resyncs} resyncs, {checks} "
        f"book checks against a fresh snapshot, {len(events)} events"
    )
