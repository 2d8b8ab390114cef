# C types for ratelimit.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. _mmsg.pyx cimports it.
cimport cython


cdef class Bucket:
    cdef public double tokens, last


cdef class RateLimiter:
    cdef public double rate, burst
    cdef public Py_ssize_t max_tracked
    cdef public dict _buckets
    cdef public long long evicted

    @cython.locals(b=Bucket, tokens=cython.double)
    cpdef bint allow(self, key, double now) except -1
