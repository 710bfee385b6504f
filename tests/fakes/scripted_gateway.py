"""A gateway stand-in on the bus that answers every request with a fixed, known report.

It lets the env's conversions of every report type be checked exactly; the simulated exchange is
tested on its own and end to end elsewhere.
"""

from __future__ import annotations

from typing import Any

from mlthon.basics import (
    TIF,
    CancelCode,
    Exchange,
    ExecInstructions,
    GtwRejectCode,
    GtwStatus,
    OrderStatus,
    OrderType,
    Side,
)
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.bus import BusBase
from mlthon.infra.bus.topics import Topics


class ScriptedGateway:
    def __init__(self, bus: BusBase, topics: Topics, exchange: Exchange = Exchange.Sim) -> None:
        self.bus = bus
        self.topics = topics
        self.exchange = exchange
        self.requests: list[Any] = []
        self._open: dict[str, m.NewOrder] = {}
        self._closed: dict[str, tuple[m.NewOrder, OrderStatus]] = {}

    def end_silently(self, cl_id: str, status: OrderStatus | None) -> None:
        """An open order ends without a report (the strategy was away): ``status`` is what a
        status query answers later; None forgets the order entirely."""
        order = self._open.pop(cl_id)
        if status is not None:
            self._closed[cl_id] = (order, status)

    def start(self, status: GtwStatus = GtwStatus.ReadyToTrade) -> None:
        self.bus.subscribe(self.topics.gtw_req_all(self.exchange), self._on_req, qos=1)
        self.set_status(status)

    def set_status(self, status: GtwStatus, detail: str = "") -> None:
        self.bus.publish(
            self.topics.gtw_status(self.exchange),
            m.GatewayStatus(exchange=self.exchange, status=status, detail=detail),
            qos=1,
            retain=True,
        )

    def report(self, strat: str, msg: m.Msg) -> None:
        self.bus.publish(self.topics.gtw_rpt(self.exchange, strat), msg, qos=1)

    def _answer(self, req: Any, msg: m.Msg) -> None:
        """Answer a fetch as real gateways do: with the request's id echoed."""
        self.report(req.strat, m.echo_req_id(req, msg))

    def _on_req(self, topic: str, req: Any) -> None:
        self.requests.append(req)
        s = req.strat
        if isinstance(req, m.NewOrder):
            if req.qty == "999":
                self.report(
                    s,
                    m.NewOrderReject(
                        cl_id=req.cl_id, code=GtwRejectCode.InsufficientBalance, reason="no money"
                    ),
                )
                return
            self._open[req.cl_id] = req
            self.report(
                s,
                m.NewOrderAck(
                    cl_id=req.cl_id,
                    exch_id="X" + req.cl_id,
                    instrument_id=req.instrument_id,
                    side=req.side,
                    price=req.price,
                    qty=req.qty,
                    leaves_qty=req.qty,
                    ord_type=req.ord_type,
                    tif=req.tif,
                    exec_instr=req.exec_instr,
                ),
            )
            if req.tif is TIF.IOC:
                del self._open[req.cl_id]
                self.report(
                    s,
                    m.OrderExecution(
                        cl_id=req.cl_id,
                        exec_id="E" + req.cl_id,
                        instrument_id=req.instrument_id,
                        side=req.side,
                        price=req.price,
                        fill_qty=req.qty,
                        leaves_qty="0",
                        exec_ts=123,
                    ),
                )
        elif isinstance(req, m.ModifyOrder):
            if req.cl_id not in self._open:
                self.report(
                    s,
                    m.ModifyOrderReject(
                        cl_id=req.cl_id, code=GtwRejectCode.UnknownOrder, reason="unknown order"
                    ),
                )
                return
            o = self._open[req.cl_id]
            self.report(
                s,
                m.ModifyOrderAck(
                    cl_id=req.cl_id,
                    new_price=req.new_price or o.price,
                    new_qty=req.new_qty or o.qty,
                    leaves_qty=req.new_qty or o.qty,
                ),
            )
        elif isinstance(req, m.CancelOrder):
            if self._open.pop(req.cl_id, None) is None:
                self.report(
                    s,
                    m.CancelOrderReject(
                        cl_id=req.cl_id, code=GtwRejectCode.UnknownOrder, reason="unknown order"
                    ),
                )
                return
            self.report(s, m.CancelOrderAck(cl_id=req.cl_id))
            self.report(
                s,
                m.OrderCancelled(
                    cl_id=req.cl_id,
                    unsolicited=False,
                    engine_ts=7,
                    cancel_code=CancelCode.CanceledByUser,
                    reason="asked",
                ),
            )
        elif isinstance(req, m.CancelAll):
            self.report(s, m.CancelAllAck(instrument_id=req.instrument_id))
            for cl in list(self._open):
                del self._open[cl]
                self.report(
                    s,
                    m.OrderCancelled(
                        cl_id=cl,
                        unsolicited=False,
                        engine_ts=8,
                        cancel_code=CancelCode.CancelAll,
                        reason="all",
                    ),
                )
        elif isinstance(req, m.FetchAccount):
            self._answer(req, m.AccountInfo(user_id="user-1"))
        elif isinstance(req, m.FetchWallet):
            self._answer(req, m.WalletInfo(coin=req.coin, total="10.5", available="7.25"))
        elif isinstance(req, m.FetchPosition):
            self._answer(req, m.PositionInfo(instrument_id=req.instrument_id, position="-0.003"))
        elif isinstance(req, m.FetchFunding):
            self._answer(
                req,
                m.FundingInfo(
                    instrument_id=req.instrument_id,
                    rate="0.0001",
                    next_ts=1_700_000_000_000_000_000,
                ),
            )
        elif isinstance(req, m.FetchOrderStatus):
            o = self._open.get(req.cl_id)
            if req.cl_id in self._closed:
                order, status = self._closed[req.cl_id]
                w = self._wire(order)
                self._answer(
                    req,
                    m.OrderStatusInfo(
                        order=m.OrderWire(
                            **{
                                **{f: getattr(w, f) for f in w.__struct_fields__},
                                "status": status,
                                "leaves_qty": "0",
                            }
                        )
                    ),
                )
                return
            if o is None:
                self._answer(
                    req,
                    m.RequestReject(
                        code=GtwRejectCode.UnknownOrder,
                        detail="unknown",
                        rqst_type="FetchOrderStatus",
                    ),
                )
                return
            self._answer(req, m.OrderStatusInfo(order=self._wire(o)))
        elif isinstance(req, m.FetchOrders):
            self._answer(req, m.OrdersInfo(orders=[self._wire(o) for o in self._open.values()]))

    @staticmethod
    def _wire(o: m.NewOrder) -> m.OrderWire:
        return m.OrderWire(
            instrument_id=o.instrument_id,
            cl_id=o.cl_id,
            exch_id="X" + o.cl_id,
            side=o.side,
            price=o.price,
            qty=o.qty,
            leaves_qty=o.qty,
            filled_qty="0",
            status=OrderStatus.New,
            ord_type=o.ord_type,
            tif=o.tif,
            exec_instr=o.exec_instr,
        )


__all__ = ["ExecInstructions", "OrderType", "ScriptedGateway", "Side"]
