// arena.js: the arena demo's own renderer for play.html (the arena's visuals name it as
// their web_renderer; games that name none are drawn by the generic render.js). Joins with
// page.js, turns keys and the mouse into the arena's input record, and draws what the
// client rebuilds: everyone interpolated at the render tick, our own entity at its newest
// snapshot position plus the moves we sent since (local prediction of the arena's
// movement rule), scores from the snapshot's extras.
//
// Arena-specific on purpose (field names, the movement rule, sizes): the example of a game
// extending the generic view with its own drawing and prediction; the protocol module knows
// no game. Names and numbers mirror demos/arena/game.py.

import { $, hudLines, joinRoom, message, scoreTable } from "./page.js";

const WORLD = 65535; // positions are 0..WORLD (1/16 px)
const PLAYER_SPEED = 96; // units per tick at full stick
const RADIUS = 320; // hit radius: what we draw as an entity's size
const RANGE = 16000; // shot length
const MAX_HP = 100;
const FIRE = 1;
const PLAYER = 1; // the "kind" field: 1 player, 2 NPC

const canvas = $("view");
const ctx = canvas.getContext("2d");
let client = null, schema = null;

// -- controls --------------------------------------------------------------------------------
const keys = new Set();
const MOVE_KEYS = { KeyW: [0, -1], ArrowUp: [0, -1], KeyS: [0, 1], ArrowDown: [0, 1], KeyA: [-1, 0], ArrowLeft: [-1, 0], KeyD: [1, 0], ArrowRight: [1, 0] };
let mouse = null, mouseFire = false;
addEventListener("keydown", (e) => {
  if (MOVE_KEYS[e.code] || e.code === "Space") { keys.add(e.code); e.preventDefault(); }
});
addEventListener("keyup", (e) => keys.delete(e.code));
addEventListener("blur", () => { keys.clear(); mouseFire = false; }); // no stuck keys after alt-tab
canvas.addEventListener("mousemove", (e) => { mouse = [e.clientX, e.clientY]; });
canvas.addEventListener("mousedown", (e) => { if (e.button === 0) mouseFire = true; });
addEventListener("mouseup", (e) => { if (e.button === 0) mouseFire = false; });

function readControls(ownScreen) {
  let mx = 0, my = 0;
  for (const k of keys) if (MOVE_KEYS[k]) { mx += MOVE_KEYS[k][0]; my += MOVE_KEYS[k][1]; }
  let aim = 0;
  if (mouse && ownScreen) { // screen y grows down, as the world's does: same angles
    const a = Math.atan2(mouse[1] - ownScreen[1], mouse[0] - ownScreen[0]);
    aim = ((Math.round((a / (2 * Math.PI)) * 256) % 256) + 256) % 256;
  }
  const firing = mouseFire || keys.has("Space");
  return { move: [Math.sign(mx) * 127, Math.sign(my) * 127], aim, buttons: firing ? FIRE : 0 };
}

// -- our own entity: newest snapshot + the moves the server has not shown us yet -----------------
function predictOwn() {
  const own = client.ownEntity, latest = client.latest;
  if (own === null || !latest || !latest.view[own]) return null;
  let [x, y] = schema.values(latest.codes, "pos", own);
  // The snapshot of tick s holds the state after ticks < s; ours for s.. are still in flight.
  for (let t = latest.tick; t < client.present; t++) {
    const rec = client.inputs.get(t);
    if (!rec) continue;
    const [mx, my] = schema.decodeInput(rec).move;
    x = Math.min(WORLD, Math.max(0, x + Math.floor((mx * PLAYER_SPEED) / 127)));
    y = Math.min(WORLD, Math.max(0, y + Math.floor((my * PLAYER_SPEED) / 127)));
  }
  return [x, y];
}

