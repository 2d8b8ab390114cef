# C types for dispatch.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. Modes' compiled handlers
# subclass HotPacket (cimport it) and override take.
cimport cython
from netcode.session.connection cimport Connection
from netcode.session.demux cimport Demux


cdef class HotPacket:
    cdef public int ptype

    cpdef take(self, peer, Connection conn, data, double now)


@cython.locals(demux=Demux, hot=HotPacket, hot_type=cython.int, kind=cython.int, conn=Connection, peers=dict)
cpdef receive_many(server, list batch, on_error)
