# C types for demux.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython
from netcode.session.connection cimport Connection, Counters
from netcode.session.wire cimport prefix_codes


cdef class Demux:
    cdef public dict by_addr
    cdef public Counters counters
    cdef public Connection conn
    cdef public object data

    @cython.locals(counters=Counters, conn=Connection, version=cython.int, ptype=cython.int)
    cpdef int packet(self, data, addr, double now) except? -3
