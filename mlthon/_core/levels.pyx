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
