# C types for inputs.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler.
cimport cython

cdef Py_ssize_t _RUN_HEAD, MAX_RUN


@cython.locals(size=Py_ssize_t, first=cython.longlong, high=cython.longlong, count=Py_ssize_t, width=Py_ssize_t, masks_at=Py_ssize_t,
               changed_at=Py_ssize_t, top=cython.int, changed=Py_ssize_t, k=Py_ssize_t, b=Py_ssize_t,
               m=cython.uint, end=Py_ssize_t)
cpdef (long long, Py_ssize_t, Py_ssize_t) scan_run(bytes data, Py_ssize_t pos, Py_ssize_t itemsize) except *

@cython.locals(width=Py_ssize_t, head=Py_ssize_t, i=Py_ssize_t, mask_at=Py_ssize_t, k=Py_ssize_t,
               j=Py_ssize_t, row=Py_ssize_t, b=Py_ssize_t, m=cython.uint)
cpdef decode_run(bytes data, Py_ssize_t pos, Py_ssize_t itemsize, Py_ssize_t count,
                      unsigned char[::1] out)


cdef class InputBuffer:
    cdef readonly Py_ssize_t players, itemsize, max_ahead, _size
    cdef public object _data, _tick, last, newest
    cdef unsigned char[::1] _flat_data
    cdef long long[::1] _flat_tick
    cdef long long[::1] _newest
    cdef unsigned char[::1] _scratch

    @cython.locals(first=cython.longlong, count=Py_ssize_t, end=Py_ssize_t)
    cpdef long long put_run(self, Py_ssize_t slot, bytes data, Py_ssize_t pos, long long current,
                            Py_ssize_t until=*) except -1

    @cython.locals(last=cython.longlong, newest=cython.longlong, itemsize=Py_ssize_t, late=cython.longlong,
                   j=Py_ssize_t, t=cython.longlong, row=Py_ssize_t, i=Py_ssize_t)
    cdef long long _store(self, Py_ssize_t slot, long long first, Py_ssize_t count, const unsigned char[::1] records,
                          long long current) except -1

    @cython.locals(stamp=bint, missing=Py_ssize_t)
    cpdef tuple close(self, long long tick, present, used, missed, applied=*)

    @cython.locals(players=Py_ssize_t, itemsize=Py_ssize_t, first=Py_ssize_t, missing=Py_ssize_t, slot=Py_ssize_t,
                   at=Py_ssize_t, src=Py_ssize_t, i=Py_ssize_t, got=bint)
    cdef Py_ssize_t _close_into(self, long long tick, const unsigned char[::1] here, unsigned char[::1] out,
                                const unsigned char[::1] last, unsigned char[::1] have, long long[::1] used,
                                long long[::1] missed, long long[::1] applied, bint stamp) except -1
