# cython: language_level=3
"""Many datagrams per system call (Linux ``recvmmsg`` / ``sendmmsg``), for PolledUdpTransport.

Python's socket module moves one datagram per call; a polled server reading a tick's
worth (100+ datagrams) and sending a snapshot to every client pays a system call and a
Python call for each. :func:`recv_batch` reads up to 64 per ``recvmmsg`` with their kernel
arrival times (``SO_TIMESTAMPNS``), straight into Python objects; :func:`send_batch` sends
up to 64 per ``sendmmsg``. Built by ``setup.py`` on Linux when Cython and a compiler are
there; the transport uses ``socket.recvmsg`` / ``sendto`` otherwise, with the same results.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint16_t
from libc.string cimport memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        unsigned short sa_family
    struct sockaddr_storage:
        unsigned short ss_family
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    int recvmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags, void *timeout)
    int sendmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags)
    cmsghdr *CMSG_FIRSTHDR(msghdr *msg)
    cmsghdr *CMSG_NXTHDR(msghdr *msg, cmsghdr *cmsg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    int MSG_DONTWAIT
    int SOL_SOCKET
    int AF_INET
    int AF_INET6

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        unsigned short sin_family
        in_addr sin_addr
        uint16_t sin_port
    struct sockaddr_in6:
        unsigned short sin6_family
        in6_addr sin6_addr
        uint16_t sin6_port
    uint16_t ntohs(uint16_t)

cdef extern from "<arpa/inet.h>" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    int inet_pton(int af, const char *src, void *dst)
    uint16_t htons(uint16_t)

cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK

cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec

cdef enum:
    CHUNK = 64  # datagrams per system call
    MAX_BUF = 65536
    CONTROL_WORDS = 8  # 64 bytes, word-aligned: room for one SCM_TIMESTAMPNS message
    SCM_TIMESTAMPNS = 35  # == SO_TIMESTAMPNS on the architectures the transport stamps on


cdef object _address(sockaddr_storage *ss):
    cdef char host[64]
    cdef sockaddr_in *v4
    cdef sockaddr_in6 *v6
    if ss.ss_family == AF_INET:
        v4 = <sockaddr_in *>ss
        if inet_ntop(AF_INET, &v4.sin_addr, host, sizeof(host)) == NULL:
            return None
        return (host.decode("ascii"), ntohs(v4.sin_port))
    if ss.ss_family == AF_INET6:
        v6 = <sockaddr_in6 *>ss
        if inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof(host)) == NULL:
            return None
        return (host.decode("ascii"), ntohs(v6.sin6_port))
    return None


def recv_batch(int fd, int max_datagrams, int bufsize):
    """Up to ``max_datagrams`` waiting datagrams as ``(data, (host, port), wall time or
    0.0)``, without blocking. ``bufsize`` bytes are read of each (longer ones are cut, so a
    caller reading one more byte than it accepts sees them as too long). Raises OSError
    only when the first read fails with something other than "nothing waiting"."""
    if bufsize < 1 or bufsize > MAX_BUF:
        raise ValueError("bufsize out of range")
    cdef mmsghdr msgs[CHUNK]
    cdef iovec iovs[CHUNK]
    cdef sockaddr_storage names[CHUNK]
    cdef size_t control[CHUNK][CONTROL_WORDS]
    cdef bytearray storage = bytearray(CHUNK * bufsize)
    cdef char *buf = storage
    cdef list out = []
    cdef int i, n, want
    cdef cmsghdr *c
    cdef timespec *ts
    cdef double stamp
    while len(out) < max_datagrams:
        want = min(CHUNK, max_datagrams - len(out))
        memset(msgs, 0, sizeof(mmsghdr) * want)
        for i in range(want):
            iovs[i].iov_base = buf + i * bufsize
            iovs[i].iov_len = bufsize
            msgs[i].msg_hdr.msg_name = &names[i]
            msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            msgs[i].msg_hdr.msg_iov = &iovs[i]
            msgs[i].msg_hdr.msg_iovlen = 1
            msgs[i].msg_hdr.msg_control = control[i]
            msgs[i].msg_hdr.msg_controllen = sizeof(size_t) * CONTROL_WORDS
        with nogil:
            n = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL)
        if n < 0:
            if errno == EINTR:
                continue
            if errno == EAGAIN or errno == EWOULDBLOCK or out:
                break
            raise OSError(errno, "recvmmsg failed")
        for i in range(n):
            stamp = 0.0
            c = CMSG_FIRSTHDR(&msgs[i].msg_hdr)
            while c != NULL:
                if c.cmsg_level == SOL_SOCKET and c.cmsg_type == SCM_TIMESTAMPNS:
                    ts = <timespec *>CMSG_DATA(c)
                    stamp = ts.tv_sec + ts.tv_nsec * 1e-9
                c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)
            addr = _address(&names[i])
            if addr is None:
                continue  # not IPv4/IPv6: nothing we could answer
            out.append((PyBytes_FromStringAndSize(buf + i * bufsize, msgs[i].msg_len), addr, stamp))
        if n < want:
            break
    return out


cdef socklen_t _sockaddr(object addr, sockaddr_storage *ss):
    """Fill ``ss`` from a ``(numeric host, port)`` tuple; its length, or 0 if it is not one."""
    cdef sockaddr_in *v4 = <sockaddr_in *>ss
    cdef sockaddr_in6 *v6 = <sockaddr_in6 *>ss
    if type(addr) is not tuple or len(addr) < 2 or type(addr[0]) is not str or type(addr[1]) is not int:
        return 0
    port = addr[1]
    if not 0 <= port <= 65535:
        return 0
    host = (<str>addr[0]).encode("ascii", "replace")
    memset(ss, 0, sizeof(sockaddr_storage))
    if inet_pton(AF_INET, host, &v4.sin_addr) == 1:
        v4.sin_family = AF_INET
        v4.sin_port = htons(port)
        return sizeof(sockaddr_in)
    if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1:
        v6.sin6_family = AF_INET6
        v6.sin6_port = htons(port)
        return sizeof(sockaddr_in6)
    return 0


def send_batch(int fd, list batch):
    """Send ``batch`` (``(data: bytes, (host, port))`` items) without blocking.
    Returns ``(sent, bytes sent, failed)``: ``failed`` lists ``(index, errno)`` for the
    datagrams not sent (errno 0: not a bytes payload and a numeric address)."""
    cdef mmsghdr msgs[CHUNK]
    cdef iovec iovs[CHUNK]
    cdef sockaddr_storage names[CHUNK]
    cdef int idx[CHUNK]
    cdef Py_ssize_t total = len(batch), pos = 0, nbytes = 0
    cdef int i, j, k, n, sent = 0
    cdef socklen_t namelen
    cdef list failed = []
    while pos < total:
        k = 0
        while k < CHUNK and pos < total:  # fill a chunk, skipping what cannot be sent
            data, addr = batch[pos]
            if type(data) is bytes:
                namelen = _sockaddr(addr, &names[k])
            else:
                namelen = 0
            if namelen == 0:
                failed.append((pos, 0))
                pos += 1
                continue
            memset(&msgs[k], 0, sizeof(mmsghdr))
            iovs[k].iov_base = PyBytes_AS_STRING(data)
            iovs[k].iov_len = PyBytes_GET_SIZE(data)
            msgs[k].msg_hdr.msg_name = &names[k]
            msgs[k].msg_hdr.msg_namelen = namelen
            msgs[k].msg_hdr.msg_iov = &iovs[k]
            msgs[k].msg_hdr.msg_iovlen = 1
            idx[k] = pos
            k += 1
            pos += 1
        i = 0
        while i < k:  # the batch list holds the payloads alive meanwhile
            with nogil:
                n = sendmmsg(fd, &msgs[i], k - i, MSG_DONTWAIT)
            if n < 0:
                if errno == EINTR:
                    continue
                failed.append((idx[i], errno))  # this one failed: skip it, send on
                i += 1
                continue
            for j in range(i, i + n):
                nbytes += iovs[j].iov_len
            sent += n
            i += n
    return sent, nbytes, failed
