// wire.js: the bytes of the ticksync protocol (PROTOCOL.md), for browsers. Part of ticksync.js.
//
// Everything here is a pure function of bytes (or a small reader/writer): packet prefixes,
// the session header, handshake bodies, the input run, SS_INPUT, and snapshot parts with
// their bit-packed ids and values. No state, no clock, no sockets: ticksync.js holds those
// (the session, time sync, the client). The Python twins are named in each section.
//
// Numbers: codes and deltas are Float64Array (exact up to 2^53; no ticksync quantizer
// produces codes that wide); 64-bit fields (nonces, seeds, fingerprints) are BigInt.

export const PROTOCOL_ID = 0x5354; // bytes 54 53, "TS"
export const PROTOCOL_VERSION = 3;
export const MAX_PACKET = 1200; // nothing is ever fragmented
export const REQUEST_SIZE = 400; // handshake requests are padded: no reply is ever bigger
export const NO_TICK = 0xffffffff;

export const Type = Object.freeze({
  CONNECT_REQUEST: 0x01, CHALLENGE: 0x02, CHALLENGE_RESPONSE: 0x03, ACCEPTED: 0x04, DENIED: 0x05,
  KEEPALIVE: 0x10, DISCONNECT: 0x11, SS_INPUT: 0x30, SS_SNAPSHOT: 0x31,
});

export const ACK_VALID = 0x80; // type-byte flag: this session packet's ack fields mean something
export const SESSION_HEADER = 17; // prefix 4 + session id 4 + seq 2 + ack 2 + ack bits 4 + ack delay 1
export const TAG_SIZE = 16; // the AES-GCM tag that ends every sealed session packet
export const ACCEPTED_PLAINTEXT = 0x80; // ACCEPTED's type-byte flag: an unencrypted lab session (refused here)
export const ACK_DELAY_UNIT = 0.0005; // seconds per unit of the ack-delay byte
const MODE_STATESYNC = 2; // first byte of ACCEPTED's info
export const MAX_RUN = 255; // inputs in one input run
const EXTRAS = 1, DESTROY = 2, CREATE = 4, UPDATE = 8; // snapshot part sections
const RESET = 16; // carried models: a delta whose table's coder starts from the spec's model

/** Bad bytes from the peer: the packet is dropped and counted (by reason), never fatal. */
export class ProtocolError extends Error {
  constructor(reason, detail) {
    super(`${reason}: ${detail}`);
    this.reason = reason;
  }
}

// -- reading and writing little-endian fields ------------------------------------------------

/** Length-checked reads: running past the end is a ProtocolError, not garbage. */
export class Reader {
  constructor(bytes, pos = 0) {
    this.b = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }
  get remaining() { return this.b.length - this.pos; }
  take(n) {
    const p = this.pos;
    if (n < 0 || p + n > this.b.length) throw new ProtocolError("truncated", `needed ${n} bytes at ${p}`);
    this.pos = p + n;
    return p;
  }
  u8() { return this.b[this.take(1)]; }
  u16() { return this.dv.getUint16(this.take(2), true); }
  i16() { return this.dv.getInt16(this.take(2), true); }
  u32() { return this.dv.getUint32(this.take(4), true); }
  u64() { return this.dv.getBigUint64(this.take(8), true); }
  bytes(n) { const p = this.take(n); return this.b.subarray(p, p + n); }
  str8() { return new TextDecoder().decode(this.bytes(this.u8())); }
  /** Unsigned LEB128, refused past ``limit``. */
  varint(limit = Number.MAX_SAFE_INTEGER) {
    let result = 0, mul = 1;
    for (;;) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (result > limit) throw new ProtocolError("bad_varint", `value over ${limit}`);
      if (!(b & 0x80)) return result;
      mul *= 128;
      if (mul > 2 ** 63) throw new ProtocolError("bad_varint", "more than 10 bytes"); // (Python's Reader: a 64-bit value's)
    }
  }
  /** Packets carry no trailing bytes. */
  done() {
    if (this.pos !== this.b.length) throw new ProtocolError("trailing_bytes", `${this.b.length - this.pos} bytes left`);
  }
}

