"""What a value must be to enter mlthon: the one rule for decimal text and for client order ids.

Every boundary (bus decode, a gateway's request handling, the env's calls and its market-data
values, config files) asks these functions instead of writing its own test, so a value refused in
one place is refused everywhere with the same words.

* **Decimals** (prices, quantities, fees, balances) are finite, at most
  :data:`MAX_DECIMAL_TEXT` characters as text, below :data:`MAX_ABS` in magnitude and with at most
  :data:`MAX_DECIMALS` digits after the point. ``"NaN"``, ``"Infinity"``, ``"1e30"``,
  ``"1e999999"`` and a 10 kB string of digits are all refused, each with its reason.
* **Client order ids** are 1 to :data:`MAX_CL_ID` characters of letters, digits, ``-`` and
  ``_``: the alphabet both Binance (``newClientOrderId``) and Bybit (``orderLinkId``) accept, so a
  gateway can always pass one on. The env makes them from positive integers below ``2**63``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MAX_ABS = Decimal("1e15")
MAX_DECIMALS = 18
MAX_DECIMAL_TEXT = 40
MAX_CL_ID = 36
MAX_INT_CL_ID = 2**63 - 1

_CL_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
# Plain decimal text that is within every bound by its shape (sign, at most 15 digits before the
# point, at most 18 after): the common case, answered without building a Decimal.
_PLAIN = re.compile(r"(-?)(\d{1,15})(?:\.(\d{1,18}))?")


def decimal_problem(text: object, *, positive: bool = False, signed: bool = False) -> str | None:
    """Why ``text`` is not an acceptable decimal, or None if it is.

    Args:
        text: the value as received (a ``str`` on the wire; ``Decimal`` and ``int`` are
            accepted too).
        positive: it must be > 0 (a price, an order quantity, a fill).
        signed: it may be negative (a position, a PnL, a fee, a funding rate); otherwise it must
            be >= 0.
    """
    if type(text) is str:
        plain = _PLAIN.fullmatch(text)
        if plain is not None:
            neg, whole, frac = plain.groups()
            zero = not whole.strip("0") and not (frac or "").strip("0")
            if not ((positive and (neg or zero)) or (neg and not zero and not signed)):
                return None
            # else: the slow path below words the problem
    elif type(text) is Decimal and text.is_finite() and (text, positive, signed) in _SANE_DECIMALS:
        return None  # seen and found sane (a strategy's prices repeat)
    if isinstance(text, bool) or not isinstance(text, str | Decimal | int):
        return f"must be a decimal string, got {type(text).__name__}"
    if isinstance(text, str):
        if len(text) > MAX_DECIMAL_TEXT:
            return f"is {len(text)} characters long (at most {MAX_DECIMAL_TEXT})"
        try:
            d = Decimal(text)
        except (InvalidOperation, ValueError):
            return f"{text!r} is not a number"
    else:
        d = Decimal(text)
    if not d.is_finite():
        return f"{text!r} is not finite"
    if abs(d) >= MAX_ABS:
        return f"{text!r} is out of range (magnitude at most {MAX_ABS:.0e})"
    exponent = d.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        return f"{text!r} has more than {MAX_DECIMALS} decimals"
    if positive and d <= 0:
        return f"{text!r} must be > 0"
    if not positive and not signed and d < 0:
        return f"{text!r} must be >= 0"
    if type(text) is Decimal:
        if len(_SANE_DECIMALS) >= _SANE_DECIMALS_MAX:
            _SANE_DECIMALS.clear()
        _SANE_DECIMALS[(text, positive, signed)] = None
    return None


#: Decimals found sane, with the flags they were checked with (equal values give equal answers:
#: the checks look at the value, its magnitude and its normalized exponent).
_SANE_DECIMALS: dict[tuple[Decimal, bool, bool], None] = {}
_SANE_DECIMALS_MAX = 4096


def checked_decimal(
    field: str, text: object, *, positive: bool = False, signed: bool = False
) -> Decimal:
    """``text`` as a Decimal, or ValueError naming ``field`` and why (:func:`decimal_problem`)."""
    why = decimal_problem(text, positive=positive, signed=signed)
    if why is not None:
        raise ValueError(f"{field}: {why}")
    return Decimal(text if isinstance(text, str | int) else str(text))


def cl_id_problem(cl_id: object) -> str | None:
    """Why ``cl_id`` is not an acceptable client order id on the wire, or None if it is."""
    if not isinstance(cl_id, str):
        return f"must be a string, got {type(cl_id).__name__}"
    if not cl_id:
        return "is empty"
    if len(cl_id) > MAX_CL_ID:
        return f"is {len(cl_id)} characters long (at most {MAX_CL_ID})"
    if _CL_ID.fullmatch(cl_id) is None:
        return f"{cl_id!r} may hold only letters, digits, '-' and '_'"
    return None


def int_cl_id_problem(client_id: object) -> str | None:
    """Why ``client_id`` is not an acceptable client id for an env call (an int from
    ``send_new_order``, or its decimal string), or None if it is."""
    if isinstance(client_id, bool) or not isinstance(client_id, int | str):
        return "must be the int returned by send_new_order"
    if isinstance(client_id, int):
        if client_id <= 0 or client_id > MAX_INT_CL_ID:
            return f"must be between 1 and 2**63-1, got {client_id}"
        return None
    return cl_id_problem(client_id)
