# cython: annotation_typing=False
"""The frame broadcast: on a send tick, each due client's LS_FRAMES packet, built from parts
clients share, sealed on its session and queued.

At 256 clients the loop runs 128 times a tick, so it is compiled (Cython's pure-Python mode,
``broadcast.pxd``) with the peer record and the session's outbox it calls as C functions;
the same source runs as plain Python where there is no compiler. What a client is sent
(which frames, keyframes) is the server's rule (:class:`~netcode.lockstep.server.LockstepServer`),
called back for the parts clients do not share; this only walks the clients.
"""

from __future__ import annotations

from netcode.lockstep.wire import pack_frames_header
from netcode.session.wire import PacketType

__all__ = ["FrameSender", "TALLY_EVERY"]

TALLY_EVERY = 16  # ticks between the input tallies a client is sent
_FRAMES = int(PacketType.LS_FRAMES)


class FrameSender:
    """Sends a lockstep server's frames to the clients whose turn it is."""

    def __init__(self, server, budget: int):
        self.server = server  # its frames, keyframes and input tallies
        self.peers = server.peers
        self.connections = server.session.connections
        self.outbox = server.session.outbox
        self.stats = server.stats_counters
        self.every = server.config.send_every
        self.redundancy = server.config.min_redundancy
        self.budget = budget

    def send(self, newest: int, first: int, phase: int, now: float) -> None:
        """Frames up to ``newest`` (the server holds ``first``..``newest``) to each client
        with ``conn_id % send_every == phase``: every client gets a packet every
        ``send_every`` ticks, and the clients are spread over those ticks."""
        server = self.server
        every = self.every
        floor = newest - self.redundancy
        outbox = self.outbox
        connections = self.connections
        runs: dict = {}  # (start, origin) -> the frames clients from there share
        heads: dict = {}  # input ack -> the frames header without a tally
        # Most clients hold the same frames and were acked the same inputs: the last key
        # is checked before the dicts.
        run_start = run_origin = head_ack = -2
        run = head = b""
        total = 0
        for peer in self.peers.values():
            if peer.conn_id % every != phase:
                continue
            conn = connections.get(peer.conn_id)
            if conn is None or peer.next_needed is None:
                continue  # the client has not said what it holds yet
            if peer.keyframe is not None:
                if server._send_keyframe_parts(peer, conn, now):
                    continue
            needed = peer.next_needed
            if needed < first:
                server._start_keyframe(peer)
                server._send_keyframe_parts(peer, conn, now)
                continue
            origin = peer.origin
            start = needed if needed < floor else floor
            if start < origin:
                start = origin
            if start < first:
                start = first
            if start != run_start or origin != run_origin:
                run_start, run_origin = start, origin
                run = runs.get((start, origin))
                if run is None:
                    run = runs[(start, origin)] = server._build_run(start, newest, origin, self.budget)
            # The input tally rides in one packet per TALLY_EVERY ticks, the clients
            # staggered by connection so no tick packs all of them.
            t = newest + peer.conn_id % TALLY_EVERY
            if peer.slot >= 0 and t // TALLY_EVERY != (t - every) // TALLY_EVERY:
                lead = pack_frames_header(newest, peer.input_ack, server.input_tally(peer.slot))
            else:
                ack = peer.input_ack
                if ack != head_ack:
                    head_ack = ack
                    head = heads.get(ack)
                    if head is None:
                        head = heads[ack] = pack_frames_header(newest, ack, None)
                lead = head
            total += len(lead) + len(run)
            # The header goes in front of the shared run as the packet is sealed: no
            # joined copy of the two per client.
            outbox.send(conn, _FRAMES, run, now, lead)
        self.stats["bytes_frames"] += total
