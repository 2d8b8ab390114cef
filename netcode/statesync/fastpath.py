"""The state-sync server's hottest packet, compiled: an established client's SS_INPUT.

A 100-client room at 60 Hz receives 6000 of these a second. :func:`ss_input` handles
one without the general path's dozen Python calls, and :func:`ss_input_run` runs it over
a polled socket's batch without a Python call each.

It checks everything the packet needs (header, session, a strictly newer sequence, the
payload's shape, the flood guard, the input window) without changing anything, and
returns False on any doubt, so the general path handles that packet from scratch with its
full validation and its counted drops. The rules it applies are not copies: the
connection's bookkeeping is ``Connection.unwrap`` and the input run is
``InputBuffer.put_run``, called as C functions (see ``fastpath.pxd``). What is still its
own is the state-sync peer's part (the flood guard, the snapshot ack, the view delay's
limit), which mirrors ``StateSyncServer.on_payload``; ``tests/test_fastpath.py`` replays
the same traffic, hostile packets included, through servers with and without it and
compares every field. (Issue 10's next step: compile the peer record and the session's
receive path, and let this module go.)

Built by ``setup.py`` when a C compiler and Cython are there (``pip install`` does it);
without them the general path runs alone. ``TICKSYNC_PURE=1`` turns it off at import.
"""

import math

import cython

from netcode.session.connection import Connection
from netcode.errors import ProtocolError
from netcode.mode.inputs import InputBuffer, scan_run
from netcode.statesync.wire import IN_INPUTS, NO_ACK
from netcode.session.wire import ACK_VALID, MAX_PACKET, PROTOCOL_ID, PROTOCOL_VERSION, SESSION_HEADER_SIZE, PacketType

compiled = cython.compiled

_TYPE_BYTE = int(PacketType.SS_INPUT) | ACK_VALID
_SS_HEAD = 7  # slot, flags, snapshot ack (u32), view delay


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _u16(d: bytes, i: cython.Py_ssize_t) -> cython.uint:
    return d[i] | (d[i + 1] << 8)


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _u32(d: bytes, i: cython.Py_ssize_t) -> cython.ulonglong:
    return d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (cython.cast(cython.ulonglong, d[i + 3]) << 24)


@cython.cclass
class _Context:
    """What the fast path reads of a server for every packet, gathered once per server
    (each member is fixed for the server's life: arrays and dicts are changed in place,
    never replaced). The view delays and the history's
    ticks are typed views, so they are read and written as C arrays."""

    by_addr: dict
    session_counters: object
    peers: dict
    rate: cython.double
    per_client: cython.bint
    history_ticks: cython.longlong[:]
    depth: cython.longlong
    itemsize: cython.Py_ssize_t
    max_ahead: cython.longlong
    inputs: InputBuffer
    view_items: cython.longlong[:]
    max_view_delay: cython.double
    tick_rate: cython.double

    def __init__(self, server):
        session, inputs, history, config = server.session, server.inputs, server.history, server.config
        self.by_addr = session._by_addr
        self.session_counters = session.counters
        self.peers = server.peers
        self.rate = float(config.input_packets_per_second)
        self.per_client = server.per_client
        self.history_ticks = history.ticks
        self.depth = history.depth
        self.itemsize = server.itemsize
        self.max_ahead = inputs.max_ahead
        self.inputs = inputs
        self.view_items = server._view_delay
        self.max_view_delay = float(config.max_view_delay)
        self.tick_rate = float(server.tick_rate)


def _context(server) -> _Context:
    ctx = server.fast_cache
    if ctx is None:
        ctx = server.fast_cache = _Context(server)
    return ctx


