"""ticksync netcode: what a game author and a server embedder import, from one place::

    from netcode import TickServer, RoomConfig, run_bots, mint_token

The errors are here at once; every other name is loaded on first use (PEP 562), so
``import netcode`` imports neither aiohttp nor asyncio nor numpy, and the sans-IO layers,
which import their siblings directly and never this facade, pay nothing for it (any
``import netcode.session.wire`` runs this file first).

Lower-level pieces (the session layer, wire formats, the transport hub, the dashboard)
stay in their modules: ``netcode.session``, ``netcode.transport.hub`` and so on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from netcode._build import install_source_first
from netcode.errors import ProtocolError, TicksyncError, UsageError

# Before any compiled module is imported: a refused build (TICKSYNC_PURE=1, stale) runs
# from its source instead.
install_source_first()

# public name -> module that defines it
_LAZY = {
    # the product: rooms on real tick loops, over UDP + WebSocket + dashboard
    "TickServer": "netcode.server.tickserver",
    "RoomConfig": "netcode.server.tickserver",
    "MODES": "netcode.server.tickserver",
    # the asyncio client and bots
    "GameClient": "netcode.client",
    "ClientReport": "netcode.client",
    "run_client": "netcode.client",
    "run_bots": "netcode.client",
    "parse_url": "netcode.client",
    # the sans-IO mode servers and clients, and their configs
    "LockstepServer": "netcode.lockstep.server",
    "LockstepConfig": "netcode.lockstep.server",
    "LockstepClient": "netcode.lockstep.client",
    "LockstepRunner": "netcode.lockstep.client",
    "StartState": "netcode.lockstep.client",
    "SaveState": "netcode.lockstep.client",
    "LoadState": "netcode.lockstep.client",
    "AdvanceTick": "netcode.lockstep.client",
    "ReportHash": "netcode.lockstep.client",
    "StateSyncServer": "netcode.statesync.server",
    "StateSyncConfig": "netcode.statesync.server",
    "StateSyncClient": "netcode.statesync.client",
    "RemoteView": "netcode.statesync.client",
    "SessionConfig": "netcode.session.connection",
    # connect tokens
    "mint_token": "netcode.session.token",
    "verify_token": "netcode.session.token",
    "token_to_text": "netcode.session.token",
    "token_from_text": "netcode.session.token",
    "TokenClaims": "netcode.session.token",
    "PLAYER": "netcode.session.token",
    "SPECTATOR": "netcode.session.token",
    # events the protocol objects queue
    "Event": "netcode.events",
    "EventQueue": "netcode.events",
    "Connected": "netcode.events",
    "Disconnected": "netcode.events",
    "Denied": "netcode.events",
    "PlayerJoined": "netcode.events",
    "PlayerLeft": "netcode.events",
    "DesyncDetected": "netcode.events",
    "Resynced": "netcode.events",
    "ServerGone": "netcode.events",
    "RoomMoved": "netcode.events",
    # the seeded network simulator and its virtual-time driver
    "NetSim": "netcode.sim.network",
    "LinkConfig": "netcode.sim.network",
    "LinkStats": "netcode.sim.network",
    "VirtualNetwork": "netcode.sim.driver",
    # transports: drive any endpoint over real sockets
    "Endpoint": "netcode.endpoint",
    "Limits": "netcode.transport.hub",
    "open_udp_server": "netcode.transport.udp",
    "open_udp_client": "netcode.transport.udp",
    "open_ws_server": "netcode.transport.ws",
    "open_ws_client": "netcode.transport.ws",
    "ws_server_address": "netcode.transport.ws",
    "WsAddress": "netcode.transport.ws",
}

__all__ = ["TicksyncError", "ProtocolError", "UsageError", *_LAZY]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from netcode.client import ClientReport, GameClient, parse_url, run_bots, run_client
    from netcode.endpoint import Endpoint
    from netcode.events import (
        Connected,
        Denied,
        DesyncDetected,
        Disconnected,
        Event,
        EventQueue,
        PlayerJoined,
        PlayerLeft,
        Resynced,
        RoomMoved,
        ServerGone,
    )
    from netcode.lockstep.client import AdvanceTick, LoadState, LockstepClient, LockstepRunner, ReportHash, SaveState, StartState
    from netcode.lockstep.server import LockstepConfig, LockstepServer
    from netcode.server.tickserver import MODES, RoomConfig, TickServer
    from netcode.session.connection import SessionConfig
    from netcode.session.token import PLAYER, SPECTATOR, TokenClaims, mint_token, token_from_text, token_to_text, verify_token
    from netcode.sim.driver import VirtualNetwork
    from netcode.sim.network import LinkConfig, LinkStats, NetSim
    from netcode.statesync.client import RemoteView, StateSyncClient
    from netcode.statesync.server import StateSyncConfig, StateSyncServer
    from netcode.transport.hub import Limits
    from netcode.transport.udp import open_udp_client, open_udp_server
    from netcode.transport.ws import WsAddress, open_ws_client, open_ws_server, ws_server_address


def __getattr__(name: str) -> Any:
    # Unknown names raise AttributeError, which `from netcode import compiled` relies on
    # to fall back to importing the submodule.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
