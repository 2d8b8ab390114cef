// Moving bodies for a physics predictor: the browser's twins of engine/motion.py's
// extrapolated() and engine/smallest_three.py's turned() and standing(). A predictor's
// guess is coded against on both ends, so each step here is Python's: integer motion exact
// (BigInt where a double would round), rotations in the same IEEE +, -, *, /, sqrt in the
// same order. Tables are flat Float64Arrays of integer codes, row-major (entity e, column c
// at e * columns + c), as the client keeps its snapshots.

import { floorDiv, floorDivBig } from "./wire.js";

const VALUES = 2 ** 61; // motion.py's _VALUES: the largest codes moved
const STEP = 1n << 62n; // the largest step (velocity * num) taken, and num's and den's bound
// Below EXACT, velocity, step, quotient and sum are exact as doubles, and so is wire.js's
// floorDiv (its products stay below 2**53).
const EXACT = 2 ** 51;
const WORD = 2 ** 63; // int64's bound: Python's low is -WORD..WORD - 1 (-WORD: no floor)
const LAST = WORD - 1024; // the largest double below WORD

/** The per-column values of ``value`` (a number for every column, or an array of ``w``),
 * checked as motion.py's _parameters checks them, a RangeError where it raises: each an
 * integer (or, with ``none``, null or -Infinity: no floor), within lo..hi where w > 0. */
function perColumn(value, w, what, lo, hi, none = false) {
  const many = Array.isArray(value) || ArrayBuffer.isView(value);
  const given = many ? Array.from(value) : [value];
  const free = (x) => none && (x === null || x === -Infinity);
  for (const x of given) if (!free(x) && !(typeof x === "number" && Number.isInteger(x))) throw new RangeError(`${what}: ${x} is not an integer`);
  const values = many ? given : Array(w).fill(value);
  if (values.length !== w) throw new RangeError(`${what}: ${w} columns, ${values.length} values`);
  for (const x of values) if (!free(x) && !(x >= lo && x <= hi)) throw new RangeError(`${what} must be ${lo}..${hi}, not ${x}`);
  // (a Float64Array whatever the caller gave: extrapolated's loop then sees one kind of array,
  // where a mix of small-integer and double arrays made V8 throw its compiled code away)
  return Float64Array.from(values, (x) => (free(x) ? -Infinity : x));
}

/**
 * Carry on the rows that moved (engine/motion.py's extrapolated): each row r (of ``rows``,
 * a Uint8Array mask, when given) whose columns c0..c1-1 of ``base`` differ from ``older``'s
 * (the snapshot before it) in any column gets, in each of those columns c of ``out``,
 * ``b + floor((b - o) * num / den)``, then ``max(that, min(low, b))`` (a floor the guess does
 * not go through; a body already below it sinks no further). ``num``, ``den``: a number for
 * every column or an array of one per column (|num| <= 2**62, 1 <= den <= 2**62, integers);
 * ``low``: null (no floor), a number, or an array per column whose entries may be null or
 * -Infinity (no floor; so is -(2 ** 63), Python's none); otherwise integers within int64.
 * ``slow``: null, or integers 0..2**62 (a number or one per column): codes the step loses
 * towards zero, not past it, before the floor (friction); with ``aloft``, [column, height],
 * only in rows whose base code there is at most that height. Bad parameters throw a RangeError,
 * as Python raises. Any codes (a hostile peer's) give codes: a value beyond +-2**61, or whose
 * step would be beyond 2**62, keeps the baseline's, and so does a value that is no integer
 * (Python's int64 tables hold none). The arithmetic is exact (BigInt where a double would
 * round); a result beyond 2**53 is stored rounded to the nearest double, as float() would.
 * Returns how many rows moved.
 */
