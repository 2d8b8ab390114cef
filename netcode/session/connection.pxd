cimport cython
from netcode.session.wire cimport pack_session_header, parse_session_header

# C types for connection.py when Cython compiles it (an "augmenting" .pxd): the source
# stays plain Python and runs as such where there is no compiler. Other compiled modules
# may cimport these classes and call their cpdef methods as C functions.

cdef Py_ssize_t _RING, _DEPART_SCAN, _ACK_REACH, _EXTEND, MAX_REPLAY_WINDOW
cdef double _REORDER_WINDOW
cdef long long _ACKED, _LOST
cdef unsigned long long _ACK_MASK, _U64, _U32
cdef double _ACK_DELAY_UNIT
cdef Py_ssize_t _MAX_PACKET


cdef class Counters:
    cdef public long long sent, received, bytes_sent, bytes_received, acked, lost
    cdef public object dropped

    cpdef drop(self, str reason)


cdef class RttEstimator:
    cdef public double _srtt, rttvar, min_rtt, last
    cdef public long long samples

    @cython.locals(srtt=cython.double)
    cpdef sample(self, double rtt)


cdef class Connection:
    cdef public long long id
    cdef public object addr
    cdef public unsigned long long session_id
    cdef public long long slot
    cdef public str user
    cdef public long long role
    cdef public unsigned long long nonce
    cdef public object config
    cdef public double created, last_recv, last_send
    cdef public bint closed
    cdef public Counters counters
    cdef public RttEstimator rtt
    cdef readonly Py_ssize_t _window
    cdef readonly long long sends
    cdef public long long first_queued
    cdef double[::1] _sent_time
    cdef long long[::1] _sent_no
    cdef readonly long long _recv_latest
    cdef long long[::1] _recv_seen
    cdef readonly unsigned long long _recv_acks
    cdef readonly double _recv_latest_at
    cdef readonly long long _peer_ack
    cdef readonly unsigned long long _peer_win
    cdef readonly long long _loss_from
    cdef readonly double _reordered, _reordered_before, _reordered_since
    cdef readonly object _tx, _rx

    @cython.locals(n=cython.longlong, latest=cython.longlong, wait=cython.double, delay=cython.int, acks=cython.ulonglong,
                   size=cython.Py_ssize_t, ring=cython.Py_ssize_t, c=Counters, packet=bytes, head=bytes)
    cpdef bytes wrap(self, int ptype, payload, double now, bytes lead=*)

    @cython.locals(n=cython.longlong, ring=cython.Py_ssize_t)
    cpdef departed(self, long long first, double now)

    @cython.locals(newest=cython.longlong)
    cpdef long long newest_acked(self)

    @cython.locals(newest=cython.longlong, named=cython.longlong, win=cython.ulonglong, bits=cython.ulonglong, have=cython.longlong, lacking=cython.longlong, t=cython.double, d=cython.longlong)
    cpdef long long missing(self, double window=*)

    @cython.locals(age=cython.double)
    cpdef double reordering(self, double now)

    @cython.locals(newest=cython.longlong, d=cython.longlong, slot=cython.longlong)
    cpdef int delivered(self, long long n) except? -2

    @cython.locals(d=cython.longlong)
    cpdef bint is_newer(self, long long seq)

    cpdef unwrap(self, data, double now)

    @cython.locals(size=cython.Py_ssize_t, c=Counters, head=bytes, packet=bytes, session_id=cython.ulonglong, seq=cython.longlong,
                   ack=cython.longlong, ack_bits=cython.ulonglong, ack_delay=cython.int)
    cpdef accept(self, data, double now)

    @cython.locals(latest=cython.longlong, d=cython.longlong, counter=cython.longlong)
    cpdef long long _counter_of(self, long long seq)

    @cython.locals(latest=cython.longlong, window=cython.Py_ssize_t, ext=cython.longlong, d=cython.longlong, bit=cython.ulonglong)
    cdef _accept_seq(self, long long seq, double now)

    @cython.locals(win=cython.ulonglong, fresh=cython.ulonglong, newest_sent=cython.longlong, back=cython.longlong,
                   prev=cython.longlong, d=cython.longlong, base=cython.longlong, acked=cython.longlong, i=cython.longlong, n=cython.longlong,
                   end=cython.longlong, lost=cython.longlong, late=cython.ulonglong, span=cython.double)
    cdef _process_acks(self, long long ack, unsigned long long ack_bits, double now)


@cython.locals(out=list, conn=Connection)
cpdef list housekeeping(list conns, double now, double timeout, double keepalive)
