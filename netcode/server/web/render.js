// render.js: the generic view for play.html: draws any state-sync game from the visuals
// its schema carries (engine/visuals.py) and plays it with the controls it declares
// (engine/controls.py). Nothing here knows a particular game; a game that wants more (its
// own prediction, effects) names its own module instead, as the arena does (arena.js).
//
// Everyone is drawn interpolated at the render tick; our own entity at the newest snapshot
// (the generic view cannot run the game's step, so it predicts nothing). The same spec
// drives the desktop client (netcode/desktop/render.py): keep the two in step.

import { $, hudLines, joinRoom, keyName, message, mouseName, scoreTable } from "./page.js";

const canvas = $("view");
const ctx = canvas.getContext("2d");
let client = null, schema = null, visuals = null, controls = null;
let toScreen = null; // world -> CSS pixels, as of the last frame drawn
let width = {}; // field name -> components per entity (looked up per entity, so kept at hand)

// -- controls: held keys + the pointer -> the game's input record --------------------------------
const held = new Set();
let pointer = null; // [x, y] in CSS pixels
addEventListener("keydown", (e) => {
  const k = keyName(e.code);
  if (k && controls?.keys.has(k)) { held.add(k); e.preventDefault(); }
});
addEventListener("keyup", (e) => held.delete(keyName(e.code)));
addEventListener("blur", () => held.clear()); // no stuck keys after alt-tab
canvas.addEventListener("mousemove", (e) => { pointer = [e.clientX, e.clientY]; });
canvas.addEventListener("mousedown", (e) => { const k = mouseName(e.button); if (k) held.add(k); });
addEventListener("mouseup", (e) => held.delete(mouseName(e.button)));
canvas.addEventListener("contextmenu", (e) => { if (controls?.keys.has("mouse3")) e.preventDefault(); });

/** The same rule as Controls.record in engine/controls.py: zeros, then every binding. */
function inputValues(pointerWorld, aim) {
  const values = {};
  for (const f of schema.input.fields) values[f.name] = f.shape.length ? new Array(f.count).fill(0) : 0;
  const put = (name, component, v, combine = false) => {
    if (!(name in values)) return;
    const cur = values[name];
    if (Array.isArray(cur)) {
      if (component === null) values[name] = cur.map((c) => (combine ? c | v : v));
      else cur[component] = combine ? cur[component] | v : v;
    } else values[name] = combine ? cur | v : v;
  };
  const any = (keys) => keys.some((k) => held.has(k));
  for (const b of controls.bindings) {
    if (b.kind === "axis") put(b.field, b.component, (any(b.positive) - any(b.negative)) * b.scale);
    else if (b.kind === "press") { if (any(b.keys)) put(b.field, b.component, b.value, true); }
    else if (b.kind === "aim") {
      if (aim !== null) put(b.field, b.component, ((Math.round((aim / (2 * Math.PI)) * b.turn) % b.turn) + b.turn) % b.turn);
    } else if (b.kind === "point" && pointerWorld && (!b.keys.length || any(b.keys))) {
      put(b.x, null, Math.floor(pointerWorld[0] / b.per));
      put(b.y, null, Math.floor(pointerWorld[1] / b.per));
    }
  }
  return values;
}

// -- reading the view ------------------------------------------------------------------------------
/** Field ``name`` of entity ``e``: component ``k`` of a vector field, or the scalar. */
function value(fields, name, e, k = 0) {
  return fields[name][e * width[name] + k];
}

function position(fields, e) {
  const p = visuals.position;
  return p.length === 1 ? [value(fields, p[0], e, 0), value(fields, p[0], e, 1)] : [value(fields, p[0], e), value(fields, p[1], e)];
}

/** Our entity at the newest snapshot (fresher than the interpolated view), or null. */
function ownPosition() {
  const own = client?.ownEntity, latest = client?.latest;
  if (own === null || own === undefined || !latest || !latest.view[own]) return null;
  const p = visuals.position;
  if (p.length === 1) return schema.values(latest.codes, p[0], own);
  return [schema.values(latest.codes, p[0], own)[0], schema.values(latest.codes, p[1], own)[0]];
}

