"""Builders shared by the protocol tests: a game identity, tokens, a session pair on the simulator."""

from __future__ import annotations

import random

from demos.arena import GAME as ARENA
from netcode.handshake import GameIdentity
from netcode.netsim import LinkConfig, NetSim
from netcode.session import Admission, Refused, SessionClient, SessionServer
from netcode.simdriver import VirtualNetwork
from netcode.token import mint_token

SECRET = b"test-secret-0123456789abcdef"
ROOM = "default"
IDENTITY = GameIdentity.of(ARENA)


def token(slot: int = -1, *, user: str = "", expires: float = 10_000.0, secret: bytes = SECRET, room: str = ROOM, role: int = 0) -> bytes:
    return mint_token(secret, room, expires=expires, slot=slot, user=user, role=role, nonce=b"\0" * 8)


class SlotTable:
    """A minimal admit policy: token slot if free, else the lowest free slot."""

    def __init__(self, slots: int = 8):
        self.slots = slots
        self.owner: dict[int, int] = {}

    def admit(self, claims, addr, now):
        slot = claims.slot
        if slot == -1:
            free = [s for s in range(self.slots) if s not in self.owner]
            if not free:
                raise Refused("room_full", "the room is full")
            slot = free[0]
        elif slot >= self.slots:
            raise Refused("refused", f"slot {slot} does not exist")
        elif slot in self.owner:
            raise Refused("slot_taken", f"slot {slot} is taken")
        self.owner[slot] = -1
        return Admission(slot=slot, info=b"info")


def session_pair(seed: int, link: LinkConfig | None = None, *, client_token: bytes | None = None, identity=IDENTITY):
    net = VirtualNetwork(NetSim(seed, link or LinkConfig()), start=100.0)
    received = {"server": [], "client": []}
    table = SlotTable()
    server = SessionServer(
        game=IDENTITY,
        secret=SECRET,
        admit=table.admit,
        on_payload=lambda c, p, pl, n: received["server"].append((c.id, p, bytes(pl))),
        rng=random.Random(seed),
    )
    client = SessionClient(
        server="server",
        token=client_token if client_token is not None else token(),
        game=identity,
        on_payload=lambda c, p, pl, n: received["client"].append((p, bytes(pl))),
        rng=random.Random(seed + 1),
    )
    net.add("server", server)
    net.add("client", client)
    return net, server, client, received
