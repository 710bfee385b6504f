# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The compiled twin of mlthon.feeds.levels.py_apply_pairs: a venue message's levels into the book.

The feed engine's hottest loop (once per level of every depth message): look each price and size
text up in the instrument's caches (text -> ticks, text -> lots), set the level in the one
TickBook, and note the change as ``(action, side, tick, lots)``. This does it in C for as long
as both texts of a level are in the caches and hands the first level that is not back to Python
(its index), whose slow path converts, checks and reports it; then the engine calls again from
the next level. Results are identical to the pure-Python twin's (tested on both).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t

from mlthon._core.tickbook cimport TickBook

cdef extern from *:
    """
    #ifndef MLTHON_SRC_HASH
    #define MLTHON_SRC_HASH ""
    #endif
    """
    const char *MLTHON_SRC_HASH

#: The hash of the sources this module was compiled from (mlthon/_core/source_hash.py).
SOURCE_HASH = (<bytes>MLTHON_SRC_HASH).decode()

cdef enum:
    C_BID = 1
    C_ADD = 0
    C_MODIFY = 1
    C_DELETE = 2


def apply_pairs(
    TickBook book,
    dict ticks,
    dict lots,
    int64_t side,
    list pairs,
    Py_ssize_t start,
    list out,
):
    """Apply ``pairs[start:]`` (``(price text, size text)`` each) to ``side`` of ``book`` while
    both texts of a pair are in ``ticks`` / ``lots``; append each change to ``out`` (None: do not
    note them). Returns the index of the first pair with a text in neither cache, or
    ``len(pairs)`` when all were applied."""
    cdef Py_ssize_t i
    cdef Py_ssize_t n_pairs = PyList_GET_SIZE(pairs)
    cdef PyObject *pair
    cdef PyObject *tp
    cdef PyObject *np
    cdef object p, q
    cdef int64_t t, n, prev, act
    cdef bint bid = side == C_BID
    cdef bint noting = out is not None
    for i in range(start, n_pairs):
        pair = PyList_GET_ITEM(pairs, i)
        if type(<object>pair) is tuple and PyTuple_GET_SIZE(<object>pair) == 2:
            tp = PyDict_GetItem(ticks, <object>PyTuple_GET_ITEM(<object>pair, 0))
            if tp == NULL:
                return i
            np = PyDict_GetItem(lots, <object>PyTuple_GET_ITEM(<object>pair, 1))
        else:
            # a list or another sequence of two (Python's unpacking, with its errors, decides)
            p, q = <object>pair
            tp = PyDict_GetItem(ticks, p)
            if tp == NULL:
                return i
            np = PyDict_GetItem(lots, q)
        if np == NULL:
            return i
        t = <object>tp
        n = <object>np
        prev = book.set_bid(t, n) if bid else book.set_ask(t, n)
        if n:
            if prev == n:
                continue
            act = C_MODIFY if prev else C_ADD
        elif prev:
            act = C_DELETE
        else:
            continue
        if noting:
            out.append((act, side, t, n))
    return n_pairs


# --- levels straight from the venue's JSON ---------------------------------------------------------
#
# A venue message's levels as the raw bytes of their JSON array, ``[["61800.30","0.014"],...]``
# (whitespace allowed between tokens): parsed here, each number straight to integer units of the
# grid's smallest decimal, without a Python object per level. Only plain decimal strings (digits
# and at most one point, no escapes) with at most 18 digits, at most the grid's decimals, on the
# grid and in range are taken; anything else is left to the text path, which gives the same
# result for every level taken here (see mlthon.feeds.grid.scaled and Grid.ticks_slow/lots_slow).

cdef int64_t _POW10[19]
cdef int64_t _INT64_MAX = 0x7FFFFFFFFFFFFFFF
_POW10[0] = 1
for _k in range(1, 19):
    _POW10[_k] = _POW10[_k - 1] * 10


