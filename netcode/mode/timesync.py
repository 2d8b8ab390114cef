"""Where the server is now, as seen from a client: its tick, and how far ahead to stamp inputs.

Both modes' clients stamp their inputs onto ticks the server has not closed yet, so each
input arrives just before its tick runs: one-way latency plus a jitter margin plus the wait
for our next packet ahead of the server's present.

Two delays are estimated from their least recent samples (queues only ever add delay): how
late the server's packets arrive after the tick they were sent at (the clock offset), and
the round trip (added back: the arrival delay is inside the offset, the way back is not).
Both use one :class:`RecentFloor`, whose rule the browser client (``web/ticksync.js``)
repeats with the same constants:

* a lower sample moves the floor at once (it is proof the path is that fast);
* a floor is kept at most ``FLOOR_WINDOW`` seconds of samples: a silence (no packets read,
  as when the client's process stalls) counts as at most ``FLOOR_SETTLE``, so a stall
  longer than the window does not expire the floor and make the burst read after it (every
  packet late by the stall) the new floor;
* when every sample for ``FLOOR_SETTLE`` seconds (and at least ``FLOOR_SETTLE_SAMPLES`` of
  them) lies above the floor by more than ``FLOOR_TOLERANCE_TICKS`` ticks, the path has
  changed (a queue that stays, a server that dropped ticks or restarted): the older samples
  are forgotten and the floor is the least of the last half of the new ones (the first
  samples after a change mix the old path and the new);
* the clock's two floors forget together: when one does, the other drops its older
  samples too if its own samples have started to rise. The offset and the RTT enter the
  input target with opposite signs, so a path that slows down both ways (or a client
  that stalls) moves neither the target nor the inputs, where one floor moving before the
  other would swing the inputs early, then late, by the whole change.

Why these figures: a floor within one tick of the truth costs at most a tick of lateness,
which :func:`input_lead`'s margin (at least one tick) absorbs, so smaller moves are ignored
and jitter never moves the estimate. Half a second is long enough that single spikes and
short bursts (a lost packet's retransmission, a GC pause, a few late frames) never trigger
a forget, and short enough that the estimate follows a lasting change about half a second
after its first packets (on the simulator inputs are no longer late a second after a
100 ms step, and back to their usual lead within two, as the RTT's jitter margin decays),
where a window alone (the old rule) held a stale floor for its whole length, and the
least RTT ever seen for good. The window (2 s) bounds how long a
stale floor can survive a change smaller than the tolerance.

A CPU-starved client (its updates late and in bursts, its packets waiting in its own socket)
must not read its stalls as the network's: the round trip it measures is mostly that wait,
and its RTT's deviation is seconds. So an RTT sample is taken with the snapshot that carried
its ack, less the time that packet waited beyond the fastest path down when the wait began
with that read (:meth:`ServerClock.sample`). Only a packet with a tick newer than any
before it is corrected so: one that is not (a full snapshot's part sent again, a part paced
after the first) left the server later than its tick says, so its lateness is not our
wait, and its sample counts whole. The jitter margin is capped
(``MAX_JITTER_MARGIN``); and the lead stays within half the server's ``max_ahead``. Without
these, one starved bot process stamped and predicted seconds ahead of the server, and each
update predicted that much further, which starved it more.
"""

from __future__ import annotations

from collections import deque

from netcode.session.connection import RttEstimator

__all__ = [
    "FLOOR_SETTLE",
    "FLOOR_SETTLE_SAMPLES",
    "FLOOR_TOLERANCE_TICKS",
    "FLOOR_WINDOW",
    "MAX_JITTER_MARGIN",
    "RecentFloor",
    "ServerClock",
    "input_lead",
    "one_way",
]