export class Writer {
  constructor(size = MAX_PACKET) {
    this.b = new Uint8Array(size);
    this.dv = new DataView(this.b.buffer);
    this.pos = 0;
  }
  u8(v) { this.b[this.pos++] = v; return this; }
  u16(v) { this.dv.setUint16(this.pos, v, true); this.pos += 2; return this; }
  u32(v) { this.dv.setUint32(this.pos, v, true); this.pos += 4; return this; }
  u64(v) { this.dv.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; return this; }
  bytes(a) { this.b.set(a, this.pos); this.pos += a.length; return this; }
  str8(s) { const raw = new TextEncoder().encode(s).subarray(0, 255); return this.u8(raw.length).bytes(raw); }
  prefix(type) { return this.u16(PROTOCOL_ID).u8(PROTOCOL_VERSION).u8(type); }
  result() { return this.b.slice(0, this.pos); }
}

/** 16-bit sequence numbers compare wrap-aware: signed distance a - b in [-32768, 32767]. */
export function seqDelta(a, b) {
  const d = (a - b) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

/** zigzag(n) maps 0, -1, 1, -2 ... to 0, 1, 2, 3 ...; this is its inverse. */
export function unzigzag(z) { return z % 2 ? -(z + 1) / 2 : z / 2; }

/** SS_SNAPSHOT's per-client prefix: varint (last applied code << 1) | tally flag, then the
 *  input tally if flagged. {applied: relative to the part's tick, or null; tally: {used, missed} or null}. */
export function parseSnapshotPrefix(r) {
  const v = r.varint(2 ** 41);
  const code = Math.floor(v / 2);
  const tally = v % 2 ? { used: r.varint(2 ** 40), missed: r.varint(2 ** 40) } : null;
  return { applied: code === 0 ? null : unzigzag(code - 1), tally };
}

// -- bit unpacking (netcode/statesync/bits.py) ------------------------------------------------------------

export function packedSize(count, width) { return Math.ceil((count * width) / 8); }

/**
 * ``count`` unsigned values of ``width`` bits from ``bytes`` (exactly packedSize bytes).
 * Little-endian bit order: value 0's bit 0 is byte 0's bit 0, values follow each other with
 * no gaps, and the last byte is padded with zero bits.
 */
export function unpackUint(bytes, count, width) {
  const out = new Float64Array(count);
  if (width === 0 || count === 0) return out;
  if (width > 64) throw new ProtocolError("bad_width", `${width}-bit values`);
  if (bytes.length !== packedSize(count, width)) {
    throw new ProtocolError("truncated", `${bytes.length} bytes for ${count} values of ${width} bits`);
  }
  let bit = 0;
  for (let i = 0; i < count; i++) {
    let v = 0, got = 0, mul = 1;
    while (got < width) {
      const shift = bit & 7, take = Math.min(8 - shift, width - got);
      v += ((bytes[bit >> 3] >> shift) & ((1 << take) - 1)) * mul;
      mul *= 1 << take;
      got += take;
      bit += take;
    }
    // Python reads any value of 64 bits; a browser's number holds one exactly below 2**53
    // (the sum above stays exact until then, and once past it stays past).
    if (v > Number.MAX_SAFE_INTEGER) throw new ProtocolError("unsafe_integer", `a ${width}-bit value of 2**53 or more`);
    out[i] = v;
  }
  if (bit & 7 && bytes[bytes.length - 1] >> (bit & 7)) throw new ProtocolError("bad_padding", "non-zero padding bits");
  return out;
}

// -- snapshot parts (netcode/statesync/snapshot.py) ------------------------------------------------------

const ESCAPED = 0x80; // column header flag: all-ones values stand for wider ones that follow

/**
 * column = u8 w (| 0x80: escapes), ``count`` values of w bits. With escapes, every value
 * equal to the all-ones pattern of w bits is replaced, in order, by the values that follow:
 * u8 W, then W-bit values. (A few outliers then do not widen the whole column.)
 */
export function readColumn(r, count) {
  const head = r.u8(), w = head & ~ESCAPED;
  if (w > 63) throw new ProtocolError("bad_width", `${w}-bit values`); // (as Python: even when there are none)
  const values = unpackUint(r.bytes(packedSize(count, w)), count, w);
  if (head & ESCAPED) {
    if (w === 0) throw new ProtocolError("bad_width", "escapes at width 0");
    const marker = 2 ** w - 1, top = r.u8();
    if (top > 63 || top <= w) throw new ProtocolError("bad_width", `escape width ${top} after width ${w}`);
    let k = 0;
    for (const v of values) if (v === marker) k++;
    const wide = unpackUint(r.bytes(packedSize(k, top)), k, top);
    for (let i = 0, j = 0; i < count; i++) if (values[i] === marker) values[i] = wide[j++];
  }
  return values;
}

// ids = varint count, varint (first id - lo), column(count - 1 gaps: id - previous id - 1).
function readIds(r, lo, hi) {
  const k = r.varint(hi - lo);
  if (k === 0) throw new ProtocolError("bad_snapshot", "empty id list");
  const first = lo + r.varint(hi - lo);
  const gaps = readColumn(r, k - 1);
  const ids = new Array(k);
  ids[0] = first;
  for (let i = 1; i < k; i++) ids[i] = ids[i - 1] + gaps[i - 1] + 1;
  if (ids[k - 1] >= hi) throw new ProtocolError("bad_snapshot", `entity ids outside [${lo}, ${hi})`);
  return ids;
}

/**
 * One snapshot part (the SS_SNAPSHOT payload after its per-client prefix):
 *
 *   u32 tick | u32 baseline (0xFFFFFFFF: none) | varint predictor gap | u8 index | u8 count
 *   varint lo | varint hi - lo | u8 sections, then EXTRAS, DESTROY, CREATE, UPDATE if present
 *
 * Column values come back column by column: createCodes[c][j] is column c of entity
 * create[j], updateDelta[c][j] the signed change of column c of entity update[j] (from
 * the baseline, or from where it was expected when ``predictor`` is set: see predict()).
 */
export function decodePart(bytes, capacity, columns, extrasSize, coding = null) {
  const r = new Reader(bytes);
  let tick, base, gap, index, count, lo, hi;
  if (coding) { // entropy coding's compact header: u32 tick | varint tick - baseline (0: none) | varint
    // predictor gap | varint count - 1 | varint index (if count > 1) | varint lo, hi - lo (if count > 1)
    tick = r.u32();
    const back = r.varint(tick);
    base = back ? tick - back : NO_TICK;
    gap = r.varint(2 ** 32);
    count = r.varint(254) + 1;
    index = count > 1 ? r.varint(count - 1) : 0;
  } else {
    tick = r.u32(); base = r.u32(); gap = r.varint(2 ** 32); index = r.u8(); count = r.u8();
  }
  if (coding && count === 1) { // one part vouches for every entity
    lo = 0; hi = capacity;
  } else {
    lo = r.varint(capacity);
    hi = lo + r.varint(capacity); // the ids this part vouches for: [lo, hi)
  }
  if (count === 0 || index >= count || hi > capacity) {
    throw new ProtocolError("bad_snapshot", `part ${index}/${count} range [${lo}, ${hi}) of ${capacity}`);
  }
  if (gap && (base === NO_TICK || gap > base)) throw new ProtocolError("bad_snapshot", `predictor ${gap} ticks before baseline ${base}`);
  const sections = r.u8();
  if (sections & ~(EXTRAS | DESTROY | CREATE | UPDATE | RESET)) throw new ProtocolError("bad_snapshot", `sections ${sections}`);
  if (sections & RESET && (!coding?.carries || base === NO_TICK)) {
    throw new ProtocolError("bad_snapshot", "a RESET part of a full snapshot or of a spec without carried models");
  }
  const part = {
    tick, base: base === NO_TICK ? null : base, predictor: gap ? base - gap : null, index, count, lo, hi,
    extras: null, extrasDelta: null, destroy: [], create: [], createCodes: [], update: [], updateDelta: [], table: null,
    reset: (sections & RESET) !== 0,
  };
  if (sections & EXTRAS) {
    const mode = r.u8();
    if (mode === 0) { // the game's extras bytes, whole
      const size = r.varint(extrasSize);
      if (size !== extrasSize) throw new ProtocolError("bad_snapshot", `extras of ${size} bytes, expected ${extrasSize}`);
      part.extras = r.bytes(size).slice();
    } else if (mode === 1) { // which bytes changed since the baseline, then those bytes
      const at = extrasSize ? readIds(r, 0, extrasSize) : [];
      part.extrasDelta = { at, bytes: r.bytes(at.length).slice() };
    } else {
      throw new ProtocolError("bad_snapshot", `extras mode ${mode}`);
    }
  }
  if (sections & DESTROY) part.destroy = readIds(r, lo, hi);
  if (sections & CREATE) {
    part.create = readIds(r, lo, hi);
    for (let c = 0; c < columns; c++) part.createCodes.push(readColumn(r, part.create.length));
  }
  if (sections & UPDATE && coding) {
    part.table = r.bytes(r.remaining).slice(); // decoded by applyPart, which knows the rows
  } else if (sections & UPDATE) {
    part.update = readIds(r, lo, hi);
    const k = part.update.length;
    for (let c = 0; c < columns; c++) {
      const mode = r.u8(), delta = new Float64Array(k);
      if (mode === 1) { // every entity changed: k zigzag deltas
        const z = readColumn(r, k);
        for (let j = 0; j < k; j++) delta[j] = unzigzag(z[j]);
      } else if (mode === 2) { // some: a changed bit per entity, then the deltas of those
        const changed = unpackUint(r.bytes(packedSize(k, 1)), k, 1);
        let m = 0;
        for (let j = 0; j < k; j++) m += changed[j];
        const z = readColumn(r, m);
        for (let j = 0, i = 0; j < k; j++) if (changed[j]) delta[j] = unzigzag(z[i++]);
      } else if (mode !== 0) { // 0: none changed
        throw new ProtocolError("bad_snapshot", `column mode ${mode}`);
      }
      part.updateDelta.push(delta);
    }
  }
  r.done();
  return part;
}

/** Python's floor division (``//``) of integers, exact: no float rounding at the edges. */
/** Python's floor division of BigInts (``//``, towards minus infinity); ``d`` positive. */
export function floorDivBig(a, d) {
  const q = a / d;
  return a < 0n && q * d !== a ? q - 1n : q;
}

export function floorDiv(a, b) {
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}

/**
 * Where the baseline's codes would be at ``tick`` had they kept moving as they did from the
 * predictor snapshot to the baseline: ``b + ((b - p) * (tick - baseTick)) // (baseTick -
 * predTick)`` for smooth columns of entities in view in both; the baseline elsewhere. A part
 * that names a predictor applies to this instead of the baseline's codes: what it does not
 * list is taken to be where it was expected, so entities moving steadily cost nothing.
 */
export function predict(baseCodes, baseView, predCodes, predView, tick, baseTick, predTick, smooth) {
  const out = baseCodes.slice(), columns = smooth.length, gap = baseTick - predTick;
  if (gap <= 0) return out;
  for (let e = 0; e < baseView.length; e++) {
    if (!baseView[e] || !predView[e]) continue;
    for (let c = 0; c < columns; c++) {
      if (!smooth[c]) continue;
      out[e * columns + c] = predicted(baseCodes[e * columns + c], predCodes[e * columns + c], tick - baseTick, gap);
    }
  }
  return out;
}

/** b + ((b - p) * ahead) // gap as Python's int64 arithmetic has it (snapshot.predict):
 * in doubles while they are exact, else in BigInts wrapped as int64 wraps (a hostile
 * server's codes and ticks can take it there). A result no double holds is
 * ProtocolError("unsafe_integer"). */
function predicted(b, p, ahead, gap) {
  const step = b - p;
  if (Number.isSafeInteger(step) && (ahead === gap || Number.isSafeInteger(step * ahead))) {
    return safeCode(b + (ahead === gap ? step : floorDiv(step * ahead, gap)));
  }
  let q = BigInt.asIntN(64, BigInt(b) - BigInt(p));
  if (ahead !== gap) {
    q = floorDivBig(BigInt.asIntN(64, q * BigInt(ahead)), BigInt(gap));
  }
  const r = BigInt.asIntN(64, BigInt(b) + q);
  if (r > BigInt(Number.MAX_SAFE_INTEGER) || r < -BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError("unsafe_integer", `a predicted code of 2**53 or more`);
  return Number(r);
}

/** Apply a part in place to (codes, view) that start as a copy of the baseline's view and
 * its *expected* codes: the baseline's, or predict()'s when the part names a predictor. An
 * entropy-coded part also needs the spec's ``coding`` (an EntropyCoding) and the ``motion``
 * codes (motionCodes()) of the baseline and predictor it names (null without a predictor). */
export function applyPart(part, codes, view, columns, coding = null, motion = null, start = null, end = null) {
  // Carried models (snapshot.apply_part's ``start``, ``end``): the start's, unless a one-part
  // snapshot's table ends elsewhere. A RESET part starts from the spec's model instead.
  if (part.reset) start = null;
  if (end) coding.carried(start, end);
  for (const id of part.update) {
    if (!view[id]) throw new ProtocolError("bad_snapshot", "update of an entity the baseline does not have");
  }
  for (const id of part.destroy) view[id] = 0;
  if (part.table) {
    if (!coding) throw new Error("an entropy-coded part needs the spec's coding to apply");
    // The table's rows: what the receiver holds in the part's range, less what it creates
    // (ids, changed flags and motion codes in the coding's scratch: no arrays per packet).
    const scratch = coding.tableScratch(part.hi - part.lo), mine = scratch.mine, held = scratch.held;
    for (let id = part.lo; id < part.hi; id++) mine[id - part.lo] = view[id];
    for (const id of part.create) mine[id - part.lo] = 0;
    let rows = 0;
    for (let id = part.lo; id < part.hi; id++) if (mine[id - part.lo]) held[rows++] = id;
    // Their motion codes: usually every row of the range is held, one view of the packet's
    // (a view per row was a sixth of a cube-scene packet's decode).
    let m;
    if (!motion) m = scratch.motionRows.fill(0, 0, rows * columns);
    else if (rows === part.hi - part.lo) m = motion.subarray(part.lo * columns, part.hi * columns);
    else {
      m = scratch.motionRows;
      for (let j = 0; j < rows; j++) m.set(motion.subarray(held[j] * columns, (held[j] + 1) * columns), j * columns);
    }
    // Every row sent as changed is undone, as Python's apply_part does, even one whose
    // deltas are all 0 (a hostile table's): undoing reads a rotation's index modulo 4.
    const touched = scratch.touched;
    const deltas = coding.decodeTable(part.table, m, rows, start, part.count === 1 ? end : null, touched);
    for (let j = 0; j < rows; j++) if (touched[j]) coding.undo(codes, held[j] * columns, deltas, j * columns);
  }
  part.create.forEach((id, j) => {
    view[id] = 1;
    for (let c = 0; c < columns; c++) codes[id * columns + c] = part.createCodes[c][j];
  });
  part.update.forEach((id, j) => {
    for (let c = 0; c < columns; c++) codes[id * columns + c] = safeCode(codes[id * columns + c] + part.updateDelta[c][j]);
  });
}

/** A code computed from codes below 2**53 (a sum of two such is exact up to there, and
 * past it stays past): itself, or ProtocolError("unsafe_integer") if it is past, where no
 * double holds it exactly (Python's int64 does). */
export function safeCode(x) {
  if (Math.abs(x) > Number.MAX_SAFE_INTEGER) throw new ProtocolError("unsafe_integer", `a code of 2**53 or more (${x})`);
  return x;
}

/** The extras after this part: its whole extras, its changes applied to the baseline's,
 * or the baseline's unchanged. */
export function applyExtras(part, base) {
  if (part.extras) return part.extras;
  if (!part.extrasDelta) return base;
  if (!base) throw new ProtocolError("bad_snapshot", "extras changes without baseline extras");
  const out = base.slice();
  part.extrasDelta.at.forEach((i, j) => { out[i] = part.extrasDelta.bytes[j]; });
  return out;
}

// -- inputs (netcode/mode/inputs.py) --------------------------------------------------------------

/**
 * An input run: u32 first tick, u8 count n, the first record whole, then n-1 byte masks of
 * ceil(itemsize/8) bytes (bit j: byte j differs from the record before), then the changed
 * bytes in order. A held input costs one mask byte per tick.
 */
export function packRun(first, records) {
  const n = records.length, size = records[0].length, width = Math.ceil(size / 8);
  if (n < 1 || n > MAX_RUN) throw new Error(`${n} inputs in one run; 1..${MAX_RUN}`);
  const masks = new Uint8Array((n - 1) * width), changed = [];
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < size; j++) {
      if (records[i][j] !== records[i - 1][j]) {
        masks[(i - 1) * width + (j >> 3)] |= 1 << (j & 7);
        changed.push(records[i][j]);
      }
    }
  }
  return new Writer(5 + size + masks.length + changed.length).u32(first).u8(n).bytes(records[0]).bytes(masks).bytes(changed).result();
}