export function extrapolated(base, older, columns, c0, c1, num, den, out, rows = null, low = null, slow = null, aloft = null) {
  const n = checkTables(base, older, out, columns, rows);
  if (!(Number.isInteger(c0) && Number.isInteger(c1) && 0 <= c0 && c0 <= c1 && c1 <= columns)) {
    throw new RangeError(`columns ${c0}:${c1} of a table of ${columns}`);
  }
  const w = c1 - c0;
  const nums = perColumn(num, w, "num", -(2 ** 62), 2 ** 62);
  const dens = perColumn(den, w, "den", 1, 2 ** 62);
  const lows = perColumn(low, w, "low", -WORD, LAST, true);
  const slows = perColumn(slow === null ? 0 : slow, w, "slow", 0, 2 ** 62);
  let lift = -1, top = 0; // no aloft: every row slows
  if (aloft !== null) {
    const ok = Array.isArray(aloft) && aloft.length === 2 && aloft.every((x) => typeof x === "number" && Number.isInteger(x));
    if (!ok || !(aloft[0] >= 0 && aloft[0] < columns && aloft[1] >= -WORD && aloft[1] < WORD)) {
      throw new RangeError(`aloft is [a column of the ${columns}, an int64 height], not ${aloft}`);
    }
    [lift, top] = aloft;
  }
  // The largest velocity whose step fits (|velocity * num| <= 2**62), as Python's table has it;
  // a double of it compares exactly with any velocity below 2**53 (beyond, it is above them all).
  const fits = Array.from(nums, (a) => (a ? STEP / BigInt(Math.abs(a)) : STEP));
  const fitsNumber = Float64Array.from(fits, Number); // (one kind of array, as perColumn's)
  let moved = 0;
  for (let r = 0; r < n; r++) {
    if (rows && !rows[r]) continue;
    const at = r * columns;
    let c = c0;
    while (c < c1 && base[at + c] === older[at + c]) c++;
    if (c === c1) continue;
    moved++;
    const free = lift >= 0 && !(base[at + lift] <= top); // (NaN, which Python never holds, flies free)
    for (c = c0; c < c1; c++) {
      const k = c - c0, now = base[at + c], was = older[at + c], slow = free ? 0 : slows[k];
      let x = now;
      if (Math.abs(now) <= EXACT && Math.abs(was) <= EXACT && Number.isInteger(now) && Number.isInteger(was)) {
        const v = now - was; // exact: |v| <= 2**52
        if (Math.abs(v) <= fitsNumber[k]) {
          const step = v * nums[k]; // exact when below EXACT (an integer the double can hold)
          if (Math.abs(step) < EXACT && dens[k] < EXACT) x = now + slowed(dens[k] === 1 ? step : floorDiv(step, dens[k]), slow);
          else x = exactly(now, v, nums[k], dens[k], slow);
        }
      } else if (Math.abs(now) <= VALUES && Math.abs(was) <= VALUES && Number.isInteger(now) && Number.isInteger(was)) {
        const v = BigInt(now) - BigInt(was);
        if (-fits[k] <= v && v <= fits[k]) x = exactly(now, v, nums[k], dens[k], slow);
      }
      // max and min commute with rounding to a double: this is Python's value, rounded.
      out[at + c] = Math.max(x, Math.min(lows[k], now));
    }
  }
  return moved;
}

/** A step ``s`` ``slow`` codes shorter, not past zero (a number exact below 2**51, or a
 * BigInt; ``slow`` a number): where it is larger, the difference may round, but is clamped. */
function slowed(s, slow) {
  if (!slow) return s;
  if (typeof s === "bigint") {
    const b = BigInt(slow);
    return s > 0n ? (s > b ? s - b : 0n) : s < -b ? s + b : 0n;
  }
  return s > 0 ? Math.max(s - slow, 0) : Math.min(s + slow, 0);
}

/** ``now + slowed((v * num) // den, slow)`` in BigInt (``v`` a number or a BigInt), rounded
 * to a double. */
function exactly(now, v, num, den, slow) {
  return Number(BigInt(now) + slowed(floorDivBig(BigInt(v) * BigInt(num), BigInt(den)), slow));
}

/** The number of rows of ``base``, ``older`` and ``out`` (one shape), or a RangeError. */
function checkTables(base, older, out, columns, rows) {
  if (!(Number.isInteger(columns) && columns > 0) || base.length % columns || older.length !== base.length || out.length !== base.length) {
    throw new RangeError(`tables of one shape (rows x ${columns} columns) expected: ${base.length}, ${older.length}, ${out.length} codes`);
  }
  const n = base.length / columns;
  if (rows && rows.length !== n) throw new RangeError(`${n} rows of codes, a mask of ${rows.length}`);
  return n;
}

const SQRT_HALF = Math.sqrt(0.5);
const SPAN = 2 * SQRT_HALF;
export const MAX_TURNS = 64; // smallest_three.py's: the most turns turned() takes

// The component that is the i-th kept one (0..2) when ``drop`` is dropped: KEPT[drop * 3 + i]
// (a table, not a branch: a branch first taken mid-scene made V8 deoptimize turned()).
const KEPT = Int8Array.of(1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2);
const kept = (drop, i) => KEPT[drop * 3 + i];

