"""A market maker: two-sided quotes around the mid, skewed by inventory.

* Quotes one bid and one ask ``spread_ticks`` around the mid, moved away from the side it is long
  on by ``skew_ticks`` per ``size`` of inventory, and stops quoting a side once ``max_position``
  is reached on it. On a spot instrument it sells only what it bought (no short selling).
* Re-quotes when the best bid or ask changes and on a timer (``requote_ms``); an order whose
  price is right is left alone (keeps its queue position); a wrong one is modified (or cancelled
  and replaced where the exchange has no modify).
* Pulls its quotes when the gateway or the feed is not ready, and when paused.
* Command hooks: ``spread <ticks>``, ``size <qty>``, ``pause``, ``resume``, ``flatten``
  (dangerous: cancels everything and closes the position with a market order).
* A daily callback logs (and sends to Telegram) the day's PnL; fills and errors go to Telegram.
* Its parameters have a schema (:class:`MarketMakerParams`, the ``Params`` extension of the API):
  ``mlthon params demo_mm treshold=3`` or ``--set spread_ticks=0`` is refused, naming the
  parameter.

It uses only ``mlthon.api`` and ``mlthon.basics``.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import attrs

from mlthon.api import IStratEnv, MDSub, Strategy, param
from mlthon.basics import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    Instrument,
    InstrumentKind,
    OrderType,
    Price,
    Qty,
    Side,
)

log = logging.getLogger(__name__)
# Both sides, made once: this loop runs on every best-price change.
_SIDES = (Side.Buy, Side.Sell)


_TINY = Decimal("0.000001")
_ZERO = Decimal(0)


@attrs.frozen
class MarketMakerParams:
    """The market maker's parameters (``[params]`` of its file; ``mlthon params demo_mm ...``)."""

    exchange: str = param("Sim", help="the Exchange member name quoted on")
    instrument_id: int = param(9001, low=1, help="the instrument quoted")
    spread_ticks: int = param(2, low=1, high=1000, help="quote this many ticks around the mid")
    # (param() returns an attrs field, not a shared mutable default: RUF009 does not apply.)
    size: Decimal = param(Decimal("0.001"), low=_TINY, help="quote size")
    max_position: Decimal = param(
        Decimal("0.01"), low=_ZERO, help="no more quoting on a side past this inventory"
    )
    skew_ticks: Decimal = param(
        Decimal(1), low=_ZERO, high=Decimal(100), help="ticks of skew per size of inventory"
    )
    requote_ms: int = param(1000, low=10, high=3_600_000, help="period of the requote timer")


