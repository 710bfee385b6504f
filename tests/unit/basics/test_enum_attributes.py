"""Every mlthon enumeration's members carry ``name`` and ``value`` as their own attributes (read in
C; Enum's own are Python functions): they read as Enum's do, on every member of every enum."""

from __future__ import annotations

import copy
import pickle

import pytest

from mlthon.basics import mlt_enum
from mlthon.basics.mlt_enum import MltEnum, Side


def _enums() -> list[type[MltEnum]]:
    return [
        v
        for v in vars(mlt_enum).values()
        if isinstance(v, type) and issubclass(v, MltEnum) and v is not MltEnum
    ]


def test_name_and_value_read_as_enum_s_own_on_every_member():
    enums = _enums()
    assert len(enums) > 10
    for cls in enums:
        for member in cls:
            assert member.name == member._name_ and type(member.name) is str
            assert member.value == member._value_ and type(member.value) is int
            assert cls[member.name] is member and cls(member.value) is member
            assert str(member) == member.name


def test_members_still_behave_as_enum_members():
    assert pickle.loads(pickle.dumps(Side.Buy)) is Side.Buy
    assert copy.deepcopy(Side.Sell) is Side.Sell
    assert Side.from_name("buy") is Side.Buy
    assert {Side.Buy: 1}[Side.Buy] == 1
    with pytest.raises(AttributeError):
        Side.name  # noqa: B018 (the class has no name of its own, as with Enum)
    with pytest.raises(AttributeError):
        Side.Buy.name = "Sell"  # type: ignore[misc]  (Enum's are read-only; ours are too)
