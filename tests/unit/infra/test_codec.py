import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlthon.basics import MalformedMessage, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.codec import decode, encode

dec_str = st.decimals(
    min_value=0, max_value=10**7, places=6, allow_nan=False, allow_infinity=False
).map(str)


ticks = st.integers(min_value=0, max_value=2**62)


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([1, 2]), ticks, ticks),
        max_size=50,
    ),
    st.integers(min_value=0, max_value=2**62),
)
def test_book_update_round_trips(ch, ts):
    msg = m.BookUpdate(ex=2, iid=1001, ts=ts, ch=ch)
    assert decode("t", encode(msg)) == msg


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 2]), ticks, ticks, ticks, st.text(max_size=8)),
        max_size=20,
    )
)
def test_trade_update_round_trips(tr):
    msg = m.TradeUpdate(ex=2, iid=1001, ts=1, tr=tr)
    assert decode("t", encode(msg)) == msg


def test_market_data_of_wire_version_1_is_refused():
    payload = b'{"k":"book","v":1,"ex":2,"iid":1001,"ts":1,"ch":[[0,1,"61800.30","0.014"]]}'
    with pytest.raises(MalformedMessage):
        decode("t", payload)


@given(
    st.builds(
        m.NewOrder,
        strat=st.just("s"),
        cl_id=st.text(min_size=1, max_size=10),
        instrument_id=st.integers(1, 10**12),
        side=st.sampled_from(list(Side)),
        price=dec_str,
        qty=dec_str,
    )
)
def test_new_order_round_trips(msg):
    assert decode("t", encode(msg)) == msg


@pytest.mark.parametrize(
    "payload,why",
    [
        (b"not json", "malformed"),
        (b'{"k":"new","v":1}', "missing required field"),
        (b'{"k":"nope","v":1}', "Invalid value"),
        (b'{"k":"cancel_ack","v":1,"cl_id":"1","extra":1}', "unknown field"),
        (b'{"k":"cancel_ack","v":9,"cl_id":"1"}', "schema version 9"),
        (b'{"k":"new_rej","v":1,"cl_id":"1","code":4242}', "Invalid enum value"),
    ],
)
def test_malformed_payloads_raise_with_topic_and_excerpt(payload, why):
    with pytest.raises(MalformedMessage) as ei:
        decode("mlt/x", payload)
    assert ei.value.topic == "mlt/x" and ei.value.excerpt == payload[:200]
    assert why.lower() in str(ei.value).lower()


def test_every_message_kind_has_a_unique_tag():
    tags = [t.__struct_config__.tag for t in m.AnyMsg.__args__]  # type: ignore[attr-defined]
    assert len(tags) == len(set(tags))
    assert all(isinstance(msgspec.json.encode(t), bytes) for t in tags)
