"""Confirmations of dangerous commands: a token per request, valid for one user, for a while.

The bridge sends an inline keyboard whose buttons carry ``mlt:y:<token>`` (confirm) and
``mlt:n:<token>`` (cancel). :meth:`ConfirmBook.resolve` decides what a press means. Pure, no I/O.
"""

from __future__ import annotations

import enum
import secrets
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")

CALLBACK_PREFIX = "mlt"


class ConfirmState(enum.Enum):
    """What a button press means."""

    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


@attrs.define
class PendingConfirm(Generic[T]):
    """A dangerous command waiting for its sender's confirmation.

    Attributes:
        token: the id carried by the buttons.
        user_id: the only user who may confirm.
        chat_id: the chat it was asked in.
        expires_ns: when it stops being valid.
        payload: what to run once confirmed.
    """

    token: str
    user_id: int
    chat_id: int
    expires_ns: int
    payload: T


def callback_data(token: str, *, confirm: bool) -> str:
    """The ``callback_data`` of the confirm (or cancel) button for ``token``."""
    return f"{CALLBACK_PREFIX}:{'y' if confirm else 'n'}:{token}"


def parse_callback_data(data: str) -> tuple[str, bool] | None:
    """``(token, confirm)`` from a button's data, None if it is not one of ours."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != CALLBACK_PREFIX or parts[1] not in ("y", "n"):
        return None
    return parts[2], parts[1] == "y"


class ConfirmBook(Generic[T]):
    """The confirmations waiting for an answer.

    Args:
        timeout_ns: how long a confirmation stays valid.
    """

    def __init__(self, timeout_ns: int) -> None:
        self.timeout_ns = timeout_ns
        self._pending: dict[str, PendingConfirm[T]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def create(self, user_id: int, chat_id: int, payload: T, now_ns: int) -> PendingConfirm[T]:
        """Register a confirmation for ``user_id``, valid ``timeout_ns`` from ``now_ns``."""
        self.purge(now_ns - self.timeout_ns)  # keep long-expired ones from piling up
        token = secrets.token_urlsafe(12)
        pending = PendingConfirm(token, user_id, chat_id, now_ns + self.timeout_ns, payload)
        self._pending[token] = pending
        return pending

    def resolve(
        self, token: str, user_id: int, now_ns: int, *, confirm: bool = True
    ) -> tuple[ConfirmState, PendingConfirm[T] | None]:
        """Answer a press of a confirmation button by ``user_id`` at ``now_ns``.

        A press by another user leaves the confirmation waiting; every other answer ends it.
        """
        pending = self._pending.get(token)
        if pending is None:
            return ConfirmState.UNKNOWN, None
        if pending.user_id != user_id:
            return ConfirmState.FOREIGN, pending
        del self._pending[token]
        if now_ns > pending.expires_ns:
            return ConfirmState.EXPIRED, pending
        return (ConfirmState.CONFIRMED if confirm else ConfirmState.CANCELLED), pending

    def purge(self, before_ns: int) -> list[PendingConfirm[T]]:
        """Forget confirmations that expired before ``before_ns``; return them."""
        gone = [p for p in self._pending.values() if p.expires_ns < before_ns]
        for p in gone:
            del self._pending[p.token]
        return gone
