"""A trained starting model for the entropy coder (netcode.statesync.training): a model
learned from encodes saves and loads as bytes (anything else is refused, saying why),
a packet coded with a model decodes exactly with it and not without it (the spec's
identity tells them apart), training is deterministic, hostile tables never crash a
decoder that starts from a model, and the compiled coder trains and codes as its source
run as Python does."""

import base64
import dataclasses
import hashlib
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.replication import Replication
from netcode.errors import ProtocolError
from netcode.server.dashboard import _coding
from netcode.statesync import rangecoder
from netcode.statesync.training import CoderModel, Trainer
from test_snapshot_entropy import make_schema, receive, turn, world

from netcode.statesync.snapshot import encode_snapshot

ROOT = Path(__file__).resolve().parent.parent
N = 120


def encode(schema, rng_seed):
    """One update of N entities from a baseline, with the predictor; what it needs to decode."""
    rng = np.random.default_rng(rng_seed)
    older = world(rng, N)
    base = turn(rng, older, 0.6)
    codes = turn(rng, base, 0.4)
    view = np.ones(N, bool)
    parts = encode_snapshot(42, codes, view, b"\0" * 16, budget=1150, base_tick=40, base_codes=base, base_view=view,
                            base_extras=b"\0" * 16, predictor=(38, older, view, schema.smooth), coding=schema.coding)
    return parts, codes, (base, view, older, view)


def trained(seeds=range(8), layout=0) -> CoderModel:
    schema = make_schema(N)
    trainer = Trainer(schema, layout)
    with trainer:
        for seed in seeds:
            encode(schema, seed)
    assert schema.coding.tally is None  # counting stops with the block
    return trainer.model(settled=50)  # a few encodes: some contexts still count as settled


def with_model(model):
    return make_schema(N, model=model)


@pytest.fixture(scope="module")
def model():
    return trained()


def test_the_tally_counts_every_decision_in_its_context():
    """An update table of unchanged rows is one changed flag (a 0) per row and group."""
    schema = make_schema(N)
    c = schema.coding
    tally = np.zeros(2 * rangecoder.contexts(c.table_sets, c.groups), np.int64)
    motion = np.zeros((N, schema.columns), np.int32)
    plain = rangecoder.encode_table(np.zeros((N, schema.columns), np.int64), c.table_groups, c.table_fields, motion, c.groups)
    counted = rangecoder.encode_table(np.zeros((N, schema.columns), np.int64), c.table_groups, c.table_fields, motion, c.groups, tally=tally)
    assert counted == plain  # counting changes nothing on the wire
    assert tally.sum() == tally[0::2].sum() == N * c.groups
    with pytest.raises(ValueError, match="tally"):
        rangecoder.encode_table(np.zeros((N, schema.columns), np.int64), c.table_groups, c.table_fields, motion, c.groups, tally=tally[:-2])


def test_a_model_round_trips_through_bytes_and_training_is_deterministic(model):
    data = model.to_bytes()
    again = CoderModel.from_bytes(data)
    assert again == model and again.to_bytes() == data
    assert np.array_equal(again.probs, model.probs) and np.array_equal(again.seen, model.seen)
    assert trained().to_bytes() == data  # the same encodes, the same model
    assert trained(range(8, 16)).to_bytes() != data  # it learned something from them
    assert model.seen.max() == 15 and model.seen.min() == 0  # busy contexts start settled, unused ones fresh
    assert not np.array_equal(model.probs, rangecoder.prior(model.fields, model.groups))


