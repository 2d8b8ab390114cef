// Unit harness for netcode/server/web/ticksync.js, driven by tests/test_web_client.py.
//
// Reads {"ops": [{op, ...}, ...]} as JSON on stdin, runs each op against the browser module
// and prints one JSON array of results on stdout (BigInts as decimal strings, bytes as hex).
// The Python side builds the inputs with netcode's own code and compares exactly, so the
// two implementations of the protocol are checked against each other, not against a copy.

import {
  EntropyCoding, GameSchema, fromBase64, parseModel, Session, StampedInputs, aeadKey, applyExtras, applyPart, decodePart, handshakeProof, motionCodes, openPacket, predict, readColumn, packRequest, packRun,
  packSessionHeader, packSsInput, parseAccepted, parseChallenge, parseDenied, parseSnapshotPrefix, parseStateSyncInfo, ProtocolError, Reader, sealPacket,
  sessionKeys, splitToken, tokenFromText, unpackUint, unzigzag,
} from "../../netcode/server/web/ticksync.js";
import { Bodies, extrapolated, standing, turned } from "../../netcode/server/web/bodies.js";

const hex = (b) => Buffer.from(b).toString("hex");
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));

// fn's result; an error of class Kind becomes one (what ``as`` makes of it), any other is thrown.
function catching(Kind, as, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Kind) return as(e);
    throw e;
  }
}

const caught = (fn) => catching(ProtocolError, (e) => ({ error: e.reason }), fn);

async function caughtAsync(fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e.reason };
    throw e;
  }
}

function partJson(p, columns) {
  const rows = (ids, cols) => ids.map((_, j) => Array.from({ length: columns }, (_, c) => cols[c][j]));
  return {
    tick: p.tick, base: p.base, index: p.index, count: p.count, lo: p.lo, hi: p.hi,
    predictor: p.predictor, extras: p.extras ? hex(p.extras) : null,
    extras_delta: p.extrasDelta ? { at: p.extrasDelta.at, bytes: hex(p.extrasDelta.bytes) } : null, destroy: p.destroy, create: p.create, update: p.update,
    create_codes: rows(p.create, p.createCodes), update_delta: rows(p.update, p.updateDelta),
  };
}

// An op's decoders, as a room's schema makes them: its EntropyCoding (o.coding, or none) and
// Bodies (o.bodies, or none), whose box guesses heights again in the coding's undo.
function decoders(o) {
  const coding = o.coding ? new EntropyCoding(o.coding) : null;
  const bodies = o.bodies ? new Bodies(o.bodies, o.columns) : null;
  if (bodies && coding && bodies.box !== null) coding.refine = bodies;
  return { coding, bodies };
}

