"""A UDP server socket read once per tick instead of once per datagram.

A tick-based server only consumes inputs when a tick closes, so reading each datagram the
moment it arrives buys nothing but wake-ups: at 100 clients sending 60 inputs a second
that is 6000 event-loop iterations a second, each paying for a poll, a callback and a
cold cache. :class:`PolledUdpTransport` leaves datagrams in the kernel's socket buffer
until its owner calls :meth:`~PolledUdpTransport.poll` (the room's tick does, just before
``on_tick``), then drains them in one loop: the server wakes up once per tick.

Time stays exact: on Linux the kernel stamps each datagram on arrival (``SO_TIMESTAMPNS``)
and the endpoint gets that time, so RTT and ack delays do not grow by the time a datagram
waited for the tick (for a moment after the first socket asks, Linux stamps datagrams
when they are read instead: no worse than the poll's time). Elsewhere the endpoint gets
the poll's time. On Linux the datagrams
are read 64 per system call (``recvmmsg``, :mod:`._mmsg`, compiled at install) when
the install has it, one ``recvmsg`` each otherwise.

Nothing waits forever: a poll reads at most ``max_per_poll`` datagrams (a flood cannot
stall a tick; the rest wait for the next poll or overflow the socket buffer, which the
kernel counts), and an idle-poll timer reads the socket when no tick has for
``idle_poll`` seconds (a server with no room running still answers handshakes).
Sending is non-blocking (``sendmmsg``, 64 per call, where compiled; ``sendto`` otherwise);
a full socket buffer drops the datagram and counts it as ``backpressure``, as
:class:`~.udp.UdpTransport` does.
"""

from __future__ import annotations

import asyncio
import errno
import platform
import socket
import struct
import sys
import time

from netcode.transport.hub import Address, Limits, TransportHub
from netcode.transport.udp import UdpLink

try:  # many datagrams per system call (Linux, when setup.py could compile it)
    from netcode.transport._mmsg import BatchReader, send_batch
except ImportError:
    BatchReader = send_batch = None

__all__ = ["PolledUdpTransport"]

# SO_TIMESTAMPNS is not in Python's socket module; 35 is its value on Linux for these
# architectures (alpha, mips, parisc and sparc differ, and get the poll's time instead).
_SO_TIMESTAMPNS = 35
_STAMPING_MACHINES = {"x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l", "armv8l", "riscv64", "ppc64le", "s390x"}
_TIMESTAMP = struct.Struct("@qq")
_ANC_SPACE = socket.CMSG_SPACE(_TIMESTAMP.size) if hasattr(socket, "CMSG_SPACE") else 0


def _enable_timestamps(sock: socket.socket) -> bool:
    if sys.platform != "linux" or platform.machine().lower() not in _STAMPING_MACHINES or not _ANC_SPACE:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class PolledUdpTransport(UdpLink):
    """A bound UDP socket whose datagrams the owner collects with :meth:`poll`.

    Built by ``open_udp_server(..., polled=True)``, not directly.
    """

    def __init__(self, hub: TransportHub, limits: Limits, sock: socket.socket, *, max_per_poll: int = 4096, idle_poll: float = 0.05):
        super().__init__(hub, limits)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self.max_per_poll = max_per_poll
        self.idle_poll = idle_poll
        self._stamped = _enable_timestamps(sock)
        # recvmmsg reads SO_TIMESTAMPNS's messages, so it is only used where those are on.
        self._reader = BatchReader(sock.fileno(), self._max, self._limiter, self.dropped) if BatchReader and self._stamped else None
        self.batched = self._reader is not None  # and sendmmsg to send
        self._last_poll = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = self._loop.call_later(idle_poll, self._idle)
        self._closed = self._loop.create_future()
        self.polls = 0

    # -- receiving --------------------------------------------------------------------------
    def poll(self) -> int:
        """Deliver every datagram waiting in the socket (up to ``max_per_poll``) to the
        endpoint, each with its arrival time. Returns how many were delivered."""
        if self.closed:
            return 0
        loop_now = self._loop.time()
        # Arrival times are wall clock; the endpoint runs on the loop clock. Never hand out
        # a time before the previous poll: endpoints expect time not to run backwards.
        offset = loop_now - time.time()
        floor = self._last_poll
        self._last_poll = loop_now
        self.polls += 1
        if self.batched:
            try:
                batch, read, nbytes = self._reader.read(self.max_per_poll, loop_now, offset, floor)
            except OSError as exc:  # an error queued on the socket (ICMP): count, next poll reads on
                self.errors[type(exc).__name__] += 1
                batch, read, nbytes = [], 0, 0
            self.received += read
            self.bytes_received += nbytes
        else:
            batch = self._read_each(loop_now, offset, floor)
        if batch:
            self.hub.receive_many(batch, self)
        return len(batch)

    def _read_each(self, loop_now: float, offset: float, floor: float) -> list:
        """What ``BatchReader.read`` does, with one ``recvmsg`` per datagram and the link's
        own guard: the ``(data, addr, now)`` items that passed it."""
        recvmsg = self._sock.recvmsg
        bufsize = self._max + 1  # one byte more than allowed, so oversized datagrams show
        anc = _ANC_SPACE if self._stamped else 0
        unpack = _TIMESTAMP.unpack
        batch = []
        for _ in range(self.max_per_poll):
            try:
                data, ancdata, _flags, addr = recvmsg(bufsize, anc)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ICMP errors queued on the socket: count, read on
                self.errors[type(exc).__name__] += 1
                continue
            now = loop_now
            if ancdata:
                sec, nsec = unpack(ancdata[0][2])
                now = min(loop_now, max(floor, sec + nsec * 1e-9 + offset))
            addr = self._guard(data, addr, now)
            if addr is not None:
                batch.append((data, addr, now))
        return batch

    def _idle(self) -> None:
        self._idle_timer = None
        if self.closed:
            return
        if self._loop.time() - self._last_poll >= self.idle_poll * 0.9:
            self.poll()
        wait = max(0.001, self._last_poll + self.idle_poll - self._loop.time())
        self._idle_timer = self._loop.call_later(wait, self._idle)

    # -- what the hub calls -----------------------------------------------------------------
    def send_batch(self, batch: list[tuple[bytes, Address]]) -> None:
        if self.closed:
            self.dropped["closed"] += len(batch)
            return
        if self.batched:
            sent, nbytes, failed = send_batch(self._sock.fileno(), batch)
            for _index, err in failed:
                # EAGAIN: the kernel buffer is full; a late game packet is worth nothing,
                # so drop it (the protocol repeats what matters). Anything else: an error.
                self.dropped["backpressure" if err in (errno.EAGAIN, errno.EWOULDBLOCK) else "send_error"] += 1
            self.sent += sent
            self.bytes_sent += nbytes
            return
        self._send_each(batch, self._sock.sendto)

    # -- public -----------------------------------------------------------------------------
    @property
    def local_address(self) -> tuple[str, int]:
        name = self._sock.getsockname()
        return (name[0], name[1])

    def close(self) -> None:
        """Close the socket. Send goodbyes first (``server.close_all(now)``; ``flush()``)."""
        if self.closed:
            return
        self.closed = True
        self.hub.detach(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._sock.close()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await self._closed

    def stats(self) -> dict:
        out = super().stats()
        out.update(read="per tick", polls=self.polls, kernel_timestamps=self._stamped, mmsg=self.batched)
        return out