/** smallest_three.py's _unit_row: the rotation codes ``codes[at..at+3]`` (largest index,
 * then the three kept components) as a unit quaternion into ``q`` (x y z w). The dropped
 * component is what the other three leave, positive. Any integer codes give numbers. */
export function unitRow(codes, at, scale, q) {
  const old = codes[at] & 3; // Python's & 3 on int64: the low bits, negative codes too
  let s = 0.0;
  for (let i = 0; i < 3; i++) {
    const t = codes[at + 1 + i] / scale * SPAN - SQRT_HALF;
    q[kept(old, i)] = t;
    s += t * t;
  }
  const left = 1.0 - s;
  q[old] = Math.sqrt(left > 0.0 ? left : 0.0); // Python's max(0.0, left)
}

/** smallest_three.py's _round_row: quaternion ``q``'s three components other than ``drop``
 * (made positive) as codes 0..scale, into ``out[at..at+2]``. */
export function roundRow(q, drop, scale, out, at) {
  const sign = q[drop] < 0 ? -1.0 : 1.0;
  for (let i = 0; i < 3; i++) {
    const x = (q[kept(drop, i)] * sign + SQRT_HALF) / SPAN * scale + 0.5;
    // Python's min(max(x, 0.0), scale), then C's conversion to an integer (never negative here)
    const low = 0.0 > x ? 0.0 : x;
    out[at + i] = Math.trunc(scale < low ? scale : low);
  }
}

/** smallest_three.py's _in_range: whether the codes at ``at`` are a quantizer's. */
function inRange(codes, at, scale) {
  return 0 <= codes[at] && codes[at] <= 3 && 0 <= codes[at + 1] && codes[at + 1] <= scale
    && 0 <= codes[at + 2] && codes[at + 2] <= scale && 0 <= codes[at + 3] && codes[at + 3] <= scale;
}

/**
 * Spinning bodies kept spinning (engine/smallest_three.py's turned): each rotation in columns
 * col..col+3 (largest index, a, b, c) of ``base`` that turned since ``older`` is turned on
 * ``turns`` more times (at most MAX_TURNS) by that turn, the short way round, into the same
 * columns of ``out``. A turn whose quaternion's w is ``still`` or more (the codes' jitter), a
 * row outside ``rows`` (a Uint8Array mask, when given), a row that did not turn and codes no
 * quantizer makes are not written, nor are other columns. ``aloft``: null, or [column, height,
 * turns, still]: rows whose base code in that column is above that height take those turns and
 * that still instead, in the same pass (a body in the air spins on freely). Returns how many
 * rows were written.
 */
export function turned(base, older, columns, col, turns, still, scale, out, rows = null, aloft = null) {
  const n = checkTables(base, older, out, columns, rows);
  if (!(Number.isInteger(col) && 0 <= col && col <= columns - 4)) throw new RangeError(`columns ${col}:${col + 4} of a table of ${columns}`);
  if (!Number.isInteger(turns)) throw new RangeError(`turns: ${turns} is not an integer`);
  turns = Math.min(turns, MAX_TURNS);
  let lift = -1, top = 0, upTurns = 0, upStill = 0; // no aloft: every row turns alike
  if (aloft !== null) {
    const ok = Array.isArray(aloft) && aloft.length === 4 && aloft.slice(0, 3).every((x) => typeof x === "number" && Number.isInteger(x))
      && typeof aloft[3] === "number";
    if (!ok || !(aloft[0] >= 0 && aloft[0] < columns && aloft[1] >= -WORD && aloft[1] < WORD)) {
      throw new RangeError(`aloft is [a column of the ${columns}, an int64 height, turns, still], not ${aloft}`);
    }
    if (aloft[2] > 0) [lift, top, upTurns, upStill] = [aloft[0], aloft[1], Math.min(aloft[2], MAX_TURNS), aloft[3]]; // (else: as a second call turning nothing)
  }
  if (turns <= 0 && lift < 0) return 0;
  const q = new Float64Array(4), p = new Float64Array(4);
  let moved = 0;
  for (let r = 0; r < n; r++) {
    const at = r * columns + col;
    if ((base[at] === older[at] && base[at + 1] === older[at + 1] && base[at + 2] === older[at + 2] && base[at + 3] === older[at + 3])
        || (rows && !rows[r])) continue;
    const up = lift >= 0 && base[r * columns + lift] > top;
    const rowTurns = up ? upTurns : turns, rowStill = up ? upStill : still;
    if (rowTurns <= 0 || !(inRange(base, at, scale) && inRange(older, at, scale))) continue;
    unitRow(base, at, scale, q);
    unitRow(older, at, scale, p);
    // The turn from older to base, base * conjugate(older), then that turn after the rotation
    // so far, ``turns`` times: one quaternion product (x y z w, a * p), its first pass the turn.
    let ax = q[0], ay = q[1], az = q[2], aw = q[3];
    let px = -p[0], py = -p[1], pz = -p[2], pw = p[3];
    let times;
    for (times = -1; times < rowTurns; times++) {
      let x = aw * px + ax * pw + ay * pz - az * py;
      let y = aw * py - ax * pz + ay * pw + az * px;
      let z = aw * pz + ax * py - ay * px + az * pw;
      let w = aw * pw - ax * px - ay * py - az * pz;
      if (times >= 0) {
        px = x; py = y; pz = z; pw = w;
        continue;
      }
      // The short way round (a product, not a branch that V8 would first meet mid-scene).
      const sign = w < 0 ? -1 : 1;
      x *= sign; y *= sign; z *= sign; w *= sign;
      if (w >= rowStill) break;
      px = ax; py = ay; pz = az; pw = aw; // the baseline's, turned on from here
      ax = x; ay = y; az = z; aw = w;
    }
    if (times < 0) continue; // a jitter of the codes, not a spin
    q[0] = px; q[1] = py; q[2] = pz; q[3] = pw;
    let drop = 0, big = Math.abs(px);
    for (let k = 1; k < 4; k++) {
      if (Math.abs(q[k]) > big) {
        big = Math.abs(q[k]);
        drop = k;
      }
    }
    out[at] = drop;
    roundRow(q, drop, scale, out, at + 1);
    moved++;
  }
  return moved;
}

