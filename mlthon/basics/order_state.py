"""One order's life cycle: the legal status transitions, shared by the env, the simulated
exchange and the live gateways.

::

    PendingNew ─ack─> New ─fill─> PartiallyFilled ─fill─> Filled
        │   └─ack(stop)─> Untriggered ─trigger─> New
        ├─reject─> Rejected
        └─(any open status) ─cancel─> Cancelled

* A status never goes back: a report that would move an order backwards (a venue's late
  ``PartiallyFilled`` after ``Cancelled``) is refused (:func:`later_status` picks the later of two).
* Filled, Cancelled and Rejected are final; a fill on a final order is refused.
* A fill may come before the ack (a venue's execution stream can beat its order stream): it
  implies the ack.
* A cancellation reported with more filled than the fills seen so far (Binance's cancel answer
  carries ``executedQty``; Bybit sends ``order`` and ``execution`` on separate topics) does not
  close the order at once: the order waits, open, for those fills (:attr:`OrderLifecycle.
  cancel_waits`), and the fill that reaches the venue's figure closes it. A fill that follows a
  cancel is therefore always delivered before the order is closed.

Quantities are ``int`` (lots, in the simulated exchange) or ``Decimal`` (the live gateways and the
env); one order uses one kind.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, TypeVar

import attrs

from mlthon.basics.errors import MlthonError
from mlthon.basics.mlt_enum import OrderStatus

N = TypeVar("N", int, Decimal)

_FINAL = frozenset({OrderStatus.Filled, OrderStatus.Cancelled, OrderStatus.Rejected})
# How far along an order is; a status never moves to a lower rank.
_RANK = {
    OrderStatus.Unset: 0,
    OrderStatus.PendingNew: 1,
    OrderStatus.Untriggered: 2,
    OrderStatus.New: 3,
    OrderStatus.PartiallyFilled: 4,
    OrderStatus.Filled: 5,
    OrderStatus.Cancelled: 5,
    OrderStatus.Rejected: 5,
}
_LEGAL: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.Unset: frozenset({OrderStatus.PendingNew}),
    OrderStatus.PendingNew: frozenset(
        {
            OrderStatus.New,
            OrderStatus.Untriggered,
            OrderStatus.PartiallyFilled,
            OrderStatus.Filled,
            OrderStatus.Cancelled,
            OrderStatus.Rejected,
        }
    ),
    OrderStatus.Untriggered: frozenset(
        {OrderStatus.New, OrderStatus.PartiallyFilled, OrderStatus.Filled, OrderStatus.Cancelled}
    ),
    OrderStatus.New: frozenset(
        {OrderStatus.PartiallyFilled, OrderStatus.Filled, OrderStatus.Cancelled}
    ),
    OrderStatus.PartiallyFilled: frozenset(
        {OrderStatus.PartiallyFilled, OrderStatus.Filled, OrderStatus.Cancelled}
    ),
    OrderStatus.Filled: frozenset(),
    OrderStatus.Cancelled: frozenset(),
    OrderStatus.Rejected: frozenset(),
}


# The same rules by integer value, for the hot paths (an Enum member hashes in Python; its
# ``_value_`` is a plain attribute): bit ``new`` of ``_LEGAL_BITS[current]`` is set when legal.
_LEGAL_BITS = [0] * (max(s.value for s in OrderStatus) + 1)
for _cur, _news in _LEGAL.items():
    for _new in _news:
        _LEGAL_BITS[_cur.value] |= 1 << _new.value
_FINAL_BITS = sum(1 << s.value for s in _FINAL)


class IllegalTransition(MlthonError):
    """An event that an order in its status cannot take (a fill on a cancelled order...).

    Attributes:
        status: the order's status.
        event: what was attempted (``"fill"``, ``"ack"``...).
        why: the rule it breaks.
    """

    def __init__(self, status: OrderStatus, event: str, why: str) -> None:
        super().__init__(f"{event} on a {status.name} order: {why}")
        self.status = status
        self.event = event
        self.why = why


def is_final(status: OrderStatus) -> bool:
    """True for Filled, Cancelled and Rejected."""
    return bool(_FINAL_BITS >> status._value_ & 1)


def can_move(current: OrderStatus, new: OrderStatus) -> bool:
    """True if ``current -> new`` is a legal transition."""
    return bool(_LEGAL_BITS[current._value_] >> new._value_ & 1)


def later_status(current: OrderStatus, reported: OrderStatus) -> OrderStatus:
    """The status an order has after a report of ``reported``: the later of the two (a status
    never goes back; a final status is kept)."""
    if _FINAL_BITS >> current._value_ & 1:
        return current
    return reported if _RANK[reported] > _RANK[current] else current


# Read on every order event, bound once: reading a member off its Enum class goes through
# EnumType's Python-level __getattr__ hook on Python 3.11 (about 800 instructions).
_CANCELLED = OrderStatus.Cancelled
_FILLED = OrderStatus.Filled
_NEW = OrderStatus.New
_PARTIALLY_FILLED = OrderStatus.PartiallyFilled
_PENDING_NEW = OrderStatus.PendingNew
_REJECTED = OrderStatus.Rejected
_UNTRIGGERED = OrderStatus.Untriggered


@attrs.define(slots=True)
class OrderLifecycle(Generic[N]):
    """The status and quantities of one order, changed only by legal events.

    Attributes:
        qty: the order's size (after the last accepted modify).
        filled: how much has filled.
        status: where the order is in its life.
        cancel_waits: a cancellation was reported while fills up to this total were still on
            their way; the order closes when ``filled`` reaches it (None: no cancel waits).
    """

    qty: N
    filled: N
    status: OrderStatus = OrderStatus.PendingNew
    cancel_waits: N | None = None

    @classmethod
    def new(cls, qty: N) -> OrderLifecycle[N]:
        """A pending order of ``qty``, nothing filled."""
        return cls(qty=qty, filled=qty - qty)

    @property
    def is_open(self) -> bool:
        """True until the order is filled, cancelled or rejected."""
        return not _FINAL_BITS >> self.status._value_ & 1

    @property
    def leaves(self) -> N:
        """What can still trade (0 once final)."""
        if _FINAL_BITS >> self.status._value_ & 1:
            return self.qty - self.qty
        return self.qty - self.filled

    def _move(self, new: OrderStatus, event: str) -> None:
        if not _LEGAL_BITS[self.status._value_] >> new._value_ & 1:
            raise IllegalTransition(self.status, event, f"{self.status.name} -> {new.name}")
        self.status = new

    def ack(self, *, untriggered: bool = False) -> bool:
        """The venue accepted the order (``untriggered``: a stop order waiting for its trigger).
        True the first time; False for a repeat or an order already further along."""
        if self.status is not _PENDING_NEW:
            if self.status is _REJECTED:
                raise IllegalTransition(self.status, "ack", "a rejected order cannot be accepted")
            return False
        self._move(_UNTRIGGERED if untriggered else _NEW, "ack")
        return True

    def trigger(self) -> None:
        """A stop order's trigger price was reached: it now works as a plain order."""
        if self.status is _UNTRIGGERED:
            self._move(_NEW, "trigger")

    def reject(self) -> None:
        """The venue refused the order (only before it was accepted)."""
        self._move(_REJECTED, "reject")

    def fill(self, qty: N) -> bool:
        """Apply a fill of ``qty``. True if it closed the order (filled to the end, or it was
        the last fill a waiting cancellation needed).

        Raises:
            IllegalTransition: the order is final, or ``qty`` is not positive or exceeds what
                is left.
        """
        if _FINAL_BITS >> self.status._value_ & 1:
            raise IllegalTransition(self.status, "fill", "the order is closed")
        if qty <= 0:
            raise IllegalTransition(self.status, "fill", f"fill quantity {qty} is not positive")
        filled = self.filled + qty
        if filled > self.qty:
            raise IllegalTransition(
                self.status, "fill", f"fills of {filled} exceed the order's {self.qty}"
            )
        self.filled = filled
        if filled == self.qty:
            self._move(_FILLED, "fill")
            self.cancel_waits = None
            return True
        self._move(_PARTIALLY_FILLED, "fill")
        waits = self.cancel_waits
        if waits is not None and filled >= waits:
            self.cancel_waits = None
            self._move(_CANCELLED, "cancel")
            return True
        return False

    def cancel(self, venue_filled: N | None = None) -> bool:
        """The venue cancelled the order, having filled ``venue_filled`` of it (None: it did not
        say). True if the order is closed now; False if fills it reported are still to come (the
        order closes with the last of them, see :meth:`fill`), or if it was already final.
        """
        if _FINAL_BITS >> self.status._value_ & 1:
            return False
        if venue_filled is not None and venue_filled > self.filled:
            self.cancel_waits = venue_filled
            return False
        self._move(_CANCELLED, "cancel")
        self.cancel_waits = None
        return True

    def force_close(self) -> bool:
        """Close a cancellation that waited for fills which never came (a timeout or a
        reconciliation decided). True if it closed the order."""
        if self.cancel_waits is None or _FINAL_BITS >> self.status._value_ & 1:
            return False
        self.cancel_waits = None
        self._move(_CANCELLED, "cancel")
        return True

    def modify(self, qty: N) -> None:
        """A modify was accepted: the order's size is now ``qty`` (must exceed what filled)."""
        if _FINAL_BITS >> self.status._value_ & 1:
            raise IllegalTransition(self.status, "modify", "the order is closed")
        if qty <= self.filled:
            raise IllegalTransition(
                self.status, "modify", f"new size {qty} is not above the filled {self.filled}"
            )
        self.qty = qty
