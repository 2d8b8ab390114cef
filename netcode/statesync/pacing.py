# cython: annotation_typing=False
"""Per-client pacing of the snapshot sends that can snowball: full snapshots, and deltas to a
client whose acks lag (each one bigger than the last, as its baseline ages).

A client that falls behind (a saturated process, a congested link) acks late; deltas against
an old baseline grow, and once that baseline leaves the history only full snapshots remain,
which make it fall further behind. Two rules stop the spiral:

* **one full snapshot, then deltas against it.** After a full snapshot the server treats it
  as the client's baseline candidate: the next sends are deltas against it (the client holds
  it if it arrived whole) until the client acks it or something newer. Only when no ack
  comes within a timeout (doubled after each unanswered full, capped below the history's
  reach) is another full sent. Parts of it that the client's acks show missing go again,
  twice over, as soon as the acks show it (``lost_parts``), while the history still holds
  that snapshot (``full_parts``, ``redundant``), and the client completes it from those it
  already holds; when the acks cannot say which (the client acked later packets, not the
  full, within the timeout), every part it has not acked goes again.
* **a byte budget with AIMD.** Those sends (fulls, and anything to a client whose acks lag)
  spend from a token bucket refilled at ``rate`` bytes/s; a send waits (is skipped) while the
  bucket is in debt. The rate is halved, at most once per round trip, while the client's acks
  lag (and only once while they stop altogether) or its packets go missing, and grows back
  by a quarter a second while they don't.
  "Lag" is how long the oldest snapshot *sent* since the newest ack has waited, so the sends
  the budget held back never count as lag. After acks lagged (a queue built up), every send
  is paced until the rate is back at its maximum, deltas too, and meanwhile only lagging
  acks cut the rate (loss is no queue, and kept a 20%-loss client at the floor for good);
  a client that merely loses packets keeps its deltas unpaced, and a healthy client's
  deltas are never held back.
* **a stalled client is sent a delta now and then, not every snapshot.** Once the oldest
  snapshot sent since its newest ack has waited ``hold`` (two snapshot intervals) beyond two
  recent minimum round trips (or, on a jittery path, beyond the least of its recent RTT
  timeouts), a delta goes only if the last send is older than twice that.
  "Recent" is the least RTT sample of the last one to two ``FLOOR_WINDOW`` spans: a path that
  got slower for good is the new normal within a second, not held forever. Nor is a client
  whose newest ack shows it losing packets (``LOSSY``): there acks that stop are most likely
  a run of lost snapshots (at 20% loss, 4 in a row happen to one of 16 clients a few times a
  minute), and held, it got one delta every ``2 * stalled``, each as likely lost: it froze
  for half a second or more, now and then ending a second behind. A process
  that stalls reads what piled up at once, and only the newest matters; each of those deltas
  repeats every change since the old baseline, growing as it ages (measured: a 0.4 s stall of
  16 arena clients tripled that second's output; the rate above, far from binding, did not
  notice).

Sans-IO: every method takes ``now``. A 100-client room asks this several times per client
per snapshot, 3000 snapshots a second, so it is compiled (Cython's pure-Python mode,
``pacing.pxd``); the same source runs as plain Python.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SendPacer"]

LOSS_WINDOW = 0.5  # seconds over which the loss rate is measured
LOSS_CONGESTED = 0.1  # a loss rate above this is treated as congestion
GROWTH = 0.25  # the rate's growth per second while the client keeps up, as a share of itself
ACK_SLACK = 0.25  # seconds an ack may lag beyond two minimum round trips before it counts as lagging
NEVER = float("-inf")  # the time of what has not happened yet
UNACKED = 256  # snapshots sent since the newest ack that are remembered (the oldest go first)
FLOOR_WINDOW = 0.5  # seconds: the recent RTT floor is the least sample of this window and the last
# Sends missing from the client's newest ack that mark its path as losing packets, whose
# deltas are never held (one alone may be overtaken). Those sent within the path's
# reordering before the newest acked one are not counted: they may still be on their way.
# A 20%-loss path's acks show fewer 1 time in 140 (32 counted); a clean one's (a stalled
# process's) none, also under heavy jitter (measured: 0-300 ms of half-normal jitter, sigma
# 100 ms: counting every send, 7 of 10 stalls read as loss and were sent 6x the bytes).
LOSSY = 2
# Later sends acked past a send that the acks show missing before it is taken as lost (as
# TCP's duplicate acks: fewer may be a packet overtaken on the way).
REORDERED = 3


class SendPacer:
    """One client's budget for paced snapshot sends, and the full snapshot it was last sent."""

    def __init__(self, max_rate: float, min_rate: float, hold: float = 2 / 30):
        self.max_rate = max_rate
        self.min_rate = min_rate
        self.hold = hold  # seconds beyond two minimum round trips an ack may wait before deltas are held
        self.holding = False  # whether the client's deltas wait this snapshot (set by pace)
        self.last_sent = NEVER
        self._floor = self._floor_before = float("inf")  # least RTT of this window, of the last
        self._timeout = self._timeout_before = float("inf")  # least RTT timeout of this window, of the last
        self._floor_since = NEVER
        self.rate = max_rate  # bytes per second
        self.tokens = 0.0  # bytes; a paced send goes while this is >= 0
        self.last = NEVER  # when the bucket was last refilled
        self.cut_at = NEVER  # when the rate was last halved
        self.cut_acked = -2  # the client's newest ack then (-1: none yet)
        self.full_tick = -1  # the newest full snapshot sent and not yet acked (-1: none)
        self.full_at = 0.0
        self.full_through = -1  # the session's send counter of the full snapshot's last packet
        # The full snapshot's parts as sent (set by the sender): when some went missing, the
        # same snapshot goes again, and the client adds the parts it lacked to those it
        # holds, where a newer full would have to arrive whole on its own.
        self.full_parts = None
        # Which of its parts the client's session acked (a list of bools), and the sends that
        # carried parts not acked yet: send numbers and the part each carried. A part whose
        # every carrier the acks show missing is lost, and goes again at once (lost_parts).
        self.full_have = None
        self._carriers = []
        self._carried = []
        self.unanswered = 0  # full snapshots in a row sent without an ack
        # A part of the last full snapshot went missing (the client acked packets sent after
        # it, never the full): what goes next, the same snapshot again or a newer full, goes
        # out twice, each part in both copies, until the client acks one. At 20% loss a
        # full of N parts arrives whole 0.8^N of the time, doubled 0.96^N.
        self.redundant = False
        self._loss_since = 0.0  # the loss measurement's start, and the sent and lost counts then
        self._loss_sent = 0
        self._loss_lost = 0
        self.loss = 0.0
        self.counters = {"paced_skips": 0, "rate_cuts": 0, "held": 0}
        self.queued = False  # the rate was cut because a queue built up, and has not grown back
        # The snapshots sent since the newest ack, oldest first: a ring of (tick, when sent)
        # from ``_head``, ``_count`` long (typed arrays: compiled, no tuple per send).
        self._unacked_tick = np.zeros(UNACKED, np.int64)
        self._unacked_at = np.zeros(UNACKED, np.float64)
        self._head = 0
        self._count = 0

    def sent(self, tick: int, now: float) -> None:
        """A snapshot went to the client (whole, paced or not)."""
        self.last_sent = now
        i = (self._head + self._count) % UNACKED
        self._unacked_tick[i] = tick
        self._unacked_at[i] = now
        if self._count < UNACKED:
            self._count += 1
        else:
            self._head = (self._head + 1) % UNACKED  # full: that overwrote the oldest

    def waiting(self, acked: int, now: float) -> float:
        """How long the oldest snapshot sent after the client's newest ack (``acked``) has gone
        unacked: the queue between us and the client. Snapshots the pacing held back or the
        encode budget deferred were never sent, so they do not count: measuring the newest
        ack's age instead would read the pacing's own gaps as lag and keep the rate at its
        floor (measured: a client draining 7.5 kB/s got one full snapshot every 2.6 s)."""
        while self._count and self._unacked_tick[self._head] <= acked:
            self._head = (self._head + 1) % UNACKED
            self._count -= 1
        return float(now - self._unacked_at[self._head]) if self._count else 0.0

    def pace(self, now: float, acked: int, conn) -> bool:
        """:meth:`update` for a client whose newest ack is snapshot ``acked`` (-1: none yet),
        from its session ``conn``'s counts and RTT; whether its acks lag. Also decides
        :attr:`holding`."""
        if acked >= self.full_tick >= 0:
            self.full_acked()
        rtt = conn.rtt
        # Before its first RTT sample a client's floor is the default RTT: an infinite
        # minimum would never read as lagging, and a client too far behind to have been
        # sampled yet is the one that most needs pacing.
        # No floor before the first sample: a client that has not been timed is not held.
        sample = rtt.last if rtt.samples else float("inf")
        timeout = rtt.rtt + 4 * rtt.rttvar if rtt.samples else float("inf")
        if now - self._floor_since >= FLOOR_WINDOW:
            self._floor_before, self._floor, self._floor_since = self._floor, sample, now
            self._timeout_before, self._timeout = self._timeout, timeout
        else:
            if sample < self._floor:
                self._floor = sample
            if timeout < self._timeout:
                self._timeout = timeout
        wait = self.waiting(acked, now) if acked >= 0 else 0.0
        lag = acked >= 0 and lagging(wait, rtt.min_rtt if rtt.samples else rtt.rtt)
        # A wait longer than this path's round trips take: twice the recent floor or, on a
        # path whose delay varies, its recent least timeout (smoothed RTT plus four mean
        # deviations, as RFC 6298's). Jitter alone let waits pass twice the floor, and a
        # healthy client was held (seen once the reordered sends stopped reading as losses).
        # The least of the last one to two windows, as the floor: the samples of a stall's
        # late acks raise the current timeout within a round trip or two.
        stalled = max(2 * min(self._floor, self._floor_before), min(self._timeout, self._timeout_before)) + self.hold
        self.holding = acked >= 0 and wait > stalled and now - self.last_sent < 2 * stalled and conn.missing(conn.reordering(now)) < LOSSY
        counters = conn.counters
        self.update(now, lag, counters.sent, counters.lost, rtt.rtt, acked)
        return lag

    def update(self, now: float, lagging: bool, sent: int, lost: int, rtt: float, acked: int = -1) -> None:
        """Refill the bucket and adjust the rate: halve it when congested (acks lagging, or
        loss above ``LOSS_CONGESTED`` unless :meth:`recovering`), else grow it by ``GROWTH``
        of itself per second. ``acked``: the client's newest ack (-1: none yet). Lagging
        acks halve the rate again only once that moved since the last cut: a queue is
        acks that come late, while acks that stop altogether (a stalled process, an
        outage of its uplink) say nothing of the path, and halving once per round trip of
        their silence starved the client for seconds after (measured: two 0.6 s outages
        1.5 s apart cut the rate 64-fold, to 3.4 kB/s, and the client of a 4-player arena
        then fell up to 0.8 s behind for several seconds)."""
        if now - self._loss_since >= LOSS_WINDOW:
            if sent > self._loss_sent:
                self.loss = (lost - self._loss_lost) / (sent - self._loss_sent)
            self._loss_since, self._loss_sent, self._loss_lost = now, sent, lost
        dt = 0.0 if self.last == NEVER else max(0.0, now - self.last)
        self.last = now
        if lagging and not self.queued:
            # A queue begins: from now on every send is paced, deltas too, at a rate the lag
            # cuts find. Below the maximum the rate was cut by loss, a budget for full
            # snapshots, not what the client drains: paced at that, a 20%-loss client's
            # deltas after a 0.6 s stall went at the 2 kB/s floor and it fell 4 s behind.
            self.queued = True
            self.rate = self.max_rate
        # While it recovers from a queue the acks alone judge the client: loss is no queue, and
        # on a lossy path it kept halving the rate at its floor, pacing every delta for good.
        lossy = self.loss > LOSS_CONGESTED and not self.queued
        if lagging or lossy:
            if now - self.cut_at >= max(rtt, 0.1) and (lossy or acked != self.cut_acked):
                self.rate = max(self.min_rate, self.rate * 0.5)
                self.cut_at = now
                self.cut_acked = acked
                self.counters["rate_cuts"] += 1
        else:
            # Grow by a quarter a second (at least the floor a second): a client that
            # drains slowly is found again within a few seconds without overshooting it by
            # much, where growing by a fixed share of the maximum refilled its queue at once.
            self.rate = min(self.max_rate, self.rate + max(self.min_rate, self.rate * GROWTH) * dt)
            if self.rate >= self.max_rate:
                self.queued = False
        self.tokens = min(self.rate * 0.1, self.tokens + self.rate * dt)

    def recovering(self) -> bool:
        """Whether the rate is still below its maximum after a queue built up (acks lagging):
        until it is back, every send is paced, deltas too. A client that just drained its
        queue is otherwise sent deltas against its old baseline, the biggest there are, all
        at once, and the queue is back. Loss alone does not count: random loss on a long
        link is not a queue, and pacing its deltas would only starve the client."""
        return self.queued

    def allows(self) -> bool:
        """Whether a paced send may go now (counts the ones that may not)."""
        if self.tokens >= 0:
            return True
        self.counters["paced_skips"] += 1
        return False

    def holds(self) -> bool:
        """Whether a delta waits this snapshot (see :attr:`holding`; counts the ones that do)."""
        if self.holding:
            self.counters["held"] += 1
        return self.holding

    def spend(self, size: int) -> None:
        self.tokens -= size

    # -- the full snapshot as a baseline candidate ----------------------------------------
    def candidate(self, acked: int, heard_at: float, timeout: float, backoff: bool = True) -> int:
        """The full snapshot to send deltas against while the client's ack of it is on its
        way (-1: none, send a full). The full is taken as lost only when the client has kept
        talking (``heard_at``: when it was last heard from) for ``timeout`` after it was sent
        without acking it. With ``backoff`` the timeout doubles after each unanswered one: a
        silent or lagging client is sent no more fulls it cannot ack anyway. Without it (the
        client acked packets sent after the full: a part of it was lost) each resend waits
        the timeout alone, and the pacing's budget bounds what a lossy link costs."""
        if self.full_tick < 0 or acked >= self.full_tick:
            if acked >= self.full_tick >= 0:
                self.full_acked()
            return -1
        wait = timeout * (1 << min(self.unanswered - 1, 4)) if backoff else timeout
        if heard_at - self.full_at >= wait:
            return -1
        return self.full_tick

    def full_acked(self) -> None:
        """The client acked the full snapshot (or a newer one): no candidate, copies or
        resends any more."""
        self.full_tick, self.unanswered, self.redundant, self.full_parts, self.full_have = -1, 0, False, None, None
        self._carriers, self._carried = [], []

    def sent_full(self, tick: int, now: float, parts: list) -> None:
        """Full snapshot ``tick`` went to the client as ``parts`` (see :meth:`carried` for the
        sends that took them)."""
        self.full_tick = tick
        self.full_at = now
        self.unanswered += 1
        self.full_parts = parts
        self.full_have = [False] * len(parts)
        self._carriers, self._carried = [], []

    def carried(self, first: int, parts: list) -> None:
        """The session's sends ``first``.. took the full snapshot's parts ``parts`` (indices),
        one each, in order."""
        for j in range(len(parts)):
            self._carriers.append(first + j)
            self._carried.append(parts[j])

    def lost_parts(self, conn) -> list:
        """The full snapshot's parts the client certainly lacks, from its session ``conn``'s
        acks: every send that carried the part is missing from them, with ``REORDERED``
        later sends acked (fewer may be a reordering). Learns which parts arrived, and
        forgets the sends that are answered either way."""
        newest = conn.newest_acked()
        have = self.full_have
        carriers, carried = [], []
        for j in range(len(self._carriers)):
            n = self._carriers[j]
            k = self._carried[j]
            if have[k]:
                continue
            got = conn.delivered(n)
            if got == 1:
                have[k] = True
            elif got < 0 or newest - n < REORDERED:
                carriers.append(n)  # still on its way (or its record is gone): not lost
                carried.append(k)
        self._carriers, self._carried = carriers, carried
        lost = []
        for k in range(len(have)):
            if not have[k] and k not in carried:
                lost.append(k)
        return lost

    def unheld_parts(self) -> list:
        """The full snapshot's parts the client's session has not acked (as far as
        :meth:`lost_parts` learned): what a resend after a timeout sends."""
        return [k for k in range(len(self.full_have)) if not self.full_have[k]]

    def bookkeeping(self) -> dict:
        return {
            "rate": self.rate, "tokens": self.tokens, "last": None if self.last == NEVER else self.last, "cut_at": self.cut_at,
            "full_tick": self.full_tick, "full_at": self.full_at, "unanswered": self.unanswered,
            "loss": self.loss, "counters": dict(self.counters), "cut_acked": self.cut_acked, "queued": self.queued,
            "floor": (self._floor, self._floor_before), "timeout": (self._timeout, self._timeout_before),
        }


def lagging(ack_age: float, min_rtt: float) -> bool:
    """Whether a client's newest ack is older than a healthy client's would be."""
    return ack_age > ACK_SLACK + 2 * min_rtt
