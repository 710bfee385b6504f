"""Hypothesis strategies of gateway requests with arbitrary field values, and the bookkeeping of
"every request answered exactly once", shared by the sim and live gateway fuzz tests.

A request is drawn as the JSON object a strategy would publish (``k`` the kind tag), its fields
sane or not: ``NaN``, ``1e30``, ``1e-30``, empty and 10 kB ids, enum values out of range,
negative numbers, wrong types. It goes through the bus codec (:func:`as_request`) as it would
over MQTT: what the codec refuses (a wrong type, an enum value out of range) is dropped there, as
the bus does; what it lets through must get exactly one answer from the gateway.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
from hypothesis import strategies as st

from mlthon.basics.errors import MalformedMessage
from mlthon.gateways.base import ANSWERS
from mlthon.gateways.journal import request_key
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.codec import decode

KINDS: dict[type[Any], str] = {
    m.NewOrder: "new",
    m.ModifyOrder: "modify",
    m.CancelOrder: "cancel",
    m.CancelAll: "cancel_all",
    m.FetchAccount: "fetch",
    m.FetchWallet: "fetch",
    m.FetchPosition: "fetch",
    m.FetchFunding: "fetch",
    m.FetchOrderStatus: "fetch",
    m.FetchOrders: "fetch",
}

_DECIMALS = [
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "1e30", "1e-30", "1E+400",
    "1e999999", "-1", "-0", "0", "", " ", "abc", "1_0", "0x10", "9" * 50, "0." + "0" * 30 + "1",
]  # fmt: skip
_IDS = ["", "x" * 10_000, "a.b", "a b", "ü", "9" * 36, "9" * 37, "1" * 71, "-", "_", "o/1"]


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(table.__getitem__)


def _decimals(good: list[str], wild: bool = True) -> st.SearchStrategy[Any]:
    """Decimal text: mostly ``good`` values (so orders get deep into the gateway), often insane,
    sometimes not a string at all (which the codec refuses); only ``good`` ones if not
    ``wild``."""
    if not wild:
        return st.sampled_from(good)
    return _weighted(
        (8, st.sampled_from(good)),
        (3, st.sampled_from(_DECIMALS)),
        (1, st.decimals(allow_nan=True, allow_infinity=True).map(str)),
        (1, st.text(max_size=12)),
        (1, st.sampled_from([None, 5, 1.5, True, [], {}])),
    )


def _ids(good: list[str], wild: bool = True) -> st.SearchStrategy[Any]:
    if not wild:
        return st.sampled_from(good)
    return _weighted(
        (8, st.sampled_from(good)),
        (2, st.sampled_from(_IDS)),
        (1, st.text(max_size=40)),
        (1, st.just(7)),
    )


def _enum_value(enum: type[Any], wild: bool = True) -> st.SearchStrategy[Any]:
    """Mostly a member's value (``Unset`` included), sometimes an int no member has or a
    string (which the codec refuses)."""
    if not wild:
        return st.sampled_from([e.value for e in enum])
    return _weighted(
        (10, st.sampled_from([e.value for e in enum])),
        (1, st.sampled_from([-1, 99, 2**40, "Buy"])),
    )


def requests(
    strat: str, iids: list[int], prices: list[str], qtys: list[str], cl_ids: list[str]
) -> st.SearchStrategy[dict[str, Any]]:
    """One request of any kind, as the JSON object on the wire (without ``v``): half of them
    with sane values only (they get deep: acks, fills, modifies, cancels), half wild."""
    return _weighted(
        (1, _requests(strat, iids, prices, qtys, cl_ids, wild=False)),
        (1, _requests(strat, iids, prices, qtys, cl_ids, wild=True)),
    )


def _requests(
    strat: str,
    iids: list[int],
    prices: list[str],
    qtys: list[str],
    cl_ids: list[str],
    wild: bool,
) -> st.SearchStrategy[dict[str, Any]]:
    from mlthon.basics.mlt_enum import TIF, ExecInstructions, OrderType, Side, TriggerDirection

    iid = (
        _weighted((8, st.sampled_from(iids)), (1, st.sampled_from([0, -1, 99, 2**63 - 1, "1"])))
        if wild
        else st.sampled_from(iids)
    )
    ts = st.sampled_from([0, 0, 0, -5, 1, 2**62] if wild else [0])
    req_id = st.sampled_from(["", "r1", "x" * 1000] if wild else ["", "r1"])

    def decimals(good: list[str]) -> st.SearchStrategy[Any]:
        return _decimals(good, wild)

    def ids(good: list[str]) -> st.SearchStrategy[Any]:
        return _ids(good, wild)

    def enum_value(enum: type[Any]) -> st.SearchStrategy[Any]:
        return _enum_value(enum, wild)

    new = st.fixed_dictionaries(
        {
            "k": st.just("new"),
            "strat": st.just(strat),
            "cl_id": ids(cl_ids),
            "instrument_id": iid,
            "side": enum_value(Side),
            "price": decimals(prices),
            "qty": decimals(qtys),
        },
        optional={
            "exec_instr": enum_value(ExecInstructions),
            "ord_type": enum_value(OrderType),
            "tif": enum_value(TIF),
            "close_position": st.booleans(),
            "stop_price": st.one_of(st.none(), decimals(prices)),
            "trigger_dir": enum_value(TriggerDirection),
            "ts": ts,
        },
    )
    modify = st.fixed_dictionaries(
        {"k": st.just("modify"), "strat": st.just(strat), "cl_id": ids(cl_ids)},
        optional={
            "new_price": st.one_of(st.none(), decimals(prices)),
            "new_qty": st.one_of(st.none(), decimals(qtys)),
            "ts": ts,
        },
    )
    cancel = st.fixed_dictionaries(
        {"k": st.just("cancel"), "strat": st.just(strat), "cl_id": ids(cl_ids)},
        optional={"instrument_id": iid, "ts": ts},
    ).map(lambda d: {"instrument_id": iids[0], **d})
    cancel_all = st.fixed_dictionaries(
        {"k": st.just("cancel_all"), "strat": st.just(strat)},
        optional={"instrument_id": iid, "ts": ts, "escalation": st.booleans()},
    )
    fetch = st.one_of(
        st.fixed_dictionaries({"k": st.just("f_account"), "strat": st.just(strat)}),
        st.fixed_dictionaries(
            {
                "k": st.just("f_wallet"),
                "strat": st.just(strat),
                "coin": st.sampled_from(
                    ["USDT", "BTC", "", "x" * 100, "US DT", "ü"] if wild else ["USDT", "BTC"]
                ),
            }
        ),
        st.fixed_dictionaries(
            {
                "k": st.sampled_from(["f_position", "f_funding"]),
                "strat": st.just(strat),
                "instrument_id": iid,
            }
        ),
        st.fixed_dictionaries(
            {
                "k": st.just("f_order"),
                "strat": st.just(strat),
                "instrument_id": iid,
                "cl_id": ids(cl_ids),
            }
        ),
        st.fixed_dictionaries(
            {"k": st.just("f_orders"), "strat": st.just(strat)}, optional={"instrument_id": iid}
        ),
    ).flatmap(lambda d: st.fixed_dictionaries({}, optional={"req_id": req_id}).map(d.__or__))
    table = {
        "new": new,
        "modify": modify,
        "cancel": cancel,
        "cancel_all": cancel_all,
        "fetch": fetch,
    }
    weights = ["new"] * 5 + ["modify"] * 2 + ["cancel"] * 2 + ["cancel_all", "fetch", "fetch"]
    return st.sampled_from(weights).flatmap(table.__getitem__)


def as_request(fields: dict[str, Any]) -> Any | None:
    """The request the bus would deliver for ``fields`` (None: the codec refuses it)."""
    try:
        raw = msgspec.json.encode(fields)
    except (TypeError, msgspec.EncodeError):  # not even JSON (a surrogate in a string)
        return None
    try:
        return decode("t/fuzz", raw)
    except MalformedMessage:
        return None


class Ledger:
    """Requests sent and answers seen, per kind; repeats (same bytes, stamped) expect none."""

    def __init__(self) -> None:
        self.expected: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self._keys: set[str] = set()

    def expect(self, req: Any) -> str:
        """Count ``req`` as sent; returns its kind. A stamped repeat of a request already sent
        is a redelivery, dropped by the gateway: it expects no answer."""
        kind = KINDS[type(req)]
        if kind != "fetch" and req.ts > 0:
            key = request_key(req, kind)
            if key in self._keys:
                return kind
            self._keys.add(key)
        self.expected[kind] += 1
        return kind

    def see(self, msg: Any) -> None:
        """Count ``msg`` if it answers a request."""
        if isinstance(msg, m.UnsupportedOp):
            self.answers[_UNSUPPORTED.get(msg.msg_type, "fetch")] += 1
            return
        for kind, answers in ANSWERS.items():
            if isinstance(msg, answers):
                self.answers[kind] += 1
                return

    def check(self) -> None:
        """Every request that passed the codec was answered exactly once."""
        assert self.answers == self.expected, (self.answers, self.expected)


_UNSUPPORTED = {
    "NewOrder": "new",
    "ModifyOrder": "modify",
    "CancelOrder": "cancel",
    "CancelAll": "cancel_all",
}


__all__ = ["KINDS", "Ledger", "as_request", "requests"]
