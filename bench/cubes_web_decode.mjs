// The browser client's decoder on the cube scene, timed: driven by bench/bench_cubes_web.py.
//
// Reads a JSON job (its path is the one argument): the schema's coding and Bodies, the first
// frames' codes, then every packet (its parts in hex) and a checksum of the frame it must
// rebuild. Like the page's client it keeps the frames it rebuilt and the coder model each
// one's table ended in, and rebuilds frame i from frame i - gap (its baseline) and i - gap - 1
// (its predictor): Bodies' guess, the motion codes, every part applied. Prints JSON: the
// microseconds each packet took (performance.now) and the first frame whose checksum differed.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { Bodies, EntropyCoding, applyPart, decodePart, motionCodes } from "../netcode/server/web/ticksync.js";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { capacity, columns, gap, first } = job;
const coding = new EntropyCoding(job.coding);
const bodies = new Bodies(job.bodies, columns);
if (bodies.box !== null) coding.refine = bodies;
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
const weights = Float64Array.from({ length: capacity * columns }, (_, k) => (k % 1009) + 1);
const checksum = (codes) => codes.reduce((s, v, k) => s + v * weights[k], 0); // exact: below 2**53

const frames = new Map(job.frames.map((codes, i) => [i, Float64Array.from(codes)]));
const models = new Map();
const view = new Uint8Array(capacity).fill(1);
const micros = [];
let wrong = null;
job.packets.forEach(({ parts, sum }, k) => {
  const i = first + k, base = i - gap, pred = base - 1;
  const parsed = parts.map(bytes);
  const t0 = performance.now();
  const motion = motionCodes(frames.get(base), view, frames.get(pred), view, columns);
  const codes = bodies.predict(frames.get(base), view, frames.get(pred), view, i, base, pred);
  const start = models.get(base) ?? null, end = coding.carried();
  const got = view.slice();
  for (const raw of parsed) applyPart(decodePart(raw, capacity, columns, 0, coding), codes, got, columns, coding, motion, start, end);
  micros.push((performance.now() - t0) * 1000);
  frames.set(i, codes);
  models.set(i, end);
  frames.delete(pred); // (no later packet reads it: each reads its baseline and the frame before)
  models.delete(base);
  if (wrong === null && checksum(codes) !== sum) wrong = i;
});
process.stdout.write(JSON.stringify({ micros, wrong }));
