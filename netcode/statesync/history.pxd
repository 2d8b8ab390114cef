# C types for history.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. The input gate and the snapshot
# sender cimport SnapshotHistory and call has() as a C function.
cimport cython


cdef class SnapshotHistory:
    cdef public Py_ssize_t depth
    cdef public long long every
    cdef public object codes, alive, ticks
    cdef public list extras
    cdef long long[::1] _ticks

    cpdef bint has(self, long long tick) except -1