class MarketMaker(Strategy):
    """Quotes both sides of one instrument; see the module docstring."""

    Params = MarketMakerParams

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__("demo_mm")
        self.params = MarketMakerParams(**(params or {}))
        self.inst: Instrument | None = None
        self.exchange = Exchange.Sim
        self.iid = 0
        self.bid: tuple[Price, Qty] | None = None
        self.ask: tuple[Price, Qty] | None = None
        # Our working orders: side -> (client id, price, qty); pending: ids awaiting an answer.
        self.quotes: dict[Side, tuple[int, Price, Qty]] = {}
        self.pending: set[str] = set()
        self.position = Decimal(0)
        self.cash = Decimal(0)
        self.day_start_value = Decimal(0)
        self.fills = 0
        self.paused = False
        self.gateway_ready = True
        self.feed_ready = False
        self.can_modify = True
        self.running = False
        self.stopping = False
        self.last_alert: dict[str, int] = {}
        # The last targets and what they were computed from (best prices, position, params):
        # most best-level updates change only a size, and leave the quotes where they are.
        self._targets_from: tuple[Any, ...] = ()
        self._targets: dict[Side, Price] = {}

    # --- parameters ------------------------------------------------------------------------------

    @property
    def spread_ticks(self) -> int:
        return self.params.spread_ticks

    @property
    def size(self) -> Decimal:
        return self.params.size

    @property
    def max_position(self) -> Decimal:
        return self.params.max_position

    @property
    def skew_ticks(self) -> Decimal:
        return self.params.skew_ticks

    # --- lifecycle -------------------------------------------------------------------------------

    def on_framework_connected(self, env: IStratEnv) -> None:
        super().on_framework_connected(env)

    def on_start(self, params: str) -> None:
        self.running = True
        self.stopping = False
        env = self.env
        env.add_cmd_hook("spread", self.cmd_spread)
        env.add_cmd_hook("size", self.cmd_size)
        env.add_cmd_hook("pause", self.cmd_pause)
        env.add_cmd_hook("resume", self.cmd_resume)
        env.add_cmd_hook("flatten", self.cmd_flatten, dangerous=True)
        env.setup_daily_callback("00:00:00", self.daily_pnl)

    def on_strat_params_update(self, strat_params: dict[str, Any]) -> None:
        first = self.inst is None
        # The framework checked them against MarketMakerParams; decimals come as text.
        self.params = attrs.evolve(self.params, **strat_params)
        self.exchange = Exchange.from_name(self.params.exchange)
        self.iid = self.params.instrument_id
        self.inst = self.env.get_instrument(self.exchange, self.iid)
        if first:
            for sub in (MDSub.BBO, MDSub.PublicTrades):
                self.env.subscribe(self.exchange, self.iid, sub)
            self.env.setup_timer(self.params.requote_ms, self.on_timer)
        self.requote()

    def on_stop(self, params: str) -> None:
        self.running = False
        self.stopping = True
        if self.quotes or self.pending:
            self.env.send_cancel_all(self.exchange, self.iid)
        else:
            self.env.send_stop_ack()

    def on_cancel_all_ack(self, exchange: Exchange, instrument_id: int) -> None:
        if self.stopping:
            self.quotes.clear()
            self.stopping = False
            self.env.send_stop_ack()

    def on_cancel_all_reject(
        self, exchange: Exchange, instrument_id: int, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        self._alert(f"cancel-all rejected: {reject_code.name} {reject_reason}")
        if self.stopping:
            self.stopping = False
            self.env.send_stop_ack()

    # --- status ----------------------------------------------------------------------------------

    def on_gateway_status(self, exchange: Exchange, status: GtwStatus, detail: str) -> None:
        if exchange is not self.exchange:
            return
        was_ready = self.gateway_ready
        self.gateway_ready = status is GtwStatus.ReadyToTrade
        if not self.gateway_ready:
            self.quotes.clear()  # the gateway cancels or will reject; start afresh when back
            if was_ready and self.running:
                self._alert(f"gateway {status.name}: quotes pulled ({detail})")
        self.requote()

    def on_feed_handler_status(
        self, exchange: Exchange, status: FeedHandlerStatus, detail: str
    ) -> None:
        if exchange is not self.exchange:
            return
        was = self.feed_ready
        self.feed_ready = status is FeedHandlerStatus.SnapshotEnd
        if was and not self.feed_ready:
            self.pull_quotes(f"feed {status.name}: {detail}")
        elif self.feed_ready:
            self.requote()

    # --- market data -----------------------------------------------------------------------------

    def on_best_bid_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        self.bid = (price, qty)
        self.requote()

    def on_best_ask_level_update(
        self, exchange: Exchange, instrument_id: int, price: Price, qty: Qty, recv_ts: int
    ) -> None:
        self.ask = (price, qty)
        self.requote()

    def on_timer(self) -> bool:
        self.requote()
        return True

    # --- quoting ---------------------------------------------------------------------------------

    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid[0].value + self.ask[0].value) / 2

    def targets(self) -> dict[Side, Price]:
        """The price each side should quote at (a side is missing when it must not quote);
        computed again only when a best price, the position or the parameters changed."""
        basis = (
            self.bid[0] if self.bid else None,
            self.ask[0] if self.ask else None,
            self.position,
            self.params,
            self.inst,
        )
        if basis == self._targets_from:
            return self._targets
        self._targets = self._compute_targets()
        self._targets_from = basis
        return self._targets

    def _compute_targets(self) -> dict[Side, Price]:
        mid = self.mid()
        inst = self.inst
        if mid is None or inst is None:
            return {}
        tick = inst.tick_size
        half = Decimal(self.spread_ticks) * tick / 2
        skew = self.skew_ticks * tick * (self.position / self.size) if self.size else 0
        out: dict[Side, Price] = {}
        if self.position < self.max_position:
            bid = Price(mid - half - skew).round_to(tick, "ROUND_FLOOR")
            best_ask = self.ask[0] if self.ask else None
            if best_ask is not None and bid >= best_ask:
                bid = best_ask - Price(tick)  # stay passive
            out[Side.Buy] = bid
        # Spot cannot go short: the ask is quoted only out of what was bought.
        can_sell = self.position >= self.size if inst.kind is InstrumentKind.Spot else True
        if self.position > -self.max_position and can_sell:
            ask = Price(mid + half - skew).round_to(tick, "ROUND_CEILING")
            best_bid = self.bid[0] if self.bid else None
            if best_bid is not None and ask <= best_bid:
                ask = best_bid + Price(tick)
            out[Side.Sell] = ask
        return out

    def requote(self) -> None:
        if not self.running or self.inst is None:
            return
        if self.paused or not self.gateway_ready or not self.feed_ready:
            self.pull_quotes("")
            return
        if self.pending:
            return  # wait for the answers to what is in flight
        want = self.targets()
        for side in _SIDES:
            target = want.get(side)
            have = self.quotes.get(side)
            if target is None:
                if have is not None:
                    self._cancel(side)
                continue
            if have is None:
                qty = Qty(self.size)
                cid = self.env.send_new_order(
                    None,
                    self.exchange,
                    self.iid,
                    side,
                    target,
                    qty,
                    ExecInstructions.PostOnly,
                    OrderType.Limit,
                    TIF.GTC,
                    False,
                )
                self.quotes[side] = (cid, target, qty)
                self.pending.add(str(cid))
            elif have[1] != target:
                if self.can_modify:
                    self.env.send_modify_order(self.exchange, have[0], target, None)
                    self.quotes[side] = (have[0], target, have[2])
                    self.pending.add(str(have[0]))
                else:
                    self._cancel(side)

    def _cancel(self, side: Side) -> None:
        have = self.quotes.pop(side, None)
        if have is not None:
            self.env.send_cancel_order(self.exchange, self.iid, have[0])
            self.pending.add(str(have[0]))

    def pull_quotes(self, why: str) -> None:
        if self.quotes:
            for side in list(self.quotes):
                self._cancel(side)
            if why:
                log.info("%s: quotes pulled: %s", self.name, why)

    # --- order answers ---------------------------------------------------------------------------

    def _forget(self, client_id: str) -> None:
        self.pending.discard(client_id)
        for side, (cid, _, _) in list(self.quotes.items()):
            if str(cid) == client_id:
                del self.quotes[side]

    def on_new_order_ack(
        self,
        exchange: Exchange,
        client_id: str,
        exchange_id: str,
        instrument_id: int,
        side: Side,
        price: Price,
        qty: Qty,
        leaves_qty: Qty,
        order_type: OrderType,
        tif: TIF,
        exec_instr: ExecInstructions,
    ) -> None:
        self.pending.discard(client_id)

    def on_new_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        self._forget(client_id)
        if reject_code not in (
            GtwRejectCode.PostOnlyWouldCross,
            GtwRejectCode.GtwNotReady,
            GtwRejectCode.StrategyStopped,
        ):
            self._alert(f"order rejected: {reject_code.name} {reject_reason}")

    def on_modify_order_ack(
        self, exchange: Exchange, client_id: str, new_price: Price, new_qty: Qty, leaves_qty: Qty
    ) -> None:
        self.pending.discard(client_id)

    def on_modify_order_reject(
        self, exchange: Exchange, client_id: str, reject_code: GtwRejectCode, reject_reason: str
    ) -> None:
        # The order may be gone (filled, cancelled): forget it and quote afresh.
        self._forget(client_id)
        self.env.send_cancel_order(self.exchange, self.iid, client_id)

    def on_unsupported_op(self, exchange: Exchange, unsupported_msg_type: str) -> None:
        if unsupported_msg_type == "ModifyOrder":
            self.can_modify = False
            self.pending.clear()
            self.pull_quotes("exchange has no modify: cancel and replace from now on")

    def on_cancel_order_ack(self, exchange: Exchange, client_id: str) -> None:
        self.pending.discard(client_id)

    def on_cancel_order_reject(
        self,
        exchange: Exchange,
        nullable_client_id: str | None,
        reject_code: GtwRejectCode,
        reject_reason: str,
    ) -> None:
        if nullable_client_id is not None:
            self._forget(nullable_client_id)

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
        self._forget(client_id)
        if unsolicited and cancel_code is not CancelCode.CancelAll:
            log.info("%s: order %s cancelled by the venue: %s", self.name, client_id, cancel_reason)

    def on_order_execution(
        self,
        exchange: Exchange,
        client_id: str,
        side: Side,
        price: Price,
        fill_qty: Qty,
        leaves_qty: Qty,
        exec_ts: int,
        recv_ts: int,
    ) -> None:
        q = fill_qty.value
        signed = q if side is Side.Buy else -q
        self.position += signed
        self.cash -= signed * price.value
        self.fills += 1
        if not leaves_qty:
            self._forget(client_id)
        text = f"{self.name}: {side.name} {fill_qty} @ {price} -> position {self.position}"
        log.info("%s", text)
        self.env.publish_telegram(text, priority=1)
        self.requote()

    def on_rate_limit_info(
        self, exchange: Exchange, rate_limit: int, rate_remaining: int, reset_ts: int
    ) -> None:
        if rate_remaining * 10 <= rate_limit:
            self.pull_quotes(f"rate limit: {rate_remaining}/{rate_limit} left")
            self.paused = True
            self.env.setup_timer(1000, self._unpause)

    def _unpause(self) -> bool:
        self.paused = False
        self.requote()
        return False

    # --- reports ---------------------------------------------------------------------------------

    def value(self) -> Decimal:
        """Mark-to-mid value of the book (cash + position at the mid)."""
        mid = self.mid()
        return self.cash + (self.position * mid if mid is not None else 0)

    def daily_pnl(self) -> bool:
        v = self.value()
        pnl = v - self.day_start_value
        self.day_start_value = v
        text = f"{self.name}: day PnL {pnl:.4f}, position {self.position}, fills {self.fills}"
        log.info("%s", text)
        self.env.publish_telegram(text)
        return True

    def _alert(self, text: str) -> None:
        """Log and send an alert; the same alert at most once a minute."""
        now = self.env.get_time_ns()
        key = text.split(":")[0]
        if now - self.last_alert.get(key, -(10**18)) < 60 * 10**9:
            return
        self.last_alert[key] = now
        log.warning("%s: %s", self.name, text)
        self.env.publish_telegram(f"{self.name}: {text}", priority=0)

    # --- command hooks ---------------------------------------------------------------------------

    def cmd_spread(self, params: list[str]) -> str:
        """spread <ticks>: quote this many ticks wide."""
        # Out of MarketMakerParams' bounds raises: the hook's answer says why.
        self.params = attrs.evolve(self.params, spread_ticks=int(params[0]))
        ticks = self.params.spread_ticks
        self.requote()
        return f"spread {ticks} ticks"

    def cmd_size(self, params: list[str]) -> str:
        """size <qty>: quote this quantity."""
        if self.inst is None:
            raise ValueError("no instrument yet")
        q = self.inst.qty(params[0])
        self.params = attrs.evolve(self.params, size=Decimal(str(q)))
        self.pull_quotes("size changed")
        return f"size {q}"

    def cmd_pause(self, params: list[str]) -> str:
        """pause: pull the quotes and stop quoting."""
        self.paused = True
        self.pull_quotes("paused")
        return "paused"

    def cmd_resume(self, params: list[str]) -> str:
        """resume: quote again."""
        self.paused = False
        self.requote()
        return "resumed"

    def cmd_flatten(self, params: list[str]) -> str:
        """flatten: cancel every order and close the position at market."""
        self.paused = True
        self.env.send_cancel_all(self.exchange, self.iid)
        self.quotes.clear()
        self.pending.clear()
        if self.position and self.inst is not None:
            side = Side.Sell if self.position > 0 else Side.Buy
            self.env.send_new_order(
                None,
                self.exchange,
                self.iid,
                side,
                "0",
                Qty(abs(self.position)),
                ExecInstructions.Unset,
                OrderType.Market,
                TIF.IOC,
                True,
            )
        return f"flattening {self.position}; quoting paused (resume to quote again)"
