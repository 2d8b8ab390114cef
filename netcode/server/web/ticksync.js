// ticksync.js: the client side of the ticksync wire protocol, state-sync mode, for browsers.
//
// What it does: connects to a ticksync server over a WebSocket (one binary message carries
// exactly one packet, as one UDP datagram would), runs the handshake, keeps the session
// (sequence numbers, acks, replay window, RTT), sends the player's input every tick stamped
// onto a tick the server has not run yet, and rebuilds the server's snapshots (parts
// delta-decoded against the baseline they name) so a page can draw them, everyone else
// interpolated a little in the past.
//
// Why it looks like this: plain JavaScript ES modules (this one and wire.js), no build step
// and no dependencies, so it is also documentation of the protocol for browser developers.
// PROTOCOL.md specifies the bytes; the Python modules named in the comments do the same
// thing (netcode/session/endpoints.py, connection.py, snapshot.py, statesync_client.py, timesync.py).
// Nothing here knows a particular game: the column layout, the quantizers, the extras and
// the input record come from the room's schema (GET /api/rooms/{room}/schema).
//
// The bytes themselves (packet layouts, snapshot parts, bit unpacking) are in wire.js, the
// range-coded tables of entropy-coded parts in entropy.js, and the engine's rigid-body
// predictor (engine/bodies.py) in bodies.js; this module re-exports them: import
// everything from here.

import {
  ACCEPTED_PLAINTEXT, ACK_DELAY_UNIT, ACK_VALID, MAX_PACKET, MAX_RUN, NO_TICK, PROTOCOL_VERSION, ProtocolError, Reader, SESSION_HEADER, Type,
  aeadKey, applyExtras, applyPart, decodePart, handshakeProof, openPacket, packDisconnect, predict, packRequest, packSessionHeader,
  packSsInput, parseAccepted, parseChallenge, parseDenied, parseDisconnect, parseSnapshotPrefix, parseStateSyncInfo, sealPacket, seqDelta, sessionKeys,
  splitToken, tokenFromText,
} from "./wire.js";
import { EntropyCoding, motionCodes } from "./entropy.js";
import { Bodies } from "./bodies.js";

export * from "./wire.js";
export * from "./entropy.js";
export * from "./bodies.js";

const REPLAY_WINDOW = 256; // sequences behind the newest that may still arrive
const KEEPALIVE_EVERY = 0.25; // seconds of silence before we send a KEEPALIVE
const TIMEOUT = 5.0; // seconds without a packet: the server is gone
const CONNECT_TIMEOUT = 10.0;
const HANDSHAKE_RESEND = 0.25; // over a WebSocket nothing is lost on the way: slower than the UDP client's 0.1 s
const COOKIE_TTL = 10.0;

function randomU64() {
  const w = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(w[0]) << 32n) | BigInt(w[1]);
}

// -- the client's record of its inputs (netcode/mode/inputs.py) ---------------------------------------

/** What the client stamped, by tick: resent until the server has applied it, used to predict. */
export class StampedInputs {
  constructor(itemsize, size = 1024) {
    this.size = size;
    this.data = new Uint8Array(size * itemsize);
    this.itemsize = itemsize;
    this.ticks = new Float64Array(size).fill(-1);
    this.oldest = -1; // the first tick ever stamped: nothing before it to resend
    this.newest = -1;
  }
  /** Stamp ``record`` onto ticks first..last, never onto a tick stamped before. */
  stamp(first, last, record) {
    for (let t = Math.max(first, this.newest + 1, last - this.size / 2); t <= last; t++) {
      if (this.oldest < 0) this.oldest = t;
      this.data.set(record, (t % this.size) * this.itemsize);
      this.ticks[t % this.size] = t;
      this.newest = t;
    }
  }
  get(tick) {
    const i = tick % this.size;
    return tick >= 0 && this.ticks[i] === tick ? this.data.subarray(i * this.itemsize, (i + 1) * this.itemsize) : null;
  }
  /** [first tick, records] of everything after ``applied`` (at most 255), or null. The run
   * starts after the newest tick never stamped: a page that stalled while the server's clock
   * moved on skips ticks (nothing was decided for them, and a run has no holes). */
  unacked(applied) {
    let first = Math.max(applied + 1, this.newest - (MAX_RUN - 1), this.oldest);
    if (this.newest < 0 || first > this.newest) return null;
    const records = [];
    for (let t = this.newest; t >= first; t--) {
      const rec = this.get(t);
      if (!rec) { first = t + 1; break; }
      records.push(rec);
    }
    return records.length ? [first, records.reverse()] : null;
  }
}

// -- the session (netcode/session/connection.py) -------------------------------------------------------

/** Smoothed RTT and its mean deviation (RFC 6298 gains), plus the least seen. */
export class RttEstimator {
  constructor() { this.srtt = null; this.rttvar = 0; this.min = Infinity; this.last = 0; this.samples = 0; }
  sample(rtt) {
    if (rtt < 0) return;
    this.samples++;
    this.last = rtt;
    this.min = Math.min(this.min, rtt);
    if (this.srtt === null) { this.srtt = rtt; this.rttvar = rtt / 2; return; }
    this.rttvar += 0.25 * (Math.abs(this.srtt - rtt) - this.rttvar);
    this.srtt += 0.125 * (rtt - this.srtt);
  }
  get rtt() { return this.srtt === null ? 0.1 : this.srtt; }
  get jitter() { return this.rttvar; }
  /** Half the least RTT seen: queues only ever add delay. */
  get oneWay() { return (this.samples ? this.min : this.rtt) / 2; }
}

