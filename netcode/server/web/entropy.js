// entropy.js: the range-coded update table of entropy-coded snapshot parts, for browsers.
// Part of ticksync.js. The Python side is netcode/statesync/rangecoder.py (the coder, the
// contexts and their starting probabilities), coding.py (which columns form which groups
// and context sets) and engine/quantize.py's SmallestThree (a rotation's delta); PROTOCOL.md
// ("Entropy-coded updates") is the specification both follow.
//
// Decoding only: the browser never encodes snapshots. Every step is integer arithmetic
// (or, for a rotation whose largest component switched, the IEEE +, -, *, / and sqrt the
// Python side does, in the same order), so the codes come out exactly as the server's.

import { ProtocolError, Reader, safeCode } from "./wire.js";

const BITS = 12, ONE = 1 << BITS, HALF = ONE >> 1; // 12-bit probabilities of a 0 bit
const LIMIT = 15; // events after which a context adapts at its slowest
const TOP = 1 << 24;
const SLACK = 4; // bytes a decoder may read past its input (the encoder trims its flush)
const CLASSES = 64, ACTIVITY = 8, MOTIONS = ACTIVITY * 3, SPEEDS = ACTIVITY, BEFORE = 2;
const FLAG_CTX = ACTIVITY * 2;
const CLASS_CTX = SPEEDS * BEFORE * CLASSES;
const VALUE_CTX = CLASS_CTX + 3 + CLASSES;
const LEADS = 4; // context layout 1: per class cell, by the largest class before it in the row's group
const EXTRA_CTX = CLASS_CTX * LEADS; // layout 1's contexts per set, after all of layout 0's

/** How many contexts a table of ``fields`` sets in ``groups`` has in ``layout`` (rangecoder.contexts). */
function contexts(fields, groups, layout = 0) {
  return groups * FLAG_CTX + fields * (VALUE_CTX + (layout ? EXTRA_CTX : 0));
}

/** Adaptive binary range decoder (LZMA's): one probability per context, reset per table.
 * One is kept per EntropyCoding and started again for each table, so its model's arrays
 * (tens of kilobytes) are not allocated per packet. */
class RangeDecoder {
  constructor(size) {
    this.data = null;
    this.pos = 0;
    this.range = 0;
    this.code = 0;
    this.p = new Uint32Array(size);
    this.n = new Uint8Array(size);
  }
  /** Decode ``data`` from a model's probabilities and, when given, its events seen (a
   * trained model's; else none). The model itself is copied, never changed. */
  start(data, prior, seen = null) {
    if (this.p.length !== prior.length) { // (a model of another size: every coding's are one size)
      this.p = new Uint32Array(prior.length);
      this.n = new Uint8Array(prior.length);
    }
    this.p.set(prior);
    if (seen) this.n.set(seen);
    else this.n.fill(0);
    this.data = data;
    this.pos = 0;
    this.range = 0xffffffff;
    this.code = 0;
    for (let i = 0; i < 4; i++) this.code = ((this.code << 8) | this.byte()) >>> 0;
    return this;
  }
  byte() { return this.pos++ < this.data.length ? this.data[this.pos - 1] : 0; }
  normalize() {
    while (this.range < TOP) {
      this.range = (this.range << 8) >>> 0;
      this.code = ((this.code << 8) | this.byte()) >>> 0;
    }
  }
  bit(ctx) {
    const p = this.p[ctx], n = this.n[ctx], bound = (this.range >>> BITS) * p;
    let b;
    if (this.code < bound) {
      this.range = bound;
      b = 0;
    } else {
      this.code -= bound;
      this.range -= bound;
      b = 1;
    }
    // Steps of 1/8 for four events (the prior is worth a few), 1/16 to the fifteenth, then 1/32.
    const s = n < 4 ? 3 : n < 15 ? 4 : 5;
    this.p[ctx] = b ? p - (p >>> s) : p + ((ONE - p) >>> s);
    if (n < LIMIT) this.n[ctx] = n + 1;
    this.normalize();
    return b;
  }
  even() {
    this.range = this.range >>> 1;
    let b = 0;
    if (this.code >= this.range) {
      this.code -= this.range;
      b = 1;
    }
    this.normalize();
    return b;
  }
  checkEnd() {
    if (this.pos > this.data.length + SLACK) throw new ProtocolError("truncated", `range-coded data ends ${this.pos - this.data.length} bytes early`);
    if (this.pos < this.data.length) throw new ProtocolError("bad_snapshot", `${this.data.length - this.pos} bytes after the range-coded data`);
  }
}