/**
 * SS_INPUT: u8 slot (0xFF spectator), u8 flags (1: an input run follows), u32 newest complete
 * snapshot tick (0xFFFFFFFF: none), u8 view delay in ticks (how far in the past we draw
 * others: the server judges our shots there), then the input run. ``run``: [first, records].
 */
export function packSsInput(slot, ack, viewDelay, run = null) {
  const w = new Writer().u8(slot).u8(run ? 1 : 0).u32(ack === null ? NO_TICK : ack);
  w.u8(Math.max(0, Math.min(255, viewDelay)));
  if (run) w.bytes(packRun(run[0], run[1]));
  return w.result();
}

// -- handshake (netcode/session/handshake.py) -----------------------------------------------------------

/**
 * CONNECT_REQUEST, or CHALLENGE_RESPONSE when ``cookie`` is given, zero-padded to 400 bytes:
 * client nonce u64, [cookie time u32, cookie 16, proof 16], game fingerprint u64, game name
 * str8, game version str8, token (u8 length + bytes: the wire token, never its keys).
 */
export function packRequest({ nonce, fingerprint, name, version, token, cookieTime, cookie, proof }) {
  const w = new Writer(REQUEST_SIZE); // zero-filled: the padding comes free
  w.prefix(cookie ? Type.CHALLENGE_RESPONSE : Type.CONNECT_REQUEST).u64(nonce);
  if (cookie) w.u32(cookieTime).bytes(cookie).bytes(proof);
  w.u64(fingerprint).str8(name).str8(version).u8(token.length).bytes(token);
  return w.b;
}