def varint(x: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    return bytes(out + bytes([x]))


def sealed(body: bytes) -> bytes:
    """A model file's bytes with their CRC-32 appended: hostile files that pass the check."""
    return body + zlib.crc32(body).to_bytes(4, "little")


def hostile_models(model) -> dict:
    """Files that are not a whole model of ``model``'s table in the one form it is written,
    each by what the refusal says (tests/test_web_client.py gives them to the browser)."""
    data = model.to_bytes()
    body = data[:-4]
    head = lambda entries, layout=model.layout, version=2: b"TSCM" + bytes([version, layout]) + struct.pack("<HHI", model.fields, model.groups, entries)
    prior = rangecoder.prior(model.fields, model.groups, model.layout)
    n = len(prior)
    return {
        "at least": data[:10],
        "not a coder model": sealed(b"XXXX" + body[4:]),
        "format version 1": sealed(head(0, version=1)),
        "context layout": sealed(head(0, layout=7)),
        "mismatch": data[:20] + bytes([data[20] ^ 1]) + data[21:],
        "truncated": sealed(body[:-1]),
        "truncated:": sealed(head(1) + b"\x85"),  # a varint cut short
        "past its": sealed(head(1) + varint(n) + b"\x00\x08"),
        "1..4095": sealed(head(1) + b"\x00" + (15 << 12).to_bytes(2, "little")),
        "repeats the default": sealed(head(1) + b"\x00" + int(prior[0]).to_bytes(2, "little")),
        "overlong": sealed(head(1) + b"\x80\x00" + b"\x00\x08"),
        "longer than": sealed(head(1) + b"\x80" * 5 + b"\x00\x00\x08"),
        "bytes after": sealed(body + b"\x00"),
        "cannot change": sealed(head(n + 1)),
    }


def test_a_corrupt_or_foreign_model_is_refused_saying_why(model):
    """Anything but a whole model in the one form to_bytes writes is a ValueError saying
    what is wrong (duplicate or unsorted contexts and out-of-range event counts cannot be
    written: entries are gaps, and a count is the u16's top 4 bits)."""
    data = model.to_bytes()
    for why, bad in hostile_models(model).items():
        with pytest.raises(ValueError, match=why.rstrip(":")):
            CoderModel.from_bytes(bad)
    # the far ends: the first and last contexts alone, and every context moved
    probs, seen = rangecoder.prior(model.fields, model.groups, model.layout).copy(), np.zeros(len(model.probs), np.uint8)
    probs[0], seen[-1] = 1, 15
    ends = CoderModel(model.fields, model.groups, probs, seen, model.layout)
    assert CoderModel.from_bytes(ends.to_bytes()) == ends and ends.to_bytes()[14:-4] == b"\x00\x01\x00" + varint(len(probs) - 2) + (int(probs[-1]) | 15 << 12).to_bytes(2, "little")
    probs = np.where(np.arange(len(probs)) % 2, 1, 4095)
    seen = np.full(len(probs), 15)
    full = CoderModel(model.fields, model.groups, probs, seen, model.layout)
    assert CoderModel.from_bytes(full.to_bytes()) == full and len(full.to_bytes()) == 14 + 3 * len(probs) + 4
    probs = model.probs.copy()
    probs[3] = 0  # a certain event would stall the coder on its surprise
    with pytest.raises(ValueError, match="1..4095"):
        CoderModel(model.fields, model.groups, probs, model.seen)
    # a model for another table shape, a model without entropy coding, a model of no kind
    other = CoderModel(model.fields + 1, model.groups, np.full(rangecoder.contexts(model.fields + 1, model.groups), 2048), np.zeros(rangecoder.contexts(model.fields + 1, model.groups)))
    with pytest.raises(ValueError, match="context sets"):
        with_model(other)
    with pytest.raises(ValueError, match="CRC-32"):
        with_model(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    spec = make_schema(N).replication
    with pytest.raises(ValueError, match="entropy"):
        dataclasses.replace(spec, coding="packed", predictor=None, model=data)
    with pytest.raises(TypeError, match="model"):
        dataclasses.replace(spec, model="cubes.model")


def test_a_packet_coded_with_a_model_decodes_with_it_only(model):
    schema, plain = with_model(model), make_schema(N)
    sizes = []
    for seed in range(20, 26):
        parts, codes, held = encode(schema, seed)
        got, _view, _extras = receive(schema, parts, *held)
        assert np.array_equal(got, codes)
        try:  # without the model: garbage or an error, never the frame
            wrong, _view, _extras = receive(plain, parts, *held)
            assert not np.array_equal(wrong, codes)
        except ProtocolError:
            pass
        sizes.append((sum(map(len, parts)), sum(map(len, encode(plain, seed)[0]))))
    with_, without = np.sum(sizes, axis=0)
    assert with_ < without  # trained on the same kind of traffic, it pays on new packets
    # Both ends compare specs by repr (the handshake fingerprint hashes it): the model is in it.
    assert repr(schema.replication) != repr(plain.replication)
    assert model.digest() in repr(schema.replication) and "model" not in repr(plain.replication)
    assert repr(schema.replication) != repr(with_model(trained(range(8, 16))).replication)
    assert repr(with_model(model.to_bytes()).replication) == repr(schema.replication)  # bytes or object alike
    # The browser client loads the model from the room's schema.
    assert base64.b64decode(schema.coding.describe()["model"]) == model.to_bytes() and plain.coding.describe()["model"] is None


def test_the_browser_is_given_a_spec_s_model(model):
    schema = make_schema(N, predictor=None, model=model)
    assert base64.b64decode(_coding(schema)["model"]) == model.to_bytes()
    assert "unsupported" not in _coding(make_schema(N, predictor=None))


def test_a_model_file_stores_only_what_training_moved(model):
    """Format 2 stores the contexts whose start differs from the hand-written prior's:
    an untrained model is its 18-byte header and check, a trained one one entry (a gap
    and a u16) per context it moved, and the coded packets are the same as with a model
    that is the whole table (what format 1 stored)."""
    fields, groups = model.fields, model.groups
    untrained = CoderModel(fields, groups, rangecoder.prior(fields, groups), np.zeros(len(model.probs)))
    assert len(untrained.to_bytes()) == 18
    moved = int(((model.probs != rangecoder.prior(fields, groups)) | (model.seen != 0)).sum())
    assert 0 < moved < len(model.probs) // 2
    assert 18 + 3 * moved <= len(model.to_bytes()) <= 18 + 5 * moved
    with_untrained, plain = with_model(untrained), make_schema(N)
    for seed in range(20, 23):
        assert encode(with_untrained, seed)[0] == encode(plain, seed)[0]


def test_a_model_with_richer_contexts_codes_and_trains_from_a_spec_with_another_model(model):
    """Context layout 1 (each value's class also by the largest class before it in its
    row's group) decodes exactly, and only with its own model; a trainer counts in its
    own layout whatever model the spec it records has, and leaves the spec's as it was."""
    rich = trained(layout=1)
    assert rich.layout == 1 and len(rich.probs) > len(model.probs)
    assert CoderModel.from_bytes(rich.to_bytes()) == rich
    schema, plain = with_model(rich), with_model(model)
    for seed in range(40, 44):
        parts, codes, held = encode(schema, seed)
        got, _view, _extras = receive(schema, parts, *held)
        assert np.array_equal(got, codes)
        assert parts != encode(plain, seed)[0]
    before = plain.coding.start
    trainer = Trainer(plain, layout=1)
    with trainer:
        for seed in range(8):
            encode(plain, seed)
    assert plain.coding.layout == 0 and plain.coding.start is before
    assert trainer.model(settled=50) == rich  # what is counted does not depend on where the coder started


def test_hostile_tables_never_crash_a_decoder_that_starts_from_a_model(model):
    schema = with_model(model)
    c = schema.coding
    rng = np.random.default_rng(5)
    for trial in range(300):
        rows = int(rng.integers(0, 60))
        motion = rng.integers(0, rangecoder.MOTIONS, (rows, schema.columns)).astype(np.int32)
        data = rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8).tobytes()
        try:
            out = c.decode_table(data, motion)
        except ProtocolError:
            continue
        # Whatever garbage decoded to is a table the same model codes and reads back.
        assert np.array_equal(c.decode_table(c.encode_table(out, motion), motion), out)


_PURE = """
import sys, hashlib
sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests']
import test_training as t
from netcode.statesync import rangecoder
assert rangecoder.compiled == (sys.argv[2] == 'compiled'), rangecoder.compiled
for layout in (0, 1):
    m = t.trained(layout=layout)
    s = t.with_model(m)
    print(m.digest(), hashlib.sha256(b''.join(b''.join(t.encode(s, seed)[0]) for seed in range(30, 34))).hexdigest())
"""


@pytest.mark.skipif(not rangecoder.compiled, reason="the compiled coder is not built here")
def test_the_compiled_coder_trains_and_codes_as_its_source_does():
    outs = []
    for mode in ("compiled", "pure"):
        env = {k: v for k, v in os.environ.items() if k != "TICKSYNC_PURE"}
        if mode == "pure":
            env["TICKSYNC_PURE"] = "1"
        done = subprocess.run([sys.executable, "-c", _PURE, str(ROOT), mode], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(done.stdout.split())
    assert outs[0] == outs[1] and len(outs[0]) == 4