FLOOR_WINDOW = 2.0  # seconds of samples a floor is kept at most (a silence counts as FLOOR_SETTLE at most)
FLOOR_SETTLE = 0.5  # seconds of samples all above the floor that replace it
FLOOR_SETTLE_SAMPLES = 4  # and at least this many, so a lone sample after a gap never does
FLOOR_TOLERANCE_TICKS = 1.0  # "above" means by more than this: input_lead's margin covers it
# Seconds of jitter margin at most. The RTT's mean deviation is the network's jitter only
# while the client reads its socket on time: a CPU-starved client (its packets wait in the
# kernel, its updates come late and in bursts) measures its own stalls, seconds of them, and
# a lead that followed would stamp and predict seconds ahead of the server, and each update
# would predict that much further (more CPU: a spiral). Inputs that miss their tick instead
# are counted by the server and reported.
MAX_JITTER_MARGIN = 0.25


class RecentFloor:
    """The least of recent samples of a delay, forgetting a floor the samples have left.

    Kept as a monotonic queue (each entry the least of the samples from it on), so a sample
    costs O(1) amortized: bots run thousands of these a second.
    """

    def __init__(self, tolerance: float, window: float = FLOOR_WINDOW, settle: float = FLOOR_SETTLE):
        self.tolerance = tolerance
        self.window = window
        self.settle = settle
        # Times here are on the floor's own clock: it runs with the samples and counts a
        # silence (no samples: our process stalled, or the peer did) as at most ``settle``.
        # A silence is evidence of nothing; aged by it, a floor would expire whole during
        # a stall longer than the window, and the samples read in the burst after it, all
        # late by the stall, would become the floor.
        self._t = 0.0
        self._last: float | None = None  # the caller's ``now`` of the newest sample
        self._q: deque[tuple[float, float]] = deque()  # (time, value), both increasing
        self._above_since: float | None = None  # first of the samples above the floor in a row
        self._above = 0
        self.forgets = 0  # how many times the floor was replaced by newer samples

    @property
    def ready(self) -> bool:
        return bool(self._q)

    @property
    def value(self) -> float:
        """The floor; only meaningful when :attr:`ready`."""
        return self._q[0][1]

    def add(self, value: float, now: float) -> float:
        """Take a sample at ``now`` (non-decreasing); returns the floor."""
        if self._last is not None:
            self._t += min(now - self._last, self.settle)
        self._last = now
        now = self._t
        q = self._q
        if q and value > q[0][1] + self.tolerance:
            if self._above_since is None:
                self._above_since = now
            self._above += 1
        else:
            self._above_since = None
            self._above = 0
        while q and q[-1][1] >= value:
            q.pop()
        q.append((now, value))
        if q[0][0] < now - self.window:
            while q[0][0] < now - self.window:
                q.popleft()
            if self._above_since is not None and not self._run_above_floor():
                self._above_since = None  # the floor rose by itself to meet the run: count afresh
                self._above = 0
        elif (
            self._above_since is not None
            and now - self._above_since >= self.settle
            and self._above >= FLOOR_SETTLE_SAMPLES
        ):
            self.settle_now()
        return q[0][1]

    @property
    def run_began_now(self) -> bool:
        """Whether the newest sample is not part of a run above the floor that began with
        an earlier read (a read: the samples taken at one ``now``)."""
        return self._above_since is None or self._above_since >= self._t

    def settle_now(self) -> bool:
        """Forget the floor now if samples above it are under way (whether or not they have
        lasted ``settle``); whether it did. A clock whose other floor just moved calls this,
        so the two move together."""
        if self._above_since is None:
            return False
        # The run's first samples mix both paths (a packet out on the old one, back on the
        # new one): the new floor comes from its second half.
        # Timed by this floor's newest sample, not the caller's clock: called from the other
        # floor, that may be long after it (a stalled client), and the run must stay.
        q = self._q
        cut = max(self._above_since, q[-1][0] - self.settle / 2)
        while len(q) > 1 and q[0][0] < cut:
            q.popleft()
        self._above_since = None
        self._above = 0
        self.forgets += 1
        return True

    def _run_above_floor(self) -> bool:
        """Whether the samples since ``_above_since`` all still lie above the floor."""
        q, since = self._q, self._above_since
        if q[0][0] >= since:
            return False
        for t, v in q:
            if t >= since:
                return v > q[0][1] + self.tolerance
        return False


