# C types for send.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.session.connection cimport Connection
from netcode.statesync.history cimport SnapshotHistory
from netcode.session.outbox cimport Outbox
from netcode.statesync.pacing cimport SendPacer
from netcode.statesync.peer cimport StateSyncPeer

cdef long long _TALLY_EVERY
cdef int _SNAPSHOT
cdef long long _IN_DEBT


cdef class SnapshotSender:
    cdef public object server
    cdef public SnapshotHistory history
    cdef public Outbox outbox
    cdef long long[::1] applied
    cdef public long long snapshot_every
    cdef public dict stats
    cdef public bint grid
    cdef public double reach
    cdef object _memo_cache, _memo_parts
    cdef long long _memo_applied
    cdef bytes _memo_prefix
    cdef tuple _memo_hit

    @cython.locals(peer=StateSyncPeer, conn=Connection, pacer=SendPacer, connections=dict, cells=dict, out=list,
                   acked=cython.longlong, base=cython.longlong, pred=cython.longlong, lag=bint, paced=bint, grid=bint,
                   last=tuple)
    cpdef list wants(self, double now)

    @cython.locals(pacer=SendPacer, timeout=cython.double, base=cython.longlong, lost=list, parts=list)
    cpdef long long full_candidate(self, StateSyncPeer peer, Connection conn, double now) except? -2

    cdef bint _resendable(self, SendPacer pacer) except -1

    @cython.locals(pacer=SendPacer, size=cython.Py_ssize_t)
    cdef bint _resend_full(self, StateSyncPeer peer, Connection conn, list which, double now, bint timed_out) except -1

    cpdef Py_ssize_t send_full(self, StateSyncPeer peer, Connection conn, long long tick, list parts, double now, dict cache) except -1

    @cython.locals(pacer=SendPacer, chosen=list, size=cython.Py_ssize_t, copy=cython.Py_ssize_t, first=cython.longlong)
    cdef Py_ssize_t _queue_full(self, StateSyncPeer peer, Connection conn, long long tick, list parts, list which, double now,
                                dict cache) except -1

    @cython.locals(out=list, stats=dict, n=cython.Py_ssize_t, i=cython.Py_ssize_t, want=tuple, peer=StateSyncPeer)
    cpdef list jobs(self, list wants, plan)

    @cython.locals(grid=bint, depth=cython.Py_ssize_t, job=tuple, peer=StateSyncPeer, conn=Connection, key=tuple,
                   parts=list, pacer=SendPacer, cells=dict, size=cython.Py_ssize_t, last_key=tuple,
                   total=cython.Py_ssize_t)
    cpdef deliver(self, long long tick, list jobs, encode, dict encoded, dict payloads, double now)

    @cython.locals(size=cython.Py_ssize_t)
    cpdef Py_ssize_t send(self, StateSyncPeer peer, Connection conn, long long tick, list parts, double now, dict cache) except -1

    @cython.locals(slot=cython.longlong, applied=cython.longlong, prefix=bytes, payloads=list, size=cython.Py_ssize_t,
                   payload=bytes, outbox=Outbox, counters=dict, hit=tuple)
    cdef Py_ssize_t _queue(self, StateSyncPeer peer, Connection conn, long long tick, list parts, double now, dict cache) except -1