@cython.locals(
    n=cython.Py_ssize_t, slot=cython.longlong, pslot=cython.longlong, sack=cython.ulonglong, view=cython.longlong,
    rate=cython.double, depth=cython.longlong, max_ahead=cython.longlong, tokens=cython.double, first=cython.longlong,
    cnt=cython.Py_ssize_t, end=cython.Py_ssize_t, itemsize=cython.Py_ssize_t, current=cython.longlong,
    late=cython.longlong, take_ack=cython.bint, limit=cython.longlong,
)
@cython.ccall
def ss_input(ctx: _Context, server, data: bytes, addr, now: cython.double) -> cython.bint:
    """Handle ``data`` from ``addr`` if it is an established player's ordinary SS_INPUT
    and return True; return False, having changed nothing, for anything else. ``ctx`` is
    ``_context(server)``."""
    # -- check: the header, the session, the sequence ------------------------------------
    n = len(data)
    if n < SESSION_HEADER_SIZE + _SS_HEAD or n > MAX_PACKET:
        return False
    if _u16(data, 0) != PROTOCOL_ID or data[2] != PROTOCOL_VERSION or data[3] != _TYPE_BYTE:
        return False
    itemsize = ctx.itemsize
    rate = ctx.rate
    depth = ctx.depth
    max_ahead = ctx.max_ahead
    found = ctx.by_addr.get(addr)
    if found is None:
        return False
    conn: Connection = found
    if _u32(data, 4) != conn.session_id or not conn.is_newer(_u16(data, 8)):
        return False  # another session, a duplicate or an older packet: the general path decides

    # -- check: the payload ---------------------------------------------------------------
    p: cython.Py_ssize_t = SESSION_HEADER_SIZE
    slot = data[p]
    if data[p + 1] != IN_INPUTS:
        return False
    sack = _u32(data, p + 2)
    view = data[p + 6]
    peer = ctx.peers.get(conn.id)
    if peer is None:
        return False
    pslot = peer.slot
    if pslot < 0 or slot != pslot:
        return False
    tokens = peer.tokens + (now - peer.last_input_at) * rate
    if tokens > rate:
        tokens = rate
    if tokens < 1.0:
        return False
    current = server.tick
    take_ack = False
    if sack != NO_ACK:
        if sack > current:
            return False
        if sack > peer.acked:
            if ctx.per_client:
                return False
            take_ack = ctx.history_ticks[sack % depth] == sack  # SnapshotHistory.has
    q: cython.Py_ssize_t = p + _SS_HEAD
    try:
        run = scan_run(data, q, itemsize)
    except ProtocolError:
        return False
    first, cnt, end = run
    if end != n or first + cnt - 1 > current + max_ahead:
        return False

    # -- apply, in the general path's order ------------------------------------------------
    session_counters = ctx.session_counters
    session_counters.received += 1
    session_counters.bytes_received += n
    conn.unwrap(data, now)  # sequence, acks, RTT, the connection's counters
    # StateSyncServer.on_payload
    peer.tokens = tokens - 1.0
    peer.last_input_at = now
    if take_ack:
        peer.acked_before = peer.acked
        peer.acked = sack
    late = ctx.inputs.put_run(pslot, data, q, current)
    if late:
        peer.counters["late_inputs"] += late
    # Lag compensation's limit, as on_payload refreshes it
    if view > peer.view_limit or not peer.inputs_since_limit:
        limit = math.ceil((conn.rtt.rtt + ctx.max_view_delay) * ctx.tick_rate)
        peer.view_limit = limit
        if view > limit:
            view = limit
    peer.inputs_since_limit = (peer.inputs_since_limit + 1) % 64
    ctx.view_items[pslot] = view
    return True


@cython.locals(i=cython.Py_ssize_t, n=cython.Py_ssize_t, ctx=_Context)
def ss_input_run(server, batch: list, start: cython.Py_ssize_t, errors: list) -> cython.Py_ssize_t:
    """:func:`ss_input` over ``batch[start:]`` (``(data, addr, now)`` items) while it takes
    them; the index of the first one it declined (``len(batch)``: all taken). A datagram
    whose handling raised (a bug) goes to ``errors`` and counts as taken."""
    n = len(batch)
    i = start
    ctx = _context(server)
    while i < n:
        item = batch[i]
        data = item[0]
        if type(data) is not bytes:
            return i
        try:
            if not ss_input(ctx, server, data, item[1], item[2]):
                return i
        except Exception as exc:
            errors.append(exc)
        i += 1
    return n
