# C types for rangecoder.py when Cython compiles it (an "augmenting" .pxd): the source
# stays plain Python and runs as such where there is no compiler.
cimport cython

cdef class Encoder:
    cdef object seen
    cdef unsigned char[:] n
    cdef unsigned long long low
    cdef unsigned int range, cache
    cdef Py_ssize_t pending
    cdef bint first
    cdef bytearray out
    cdef object probs
    cdef unsigned int[:] p

    cdef void _shift(self)
    cpdef void bit(self, Py_ssize_t ctx, int b)
    cpdef void even(self, int b)


cdef class Decoder:
    cdef object seen
    cdef unsigned char[:] n
    cdef const unsigned char[:] data
    cdef Py_ssize_t size, pos
    cdef unsigned int range, code
    cdef object probs
    cdef unsigned int[:] p

    cdef unsigned int _byte(self)
    cpdef int bit(self, Py_ssize_t ctx)
    cpdef int even(self)

cdef unsigned int _BITS, _ONE, _HALF, _LIMIT, _TOP
cdef Py_ssize_t _SLACK, _CLASSES, _MOTIONS, _SPEEDS, _BEFORE, _FLAG_CTX, _CLASS_CTX, _VALUE_CTX
