# C types for broadcast.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.lockstep.peer cimport LockstepPeer
from netcode.session.connection cimport Connection
from netcode.session.outbox cimport Outbox

cdef long long TALLY_EVERY
cdef int _FRAMES


cdef class FrameSender:
    cdef public object server
    cdef public dict peers, connections, stats
    cdef public Outbox outbox
    cdef public long long every, redundancy, budget

    @cython.locals(every=cython.longlong, floor=cython.longlong, outbox=Outbox, connections=dict, runs=dict, heads=dict,
                   run_start=cython.longlong, run_origin=cython.longlong, head_ack=cython.longlong, run=bytes, head=bytes,
                   total=cython.longlong, peer=LockstepPeer, conn=Connection, needed=cython.longlong,
                   origin=cython.longlong, start=cython.longlong, t=cython.longlong, ack=cython.longlong, lead=bytes)
    cpdef send(self, long long newest, long long first, long long phase, double now)