function handshakeBody(bytes) { return new Reader(bytes, 4); }

export function parseChallenge(bytes) {
  const r = handshakeBody(bytes);
  const out = { nonce: r.u64(), cookieTime: r.u32(), cookie: r.bytes(16).slice() };
  r.done();
  return out;
}

export function parseAccepted(bytes) {
  const r = handshakeBody(bytes);
  const out = { nonce: r.u64(), sessionId: r.u32(), slot: r.i16(), epoch: r.u64() }; // slot -1: spectator; epoch: the server instance
  out.info = r.bytes(r.u16()).slice();
  r.done();
  return out;
}

export function parseDenied(bytes) {
  const r = handshakeBody(bytes);
  const out = { nonce: r.u64(), code: r.str8() };
  out.message = new TextDecoder().decode(r.bytes(r.u16()));
  r.done();
  return out;
}

/** ACCEPTED info of a state-sync room: u8 mode 2, u16 players, u64 seed, u16 tick rate,
 * u8 ticks between snapshots, u32 server tick, u16 max ticks ahead. */
export function parseStateSyncInfo(info) {
  const r = new Reader(info);
  const mode = r.u8();
  if (mode !== MODE_STATESYNC) {
    throw new ProtocolError("bad_info", mode === 1 ? "this room runs lockstep; the browser client speaks state sync only" : `mode ${mode}`);
  }
  const out = { players: r.u16(), seed: r.u64(), tickRate: r.u16(), snapshotEvery: r.u8(), serverTick: r.u32(), maxAhead: r.u16() };
  r.done();
  return out;
}

