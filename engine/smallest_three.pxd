# C types for smallest_three.py when Cython compiles it (an "augmenting" .pxd): the
# source stays plain Python and runs as such where there is no compiler.
cdef double _SQRT_HALF, _SPAN
