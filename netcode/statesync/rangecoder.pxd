# C types for rangecoder.py when Cython compiles it (an "augmenting" .pxd): the source
# stays plain Python and runs as such where there is no compiler.
cimport cython

@cython.final
cdef class Encoder:
    cdef object seen
    cdef unsigned char[::1] n
    cdef unsigned long long low
    cdef unsigned int range, cache
    cdef Py_ssize_t pending
    cdef bint first
    cdef bytearray out
    cdef unsigned char[::1] o
    cdef Py_ssize_t size
    cdef object probs
    cdef unsigned int[::1] p
    cdef bint counting
    cdef object tally
    cdef long long[::1] t

    cdef int _reserve(self, Py_ssize_t decisions) except -1
    cdef void _shift(self) noexcept
    cdef inline void bit(self, Py_ssize_t ctx, int b) noexcept
    cdef inline void even(self, int b) noexcept


@cython.final
cdef class Decoder:
    cdef object seen
    cdef unsigned char[::1] n
    cdef const unsigned char[::1] data
    cdef Py_ssize_t size, pos
    cdef unsigned int range, code
    cdef object probs
    cdef unsigned int[::1] p

    cdef inline unsigned int _byte(self) noexcept
    cdef inline int bit(self, Py_ssize_t ctx) noexcept
    cdef inline int even(self) noexcept

cdef unsigned int _BITS, _ONE, _HALF, _LIMIT, _TOP, _WORD, _HELD
cdef unsigned long long _CARRY
cdef Py_ssize_t _SLACK, _CLASSES, _ACTIVITY, _MOTIONS, _SPEEDS, _BEFORE, _FLAG_CTX, _CLASS_CTX, _VALUE_CTX, _LEADS, _EXTRA_CTX
