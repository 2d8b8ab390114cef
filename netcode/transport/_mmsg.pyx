# cython: language_level=3
"""Many datagrams per system call (Linux ``recvmmsg`` / ``sendmmsg``), for PolledUdpTransport.

Python's socket module moves one datagram per call; a polled server reading a tick's
worth (100+ datagrams) and sending a snapshot to every client pays a system call and a
Python call for each. :class:`BatchReader` reads up to 64 per ``recvmmsg`` with their
kernel arrival times (``SO_TIMESTAMPNS``) and puts them through the transport's guard on
the way into Python objects; :func:`send_batch` sends up to 64 per ``sendmmsg``. Built by
``setup.py`` on Linux when Cython and a compiler are there; the transport uses
``socket.recvmsg`` / ``sendto`` otherwise, with the same results.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint16_t
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from netcode.transport.ratelimit cimport RateLimiter


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
    ADDRESS_CACHE = 4096  # source addresses BatchReader keeps as ready tuples


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


cdef object _address_key(sockaddr_storage *ss):
    """The raw port and address as bytes, a key for the address cache (None: neither IPv4
    nor IPv6)."""
    cdef sockaddr_in *v4
    cdef sockaddr_in6 *v6
    cdef char key[18]
    if ss.ss_family == AF_INET:
        v4 = <sockaddr_in *>ss
        memcpy(key, &v4.sin_port, 2)
        memcpy(key + 2, &v4.sin_addr, 4)
        return PyBytes_FromStringAndSize(key, 6)
    if ss.ss_family == AF_INET6:
        v6 = <sockaddr_in6 *>ss
        memcpy(key, &v6.sin6_port, 2)
        memcpy(key + 2, &v6.sin6_addr, 16)
        return PyBytes_FromStringAndSize(key, 18)
    return None


cdef class BatchReader:
    """Reads a socket's waiting datagrams with ``recvmmsg``, 64 per system call, and puts
    each through the link's guard in the same pass (``UdpLink._guard`` and
    ``PolledUdpTransport._read_each`` are the reference): its arrival time on the loop
    clock, oversized and rate-limited datagrams counted and dropped. A datagram whose
    source is not an IPv4/IPv6 address (another address family, or none) cannot be
    answered: it is dropped and counted as ``non_ip_source``.

    Buffers are allocated once. A source address comes out as the same ``(host, port)``
    tuple object for as long as it stays cached (up to ``ADDRESS_CACHE`` addresses): no
    string conversion per datagram, and dict lookups on it reuse its string's hash.
    """

    cdef int fd
    cdef int bufsize
    cdef Py_ssize_t max_size
    cdef bytearray storage
    cdef RateLimiter limiter
    cdef object dropped
    cdef dict addresses
    cdef mmsghdr msgs[CHUNK]
    cdef iovec iovs[CHUNK]
    cdef sockaddr_storage names[CHUNK]
    cdef size_t control[CHUNK][CONTROL_WORDS]

    def __init__(self, int fd, Py_ssize_t max_size, limiter, dropped):
        """``max_size``: the largest datagram passed on; ``limiter``: the transport's
        ``RateLimiter`` or None; ``dropped``: its drop counter (a ``Counter``)."""
        if max_size < 1 or max_size >= MAX_BUF:
            raise ValueError("max_size out of range")
        self.fd = fd
        self.max_size = max_size
        self.bufsize = max_size + 1  # one byte more than allowed, so oversized datagrams show
        self.storage = bytearray(CHUNK * self.bufsize)
        self.limiter = limiter
        self.dropped = dropped
        self.addresses = {}

    def read(self, int max_datagrams, double loop_now, double offset, double floor):
        """Up to ``max_datagrams`` waiting datagrams, without blocking, as ``(batch, read,
        bytes read)``; ``batch`` holds ``(data, (host, port), now)`` for the ones that
        passed the guard. ``now`` is the kernel's arrival time moved to the loop clock
        (``wall + offset``) and kept within ``[floor, loop_now]``; ``loop_now`` when the
        kernel gave none. Raises OSError only when the first read fails with something
        other than "nothing waiting"."""
        cdef char *buf = self.storage
        cdef list batch = []
        cdef int i, n, want, got = 0
        cdef Py_ssize_t nbytes = 0, size
        cdef cmsghdr *c
        cdef timespec *ts
        cdef double wall, now
        cdef dict addresses = self.addresses
        while got < max_datagrams:
            want = min(CHUNK, max_datagrams - got)
            memset(self.msgs, 0, sizeof(mmsghdr) * want)
            for i in range(want):
                self.iovs[i].iov_base = buf + i * self.bufsize
                self.iovs[i].iov_len = self.bufsize
                self.names[i].ss_family = 0  # AF_UNSPEC unless the kernel names a source
                self.msgs[i].msg_hdr.msg_name = &self.names[i]
                self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
                self.msgs[i].msg_hdr.msg_iov = &self.iovs[i]
                self.msgs[i].msg_hdr.msg_iovlen = 1
                self.msgs[i].msg_hdr.msg_control = self.control[i]
                self.msgs[i].msg_hdr.msg_controllen = sizeof(size_t) * CONTROL_WORDS
            with nogil:
                n = recvmmsg(self.fd, self.msgs, want, MSG_DONTWAIT, NULL)
            if n < 0:
                if errno == EINTR:
                    continue
                if errno == EAGAIN or errno == EWOULDBLOCK or got:
                    break
                raise OSError(errno, "recvmmsg failed")
            got += n
            for i in range(n):
                size = self.msgs[i].msg_len
                nbytes += size
                key = _address_key(&self.names[i])
                if key is None:  # not IPv4/IPv6 (or no source at all): nothing we could answer
                    self.dropped["non_ip_source"] += 1
                    continue
                addr = addresses.get(key)
                if addr is None:
                    addr = _address(&self.names[i])
                    if addr is None:  # inet_ntop refused it
                        self.dropped["non_ip_source"] += 1
                        continue
                    if len(addresses) >= ADDRESS_CACHE:
                        addresses.clear()  # many sources (a spoofed flood): start over
                    addresses[key] = addr
                wall = 0.0
                c = CMSG_FIRSTHDR(&self.msgs[i].msg_hdr)
                while c != NULL:
                    if c.cmsg_level == SOL_SOCKET and c.cmsg_type == SCM_TIMESTAMPNS:
                        ts = <timespec *>CMSG_DATA(c)
                        wall = ts.tv_sec + ts.tv_nsec * 1e-9
                    c = CMSG_NXTHDR(&self.msgs[i].msg_hdr, c)
                if wall != 0.0:  # as _read_each: min(loop_now, max(floor, wall + offset))
                    now = wall + offset
                    if not now >= floor:
                        now = floor
                    if not now <= loop_now:
                        now = loop_now
                else:
                    now = loop_now
                if size > self.max_size:
                    self.dropped["oversized"] += 1
                elif self.limiter is not None and not self.limiter.allow(addr, now):
                    self.dropped["rate_limited"] += 1
                else:
                    batch.append((PyBytes_FromStringAndSize(buf + i * self.bufsize, size), addr, now))
            if n < want:
                break
        return batch, got, nbytes


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