/** A connect token given as text (unpadded base64url, what ``ticksync token`` prints). */
export function tokenFromText(text) {
  const s = text.trim().replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
}

const TOKEN_VERSION = 2, TOKEN_FIXED = 24, KEY_SIZE = 32; // u8 version, u8 role, i16 slot, u64 expires, 12 nonce

/**
 * A client token (netcode/session/token.py): ``{wire, c2s, s2c}``, the wire token (what the
 * handshake carries: public part, sealed keys, tag) and the two session keys that follow it.
 */
export function splitToken(token) {
  let n = 0;
  if (token.length > TOKEN_FIXED + 2 && token[0] === TOKEN_VERSION) {
    const user = TOKEN_FIXED + 1 + token[TOKEN_FIXED];
    if (user < token.length) n = user + 1 + token[user] + 2 * KEY_SIZE + TAG_SIZE;
  }
  if (!n || token.length !== n + 2 * KEY_SIZE) {
    throw new ProtocolError("bad_token", "not a ticksync client token (version 2: the connect token and its session keys)");
  }
  return { wire: token.slice(0, n), c2s: token.slice(n, n + KEY_SIZE), s2c: token.slice(n + KEY_SIZE) };
}

// -- sealing (netcode/session/crypto.py): WebCrypto, so every function here is async -----------------

