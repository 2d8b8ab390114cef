# C types for fastpath.py when Cython compiles it: the classes it calls as C.
from netcode.session.connection cimport Connection
from netcode.mode.inputs cimport InputBuffer, scan_run
