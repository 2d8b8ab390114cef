# C types for priority.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython


cdef class PriorityAccumulator:
    cdef readonly object acc
    cdef double[::1] _acc
    cdef Py_ssize_t[::1] _heap

    cdef inline bint _ahead(self, Py_ssize_t i, Py_ssize_t j) noexcept

    cdef void _sift(self, Py_ssize_t at, Py_ssize_t size) noexcept
