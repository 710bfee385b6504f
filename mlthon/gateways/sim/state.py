"""Plain-JSON forms of the simulated exchange's durable state: orders and accounts.

What is kept is what a venue keeps across a restart of its gateway: every order (its status,
filled quantity and queue estimate at its last report) and every account (wallets, positions).
Locks and margin reservations are not stored; they are recomputed from the open orders. Decimals
are strings, enums their integer values.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import TIF, ExecInstructions, OrderStatus, OrderType, Side
from mlthon.basics.mlt_enum import TriggerDirection as TDir
from mlthon.gateways.sim.accounting import Account, Leg, Wallet
from mlthon.gateways.sim.market import SimOrder


def order_to_state(o: SimOrder) -> dict[str, Any]:
    """The JSON-able state of one order."""
    return {
        "strat": o.strat,
        "cl_id": o.cl_id,
        "exch_id": o.exch_id,
        "iid": o.iid,
        "side": o.side.value,
        "tick": o.tick,
        "qty": o.qty,
        "filled": o.filled,
        "ord_type": o.ord_type.value,
        "tif": o.tif.value,
        "exec_instr": o.exec_instr.value,
        "reduce_only": o.reduce_only,
        "stop_tick": o.stop_tick,
        "trigger_dir": o.trigger_dir.value,
        "status": o.status.value,
        "created_ts": o.created_ts,
        "ahead": o.ahead,
        "l3_seq": o.l3_seq,
    }


def order_from_state(s: Mapping[str, Any]) -> SimOrder:
    """An order rebuilt from :func:`order_to_state`.

    Raises:
        KeyError, ValueError, TypeError: the state is not one this module wrote.
    """
    o = SimOrder(
        str(s["strat"]),
        str(s["cl_id"]),
        str(s["exch_id"]),
        int(s["iid"]),
        Side(s["side"]),
        None if s["tick"] is None else int(s["tick"]),
        int(s["qty"]),
        OrderType(s["ord_type"]),
        TIF(s["tif"]),
        ExecInstructions(s["exec_instr"]),
        bool(s["reduce_only"]),
        None if s["stop_tick"] is None else int(s["stop_tick"]),
        TDir(s["trigger_dir"]),
        int(s["created_ts"]),
    )
    o.filled = int(s["filled"])
    o.status = OrderStatus(s["status"])
    o.ahead = int(s["ahead"])
    o.l3_seq = int(s["l3_seq"])
    return o


def account_to_state(acct: Account) -> dict[str, Any]:
    """The JSON-able state of one account (without its order locks)."""
    return {
        "wallets": {coin: str(w.total) for coin, w in acct.wallets.items()},
        "positions": [
            [iid, leg.value, str(p.qty), str(p.entry), str(p.realised), str(p.funding)]
            for (iid, leg), p in acct.positions.items()
        ],
    }


def account_into(
    acct: Account, s: Mapping[str, Any], instruments: Mapping[int, Instrument]
) -> None:
    """Load a stored state into a fresh account (positions of unknown instruments are skipped).

    Raises:
        KeyError, ValueError, TypeError: the state is not one this module wrote.
    """
    acct.wallets = {str(c): Wallet(Decimal(v)) for c, v in s["wallets"].items()}
    for iid, leg, qty, entry, realised, funding in s["positions"]:
        inst = instruments.get(int(iid))
        if inst is None:
            continue
        p = acct.position(inst, Leg(leg))
        p.qty, p.entry = Decimal(qty), Decimal(entry)
        p.realised, p.funding = Decimal(realised), Decimal(funding)