/** The first sprite whose ``when`` matches entity e (engine/visuals.py Visuals.assign). */
function spriteOf(fields, e) {
  for (const s of visuals.sprites) {
    let ok = true;
    for (const [name, want] of Object.entries(s.when)) if (value(fields, name, e) !== want) { ok = false; break; }
    if (ok) return s;
  }
  return null;
}

/** The palette of engine/visuals.py palette(): hue from the value, the same on every viewer. */
const colorOf = (s, fields, e) => (s.color_by ? `hsl(${(Math.round(value(fields, s.color_by, e)) * 67) % 360} 80% 60%)` : s.color);

function extent(s, fields, e, defaultSize) {
  if (Array.isArray(s.size)) return [s.size[0] * s.size_scale, s.size[1] * s.size_scale];
  const d = (typeof s.size === "string" ? value(fields, s.size, e) : s.size || defaultSize) * s.size_scale;
  return [d, d];
}

// -- drawing ---------------------------------------------------------------------------------------
function resize() {
  const dpr = devicePixelRatio || 1;
  canvas.width = Math.round(innerWidth * dpr);
  canvas.height = Math.round(innerHeight * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}
addEventListener("resize", resize);
resize();

function frame() {
  requestAnimationFrame(frame);
  const w = innerWidth, h = innerHeight;
  ctx.fillStyle = visuals?.background || "#101316";
  ctx.fillRect(0, 0, w, h);
  if (!client || !visuals) return;
  const [x0, y0, x1, y1] = visuals.world;
  const view = client.connected ? client.view() : null;
  const own = client.connected && !client.spectator ? ownPosition() : null;
  // Camera: the whole world, or (camera "follow") our entity with follow_span across the view.
  const follow = visuals.camera === "follow" && own;
  const scale = follow ? Math.min(w, h) / visuals.follow_span : Math.min(w / (x1 - x0), h / (y1 - y0)) / 1.05;
  const center = follow ? own : [(x0 + x1) / 2, (y0 + y1) / 2];
  const sx = (x) => w / 2 + (x - center[0]) * scale, sy = (y) => h / 2 + (y - center[1]) * scale;
  toScreen = (p) => [sx(p[0]), sy(p[1])];
  const toWorld = (p) => [(p[0] - w / 2) / scale + center[0], (p[1] - h / 2) / scale + center[1]];
  if (client.connected && !client.spectator && controls) {
    const aim = pointer && own ? Math.atan2(pointer[1] - sy(own[1]), pointer[0] - sx(own[0])) : null;
    client.setInput(inputValues(pointer ? toWorld(pointer) : null, aim));
  }
  if (visuals.grid) {
    ctx.strokeStyle = "#1e252c";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let g = x0; g <= x1; g += visuals.grid) { ctx.moveTo(sx(g), sy(y0)); ctx.lineTo(sx(g), sy(y1)); }
    for (let g = y0; g <= y1; g += visuals.grid) { ctx.moveTo(sx(x0), sy(g)); ctx.lineTo(sx(x1), sy(g)); }
    ctx.stroke();
  }
  ctx.strokeStyle = "#4a5560";
  ctx.strokeRect(sx(x0), sy(y0), (x1 - x0) * scale, (y1 - y0) * scale);
  let shown = 0;
  if (view) shown = drawEntities(view, sx, sy, scale, own);
  $("hud").textContent = hudLines(client, schema, shown).join("\n");
  $("scores").textContent = view ? scoreTable(client, schema, view, visuals.scores) : "";
  $("scores").style.display = $("scores").textContent ? "" : "none";
}

