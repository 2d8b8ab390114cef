# C types for pacing.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.session.connection cimport Connection, Counters, RttEstimator

cdef double LOSS_WINDOW, LOSS_CONGESTED, GROWTH, ACK_SLACK, NEVER
cdef Py_ssize_t UNACKED, LOSSY, REORDERED
cdef double FLOOR_WINDOW


cdef class SendPacer:
    cdef public double max_rate, min_rate, hold, rate, tokens, last, cut_at, full_at, loss, _loss_since, last_sent
    cdef double _floor, _floor_before, _floor_since, _timeout, _timeout_before
    cdef public long long full_tick, full_through, unanswered, _loss_sent, _loss_lost, cut_acked
    cdef public dict counters
    cdef public bint queued, holding, redundant
    cdef public object full_parts
    cdef public list full_have, _carriers, _carried
    cdef long long[::1] _unacked_tick
    cdef double[::1] _unacked_at
    cdef Py_ssize_t _head, _count

    @cython.locals(i=cython.Py_ssize_t)
    cpdef sent(self, long long tick, double now)

    cpdef double waiting(self, long long acked, double now) except? -1.0

    @cython.locals(lag=bint, sample=cython.double, timeout=cython.double, wait=cython.double, stalled=cython.double, rtt=RttEstimator, counters=Counters)
    cpdef bint pace(self, double now, long long acked, Connection conn) except -1

    @cython.locals(dt=cython.double, lossy=bint)
    cpdef update(self, double now, bint lagging, long long sent, long long lost, double rtt, long long acked=*)

    cpdef bint recovering(self) except -1

    cpdef bint allows(self) except -1

    cpdef bint holds(self) except -1

    cpdef spend(self, double size)

    @cython.locals(wait=cython.double)
    cpdef long long candidate(self, long long acked, double heard_at, double timeout, bint backoff=*) except? -2

    cpdef full_acked(self)

    cpdef sent_full(self, long long tick, double now, list parts)

    @cython.locals(j=cython.Py_ssize_t)
    cpdef carried(self, long long first, list parts)

    @cython.locals(newest=cython.longlong, have=list, carriers=list, carried=list, lost=list, j=cython.Py_ssize_t,
                   k=cython.Py_ssize_t, n=cython.longlong, got=cython.int)
    cpdef list lost_parts(self, Connection conn)

    cpdef list unheld_parts(self)


cpdef bint lagging(double ack_age, double min_rtt) noexcept
