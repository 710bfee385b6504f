"""Values that decode but are not sane are refused at the bus boundary, naming the field; requests
are checked for the gateway to answer; every message kind survives fuzzed field values."""

from __future__ import annotations

import json
import typing

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlthon.basics import MalformedMessage
from mlthon.basics.sanity import cl_id_problem, decimal_problem, int_cl_id_problem
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.checks import decoded_problem, request_problem
from mlthon.infra.bus.codec import decode, encode
from tests.unit.reliability.fuzzing import FUZZ

EXEC = m.OrderExecution(
    cl_id="17",
    exec_id="sim-x1",
    instrument_id=9001,
    side=m.Side.Buy,
    price="100.5",
    fill_qty="0.010",
    leaves_qty="0",
    exec_ts=1,
)


def _with(msg: msgspec.Struct, **fields: object) -> bytes:
    data = json.loads(encode(msg))
    data.update(fields)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("fill_qty", "NaN", "fill_qty: 'NaN' is not finite"),
        ("fill_qty", "1e30", "fill_qty: '1e30' is out of range"),
        ("fill_qty", "0", "fill_qty: '0' must be > 0"),
        ("price", "1e999999", "price: '1e999999' is out of range"),
        ("price", "Infinity", "price: 'Infinity' is not finite"),
        ("leaves_qty", "-1", "leaves_qty: '-1' must be >= 0"),
        ("fee", "x", "fee: 'x' is not a number"),
        ("cl_id", "", "cl_id: is empty"),
        ("cl_id", "7" * 10_000, "cl_id: is 10000 characters long"),
        ("exec_id", "", "exec_id: is empty"),
    ],
)
def test_decode_report_with_insane_value_is_malformed_naming_the_field(field, value, why):
    with pytest.raises(MalformedMessage, match="OrderExecution." + why.split(":")[0]) as ei:
        decode("mlt/gtw/Sim/rpt/s", _with(EXEC, **{field: value}))
    assert why in str(ei.value)


def test_decode_sane_report_passes():
    assert decode("t", encode(EXEC)) == EXEC


def test_decode_book_level_is_left_to_the_receiver():
    # Levels are ticks and lots, checked once per distinct value where a receiver makes its
    # Price / Qty of them (the env), not here on every level.
    book = m.BookUpdate(ex=1, iid=9001, ts=1, ch=[(0, 1, 10**17, 1)])
    assert decode("t", encode(book)) == book
    # text is no longer a level (wire version 2)
    with pytest.raises(MalformedMessage, match="int"):
        decode("t", b'{"k":"book","v":2,"ex":1,"iid":9001,"ts":1,"ch":[[0,1,"1e999999","1"]]}')


@pytest.mark.parametrize(
    ("msg", "why"),
    [
        (m.NewOrder(strat="s", cl_id="1", instrument_id=1, side=m.Side.Buy, price="NaN", qty="1"),
         "NewOrder.price: 'NaN' is not finite"),
        (m.NewOrder(strat="s", cl_id="1", instrument_id=1, side=m.Side.Buy, price="1", qty="1e30"),
         "NewOrder.qty: '1e30' is out of range"),
        (m.NewOrder(strat="s", cl_id="", instrument_id=1, side=m.Side.Buy, price="1", qty="1"),
         "NewOrder.cl_id: is empty"),
        (m.NewOrder(strat="s", cl_id="9" * 10_000, instrument_id=1, side=m.Side.Buy, price="1",
                    qty="1"),
         "NewOrder.cl_id: is 10000 characters long"),
        (m.ModifyOrder(strat="s", cl_id="1", new_price="-3"), "ModifyOrder.new_price: '-3'"),
        (m.ModifyOrder(strat="s", cl_id="1"), "neither new_price nor new_qty"),
        (m.CancelOrder(strat="s", cl_id="a.b", instrument_id=1), "CancelOrder.cl_id: 'a.b'"),
        (m.FetchWallet(strat="s", coin=""), "FetchWallet.coin"),
        (m.CancelAll(strat="bad name"), "CancelAll.strat"),
    ],
)  # fmt: skip
def test_request_problem_names_the_field(msg, why):
    problem = request_problem(msg)
    assert problem is not None and why in problem


def test_request_problem_accepts_a_market_order_without_price():
    msg = m.NewOrder(
        strat="s", cl_id="1", instrument_id=1, side=m.Side.Buy, price="0", qty="1",
        ord_type=m.OrderType.Market,
    )  # fmt: skip
    assert request_problem(msg) is None


def test_one_client_id_rule_for_ints_and_strings():
    assert int_cl_id_problem(10**70) is not None
    assert int_cl_id_problem(0) is not None
    assert int_cl_id_problem(True) is not None
    assert int_cl_id_problem(2**63 - 1) is None
    assert int_cl_id_problem("123") is None
    assert cl_id_problem(str(2**63 - 1)) is None  # what the env sends fits the wire rule


# --- fuzz: every message kind, every field, insane values -----------------------------------


def _kinds() -> list[type[m.Msg]]:
    return [t for t in typing.get_args(m.AnyMsg) if isinstance(t, type)]


def _example(t: object) -> object:
    """A valid JSON value for type ``t`` (a msgspec type-info node)."""
    info = t
    if isinstance(info, msgspec.inspect.StrType):
        return "1"
    if isinstance(info, msgspec.inspect.BoolType):
        return False
    if isinstance(info, msgspec.inspect.IntType):
        return 1
    if isinstance(info, msgspec.inspect.EnumType):
        return next(iter(info.cls)).value
    if isinstance(info, msgspec.inspect.UnionType):
        return _example(info.types[0])
    if isinstance(info, msgspec.inspect.ListType | msgspec.inspect.TupleType):
        return []
    if isinstance(info, msgspec.inspect.StructType):
        return {f.encode_name: _example(f.type) for f in info.fields if f.required}
    if isinstance(info, msgspec.inspect.NoneType):
        return None
    return 1


def _seed(kind: type[m.Msg]) -> dict[str, object]:
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    data: dict[str, object] = {"k": info.tag, "v": m.WIRE_VERSION}
    for f in info.fields:
        if f.name != "v":
            data[f.encode_name] = _example(f.type)
    return data


KINDS = _kinds()
INSANE = st.one_of(
    st.sampled_from(["NaN", "-Infinity", "1e30", "1E+400", "1e999999", "", "x" * 10_000, "-0"]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.text(max_size=50),
    st.lists(st.integers(), max_size=3),
)


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_fuzz_decode_every_kind_is_a_message_or_malformed_never_another_error(kind, data):
    payload = _seed(kind)
    fields = [k for k in payload if k not in ("k", "v")]
    for name in data.draw(st.lists(st.sampled_from(fields), max_size=3)) if fields else []:
        payload[name] = data.draw(INSANE)
    raw = json.dumps(payload).encode()
    try:
        msg = decode("fuzz", raw)
    except MalformedMessage:
        return  # refused with its reason: fine
    # what decodes is sane: a report that reaches the env never carries NaN or 1e30
    assert decoded_problem(msg) is None
    if isinstance(msg, m.OrderExecution):
        assert decimal_problem(msg.fill_qty, positive=True) is None
    problem = request_problem(msg)
    assert problem is None or problem.split(".")[0] == type(msg).__name__