// -- drawing ---------------------------------------------------------------------------------
function resize() {
  const dpr = devicePixelRatio || 1;
  canvas.width = Math.round(innerWidth * dpr);
  canvas.height = Math.round(innerHeight * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}
addEventListener("resize", resize);
resize();

function slotColor(slot, own) { return own ? "#ffffff" : `hsl(${(slot * 67) % 360} 80% 60%)`; }

function frame() {
  requestAnimationFrame(frame);
  const w = innerWidth, h = innerHeight;
  ctx.fillStyle = "#101316";
  ctx.fillRect(0, 0, w, h);
  if (!client) return;
  const view = client.connected ? client.view() : null;
  const ownPos = client.connected && !client.spectator ? predictOwn() : null;
  // Camera: a player follows its entity at 1 px per 16 units; a spectator sees the whole arena.
  const scale = client.spectator || !ownPos ? Math.min(w, h) / (WORLD * 1.05) : 1 / 16;
  const center = ownPos || [WORLD / 2, WORLD / 2];
  const sx = (x) => w / 2 + (x - center[0]) * scale, sy = (y) => h / 2 + (y - center[1]) * scale;
  const ownScreen = ownPos ? [sx(ownPos[0]), sy(ownPos[1])] : null;
  if (client.connected && !client.spectator) client.setInput(readControls(ownScreen));

  ctx.strokeStyle = "#1e252c"; // grid every 4096 units, so motion shows on an empty field
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let g = 0; g <= WORLD + 1; g += 4096) {
    ctx.moveTo(sx(g), sy(0)); ctx.lineTo(sx(g), sy(WORLD));
    ctx.moveTo(sx(0), sy(g)); ctx.lineTo(sx(WORLD), sy(g));
  }
  ctx.stroke();
  ctx.strokeStyle = "#4a5560";
  ctx.strokeRect(sx(0), sy(0), WORLD * scale, WORLD * scale);
  if (view) drawEntities(view, sx, sy, scale, ownPos);
  drawHud(view);
}

function drawEntities(view, sx, sy, scale, ownPos) {
  const { pos, kind, hp, aim } = view.fields;
  const own = client.ownEntity, r = Math.max(2, RADIUS * scale);
  ctx.fillStyle = "#6b7785"; // NPCs in one path: a thousand arcs, one fill
  ctx.beginPath();
  for (let e = 0; e < view.visible.length; e++) {
    if (!view.visible[e] || kind[e] === PLAYER) continue;
    const x = sx(pos[2 * e]), y = sy(pos[2 * e + 1]);
    ctx.moveTo(x + r, y);
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
  ctx.fill();
  for (let e = 0; e < view.visible.length; e++) {
    if (!view.visible[e]) continue;
    const isOwn = e === own && ownPos;
    const [px, py] = isOwn ? ownPos : [pos[2 * e], pos[2 * e + 1]];
    const x = sx(px), y = sy(py);
    if (kind[e] === PLAYER) {
      const slot = schema.playerEntities.indexOf(e);
      const a = (aim[e] / 256) * 2 * Math.PI, len = (isOwn ? RANGE : 900) * scale;
      ctx.strokeStyle = isOwn ? (schema.decodeInput(client.record).buttons & FIRE ? "#ffd166" : "rgba(255,255,255,.25)") : slotColor(slot, false);
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + Math.cos(a) * len, y + Math.sin(a) * len);
      ctx.stroke();
      ctx.fillStyle = slotColor(slot, isOwn);
      ctx.beginPath();
      ctx.arc(x, y, r * 1.4, 0, 2 * Math.PI);
      ctx.fill();
      if (isOwn) { ctx.strokeStyle = "#ffd166"; ctx.lineWidth = 2; ctx.stroke(); }
    }
    if (hp[e] < MAX_HP) { // hp bar over anyone hurt
      ctx.fillStyle = "#3a1111";
      ctx.fillRect(x - 2 * r, y - 2.4 * r, 4 * r, 3);
      ctx.fillStyle = "#e5484d";
      ctx.fillRect(x - 2 * r, y - 2.4 * r, (4 * r * Math.max(0, hp[e])) / MAX_HP, 3);
    }
  }
}

function drawHud(view) {
  const visible = view ? view.visible.reduce((a, b) => a + b, 0) : 0;
  $("hud").textContent = hudLines(client, schema, visible).join("\n");
  $("scores").textContent = scoreTable(client, schema, view, "score");
}

// -- start: a token, the schema, the WebSocket (page.js) -------------------------------------------
async function start() {
  ({ client, schema } = await joinRoom());
  $("help").textContent = `${schema.json.controls?.help ?? ""} · add ?spectate=1 to watch`;
  window.ticksync = { client, schema, ownPosition: predictOwn }; // for the console and browser tests
}

requestAnimationFrame(frame);
start().catch((err) => message(String(err.message || err), true));