const SENT_RING = 1024;

/** One established session: sequence numbers out, acks and the replay window in, RTT; with
 * ``keys`` ({tx, rx}: AES-GCM CryptoKeys), every packet sealed and opened (``seal``, ``open``). */
export class Session {
  constructor(sessionId, now, keys = null) {
    this.sessionId = sessionId;
    this.keys = keys;
    this.sends = 0; // our send counter; the wire carries its low 16 bits
    this.sentTime = new Float64Array(SENT_RING);
    this.sentNo = new Float64Array(SENT_RING).fill(-1);
    this.latest = null; // newest sequence received, unwrapped to a growing count
    this.latestAt = now;
    this.seen = new Float64Array(REPLAY_WINDOW).fill(-1); // unwrapped sequences, by seq % 256
    this.peerAck = null;
    this.rtt = new RttEstimator();
    this.lastSend = now;
    this.lastRecv = now;
  }

  wrap(type, payload, now) {
    const seq = this.sends & 0xffff;
    let head;
    if (this.latest === null) {
      head = packSessionHeader(type, this.sessionId, seq, null, 0, 0);
    } else {
      let bits = 0;
      for (let i = 0; i < 32; i++) {
        const s = this.latest - 1 - i;
        if (s >= 0 && this.seen[s % REPLAY_WINDOW] === s) bits |= 1 << i;
      }
      const delay = Math.min(255, Math.max(0, Math.floor((now - this.latestAt) / ACK_DELAY_UNIT)));
      head = packSessionHeader(type, this.sessionId, seq, this.latest & 0xffff, bits, delay);
    }
    const packet = new Uint8Array(SESSION_HEADER + payload.length);
    packet.set(head);
    packet.set(payload, SESSION_HEADER);
    this.sentTime[this.sends % SENT_RING] = now;
    this.sentNo[this.sends % SENT_RING] = this.sends;
    this.sends++;
    this.lastSend = now;
    return packet;
  }

  /** ``wrap``, then sealed with our key (a Promise of the packet to send). */
  seal(type, payload, now) {
    const counter = this.sends, packet = this.wrap(type, payload, now);
    return this.keys ? sealPacket(this.keys.tx, counter, packet) : Promise.resolve(packet);
  }

  /** A packet from the server opened (header, then the payload in clear), before ``unwrap``
   * believes anything in it: the server's send counter is the one nearest our newest. */
  async open(bytes) {
    if (!this.keys) return bytes;
    if (bytes.length < SESSION_HEADER) throw new ProtocolError("truncated", "shorter than the session header");
    const seq = bytes[8] | (bytes[9] << 8);
    const counter = this.latest === null ? seq : Math.max(0, this.latest + seqDelta(seq, this.latest & 0xffff));
    return openPacket(this.keys.rx, counter, bytes);
  }

  /** The payload of a session packet from the server (opened), or a ProtocolError. */
  unwrap(bytes, now) {
    const r = new Reader(bytes, 4);
    if (bytes.length < SESSION_HEADER) throw new ProtocolError("truncated", "shorter than the session header");
    const sessionId = r.u32(), seq = r.u16(), ack = r.u16(), ackBits = r.u32(), ackDelay = r.u8();
    if (sessionId !== this.sessionId) throw new ProtocolError("bad_session", "another session's packet");
    this.accept(seq, now);
    if (bytes[3] & ACK_VALID) this.processAck(ack, ackBits, now - ackDelay * ACK_DELAY_UNIT);
    this.lastRecv = now;
    return bytes.subarray(SESSION_HEADER);
  }

  /** The replay window: a sequence seen before, or 256 or more behind the newest, is dropped. */
  accept(seq, now) {
    if (this.latest === null) {
      this.latest = seq;
    } else {
      const d = seqDelta(seq, this.latest & 0xffff);
      if (d === 0) throw new ProtocolError("duplicate", `sequence ${seq} again`);
      if (d < 0) {
        if (-d >= REPLAY_WINDOW) throw new ProtocolError("stale", `sequence ${seq} is ${-d} behind`);
        const s = this.latest + d;
        if (this.seen[s % REPLAY_WINDOW] === s) throw new ProtocolError("duplicate", `sequence ${seq} again`);
        this.seen[s % REPLAY_WINDOW] = s;
        return;
      }
      this.latest += d;
    }
    this.seen[this.latest % REPLAY_WINDOW] = this.latest;
    this.latestAt = now; // ack delay is measured from the newest packet's arrival
  }

  /** An RTT sample when the server acks a packet of ours for the first time. ``now`` is the
   * arrival time less the server's ack delay (its send schedule is not network delay).
   * ``ackBits`` say which earlier packets arrived: loss statistics, which this client skips. */
  processAck(ack, ackBits, now) {
    if (this.sends === 0) return;
    const newest = this.sends - 1, back = (newest - ack) & 0xffff;
    if (back >= SENT_RING) return; // an ack of something we never sent
    if (this.peerAck !== null && seqDelta(ack, this.peerAck) <= 0) return; // nothing newer
    this.peerAck = ack;
    const n = newest - back, i = n % SENT_RING;
    if (n >= 0 && this.sentNo[i] === n) {
      this.rtt.sample(now - this.sentTime[i]);
      this.sentNo[i] = -1;
    }
  }
}

