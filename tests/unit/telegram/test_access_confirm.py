"""Roles, permissions, chat rules and confirmations."""

from __future__ import annotations

from mlthon.infra.telegram.access import AccessPolicy, Role
from mlthon.infra.telegram.confirm import (
    ConfirmBook,
    ConfirmState,
    callback_data,
    parse_callback_data,
)

POLICY = AccessPolicy(
    users={1: Role.VIEWER, 2: Role.TRADER, 3: Role.ADMIN},
    permissions={
        "help": Role.VIEWER,
        "status": Role.VIEWER,
        "strategies": Role.VIEWER,
        "start": Role.TRADER,
        "params": Role.TRADER,
        "hook": Role.TRADER,
        "stop": Role.ADMIN,
        "dangerous_hook": Role.ADMIN,
        "quote": Role.ADMIN,
    },
    group_chats=frozenset({-100}),
)


def allowed(user: int, cmd: str, **kw: bool) -> bool:
    return POLICY.check(user, user, "private", cmd, **kw).allowed


def test_roles_grant_their_commands_and_those_below() -> None:
    assert allowed(1, "status")
    assert not allowed(1, "start")
    assert allowed(2, "start")
    assert allowed(2, "widen", is_hook=True)
    assert not allowed(2, "stop")
    assert not allowed(2, "flatten", is_hook=True, dangerous=True)
    assert allowed(3, "stop")
    assert allowed(3, "flatten", is_hook=True, dangerous=True)


def test_a_hook_can_have_its_own_permission() -> None:
    assert not allowed(2, "quote", is_hook=True)
    assert allowed(3, "quote", is_hook=True)


def test_stranger_is_refused_everything() -> None:
    d = POLICY.check(99, 99, "private", "help")
    assert not d.allowed
    assert d.role is None
    assert d.reason == "not authorised"


def test_unknown_builtin_needs_admin() -> None:
    assert POLICY.required_role("reboot") is Role.ADMIN


def test_groups_only_the_known_ones_and_only_listed_users() -> None:
    assert POLICY.check(2, -100, "supergroup", "start").allowed
    assert not POLICY.check(2, -200, "group", "start").allowed
    assert not POLICY.check(99, -100, "supergroup", "status").allowed
    assert not POLICY.check(3, -300, "channel", "status").allowed


def test_confirmation_by_its_user_in_time() -> None:
    book: ConfirmBook[str] = ConfirmBook(30)
    p = book.create(3, 3, "stop alpha", now_ns=100)
    assert book.resolve(p.token, 3, 130) == (ConfirmState.CONFIRMED, p)
    assert book.resolve(p.token, 3, 130) == (ConfirmState.UNKNOWN, None)


def test_confirmation_expired() -> None:
    book: ConfirmBook[str] = ConfirmBook(30)
    p = book.create(3, 3, "stop alpha", now_ns=100)
    assert book.resolve(p.token, 3, 131)[0] is ConfirmState.EXPIRED
    assert len(book) == 0


def test_foreign_press_leaves_the_confirmation_waiting() -> None:
    book: ConfirmBook[str] = ConfirmBook(30)
    p = book.create(3, -100, "flatten", now_ns=0)
    assert book.resolve(p.token, 2, 1)[0] is ConfirmState.FOREIGN
    assert book.resolve(p.token, 3, 2, confirm=False)[0] is ConfirmState.CANCELLED


def test_old_confirmations_are_purged() -> None:
    book: ConfirmBook[str] = ConfirmBook(10)
    book.create(1, 1, "a", now_ns=0)
    book.create(1, 1, "b", now_ns=100)
    assert len(book) == 1


def test_callback_data_round_trip_and_fits_telegrams_64_bytes() -> None:
    data = callback_data("abcDEF_-12345678", confirm=True)
    assert len(data.encode()) <= 64
    assert parse_callback_data(data) == ("abcDEF_-12345678", True)
    assert parse_callback_data(callback_data("t", confirm=False)) == ("t", False)
    assert parse_callback_data("thedata") is None
