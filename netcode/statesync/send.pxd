# C types for send.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.session.connection cimport Connection
from netcode.session.outbox cimport Outbox
from netcode.statesync.peer cimport StateSyncPeer

cdef long long _TALLY_EVERY
cdef int _SNAPSHOT


cdef class SnapshotSender:
    cdef public object server
    cdef public Outbox outbox
    cdef long long[::1] applied
    cdef public long long snapshot_every
    cdef public dict stats

    @cython.locals(slot=cython.longlong, applied=cython.longlong, prefix=bytes, payloads=list, size=cython.Py_ssize_t,
                   payload=bytes, outbox=Outbox, counters=dict)
    cpdef Py_ssize_t send(self, StateSyncPeer peer, Connection conn, long long tick, list parts, double now, dict cache) except -1