// The chance (in 1/ONE) that a value passes class k: by how far k is above its activity
// (PAST), or for a value that did not move (REST) (rangecoder._passes).
const PAST = [15, 13, 9, 5, 3].map((x) => x * ONE / 16);
const REST = [ONE / 2, 5 * ONE / 8, 5 * ONE / 8, 5 * ONE / 8, ONE / 2, 3 * ONE / 8, ONE / 4];
function passes(act, k) {
  if (act === 0) return k < REST.length ? REST[k] : ONE / 8;
  const step = k - act + 1;
  if (step < 0) return PAST[0];
  return step < PAST.length ? PAST[step] : ONE / 16;
}

/** The probabilities every part's model starts from (rangecoder.prior); layout 1's added
 * class contexts start as their cell's. */
function prior(fields, groups, layout = 0) {
  const table = new Uint32Array(contexts(fields, groups, layout)).fill(HALF);
  for (let g = 0; g < groups; g++) {
    table[g * FLAG_CTX] = ONE - ONE / 64; // resting, and so was the row before
    table[g * FLAG_CTX + 1] = ONE - ONE / 4;
    for (let i = 2; i < FLAG_CTX; i++) table[g * FLAG_CTX + i] = ONE / 16;
  }
  for (let f = 0; f < fields; f++) {
    const base = groups * FLAG_CTX + f * VALUE_CTX;
    for (let act = 0; act < SPEEDS; act++) {
      for (let k = 0; k < CLASSES; k++) {
        table[base + (act * BEFORE) * CLASSES + k] = ONE - passes(act, k);
        table[base + (act * BEFORE + 1) * CLASSES + k] = ONE - passes(act ? act + 1 : 0, k); // surprised
      }
    }
  }
  const extra = contexts(fields, groups);
  for (let f = 0; layout && f < fields; f++) {
    const base = groups * FLAG_CTX + f * VALUE_CTX;
    for (let cell = 0; cell < SPEEDS * BEFORE; cell++) {
      for (let lead = 0; lead < LEADS; lead++) {
        const at = extra + f * EXTRA_CTX + (cell * LEADS + lead) * CLASSES;
        table.set(table.subarray(base + cell * CLASSES, base + (cell + 1) * CLASSES), at);
      }
    }
  }
  return table;
}

