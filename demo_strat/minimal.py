"""The strategy API in about 40 lines: buy one lot at the best bid, log every fill."""

import logging

from mlthon.api import MDSub, Strategy
from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side

log = logging.getLogger(__name__)


class Minimal(Strategy):
    def on_start(self, params):
        self.order_id = None
        self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)
        self.env.add_cmd_hook("hello", lambda args: f"hello {' '.join(args)}")
        self.env.setup_timer(60_000, self.heartbeat)

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        if self.order_id is None:
            inst = self.env.get_instrument(exchange, instrument_id)
            self.order_id = self.env.send_new_order(
                None,
                exchange,
                instrument_id,
                Side.Buy,
                price,
                inst.min_qty,
                ExecInstructions.PostOnly,
                OrderType.Limit,
                TIF.GTC,
                False,
            )

    def on_new_order_reject(self, exchange, client_id, reject_code, reject_reason):
        log.warning("rejected: %s %s", reject_code.name, reject_reason)
        self.order_id = None

    def on_order_execution(
        self, exchange, client_id, side, price, fill_qty, leaves_qty, exec_ts, recv_ts
    ):
        log.info("filled %s %s @ %s", side.name, fill_qty, price)

    def heartbeat(self):
        log.info("alive at %d", self.env.get_time_ns())
        return True  # keep the timer

    def on_stop(self, params):
        self.env.send_cancel_all(Exchange.Sim, 9001)
        self.env.send_stop_ack()