const OPS = {
  unpack: (o) => caught(() => Array.from(unpackUint(bytes(o.hex), o.count, o.width))),
  decode_part: (o) => caught(() => partJson(decodePart(bytes(o.hex), o.capacity, o.columns, o.extras_size), o.columns)),
  column: (o) => caught(() => { const r = new Reader(bytes(o.hex)); const v = Array.from(readColumn(r, o.count)); r.done(); return v; }),
  // Parts applied one after another to a copy of (codes, view, extras): a snapshot rebuilt
  // from its baseline. With ``pred`` ({tick, codes, view}, ``smooth`` per column) and parts
  // that name a predictor, the codes start where predict() expects them, as the client's do.
  // With ``coding`` (SnapshotCoding.describe()) the parts are entropy-coded; with ``bodies``
  // (the schema's replication.predictor.bodies), the engine's rigid-body predictor is used
  // instead of predict(). ``shared``: decoders() made before, else this op's own.
  apply: (o, shared = null) => caught(() => {
    const { coding, bodies } = shared ?? decoders(o);
    const parts = o.parts.map((h) => decodePart(bytes(h), o.capacity, o.columns, o.extras_size, coding));
    let codes = Float64Array.from(o.codes), extras = o.extras ? bytes(o.extras) : null, motion = null;
    const view = Uint8Array.from(o.view), first = parts[0];
    if (first.predictor !== null) {
      const predCodes = Float64Array.from(o.pred.codes), predView = Uint8Array.from(o.pred.view);
      if (coding) motion = motionCodes(codes, view, predCodes, predView, o.columns);
      codes = bodies
        ? bodies.predict(codes, view, predCodes, predView, first.tick, first.base, first.predictor)
        : predict(codes, view, predCodes, predView, first.tick, first.base, first.predictor, Uint8Array.from(o.smooth));
    }
    // Carried models (o.carry): start from o.start ({probs, seen}, or null: the spec's), and
    // say where the model ended.
    const start = o.start ? { probs: Uint32Array.from(o.start.probs), seen: Uint8Array.from(o.start.seen) } : null;
    const end = o.carry ? coding.carried() : null;
    for (const part of parts) {
      applyPart(part, codes, view, o.columns, coding, motion, start, end);
      extras = applyExtras(part, extras);
    }
    const out = { codes: Array.from(codes), view: Array.from(view), extras: extras ? hex(extras) : null };
    if (end) out.end = { probs: Array.from(end.probs), seen: Array.from(end.seen) };
    return out;
  }),
  // "apply" ops (o.ops) one after another with one set of decoders (the first op's), as a
  // page's client decodes snapshot after snapshot: each must rebuild what it would alone.
  apply_seq: (o) => {
    const shared = decoders(o.ops[0]);
    return o.ops.map((op) => OPS.apply(op, shared));
  },
  // Each of o.parts applied on its own to o's tables, as "apply" applies one (the fuzz's
  // mutated parts): an exception other than a ProtocolError is reported as {thrown}, not thrown.
  // One set of decoders decodes them all, as a page's client decodes every packet: the
  // scratch a part leaves in them (one refused half way, too) must not change the next's.
  apply_each: (o) => {
    const shared = decoders(o);
    return o.parts.map((h) => catching(Error, (e) => ({ thrown: `${e.name}: ${e.message}` }), () => OPS.apply({ ...o, parts: [h] }, shared)));
  },
  // A trained coder model's file (base64, as the room's schema carries it) for a table's shape.
  model: (o) => caught(() => {
    const m = parseModel(fromBase64(o.b64), o.fields, o.groups);
    return { layout: m.layout, probs: Array.from(m.probs), seen: Array.from(m.seen) };
  }),
  prefix: (o) => parseSnapshotPrefix(new Reader(bytes(o.hex))),
  pack_run: (o) => hex(packRun(o.first, o.records.map((r) => Uint8Array.from(r)))),
  ss_input: (o) => hex(packSsInput(o.slot, o.ack, o.view_delay, o.first === undefined ? null : [o.first, o.records.map((r) => Uint8Array.from(r))])),
  request: (o) => hex(packRequest({
    nonce: BigInt(o.nonce), fingerprint: BigInt("0x" + o.fingerprint), name: o.name, version: o.version,
    token: bytes(o.token), cookieTime: o.cookie_time, cookie: o.cookie ? bytes(o.cookie) : undefined, proof: o.proof ? bytes(o.proof) : undefined,
  })),
  // The sealing (WebCrypto): a client token's parts, the handshake proof, session keys,
  // a packet sealed and opened with a raw AES-256 key.
  split_token: (o) => caught(() => { const t = splitToken(bytes(o.hex)); return { wire: hex(t.wire), c2s: hex(t.c2s), s2c: hex(t.s2c) }; }),
  proof: async (o) => hex(await handshakeProof(bytes(o.c2s), BigInt(o.nonce), o.cookie_time, bytes(o.cookie))),
  session_keys: async (o) => { const k = await sessionKeys(bytes(o.c2s), bytes(o.s2c), BigInt(o.nonce), o.session_id); return { c2s: hex(k.c2s), s2c: hex(k.s2c) }; },
  seal: async (o) => hex(await sealPacket(await aeadKey(bytes(o.key)), o.counter, bytes(o.hex))),
  open: (o) => caughtAsync(async () => hex(await openPacket(await aeadKey(bytes(o.key)), o.counter, bytes(o.hex)))),
  session_header: (o) => hex(packSessionHeader(o.type, o.session_id, o.seq, o.ack, o.bits, o.delay)),
  challenge: (o) => { const c = parseChallenge(bytes(o.hex)); return { nonce: c.nonce, cookie_time: c.cookieTime, cookie: hex(c.cookie) }; },
  accepted: (o) => { const a = parseAccepted(bytes(o.hex)); return { nonce: a.nonce, session_id: a.sessionId, slot: a.slot, epoch: a.epoch, info: hex(a.info) }; },
  denied: (o) => parseDenied(bytes(o.hex)),
  ss_info: (o) => parseStateSyncInfo(bytes(o.hex)),
  token: (o) => hex(tokenFromText(o.text)),
  // A stream of session packets through the replay window; then the header we would send.
  window: (o) => {
    const s = new Session(o.session_id, 100.0);
    const accepted = o.packets.map((h) => caught(() => (s.unwrap(bytes(h), 100.0), true)));
    return { accepted, header: hex(s.wrap(0x10, new Uint8Array(0), 100.0)) };
  },
  // Stamps (first, last, record byte) in order, then the run unacked after ``applied``.
  unacked: (o) => {
    const inputs = new StampedInputs(1, 64);
    for (const [first, last, value] of o.stamps) inputs.stamp(first, last, new Uint8Array([value]));
    const run = inputs.unacked(o.applied);
    return run && [run[0], run[1].map((r) => r[0])];
  },
  encode_input: (o) => hex(new GameSchema(o.schema).encodeInput(o.values)),
  decode_input: (o) => new GameSchema(o.schema).decodeInput(bytes(o.hex)),
  dequantize: (o) => {
    const s = new GameSchema(o.schema), f = s.field(o.field);
    return o.codes.map((c) => s.dequantize(f, c));
  },
  extras: (o) => new GameSchema(o.schema).decodeExtras(bytes(o.hex)),
  // bodies.js on flat tables (o.base etc.: rows x o.columns codes, row-major); ``out`` starts
  // as o.out (the baseline's copy by default) and is returned whole. A RangeError (bad
  // parameters, where Python raises a ValueError) is reported as {range_error}.
  extrapolated: (o) => rangeChecked(() => {
    const out = Float64Array.from(o.out ?? o.base);
    const moved = extrapolated(Float64Array.from(o.base), Float64Array.from(o.older), o.columns, o.c0, o.c1, o.num, o.den, out,
      o.rows ? Uint8Array.from(o.rows) : null, o.low ?? null, o.slow ?? null, o.aloft ?? null);
    return { moved, out: Array.from(out) };
  }),
  turned: (o) => rangeChecked(() => {
    const out = Float64Array.from(o.out ?? o.base);
    const moved = turned(Float64Array.from(o.base), Float64Array.from(o.older), o.columns, o.col, o.turns, o.still, o.scale, out,
      o.rows ? Uint8Array.from(o.rows) : null, o.aloft ?? null);
    return { moved, out: Array.from(out) };
  }),
  standing: (o) => rangeChecked(() => {
    const out = Float64Array.from(o.out ?? o.expected);
    standing(Float64Array.from(o.expected), Float64Array.from(o.known), o.columns, o.rot, o.z, o.below, o.half, o.ground, o.scale, out);
    return Array.from(out);
  }),
};

const rangeChecked = (fn) => catching(RangeError, (e) => ({ range_error: e.message }), fn);

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { ops } = JSON.parse(input);
const results = [];
for (const o of ops) {
  const fn = OPS[o.op];
  if (!fn) throw new Error(`unknown op ${o.op}`);
  results.push(await fn(o));
}
process.stdout.write(JSON.stringify(results, (_, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n");