let CRC_TABLE = null;
/** zlib's CRC-32 of ``bytes``. */
export function crc32(bytes) {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The bytes of base64 ``text`` (a model as the room's schema carries it); ProtocolError if it is not. */
export function fromBase64(text) {
  let raw;
  try {
    raw = atob(text);
  } catch {
    raw = null;
  }
  if (typeof text !== "string" || raw === null) throw new ProtocolError("bad_model", "the coder model is not base64 text");
  return Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
}

const MODEL_HEAD = 14, MODEL_CHECK = 4, MODEL_VARINT = 5;
/**
 * A trained coder model's file (format 2, netcode/statesync/training.py's CoderModel and
 * PROTOCOL.md) for tables of ``fields`` context sets in ``groups`` groups: {layout, probs,
 * seen}, every context's starting probability and event count. Anything but a whole model
 * of this table, in the one form Python writes, is a ProtocolError("bad_model") saying why.
 */
export function parseModel(data, fields, groups) {
  const bad = (why) => new ProtocolError("bad_model", why);
  if (data.length < MODEL_HEAD + MODEL_CHECK) throw bad(`a coder model is at least ${MODEL_HEAD + MODEL_CHECK} bytes, not ${data.length}`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (String.fromCharCode(...data.subarray(0, 4)) !== "TSCM") throw bad("not a coder model");
  const version = data[4], layout = data[5], f = v.getUint16(6, true), g = v.getUint16(8, true), entries = v.getUint32(10, true);
  if (version !== 2) throw bad(`coder model format version ${version}: this client reads version 2 only`);
  if (layout !== 0 && layout !== 1) throw bad(`coder model context layout ${layout}: this client knows 0 and 1`);
  if (f !== fields || g !== groups) throw bad(`the coder model is for tables of ${f} context sets in ${g} groups; this spec's have ${fields} in ${groups}`);
  const end = data.length - MODEL_CHECK;
  if (crc32(data.subarray(0, end)) !== v.getUint32(end, true)) throw bad("coder model check (CRC-32) mismatch: the file is corrupt");
  const n = contexts(fields, groups, layout);
  if (entries > n) throw bad(`coder model of ${n} contexts cannot change ${entries} of them`);
  const probs = prior(fields, groups, layout), seen = new Uint8Array(n);
  const r = new Reader(data.subarray(0, end), MODEL_HEAD);
  let after = 0; // the context after the entry before
  try {
    for (let e = 0; e < entries; e++) {
      const at = r.pos, gap = r.varint(), length = r.pos - at;
      if (length > MODEL_VARINT) throw bad(`coder model gap varint longer than ${MODEL_VARINT} bytes`);
      if (length > 1 && data[r.pos - 1] === 0) throw bad("coder model gap varint is overlong (ends in a zero byte)");
      const ctx = after + gap;
      if (ctx >= n) throw bad(`coder model entry for context ${ctx}, past its ${n} contexts`);
      const word = r.u16(), p = word & 0xfff, k = word >>> 12;
      if (p === 0) throw bad(`coder model probabilities must be 1..${ONE - 1}: context ${ctx} has 0`);
      if (p === probs[ctx] && k === 0) throw bad(`coder model entry for context ${ctx} repeats the default`);
      probs[ctx] = p;
      seen[ctx] = k;
      after = ctx + 1;
    }
    r.done();
  } catch (e) { // the Reader's: past the end, a varint too long, or bytes left after
    if (e instanceof ProtocolError && e.reason !== "bad_model") throw bad(`coder model of ${entries} entries in ${data.length} bytes: ${e.message}`);
    throw e;
  }
  return { layout, probs, seen };
}

function bitLength(x) {
  let b = 0;
  while (x >= 1) { x = Math.floor(x / 2); b++; }
  return b;
}

/** Each value's motion code (rows * columns, Int32Array): activity * 3 + direction of its
 * change from the older snapshot to the baseline (activity its bit length, at most 7;
 * direction 1 up, 2 down), for entities in view in both; 0 elsewhere (rangecoder.motion_codes). */
export function motionCodes(baseCodes, baseView, olderCodes, olderView, columns) {
  const rows = baseView.length, out = new Int32Array(rows * columns);
  if (!olderCodes) return out;
  for (let r = 0; r < rows; r++) {
    if (!baseView[r] || !olderView[r]) continue;
    for (let c = 0; c < columns; c++) {
      const x = baseCodes[r * columns + c] - olderCodes[r * columns + c];
      if (x !== 0) out[r * columns + c] = Math.min(bitLength(Math.abs(x)), 7) * 3 + (x < 0 ? 2 : 1);
    }
  }
  return out;
}

/** Where a value's class contexts start (rangecoder._classes): in its set's (from ``ctx``)
 * per ``cell``; in layout 1 (``extra`` >= 0, where its set's added contexts start) after a
 * value before it in the row's group of class ``lead`` > 0, in one of four more per cell. */
function classes(ctx, cell, extra, lead) {
  if (extra < 0 || lead === 0) return ctx + cell * CLASSES;
  return extra + (cell * LEADS + (lead <= 2 ? 0 : lead <= 4 ? 1 : lead <= 6 ? 2 : 3)) * CLASSES;
}

function getValue(dec, ctx, base, direction) {
  let cls = 0;
  while (cls < CLASSES - 1 && dec.bit(base + cls)) cls++;
  if (cls === 0) return 0;
  const negative = dec.bit(ctx + CLASS_CTX + direction);
  // (A class over 53 is a magnitude of 2**53 or more: no double holds it exactly.)
  if (cls > 53) throw new ProtocolError("unsafe_integer", `a value of class ${cls}`);
  let mag = 1;
  if (cls >= 2) mag = mag * 2 + dec.bit(ctx + CLASS_CTX + 3 + cls);
  for (let k = cls - 3; k >= 0; k--) mag = mag * 2 + dec.even();
  return negative ? -mag : mag;
}

/**
 * A spec's entropy coding as the browser needs it (SnapshotCoding.describe() in Python):
 * ``groups`` and ``sets``, per column, its field group and its context set; ``rotations``,
 * [first column, bits] of each SmallestThree field (coded against the rebased baseline).
 */
export class EntropyCoding {
  constructor({ groups, sets, rotations = [], model = null, carry = false }) {
    if (groups.length !== sets.length) throw new Error("a group and a context set per column");
    this.columns = groups.length;
    this.groups = groups.length ? Math.max(...groups) + 1 : 0;
    this.fields = sets.length ? Math.max(...sets) + 1 : 0;
    // The table takes the columns group after group (stable within a group).
    this.order = [...groups.keys()].sort((a, b) => groups[a] - groups[b] || a - b);
    this.tableGroups = this.order.map((c) => groups[c]);
    this.tableSets = this.order.map((c) => sets[c]);
    this.rotations = rotations.map(([c0, bits]) => new SmallestThree(c0, bits));
    // A trained model (base64 of its file, training.py's format 2): every part starts from it.
    this.layout = 0;
    this.prior = null;
    this.seen = null;
    if (model !== null) {
      ({ layout: this.layout, probs: this.prior, seen: this.seen } = parseModel(fromBase64(model), this.fields, this.groups));
    } else {
      this.prior = prior(this.fields, this.groups);
    }
    if (!this.seen) this.seen = new Uint8Array(this.prior.length);
    this.initial = { probs: this.prior, seen: this.seen }; // the model every table starts from (never written)
    // carry: each snapshot's table starts from the model its baseline's ended in (carried()).
    this.carries = carry;
    this.refine = null; // a Bodies whose box guesses heights again (the schema's predictor sets it)
    // Scratch kept across tables, so decoding a packet allocates next to nothing (a page
    // decoding 60 a second would otherwise collect garbage in the middle of one). Decoding
    // is synchronous: each is filled and used before the next table.
    this.decoder = new RangeDecoder(this.prior.length);
    this.deltas = new Float64Array(0); // decodeTable's result, grown to the largest table
    this.prev = new Uint8Array(this.groups);
    this.most = new Int32Array(Math.max(this.fields, 1));
    this.row = new Float64Array(this.columns); // undo's copy of the row's expected codes
    this.mine = new Uint8Array(0); // applyPart's: which ids of a part's range are a table's rows,
    this.held = new Int32Array(0); // those ids, and whether each was sent changed
    this.touched = new Uint8Array(0);
    this.motionRows = new Int32Array(0); // and their motion codes, when not one slice of the packet's
  }

  /** applyPart's scratch for a table of at most ``rows`` rows: ``mine``, ``held`` and
   * ``touched`` (zeroed) of at least that many entries, ``motionRows`` of that many rows. */
  tableScratch(rows) {
    if (this.held.length < rows) {
      this.mine = new Uint8Array(rows);
      this.held = new Int32Array(rows);
      this.touched = new Uint8Array(rows);
      this.motionRows = new Int32Array(rows * this.columns);
    }
    this.touched.fill(0, 0, rows);
    return this;
  }

  /** A carried model ({probs, seen}): a copy of ``start``'s, or of where every table starts
   * (SnapshotCoding.carried); with ``into``, copied into it. */
  carried(start = null, into = null) {
    const from = start || this.initial;
    if (!into) return { probs: from.probs.slice(), seen: from.seen.slice() };
    into.probs.set(from.probs);
    into.seen.set(from.seen);
    return into;
  }

  /** The (rows * columns) deltas in spec column order of a range-coded table whose
   * rows' motion codes (rows * columns, spec order) are ``motion`` (rangecoder.decode_table);
   * ``touched`` (a Uint8Array per row), when given, gets a 1 for each row sent as changed. */
  decodeTable(data, motion, rows, start = null, end = null, touched = null) {
    const cols = this.columns, gof = this.tableGroups, fof = this.tableSets, order = this.order;
    const from = start || this.initial; // (one shape of model, so V8 does not meet a new one mid-scene)
    const dec = this.decoder.start(data, from.probs, from.seen);
    if (this.deltas.length < rows * cols) this.deltas = new Float64Array(rows * cols);
    const out = this.deltas.fill(0, 0, rows * cols); // (a row or group not sent changed is all 0)
    const vbase = this.groups * FLAG_CTX, prev = this.prev.fill(0), most = this.most;
    const xbase = this.layout ? contexts(this.fields, this.groups) : -1; // where layout 1's added contexts start
    let changedRows = 0;
    for (let r = 0; r < rows; r++) {
      let c0 = 0;
      for (let g = 0; g < this.groups; g++) {
        let top = 0, c = c0;
        for (; c < cols && gof[c] === g; c++) top = Math.max(top, Math.floor(motion[r * cols + order[c]] / 3));
        const changed = dec.bit(g * FLAG_CTX + top * 2 + prev[g]);
        prev[g] = changed;
        if (changed) {
          changedRows++;
          if (touched) touched[r] = 1;
          // Each set's most active value in the row: a value's activity is at least one less.
          for (let k = c0; k < c; k++) most[fof[k]] = 0;
          for (let k = c0; k < c; k++) most[fof[k]] = Math.max(most[fof[k]], Math.floor(motion[r * cols + order[k]] / 3));
          let surprised = 0; // a value before, in this row's group, more than a class above its own activity
          let lead = 0; // the largest class before, in this row's group
          for (let k = c0; k < c; k++) {
            const m = motion[r * cols + order[k]], act = Math.floor(m / 3), at = vbase + fof[k] * VALUE_CTX;
            const cell = Math.max(act, most[fof[k]] - 1) * BEFORE + surprised;
            const v = getValue(dec, at, classes(at, cell, this.layout ? xbase + fof[k] * EXTRA_CTX : -1, lead), m % 3);
            out[r * cols + order[k]] = v;
            const cls = bitLength(Math.abs(v));
            if (cls > act + 1) surprised = 1;
            if (cls > lead) lead = cls;
          }
        }
        c0 = c;
      }
    }
    dec.checkEnd();
    if (end) { // where the model ended, for a snapshot coded against this one (rangecoder's ``ended``)
      end.probs.set(dec.p);
      end.seen.set(dec.n);
    }
    // (a part cut short after its sections can decode to this; snapshot.apply_part's check)
    if (!changedRows) throw new ProtocolError("bad_snapshot", "an update table that changes nothing: encoders leave it out");
    return out.subarray(0, rows * cols); // (this coding's scratch: read it before the next table)
  }

  /** Codes of a row expected at ``expected`` (columns, modified in place) after its deltas;
   * with a ``refine`` (a Bodies with a box: SnapshotCoding.second_guess), its height guessed
   * again from the row's sent rotation. */
  undo(expected, at, deltas, dat) {
    const base = this.row; // (scratch: the row's expected codes, before its deltas)
    for (let c = 0; c < this.columns; c++) base[c] = expected[at + c];
    for (let c = 0; c < this.columns; c++) expected[at + c] += deltas[dat + c]; // (a rotation's are redone from the deltas)
    for (const q of this.rotations) q.undo(base, expected, at, deltas, dat);
    if (this.refine) this.refine.refine(base, expected, at, deltas, dat);
    // A code past 2**53 (a hostile delta's, or a baseline's a hostile server left) is one no
    // double holds: refused, where Python's int64 holds it. Below, every sum was exact.
    for (let c = 0; c < this.columns; c++) safeCode(expected[at + c]);
  }
}

const SQRT_HALF = Math.sqrt(0.5);
const KEEP = [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]; // components kept when one is dropped

/** engine/quantize.py's SmallestThree at ``bits``, columns c0..c0+3 of a row: when the
 * largest index turned, the components are deltas against the baseline re-expressed with
 * the new index dropped. The float steps are Python's, in Python's order. */
class SmallestThree {
  constructor(c0, bits) {
    this.c0 = c0;
    this.scale = 2 ** bits - 1;
    this.q = new Float64Array(4);
  }
  undo(base, row, at, deltas, dat) {
    // (Python's & 3 of the sum, for any index: taken apart, so no sum past 2**53 rounds it)
    const c0 = this.c0, old = (base[c0] % 4 + 4) % 4, turned = (old + deltas[dat + c0] % 4 + 4) % 4;
    row[at + c0] = turned;
    if (turned === old) return;
    // the baseline's rotation, as a unit quaternion (into scratch: rows turn in every packet)
    const q = this.q, keep = KEEP[old];
    for (let i = 0; i < 3; i++) q[keep[i]] = base[c0 + 1 + i] / this.scale * (2 * SQRT_HALF) - SQRT_HALF;
    const a = q[keep[0]], b = q[keep[1]], c = q[keep[2]];
    q[old] = Math.sqrt(Math.max(0, 1 - (a * a + b * b + c * c)));
    // ... re-expressed with ``turned`` dropped, plus the deltas
    const sign = q[turned] < 0 ? -1 : 1, now = KEEP[turned];
    for (let i = 0; i < 3; i++) {
      const scaled = Math.floor((q[now[i]] * sign + SQRT_HALF) / (2 * SQRT_HALF) * this.scale + 0.5);
      const rebased = Math.min(Math.max(scaled, 0), this.scale);
      row[at + c0 + 1 + i] = rebased + deltas[dat + c0 + 1 + i];
    }
  }
}

export { MOTIONS };