// standing()'s quaternion, kept: Bodies.refine runs it on each changed row of every packet.
const STANDING_Q = new Float64Array(4);

/** smallest_three.py's _reach: how far a unit cube turned by the codes at ``at`` reaches
 * below its centre (the rotation matrix's bottom row, summed as magnitudes). */
function reach(codes, at, scale, q) {
  unitRow(codes, at, scale, q);
  const x = q[0], y = q[1], z = q[2], w = q[3];
  return Math.abs(2.0 * (x * z - w * y)) + Math.abs(2.0 * (y * z + w * x)) + Math.abs(1.0 - 2.0 * (x * x + y * y));
}

/**
 * Boxes put back on the ground where they tumbled (engine/smallest_three.py's standing, on
 * whole tables): for each row whose height ``expected[z]`` is below ``below`` and whose
 * rotation (columns rot..rot+3) in ``known`` is not ``expected``'s, ``out``'s column z
 * becomes ``ground + trunc(clip(reach, 0, 2) * half + 0.5)``, ``reach`` being the known
 * rotation's; other rows and columns are left as they are. Any codes give a height.
 */
export function standing(expected, known, columns, rot, z, below, half, ground, scale, out) {
  const n = checkTables(expected, known, out, columns, null);
  if (!(Number.isInteger(rot) && 0 <= rot && rot <= columns - 4)) throw new RangeError(`columns ${rot}:${rot + 4} of a table of ${columns}`);
  if (!(Number.isInteger(z) && 0 <= z && z < columns)) throw new RangeError(`column ${z} of a table of ${columns}`);
  const q = STANDING_Q;
  for (let r = 0; r < n; r++) {
    const row = r * columns, at = row + rot;
    if (expected[row + z] >= below || (expected[at] === known[at] && expected[at + 1] === known[at + 1]
        && expected[at + 2] === known[at + 2] && expected[at + 3] === known[at + 3])) continue;
    const lift = reach(known, at, scale, q);
    const low = 0.0 > lift ? 0.0 : lift; // Python's min(max(lift, 0.0), 2.0)
    out[row + z] = ground + Math.trunc((2.0 < low ? 2.0 : low) * half + 0.5);
  }
}

const ANY_TURN = 2.0; // above any quaternion's w: every turn counts (engine/bodies.py's _ANY_TURN)

/**
 * The engine's rigid-body predictor (engine/bodies.py's Bodies), as the room's schema
 * describes it (``replication.predictor.bodies``: its numbers, its fields as columns):
 * predict() is what a part naming a predictor applies to, and refine() the height guess a
 * spec with a box makes once a row's rotation is known (PROTOCOL.md, "the engine's
 * rigid-body predictor"). The same steps as Python, checked against it in tests.
 */
