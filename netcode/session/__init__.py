"""The session layer, sans-IO: packet prefix and session header, connect tokens, the
stateless handshake, and established connections (sequence numbers, acks, RTT, replay
window, keepalive, timeout). Both modes run on top of it."""

from netcode.session.base import Received, SessionEndpoint
from netcode.session.client import ClientState, SessionClient
from netcode.session.connection import Connection, Counters, RttEstimator, SessionConfig
from netcode.session.server import Admission, Refused, SessionServer

__all__ = [
    "Admission",
    "ClientState",
    "Connection",
    "Counters",
    "Received",
    "Refused",
    "RttEstimator",
    "SessionClient",
    "SessionConfig",
    "SessionEndpoint",
    "SessionServer",
]
