"""Where the server is now, as seen from a client: its tick, and how far ahead to stamp inputs.

Both modes' clients stamp their inputs onto ticks the server has not closed yet, so each
input arrives just before its tick runs: one-way latency plus a jitter margin plus the wait
for our next packet ahead of the server's present.
"""

from __future__ import annotations

from collections import deque

from netcode.session.connection import RttEstimator

__all__ = ["ServerClock", "one_way", "input_lead"]


class ServerClock:
    """Estimates the server's tick from frame packets: the least-delayed arrivals of a
    sliding window give the clock offset; half the minimum RTT is added back."""

    def __init__(self, rate: float, window: int = 96):
        self.rate = rate
        self._samples: deque[float] = deque(maxlen=window)
        self._offset: float | None = None

    def sample(self, server_tick: int, now: float) -> None:
        """``server_tick``: the newest frame the server had closed when it sent."""
        self._samples.append(server_tick + 1 - now * self.rate)
        self._offset = max(self._samples)

    def seed(self, server_tick: int, now: float) -> None:
        if self._offset is None:
            self._offset = server_tick - now * self.rate

    @property
    def ready(self) -> bool:
        return self._offset is not None

    def tick_at(self, now: float, one_way: float) -> float:
        """The server's (fractional) tick count at ``now``."""
        return now * self.rate + self._offset + one_way * self.rate


def one_way(rtt: RttEstimator) -> float:
    """One-way latency estimate: half the least RTT seen (queues only ever add delay)."""
    return (rtt.min_rtt if rtt.samples else rtt.rtt) / 2


def input_lead(rtt: RttEstimator, rate: float, send_every: int) -> float:
    """Ticks between the server's present and the tick an input sent now should be for."""
    margin = max(2.0 * rtt.jitter, 1.0 / rate) + send_every / rate
    return (one_way(rtt) + margin) * rate + 1
