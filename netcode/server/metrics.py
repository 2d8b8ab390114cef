"""``GET /metrics``: the server and its rooms in the Prometheus text format (prometheus-client).

Nothing is counted twice: the collector reads, at scrape time, the counters the server
keeps anyway (the router's traffic per room, the tick loop's late and dropped ticks, the
sessions' drops, the transports' totals). The one thing kept only for Prometheus is the
tick-time histogram: :class:`TickTimes`, a few buckets a room adds each tick's work time to
(a bisect and an increment).

Each server has its own :class:`~prometheus_client.CollectorRegistry`, never the global
one, so several servers in one process (tests, an embedding app) do not clash.

Per room (label ``room``; ``game`` and ``mode`` on ``ticksync_room_info``):
``ticksync_room_ticks_total``, ``ticksync_room_late_ticks_total``,
``ticksync_room_dropped_ticks_total``, ``ticksync_room_tick_seconds`` (histogram),
``ticksync_room_tick_p99_seconds`` and ``ticksync_room_tick_cpu_p99_seconds`` (recent ticks'
wall and CPU time: a wall p99 far above the CPU p99 is contention, not work),
``ticksync_room_packets_total`` / ``ticksync_room_bytes_total`` (``direction`` in/out),
``ticksync_room_drops_total`` (``reason``: malformed or unwanted packets, refused
handshakes), ``ticksync_room_players``, ``ticksync_room_spectators``,
``ticksync_room_seats`` (``state``), ``ticksync_room_desyncs_total``. Per server:
``ticksync_rooms``, ``ticksync_packets_total`` / ``ticksync_bytes_total`` (``transport``,
``direction``), ``ticksync_drops_total`` (``where``: router or a transport, ``reason``).
A room's drop counts cover its live connections and its refused handshakes; a connection
that ends takes its own drop counts with it (Prometheus reads the decrease as a reset).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from netcode.server.tickserver import TickServer

__all__ = ["TickTimes", "ServerCollector", "metrics_text", "registry_for"]

#: Tick work time buckets, seconds: a 60 Hz tick has 16.7 ms.
TICK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.0167, 0.025, 0.05, 0.1)


class TickTimes:
    """A cumulative histogram of tick work times (seconds)."""

    __slots__ = ("counts", "total", "n")

    def __init__(self) -> None:
        self.counts = [0] * (len(TICK_BUCKETS) + 1)  # the last: above every bound
        self.total = 0.0
        self.n = 0

    def add(self, seconds: float) -> None:
        self.counts[bisect_left(TICK_BUCKETS, seconds)] += 1
        self.total += seconds
        self.n += 1

    def buckets(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, count in zip(TICK_BUCKETS, self.counts):
            running += count
            out.append((repr(bound), running))
        out.append(("+Inf", self.n))
        return out


class ServerCollector(Collector):
    """Reads a :class:`TickServer` at scrape time (see the module docstring)."""

    def __init__(self, server: "TickServer"):
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        info = GaugeMetricFamily("ticksync_room_info", "A room: its game and network mode (value 1)", labels=["room", "game", "mode"])
        ticks = CounterMetricFamily("ticksync_room_ticks", "Ticks the room ran", labels=["room"])
        late = CounterMetricFamily(
            "ticksync_room_late_ticks", "Ticks that started more than one tick period after their deadline", labels=["room"]
        )
        dropped = CounterMetricFamily(
            "ticksync_room_dropped_ticks", "Overdue ticks skipped after a stall (the schedule jumped ahead)", labels=["room"]
        )
        tick_time = HistogramMetricFamily("ticksync_room_tick_seconds", "Work time of one tick", labels=["room"])
        p99 = GaugeMetricFamily("ticksync_room_tick_p99_seconds", "99th percentile of recent ticks' wall time", labels=["room"])
        cpu_p99 = GaugeMetricFamily(
            "ticksync_room_tick_cpu_p99_seconds",
            "99th percentile of recent ticks' CPU time (the tick thread's): far below the wall p99 means contention",
            labels=["room"],
        )
        packets = CounterMetricFamily("ticksync_room_packets", "Datagrams to and from the room", labels=["room", "direction"])
        nbytes = CounterMetricFamily("ticksync_room_bytes", "Bytes to and from the room", labels=["room", "direction"])
        drops = CounterMetricFamily(
            "ticksync_room_drops", "Packets the room dropped and handshakes it refused, by reason", labels=["room", "reason"]
        )
        desyncs = CounterMetricFamily("ticksync_room_desyncs", "Clients found with a wrong state hash", labels=["room"])
        players = GaugeMetricFamily("ticksync_room_players", "Players connected", labels=["room"])
        spectators = GaugeMetricFamily("ticksync_room_spectators", "Spectators connected", labels=["room"])
        seats = GaugeMetricFamily("ticksync_room_seats", "Player seats by state", labels=["room", "state"])
        for room in list(server.rooms.values()):
            name = room.name
            info.add_metric([name, room.game.name, room.config.mode], 1)
            ticks.add_metric([name], room.mode.tick)
            stats = room.loop.stats
            late.add_metric([name], stats.late)
            dropped.add_metric([name], stats.dropped)
            tick_time.add_metric([name], room.tick_times.buckets(), room.tick_times.total)
            p99.add_metric([name], stats.duration_percentiles(99)[0])
            cpu_p99.add_metric([name], stats.cpu_percentiles(99)[0])
            traffic = server.router.traffic.get(name)
            if traffic is not None:
                packets.add_metric([name, "in"], traffic.packets_in)
                packets.add_metric([name, "out"], traffic.packets_out)
                nbytes.add_metric([name, "in"], traffic.bytes_in)
                nbytes.add_metric([name, "out"], traffic.bytes_out)
            session = room.mode.session.stats()
            for reason, count in {**session["dropped"], **{f"denied_{k}": v for k, v in session["denied"].items()}}.items():
                drops.add_metric([name, reason], count)
            desyncs.add_metric([name], room.desyncs)
            players.add_metric([name], int(room.mode.present.sum()))
            spectators.add_metric([name], sum(1 for p in room.mode.peers.values() if p.slot < 0))
            for state, count in room.seat_report().items():
                if state != "load":
                    seats.add_metric([name, state], count)
        yield from (info, ticks, late, dropped, tick_time, p99, cpu_p99, packets, nbytes, drops, desyncs, players, spectators, seats)

        yield GaugeMetricFamily("ticksync_rooms", "Rooms on this server", value=len(server.rooms))
        tpackets = CounterMetricFamily("ticksync_packets", "Datagrams through a transport", labels=["transport", "direction"])
        tbytes = CounterMetricFamily("ticksync_bytes", "Bytes through a transport", labels=["transport", "direction"])
        tdrops = CounterMetricFamily("ticksync_drops", "Datagrams dropped before any room saw them", labels=["where", "reason"])
        for kind, transport in (("udp", server.udp), ("ws", server.ws)):
            if transport is None:
                continue
            s = transport.stats()
            tpackets.add_metric([kind, "in"], s["received"])
            tpackets.add_metric([kind, "out"], s["sent"])
            tbytes.add_metric([kind, "in"], s["bytes_received"])
            tbytes.add_metric([kind, "out"], s["bytes_sent"])
            for reason, count in s["dropped"].items():
                tdrops.add_metric([kind, reason], count)
        router = server.router
        for reason, count in {**router.dropped, **{f"denied_{k}": v for k, v in router.denied.items()}}.items():
            tdrops.add_metric(["router", reason], count)
        yield from (tpackets, tbytes, tdrops)


def registry_for(server: "TickServer") -> CollectorRegistry:
    """A registry of its own for ``server`` (not the process-wide default)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServerCollector(server))
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
