# C types for dispatch.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. Modes' compiled handlers
# subclass HotPacket (cimport it) and override take.
cimport cython
from netcode.session.connection cimport Connection
from netcode.session.demux cimport Demux


cdef class HotPacket:
    cdef public int ptype

    cpdef take(self, peer, Connection conn, data, double now)


cdef class Receiver:
    cdef public object server, session
    cdef public Demux demux
    cdef public dict peers
    cdef public HotPacket hot
    cdef public int hot_type

    cpdef use(self, hot)

    cpdef datagram(self, data, addr, double now)

    @cython.locals(demux=Demux, hot=HotPacket, hot_type=cython.int, peers=dict, now=cython.double)
    cpdef many(self, list batch, on_error)


@cython.locals(kind=cython.int, conn=Connection)
cdef _receive(server, session, Demux demux, HotPacket hot, int hot_type, dict peers, data, addr, double now)
