# C types for wire.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. The connection and the demux
# cimport the header functions and call them as C functions, once or twice a packet.
cimport cython

cdef bytes _KNOWN
cdef object _PACK_HEADER, _PROTOCOL_ID, _PROTOCOL_VERSION
cdef int _ACK_VALID
cdef long long _MAX_U32


cpdef tuple parse_prefix(data)

@cython.locals(d=bytes, n=cython.Py_ssize_t, pid=cython.int, ptype=cython.int, code=cython.int)
cpdef (int, int) prefix_codes(data) except *

@cython.locals(a=cython.longlong, bits=cython.longlong, delay=cython.longlong)
cpdef bytes pack_session_header(int ptype, long long session_id, long long seq, ack, long long ack_bits,
                                long long ack_delay=*)

@cython.locals(d=bytes, session_id=cython.ulonglong, bits=cython.ulonglong, top=cython.ulonglong)
cpdef (unsigned long long, int, int, unsigned long long, int) parse_session_header(data) except *
