# C types for outbox.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. Compiled send loops cimport
# Outbox and call send as a C function.
cimport cython
from netcode.session.connection cimport Connection, Counters


cdef class Outbox:
    cdef public list datagrams
    cdef public Counters counters
    cdef public list timed

    @cython.locals(c=Counters)
    cpdef raw(self, packet, addr)

    cpdef send(self, Connection conn, int ptype, payload, double now, bytes lead=*)

    cpdef control(self, Connection conn, int ptype, payload, double now)

    cpdef list drain(self)

    @cython.locals(conn=Connection)
    cpdef departing(self, double now)

    @cython.locals(conn=Connection)
    cdef _untime(self)
