"""Market data to strategy callbacks: one instrument's subscriptions, its book and its calls.

For each subscribed (exchange, instrument) the env keeps an :class:`MdState` (the subscriptions,
the :class:`~mlthon.infra.env.book_view.EnvBook`, the last best levels) and a handler for the
instrument's market-data topic, specialised for what the strategy subscribed to and implements
(:func:`book_handler`). Per ``BookUpdate`` (the bulk of the traffic) it:

1. applies the message to the env's own book, unless the book is shared with an in-process feed
   that applied it already (a backtest); each tick and lot count is checked when first seen, so a
   value that is not sane makes the book invalid instead of reaching the strategy;
2. calls the per-level callbacks the strategy implements (price levels, level ids: a price-level
   feed's level id is the price in ticks), then the batched ``on_book_update``;
3. calls the BBO callbacks when the best bid or ask changed, in price or size.

Every callback group a strategy leaves at :class:`~mlthon.api.Strategy`'s do-nothing body is
never called (:func:`implemented_groups`). Order-level ``LevelUpdate`` messages
(:func:`on_levels`), trades (:func:`on_trades`) and the rest go through the env.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlthon.api.istrategy import BookAction, IStrategy, Strategy
from mlthon.basics.book import OrderLevelBook
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, MDSub, Side
from mlthon.basics.tickbook import ADD, DELETE, MODIFY, NO_ASK, NO_BID
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import Subscription
from mlthon.infra.env.book_view import EnvBook
from mlthon.infra.env.feed_watch import FeedMark

if TYPE_CHECKING:
    from mlthon.infra.env.strat_env import StratEnv

_SIDES = {1: Side.Buy, 2: Side.Sell, 0: Side.Unset}
_SIDE_BY_INT = (Side.Unset, Side.Buy, Side.Sell)
_ACTIONS = (BookAction.Add, BookAction.Modify, BookAction.Delete)

# Market-data callbacks by group: a group whose methods are all the do-nothing ones of
# ``Strategy`` (not overridden) is not called at all, which nobody can observe and which saves
# a call per book event (a strategy subscribed to LevelBook for the book, say, but not
# implementing the level callbacks).
CALLBACK_GROUPS = {
    "price_levels": ("on_add_price_level", "on_modify_price_level", "on_delete_price_level"),
    "levels": ("on_add_level", "on_modify_level", "on_delete_level"),
    "bbo": ("on_best_bid_level_update", "on_best_ask_level_update"),
    "book": ("on_book_update",),
    "trades": ("on_public_trade",),
}


def implemented_groups(strategy: IStrategy) -> frozenset[str]:
    """The market-data callback groups ``strategy`` implements (overrides at least one method
    of, on its class or on the instance)."""
    own = vars(strategy) if hasattr(strategy, "__dict__") else {}
    out = set()
    for group, names in CALLBACK_GROUPS.items():
        for name in names:
            if name in own or getattr(type(strategy), name, None) is not getattr(Strategy, name):
                out.add(group)
                break
    return frozenset(out)


class MdState:
    """Subscriptions, book and last best levels of one (exchange, instrument)."""

    __slots__ = (
        "ask_lots",
        "ask_tick",
        "bid_lots",
        "bid_tick",
        "book",
        "exchange",
        "feed",
        "iid",
        "implemented",
        "last_seq",
        "last_ts",
        "subs",
        "topic_sub",
        "want_batch",
        "want_bbo",
        "want_funding",
        "want_levels",
        "want_price_levels",
        "want_trades",
        "was_valid",
    )

    def __init__(
        self, exchange: Exchange, inst: Instrument, implemented: frozenset[str], feed: FeedMark
    ) -> None:
        self.exchange = exchange
        self.feed = feed  # the feed's liveness mark, set by every message
        self.was_valid = False  # the book's validity when its feed went stale
        self.iid = inst.instrument_id
        self.implemented = implemented
        self.subs: set[MDSub] = set()
        self.book = EnvBook(inst, feed)
        self.last_ts = 0
        self.last_seq = 0  # the feed's sequence number of the last message (0: none yet)
        self.topic_sub: Subscription | None = None
        self.forget_best()
        self.refresh()

    def forget_best(self) -> None:
        """Forget the best levels told to the strategy (the next ones are told again)."""
        self.bid_tick = NO_BID
        self.bid_lots = 0
        self.ask_tick = NO_ASK
        self.ask_lots = 0

    def refresh(self) -> None:
        s = self.subs
        uses = self.implemented
        self.want_levels = (MDSub.OrderBook in s or MDSub.LevelBook in s) and "levels" in uses
        self.want_price_levels = MDSub.PriceLevelBook in s and "price_levels" in uses
        self.want_batch = MDSub.PriceLevelBook in s and "book" in uses
        self.want_bbo = MDSub.BBO in s and "bbo" in uses
        self.want_trades = MDSub.PublicTrades in s and "trades" in uses
        self.want_funding = MDSub.Funding in s


def emit_bbo(env: StratEnv, st: MdState, ts: int) -> None:
    """The BBO callbacks of ``st`` if its best bid or ask changed since they were last told (a
    side that empties is not told; its next best is)."""
    book = st.book
    if not st.want_bbo or book.building:
        return
    tb = book.book
    t = tb.bid
    n = tb.bid_lots()
    if t != st.bid_tick or n != st.bid_lots:
        st.bid_tick = t
        st.bid_lots = n
        if t != NO_BID:
            env.reactor.invoke(
                env.strategy.on_best_bid_level_update,
                st.exchange,
                st.iid,
                book.prices[t],
                book.qtys[n],
                ts,
            )
    t = tb.ask
    n = tb.ask_lots()
    if t != st.ask_tick or n != st.ask_lots:
        st.ask_tick = t
        st.ask_lots = n
        if t != NO_ASK:
            env.reactor.invoke(
                env.strategy.on_best_ask_level_update,
                st.exchange,
                st.iid,
                book.prices[t],
                book.qtys[n],
                ts,
            )


def book_handler(env: StratEnv, st: MdState) -> Callable[[str, Any], None]:
    """The market-data handler of one instrument, specialised for its subscriptions.

    Price-level book batches, the bulk of the traffic, are handled here with everything they
    need bound once (closure cells are as fast as locals); the rest goes through the env.
    """
    book = st.book
    tb = book.book
    own = not book.shared
    apply = tb.apply
    prices = book.prices
    qtys = book.qtys
    strat = env.strategy
    ex = st.exchange
    iid = st.iid
    want_pl = st.want_price_levels
    want_lv = st.want_levels
    want_batch = st.want_batch
    want_bbo = st.want_bbo
    n_cb = want_pl + want_lv
    on_add = strat.on_add_price_level
    on_mod = strat.on_modify_price_level
    on_del = strat.on_delete_price_level
    on_add_l = strat.on_add_level
    on_mod_l = strat.on_modify_level
    on_del_l = strat.on_delete_level
    on_batch = strat.on_book_update
    sides = _SIDE_BY_INT
    actions = _ACTIONS
    reactor = env.reactor
    on_other = env._on_md
    perf = time.perf_counter_ns
    check_seq = env._check_md_seq
    book_update = m.BookUpdate
    trade_update = m.TradeUpdate
    # Trades nobody reads (no on_public_trade) and no sequence to check: counted, nothing else.
    skip_trades = not st.want_trades and not check_seq
    feed_status = m.FeedStatus
    book_invalid = FeedHandlerStatus.BookInvalid
    feed = st.feed  # liveness: one store per message, the timer compares (feed_watch)

    def apply_own(ch: list[m.BookDelta]) -> None:
        # The env's own copy (no in-process feed to read): every tick and lot count is checked
        # (and its Price / Qty made) first, then the whole message is applied before any
        # callback, so a strategy reading the book from one sees the same as in a backtest
        # (never a half-applied, possibly crossed, message).
        for _a, _s, t, n in ch:
            prices[t]
            qtys[n]
        apply(ch)

    def price_callbacks(ch: list[m.BookDelta], ts: int) -> None:
        # The common case: price-level callbacks, no level ids.
        for ev in ch:
            try:
                action, side_i, t, n = ev
                if action == DELETE:
                    on_del(ex, iid, sides[side_i], prices[t], ts)
                elif action == MODIFY:
                    on_mod(ex, iid, sides[side_i], prices[t], qtys[n], ts)
                else:
                    on_add(ex, iid, sides[side_i], prices[t], qtys[n], ts)
            except Exception as exc:  # zero cost until a callback raises
                reactor.failed("market-data callback", exc, (ev,))

    def level_callbacks(ch: list[m.BookDelta], ts: int) -> None:
        # With level-id callbacks (LevelBook / OrderBook on a price-level feed: the level id is
        # the price in ticks), and the price-level ones if subscribed too.
        for ev in ch:
            try:
                action, side_i, t, n = ev
                side = sides[side_i]
                if action == DELETE:
                    if want_pl:
                        on_del(ex, iid, side, prices[t], ts)
                    on_del_l(ex, iid, side, t, ts)
                elif action == MODIFY:
                    qty = qtys[n]
                    if want_pl:
                        on_mod(ex, iid, side, prices[t], qty, ts)
                    on_mod_l(ex, iid, side, t, qty, ts)
                else:
                    price = prices[t]
                    qty = qtys[n]
                    if want_pl:
                        on_add(ex, iid, side, price, qty, ts)
                    on_add_l(ex, iid, side, t, price, qty, ts)
            except Exception as exc:  # zero cost until a callback raises
                reactor.failed("market-data callback", exc, (ev,))

    def batch_callback(ch: list[m.BookDelta], ts: int) -> None:
        try:
            changes = [(actions[a], sides[s], prices[t], qtys[n]) for a, s, t, n in ch]
            on_batch(ex, iid, changes, ts)
        except Exception as exc:
            reactor.failed("on_book_update", exc, (len(ch),))

    run: Callable[[list[m.BookDelta], int], None] | None = None
    if want_lv:
        run = level_callbacks
    elif want_pl:
        run = price_callbacks

    def handler(topic: str, msg: Any) -> None:
        feed.seen = True
        if type(msg) is not book_update:
            if type(msg) is trade_update and skip_trades:
                env.md_messages += 1
                return
            if type(msg) is feed_status and msg.iid and msg.status is book_invalid:
                # The feed found the book wrong: its levels go (the env's own copy; a shared one
                # the feed cleared), so that nothing shows them until the next snapshot.
                book.clear()
            on_other(st, msg)
            return
        t0 = perf()
        env.md_messages += 1
        if check_seq:
            seq = msg.seq
            if seq:
                last = st.last_seq
                st.last_seq = seq
                if last and seq != last + 1 and seq != 1:
                    env._md_gap(st, last, seq)
        ts = st.last_ts = msg.ts
        ch = msg.ch
        if own:
            try:
                apply_own(ch)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                # A malformed message (the codec checked its shape, a value is not sane): the
                # book cannot be trusted until a fresh snapshot.
                env._bad_book_message(st, exc)
                return
        # A raising strategy callback is reported and the batch goes on with the next event
        # (the try inside the loop costs nothing until something raises).
        if run is not None:
            run(ch, ts)
            reactor.callbacks += len(ch) * n_cb
        if want_batch:
            batch_callback(ch, ts)
            reactor.callbacks += 1
        if want_bbo:
            emit_bbo(env, st, ts)
        elapsed = perf() - t0
        if elapsed > reactor.slow_callback_ns:
            reactor.slow("market data (BookUpdate)", elapsed)

    return handler


def on_levels(env: StratEnv, st: MdState, msg: m.LevelUpdate) -> None:
    """An order-level message: the env's order-level book, the level callbacks, the price-level
    callbacks (and ``on_book_update``) of the totals per price it changed, then BBO."""
    book = st.book
    if book.shared:
        # Order-level data: the env computes the totals per price itself.
        book.own()
        env._rebuild_md_handler(st)
    lb = book.levels
    if lb is None:
        lb = book.levels = OrderLevelBook(book.book)
    agg = book.book
    prices = book.prices
    qtys = book.qtys
    strat = env.strategy
    ex = st.exchange
    iid = st.iid
    ts = st.last_ts = msg.ts
    reactor = env.reactor
    want_levels = st.want_levels
    want_pl = st.want_price_levels
    batch: list[Any] | None = [] if st.want_batch else None
    ch = msg.ch
    i = 0
    n = len(ch)
    while i < n:
        try:
            while i < n:
                action, side_i, lid, t, lots = ch[i]
                i += 1
                side = _SIDES[side_i]
                # The prices this change touches, with their totals before it.
                touched: list[tuple[int, int, int]] = []
                old = lb.get(lid)
                if old is not None:
                    touched.append((old[0], old[1], agg.lots(old[0], old[1])))
                if action == DELETE:
                    if old is None:
                        continue
                    lb.delete(lid)
                    if want_levels:
                        reactor.callbacks += 1
                        strat.on_delete_level(ex, iid, side, lid, ts)
                else:
                    price = prices[t]
                    qty = qtys[lots]
                    if old is None or old[:2] != (side_i, t):
                        touched.append((side_i, t, agg.lots(side_i, t)))
                    if old is None or action == ADD:
                        lb.delete(lid)
                        lb.add(side_i, lid, t, lots)
                        if want_levels:
                            reactor.callbacks += 1
                            strat.on_add_level(ex, iid, side, lid, price, qty, ts)
                    else:
                        lb.modify(lid, lots, t)
                        if want_levels:
                            reactor.callbacks += 1
                            strat.on_modify_level(ex, iid, side, lid, qty, ts)
                # The totals per price it changed, as price-level changes.
                for t_side, t_tick, before in touched:
                    after = agg.lots(t_side, t_tick)
                    if after:
                        if before == after:
                            continue
                        act = MODIFY if before else ADD
                    elif before:
                        act = DELETE
                    else:
                        continue
                    if batch is not None:
                        batch.append((_ACTIONS[act], _SIDES[t_side], prices[t_tick], qtys[after]))
                    if not want_pl:
                        continue
                    reactor.callbacks += 1
                    s = _SIDES[t_side]
                    if act == ADD:
                        strat.on_add_price_level(ex, iid, s, prices[t_tick], qtys[after], ts)
                    elif act == MODIFY:
                        strat.on_modify_price_level(ex, iid, s, prices[t_tick], qtys[after], ts)
                    else:
                        strat.on_delete_price_level(ex, iid, s, prices[t_tick], ts)
        except Exception as exc:
            reactor.failed("market-data callback", exc, (msg.ch[i - 1],))
    if batch:
        reactor.callbacks += 1
        try:
            strat.on_book_update(ex, iid, batch, ts)
        except Exception as exc:
            reactor.failed("on_book_update", exc, (len(batch),))
    if st.want_bbo:
        emit_bbo(env, st, ts)


def on_trades(env: StratEnv, st: MdState, msg: m.TradeUpdate) -> None:
    """``on_public_trade`` for each trade of a message; a trade whose tick or lot count is not
    sane is left out (counted in ``env.bad_trades``, not blamed on the strategy)."""
    strat = env.strategy
    reactor = env.reactor
    book = st.book
    prices = book.prices
    qtys = book.qtys
    ex = st.exchange
    iid = st.iid
    ts = msg.ts
    for side_i, t, n, exec_ts, _tid in msg.tr:
        try:
            price = prices[t]
            qty = qtys[n]
        except (ValueError, TypeError) as exc:
            env.bad_trade(st, exc)
            continue
        reactor.callbacks += 1
        try:
            strat.on_public_trade(ex, iid, _SIDES.get(side_i, Side.Unset), price, qty, exec_ts, ts)
        except Exception as exc:
            reactor.failed("on_public_trade", exc, (t, n))


__all__ = [
    "CALLBACK_GROUPS",
    "MdState",
    "book_handler",
    "emit_bbo",
    "implemented_groups",
    "on_levels",
    "on_trades",
]