// -- time sync (netcode/mode/timesync.py) ------------------------------------------------------------

// The recent-floor rule and its constants are timesync.py's (its docstring says why these
// figures); tests/test_timesync.py checks that both files hold the same numbers and that both
// classes give the same estimates for the same samples.
export const FLOOR_WINDOW = 2.0; // seconds of samples a floor is kept at most (a silence counts as FLOOR_SETTLE at most)
export const FLOOR_SETTLE = 0.5; // seconds of samples all above the floor that replace it
export const FLOOR_SETTLE_SAMPLES = 4; // and at least this many
export const FLOOR_TOLERANCE_TICKS = 1.0; // "above" means by more than this
export const MAX_JITTER_MARGIN = 0.25; // seconds of jitter margin at most: beyond, it measures our own stalls

/** The least of recent samples of a delay, forgetting a floor the samples have left: a
 * monotonic queue of [time, value] (each entry the least of the samples from it on). */
export class RecentFloor {
  constructor(tolerance, window = FLOOR_WINDOW, settle = FLOOR_SETTLE) {
    this.tolerance = tolerance; this.window = window; this.settle = settle;
    this.q = []; this.head = 0; this.aboveSince = null; this.above = 0; this.forgets = 0;
    // The floor's own clock (timesync.py): runs with the samples, a silence counts as at
    // most ``settle``, so a stall longer than the window cannot expire the floor whole.
    this.t = 0; this.last = null;
  }
  get ready() { return this.q.length > this.head; }
  get value() { return this.q[this.head][1]; }
  /** Takes a sample at ``now`` (non-decreasing); returns the floor. */
  add(value, now) {
    if (this.last !== null) this.t += Math.min(now - this.last, this.settle);
    this.last = now; now = this.t;
    const q = this.q;
    if (this.ready && value > q[this.head][1] + this.tolerance) {
      if (this.aboveSince === null) this.aboveSince = now;
      this.above++;
    } else {
      this.aboveSince = null; this.above = 0;
    }
    while (q.length > this.head && q[q.length - 1][1] >= value) q.pop();
    q.push([now, value]);
    if (q[this.head][0] < now - this.window) {
      while (q[this.head][0] < now - this.window) this.head++;
      if (this.aboveSince !== null && !this._runAboveFloor()) { this.aboveSince = null; this.above = 0; } // rose to meet the run
    } else if (this.aboveSince !== null && now - this.aboveSince >= this.settle && this.above >= FLOOR_SETTLE_SAMPLES) {
      this.settleNow();
    }
    if (this.head > 64 && this.head * 2 > q.length) { q.splice(0, this.head); this.head = 0; }
    return q[this.head][1];
  }
  /** Whether the newest sample is not part of a run above the floor begun by an earlier read. */
  get runBeganNow() { return this.aboveSince === null || this.aboveSince >= this.t; }
  /** Forgets the floor now if samples above it are under way; whether it did. */
  settleNow() {
    if (this.aboveSince === null) return false;
    // The run's second half (its start mixes both paths), timed by this floor's newest sample.
    const q = this.q, cut = Math.max(this.aboveSince, q[q.length - 1][0] - this.settle / 2);
    while (q.length - this.head > 1 && q[this.head][0] < cut) this.head++; // the newest sample always stays
    this.aboveSince = null; this.above = 0; this.forgets++;
    return true;
  }
  /** Whether the samples since ``aboveSince`` all still lie above the floor. */
  _runAboveFloor() {
    const q = this.q, since = this.aboveSince, floor = q[this.head];
    if (floor[0] >= since) return false;
    for (let i = this.head; i < q.length; i++) if (q[i][0] >= since) return q[i][1] > floor[1] + this.tolerance;
    return false;
  }
}

/** The server's tick as seen from here: the recent floor of the snapshots' arrival delay
 * gives the clock offset; half the recent floor of the RTT is added back (``oneWay``). */
export class ServerClock {
  constructor(rate) {
    this.rate = rate;
    this.delay = new RecentFloor(FLOOR_TOLERANCE_TICKS / rate);
    this.rttFloor = new RecentFloor(FLOOR_TOLERANCE_TICKS / rate);
    this.rttSeen = 0;
    this.newest = -1; // the newest server tick sampled
    this.offset = null;
  }
  seed(serverTick, now) { if (this.offset === null) this.offset = serverTick - now * this.rate; }
  /** ``serverTick``: the newest tick the server had run when it sent. ``rtt``: the session's
   * estimator, when this packet may have carried an ack: its RTT sample is taken here, less
   * the time the packet came in later than the fastest path down when that lateness began
   * with this read (our own late reads: a starved page's stalls are not the network's), as
   * timesync.py does: only for a tick newer than any before it. */
  sample(serverTick, now, rtt) {
    const forgets = this.delay.forgets;
    const fresh = serverTick > this.newest;
    this.newest = Math.max(this.newest, serverTick);
    const delay = now - (serverTick + 1) / this.rate;
    const floor = this.delay.add(delay, now);
    this.offset = -this.rate * floor;
    if (this.delay.forgets !== forgets) this.rttFloor.settleNow(); // the two floors move together
    if (rtt !== undefined && rtt.samples !== this.rttSeen) {
      this.rttSeen = rtt.samples;
      const late = fresh && this.delay.runBeganNow ? delay - floor : 0;
      this._rttSample(rtt.last - Math.max(0, late), now);
    }
  }
  _rttSample(value, now) {
    const forgets = this.rttFloor.forgets;
    this.rttFloor.add(value, now);
    if (this.rttFloor.forgets !== forgets && this.delay.settleNow()) this.offset = -this.rate * this.delay.value;
  }
  get forgets() { return this.delay.forgets + this.rttFloor.forgets; }
  /** One-way latency: half the recent floor of the session's RTT samples. */
  oneWay(rtt, now) {
    if (rtt.samples !== this.rttSeen) { // a sample no clock sample came with
      this.rttSeen = rtt.samples;
      this._rttSample(rtt.last, now);
    }
    return this.rttFloor.ready ? this.rttFloor.value / 2 : rtt.oneWay;
  }
  tickAt(now, oneWay) { return now * this.rate + this.offset + oneWay * this.rate; }
}

