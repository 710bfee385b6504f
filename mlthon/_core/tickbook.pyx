# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The compiled TickBook: the same interface and results as mlthon.basics.tickbook.PyTickBook.

Layout. Each side keeps a window of ``width`` consecutive ticks (8,192 by default) in a C array
of lots, with one occupancy bit per tick, plus a dict for the levels outside the window. The
window always holds its side's best level, so:

* every other bid level outside the bid window lies below it (and every other ask level above
  the ask window): the dict holds only levels worse than the window's;
* a change at a tick inside the window is an array write and a bit flip;
* when the best goes, the next one is found in the bit words (64 ticks per word);
* when a new best lands outside the window, or the window empties, or the best comes within an
  eighth of the window's worse edge, the window is moved so that the best sits a quarter of the
  width from its better edge (three quarters of it for the depth behind): levels that leave go
  to the dict, dict levels that enter come in. Books change mostly near the top, so moves are
  rare and the dict sees only the far levels (on the bundled Binance BTCUSDT capture, 9 % of the
  changes, at 0.1 tick).

Ticks must lie strictly between NO_BID and NO_ASK, and ticks and lots must fit in 64 bits
(OverflowError otherwise); the pure book takes any Python int.
"""

cimport cython
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem, PyDict_Size
from cpython.long cimport PyLong_AsLongLong
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    static inline int mlt_clz64(unsigned long long x) { return __builtin_clzll(x); }
    static inline int mlt_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    #else
    static inline int mlt_clz64(unsigned long long x) {
        int n = 0; while (!(x & 0x8000000000000000ULL)) { x <<= 1; n++; } return n;
    }
    static inline int mlt_ctz64(unsigned long long x) {
        int n = 0; while (!(x & 1ULL)) { x >>= 1; n++; } return n;
    }
    #endif
    """
    int mlt_clz64(unsigned long long x) nogil
    int mlt_ctz64(unsigned long long x) nogil

cdef extern from *:
    """
    #ifndef MLTHON_SRC_HASH
    #define MLTHON_SRC_HASH ""
    #endif
    """
    const char *MLTHON_SRC_HASH

#: The hash of the sources this module was compiled from (mlthon/_core/source_hash.py).
SOURCE_HASH = (<bytes>MLTHON_SRC_HASH).decode()

BID = 1
ASK = 2
ADD = 0
MODIFY = 1
DELETE = 2
NO_BID = -(2**62)
NO_ASK = 2**62

cdef enum:
    C_BID = 1
    C_ASK = 2
    C_DELETE = 2

cdef int64_t C_NO_BID = -(2**62)
cdef int64_t C_NO_ASK = 2**62
cdef Py_ssize_t C_WIDTH = 8192

#: The window's width in ticks for new books (a power of two, at least 64).
DEFAULT_WIDTH = C_WIDTH


cdef inline Py_ssize_t _highest_below(const uint64_t *bits, Py_ssize_t i) noexcept nogil:
    """The highest occupied slot below slot ``i`` (-1 when none)."""
    cdef Py_ssize_t w = i >> 6
    cdef int r = <int>(i & 63)
    cdef uint64_t word
    if r:
        word = bits[w] & ((<uint64_t>1 << r) - 1)
        if word:
            return (w << 6) + 63 - mlt_clz64(word)
    w -= 1
    while w >= 0:
        word = bits[w]
        if word:
            return (w << 6) + 63 - mlt_clz64(word)
        w -= 1
    return -1


cdef inline Py_ssize_t _lowest_above(
    const uint64_t *bits, Py_ssize_t i, Py_ssize_t words
) noexcept nogil:
    """The lowest occupied slot above slot ``i`` (-1 when none)."""
    cdef Py_ssize_t j = i + 1
    cdef Py_ssize_t w = j >> 6
    cdef int r = <int>(j & 63)
    cdef uint64_t word
    if w >= words:
        return -1
    word = bits[w] & (~(<uint64_t>0) << r)
    if word:
        return (w << 6) + mlt_ctz64(word)
    w += 1
    while w < words:
        word = bits[w]
        if word:
            return (w << 6) + mlt_ctz64(word)
        w += 1
    return -1


cdef inline bint _inside(const Window *w, int64_t tick, Py_ssize_t width) noexcept nogil:
    # unsigned: no overflow for any int64 tick (moves keep base within the book's range)
    return w.lots != NULL and <uint64_t>tick - <uint64_t>w.base < <uint64_t>width


cdef inline int64_t _far_get(dict far, int64_t tick) except? -1:
    cdef PyObject *v
    if PyDict_Size(far) == 0:
        return 0
    v = PyDict_GetItem(far, tick)
    if v == NULL:
        return 0
    return PyLong_AsLongLong(<object>v)


