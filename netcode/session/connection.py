# cython: annotation_typing=False
"""One established session's packet bookkeeping: sequence numbers, acks, RTT, loss, replay window.

Both ends of a session own a :class:`Connection` once the handshake is done. Every packet
it wraps gets the next 16-bit sequence number and piggybacks acks for what it has received
(newest sequence + a 32-bit bitfield of the ones before), so acknowledgement needs no
packets of its own. Every packet it unwraps is checked against the session id and a
256-sequence replay window: duplicates, replays and packets from too far in the past are
dropped and counted, never handed on.

Unless the session runs in plaintext (a lab on loopback: ``insecure_plaintext_loopback``),
every packet is sealed with AES-256-GCM (:mod:`netcode.session.crypto`): :meth:`wrap`
seals the payload with the sender's key, the prefix and session header as associated data
and the 64-bit send counter in the nonce; :meth:`accept` opens it before anything else is
believed, so the replay window and the acks only ever see packets the peer really sent. A
packet that fails is dropped (``bad_tag``) and changes nothing.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Hashable

from netcode.errors import ProtocolError, UsageError
from netcode.session.aead import PacketAead
from netcode.session.crypto import TAG_SIZE, InvalidTag
from netcode.session.wire import (
    ACK_DELAY_UNIT,
    ACK_VALID,
    MAX_PACKET,
    SESSION_HEADER_SIZE,
    PacketType,
    check_budget,
    pack_session_header,
    parse_session_header,
)

__all__ = ["Connection", "Counters", "RttEstimator", "SessionConfig", "housekeeping"]


@dataclass(frozen=True)
class SessionConfig:
    keepalive_interval: float = 0.25  # send at least this often, so acks and liveness flow
    timeout: float = 5.0  # silence after which the peer is gone
    connect_timeout: float = 10.0
    # A handshake packet unanswered this long goes again (netcode.io's rate, 10 a second):
    # each of its four legs may be lost, and at 20% loss 0.25 s here held the median client
    # 0.41 s before it was connected (arena of 16 on the simulator; 0.26 s now). Answers to
    # copies that crossed on a longer path are ignored.
    handshake_resend: float = 0.1
    cookie_ttl: float = 10.0
    disconnect_copies: int = 3  # DISCONNECT is sent this many times: there is no retransmit
    replay_window: int = 256  # sequences behind the newest that may still arrive
    housekeeping_interval: float = 0.05  # server: how often idle connections are scanned
    # Sessions in plaintext, for labs (packet captures, benchmarks of the bare protocol):
    # anyone on the path can then read, forge and knock off sessions. Honoured only for
    # peers on loopback; every other session is encrypted whatever this says.
    insecure_plaintext_loopback: bool = False


class Counters:
    """Packets and bytes each way, acks, losses, and drops by reason."""

    def __init__(self):
        self.sent = 0
        self.received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.acked = 0
        self.lost = 0
        self.dropped = Counter()

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def add(self, other: "Counters") -> None:
        """Fold another session's counters into these (a client's sessions across reconnects)."""
        self.sent += other.sent
        self.received += other.received
        self.bytes_sent += other.bytes_sent
        self.bytes_received += other.bytes_received
        self.acked += other.acked
        self.lost += other.lost
        self.dropped.update(other.dropped)

    def as_dict(self) -> dict:
        return {
            "sent": self.sent,
            "received": self.received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "acked": self.acked,
            "lost": self.lost,
            "dropped": dict(self.dropped),
        }

    def __repr__(self) -> str:
        return f"Counters({self.as_dict()})"


class RttEstimator:
    """Smoothed RTT and its mean deviation (RFC 6298 gains), plus the minimum seen and the
    newest sample (a client's clock keeps its own recent floor of them: timesync.ServerClock)."""

    def __init__(self):
        self._srtt = 0.0
        self.rttvar = 0.0
        self.min_rtt = float("inf")
        self.last = 0.0
        self.samples = 0

    def sample(self, rtt: float) -> None:
        if rtt < 0:
            return
        self.samples += 1
        self.last = rtt
        if rtt < self.min_rtt:
            self.min_rtt = rtt
        if self.samples == 1:
            self._srtt = rtt
            self.rttvar = rtt / 2
        else:
            srtt = self._srtt
            self.rttvar = self.rttvar + 0.25 * (abs(srtt - rtt) - self.rttvar)
            self._srtt = srtt + 0.125 * (rtt - srtt)

    @property
    def srtt(self) -> float | None:
        """The smoothed RTT; None before the first sample."""
        return self._srtt if self.samples else None

    @property
    def rtt(self) -> float:
        return self._srtt if self.samples else 0.1

    @property
    def jitter(self) -> float:
        return self.rttvar


_RING = 1024  # sent-packet records kept for acks and RTT
# What a resolved send's ring slot holds (an unresolved one holds its number): the peer
# acked it, or its acks moved past it without (see Connection.delivered).
_ACKED = -1
_LOST = -2
_DEPART_SCAN = 64  # sends back that departed() re-times (a tick queues far fewer)
# A send is counted lost once the peer has acked one this many sends newer without it: the
# acks' bitfield (33 sends) can no longer name it. Judged by the peer's acks, not by our own
# send count: a peer that is behind (a busy process still reading its queue) acks nothing
# newer, and is late, not lossy. (Counting a send lost 64 sends later read a client 0.8 s
# behind at 80 packets/s as 100% loss, and took it no RTT samples at all.)
_ACK_REACH = 33  # the newest ack plus its 32-bit field
_REORDER_WINDOW = 2.0  # seconds: reordering() is the most seen in the last one to two of these
_ACK_MASK = (1 << _ACK_REACH) - 1
_U64 = 0xFFFFFFFFFFFFFFFF
_U32 = 0xFFFFFFFF  # (typed: see wire._MAX_U32)
_EXTEND = 0x10000  # received sequences are extended to 64 bits from here, so never negative
MAX_REPLAY_WINDOW = 4096
# Connection.wrap's own copies (C numbers when compiled: no name lookup, no boxing a packet)
_ACK_DELAY_UNIT = ACK_DELAY_UNIT
_MAX_PACKET = MAX_PACKET


class Connection:
    """Sequence/ack state of one established session (either end).

    Compiled where the install has a C compiler (``connection.pxd`` types it); the same
    source runs as plain Python elsewhere.
    """

    def __init__(
        self,
        conn_id: int,
        addr: Hashable,
        session_id: int,
        slot: int,
        now: float,
        config: SessionConfig,
        *,
        user: str = "",
        role: int = 0,
        nonce: int = 0,
        keys: tuple[bytes, bytes] | None = None,
    ):
        """``keys``: (sending key, receiving key) of this end; None: a plaintext session."""
        window = config.replay_window
        if not 33 <= window <= MAX_REPLAY_WINDOW:
            raise UsageError(f"replay_window {window}: 33..{MAX_REPLAY_WINDOW} sequences")
        self.id = conn_id
        self.addr = addr
        self.session_id = session_id
        self.slot = slot
        self.user = user
        self.role = role
        self.nonce = nonce
        self.config = config
        self.created = now
        self.last_recv = now
        self.last_send = now
        self.closed = False
        self.counters = Counters()
        self.rtt = RttEstimator()
        self._window = window
        self.sends = 0  # 64-bit send counter (the next send's number); the wire carries its low 16 bits
        # The first of its payload sends waiting in the outbox (-1: none): the outbox's
        # record, kept here so queuing a packet needs no lookup (Outbox.send, departing).
        self.first_queued = -1
        # Flat arrays, not lists: a busy server holds hundreds of these rings, and a list of
        # 1024 boxed numbers each scatters every ack's reads across the heap.
        self._sent_time = array("d", [0.0]) * _RING
        self._sent_no = array("q", [-1]) * _RING  # which send occupies the ring slot (<0: resolved, _ACKED or _LOST)
        # Received sequences, extended to 64 bits: the newest (-1: none yet), a ring of
        # which sequence each slot last saw (the replay window), and the 64 before the
        # newest as bits (bit i: newest - i arrived), which the acks we send carry.
        self._recv_latest = -1
        self._recv_seen = array("q", [-1]) * window
        self._recv_acks = 0
        self._recv_latest_at = now  # when the newest arrived (ack delay is measured from it)
        self._peer_ack = -1  # newest of our sequences the peer acked (-1: none yet)
        self._peer_win = 0
        self._loss_from = 0  # sends before this were judged acked or lost
        # How much earlier than a send the peer had already acked, one it lacked then was
        # sent, most, in this window and the last (see reordering).
        self._reordered = self._reordered_before = 0.0
        self._reordered_since = now
        # One cipher each way for the session's life: compiled, each keeps its OpenSSL context.
        self._tx = PacketAead(keys[0], True) if keys is not None else None
        self._rx = PacketAead(keys[1], False) if keys is not None else None

    @property
    def encrypted(self) -> bool:
        return self._tx is not None

    # -- sending --------------------------------------------------------------------------
    def wrap(self, ptype: int, payload: bytes, now: float, lead: bytes = b"") -> bytes:
        """A packet with the session header (and the payload sealed, unless the session is
        plaintext), ready to send; registers it for acks. ``lead``: bytes of the caller's
        that go before ``payload`` (its own header, kept apart from a payload many packets
        share): joined in the packet's one copy instead of before it."""
        n = self.sends
        self.sends = n + 1
        latest = self._recv_latest
        if latest < 0:
            head = pack_session_header(ptype, self.session_id, n & 0xFFFF, -1, 0, 0)
        else:
            wait = (now - self._recv_latest_at) / _ACK_DELAY_UNIT
            delay = 255 if wait >= 255.0 else (0 if wait <= 0.0 else int(wait))  # clamped before int()
            acks = (self._recv_acks >> 1) & _U32
            head = pack_session_header(ptype, self.session_id, n & 0xFFFF, latest & 0xFFFF, acks, delay)
        tx = self._tx
        if tx is not None:
            packet = tx.seal(head, payload if type(payload) is bytes else bytes(payload), n, lead)
        else:
            packet = head + lead + payload if lead else head + payload
        size = len(packet)
        if size > _MAX_PACKET:
            check_budget(packet, PacketType(ptype).name)
        ring = n % _RING
        self._sent_no[ring] = n
        self._sent_time[ring] = now
        c = self.counters
        c.sent += 1
        c.bytes_sent += size
        self.last_send = now
        return packet

    def departed(self, first: int, now: float) -> None:
        """Our sends ``first``.. left at ``now``, not when they were wrapped: a server
        whose tick took a while held them meanwhile, and RTT samples must not count that
        wait as the network's (nor a busy tick as a slow client)."""
        n = first if first > self.sends - _DEPART_SCAN else self.sends - _DEPART_SCAN
        while n < self.sends:
            ring = n % _RING
            if self._sent_no[ring] == n and self._sent_time[ring] < now:
                self._sent_time[ring] = now
            n += 1

    def newest_acked(self) -> int:
        """The send counter of our newest send the peer has acked (-1: none yet): a peer
        that acked a send processed everything that arrived before it, so what went
        before and is still unanswered was lost, while a peer that acks nothing newer is
        behind (or silent), not losing packets."""
        if self._peer_ack < 0 or self.sends == 0:
            return -1
        newest = self.sends - 1
        return newest - ((newest - self._peer_ack) & 0xFFFF)

    def missing(self, window: float = 0.0) -> int:
        """How many of the sends the peer's newest ack names (that one and the 32 before it,
        those we made) it does not have: lost, or overtaken by a later one. The path's loss
        as the acks show it now; ``counters.lost`` waits until 33 newer sends are acked
        (a client sent 15 packets a second is judged 2 s late). ``window``: the sends made
        less than this many seconds before the newest acked one are not counted, as
        possibly still on their way behind it (a path whose delay varies by more than the
        sends' spacing reorders them)."""
        newest = self.newest_acked()
        if newest < 0:
            return 0
        named = newest + 1 if newest + 1 < _ACK_REACH else _ACK_REACH
        win = self._peer_win & (_ACK_MASK >> (_ACK_REACH - named))  # (a 64-bit mask when compiled, not 1 << named)
        have = 0
        bits = win
        while bits:
            bits &= bits - 1
            have += 1
        lacking = named - have
        if window > 0.0 and lacking:
            t = self._sent_time[newest % _RING]
            d = 1
            while d < named and t - self._sent_time[(newest - d) % _RING] < window:
                if not (win >> d) & 1:
                    lacking -= 1
                d += 1
        return lacking

    def reordering(self, now: float) -> float:
        """Seconds by which this path has lately delivered a send behind a later one (the
        most in the last two to four seconds, as the acks showed it; 0 for a path that
        keeps order): sends made within this before the newest acked one may still arrive,
        so their absence from the acks is no loss yet (RACK's reordering window, RFC 8985)."""
        age = now - self._reordered_since
        if age >= 2 * _REORDER_WINDOW:
            return 0.0
        if age >= _REORDER_WINDOW:
            return self._reordered
        return self._reordered if self._reordered > self._reordered_before else self._reordered_before

    def delivered(self, n: int) -> int:
        """Whether the peer has our send ``n``, as its acks tell: 1 it has, 0 it lacks it
        (missing from the newest ack: lost, or overtaken by a later one; or judged lost
        once the acks moved past it), -1 they do not say (not acked past yet, or so old
        its record is gone)."""
        newest = self.newest_acked()
        d = newest - n
        if newest < 0 or d < 0 or n < 0 or self.sends - n > _RING:
            return -1
        if d < _ACK_REACH:
            return (self._peer_win >> d) & 1
        slot = self._sent_no[n % _RING]
        return 1 if slot == _ACKED else (0 if slot == _LOST else -1)

    # -- receiving ------------------------------------------------------------------------
    def is_newer(self, seq: int) -> bool:
        """Whether 16-bit sequence ``seq`` is newer than every one received (a packet
        that certainly passes the replay window)."""
        if self._recv_latest < 0:
            return False
        d = (seq - self._recv_latest) & 0xFFFF
        return 0 < d < 0x8000

    def unwrap(self, data: bytes, now: float) -> memoryview:
        """Validate a session packet from the peer; returns its payload or raises."""
        return memoryview(self.accept(data, now))[SESSION_HEADER_SIZE:]

    def accept(self, data: bytes, now: float) -> bytes:
        """:meth:`unwrap` for a caller that reads the payload in place: the checks and the
        bookkeeping, or ProtocolError. Returns the packet opened (the header, then the
        payload in clear at ``SESSION_HEADER_SIZE``; ``data`` itself when plaintext)."""
        size = len(data)
        if size < SESSION_HEADER_SIZE:
            raise ProtocolError("truncated", "shorter than the session header")
        session_id, seq, ack, ack_bits, ack_delay = parse_session_header(data)
        if session_id != self.session_id:
            raise ProtocolError("bad_session", "session id does not match this address's session")
        rx = self._rx
        if rx is not None:
            if size < SESSION_HEADER_SIZE + TAG_SIZE:
                raise ProtocolError("truncated", "shorter than the session header and tag")
            try:
                data = rx.open(data if type(data) is bytes else bytes(data), SESSION_HEADER_SIZE, self._counter_of(seq))
            except InvalidTag:
                raise ProtocolError("bad_tag", "not sealed with this session's key") from None
        self._accept_seq(seq, now)
        if data[3] & ACK_VALID:
            self._process_acks(ack, ack_bits, now - ack_delay * ACK_DELAY_UNIT)
        c = self.counters
        c.received += 1
        c.bytes_received += size
        self.last_recv = now
        return data

    def _counter_of(self, seq: int) -> int:
        """The peer's 64-bit send counter of a packet with 16-bit sequence ``seq``: the
        nearest to the newest received (the extension :meth:`_accept_seq` makes), or ``seq``
        for the first packet. A guess too far off only fails the tag."""
        latest = self._recv_latest
        if latest < 0:
            return seq
        d = (seq - latest) & 0xFFFF
        if d >= 0x8000:
            d -= 0x10000
        counter = latest - _EXTEND + d
        return counter if counter >= 0 else 0

    def _accept_seq(self, seq: int, now: float) -> None:
        latest = self._recv_latest
        window = self._window
        if latest < 0:
            ext = seq + _EXTEND
            self._recv_latest = ext
            self._recv_seen[ext % window] = ext
            self._recv_acks = 1
            self._recv_latest_at = now
            return
        d = (seq - latest) & 0xFFFF
        if d >= 0x8000:
            d -= 0x10000
        ext = latest + d
        if d > 0:
            self._recv_acks = ((self._recv_acks << d) | 1) & _U64 if d < 64 else 1
            self._recv_latest = ext
            self._recv_seen[ext % window] = ext
            self._recv_latest_at = now
        elif d == 0:
            raise ProtocolError("duplicate", f"sequence {seq} again")
        elif -d >= window:
            raise ProtocolError("stale", f"sequence {seq} is {-d} behind the newest")
        elif self._recv_seen[ext % window] == ext:
            raise ProtocolError("duplicate", f"sequence {seq} again")
        else:
            self._recv_seen[ext % window] = ext
            if -d < 64:
                bit = 1
                self._recv_acks |= bit << -d

    def _process_acks(self, ack: int, ack_bits: int, now: float) -> None:
        """``now`` is the arrival time less the peer's ack delay: when the ack would have
        arrived had the peer answered at once."""
        win = 1 | (ack_bits << 1)  # bit i: the peer has our send (ack - i)
        if self.sends == 0 or (ack == self._peer_ack and win == self._peer_win):
            return  # nothing the previous packet did not already say
        newest_sent = self.sends - 1
        # Map the 16-bit ack onto our send counter; acks of sends we never made are ignored.
        back = (newest_sent - ack) & 0xFFFF
        if back >= _RING:
            return
        fresh = win
        prev = self._peer_ack
        if prev >= 0:
            d = (ack - prev) & 0xFFFF
            if d >= 0x8000:
                return  # an older packet, reordered: it carries nothing newer
            fresh = win & ~((self._peer_win << d) & _ACK_MASK) if d < 34 else win
        base = newest_sent - back
        if now - self._reordered_since >= _REORDER_WINDOW:  # a new window (the last one's, if it was the last)
            self._reordered_before = self._reordered if now - self._reordered_since < 2 * _REORDER_WINDOW else 0.0
            self._reordered, self._reordered_since = 0.0, now
        if prev >= 0 and d < 33 and fresh >> (d + 1):
            # Sends older than the previous newest ack, which lacked them, arrived since:
            # overtaken on the way, not lost. How much earlier the oldest went is how far
            # this path reorders.
            late = fresh >> (d + 1)
            i = d
            while late:
                late >>= 1
                i += 1
            if i < _ACK_REACH and back + i < _RING and base - i >= 0:  # (a hostile peer may ack sends never made)
                span = self._sent_time[(base - d) % _RING] - self._sent_time[(base - i) % _RING]
                if span > self._reordered:
                    self._reordered = span
        self._peer_ack = ack
        self._peer_win = win
        if fresh & 1 and base >= 0 and self._sent_no[base % _RING] == base:
            self.rtt.sample(now - self._sent_time[base % _RING])
        acked = 0
        i = 0
        while fresh:
            if fresh & 1:
                n = base - i
                if n >= 0 and self._sent_no[n % _RING] == n:
                    self._sent_no[n % _RING] = _ACKED
                    acked += 1
            fresh >>= 1
            i += 1
        self.counters.acked += acked
        # What the peer's acks can no longer name, unacked, was lost (a send the ring has
        # already reused was neither: it is not counted).
        n = self._loss_from
        end = base - _ACK_REACH + 1
        if n < end - _RING:
            n = end - _RING
        lost = 0
        while n < end:
            if self._sent_no[n % _RING] == n:
                self._sent_no[n % _RING] = _LOST
                lost += 1
            n += 1
        if end > self._loss_from:
            self._loss_from = end
        self.counters.lost += lost

    # -- liveness -------------------------------------------------------------------------
    def keepalive_due(self, now: float) -> bool:
        return now - self.last_send >= self.config.keepalive_interval

    def timed_out(self, now: float) -> bool:
        return now - self.last_recv >= self.config.timeout

    def next_deadline(self) -> float:
        return min(self.last_send + self.config.keepalive_interval, self.last_recv + self.config.timeout)

    def bookkeeping(self) -> dict:
        """Everything the connection tracks, as plain values: for tests that compare two
        connections fed the same packets, and for debugging."""
        return {
            "id": self.id, "addr": self.addr, "session_id": self.session_id, "slot": self.slot,
            "closed": self.closed, "created": self.created, "last_recv": self.last_recv,
            "last_send": self.last_send, "sends": self.sends, "recv_latest": self._recv_latest,
            "recv_acks": self._recv_acks, "recv_latest_at": self._recv_latest_at,
            "peer_ack": self._peer_ack, "peer_win": self._peer_win, "loss_from": self._loss_from,
            "reordered": (self._reordered, self._reordered_before, self._reordered_since),
            "sent_time": bytes(memoryview(self._sent_time)), "sent_no": bytes(memoryview(self._sent_no)),
            "recv_seen": bytes(memoryview(self._recv_seen)), "counters": self.counters.as_dict(),
            "rtt": (self.rtt.srtt, self.rtt.rttvar, self.rtt.min_rtt, self.rtt.samples),
        }

    def stats(self) -> dict:
        d = self.counters.as_dict()
        d.update(
            rtt_ms=self.rtt.rtt * 1e3,
            jitter_ms=self.rtt.jitter * 1e3,
            min_rtt_ms=(self.rtt.min_rtt * 1e3) if self.rtt.samples else None,
        )
        return d


def housekeeping(conns: list, now: float, timeout: float, keepalive: float) -> list:
    """Of ``conns``, the ones silent for ``timeout`` (to time out) or that sent nothing for
    ``keepalive`` (to keep alive) at ``now``: what a session server's scan of every
    connection, 20 times a second, acts on; usually none. Compiled, so the scan takes no
    Python step per connection (:meth:`Connection.timed_out` / :meth:`Connection.keepalive_due`
    with the server's one config)."""
    out = []
    for conn in conns:
        if now - conn.last_recv >= timeout or now - conn.last_send >= keepalive:
            out.append(conn)
    return out

