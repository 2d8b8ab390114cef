# C types for peer.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.mode.dispatch cimport HotPacket
from netcode.mode.inputs cimport InputBuffer, scan_run
from netcode.session.connection cimport Connection
from netcode.statesync.history cimport SnapshotHistory

cdef Py_ssize_t _HEAD
cdef long long _TOO_FAR
cdef unsigned long long _MASK64


cdef class StateSyncPeer:
    cdef public long long conn_id, slot, acked, acked_before, view_limit, inputs_since_limit, deferred
    cdef public unsigned long long acked_mask
    cdef public dict sent, cells, counters, models
    cdef public object cell, priority, pacer
    cdef public double tokens, last_input_at


cdef class InputGate(HotPacket):
    cdef public object server
    cdef public SnapshotHistory history
    cdef public InputBuffer inputs
    cdef long long[::1] view_delays
    cdef public double rate, max_view_delay, tick_rate
    cdef public bint per_client
    cdef public Py_ssize_t itemsize
    cdef public long long every

    @cython.locals(p=StateSyncPeer, d=bytes, tokens=cython.double, rate=cython.double, at=cython.Py_ssize_t, n=cython.Py_ssize_t,
                   slot=cython.longlong, flags=cython.int, top=cython.ulonglong, ack=cython.ulonglong, view=cython.longlong,
                   run=cython.Py_ssize_t, end=cython.Py_ssize_t, tick=cython.longlong, late=cython.longlong)
    cpdef take(self, peer, Connection conn, data, double now)

    @cython.locals(p=StateSyncPeer, tick=cython.longlong, bit=cython.ulonglong, back=cython.longlong, shift=cython.longlong)
    cpdef take_ack(self, peer, long long ack)