/** Ticks between the server's present and the tick an input sent now should be for: one-way
 * latency plus a jitter margin (capped: see timesync.py) plus one tick for our next packet,
 * plus one; within half the server's ``maxAhead``, past which it refuses inputs. */
export function inputLead(oneWay, jitter, rate, maxAhead) {
  const margin = Math.max(Math.min(2 * jitter, MAX_JITTER_MARGIN), 1 / rate) + 1 / rate;
  const lead = (oneWay + margin) * rate + 1;
  return maxAhead === undefined ? lead : Math.min(lead, maxAhead / 2);
}

// -- the room's schema: what the codes and input bytes mean -------------------------------------

/** Reads a schema from GET /api/rooms/{room}/schema, relative to ``base`` (the page's URL). */
export async function fetchSchema(room, base = globalThis.location?.href) {
  const res = await fetch(new URL(`api/rooms/${encodeURIComponent(room)}/schema`, base), { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `schema: HTTP ${res.status}`);
  return new GameSchema(body);
}

function writeNumber(dv, offset, kind, itemsize, v) {
  if (kind === "f") return itemsize === 4 ? dv.setFloat32(offset, v, true) : dv.setFloat64(offset, v, true);
  v = kind === "b" ? (v ? 1 : 0) : Math.trunc(Number(v) || 0);
  const bits = itemsize * 8, lo = kind === "i" ? -(2 ** (bits - 1)) : 0, hi = kind === "i" ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  v = Math.min(hi, Math.max(lo, v));
  if (itemsize === 1) return kind === "i" ? dv.setInt8(offset, v) : dv.setUint8(offset, v);
  if (itemsize === 2) return kind === "i" ? dv.setInt16(offset, v, true) : dv.setUint16(offset, v, true);
  if (itemsize === 4) return kind === "i" ? dv.setInt32(offset, v, true) : dv.setUint32(offset, v, true);
  return kind === "i" ? dv.setBigInt64(offset, BigInt(v), true) : dv.setBigUint64(offset, BigInt(v), true);
}

function readNumber(dv, offset, kind, itemsize) {
  if (kind === "f") return itemsize === 4 ? dv.getFloat32(offset, true) : dv.getFloat64(offset, true);
  if (itemsize === 1) return kind === "i" ? dv.getInt8(offset) : dv.getUint8(offset);
  if (itemsize === 2) return kind === "i" ? dv.getInt16(offset, true) : dv.getUint16(offset, true);
  if (itemsize === 4) return kind === "i" ? dv.getInt32(offset, true) : dv.getUint32(offset, true);
  return Number(kind === "i" ? dv.getBigInt64(offset, true) : dv.getBigUint64(offset, true));
}

export class GameSchema {
  constructor(json) {
    this.json = json;
    this.room = json.room;
    this.game = json.game;
    this.mode = json.mode;
    this.tickRate = json.tick_rate;
    this.players = json.players;
    this.input = json.input;
    this.playerEntities = json.player_entities;
    const rep = json.replication;
    if (!rep) throw new Error(`${json.game.name} declares no replication: it cannot run in state sync`);
    this.capacity = rep.capacity;
    this.columns = rep.columns.length;
    this.fields = rep.fields; // {name, column, columns, shape, kind, itemsize, quantizer}
    this.position = rep.position;
    this.extras = rep.extras;
    this.extrasSize = rep.extras_size;
    // Smooth columns (the position and the spec's continuous fields) are interpolated
    // between snapshots, and the server may code their deltas against their motion.
    this.smooth = Uint8Array.from(rep.columns, (c) => (c.smooth ? 1 : 0));
    // Entropy-coded snapshots (a spec with coding="entropy"): how to decode their tables.
    if (rep.coding?.unsupported) throw new Error(`${json.game.name}'s snapshots cannot be decoded here: ${rep.coding.unsupported}`);
    this.coding = rep.coding ? new EntropyCoding(rep.coding) : null;
    // The engine's rigid-body predictor (engine/bodies.py), when the spec names it; a
    // predictor function of the game's own runs only in Python, and the schema says so.
    if (rep.predictor?.unsupported) throw new Error(`${json.game.name}'s snapshots cannot be decoded here: ${rep.predictor.unsupported}`);
    this.bodies = rep.predictor?.bodies ? new Bodies(rep.predictor.bodies, this.columns) : null;
    if (this.coding && this.bodies && this.bodies.box !== null) this.coding.refine = this.bodies; // its height guess
    this.wrap = new Float64Array(this.columns); // code range of circular columns (angles), 0 if none
    for (const f of this.fields) {
      for (let k = 0; k < f.columns; k++) {
        if (this.smooth[f.column + k] && f.quantizer.kind === "Angle") this.wrap[f.column + k] = 2 ** f.quantizer.bits;
      }
    }
  }

  /** A quantized code (may be fractional, when interpolated) as the field's value. */
  dequantize(field, code) {
    const q = field.quantizer;
    switch (q.kind) {
      case "Int": return code + q.low;
      case "Fixed": return q.low + code * q.step;
      case "Angle": { const n = 2 ** q.bits; return (code >= n / 2 ? code - n : code) * ((2 * Math.PI) / n); }
      case "Exact": { // two's complement within the field's width
        const bits = field.itemsize * 8;
        return field.kind === "i" && code >= 2 ** (bits - 1) ? code - 2 ** bits : code;
      }
      default: return code; // a quantizer this module does not know: raw codes
    }
  }

  /** One input record from ``{field: value or [values]}``; missing fields are 0, values are
   * clamped to the game's declared limits (the server clamps them anyway). */
  encodeInput(values) {
    const out = new Uint8Array(this.input.itemsize), dv = new DataView(out.buffer);
    for (const f of this.input.fields) {
      let v = values[f.name] ?? 0;
      const list = Array.isArray(v) ? v : [v];
      for (let i = 0; i < f.count; i++) {
        let x = list[i] ?? 0;
        if (f.limits) x = Math.min(f.limits[1], Math.max(f.limits[0], x));
        writeNumber(dv, f.offset + i * f.itemsize, f.kind, f.itemsize, x);
      }
    }
    return out;
  }

  decodeInput(bytes) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), out = {};
    for (const f of this.input.fields) {
      const vals = [];
      for (let i = 0; i < f.count; i++) vals.push(readNumber(dv, f.offset + i * f.itemsize, f.kind, f.itemsize));
      out[f.name] = f.shape.length ? vals : vals[0];
    }
    return out;
  }

  /** The extras bytes of a snapshot as ``{name: [numbers]}`` (flattened). */
  decodeExtras(bytes) {
    const out = {};
    if (!bytes) return out;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const e of this.extras) {
      const vals = [];
      for (let p = e.offset; p < e.offset + e.size; p += e.itemsize) vals.push(readNumber(dv, p, e.kind, e.itemsize));
      out[e.name] = vals;
    }
    return out;
  }

  field(name) { return this.fields.find((f) => f.name === name); }

  /** The values of field ``name`` for ``entity`` in a reconstruction's codes. */
  values(codes, name, entity) {
    const f = this.field(name), out = [];
    for (let k = 0; k < f.columns; k++) out.push(this.dequantize(f, codes[entity * this.columns + f.column + k]));
    return out;
  }
}