export class Bodies {
  constructor({ moves, height = null, floor = null, rotation = null, scale = null, spin, turning, aloft = null, box = null, ground = null, friction = 0 }, columns) {
    this.columns = columns;
    this.height = height;
    this.rotation = rotation;
    this.scale = scale;
    this.spin = spin;
    [this.num, this.den] = turning;
    this.aloft = aloft;
    this.box = box;
    this.ground = ground;
    this.friction = friction;
    // The moving fields' columns as runs of adjacent ones, each with its floors and which of
    // its columns slide, all but the height's (Bodies._runs).
    this.runs = [];
    for (const [c0, c1] of [...moves].sort((a, b) => a[0] - b[0])) {
      const lows = [], sliding = [];
      for (let c = c0; c < c1; c++) {
        lows.push(c === height && floor !== null ? floor : null);
        sliding.push(c !== height);
      }
      const last = this.runs[this.runs.length - 1];
      if (last && last[1] === c0) {
        last[1] = c1;
        last[2].push(...lows);
        last[3].push(...sliding);
      } else {
        this.runs.push([c0, c1, lows, sliding]);
      }
    }
    for (const run of this.runs) if (run[2].every((v) => v === null)) run[2] = null;
    // Scratch kept across packets (a page predicts 60 a second): predict's row mask, refine's rows.
    this.rows = new Uint8Array(0);
    this.known = new Float64Array(columns);
    this.guess = new Float64Array(columns);
  }

  /** Where the baseline's bodies should be at ``tick``, from their motion since the
   * predictor snapshot (Bodies.__call__ through SnapshotCoding.expect). */
  predict(baseCodes, baseView, olderCodes, olderView, tick, baseTick, predTick) {
    const out = baseCodes.slice(), C = this.columns, n = baseView.length;
    const ahead = tick - baseTick, gap = baseTick - predTick;
    if (gap <= 0) return out;
    if (this.rows.length !== n) this.rows = new Uint8Array(n);
    const rows = this.rows.fill(0);
    let any = false;
    for (let e = 0; e < n; e++) if (baseView[e] && olderView[e]) rows[e] = 1, any = true;
    if (!any) return out;
    if (this.friction) this.slide(baseCodes, olderCodes, rows, ahead, gap, out);
    else for (const [c0, c1, low] of this.runs) extrapolated(baseCodes, olderCodes, C, c0, c1, ahead, gap, out, rows, low);
    const z = this.height;
    if (z !== null) for (let e = 0; e < n; e++) out[e * C + z] = Math.min(out[e * C + z], baseCodes[e * C + z]); // risers held
    if (this.rotation !== null) {
      const turns = Math.max(floorDiv(this.num * ahead, this.den * gap), 1);
      // a body in the air turns on for all the time ahead, at any spin
      const aloft = this.aloft === null ? null : [z, this.aloft, floorDiv(ahead, gap), ANY_TURN];
      turned(baseCodes, olderCodes, C, this.rotation, turns, this.spin, this.scale, out, rows, aloft);
    }
    return out;
  }

  /** The moving columns carried on with friction (Bodies._slide): bodies no higher than
   * aloft lose its travel, those above fly free of it. */
  slide(baseCodes, olderCodes, rows, ahead, gap, out) {
    const lost = (this.friction * ahead * ahead) / 2; // IEEE doubles in Python's order
    const slow = lost >= 2 ** 62 ? 2 ** 62 : Math.trunc(lost);
    const free = this.aloft === null ? null : [this.height, this.aloft];
    for (const [c0, c1, low, sliding] of this.runs) {
      extrapolated(baseCodes, olderCodes, this.columns, c0, c1, ahead, gap, out, rows, low, sliding.map((s) => (s ? slow : 0)), free);
    }
  }

  /** A changed row's height guessed again from its sent rotation (Bodies.refine): ``expected``
   * the row's expected codes, the row itself at ``at`` of ``codes`` and its deltas at ``dat``
   * of ``deltas``: the height becomes the guess plus its delta, as Python adds them (not
   * taken back out of a sum, which rounds past 2**53). */
  refine(expected, codes, at, deltas, dat) {
    const C = this.columns, z = this.height, known = this.known, guess = this.guess;
    for (let c = 0; c < C; c++) known[c] = codes[at + c]; // (a copy: a view per row was most of a packet's garbage)
    guess.set(expected);
    standing(expected, known, C, this.rotation, z, this.aloft, this.box, this.ground, this.scale, guess);
    codes[at + z] = guess[z] + deltas[dat + z];
  }
}