const subtle = () => globalThis.crypto.subtle;
const LATIN = new TextEncoder();

/** HMAC-SHA256(key, label + "\0" + data): how every key and proof is derived. */
async function derive(key, label, data) {
  const k = await subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const msg = new Uint8Array(label.length + 1 + data.length);
  msg.set(LATIN.encode(label));
  msg.set(data, label.length + 1);
  return new Uint8Array(await subtle().sign("HMAC", k, msg));
}

function nonceAndNumber(nonce, n, tail = new Uint8Array(0)) {
  const w = new Writer(12 + tail.length).u64(nonce).u32(n);
  return w.bytes(tail).b;
}

/** The 16 bytes CHALLENGE_RESPONSE carries to show we hold the token's client key. */
export async function handshakeProof(c2s, nonce, cookieTime, cookie) {
  return (await derive(c2s, "ticksync-proof", nonceAndNumber(nonce, cookieTime, cookie))).slice(0, 16);
}

/** ``{c2s, s2c}``: the raw packet keys of one session of a token. */
export async function sessionKeys(c2s, s2c, nonce, sessionId) {
  const salt = nonceAndNumber(nonce, sessionId);
  return { c2s: await derive(c2s, "ticksync-session-c2s", salt), s2c: await derive(s2c, "ticksync-session-s2c", salt) };
}