function drawEntities(view, sx, sy, scale, own) {
  const fields = view.fields, ownEntity = client.ownEntity;
  const [x0, y0, x1, y1] = visuals.world, defaultSize = 0.015 * Math.min(x1 - x0, y1 - y0);
  let shown = 0;
  for (let e = 0; e < view.visible.length; e++) {
    if (!view.visible[e] || (e === ownEntity && own)) continue;
    const s = spriteOf(fields, e);
    if (s) { drawEntity(s, fields, e, position(fields, e), sx, sy, scale, defaultSize, false); shown++; }
  }
  if (own && ownEntity < view.visible.length && view.visible[ownEntity]) { // ours last: on top of the crowd
    const s = spriteOf(fields, ownEntity);
    if (s) { drawEntity(s, fields, ownEntity, own, sx, sy, scale, defaultSize, true); shown++; }
  }
  return shown;
}

function drawEntity(s, fields, e, [wx, wy], sx, sy, scale, defaultSize, isOwn) {
  const x = sx(wx), y = sy(wy);
  const [ew, eh] = extent(s, fields, e, defaultSize);
  const pw = Math.max(3, ew * scale), ph = Math.max(3, eh * scale);
  const angle = s.heading ? (value(fields, s.heading, e) / s.heading_turn) * 2 * Math.PI : 0;
  ctx.fillStyle = colorOf(s, fields, e);
  ctx.beginPath();
  if (s.shape === "rect") ctx.rect(x - pw / 2, y - ph / 2, pw, ph);
  else if (s.shape === "triangle") {
    const c = Math.cos(angle), n = Math.sin(angle), r = pw / 2;
    ctx.moveTo(x + c * r, y + n * r);
    ctx.lineTo(x - c * r - n * r * 0.6, y - n * r + c * r * 0.6);
    ctx.lineTo(x - c * r + n * r * 0.6, y - n * r - c * r * 0.6);
    ctx.closePath();
  } else ctx.arc(x, y, pw / 2, 0, 2 * Math.PI);
  ctx.fill();
  if (isOwn) { ctx.strokeStyle = visuals.own_color; ctx.lineWidth = 2; ctx.stroke(); }
  if (s.heading && s.shape !== "triangle") {
    ctx.strokeStyle = ctx.fillStyle;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + Math.cos(angle) * pw, y + Math.sin(angle) * pw);
    ctx.stroke();
  }
  if (s.bar) {
    const v = value(fields, s.bar, e);
    if (v < s.bar_max) {
      ctx.fillStyle = "#3a1111";
      ctx.fillRect(x - pw / 2, y - ph / 2 - 6, pw, 3);
      ctx.fillStyle = "#e5484d";
      ctx.fillRect(x - pw / 2, y - ph / 2 - 6, (pw * Math.max(0, v)) / s.bar_max, 3);
    }
  }
  if (s.label) {
    ctx.fillStyle = "#d8dde3";
    ctx.font = "11px ui-monospace, monospace";
    ctx.fillText(String(Math.round(value(fields, s.label, e) * 100) / 100), x + pw / 2 + 3, y - ph / 2);
  }
}

// -- start ---------------------------------------------------------------------------------------
async function start() {
  ({ client, schema } = await joinRoom());
  const json = schema.json;
  for (const p of json.problems || []) console.warn(`ticksync: the game's ${p}`);
  visuals = json.visuals;
  width = Object.fromEntries(schema.fields.map((f) => [f.name, f.columns]));
  if (!visuals) {
    throw new Error(`${schema.game.name} declares no visuals and has no position field with a range to draw` +
                    (json.problems?.length ? `\n(${json.problems.join("; ")})` : ""));
  }
  controls = json.controls ? { ...json.controls, keys: new Set(json.controls.bindings.flatMap((b) => [...(b.keys || []), ...(b.negative || []), ...(b.positive || [])])) } : null;
  $("help").textContent = (controls ? controls.help + " · " : "") + "add ?spectate=1 to watch";
  document.title = `ticksync ${schema.game.name}`;
  // For the console and browser tests: the client, and where things are (world and screen).
  window.ticksync = { client, schema, ownPosition, toScreen: (p) => (toScreen ? toScreen(p) : null) };
}

requestAnimationFrame(frame);
start().catch((err) => message(String(err.message || err), true));
