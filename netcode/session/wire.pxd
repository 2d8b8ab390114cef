# C types for wire.py when Cython compiles it (an "augmenting" .pxd): the source stays
# plain Python and runs as such where there is no compiler. The connection and the demux
# cimport the header functions and call them as C functions, once or twice a packet.
cimport cython


@cython.locals(n=cython.Py_ssize_t, pid=cython.int, version=cython.int, ptype=cython.int)
cpdef tuple parse_prefix(data)

cpdef bytes pack_session_header(int ptype, unsigned long long session_id, long long seq, ack, unsigned long long ack_bits,
                                long long ack_delay=*)

cpdef tuple parse_session_header(data)