class ServerClock:
    """Estimates the server's tick from its packets: the recent floor of their arrival delay
    gives the clock offset; half the recent floor of the RTT is added back."""

    def __init__(self, rate: float):
        self.rate = rate
        self._delay = RecentFloor(FLOOR_TOLERANCE_TICKS / rate)  # arrival minus the send tick's time
        self._rtt = RecentFloor(FLOOR_TOLERANCE_TICKS / rate)
        self._rtt_seen = 0
        self._newest = -1  # the newest server tick sampled
        self._offset: float | None = None

    def sample(self, server_tick: int, now: float, rtt: RttEstimator | None = None) -> None:
        """``server_tick``: the newest frame the server had closed when it sent. ``rtt``: the
        session's estimator, when this packet may have carried an ack (its RTT sample is
        then taken here, see :meth:`_rtt_sample`)."""
        forgets = self._delay.forgets
        fresh = server_tick > self._newest
        self._newest = max(self._newest, server_tick)
        delay = now - (server_tick + 1) / self.rate
        floor = self._delay.add(delay, now)
        self._offset = -self.rate * floor
        if self._delay.forgets != forgets:
            self._rtt.settle_now()  # the offset and the RTT move together, or inputs swing
        if rtt is not None and rtt.samples != self._rtt_seen:
            # The packet that acked our send came in ``delay - floor`` later than the fastest
            # path down brings one. When its lateness began with this read (packets read
            # together at one ``now``: a starved client reads late, in bursts, the newest
            # on time), it waited in our own socket: not the path, which the round trip
            # must not count, or our stalls become "one-way latency" and push the clock and
            # the inputs ahead by half of them. Lateness under way since earlier reads is
            # the path's (a queue that stays): the sample counts whole, so both floors move.
            # So does the sample of a packet whose tick is not news: it was sent again, or
            # after others, so it is late by its sending, which its round trip does not hold
            # (counted, a full snapshot's part sent again made the RTT negative).
            self._rtt_seen = rtt.samples
            late = delay - floor if fresh and self._delay.run_began_now else 0.0
            self._rtt_sample(rtt.last - max(0.0, late), now)

    def _rtt_sample(self, value: float, now: float) -> None:
        forgets = self._rtt.forgets
        self._rtt.add(value, now)
        if self._rtt.forgets != forgets and self._delay.settle_now():
            self._offset = -self.rate * self._delay.value

    def seed(self, server_tick: int, now: float) -> None:
        if self._offset is None:
            self._offset = server_tick - now * self.rate

    @property
    def ready(self) -> bool:
        return self._offset is not None

    @property
    def forgets(self) -> int:
        """How many times a changed path made the clock or the RTT forget older samples."""
        return self._delay.forgets + self._rtt.forgets

    def one_way(self, rtt: RttEstimator, now: float) -> float:
        """One-way latency: half the recent floor of the session's RTT samples."""
        if rtt.samples != self._rtt_seen:  # a sample no clock sample came with
            self._rtt_seen = rtt.samples
            self._rtt_sample(rtt.last, now)
        return self._rtt.value / 2 if self._rtt.ready else one_way(rtt)

    def tick_at(self, now: float, one_way: float) -> float:
        """The server's (fractional) tick count at ``now``."""
        return now * self.rate + self._offset + one_way * self.rate


def one_way(rtt: RttEstimator) -> float:
    """One-way latency before a clock has RTT samples of its own: half the least RTT seen."""
    return (rtt.min_rtt if rtt.samples else rtt.rtt) / 2


def input_lead(one_way: float, jitter: float, rate: float, send_every: int, max_ahead: int | None = None) -> float:
    """Ticks between the server's present and the tick an input sent now should be for.

    ``max_ahead``: the server's limit (its ACCEPTED info); the lead stays within half of it,
    so a one-way estimate inflated by our own stalls never has the server refuse our
    packets as from the future (the whole packet, every input in it)."""
    margin = max(min(2.0 * jitter, MAX_JITTER_MARGIN), 1.0 / rate) + send_every / rate
    lead = (one_way + margin) * rate + 1
    return lead if max_ahead is None else min(lead, max_ahead / 2)
