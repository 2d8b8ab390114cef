# C types for peer.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.mode.dispatch cimport HotPacket
from netcode.mode.inputs cimport InputBuffer, scan_run
from netcode.session.connection cimport Connection

cdef Py_ssize_t _HEAD
cdef int _FLAGS, _INPUTS, _HASH, _KEYFRAME
cdef long long _TOO_FAR


cdef class LockstepPeer:
    cdef public long long conn_id, slot, origin, input_ack, keyframe_cursor
    cdef public object next_needed, keyframe, keyframe_have
    cdef public bint resyncing
    cdef public dict counters


@cython.locals(top=cython.ulonglong)
cdef unsigned long long _u32(bytes d, Py_ssize_t i)


cdef class InputGate(HotPacket):
    cdef public object server
    cdef public InputBuffer inputs
    cdef public Py_ssize_t itemsize
    cdef public dict hashes

    @cython.locals(p=LockstepPeer, d=bytes, at=cython.Py_ssize_t, n=cython.Py_ssize_t, slot=cython.longlong,
                   flags=cython.int, needed=cython.longlong, origin=cython.longlong, pos=cython.Py_ssize_t,
                   run=cython.Py_ssize_t, first=cython.longlong, count=cython.longlong, hash_at=cython.Py_ssize_t,
                   keyframe_at=cython.Py_ssize_t, parts=cython.Py_ssize_t, tick=cython.longlong, late=cython.longlong,
                   at_tick=cython.ulonglong, value=cython.ulonglong)
    cpdef take(self, peer, Connection conn, data, double now)