cdef inline int64_t _far_pop(dict far, int64_t tick) except? -1:
    if PyDict_Size(far) == 0:
        return 0
    return far.pop(tick, 0)


@cython.final
cdef class TickBook:
    """One instrument's price-level book: tick -> lots per side, and the best tick of each.

    Attributes:
        bid: the best bid tick (NO_BID when there is no bid).
        ask: the best ask tick (NO_ASK when there is no ask).
    """

    def __cinit__(self):
        self.bid = C_NO_BID
        self.ask = C_NO_ASK
        self._bfar = {}
        self._afar = {}
        self._width = C_WIDTH
        self._words = C_WIDTH >> 6

    def __dealloc__(self):
        free(self._bw.lots)
        free(self._bw.bits)
        free(self._aw.lots)
        free(self._aw.bits)

    # --- changes -------------------------------------------------------------------------------

    cpdef int64_t set_bid(self, int64_t tick, int64_t lots) except? -1:
        """Set the bid level at ``tick`` to ``lots`` (0 removes it); returns its previous lots."""
        cdef Window *w = &self._bw
        cdef Py_ssize_t i
        cdef int64_t prev
        if _inside(w, tick, self._width):
            i = tick - w.base
            prev = w.lots[i]
            if lots:
                w.lots[i] = lots
                if not prev:
                    w.bits[i >> 6] |= <uint64_t>1 << (i & 63)
                    w.n += 1
                    if tick > self.bid:
                        self.bid = tick
                return prev
            if prev:
                w.lots[i] = 0
                w.bits[i >> 6] &= ~(<uint64_t>1 << (i & 63))
                w.n -= 1
                if tick == self.bid:
                    self.bid = self._next_bid(tick)
            return prev
        if lots:
            if tick > self.bid:  # a new best outside the window (or the first bid)
                _check_tick(tick)
                self._move(w, self._bfar, self._bid_base(tick))
                i = tick - w.base
                w.lots[i] = lots
                w.bits[i >> 6] |= <uint64_t>1 << (i & 63)
                w.n += 1
                self.bid = tick
                return 0
            _check_tick(tick)
            prev = _far_get(self._bfar, tick)
            self._bfar[tick] = lots
            return prev
        return _far_pop(self._bfar, tick)

    cpdef int64_t set_ask(self, int64_t tick, int64_t lots) except? -1:
        """Set the ask level at ``tick`` to ``lots`` (0 removes it); returns its previous lots."""
        cdef Window *w = &self._aw
        cdef Py_ssize_t i
        cdef int64_t prev
        if _inside(w, tick, self._width):
            i = tick - w.base
            prev = w.lots[i]
            if lots:
                w.lots[i] = lots
                if not prev:
                    w.bits[i >> 6] |= <uint64_t>1 << (i & 63)
                    w.n += 1
                    if tick < self.ask:
                        self.ask = tick
                return prev
            if prev:
                w.lots[i] = 0
                w.bits[i >> 6] &= ~(<uint64_t>1 << (i & 63))
                w.n -= 1
                if tick == self.ask:
                    self.ask = self._next_ask(tick)
            return prev
        if lots:
            if tick < self.ask:
                _check_tick(tick)
                self._move(w, self._afar, self._ask_base(tick))
                i = tick - w.base
                w.lots[i] = lots
                w.bits[i >> 6] |= <uint64_t>1 << (i & 63)
                w.n += 1
                self.ask = tick
                return 0
            _check_tick(tick)
            prev = _far_get(self._afar, tick)
            self._afar[tick] = lots
            return prev
        return _far_pop(self._afar, tick)

    cpdef int64_t set(self, int64_t side, int64_t tick, int64_t lots) except? -1:
        """Set one level of ``side`` (BID or ASK); returns its previous lots."""
        if side == C_BID:
            return self.set_bid(tick, lots)
        if side == C_ASK:
            return self.set_ask(tick, lots)
        raise ValueError(f"side must be {BID} (bid) or {ASK} (ask), got {side!r}")

    def apply(self, changes):
        """Apply a venue message's changes, ``(action, side, tick, lots)`` each (DELETE, or
        ``lots`` 0, removes the level)."""
        cdef int64_t action, side, tick, lots
        for ch in changes:
            if type(ch) is tuple and PyTuple_GET_SIZE(ch) == 4:
                action = <object>PyTuple_GET_ITEM(ch, 0)
                side = <object>PyTuple_GET_ITEM(ch, 1)
                tick = <object>PyTuple_GET_ITEM(ch, 2)
                lots = 0 if action == C_DELETE else <object>PyTuple_GET_ITEM(ch, 3)
            else:
                a, s, t, q = ch
                action = a
                side = s
                tick = t
                lots = 0 if action == C_DELETE else q
            self.set(side, tick, lots)

    def clear(self):
        """Remove every level."""
        _clear_window(&self._bw, self._width, self._words)
        _clear_window(&self._aw, self._width, self._words)
        self._bfar.clear()
        self._afar.clear()
        self.bid = C_NO_BID
        self.ask = C_NO_ASK

    # --- the window ----------------------------------------------------------------------------

    cdef int _move(self, Window *w, dict far, int64_t new_base) except -1:
        """Place ``w`` at ``new_base``: its levels that fall outside go to ``far``, the levels of
        ``far`` that fall inside come in."""
        cdef Py_ssize_t width = self._width
        cdef Py_ssize_t words = self._words
        cdef Py_ssize_t j, k, wi
        cdef uint64_t word
        cdef int64_t t, v
        cdef int64_t *lots = <int64_t *>calloc(width, sizeof(int64_t))
        cdef uint64_t *bits = <uint64_t *>calloc(words, sizeof(uint64_t))
        cdef Py_ssize_t n = 0
        if lots == NULL or bits == NULL:
            free(lots)
            free(bits)
            raise MemoryError()
        if w.lots != NULL:
            for wi in range(words):
                word = w.bits[wi]
                while word:
                    j = (wi << 6) + mlt_ctz64(word)
                    word &= word - 1
                    t = w.base + j
                    v = w.lots[j]
                    k = <Py_ssize_t>(<uint64_t>t - <uint64_t>new_base)  # no signed overflow
                    if <uint64_t>t - <uint64_t>new_base < <uint64_t>width:
                        lots[k] = v
                        bits[k >> 6] |= <uint64_t>1 << (k & 63)
                        n += 1
                    else:
                        try:
                            far[t] = v
                        except BaseException:
                            free(lots)
                            free(bits)
                            raise
            free(w.lots)
            free(w.bits)
        w.lots = lots
        w.bits = bits
        w.base = new_base
        w.n = n
        if far:
            entering = [
                (ft, fv) for ft, fv in far.items() if new_base <= ft < new_base + width
            ]
            for ft, fv in entering:
                del far[ft]
                k = <int64_t>ft - new_base
                w.lots[k] = fv
                w.bits[k >> 6] |= <uint64_t>1 << (k & 63)
                w.n += 1
        return 0

    cdef inline int64_t _bid_base(self, int64_t best) noexcept:
        # the best bid three quarters up its window: room below for the depth, above for a rise
        return best - self._width + (self._width >> 2)

    cdef inline int64_t _ask_base(self, int64_t best) noexcept:
        return best - (self._width >> 2)

    cdef int64_t _next_bid(self, int64_t below) except? -1:
        cdef Window *w = &self._bw
        cdef Py_ssize_t j = _highest_below(w.bits, below - w.base)
        cdef int64_t best
        if j >= 0:
            best = w.base + j
            if j < (self._width >> 3) and self._bfar:
                self._move(w, self._bfar, self._bid_base(best))
            return best
        if not self._bfar:
            return C_NO_BID
        best = max(self._bfar)
        self._move(w, self._bfar, self._bid_base(best))
        return best

    cdef int64_t _next_ask(self, int64_t above) except? -1:
        cdef Window *w = &self._aw
        cdef Py_ssize_t j = _lowest_above(w.bits, above - w.base, self._words)
        cdef int64_t best
        if j >= 0:
            best = w.base + j
            if j >= self._width - (self._width >> 3) and self._afar:
                self._move(w, self._afar, self._ask_base(best))
            return best
        if not self._afar:
            return C_NO_ASK
        best = min(self._afar)
        self._move(w, self._afar, self._ask_base(best))
        return best

    # --- reads ---------------------------------------------------------------------------------

    cpdef int64_t bid_below(self, int64_t tick) except? -1:
        """The best bid tick strictly below ``tick`` (NO_BID when there is none): walks a book
        from its best level toward worse ones, ``bid_below(bid_below(book.bid))``..."""
        cdef Window *w = &self._bw
        cdef Py_ssize_t j
        if self.bid == C_NO_BID:
            return C_NO_BID
        if tick > self.bid:
            return self.bid
        if tick > w.base:  # compared before subtracting: any two int64 ticks may overflow
            j = _highest_below(w.bits, tick - w.base)  # tick <= bid < base + width
            if j >= 0:
                return w.base + j
            # every far bid lies below the window, so below tick
            return max(self._bfar) if self._bfar else C_NO_BID
        return max([t for t in self._bfar if t < tick], default=C_NO_BID)

    cpdef int64_t ask_above(self, int64_t tick) except? -1:
        """The best ask tick strictly above ``tick`` (NO_ASK when there is none)."""
        cdef Window *w = &self._aw
        cdef Py_ssize_t j
        if self.ask == C_NO_ASK:
            return C_NO_ASK
        if tick < self.ask:
            return self.ask
        if tick < w.base + self._width:  # base + width fits: moves keep base within the range
            j = _lowest_above(w.bits, tick - w.base, self._words)  # tick >= ask >= base
            if j >= 0:
                return w.base + j
            # every far ask lies above the window, so above tick
            return min(self._afar) if self._afar else C_NO_ASK
        return min([t for t in self._afar if t > tick], default=C_NO_ASK)

    cpdef int64_t lots(self, int64_t side, int64_t tick) except? -1:
        """The lots at ``tick`` on ``side`` (0 when there is no level)."""
        cdef Window *w
        if side == C_BID:
            w = &self._bw
            if _inside(w, tick, self._width):
                return w.lots[tick - w.base]
            return _far_get(self._bfar, tick)
        w = &self._aw
        if _inside(w, tick, self._width):
            return w.lots[tick - w.base]
        return _far_get(self._afar, tick)

    def bid_lots(self):
        """The lots of the best bid (0 when there is none)."""
        if self.bid == C_NO_BID:
            return 0
        return self._bw.lots[self.bid - self._bw.base]

    def ask_lots(self):
        """The lots of the best ask (0 when there is none)."""
        if self.ask == C_NO_ASK:
            return 0
        return self._aw.lots[self.ask - self._aw.base]

    def count(self, int64_t side):
        """How many levels ``side`` has."""
        if side == C_BID:
            return self._bw.n + len(self._bfar)
        return self._aw.n + len(self._afar)

    def depth(self, int64_t side, n=None):
        """The first ``n`` levels of ``side`` (all when None), best first, as (tick, lots)."""
        cdef Window *w
        cdef Py_ssize_t want, j
        cdef bint bids = side == C_BID
        cdef list out = []
        cdef dict far
        if n is not None and n < 0:  # a negative n drops levels from the worst end, as a slice
            return self.depth(side)[:n]
        want = -1 if n is None else n  # -1: no limit
        if bids:
            w, far, j = &self._bw, self._bfar, self.bid - self._bw.base
            if self.bid == C_NO_BID:
                return out
        else:
            w, far, j = &self._aw, self._afar, self.ask - self._aw.base
            if self.ask == C_NO_ASK:
                return out
        while j >= 0 and want:
            out.append((w.base + j, w.lots[j]))
            want -= 1
            j = _highest_below(w.bits, j) if bids else _lowest_above(w.bits, j, self._words)
        if far and want:  # the far levels are all worse than the window's
            ticks = sorted(far, reverse=bids)
            if want > 0:
                ticks = ticks[:want]
            out.extend([(t, far[t]) for t in ticks])
        return out

    @property
    def crossed(self):
        """True when the best bid is at or above the best ask (both sides present)."""
        return self.bid >= self.ask

    def __len__(self):
        return self._bw.n + len(self._bfar) + self._aw.n + len(self._afar)

    def __repr__(self):
        bid = self.bid if self.bid != C_NO_BID else None
        ask = self.ask if self.ask != C_NO_ASK else None
        return f"TickBook(bid={bid}, ask={ask}, levels={len(self)})"

    def __reduce__(self):
        return (_rebuilt, (self._width, self.depth(C_BID), self.depth(C_ASK)))


cdef inline int _check_tick(int64_t tick) except -1:
    if tick <= C_NO_BID or tick >= C_NO_ASK:
        raise OverflowError(f"tick {tick} is outside the book's range ({NO_BID}, {NO_ASK})")
    return 0


cdef inline void _clear_window(Window *w, Py_ssize_t width, Py_ssize_t words) noexcept nogil:
    if w.lots != NULL and w.n:
        memset(w.lots, 0, width * sizeof(int64_t))
        memset(w.bits, 0, words * sizeof(uint64_t))
    w.n = 0


def _with_width(Py_ssize_t width):
    """A book whose windows are ``width`` ticks wide (a power of two, at least 64); tests use
    narrow windows to exercise the moves."""
    if width < 64 or width & (width - 1):
        raise ValueError(f"width must be a power of two >= 64, got {width}")
    cdef TickBook book = TickBook()
    book._width = width
    book._words = width // 64
    return book


def _rebuilt(width, bids, asks):
    cdef TickBook book = _with_width(width)
    for t, q in bids:
        book.set_bid(t, q)
    for t, q in asks:
        book.set_ask(t, q)
    return book