cdef inline Py_ssize_t _skip_ws(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (s[i] == 32 or s[i] == 9 or s[i] == 10 or s[i] == 13):
        i += 1
    return i


cdef inline Py_ssize_t _end_of_string(
    const unsigned char *s, Py_ssize_t i, Py_ssize_t n
) noexcept nogil:
    """The index of the closing quote of the string whose first character is at ``i``, or -1
    when it has an escape or a control character, or does not end."""
    while i < n:
        if s[i] == 34:  # "
            return i
        if s[i] == 92 or s[i] < 32:  # backslash, control
            return -1
        i += 1
    return -1


cdef inline int64_t _quoted_units(
    const unsigned char *s, Py_ssize_t i, Py_ssize_t n, int places, Py_ssize_t *end
) noexcept nogil:
    """The decimal text of the JSON string whose first character is at ``i`` in units of
    10**-places, read up to its closing quote, whose index goes to ``end[0]``; -1 when it is not
    plain decimal text with at most ``places`` decimals and 18 digits in all (the text path then
    decides), or has an escape or a control character, or does not end."""
    cdef int64_t v = 0
    cdef int digits = 0
    cdef int frac = -1
    cdef unsigned char c
    while True:
        if i >= n:
            return -1
        c = s[i]
        if 48 <= c <= 57:
            digits += 1
            if digits > 18:
                return -1
            v = v * 10 + (c - 48)
            if frac >= 0:
                frac += 1
        elif c == 34:  # the closing quote
            break
        elif c == 46 and frac < 0:  # the one decimal point
            frac = 0
        else:
            return -1
        i += 1
    end[0] = i
    if digits == 0:
        return -1
    if frac < 0:
        frac = 0
    if frac > places:
        return -1
    if places - frac > 18 or (v != 0 and v > _INT64_MAX // _POW10[places - frac]):
        return -1
    return v * _POW10[places - frac]


def count_levels(const unsigned char[::1] raw):
    """The number of levels in a JSON array of ``[price, size]`` string pairs, or -1 when the
    bytes are not exactly that (a number, an escape, a pair of three, trailing bytes...): the
    caller then decodes them with its typed decoder, which says what is wrong."""
    cdef const unsigned char *s = &raw[0] if raw.shape[0] else NULL
    cdef Py_ssize_t n = raw.shape[0]
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t count = 0
    cdef int k
    if n == 0:
        return -1
    i = _skip_ws(s, 0, n)
    if i >= n or s[i] != 91:  # [
        return -1
    i = _skip_ws(s, i + 1, n)
    if i < n and s[i] == 93:  # ]
        return count if _skip_ws(s, i + 1, n) == n else -1
    while True:
        if i >= n or s[i] != 91:
            return -1
        i = _skip_ws(s, i + 1, n)
        for k in range(2):
            if i >= n or s[i] != 34:
                return -1
            i = _end_of_string(s, i + 1, n)
            if i < 0:
                return -1
            i = _skip_ws(s, i + 1, n)
            if k == 0:
                if i >= n or s[i] != 44:  # ,
                    return -1
                i = _skip_ws(s, i + 1, n)
        if i >= n or s[i] != 93:
            return -1
        count += 1
        i = _skip_ws(s, i + 1, n)
        if i < n and s[i] == 44:
            i = _skip_ws(s, i + 1, n)
            continue
        if i < n and s[i] == 93:
            return count if _skip_ws(s, i + 1, n) == n else -1
        return -1


def apply_raw(
    TickBook book,
    bytes raw not None,
    int64_t side,
    int tick_places,
    int64_t tick_units,
    int64_t tick_limit,
    int lot_places,
    int64_t lot_units,
    int64_t lot_limit,
    list out,
):
    """Apply the levels of ``raw`` (a JSON array of ``[price, size]`` string pairs that
    :func:`count_levels` accepted) to ``side`` of ``book`` while each level is plain decimal
    text on the grid (``tick_limit`` / ``lot_limit``: the sanity bound in units, 0 for none);
    append each change to ``out`` (None: do not note them). Returns -1 when every level was
    applied, else the index of the first level left to the text path (nothing of it applied)."""
    # The bytes' own buffer (no memoryview made per call: this runs twice per depth message).
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t i, b, d
    cdef Py_ssize_t index = 0
    cdef int64_t pu, qu, t, q, prev, act
    cdef bint bid = side == C_BID
    cdef bint noting = out is not None
    cdef object side_o = side  # made once: every change of the call names the same side
    if n == 0:
        return -1
    i = _skip_ws(s, 0, n) + 1  # past [
    while True:
        i = _skip_ws(s, i, n)
        if i >= n or s[i] != 91:
            return -1  # the end (count_levels checked the shape)
        i = _skip_ws(s, i + 1, n)
        # Each text is read once: its number and its closing quote in one pass. Any level that
        # is not plain decimal on the grid goes to the text path, nothing of it applied.
        pu = _quoted_units(s, i + 1, n, tick_places, &b)
        if pu <= 0 or (tick_limit and pu >= tick_limit) or pu % tick_units:
            return index
        i = _skip_ws(s, b + 1, n) + 1  # past ,
        i = _skip_ws(s, i, n)
        qu = _quoted_units(s, i + 1, n, lot_places, &d)
        if qu < 0 or (lot_limit and qu >= lot_limit) or qu % lot_units:
            return index
        i = _skip_ws(s, d + 1, n) + 1  # past ]
        i = _skip_ws(s, i, n)
        if i < n and s[i] == 44:
            i += 1
        t = pu // tick_units
        q = qu // lot_units
        prev = book.set_bid(t, q) if bid else book.set_ask(t, q)
        index += 1
        if q:
            if prev == q:
                continue
            act = C_MODIFY if prev else C_ADD
        elif prev:
            act = C_DELETE
        else:
            continue
        if noting:
            out.append((_ACTIONS[act], side_o, t, q))


#: The action codes as objects, indexed by code (ADD, MODIFY, DELETE).
cdef tuple _ACTIONS = (C_ADD, C_MODIFY, C_DELETE)


def changes_in_ranges(
    list ch,
    list bid_ticks not None,
    list ask_ticks not None,
    dict resting_bids not None,
    dict resting_asks not None,
):
    """The simulated exchange's look at one book message's changes (``(action, side, tick,
    lots)``, side 1 a bid): ``(touched_bid, touched_ask, hits)``, whether any change was on each
    side and, in order, the changes at a price holding orders of ours: within the span of the
    side's resting prices (``bid_ticks`` / ``ask_ticks``, sorted; an empty one spans nothing)
    and in ``resting_bids`` / ``resting_asks`` (tick -> the orders there) with some orders. The
    compiled twin of ``mlthon.gateways.sim.book_changes.py_changes_in_ranges``: identical
    results."""
    cdef bint touched_bid = False
    cdef bint touched_ask = False
    cdef list hits = []
    cdef Py_ssize_t i, n = PyList_GET_SIZE(ch)
    cdef Py_ssize_t nb = PyList_GET_SIZE(bid_ticks)
    cdef Py_ssize_t na = PyList_GET_SIZE(ask_ticks)
    cdef int64_t lo_b = 1, hi_b = 0, lo_a = 1, hi_a = 0
    cdef object c, key
    cdef PyObject *queue
    cdef int64_t t
    if nb:
        lo_b = <int64_t><object>PyList_GET_ITEM(bid_ticks, 0)
        hi_b = <int64_t><object>PyList_GET_ITEM(bid_ticks, nb - 1)
    if na:
        lo_a = <int64_t><object>PyList_GET_ITEM(ask_ticks, 0)
        hi_a = <int64_t><object>PyList_GET_ITEM(ask_ticks, na - 1)
    for i in range(n):
        c = <object>PyList_GET_ITEM(ch, i)
        key = c[2]
        t = <int64_t>key
        if <int64_t>c[1] == C_BID:
            touched_bid = True
            if lo_b <= t <= hi_b:
                queue = PyDict_GetItem(resting_bids, key)
                if queue is not NULL and <object>queue:
                    hits.append(c)
        else:
            touched_ask = True
            if lo_a <= t <= hi_a:
                queue = PyDict_GetItem(resting_asks, key)
                if queue is not NULL and <object>queue:
                    hits.append(c)
    return touched_bid, touched_ask, hits
