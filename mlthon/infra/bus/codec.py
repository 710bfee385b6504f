"""The one place where domain values and wire structs meet.

* :func:`encode` / :func:`decode` turn messages into JSON bytes and back, validating every field;
  a payload that does not decode raises :class:`~mlthon.basics.MalformedMessage`, and so does a
  report, status or heartbeat whose values decode but are not sane (NaN, 1e30, an empty or
  10 kB id; :func:`~mlthon.infra.bus.checks.decoded_problem`), naming the field.
* ``*_to_wire`` / ``*_from_wire`` convert instruments and orders.
"""

from __future__ import annotations

import msgspec

from mlthon.basics.errors import MalformedMessage
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange
from mlthon.basics.order import Order
from mlthon.basics.values import Price, Qty
from mlthon.infra.bus.checks import decoded_problem
from mlthon.infra.bus.messages import WIRE_VERSION, AnyMsg, InstrumentWire, Msg, OrderWire

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyMsg] = msgspec.json.Decoder(AnyMsg)  # type: ignore[arg-type]


def encode(msg: Msg) -> bytes:
    """The JSON bytes of ``msg``."""
    return _encoder.encode(msg)


def decode(topic: str, payload: bytes | bytearray | memoryview) -> AnyMsg:
    """Decode and validate one bus payload.

    Raises:
        MalformedMessage: not JSON, an unknown kind, a missing or wrong-typed field, an unknown
            field, a schema version this build does not speak, or an insane value in a message
            nobody answers (the field named).
    """
    try:
        msg: AnyMsg = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        # msgspec reports invalid UTF-8 inside a string as UnicodeDecodeError.
        raise MalformedMessage(topic, bytes(payload), str(exc)) from exc
    if msg.v != WIRE_VERSION:
        raise MalformedMessage(
            topic, bytes(payload), f"schema version {msg.v}, this build speaks {WIRE_VERSION}"
        )
    why = decoded_problem(msg)
    if why is not None:
        raise MalformedMessage(topic, bytes(payload), why)
    return msg


def instrument_to_wire(inst: Instrument) -> InstrumentWire:
    return InstrumentWire(
        instrument_id=inst.instrument_id,
        name=inst.name,
        exchange=inst.exchange,
        base=inst.base,
        quote=inst.quote,
        kind=inst.kind,
        tick_size=str(inst.tick_size),
        lot_size=str(inst.lot_size),
        min_qty=str(inst.min_qty),
        contract_multiplier=str(inst.contract_multiplier),
        min_notional=str(inst.min_notional),
        settle_coin=inst.settle_coin,
        maker_fee=str(inst.maker_fee),
        taker_fee=str(inst.taker_fee),
    )


def instrument_from_wire(w: InstrumentWire) -> Instrument:
    return Instrument(
        instrument_id=w.instrument_id,
        name=w.name,
        exchange=w.exchange,
        base=w.base,
        quote=w.quote,
        kind=w.kind,
        tick_size=w.tick_size,
        lot_size=w.lot_size,
        min_qty=w.min_qty,
        contract_multiplier=w.contract_multiplier,
        min_notional=w.min_notional,
        settle_coin=w.settle_coin,
        maker_fee=w.maker_fee,
        taker_fee=w.taker_fee,
    )


def order_to_wire(o: Order) -> OrderWire:
    return OrderWire(
        instrument_id=o.instrument_id,
        cl_id=o.client_ord_id,
        exch_id=o.exch_ord_id,
        side=o.side,
        price=str(o.price),
        qty=str(o.qty),
        leaves_qty=str(o.leaves_qty),
        filled_qty=str(o.filled_qty),
        status=o.status,
        ord_type=o.order_type,
        tif=o.tif,
        exec_instr=o.exec_instr,
        created_ts=o.created_ts,
    )


def order_from_wire(exchange: Exchange, w: OrderWire) -> Order:
    return Order(
        exchange=exchange,
        instrument_id=w.instrument_id,
        client_ord_id=w.cl_id,
        exch_ord_id=w.exch_id,
        side=w.side,
        price=Price(w.price),
        qty=Qty(w.qty),
        leaves_qty=Qty(w.leaves_qty),
        filled_qty=Qty(w.filled_qty),
        status=w.status,
        order_type=w.ord_type,
        tif=w.tif,
        exec_instr=w.exec_instr,
        created_ts=w.created_ts,
    )
