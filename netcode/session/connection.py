"""One established session's packet bookkeeping: sequence numbers, acks, RTT, loss, replay window.

Both ends of a session own a :class:`Connection` once the handshake is done. Every packet
it wraps gets the next 16-bit sequence number and piggybacks acks for what it has received
(newest sequence + a 32-bit bitfield of the ones before), so acknowledgement needs no
packets of its own. Every packet it unwraps is checked against the session id and a
256-sequence replay window: duplicates, replays and packets from too far in the past are
dropped and counted, never handed on.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable

from netcode.errors import ProtocolError
from netcode.session.wire import (
    ACK_DELAY_UNIT,
    ACK_VALID,
    MAX_PACKET,
    PROTOCOL_ID,
    PROTOCOL_VERSION,
    SESSION,
    SESSION_HEADER,
    SESSION_HEADER_SIZE,
    PacketType,
    check_budget,
    seq_delta,
)

_HEADER = SESSION_HEADER

__all__ = ["Connection", "Counters", "RttEstimator", "SessionConfig"]


@dataclass(frozen=True)
class SessionConfig:
    keepalive_interval: float = 0.25  # send at least this often, so acks and liveness flow
    timeout: float = 5.0  # silence after which the peer is gone
    connect_timeout: float = 10.0
    handshake_resend: float = 0.25
    cookie_ttl: float = 10.0
    disconnect_copies: int = 3  # DISCONNECT is sent this many times: there is no retransmit
    replay_window: int = 256  # sequences behind the newest that may still arrive
    housekeeping_interval: float = 0.05  # server: how often idle connections are scanned


@dataclass
class Counters:
    sent: int = 0
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    acked: int = 0
    lost: int = 0
    dropped: Counter = field(default_factory=Counter)

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


class RttEstimator:
    """Smoothed RTT and its mean deviation (RFC 6298 gains), plus the minimum seen."""

    __slots__ = ("srtt", "rttvar", "min_rtt", "samples")

    def __init__(self):
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.min_rtt = float("inf")
        self.samples = 0

    def sample(self, rtt: float) -> None:
        if rtt < 0:
            return
        self.samples += 1
        self.min_rtt = min(self.min_rtt, rtt)
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar += 0.25 * (abs(self.srtt - rtt) - self.rttvar)
            self.srtt += 0.125 * (rtt - self.srtt)

    @property
    def rtt(self) -> float:
        return 0.1 if self.srtt is None else self.srtt

    @property
    def jitter(self) -> float:
        return self.rttvar


_RING = 1024  # sent-packet records kept for acks and RTT
_LOSS_AFTER = 64  # a packet unacked this many sends later is counted lost
_ACK_MASK = (1 << 33) - 1


class Connection:
    """Sequence/ack state of one established session (either end)."""

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
    ):
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
        self._window_bits = config.replay_window
        self._sends = 0  # 64-bit send counter; the wire carries its low 16 bits
        # Flat arrays, not lists: a busy server holds hundreds of these rings, and a list of
        # 1024 boxed numbers each scatters every ack's reads across the heap.
        self._sent_time = array("d", [0.0]) * _RING
        self._sent_no = array("q", [-1]) * _RING  # which send occupies the ring slot (-1: resolved)
        self._recv_latest: int | None = None
        self._recv_bits = 0  # bit i: received sequence (latest - i)
        self._recv_latest_at = now  # when the newest arrived (ack delay is measured from it)
        self._peer_ack: int | None = None
        self._peer_win = 0

    # -- sending --------------------------------------------------------------------------
    def wrap(self, ptype: PacketType, payload: bytes | bytearray, now: float) -> bytes:
        """A packet with the session header, ready to send; registers it for acks."""
        n = self._sends
        self._sends = n + 1
        latest = self._recv_latest
        if latest is None:
            head = _HEADER.pack(PROTOCOL_ID, PROTOCOL_VERSION, ptype, self.session_id, n & 0xFFFF, 0, 0, 0)
        else:
            bits = (self._recv_bits >> 1) & 0xFFFFFFFF
            delay = min(255, max(0, int((now - self._recv_latest_at) / ACK_DELAY_UNIT)))
            head = _HEADER.pack(
                PROTOCOL_ID, PROTOCOL_VERSION, ptype | ACK_VALID, self.session_id, n & 0xFFFF, latest, bits, delay
            )
        packet = head + payload
        if len(packet) > MAX_PACKET:
            check_budget(packet, PacketType(ptype).name)
        ring = n % _RING
        old = n - _LOSS_AFTER
        if old >= 0 and self._sent_no[old % _RING] == old:
            self._sent_no[old % _RING] = -1
            self.counters.lost += 1
        self._sent_no[ring] = n
        self._sent_time[ring] = now
        c = self.counters
        c.sent += 1
        c.bytes_sent += len(packet)
        self.last_send = now
        return packet

    # -- receiving ------------------------------------------------------------------------
    def unwrap(self, data: bytes, now: float) -> memoryview:
        """Validate a session packet from the peer; returns its payload or raises."""
        if len(data) < SESSION_HEADER_SIZE:
            raise ProtocolError("truncated", "shorter than the session header")
        session_id, seq, ack, ack_bits, ack_delay = SESSION.unpack_from(data, 4)
        if session_id != self.session_id:
            raise ProtocolError("bad_session", "session id does not match this address's session")
        self._accept_seq(seq, now)
        if data[3] & ACK_VALID:
            self._process_acks(ack, ack_bits, now - ack_delay * ACK_DELAY_UNIT)
        c = self.counters
        c.received += 1
        c.bytes_received += len(data)
        self.last_recv = now
        return memoryview(data)[SESSION_HEADER_SIZE:]

    def _accept_seq(self, seq: int, now: float) -> None:
        latest = self._recv_latest
        if latest is None:
            self._recv_latest, self._recv_bits, self._recv_latest_at = seq, 1, now
            return
        d = seq_delta(seq, latest)
        if d > 0:
            self._recv_bits = ((self._recv_bits << d) | 1) & ((1 << self._window_bits) - 1)
            self._recv_latest = seq
            self._recv_latest_at = now
        elif d == 0:
            raise ProtocolError("duplicate", f"sequence {seq} again")
        elif -d >= self._window_bits:
            raise ProtocolError("stale", f"sequence {seq} is {-d} behind the newest")
        elif self._recv_bits >> -d & 1:
            raise ProtocolError("duplicate", f"sequence {seq} again")
        else:
            self._recv_bits |= 1 << -d

    def _process_acks(self, ack: int, ack_bits: int, now: float) -> None:
        """``now`` is the arrival time less the peer's ack delay: when the ack would have
        arrived had the peer answered at once."""
        if self._sends == 0 or (ack == self._peer_ack and ack_bits << 1 | 1 == self._peer_win):
            return  # nothing the previous packet did not already say
        newest_sent = self._sends - 1
        # Map the 16-bit ack onto our send counter; acks of sends we never made are ignored.
        back = (newest_sent - ack) & 0xFFFF
        if back >= _RING:
            return
        win = 1 | (ack_bits << 1)  # bit i: the peer has our send (ack - i)
        fresh = win
        prev = self._peer_ack
        if prev is not None:
            d = seq_delta(ack, prev)
            if d < 0:
                return  # an older packet, reordered: it carries nothing newer
            fresh = win & ~((self._peer_win << d) & _ACK_MASK)
        self._peer_ack, self._peer_win = ack, win
        if fresh & 1 and newest_sent >= back and self._sent_no[(newest_sent - back) % _RING] == newest_sent - back:
            self.rtt.sample(now - self._sent_time[(newest_sent - back) % _RING])
        c = self.counters
        while fresh:
            low = fresh & -fresh
            i = low.bit_length() - 1
            fresh ^= low
            n = newest_sent - back - i
            if n >= 0 and self._sent_no[n % _RING] == n:
                self._sent_no[n % _RING] = -1
                c.acked += 1

    # -- liveness -------------------------------------------------------------------------
    def keepalive_due(self, now: float) -> bool:
        return now - self.last_send >= self.config.keepalive_interval

    def timed_out(self, now: float) -> bool:
        return now - self.last_recv >= self.config.timeout

    def next_deadline(self) -> float:
        return min(self.last_send + self.config.keepalive_interval, self.last_recv + self.config.timeout)

    def stats(self) -> dict:
        d = self.counters.as_dict()
        d.update(
            rtt_ms=self.rtt.rtt * 1e3,
            jitter_ms=self.rtt.jitter * 1e3,
            min_rtt_ms=(self.rtt.min_rtt * 1e3) if self.rtt.samples else None,
        )
        return d
