# The compiled TickBook's C layout, for other compiled modules (cimport it to call the book
# without going through Python). The pure-Python twin is mlthon.basics.tickbook.PyTickBook.

from libc.stdint cimport int64_t, uint64_t


cdef struct Window:
    # One side's dense array: slot i holds the lots at tick base + i (0: no level).
    int64_t base
    int64_t *lots
    uint64_t *bits      # one bit per slot, set when the slot holds a level
    Py_ssize_t n        # levels in the window


cdef class TickBook:
    cdef readonly int64_t bid
    cdef readonly int64_t ask
    cdef Window _bw
    cdef Window _aw
    cdef dict _bfar     # bid levels below the bid window
    cdef dict _afar     # ask levels above the ask window
    cdef Py_ssize_t _width
    cdef Py_ssize_t _words

    cpdef int64_t set_bid(self, int64_t tick, int64_t lots) except? -1
    cpdef int64_t set_ask(self, int64_t tick, int64_t lots) except? -1
    cpdef int64_t set(self, int64_t side, int64_t tick, int64_t lots) except? -1
    cpdef int64_t lots(self, int64_t side, int64_t tick) except? -1
    cpdef int64_t bid_below(self, int64_t tick) except? -1
    cpdef int64_t ask_above(self, int64_t tick) except? -1
    cdef int _move(self, Window *w, dict far, int64_t new_base) except -1
    cdef int64_t _bid_base(self, int64_t best) noexcept
    cdef int64_t _ask_base(self, int64_t best) noexcept
    cdef int64_t _next_bid(self, int64_t below) except? -1
    cdef int64_t _next_ask(self, int64_t above) except? -1