// -- the client ---------------------------------------------------------------------------------

/**
 * A state-sync client over one WebSocket.
 *
 *   const client = new StateSyncClient({ url, token, schema, onEvent });
 *   client.connect();
 *   client.setInput({ move: [127, 0] });   // held until changed; sent every tick
 *   client.view();                         // everyone at the render tick, for drawing
 *   client.latest;                         // the newest complete snapshot
 *   client.close();
 *
 * ``token``: the connect token (bytes or its text). ``onEvent({type, ...})`` hears
 * "connected", "denied", "disconnected" and "failed". ``now()``: seconds (injectable).
 */
export class StateSyncClient {
  constructor({ url, token, schema, onEvent = () => {}, now = () => performance.now() / 1000, interpDelay = null }) {
    this.url = url;
    this.token = splitToken(typeof token === "string" ? tokenFromText(token) : token); // {wire, c2s, s2c}
    this.schema = schema;
    this.onEvent = onEvent;
    this.now = now;
    this.interpDelay = interpDelay; // ticks behind the newest snapshots; null: 2 intervals + jitter
    this.status = "idle"; // idle, requesting, responding, connected, denied, failed, disconnected
    this.statusText = "";
    this.slot = null;
    this.info = null;
    this.session = null;
    this.clock = null;
    this.record = schema.encodeInput({}); // the input held now
    this.inputs = new StampedInputs(schema.input.itemsize);
    this.recons = new Map(); // tick -> reconstruction {tick, codes, view, covered, extras, parts, received, complete}
    this.latest = null; // newest complete reconstruction
    this.acked = -1; // its tick: what we ack, and what the server may use as a baseline
    this.applied = -1; // newest of our input ticks the server says it applied
    this.inputTally = null; // {used, missed}: ticks the server ran with and without our input, when it says
    this.lastAckSent = -1;
    this.present = 0; // the tick our newest input is stamped for
    this.counters = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, parts: 0, deltaParts: 0, predictedParts: 0, snapshots: 0, noBaseline: 0 };
    // WebCrypto is asynchronous: packets in are handled one after another (each opened before
    // the next), packets out leave in the order their sequence numbers were taken.
    this._inbox = Promise.resolve();
    this._outbox = Promise.resolve();
    this.drops = {};
    this._rates = { at: null, mark: null, snapshotHz: 0, bytesInPerS: 0, bytesOutPerS: 0 };
  }

  get spectator() { return this.slot === -1; }
  get connected() { return this.status === "connected"; }
  /** The entity this player controls (null for a spectator or before ACCEPTED). */
  get ownEntity() { return this.slot === null || this.slot < 0 ? null : this.schema.playerEntities[this.slot]; }

  connect() {
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.nonce = randomU64();
    this.cookie = null;
    this._setStatus("requesting", "connecting");
    ws.onopen = () => {
      const now = this.now();
      this.giveUpAt = now + CONNECT_TIMEOUT;
      this._sendHandshake(now);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return this._drop("text_frame");
      const bytes = new Uint8Array(ev.data), now = this.now();
      this._inbox = this._inbox.then(() => this._receive(bytes, now)).catch((e) => setTimeout(() => { throw e; }));
    };
    ws.onclose = (ev) => {
      if (["requesting", "responding", "connected"].includes(this.status)) {
        this._end(this.status === "connected" ? "disconnected" : "failed", `connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
      }
    };
    // One timer drives everything: handshake resends, timeouts, and the input every tick.
    this.timer = setInterval(() => this._update(this.now()), 1000 / this.schema.tickRate);
  }

  /** Hold ``values`` (``{field: value}``, see GameSchema.encodeInput) from the next tick on. */
  setInput(values) { this.record = this.schema.encodeInput(values); }

  /** Say goodbye (DISCONNECT, three times: nothing is retransmitted) and close. */
  close(reason = "closed") {
    if (this.status === "connected") {
      for (let i = 0; i < 3; i++) this._sendSession(Type.DISCONNECT, packDisconnect(reason), this.now());
    }
    if (["requesting", "responding", "connected"].includes(this.status)) this._end("disconnected", "local: " + reason);
  }

  // -- receiving ---------------------------------------------------------------------------
  async _receive(bytes, now) {
    this.counters.packetsIn++;
    this.counters.bytesIn += bytes.length;
    try {
      if (bytes.length < 4) throw new ProtocolError("truncated", "shorter than the prefix");
      if (bytes.length > MAX_PACKET) throw new ProtocolError("oversized", `${bytes.length} bytes`);
      if (bytes[0] !== 0x54 || bytes[1] !== 0x53) throw new ProtocolError("not_ticksync", "protocol id");
      if (bytes[2] !== PROTOCOL_VERSION) throw new ProtocolError("bad_version", `version ${bytes[2]}`);
      const type = bytes[3] & ~ACK_VALID;
      if (type < 0x10) return await this._handshake(type, bytes, now);
      if (this.status !== "connected") throw new ProtocolError("no_session", "session packet before ACCEPTED");
      const payload = this.session.unwrap(await this.session.open(bytes), now);
      if (this.status !== "connected") return; // ended while it was being opened
      if (type === Type.SS_SNAPSHOT) this._snapshot(payload, now);
      else if (type === Type.DISCONNECT) {
        this._end("disconnected", "server: " + (parseDisconnect(payload) || "disconnected"));
      } else if (type !== Type.KEEPALIVE) throw new ProtocolError("unexpected_type", `type ${type}`);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this._drop(e.reason);
    }
  }

  async _handshake(type, bytes, now) {
    if (type === Type.CHALLENGE) {
      const c = parseChallenge(bytes);
      // The answer to a copy of our request (a slow path): the first one was taken.
      if ((this.status === "responding" || this.status === "connected") && c.nonce === this.nonce) return;
      if (this.status !== "requesting" || c.nonce !== this.nonce) throw new ProtocolError("unexpected_challenge", "not waiting for it");
      c.proof = await handshakeProof(this.token.c2s, c.nonce, c.cookieTime, c.cookie);
      if (this.status !== "requesting") return;
      this.cookie = c;
      this.challengedAt = now;
      this._setStatus("responding", "challenged");
      this._sendHandshake(now);
    } else if (type === Type.ACCEPTED) {
      const a = parseAccepted(bytes);
      if (a.nonce !== this.nonce) throw new ProtocolError("unexpected_accept", "another attempt's");
      if (this.status === "connected") return; // a duplicate of the one we took
      if (this.status !== "requesting" && this.status !== "responding") throw new ProtocolError("unexpected_accept", this.status);
      // A browser's session is never in plaintext: a plaintext ACCEPTED is a downgrade attempt.
      if (bytes[3] & ACCEPTED_PLAINTEXT) throw new ProtocolError("plaintext_refused", "the server offered an unencrypted session");
      try {
        this.info = parseStateSyncInfo(a.info);
      } catch (e) {
        this._end("failed", e.message.replace(/^bad_info: /, ""));
        return;
      }
      const raw = await sessionKeys(this.token.c2s, this.token.s2c, a.nonce, a.sessionId);
      const keys = { tx: await aeadKey(raw.c2s), rx: await aeadKey(raw.s2c) };
      if (this.status !== "requesting" && this.status !== "responding") return;
      this.session = new Session(a.sessionId, now, keys);
      this.slot = a.slot;
      this.clock = new ServerClock(this.info.tickRate);
      this.clock.seed(this.info.serverTick, now);
      this._setStatus("connected", this.spectator ? "spectating" : `playing slot ${a.slot}`);
      this.onEvent({ type: "connected", slot: a.slot, info: this.info });
    } else if (type === Type.DENIED) {
      const d = parseDenied(bytes);
      if (d.nonce !== this.nonce || (this.status !== "requesting" && this.status !== "responding")) {
        throw new ProtocolError("unexpected_deny", "another attempt's");
      }
      this._end("denied", `${d.code}: ${d.message}`, { code: d.code, message: d.message });
    } else {
      throw new ProtocolError("unexpected_type", `handshake type ${type} sent to a client`);
    }
  }

  // SS_SNAPSHOT: varint last-applied (0: none, else zigzag(applied - tick) + 1), then a part.
  _snapshot(payload, now) {
    const r = new Reader(payload);
    const prefix = parseSnapshotPrefix(r);
    if (prefix.tally) this.inputTally = prefix.tally;
    const s = this.schema, C = s.columns;
    const part = decodePart(payload.subarray(r.pos), s.capacity, C, s.extrasSize, s.coding);
    const tick = part.tick;
    if (prefix.applied !== null) this.applied = Math.max(this.applied, tick + prefix.applied);
    this.clock.sample(tick - 1, now, this.session.rtt);
    let recon = this.recons.get(tick);
    if (!recon) {
      let codes, view, extras = null, motion = null, start = null;
      if (part.base === null) {
        codes = new Float64Array(s.capacity * C);
        view = new Uint8Array(s.capacity);
      } else {
        const base = this.recons.get(part.base);
        const older = part.predictor === null ? base : this.recons.get(part.predictor);
        if (!base?.complete || !older?.complete) { // the server used one we dropped; its next won't
          this.counters.noBaseline++;
          return;
        }
        // Start from where everything was expected: the baseline, or moved on by its motion
        // (which an entropy-coded table also takes its contexts from).
        if (s.coding && part.predictor !== null) motion = motionCodes(base.codes, base.view, older.codes, older.view, C);
        codes = part.predictor === null
          ? base.codes.slice()
          : s.bodies
            ? s.bodies.predict(base.codes, base.view, older.codes, older.view, tick, part.base, part.predictor)
            : predict(base.codes, base.view, older.codes, older.view, tick, part.base, part.predictor, s.smooth);
        view = base.view.slice();
        extras = base.extras;
        start = part.reset ? null : base.model; // (carry: the coder model the baseline's table left, or the spec's)
      }
      const carries = s.coding?.carries;
      recon = {
        tick, codes, view, extras, motion, base: part.base, predictor: part.predictor,
        covered: new Uint8Array(s.capacity), parts: part.count, received: new Set(), complete: false,
        start: carries ? start : null, model: carries ? s.coding.carried() : null, reset: part.reset,
      };
      this.recons.set(tick, recon);
    } else if (part.count !== recon.parts || part.base !== recon.base || part.predictor !== recon.predictor || part.reset !== recon.reset) {
      throw new ProtocolError("bad_snapshot", "parts of one snapshot disagree on their count or baselines");
    }
    if (recon.received.has(part.index)) return;
    applyPart(part, recon.codes, recon.view, C, s.coding, recon.motion, recon.start, recon.model);
    recon.received.add(part.index);
    recon.covered.fill(1, part.lo, part.hi); // the entities this part vouches for
    recon.extras = applyExtras(part, recon.extras);
    this.counters.parts++;
    if (part.base !== null) this.counters.deltaParts++;
    if (part.predictor !== null) this.counters.predictedParts++; // coded against where the predictor expected them
    if (recon.received.size === recon.parts) {
      recon.complete = true;
      this.counters.snapshots++;
      if (tick > this.acked) {
        this.acked = tick;
        this.latest = recon;
        // Keep what the server may still use as a baseline (its history) and no more.
        const horizon = tick - 64 * this.info.snapshotEvery;
        for (const t of this.recons.keys()) if (t < horizon) this.recons.delete(t);
      }
    }
  }

  // -- sending -----------------------------------------------------------------------------
  _update(now) {
    if (this.status === "requesting" || this.status === "responding") {
      if (this.giveUpAt === undefined) return; // the WebSocket is not open yet
      if (now >= this.giveUpAt) return this._end("failed", "connect timeout: no answer from the server");
      if (now >= this.resendAt) {
        if (this.status === "responding" && now - this.challengedAt > COOKIE_TTL / 2) this._setStatus("requesting", "connecting");
        this._sendHandshake(now);
      }
      return;
    }
    if (this.status !== "connected") return;
    if (now - this.session.lastRecv >= TIMEOUT) return this._end("disconnected", "timeout: nothing from the server for 5 s");
    this._rollRates(now);
    const rate = this.info.tickRate, rtt = this.session.rtt;
    const ahead = this.clock.oneWay(rtt, now);
    const serverTick = this.clock.tickAt(now, ahead);
    this.present = Math.ceil(serverTick + inputLead(ahead, rtt.jitter, rate, this.info.maxAhead));
    let run = null;
    if (!this.spectator) {
      this.inputs.stamp(Math.floor(serverTick) + 1, this.present, this.record);
      run = this.inputs.unacked(this.applied);
    }
    // A player always has inputs to (re)send; a spectator speaks when it has a new ack, and
    // otherwise only a KEEPALIVE when idle, so acks and liveness still flow.
    if (run || this.acked !== this.lastAckSent) {
      const render = this.renderTick(now);
      const viewDelay = render === null ? 0 : Math.round(this.present - render);
      const payload = packSsInput(this.spectator ? 0xff : this.slot, this.acked < 0 ? null : this.acked, viewDelay, run);
      this._sendSession(Type.SS_INPUT, payload, now);
      this.lastAckSent = this.acked;
    } else if (now - this.session.lastSend >= KEEPALIVE_EVERY) {
      this._sendSession(Type.KEEPALIVE, new Uint8Array(0), now);
    }
  }

  _sendHandshake(now) {
    const c = this.status === "responding" ? this.cookie : null;
    const g = this.schema.game;
    this._send(packRequest({
      nonce: this.nonce, fingerprint: BigInt("0x" + g.fingerprint), name: g.name, version: g.version,
      token: this.token.wire, cookieTime: c?.cookieTime, cookie: c?.cookie, proof: c?.proof,
    }));
    this.resendAt = now + HANDSHAKE_RESEND;
  }

  _sendSession(type, payload, now) {
    const sealed = this.session.seal(type, payload, now); // takes the sequence number now
    this._outbox = this._outbox.then(() => sealed).then((packet) => this._send(packet));
  }

  _send(packet) {
    if (this.ws.readyState !== 1) return; // not open (any more)
    this.ws.send(packet);
    this.counters.packetsOut++;
    this.counters.bytesOut += packet.length;
  }

  _drop(reason) { this.drops[reason] = (this.drops[reason] || 0) + 1; }

  _setStatus(status, text) { this.status = status; this.statusText = text; }

  _end(status, text, extra = {}) {
    this._setStatus(status, text);
    clearInterval(this.timer);
    const ws = this.ws;
    this._outbox.then(() => { if (ws && ws.readyState <= 1) ws.close(1000); }); // goodbyes sealed first
    this.onEvent({ type: status, text, ...extra });
  }

  _rollRates(now) {
    const r = this._rates, c = this.counters;
    if (r.at === null) { r.at = now; r.mark = { ...c }; return; }
    const dt = now - r.at;
    if (dt < 1) return;
    r.snapshotHz = (c.snapshots - r.mark.snapshots) / dt;
    r.bytesInPerS = (c.bytesIn - r.mark.bytesIn) / dt;
    r.bytesOutPerS = (c.bytesOut - r.mark.bytesOut) / dt;
    r.at = now;
    r.mark = { ...c };
  }

  // -- what to draw ------------------------------------------------------------------------
  /** The (fractional) tick remote entities are drawn at: a couple of snapshot intervals
   * behind the newest snapshots as they arrive, so there is usually one on each side. */
  renderTick(now = this.now()) {
    if (!this.clock || this.clock.offset === null) return null;
    const rate = this.info.tickRate;
    const delay = this.interpDelay ?? 2 * this.info.snapshotEvery + 2 * this.session.rtt.jitter * rate;
    return this.clock.tickAt(now, 0) - delay;
  }

  /**
   * Every entity at the render tick: ``{tick, visible (Uint8Array), fields: {name:
   * Float64Array(capacity * components)}, extras}``. Smooth columns (the position and the
   * spec's continuous fields) blend linearly between the snapshots on either side that
   * vouch for the entity; other columns, and entities with nothing newer, hold.
   */
  view(now = this.now()) {
    const rt = this.renderTick(now);
    if (rt === null || !this.latest) return null;
    const s = this.schema, C = s.columns, n = s.capacity;
    const list = [...this.recons.values()].sort((a, b) => a.tick - b.tick).slice(-32);
    const out = { tick: rt, visible: new Uint8Array(n), fields: {}, extras: s.decodeExtras(this.latest.extras) };
    for (const f of s.fields) out.fields[f.name] = new Float64Array(n * f.columns);
    const code = new Float64Array(C);
    for (let e = 0; e < n; e++) {
      // The newest snapshot at or before rt and the oldest after it, among those vouching for e.
      let older = null, newer = null;
      for (let i = list.length - 1; i >= 0; i--) {
        const r = list[i];
        if (!r.covered[e]) continue;
        if (r.tick <= rt) { older = r; break; }
        newer = r;
      }
      if (!older || !older.view[e]) continue;
      out.visible[e] = 1;
      const blend = newer && newer.view[e] ? (rt - older.tick) / (newer.tick - older.tick) : 0;
      for (let c = 0; c < C; c++) {
        const a = older.codes[e * C + c];
        if (!blend || !s.smooth[c]) { code[c] = a; continue; }
        let d = newer.codes[e * C + c] - a;
        const w = s.wrap[c];
        if (w) d = ((((d + w / 2) % w) + w) % w) - w / 2; // the short way round
        code[c] = a + blend * d;
      }
      for (const f of s.fields) {
        for (let k = 0; k < f.columns; k++) out.fields[f.name][e * f.columns + k] = s.dequantize(f, code[f.column + k]);
      }
    }
    return out;
  }

  stats() {
    const rtt = this.session?.rtt;
    return {
      status: this.status, statusText: this.statusText, slot: this.slot,
      rttMs: rtt && rtt.samples ? rtt.rtt * 1000 : null, jitterMs: rtt ? rtt.jitter * 1000 : null,
      snapshotHz: this._rates.snapshotHz, bytesInPerS: this._rates.bytesInPerS, bytesOutPerS: this._rates.bytesOutPerS,
      acked: this.acked, applied: this.applied, present: this.present, ...this.counters, drops: { ...this.drops },
    };
  }
}