/** An AES-256-GCM key for sealing (or opening) session packets. */
export function aeadKey(raw) { return subtle().importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]); }

/** Four zero bytes, then the sender's 64-bit send counter. */
export function packetNonce(counter) { return new Writer(12).u32(0).u64(counter).b; }

/** A session packet (header, payload in clear) sealed as the ``counter``-th send: the header
 * stays readable and is the associated data; the payload is encrypted and the tag appended. */
export async function sealPacket(key, counter, packet) {
  const head = packet.subarray(0, SESSION_HEADER);
  const sealed = new Uint8Array(await subtle().encrypt(
    { name: "AES-GCM", iv: packetNonce(counter), additionalData: head }, key, packet.subarray(SESSION_HEADER),
  ));
  const out = new Uint8Array(SESSION_HEADER + sealed.length);
  out.set(head);
  out.set(sealed, SESSION_HEADER);
  return out;
}

/** The packet of :func:`sealPacket` opened (header, payload in clear), or ProtocolError bad_tag. */
export async function openPacket(key, counter, packet) {
  if (packet.length < SESSION_HEADER + TAG_SIZE) throw new ProtocolError("truncated", "shorter than the session header and tag");
  const head = packet.subarray(0, SESSION_HEADER);
  let plain;
  try {
    plain = new Uint8Array(await subtle().decrypt(
      { name: "AES-GCM", iv: packetNonce(counter), additionalData: head }, key, packet.subarray(SESSION_HEADER),
    ));
  } catch {
    throw new ProtocolError("bad_tag", "not sealed with this session's key");
  }
  const out = new Uint8Array(SESSION_HEADER + plain.length);
  out.set(head);
  out.set(plain, SESSION_HEADER);
  return out;
}

// -- session packets: the header, DISCONNECT (netcode/session/wire.py, session.py) ------------------------

/** Session header: prefix (ack-valid flag in bit 7 of the type), session id u32, seq u16,
 * ack u16, ack bits u32 (bit i: ack - 1 - i received too), ack delay u8 (0.5 ms units). */
export function packSessionHeader(type, sessionId, seq, ack, ackBits, ackDelay) {
  const w = new Writer(SESSION_HEADER).u16(PROTOCOL_ID).u8(PROTOCOL_VERSION);
  if (ack === null) return w.u8(type).u32(sessionId).u16(seq).u16(0).u32(0).u8(0).b;
  return w.u8(type | ACK_VALID).u32(sessionId).u16(seq).u16(ack).u32(ackBits >>> 0).u8(ackDelay).b;
}

/** DISCONNECT's payload: str8 reason. */
export function packDisconnect(reason) { return new Writer(256).str8(reason).result(); }

export function parseDisconnect(payload) {
  return payload.length >= 1 && payload.length >= 1 + payload[0] ? new TextDecoder().decode(payload.subarray(1, 1 + payload[0])) : "";
}
